/**
 * The floor client of bench/tree_floor.ts: fetches tree/dN/fI from its floor
 * server into OUT over 4 connections, with fsd's rules added by flags
 * (`--staging`, `--rules`, `--exchange`, `--pipeline`, `--unbatched`):
 *
 *   deno run --allow-net=127.0.0.1:PORT --allow-read=OUT --allow-write=OUT bench/floor_client.ts PORT OUT FILES KIB [FLAGS]
 *
 * Its own module, importing only what it runs (no node: module, no bench
 * driver), so that its start-up is a bare Deno program's: with many small
 * files, start-up is most of the time.
 */

import { crc32Js } from "../lib/bytes/sha256.ts";
import { Buffered, connectNoDelay, readFull, treeNames, writeAll } from "./floor_wire.ts";

const LANES = 4;
/** Requests a pipelined lane keeps outstanding (sent in batches when half are answered). */
const PIPELINE_DEPTH = 8;
const encoder = new TextEncoder();

const [port, out, files, kib, ...rest] = Deno.args;
const flags = {
  staging: rest.includes("--staging"),
  rules: rest.includes("--rules"),
  exchange: rest.includes("--exchange"),
  pipeline: rest.includes("--pipeline"),
  unbatched: rest.includes("--unbatched"),
};
const SIZE = Number(kib) * 1024;

/** Fetches the floor's files (treeNames) from its server into OUT, 4 connections. */
async function floorClient(port: number, out: string, files: number, options: typeof flags) {
  const names = treeNames(files);
  for (const folder of new Set(names.map((name) => name.slice(0, name.lastIndexOf("/"))))) {
    Deno.mkdirSync(`${out}/${folder}`, { recursive: true });
  }
  let next = 0;
  if (options.pipeline) {
    return await Promise.all(Array.from({ length: LANES }, async () => {
      const conn = await connectNoDelay(port);
      const input = new Buffered(conn);
      const head = new Uint8Array(4);
      const data = new Uint8Array(SIZE + 4);
      const pending: string[] = [];
      for (;;) {
        const low = options.unbatched ? PIPELINE_DEPTH - 1 : PIPELINE_DEPTH / 2;
        if (pending.length <= low && next < names.length) {
          // Requests in one write, up to the depth
          const batch: Uint8Array[] = [];
          while (pending.length < PIPELINE_DEPTH && next < names.length) {
            const name = names[next++];
            pending.push(name);
            const bytes = encoder.encode(name);
            batch.push(new Uint8Array([bytes.length >> 8, bytes.length & 0xff]), bytes);
          }
          const all = new Uint8Array(batch.reduce((n, b) => n + b.length, 0));
          batch.reduce((at, b) => (all.set(b, at), at + b.length), 0);
          await writeAll(conn, all);
        }
        const name = pending.shift();
        if (name === undefined) break;
        const target = `${out}/${name}`;
        checkAbsent(target);
        await input.readFull(head);
        const size = new DataView(head.buffer).getUint32(0);
        const staged = stage(target, true);
        await input.readFull(data.subarray(0, size + 4));
        checkSum(data, size, name);
        publish(staged, data.subarray(0, size), target, true);
      }
      conn.close();
    })).then(() => {});
  }
  await Promise.all(Array.from({ length: LANES }, async () => {
    const conn = await connectNoDelay(port);
    const head = new Uint8Array(4);
    const data = new Uint8Array(SIZE + 1 + 4);
    let ackHeld = false;
    while (next < names.length) {
      const name = names[next++];
      const target = `${out}/${name}`;
      if (options.rules) checkAbsent(target);
      const bytes = encoder.encode(name);
      const request = new Uint8Array(1 + 2 + bytes.length);
      request[1] = bytes.length >> 8;
      request[2] = bytes.length & 0xff;
      request.set(bytes, 3);
      await writeAll(conn, request.subarray(ackHeld ? 0 : 1));
      await readFull(conn, head);
      const size = new DataView(head.buffer).getUint32(0);
      const staged = options.staging ? stage(target, options.rules) : undefined;
      await readFull(conn, data.subarray(0, size + (options.exchange ? 4 : 0)));
      if (options.exchange) {
        checkSum(data, size, name);
        ackHeld = true;
      }
      if (staged) publish(staged, data.subarray(0, size), target, options.rules);
      else {
        using file = Deno.openSync(target, { write: true, createNew: true });
        file.writeSync(data.subarray(0, size));
      }
    }
    if (ackHeld) await writeAll(conn, new Uint8Array(1));
    conn.close();
  }));
}

/** Each folder's names, read once (as fsd's sweep reads them). */
const listed = new Map<string, Set<string>>();

/** The client's rule: the local name is not taken (known from its folder's names, not a lookup each). */
function checkAbsent(target: string): void {
  const at = target.lastIndexOf("/");
  const folder = target.slice(0, at);
  let names = listed.get(folder);
  if (!names) {
    listed.set(
      folder,
      names = new Set(Array.from(Deno.readDirSync(folder), (e) => e.name)),
    );
  }
  if (names.has(target.slice(at + 1))) throw new Error(`exists: ${target}`);
}

/** The CRC-32 after a file's `size` bytes in `data` is theirs. */
function checkSum(data: Uint8Array, size: number, name: string): void {
  const sum = new DataView(data.buffer).getUint32(size);
  if (sum !== crc32Js(data.subarray(0, size))) throw new Error(`crc32 mismatch: ${name}`);
}

/** Writes `bytes` to the staging file and gives it the target's name ((rules) with an mtime set). */
function publish(
  staged: { file: Deno.FsFile; path: string },
  bytes: Uint8Array,
  target: string,
  rules: boolean,
): void {
  staged.file.writeSync(bytes);
  if (rules) staged.file.utimeSync(new Date(), new Date());
  Deno.linkSync(staged.path, target);
  Deno.removeSync(staged.path);
  staged.file.close();
}

/** fsd's staging file: created new beside the target, locked, (rules) checked to be the name's file. */
function stage(target: string, rules: boolean): { file: Deno.FsFile; path: string } {
  const path = `${target.slice(0, target.lastIndexOf("/"))}/.fsd-download-${crypto.randomUUID()}`;
  const file = Deno.openSync(path, { read: true, write: true, createNew: true });
  file.lockSync(true);
  if (rules && Deno.lstatSync(path).ino !== file.statSync().ino) throw new Error("swapped");
  return { file, path };
}

await floorClient(Number(port), out, Number(files), flags);
