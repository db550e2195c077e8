/**
 * What one fsd/1 block costs, next to what Deno's TCP costs (not part of CI).
 * Both in one process over 127.0.0.1: a bare ping-pong of a 518-byte frame
 * and a 4-byte answer (the floor for lock-step), then FileServer and
 * FsdClient moving a file of the same number of blocks.
 *
 * Then the same ping-pong between two Deno processes: the floor for
 * `fsd get --fsd1`, which runs as two processes; and, when a C compiler is
 * installed, bench/tcp_pingpong.c: the same floor outside Deno, sleeping in
 * read() as fsd and tftp-hpa do, and busy-polling, to show what the
 * wake-ups cost.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run bench/lockstep.ts [--mb 10]
 */

import { parseArgs } from "node:util";
import { FsdClient } from "../lib/fsd/client.ts";
import { FileServer } from "../lib/fsd/server.ts";

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "10" },
    "pingpong-server": { type: "string" },
  },
});

/** The frame side: `rounds` 518-byte frames, each after the 4-byte answer to the last. */
async function sendFrames(conn: Deno.TcpConn, rounds: number): Promise<void> {
  conn.setNoDelay(true);
  const frame = new Uint8Array(518);
  const answer = new Uint8Array(4);
  for (let i = 0; i < rounds; i++) {
    await conn.write(frame);
    for (let got = 0; got < 4;) got += (await conn.read(answer.subarray(got)))!;
  }
  conn.close();
}

/** The answering side: reads each frame and answers 4 bytes; returns the time taken in ms. */
async function answerFrames(conn: Deno.TcpConn, rounds: number): Promise<number> {
  conn.setNoDelay(true);
  const buffer = new Uint8Array(65536);
  const ack = new Uint8Array(4);
  const started = performance.now();
  for (let i = 0; i < rounds; i++) {
    for (let got = 0; got < 518;) got += (await conn.read(buffer))!;
    await conn.write(ack);
  }
  const ms = performance.now() - started;
  conn.close();
  return ms;
}

// The far side of the cross-process ping-pong: frames out, 4-byte answers in.
if (values["pingpong-server"]) {
  const rounds = Number(values["pingpong-server"]);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(listener.addr.port);
  await sendFrames(await listener.accept(), rounds);
  listener.close();
  Deno.exit(0);
}
const bytes = Number(values.mb) * 1_000_000;
const blocks = Math.ceil(bytes / 512);

async function pingPong(rounds: number): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = listener.accept().then((conn) => sendFrames(conn, rounds));
  const ms = await answerFrames(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    rounds,
  );
  await server;
  listener.close();
  return ms;
}

async function fsdDownload(): Promise<number> {
  const root = await Deno.makeTempDir({ prefix: "fsd-lockstep-" });
  await Deno.writeFile(`${root}/f`, new Uint8Array(bytes));
  const server = await FileServer.start({ root, port: 0, hostname: "127.0.0.1" });
  const client = await FsdClient.connect("127.0.0.1", server.addr.port);
  const started = performance.now();
  await client.download("f", { write: (b) => Promise.resolve(b.length) });
  const ms = performance.now() - started;
  client.close();
  await server.close();
  await Deno.remove(root, { recursive: true });
  return ms;
}

/** The same ping-pong with the far side in another Deno process. */
async function crossProcessPingPong(rounds: number): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-net=127.0.0.1",
      new URL(import.meta.url).pathname,
      "--pingpong-server",
      String(rounds),
    ],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number((await reader.read()).value);
  const ms = await answerFrames(await Deno.connect({ hostname: "127.0.0.1", port }), rounds);
  await reader.cancel();
  await child.status;
  return ms;
}

const raw = await pingPong(blocks);
const fsd = await fsdDownload();
const row = (label: string, ms: number) =>
  console.log(
    `${label.padEnd(28)} ${(ms * 1000 / blocks).toFixed(1).padStart(6)} µs/block ${
      (bytes / ms / 1000).toFixed(1).padStart(7)
    } MB/s`,
  );
console.log(`${blocks} round trips of a 518-byte frame and a 4-byte answer over 127.0.0.1`);
row("bare Deno TCP ping-pong", raw);
row("fsd/1 FileServer + FsdClient", fsd);
row("bare ping-pong, two processes", await crossProcessPingPong(blocks));

/** bench/tcp_pingpong.c built with the system's C compiler; undefined without one. */
async function cPingPong(rounds: number, mode: "block" | "spin"): Promise<number | undefined> {
  const dir = await Deno.makeTempDir({ prefix: "fsd-pingpong-" });
  try {
    const binary = `${dir}/pingpong`;
    const source = new URL("./tcp_pingpong.c", import.meta.url).pathname;
    const built = await new Deno.Command("cc", { args: ["-O2", "-o", binary, source] }).output()
      .catch(() => undefined);
    if (!built?.success) return undefined;
    const out = await new Deno.Command(binary, { args: [String(rounds), mode] }).output();
    const usPerRound = Number(new TextDecoder().decode(out.stdout));
    return usPerRound * rounds / 1000;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
const cBlocking = await cPingPong(blocks, "block");
if (cBlocking === undefined) console.log("(no C compiler: the C rows are skipped)");
else {
  row("C ping-pong, two processes", cBlocking);
  row("  the same, busy-polling", (await cPingPong(blocks, "spin"))!);
}
