/**
 * fsd serve --http --live: the live page's event stream shows an fsd/1
 * download with its progress and ladder; the session saves as pcap and as
 * text; only loopback clients (or an admin account) may look.
 */

import assert from "node:assert/strict";
import { runFsd } from "../support/cli.ts";
import { randomBytes, tempDir } from "../support/files.ts";
import { serveLive } from "../support/http.ts";
import { LiveHub } from "../../lib/capture/live.ts";
import { LivePage } from "../../lib/http/live.ts";

Deno.test("http --live: events, ladder, pcap and text of a running fsd get", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  await Deno.writeFile(`${served.path}/big.bin`, randomBytes(3_000_000, 9));
  const { server, fsdPort, httpPort } = await serveLive(served.path);
  await using _server = server;
  const events = await fetch(`http://127.0.0.1:${httpPort}/.live/events`);
  assert.equal(events.headers.get("content-type"), "text/event-stream");
  const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.match((await reader.read()).value ?? "", /^data: \{"connections":\[\]/);
  const got = await runFsd(
    [
      `--allow-net=127.0.0.1:${fsdPort}`,
      `--allow-read=${local.path}`,
      `--allow-write=${local.path}`,
    ],
    ["get", "127.0.0.1", String(fsdPort), "big.bin", `${local.path}/big.bin`],
  );
  assert.equal(got.code, 0, got.stderr);
  // Read events until one shows the download done, with its ladder (bounded).
  let state: {
    connections: { key: string; name: string; bytes: number }[];
    ladders: Record<string, string[]>;
  } | undefined;
  let pending = "";
  for (let i = 0; i < 100 && !state?.connections.some((c) => c.bytes === 3_000_000); i++) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const messages = pending.split("\n\n");
    pending = messages.pop()!;
    for (const m of messages) if (m.startsWith("data: ")) state = JSON.parse(m.slice(6));
  }
  await reader.cancel();
  const download = state!.connections.find((c) => c.name === "big.bin")!;
  assert.equal(download.bytes, 3_000_000);
  const ladder = state!.ladders[download.key].join("\n");
  assert.match(ladder, /---- RRQ "big.bin" -+>/);
  assert.match(ladder, /<---- DAT 1 \(\d+ bytes\)/);
  assert.match(ladder, /\.\.\. \d+ more DAT/);
  const text = await fetch(`http://127.0.0.1:${httpPort}/.live/session/${download.key}.txt`);
  assert.match(await text.text(), /RRQ "big.bin"/);
  const pcap = new Uint8Array(
    await (await fetch(`http://127.0.0.1:${httpPort}/.live/session/${download.key}.pcap`))
      .arrayBuffer(),
  );
  assert.deepEqual([...pcap.subarray(0, 4)], [0xd4, 0xc3, 0xb2, 0xa1]); // pcap, little-endian
  const page = await fetch(`http://127.0.0.1:${httpPort}/.live/`);
  assert.match(await page.text(), /<table id="connections">/);
});

Deno.test("http --live: the live page refuses clients other than loopback", () => {
  const page = new LivePage(new LiveHub());
  const signal = new AbortController().signal;
  assert.throws(
    () => page.answer("", "192.0.2.9", signal),
    /loopback clients and admin accounts only/,
  );
  assert.equal(page.answer("", "127.0.0.1", signal).status, 200);
});

Deno.test("http --live: a TFTP transfer shows with its ladder of datagrams", async () => {
  await using served = await tempDir();
  await using local = await tempDir();
  await Deno.writeFile(`${served.path}/boot.img`, randomBytes(200_000, 13));
  const { server, httpPort } = await serveLive(served.path, ["--tftp", "0"]);
  await using _server = server;
  const tftpPort = Number(/port (\d+)/.exec(await server.waitForLine(/^TFTP server/))![1]);
  const got = await runFsd(
    ["--allow-net=127.0.0.1", `--allow-read=${local.path}`, `--allow-write=${local.path}`],
    ["get", `tftp://127.0.0.1:${tftpPort}/boot.img`, `${local.path}/boot.img`],
  );
  assert.equal(got.code, 0, got.stderr);
  await server.waitForLine(/RRQ "boot.img": sent file/);
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/.live/session/tftp-1.txt`)).text();
  // fsd/1's names, as `fsd get --trace` and the dissector use them.
  assert.match(text, /-+> {2}\| {2}RRQ "boot.img" blksize=\d+/);
  assert.match(text, /<---- DAT 1 \(\d+ bytes\)/);
  assert.match(text, /---- ACK \d+ -+>/);
  // TFTP sessions have no capture file (the capture framing is TCP's).
  const pcap = await fetch(`http://127.0.0.1:${httpPort}/.live/session/tftp-1.pcap`);
  assert.equal(pcap.status, 404);
  await pcap.body?.cancel();
});

Deno.test("http --live: an event stream whose client goes away frees its place at once", async () => {
  await using served = await tempDir();
  const { server, httpPort } = await serveLive(served.path);
  await using _server = server;
  // More streams, one after another, than may be open at once (16): each is closed by its client
  // after its first event, and the server must notice without waiting for its next write.
  for (let i = 0; i < 20; i++) {
    const events = await fetch(`http://127.0.0.1:${httpPort}/.live/events`);
    assert.equal(events.status, 200, `stream ${i}`);
    const reader = events.body!.getReader();
    assert.ok(((await reader.read()).value?.length ?? 0) > 0);
    await reader.cancel();
  }
});
