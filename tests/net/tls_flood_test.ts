/**
 * The TLS port under a flood (issue 18, item 4): handshakes in progress are
 * bounded, and a failed handshake is logged with the client's address.
 * Against `fsd serve --tls-cert --tls-key` as a subprocess, on loopback.
 */

import { assertTools, needs } from "../support/tools.ts";
import { spawnServe } from "../support/cli.ts";
import { tempDir } from "../support/files.ts";
import { withDeadline } from "../support/raw_client.ts";
import { makeCertificates } from "../support/tls_certs.ts";

async function serveTls(dir: string) {
  const root = `${dir}/root`;
  await Deno.mkdir(root);
  const certs = await makeCertificates(dir);
  return spawnServe(root, 0, ["--tls-cert", certs.cert, "--tls-key", certs.key], [
    "--allow-net=127.0.0.1",
    `--allow-read=${root},${certs.cert},${certs.key}`,
    `--allow-write=${root}`,
  ]);
}

/** A test that needs openssl (for the certificates). */
const tlsTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name,
    ...needs("openssl"),
    fn: () => {
      assertTools("openssl");
      return fn();
    },
  });

tlsTest("tls flood: a client hanging up mid-handshake is logged with its address", async () => {
  await using dir = await tempDir();
  await using server = await serveTls(dir.path);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await conn.write(new Uint8Array([0x16, 0x03, 0x01]));
  conn.close();
  await withDeadline(
    server.waitForLine(/^connection from 127\.0\.0\.1 port \d+: TLS handshake failed: /),
    "the failure's log line",
  );
});

tlsTest(
  "tls flood: 70 stalled handshakes: past 64 in progress a connection is dropped at once",
  async () => {
    await using dir = await tempDir();
    await using server = await serveTls(dir.path);
    const stalled: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 70; i++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        await conn.write(new Uint8Array([0x16, 0x03, 0x01])); // half a record header, then silence
        stalled.push(conn);
      }
      await withDeadline(
        server.waitForLine(
          /^connection from 127\.0\.0\.1 port \d+: TLS handshake failed: too many TLS handshakes in progress \(64\); dropped; closing$/,
        ),
        "the drop's log line",
      );
    } finally {
      for (const conn of stalled) conn.close();
    }
  },
);
