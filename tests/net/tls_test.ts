/**
 * fsd serve over TLS with certificates openssl makes for the run: the
 * fingerprint at start, clients trusting a CA or a pin, every wrong
 * certificate refused in one line before anything is sent, plain bytes on
 * the TLS port and TLS on a plain port, a handshake left half done, and
 * openssl s_client as an independent peer.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../../lib/auth/password.ts";
import { runFsd, spawnServe } from "../support/cli.ts";
import { tempDir, text } from "../support/files.ts";
import { RawClient, wire, withDeadline } from "../support/raw_client.ts";
import { makeCertificates, type TestCertificates } from "../support/tls_certs.ts";
import { needs } from "../support/tools.ts";

const FAST = { ln: 10, r: 8, p: 1 };

async function fixture() {
  const dir = await tempDir();
  const certs = await makeCertificates(dir.path);
  const root = `${dir.path}/root`;
  await Deno.mkdir(root);
  await Deno.writeTextFile(`${root}/hello.txt`, "hello over TLS\n");
  const users = `${dir.path}/users`;
  await Deno.writeTextFile(users, `alice:${await hashPassword("wonderland", FAST)}:rw\n`);
  return { dir, certs, root, users, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}

/** fsd serve ROOT with TLS, exactly the documented permissions. */
function serveTls(
  root: string,
  certs: TestCertificates,
  extra: string[] = [],
  files: string[] = [],
) {
  const readable = [root, certs.cert, certs.key, ...files].join(",");
  return spawnServe(root, 0, ["--tls-cert", certs.cert, "--tls-key", certs.key, ...extra], [
    "--allow-net=127.0.0.1",
    `--allow-read=${readable}`,
    `--allow-write=${root}`,
  ]);
}

const clientFlags = (port: number, ...readable: string[]) => [
  `--allow-net=127.0.0.1:${port}`,
  ...(readable.length ? [`--allow-read=${readable.join(",")}`] : []),
];

const tlsTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ...needs("openssl"), fn });

tlsTest(
  "tls: the server prints openssl's fingerprint; --ca and --pin clients are served",
  async () => {
    await using f = await fixture();
    await using server = await serveTls(f.root, f.certs);
    assert.ok(
      server.lines.includes(`TLS certificate fingerprint: ${f.certs.certFingerprint}`),
      server.lines.join("\n"),
    );
    const viaCa = await runFsd(clientFlags(server.port, f.certs.ca), [
      "get",
      "127.0.0.1",
      String(server.port),
      "hello.txt",
      "-",
      "--ca",
      f.certs.ca,
    ]);
    assert.equal(viaCa.code, 0, viaCa.stderr);
    assert.equal(viaCa.stdout, "hello over TLS\n");
    // Over TLS the client asks for a window of 64 blocks (16 in plain).
    await server.waitForLine(/RRQ "hello\.txt": sent file, .*windowsize 64\)/);
    const viaPin = await runFsd(clientFlags(server.port), [
      "ls",
      "127.0.0.1",
      String(server.port),
      "--pin",
      f.certs.certFingerprint,
    ]);
    assert.equal(viaPin.code, 0, viaPin.stderr);
    assert.match(viaPin.stdout, /^f 15 \S+ hello\.txt\n$/);
    // The pin in other spellings: lower case, no colons.
    const bare = "sha256:" + f.certs.certFingerprint.slice(7).replaceAll(":", "").toLowerCase();
    const upload = await runFsd(clientFlags(server.port), [
      "put",
      "127.0.0.1",
      String(server.port),
      "-",
      "up.txt",
      "--pin",
      bare,
    ], { stdin: text.encode("uploaded over TLS") });
    assert.equal(upload.code, 0, upload.stderr);
    assert.equal(await Deno.readTextFile(`${f.root}/up.txt`), "uploaded over TLS");
  },
);

tlsTest(
  "tls: a certificate that is not trusted fails in one line, exit 1, before the login",
  async () => {
    await using f = await fixture();
    await using server = await serveTls(f.root, f.certs, ["--users", f.users], [f.users]);
    const port = String(server.port);
    const cases: [string[], string[], RegExp][] = [
      [["--tls"], [], /not trusted: .*UnknownIssuer/],
      [["--ca", f.certs.otherCert], [f.certs.otherCert], /not trusted/],
      [
        ["--pin", f.certs.otherFingerprint],
        [],
        /certificate pin mismatch: the server's is SHA256:/,
      ],
    ];
    for (const [flags, readable, message] of cases) {
      const result = await runFsd(
        [...clientFlags(server.port, ...readable), "--allow-env=FSD_PASSWORD"],
        ["ls", "127.0.0.1", port, "--user", "alice", ...flags],
        { env: { FSD_PASSWORD: "wonderland" } },
      );
      assert.equal(result.code, 1, `${flags.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, message);
    }
    // The right trust logs in; the wrong ones never got as far as a login.
    const ok = await runFsd(
      [...clientFlags(server.port, f.certs.ca), "--allow-env=FSD_PASSWORD"],
      ["ls", "127.0.0.1", port, "--user", "alice", "--ca", f.certs.ca],
      { env: { FSD_PASSWORD: "wonderland" } },
    );
    assert.equal(ok.code, 0, ok.stderr);
    await server.waitForLine(/DRQ by "alice": sent listing/);
    assert.equal(server.lines.filter((l) => /login as/.test(l)).length, 1, server.lines.join("\n"));
  },
);

tlsTest("tls: a TLS client on a plain port fails in one line; the server goes on", async () => {
  await using f = await fixture();
  await using server = await spawnServe(f.root);
  const result = await runFsd(clientFlags(server.port, f.certs.ca), [
    "ls",
    "127.0.0.1",
    String(server.port),
    "--ca",
    f.certs.ca,
    "--timeout",
    "5",
  ]);
  assert.equal(result.code, 1);
  assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  assert.match(
    result.stderr,
    /cannot connect to 127\.0\.0\.1 port \d+: the TLS handshake failed: .*is it a TLS port/,
  );
  const plain = await runFsd(clientFlags(server.port), ["ls", "127.0.0.1", String(server.port)]);
  assert.equal(plain.code, 0, plain.stderr);
});

tlsTest(
  "tls: plain fsd/1 bytes on the TLS port are dropped; a stalled handshake holds nobody up",
  async () => {
    await using f = await fixture();
    await using server = await serveTls(f.root, f.certs);
    // fsd/1 bytes where a ClientHello belongs: the handshake fails and the connection ends.
    await using plain = await RawClient.connect(server.port);
    await plain.send(wire.ack(1), wire.rrq("hello.txt"));
    await withDeadline(drain(plain.conn), "the server closing a plain client");
    const failed = await server.waitForLine(/TLS handshake failed/);
    const local = plain.conn.localAddr as Deno.NetAddr;
    assert.match(
      failed,
      new RegExp(`^connection from 127\\.0\\.0\\.1 port ${local.port}: `),
      "who",
    );
    // Half a TLS record header, then silence: the server waits on it alone.
    using stalled = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await stalled.write(new Uint8Array([0x16, 0x03, 0x01]));
    const served = await runFsd(clientFlags(server.port, f.certs.ca), [
      "get",
      "127.0.0.1",
      String(server.port),
      "hello.txt",
      "-",
      "--ca",
      f.certs.ca,
    ]);
    assert.equal(served.stdout, "hello over TLS\n", served.stderr);
  },
);

/** Reads until the peer closes (what comes is a TLS alert at most). */
async function drain(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(4096);
  while ((await conn.read(buffer).catch(() => null)) !== null) {
    // discard
  }
}

tlsTest(
  "tls: openssl s_client verifies the server against the CA and gets the greeting",
  async () => {
    await using f = await fixture();
    await using server = await serveTls(f.root, f.certs, ["--name", "tlslab"]);
    const child = new Deno.Command("openssl", {
      args: [
        "s_client",
        "-connect",
        `127.0.0.1:${server.port}`,
        "-CAfile",
        f.certs.ca,
        "-verify_return_error",
        "-quiet",
        "-no_ign_eof",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    const reader = child.stdout.getReader();
    let received: Uint8Array = new Uint8Array(0);
    while (received.length < 6 + "Hello from tlslab's fileserver".length) {
      const { value, done } = await withDeadline(reader.read(), "s_client output");
      if (done) break;
      received = wire.concat(received, value);
    }
    await writer.write(wire.ack(1));
    await writer.close();
    reader.releaseLock();
    await child.stdout.cancel();
    const status = await child.status;
    await child.stderr.cancel();
    assert.equal(text.decode(received.subarray(6)), "Hello from tlslab's fileserver");
    assert.equal(status.success, true);
  },
);

tlsTest("tls: a plain client on the TLS port is told to try --tls, --ca or --pin", async () => {
  await using f = await fixture();
  await using server = await serveTls(f.root, f.certs);
  const plain = await runFsd(clientFlags(server.port), [
    "ls",
    "127.0.0.1",
    String(server.port),
    "--timeout",
    "1",
  ]);
  assert.equal(plain.code, 1);
  assert.equal(
    plain.stderr,
    `fsd: 127.0.0.1 port ${server.port}: connected, but no fsd greeting within 1 s: is it a TLS port? (add --tls, --ca FILE or --pin SHA256:...)\n`,
  );
});
