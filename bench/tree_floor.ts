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
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-sys=uid bench/tree_floor.ts [--files 1000] [--size KIB] [--rounds 5] [--dir DIR]
 *
 * `--size 1 --files 100` is the row of many small files: beside the floors it
 * runs `fsd get -o` with the 100 names and one `curl -Z` with 100 URLs.
 *
 * `--dir DIR` puts the downloads under DIR (a tmpfs, say) instead of the work
 * directory. `--serve ROOT` runs the floor server alone (the driver spawns it,
 * and bench/floor_client.ts as the floor client).
 */

import { parseArgs } from "node:util";
import { crc32 } from "node:zlib";
import { fsdServe, MAIN, type Service, service, wallTime } from "./support.ts";
import { have, nginxServe } from "./scale_bench.ts";
import { fresh, makeFiles } from "./client_bench.ts";
import { installedFlags } from "./support.ts";
import { Buffered, readFull, treeNames, writeAll } from "./floor_wire.ts";

const { values } = parseArgs({
  options: {
    files: { type: "string", default: "1000" },
    size: { type: "string", default: "64" },
    rounds: { type: "string", default: "5" },
    serve: { type: "string" },
    rules: { type: "boolean", default: false },
    exchange: { type: "boolean", default: false },
    sync: { type: "boolean", default: false },
    pipeline: { type: "boolean", default: false },
    dir: { type: "string" },
  },
});

const SELF = new URL(import.meta.url).pathname;
const CLIENT = new URL("./floor_client.ts", import.meta.url).pathname;
/** Each file's size (--size, KiB). */
const SIZE = Number(values.size) * 1024;
const decoder = new TextDecoder();

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

async function serveConn(conn: Deno.TcpConn, root: string, rules: boolean, exchange: boolean) {
  conn.setNoDelay(true); // as fsd's PacketConn: no Nagle wait behind a small answer
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
  console.log(
    `tree floor: ${files} x ${values.size} KiB in 10 folders, ${rounds} interleaved rounds`,
  );
  const perDir = Math.max(1, files / 10);
  await makeFiles(`${root}/tree`, files, SIZE, perDir);
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
          "--size",
          values.size!,
          "--serve",
          root,
          ...variant.server,
        ],
        /port (\d+)\n/,
      );
      services.push(server);
      rows.push([`floor, ${variant.what}`, deno, [
        ...narrow(server.port),
        CLIENT,
        String(server.port),
        out,
        String(files),
        values.size!,
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
    // The same files named on one command line into one directory (compare_bench's row of
    // many small files: one `fsd get -o` against one `curl -Z`).
    const names = treeNames(files);
    const fsdGetO = (port: number) => [MAIN, "get", "127.0.0.1", String(port), ...names, "-o", out];
    rows.push(["fsd get -o NAMES", deno, [...narrow(fsd.port), ...fsdGetO(fsd.port)]]);
    rows.push(["fsd get -o NAMES, installed", deno, [
      "run",
      "--quiet",
      ...installed,
      ...fsdGetO(fsdInstalled.port),
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
      if (await have("curl")) {
        rows.push(["curl -Z NAMES, nginx", "curl", [
          "-Zsf",
          "--output-dir",
          out,
          "--remote-name-all",
          ...names.map((name) => `http://127.0.0.1:${nginx.port}/${name}`),
        ]]);
      }
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
else await drive(Number(values.files), Number(values.rounds));
