/**
 * --pcap over UDP: `fsd proxy --udp ... --pcap` and `fsd echo ... --udp
 * --pcap` write UDP frames on the real ports, which tshark decodes (TFTP
 * through the relay included, with Decode As on the server's port).
 */

import assert from "node:assert/strict";
import { MemorySink } from "../../lib/bytes/source_sink.ts";
import { tftpDownload } from "../../lib/tftp/client.ts";
import { runFsd, spawnFsd } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { startTftp } from "../support/tftp.ts";
import { assertTools, needs } from "../support/tools.ts";

async function tsharkFields(pcap: string, extra: string[], fields: string[]): Promise<string[][]> {
  const out = await new Deno.Command("tshark", {
    args: ["-r", pcap, ...extra, "-T", "fields", ...fields.flatMap((f) => ["-e", f])],
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C" },
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => l.split("\t"));
}

Deno.test({
  name: "udp capture: fsd proxy --udp --pcap records a TFTP download that tshark decodes",
  ...needs("tshark"),
  async fn() {
    assertTools("tshark");
    await using dir = await tempDir();
    const pcap = `${dir.path}/tftp.pcap`;
    await using s = await startTftp({});
    const data = randomBytes(3000, 5);
    await Deno.writeFile(`${s.root}/f`, data);
    const proxy = await spawnFsd(
      ["proxy", "--udp", "0", "127.0.0.1", String(s.port), "--host", "127.0.0.1", "--pcap", pcap],
      ["--allow-net=127.0.0.1", `--allow-write=${dir.path}`],
      /^UDP proxy listening on /,
    );
    try {
      const sink = new MemorySink();
      const config = { hostname: "127.0.0.1", port: proxy.port, blockSize: 512 };
      assert.equal(await tftpDownload(config, "f", sink), data.length);
    } finally {
      assert.equal((await proxy.stop("SIGINT")).code, 0);
    }
    const rows = await tsharkFields(pcap, ["-d", `udp.port==${s.port},tftp`], [
      "udp.srcport",
      "udp.dstport",
      "tftp.opcode",
      "tftp.block",
    ]);
    assert.equal(rows[0][1], String(s.port), "the request goes to the server's port");
    assert.equal(rows[0][2], "1", "a read request first");
    const blocks = rows.filter((r) => r[2] === "3").map((r) => r[3]);
    assert.deepEqual(blocks, ["1", "2", "3", "4", "5", "6"], "every data block, in order");
  },
});

Deno.test({
  name: "udp capture: fsd echo --udp --pcap records each datagram both ways",
  ...needs("tshark"),
  async fn() {
    assertTools("tshark");
    await using dir = await tempDir();
    const pcap = `${dir.path}/echo.pcap`;
    await using server = await spawnFsd(
      ["echo", "serve", "0", "--udp", "--upper", "--host", "127.0.0.1"],
      ["--allow-net=127.0.0.1"],
      /listening on /,
    );
    const result = await runFsd(["--allow-net=127.0.0.1", `--allow-write=${dir.path}`], [
      "echo",
      "127.0.0.1",
      String(server.port),
      "--udp",
      "--pcap",
      pcap,
      "--",
      "hello",
      "world",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "HELLO\nWORLD\n");
    const rows = await tsharkFields(pcap, [], ["udp.srcport", "udp.dstport", "data.data"]);
    const hex = (s: string) =>
      Array.from(new TextEncoder().encode(s), (b) => b.toString(16).padStart(2, "0")).join("");
    assert.deepEqual(rows.map((r) => r[2]), [
      hex("hello"),
      hex("HELLO"),
      hex("world"),
      hex("WORLD"),
    ]);
    assert.equal(rows[0][1], String(server.port));
    assert.equal(rows[1][0], String(server.port));
  },
});

Deno.test("udp capture: a --pcap file that cannot be written is one clear line, exit 1", async () => {
  const result = await runFsd(["--allow-net=127.0.0.1", "--allow-write"], [
    "echo",
    "127.0.0.1",
    "9",
    "--udp",
    "--pcap",
    "/nonexistent-dir/x.pcap",
    "hi",
  ]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^fsd: cannot write capture file \/nonexistent-dir\/x\.pcap: /);
});

Deno.test({
  name: "udp capture: fsd get tftp://... --pcap records the transfer on its real ports",
  ...needs("tshark"),
  async fn() {
    assertTools("tshark");
    await using dir = await tempDir();
    await using s = await startTftp({});
    const data = randomBytes(1500, 7);
    await Deno.writeFile(`${s.root}/f`, data);
    const pcap = `${dir.path}/get.pcap`;
    const result = await runFsd([
      "--allow-net=127.0.0.1",
      `--allow-read=${dir.path}`,
      `--allow-write=${dir.path}`,
    ], [
      "get",
      `tftp://127.0.0.1:${s.port}/f`,
      `${dir.path}/f`,
      "--blksize",
      "512",
      "--pcap",
      pcap,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await Deno.readFile(`${dir.path}/f`), data);
    const rows = await tsharkFields(pcap, ["-d", `udp.port==${s.port},tftp`], [
      "udp.dstport",
      "tftp.opcode",
      "tftp.block",
    ]);
    assert.equal(rows[0][0], String(s.port));
    assert.equal(rows[0][1], "1", "the read request first");
    assert.deepEqual(rows.filter((r) => r[1] === "3").map((r) => r[2]), ["1", "2", "3"]);
  },
});
