/**
 * Where a short `fsd` command's time goes on Deno (issue 20 items 3 and 4;
 * not part of CI): how much is loading fsd's modules, how much is V8
 * compiling each function the first time it runs, and why neither cache Deno
 * has keeps the second.
 *
 * Part 1, Deno and V8 alone, with generated programs (ms inside the process,
 * the median of --runs runs after one run that fills Deno's code cache):
 * - 800 small functions, each called once: as V8 compiles them by default
 *   (each at its first call: Deno's code cache holds only what is compiled
 *   when the module is, so every run compiles them again), and with
 *   `--v8-flags=--no-lazy` (all compiled with the module, so all cached);
 * - the same functions each written `(function ...)`, V8's hint to compile a
 *   function with its module: honoured in a .js file, lost in a .ts file
 *   (Deno's TypeScript emit drops the parentheses);
 * - `import("node:zlib")` alone, then alternately with and without
 *   `--no-lazy`: V8 refuses a code cache made under other flags, and Deno's
 *   cache of its Node layer is shared by every program of the user, so one
 *   flag for fsd would cost every other Deno program (and fsd) a recompile at
 *   each switch.
 *
 * Part 2, fsd (wall ms of whole processes, best and median of --rounds
 * interleaved rounds, README's install line's flags, a server with them on
 * 100 x 1 KiB): an empty script; `fsd get`'s modules loaded and not run;
 * `fsd get` of one file and of 100 with `-o`; the last three again with
 * `--no-lazy`, from a copy of the tree (its own cache entries, so that the
 * flag does not throw away the ones of this checkout).
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run bench/cold_code.ts [--rounds 15] [--runs 7] [--dir DIR]
 *
 * `--dir DIR` puts the files and downloads under DIR (a tmpfs, say).
 */

import { parseArgs } from "node:util";
import { fsdServe, installedFlags, MAIN, timesOfRounds } from "./support.ts";
import { makeFiles } from "./client_bench.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "15" },
    runs: { type: "string", default: "7" },
    dir: { type: "string" },
  },
});
const ROUNDS = Number(values.rounds);
const RUNS = Number(values.runs);
const FUNCTIONS = 800;
const SMALL_FILES = 100;
const REPO = new URL("..", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Runs `deno run ARGS`; its stdout, or throws with its stderr. */
async function deno(args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["run", ...args] }).output();
  if (!out.success) throw new Error(`deno run ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout);
}

/** A program of FUNCTIONS small functions, each called once, printing how long the calls took. */
function generated(parenthesized: boolean): string {
  const lines = [];
  for (let i = 0; i < FUNCTIONS; i++) {
    const body = `(a) { let s = 0; for (let j = 0; j < 3; j++) { s += (a * ${i} + j) % 7; }
      const o = { x: s, y: [a, ${i}], z: String(s) + "${i}" }; return o.x + o.y.length + o.z.length; }`;
    lines.push(parenthesized ? `const f${i} = (function${body});` : `function f${i}${body}`);
  }
  lines.push("let total = 0;", "const start = performance.now();");
  for (let i = 0; i < FUNCTIONS; i++) lines.push(`total += f${i}(${i});`);
  lines.push("console.log((performance.now() - start).toFixed(2), total);");
  return lines.join("\n");
}

const median = (list: number[]) => list.toSorted((a, b) => a - b)[Math.floor(list.length / 2)];

/** The median of the ms each run of `deno run ARGS` prints first, after one run not counted. */
async function inProcess(args: string[]): Promise<number> {
  await deno(args);
  const times = [];
  for (let run = 0; run < RUNS; run++) times.push(Number((await deno(args)).split(" ")[0]));
  return median(times);
}

async function part1(work: string): Promise<void> {
  console.log(
    `part 1: ${FUNCTIONS} functions called once; ms inside the process, median of ${RUNS}`,
  );
  await Deno.writeTextFile(`${work}/lazy.ts`, generated(false));
  await Deno.writeTextFile(`${work}/eager_flag.ts`, generated(false));
  await Deno.writeTextFile(`${work}/hinted.js`, generated(true));
  await Deno.writeTextFile(`${work}/hinted.ts`, generated(true));
  const rows: [string, string[]][] = [
    ["compiled lazily (V8's default), .ts", [`${work}/lazy.ts`]],
    ["--v8-flags=--no-lazy, .ts", ["--v8-flags=--no-lazy", `${work}/eager_flag.ts`]],
    ["written (function ...), .js", [`${work}/hinted.js`]],
    ["written (function ...), .ts", [`${work}/hinted.ts`]],
  ];
  for (const [what, args] of rows) {
    console.log(`  ${what.padEnd(40)} ${(await inProcess(args)).toFixed(2).padStart(7)} ms`);
  }
  const zlib = `${work}/zlib.ts`;
  await Deno.writeTextFile(
    zlib,
    `const start = performance.now(); await import("node:zlib");
     console.log((performance.now() - start).toFixed(2));`,
  );
  console.log(
    `  import("node:zlib"), the same flags each run: ${(await inProcess([zlib])).toFixed(2)} ms`,
  );
  const alternating = [];
  for (let run = 0; run < RUNS; run++) {
    alternating.push(Number(await deno(run % 2 ? ["--v8-flags=--no-lazy", zlib] : [zlib])));
  }
  console.log(
    `  import("node:zlib"), --no-lazy every other run: ${median(alternating).toFixed(2)} ms ` +
      `(runs: ${alternating.map((ms) => ms.toFixed(0)).join(", ")})`,
  );
  await inProcess([zlib]); // leaves the cache as the other programs of this user want it
}

/** A copy of the tree's sources, for runs whose flags would spoil this checkout's code cache. */
async function copyTree(to: string): Promise<string> {
  for (const path of ["main.ts", "deno.json", "lib", "commands"]) {
    const out = await new Deno.Command("cp", { args: ["-r", `${REPO}${path}`, `${to}/`] }).output();
    if (!out.success) throw new Error(`cp ${path}: ${decoder.decode(out.stderr)}`);
  }
  return `${to}/main.ts`;
}

/** A module that loads what `fsd get` loads from `main`, and runs none of it. */
function loadOnly(main: string): string {
  const dir = main.slice(0, -"main.ts".length);
  return [
    "main.ts",
    "commands/shared/cli.ts",
    "commands/get.ts",
    "commands/client/fsd_get.ts",
    "lib/store/errors.ts",
    "lib/bytes/source_sink.ts",
  ].map((path) => `import "${dir}${path}";`).join("\n");
}

async function part2(work: string): Promise<void> {
  const flags = await installedFlags();
  const root = `${work}/root`;
  await makeFiles(`${root}/small`, SMALL_FILES, 1024);
  const server = await fsdServe(root, [], undefined, { permissions: flags });
  try {
    const copy = await copyTree(await Deno.makeTempDir({ dir: work }));
    const empty = `${work}/empty.ts`;
    await Deno.writeTextFile(empty, "");
    await Deno.writeTextFile(`${work}/load.ts`, loadOnly(MAIN));
    await Deno.writeTextFile(`${work}/load_copy.ts`, loadOnly(copy));
    const names = Array.from({ length: SMALL_FILES }, (_, i) => `small/f${i}`);
    const port = String(server.port);
    const out = `${work}/out`;
    const removeOut = () => Deno.remove(out, { recursive: true }).catch(() => {});
    const get = (main: string, ...args: string[]) => [main, "get", "127.0.0.1", port, ...args];
    const noLazy = ["--v8-flags=--no-lazy", ...flags];
    const rows: [string, string[]][] = [
      ["an empty script", [empty]],
      ["fsd get's modules, loaded, not run", [...flags, `${work}/load.ts`]],
      ["fsd get of 1 KiB", [...flags, ...get(MAIN, "small/f0", "-o", out)]],
      [`fsd get of ${SMALL_FILES} x 1 KiB (-o)`, [...flags, ...get(MAIN, ...names, "-o", out)]],
      ["--no-lazy: the modules, loaded", [...noLazy, `${work}/load_copy.ts`]],
      ["--no-lazy: get of 1 KiB", [...noLazy, ...get(copy, "small/f0", "-o", out)]],
      [`--no-lazy: get of ${SMALL_FILES} x 1 KiB`, [...noLazy, ...get(copy, ...names, "-o", out)]],
    ];
    for (const [, args] of rows) {
      await deno(args); // fills the code cache
      await removeOut();
    }
    const times = await timesOfRounds(
      rows.map(([what, args]) => [what, [Deno.execPath(), ["run", ...args]]] as const),
      ROUNDS,
      removeOut,
    );
    console.log(`part 2: wall ms, best and median of ${ROUNDS} interleaved rounds`);
    for (const [what, list] of times) {
      const best = Math.min(...list).toFixed(1).padStart(6);
      console.log(
        `  ${what.padEnd(40)} best ${best}, median ${median(list).toFixed(1).padStart(6)}`,
      );
    }
  } finally {
    await server.stop();
  }
}

const work = await Deno.makeTempDir({ dir: values.dir, prefix: "fsd-cold-" });
try {
  await part1(work);
  await part2(work);
} finally {
  await Deno.remove(work, { recursive: true });
}
