/**
 * The client at work: many small files and whole trees in one command,
 * against the per-file loops of curl (python3 -m http.server) and tftp-hpa
 * (in.tftpd) and against wget -r (what integrity costs, and nginx's curl -Z
 * and wget -r: bench/compare_bench.ts). Hooked into `deno task bench`;
 * runnable alone:
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run bench/client_bench.ts [--quick]
 *
 * Peers come from Debian's packages (curl, wget, tftp-hpa, tftpd-hpa) and
 * python3; a missing one is skipped with a note, never faked.
 */

import { fsdServe, MAIN, service, timed } from "./support.ts";

export interface ClientBenchRow {
  group: string;
  what: string;
  bytes: number;
  ms: number;
  extra?: string;
}

export interface ClientBenchResult {
  rows: ClientBenchRow[];
  targets: { target: string; value: string; pass: boolean }[];
  notes: string[];
}

const KIB = 1024;
const MIB = 1024 * KIB;

async function have(command: string): Promise<boolean> {
  const found = await new Deno.Command("sh", { args: ["-c", `command -v ${command}`] })
    .output().catch(() => null);
  return found?.success ?? false;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Writes `count` files of `size` bytes under `directory` (in subdirectories of `perDir`), in 1 MiB writes. */
export async function makeFiles(directory: string, count: number, size: number, perDir = count) {
  const chunk = crypto.getRandomValues(new Uint8Array(Math.min(size, MIB)).subarray(0, 65536));
  const block = new Uint8Array(Math.min(size, MIB));
  for (let at = 0; at < block.length; at += chunk.length) {
    block.set(chunk.subarray(0, block.length - at), at);
  }
  for (let i = 0; i < count; i++) {
    const sub = perDir < count ? `${directory}/d${Math.floor(i / perDir)}` : directory;
    await Deno.mkdir(sub, { recursive: true });
    using file = await Deno.open(`${sub}/f${i}`, { write: true, create: true, truncate: true });
    for (let at = 0; at < size; at += block.length) {
      const part = block.subarray(0, Math.min(block.length, size - at));
      for (let done = 0; done < part.length;) done += await file.write(part.subarray(done));
    }
  }
}

/** The fsd CLI with the narrow permissions the README documents for get and put. */
function fsd(port: number, dir: string, args: string[]) {
  return timed(Deno.execPath(), [
    "run",
    "--quiet",
    `--allow-net=127.0.0.1:${port}`,
    `--allow-read=${dir}`,
    `--allow-write=${dir}`,
    MAIN,
    ...args,
  ]);
}

async function loop(count: number, run: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < count; i++) await run(i);
  return performance.now() - started;
}

/** `path` as a new empty directory. */
export async function fresh(path: string): Promise<string> {
  await Deno.remove(path, { recursive: true }).catch(() => {});
  await Deno.mkdir(path, { recursive: true });
  return path;
}

export async function clientBench(options: { quick?: boolean } = {}): Promise<ClientBenchResult> {
  const quick = options.quick ?? false;
  const result: ClientBenchResult = { rows: [], targets: [], notes: [] };
  const root = await Deno.makeTempDir({ prefix: "fsd-client-bench-root-" });
  const work = await Deno.makeTempDir({ prefix: "fsd-client-bench-work-" });
  const row = (group: string, what: string, bytes: number, ms: number, extra?: string) => {
    result.rows.push({ group, what, bytes, ms, extra });
    console.log(`  ${what}: ${ms.toFixed(0)} ms${extra ? ` (${extra})` : ""}`);
  };
  const server = await fsdServe(root);
  const python = await have("python3")
    ? await service("python3", [
      "-u",
      "-c",
      // http.server, printing its port once it listens, quiet otherwise
      "import http.server,functools,sys\n" +
      "class H(http.server.SimpleHTTPRequestHandler):\n  def log_message(self,*a): pass\n" +
      "h=functools.partial(H,directory=sys.argv[1])\n" +
      "s=http.server.ThreadingHTTPServer(('127.0.0.1',0),h)\n" +
      "print('port',s.server_address[1],flush=True)\ns.serve_forever()",
      root,
    ], /port (\d+)/)
    : undefined;
  if (!python) result.notes.push("python3 missing: no curl or wget comparison");
  try {
    // ---- 100 small files ----
    const smallCount = quick ? 20 : 100;
    console.log(`\nclient: ${smallCount} files of 1 KiB`);
    await makeFiles(`${root}/small`, smallCount, KIB);
    const names = Array.from({ length: smallCount }, (_, i) => `small/f${i}`);
    const bytes = smallCount * KIB;
    // Untimed: the server's first requests compile its code paths (a server that has been
    // running has them ready), which would be charged to whichever row came first.
    await fsd(server.port, work, [
      "get",
      "-r",
      "127.0.0.1",
      String(server.port),
      "small",
      await fresh(`${work}/warm`),
    ]);
    const recursive = (await fsd(server.port, work, [
      "get",
      "-r",
      "127.0.0.1",
      String(server.port),
      "small",
      await fresh(`${work}/r`),
      "--jobs",
      "4",
    ])).ms;
    row("client", `fsd get -r of ${smallCount} files --jobs 4`, bytes, recursive);
    const oneLane = (await fsd(server.port, work, [
      "get",
      "-r",
      "127.0.0.1",
      String(server.port),
      "small",
      await fresh(`${work}/r1`),
      "--jobs",
      "1",
    ])).ms;
    row("client", `fsd get -r of ${smallCount} files --jobs 1 (one connection)`, bytes, oneLane);
    const many = (await fsd(server.port, work, [
      "get",
      "127.0.0.1",
      String(server.port),
      ...names,
      "-o",
      await fresh(`${work}/o`),
      "--jobs",
      "4",
    ])).ms;
    row("client", `fsd get with ${smallCount} names (-o) --jobs 4`, bytes, many);
    if (python) {
      await fresh(`${work}/c`);
      const curl = await loop(smallCount, (i) =>
        timed("curl", [
          "-sf",
          "-o",
          `${work}/c/f${i}`,
          `http://127.0.0.1:${python.port}/small/f${i}`,
        ]));
      row("client", `${smallCount} curl calls to python3 http.server`, bytes, curl);
      const ratio = curl / recursive;
      result.targets.push({
        target: `${smallCount} x 1 KiB: one fsd get -r at least 5x faster than a curl loop`,
        value: `${ratio.toFixed(1)}x (fsd ${recursive.toFixed(0)} ms, curl ${curl.toFixed(0)} ms)`,
        pass: ratio >= 5,
      });
    }
    if (await have("tftp") && await have("in.tftpd")) {
      const port = freePort();
      const tftpd = new Deno.Command("in.tftpd", {
        args: ["--foreground", "--listen", "--address", `127.0.0.1:${port}`, "--secure", root],
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        await new Promise((resolve) => setTimeout(resolve, 300)); // it prints nothing when ready
        await fresh(`${work}/t`);
        const tftp = await loop(smallCount, (i) =>
          timed("tftp", [
            "-m",
            "binary",
            "127.0.0.1",
            String(port),
            "-c",
            "get",
            `small/f${i}`,
            `${work}/t/f${i}`,
          ]));
        row("client", `${smallCount} tftp-hpa calls to in.tftpd`, bytes, tftp);
      } finally {
        tftpd.kill("SIGTERM");
        await tftpd.status;
      }
    } else result.notes.push("tftp-hpa or tftpd-hpa missing: no tftp comparison");

    // ---- a tree of 64 KiB files, both ways ----
    const treeCount = quick ? 50 : 1000;
    console.log(`\nclient: a tree of ${treeCount} files of 64 KiB`);
    await makeFiles(`${root}/tree`, treeCount, 64 * KIB, 100);
    const treeBytes = treeCount * 64 * KIB;
    const down = (await fsd(server.port, work, [
      "get",
      "-r",
      "127.0.0.1",
      String(server.port),
      "tree",
      `${await fresh(`${work}/down`)}/tree`,
      "--jobs",
      "4",
    ])).ms;
    row("client", `fsd get -r of ${treeCount} x 64 KiB --jobs 4`, treeBytes, down);
    const downOneLane = (await fsd(server.port, work, [
      "get",
      "-r",
      "127.0.0.1",
      String(server.port),
      "tree",
      `${await fresh(`${work}/down1`)}/tree`,
      "--jobs",
      "1",
    ])).ms;
    row("client", `fsd get -r of ${treeCount} x 64 KiB --jobs 1`, treeBytes, downOneLane);
    const up = (await fsd(server.port, work, [
      "put",
      "-r",
      "127.0.0.1",
      String(server.port),
      `${work}/down/tree`,
      `up-${Date.now()}`,
      "--jobs",
      "4",
    ])).ms;
    row("client", `fsd put -r of ${treeCount} x 64 KiB --jobs 4`, treeBytes, up);
    const upOneLane = (await fsd(server.port, work, [
      "put",
      "-r",
      "127.0.0.1",
      String(server.port),
      `${work}/down/tree`,
      `up1-${Date.now()}`,
      "--jobs",
      "1",
    ])).ms;
    row("client", `fsd put -r of ${treeCount} x 64 KiB --jobs 1`, treeBytes, upOneLane);
    if (python && await have("wget")) {
      const wget = (await timed("wget", [
        "-r",
        "-np",
        "-nH",
        "-q",
        "-P",
        await fresh(`${work}/w`),
        `http://127.0.0.1:${python.port}/tree/`,
      ])).ms;
      row("client", `wget -r of ${treeCount} x 64 KiB from python3 http.server`, treeBytes, wget);
      result.targets.push({
        target: `${treeCount} x 64 KiB tree: fsd get -r against wget -r (ratio, reported)`,
        value: `${(wget / down).toFixed(1)}x (fsd ${down.toFixed(0)} ms, wget ${
          wget.toFixed(0)
        } ms)`,
        pass: down <= wget,
      });
    }

    // The integrity check's cost on a large download: bench/compare_bench.ts, side by side.
  } finally {
    await python?.stop();
    await server.stop();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(work, { recursive: true });
  }
  return result;
}

if (import.meta.main) {
  const result = await clientBench({ quick: Deno.args.includes("--quick") });
  console.log("\n| what | ms | notes |\n| --- | --- | --- |");
  for (const r of result.rows) console.log(`| ${r.what} | ${r.ms.toFixed(0)} | ${r.extra ?? ""} |`);
  console.log("\n| target | measured | holds |\n| --- | --- | --- |");
  for (const t of result.targets) {
    console.log(`| ${t.target} | ${t.value} | ${t.pass ? "yes" : "NO"} |`);
  }
  for (const note of result.notes) console.log(`note: ${note}`);
}
