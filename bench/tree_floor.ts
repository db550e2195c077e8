/**
 * The floor of a tree download on Deno (issue 20 item 3; not part of CI): the
 * smallest server and client that move the 1,000 x 64 KiB tree over TCP on
 * Deno's own APIs, timed beside `wget -r -np` from nginx and `fsd get -r`,
 * then the same pair with fsd's rules added, one group at a time, so that
 * what each costs on Deno is measured and not guessed:
 *
 * - `plain`: a request is a name; the server opens and reads the file and
 *   answers its size and bytes; the client creates the name and writes them.
 * - `+ staging`: the client writes a locked staging file beside the name and
 *   links it (fsd's StagedFile: create new, lock, link, unlink).
 * - `+ client's file rules`: the local name looked up first, the staging
 *   name checked against the open file, the mtime set.
 * - `+ server's file rules`: the sandbox and checks (realPath inside the
 *   root, stat before the open, the root's stat after it, a log line).
 * - `(server's rules, sync calls)`: the same with synchronous calls, beside,
 *   for what the async calls' hand-offs to Deno's threads cost.
 * - `+ fsd/1 exchange`: the answer and the data with a CRC-32 after it in
 *   one write (fsd's eager read: no ACK 0), and the last ACK sent with the
 *   next request: fsd's one round trip per file.
 * - `+ pipelined requests`: no ACK at all, and each connection keeps 8
 *   requests under way, sent 4 or more to a write (fsd's pipelined reads);
 *   beside it, the same with one request per write.
 *
 * Every client runs 4 connections (fsd's default --jobs) with narrow
 * permissions, as `fsd get` does. What fsd loses against the last floor row
 * is fsd's own code; what that row loses against `plain` is the rules' cost.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-sys=uid bench/tree_floor.ts [--files 1000] [--rounds 5] [--dir DIR]
 *
 * `--dir DIR` puts the downloads under DIR (a tmpfs, say) instead of the work
 * directory. `--serve ROOT` and `--get PORT --out OUT` run one side alone
 * (the driver spawns them).
 */

import { parseArgs } from "node:util";
import { crc32 } from "node:zlib";
import { fsdServe, MAIN, type Service, service, wallTime } from "./support.ts";
import { have, nginxServe } from "./scale_bench.ts";
import { fresh, makeFiles } from "./client_bench.ts";
import { installedFlags } from "./support.ts";

const { values } = parseArgs({
  options: {
    files: { type: "string", default: "1000" },
    rounds: { type: "string", default: "5" },
    serve: { type: "string" },
    get: { type: "string" },
    out: { type: "string" },
    rules: { type: "boolean", default: false },
    staging: { type: "boolean", default: false },
    exchange: { type: "boolean", default: false },
    sync: { type: "boolean", default: false },
    pipeline: { type: "boolean", default: false },
    unbatched: { type: "boolean", default: false },
    dir: { type: "string" },
  },
});

const SELF = new URL(import.meta.url).pathname;
const LANES = 4;
/** Requests a pipelined lane keeps outstanding (sent in batches when half are answered). */
const PIPELINE_DEPTH = 8;
const SIZE = 64 * 1024;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

async function readFull(conn: Deno.Conn, into: Uint8Array): Promise<boolean> {
  for (let at = 0; at < into.length;) {
    const n = await conn.read(into.subarray(at));
    if (n === null) return false;
    at += n;
  }
  return true;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/**
 * Requests: 2 bytes of name length, then the name (with --exchange, after a
 * 1-byte last ACK of the previous file). Answers: 4 bytes of size, then the
 * bytes (with --exchange, and 4 of CRC-32 after them).
 */
async function floorServer(root: string, rules: boolean, exchange: boolean): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(`floor server on port ${listener.addr.port}`);
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
  for await (const conn of listener) {
    serveConn(conn, root, rules, exchange).catch(() => conn.close());
  }
}

/** Reads from `conn` through one buffer: several small requests cost one read. */
class Buffered {
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  constructor(readonly conn: Deno.Conn) {}
  /** Fills `into` whole; false at the end of the stream. */
  async readFull(into: Uint8Array): Promise<boolean> {
    let at = 0;
    while (at < into.length) {
      if (this.#start === this.#end) {
        if (into.length - at >= this.#buffer.length) {
          const n = await this.conn.read(into.subarray(at));
          if (n === null) return false;
          at += n;
          continue;
        }
        const n = await this.conn.read(this.#buffer);
        if (n === null) return false;
        this.#start = 0;
        this.#end = n;
      }
      const n = Math.min(into.length - at, this.#end - this.#start);
      into.set(this.#buffer.subarray(this.#start, this.#start + n), at);
      this.#start += n;
      at += n;
    }
    return true;
  }
}

async function serveConn(conn: Deno.Conn, root: string, rules: boolean, exchange: boolean) {
  const request = new Uint8Array(512);
  const answer = new Uint8Array(4 + SIZE + 1 + 4);
  const view = new DataView(answer.buffer);
  const input = new Buffered(conn);
  const read = (into: Uint8Array) => values.pipeline ? input.readFull(into) : readFull(conn, into);
  let first = true;
  for (;;) {
    // The previous file's last ACK (pipelined requests have none: the next request says it)
    const skip = exchange && !first && !values.pipeline ? 1 : 0;
    first = false;
    if (!(await read(request.subarray(0, skip + 2)))) break;
    const length = request[skip] << 8 | request[skip + 1];
    if (!(await read(request.subarray(0, length)))) break;
    const name = decoder.decode(request.subarray(0, length));
    let path = `${root}/${name}`;
    if (rules && values.sync) {
      path = Deno.realPathSync(path);
      if (!path.startsWith(`${root}/`)) throw new Error(`outside: ${name}`);
      if (!Deno.statSync(path).isFile) throw new Error(`not a file: ${name}`);
    } else if (rules) {
      path = await Deno.realPath(path);
      if (!path.startsWith(`${root}/`)) throw new Error(`outside: ${name}`);
      if (!(await Deno.stat(path)).isFile) throw new Error(`not a file: ${name}`);
    }
    const file = await Deno.open(path);
    let size = 0;
    for (;;) {
      const n = await file.read(answer.subarray(4 + size));
      if (n === null || n === 0) break;
      size += n;
    }
    file.close();
    if (rules) {
      if (values.sync) Deno.statSync(root);
      else await Deno.stat(root);
      console.log(`RRQ "${name}": sent file, ${size} bytes`);
    }
    view.setUint32(0, size);
    if (exchange) view.setUint32(4 + size, crc32(answer.subarray(4, 4 + size)));
    await writeAll(conn, answer.subarray(0, 4 + size + (exchange ? 4 : 0)));
  }
  conn.close();
}

/** Fetches tree/dN/fI (I < files, 100 per folder) from the floor server into OUT, 4 connections. */
async function floorClient(port: number, out: string, files: number, flags: typeof values) {
  const perDir = Math.max(1, files / 10);
  const names = Array.from({ length: files }, (_, i) => `tree/d${Math.floor(i / perDir)}/f${i}`);
  for (let d = 0; d < Math.ceil(files / perDir); d++) {
    Deno.mkdirSync(`${out}/tree/d${d}`, { recursive: true });
  }
  let next = 0;
  if (flags.pipeline) {
    return await Promise.all(Array.from({ length: LANES }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const input = new Buffered(conn);
      const head = new Uint8Array(4);
      const data = new Uint8Array(SIZE + 4);
      const pending: string[] = [];
      for (;;) {
        const low = flags.unbatched ? PIPELINE_DEPTH - 1 : PIPELINE_DEPTH / 2;
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
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const head = new Uint8Array(4);
    const data = new Uint8Array(SIZE + 1 + 4);
    let ackHeld = false;
    while (next < names.length) {
      const name = names[next++];
      const target = `${out}/${name}`;
      if (flags.rules) checkAbsent(target);
      const bytes = encoder.encode(name);
      const request = new Uint8Array(1 + 2 + bytes.length);
      request[1] = bytes.length >> 8;
      request[2] = bytes.length & 0xff;
      request.set(bytes, 3);
      await writeAll(conn, request.subarray(ackHeld ? 0 : 1));
      await readFull(conn, head);
      const size = new DataView(head.buffer).getUint32(0);
      const staged = flags.staging ? stage(target, flags.rules!) : undefined;
      await readFull(conn, data.subarray(0, size + (flags.exchange ? 4 : 0)));
      if (flags.exchange) {
        checkSum(data, size, name);
        ackHeld = true;
      }
      if (staged) publish(staged, data.subarray(0, size), target, flags.rules!);
      else {
        using file = Deno.openSync(target, { write: true, createNew: true });
        file.writeSync(data.subarray(0, size));
      }
    }
    if (ackHeld) await writeAll(conn, new Uint8Array(1));
    conn.close();
  }));
}

/** The client's rule: the local name is not taken. */
function checkAbsent(target: string): void {
  try {
    Deno.lstatSync(target);
    throw new Error(`exists: ${target}`);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** The CRC-32 after a file's `size` bytes in `data` is theirs. */
function checkSum(data: Uint8Array, size: number, name: string): void {
  const sum = new DataView(data.buffer).getUint32(size);
  if (sum !== crc32(data.subarray(0, size))) throw new Error(`crc32 mismatch: ${name}`);
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

interface Variant {
  what: string;
  server: string[];
  client: string[];
}

const VARIANTS: Variant[] = [
  { what: "plain", server: [], client: [] },
  { what: "+ staging", server: [], client: ["--staging"] },
  { what: "+ client's file rules", server: [], client: ["--staging", "--rules"] },
  { what: "+ server's file rules", server: ["--rules"], client: ["--staging", "--rules"] },
  {
    what: "  (server's rules, sync calls)",
    server: ["--rules", "--sync"],
    client: ["--staging", "--rules"],
  },
  {
    what: "+ fsd/1 exchange",
    server: ["--rules", "--exchange"],
    client: ["--staging", "--rules", "--exchange"],
  },
  {
    what: "+ pipelined requests",
    server: ["--rules", "--exchange", "--pipeline"],
    client: ["--staging", "--rules", "--exchange", "--pipeline"],
  },
  {
    what: "  (pipelined, a request per write)",
    server: ["--rules", "--exchange", "--pipeline"],
    client: ["--staging", "--rules", "--exchange", "--pipeline", "--unbatched"],
  },
];

async function drive(files: number, rounds: number): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "fsd-tree-floor-root-" });
  const work = await Deno.makeTempDir({ prefix: "fsd-tree-floor-work-" });
  // --dir: where the downloads go (a tmpfs leaves out ext4's cost of creating files
  // after the previous round deleted them, which every row pays alike).
  const out = values.dir ? `${values.dir}/fsd-tree-floor-out` : `${work}/out`;
  console.log(`tree floor: ${files} x 64 KiB in 10 folders, ${rounds} interleaved rounds`);
  await makeFiles(`${root}/tree`, files, SIZE, Math.max(1, files / 10));
  const deno = Deno.execPath();
  const narrow = (port: number) => [
    "run",
    "--quiet",
    `--allow-net=127.0.0.1:${port}`,
    `--allow-read=${out}`,
    `--allow-write=${out}`,
  ];
  const services: Service[] = [];
  const rows: [string, string, string[]][] = [];
  try {
    for (const variant of VARIANTS) {
      const server = await service(
        deno,
        [
          "run",
          "--quiet",
          "--allow-net=127.0.0.1",
          `--allow-read=${root}`,
          SELF,
          "--serve",
          root,
          ...variant.server,
        ],
        /port (\d+)\n/,
      );
      services.push(server);
      rows.push([`floor, ${variant.what}`, deno, [
        ...narrow(server.port),
        SELF,
        "--get",
        String(server.port),
        "--out",
        out,
        "--files",
        String(files),
        ...variant.client,
      ]]);
    }
    const fsd = await fsdServe(root);
    services.push(fsd);
    const fsdGet = (
      port: number,
    ) => [MAIN, "get", "-r", "127.0.0.1", String(port), "tree", `${out}/tree`];
    rows.push(["fsd get -r", deno, [...narrow(fsd.port), ...fsdGet(fsd.port)]]);
    // As installed by README's line: both ends with its flags (--allow-all: the server's
    // synchronous calls where the mounts allow, and no per-path permission checks).
    const installed = await installedFlags();
    const fsdInstalled = await fsdServe(root, [], undefined, { permissions: installed });
    services.push(fsdInstalled);
    rows.push(["fsd get -r, installed", deno, [
      "run",
      "--quiet",
      ...installed,
      ...fsdGet(fsdInstalled.port),
    ]]);
    if (await have("nginx") && await have("wget") && Deno.uid?.() === 0) {
      const nginx = await nginxServe(root, work, true);
      services.push(nginx);
      rows.unshift(["wget -r -np, nginx", "wget", [
        "-q",
        "-r",
        "-np",
        "-nH",
        "-P",
        out,
        `http://127.0.0.1:${nginx.port}/tree/`,
      ]]);
    } else console.log("  (nginx or wget missing, or not root: no wget row)");
    const times = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (const [what, command, args] of rows) {
        await fresh(out);
        const ms = await wallTime(command, args);
        times.set(what, [...(times.get(what) ?? []), ms]);
      }
    }
    const best = (what: string) => Math.min(...times.get(what)!);
    const median = (what: string) => {
      const sorted = [...times.get(what)!].sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length / 2)];
    };
    const peer = times.has(rows[0][0]) && rows[0][0].startsWith("wget") ? rows[0][0] : undefined;
    for (const [what] of rows) {
      const ratio = peer ? ` ${(best(peer) / best(what)).toFixed(2)}x of wget's speed` : "";
      console.log(
        `  ${what.padEnd(36)} best ${best(what).toFixed(0).padStart(5)} ms, median ${
          median(what).toFixed(0).padStart(5)
        } ms${ratio}`,
      );
    }
  } finally {
    for (const running of services) await running.stop();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(work, { recursive: true });
    if (values.dir) await Deno.remove(out, { recursive: true }).catch(() => {});
  }
}

if (values.serve) await floorServer(values.serve, values.rules!, values.exchange!);
else if (values.get) {
  await floorClient(Number(values.get), values.out!, Number(values.files), values);
} else await drive(Number(values.files), Number(values.rounds));
