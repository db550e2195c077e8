/**
 * The map (docs/ARCHITECTURE.md) kept true: every import under lib/ points
 * down the ranks or within its own folder, never sideways or up, never into
 * commands/ or tests/, and nothing outside node: modules; commands/ has the
 * eight entries on top, whose helper folders never import an entry, and
 * shared/ imports no other commands/ folder; no import cycles anywhere.
 */

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";

/** Each folder of lib/ and its rank: a folder imports only from lower ranks and itself. */
export const RANKS: Record<string, number> = {
  bytes: 0,
  net: 1,
  store: 2,
  auth: 2,
  fsd: 3,
  tftp: 3,
  http: 3,
  relay: 3,
  echo: 3,
  capture: 4,
};
/** Files directly under lib/ that anything may import (they import nothing). */
const LEAVES = new Set(["version.ts", "path.ts", "timer.ts"]);

const LIB = new URL("../../lib/", import.meta.url).pathname;
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^"';]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...await sources(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The folder of lib/ a path lies in ("" for lib/ itself), or undefined outside lib/. */
function folderOf(path: string): string | undefined {
  const rel = relative(LIB, path);
  if (rel.startsWith("..")) return undefined;
  const parts = rel.split("/");
  return parts.length === 1 ? "" : parts[0];
}

/** Every wrong-way import in `file`, as "file -> target: why". */
export function wrongImports(file: string, text: string): string[] {
  const problems: string[] = [];
  const from = folderOf(file)!;
  for (const match of text.matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2];
    const where = `${relative(LIB, file)} -> ${specifier}`;
    if (specifier.startsWith("node:")) continue;
    if (!specifier.startsWith(".")) {
      problems.push(`${where}: only node: modules and relative imports`);
      continue;
    }
    const target = normalize(join(dirname(file), specifier));
    const to = folderOf(target);
    if (to === undefined) problems.push(`${where}: lib/ imports nothing outside lib/`);
    else if (to === "") {
      if (!LEAVES.has(relative(LIB, target))) problems.push(`${where}: not a leaf of lib/`);
    } else if (to !== from) {
      if (from === "") problems.push(`${where}: a leaf of lib/ imports nothing`);
      else if (!(to in RANKS) || !(from in RANKS)) problems.push(`${where}: folder not on the map`);
      else if (RANKS[to] >= RANKS[from]) {
        problems.push(
          `${where}: ${from} (rank ${RANKS[from]}) may not import ${to} (rank ${RANKS[to]})`,
        );
      }
    }
  }
  return problems;
}

Deno.test("layout: every import under lib/ points down the map", async () => {
  const files = await sources(LIB);
  assert.ok(files.length > 20, "found lib/'s sources");
  const problems: string[] = [];
  for (const file of files) {
    const from = folderOf(file)!;
    if (from !== "" && !(from in RANKS)) {
      problems.push(`${relative(LIB, file)}: folder not on the map`);
    }
    if (from === "" && !LEAVES.has(relative(LIB, file))) {
      problems.push(`${relative(LIB, file)}: files under lib/ belong in a folder`);
    }
    problems.push(...wrongImports(file, await Deno.readTextFile(file)));
  }
  assert.deepEqual(problems, []);
});

Deno.test("layout: the check catches imports that point the wrong way", () => {
  const file = join(LIB, "store/example.ts");
  assert.deepEqual(wrongImports(file, `import { x } from "../bytes/mod.ts";`), []);
  assert.deepEqual(
    wrongImports(file, `import { x } from "./sandbox.ts";\nimport "node:path";`),
    [],
  );
  assert.equal(wrongImports(file, `import { x } from "../fsd/codec.ts";`).length, 1);
  assert.equal(wrongImports(file, `import type { X } from "../auth/accounts.ts";`).length, 1);
  assert.equal(wrongImports(file, `export { y } from "../../commands/shared/cli.ts";`).length, 1);
  assert.equal(wrongImports(file, `import { z } from "jsr:@std/path";`).length, 1);
  assert.equal(wrongImports(file, `const m = await import("../echo/server.ts");`).length, 1);
});

// ---- commands/: the eight entries on top, helper folders below ----

const ROOT = new URL("../../", import.meta.url).pathname;
const COMMANDS_DIR = join(ROOT, "commands/");
/** The helper folders of commands/; shared/ is the lowest: it imports no other commands/ folder. */
const COMMAND_HELPERS = new Set(["client", "serve", "proxy", "echo", "shared"]);

/** The relative imports of a file, as absolute paths. */
function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2];
    if (specifier.startsWith(".")) out.push(normalize(join(dirname(file), specifier)));
  }
  return out;
}

/** Every import in commands/ that breaks its rules, as "file -> target: why". */
export function wrongCommandImports(file: string, text: string): string[] {
  const problems: string[] = [];
  const rel = relative(COMMANDS_DIR, file);
  const folder = rel.includes("/") ? rel.split("/")[0] : undefined;
  if (folder !== undefined && !COMMAND_HELPERS.has(folder)) {
    problems.push(`${rel}: not a helper folder of commands/`);
  }
  for (const target of importsOf(file, text)) {
    const to = relative(COMMANDS_DIR, target);
    if (to.startsWith("..")) continue;
    const where = `${rel} -> ${to}`;
    const toFolder = to.includes("/") ? to.split("/")[0] : undefined;
    if (folder !== undefined && toFolder === undefined) {
      problems.push(`${where}: a helper folder never imports a command entry`);
    } else if (folder === "shared" && toFolder !== "shared") {
      problems.push(`${where}: shared/ imports no other commands/ folder`);
    }
  }
  return problems;
}

Deno.test("layout: commands/ has the eight entries on top; helpers never import an entry", async () => {
  const files = await sources(COMMANDS_DIR);
  const entries = files.filter((f) => !relative(COMMANDS_DIR, f).includes("/"))
    .map((f) => relative(COMMANDS_DIR, f)).sort();
  assert.deepEqual(entries, [
    "echo.ts",
    "get.ts",
    "ls.ts",
    "proxy.ts",
    "put.ts",
    "serve.ts",
    "user.ts",
    "wireshark.ts",
  ]);
  const problems: string[] = [];
  for (const file of files) {
    problems.push(...wrongCommandImports(file, await Deno.readTextFile(file)));
  }
  assert.deepEqual(problems, []);
});

Deno.test("layout: the commands/ check catches a helper importing an entry, shared/ a helper", () => {
  const helper = join(COMMANDS_DIR, "client/example.ts");
  const shared = join(COMMANDS_DIR, "shared/example.ts");
  assert.deepEqual(wrongCommandImports(helper, `import { x } from "../shared/cli.ts";`), []);
  assert.equal(wrongCommandImports(helper, `import { get } from "../get.ts";`).length, 1);
  assert.equal(wrongCommandImports(shared, `import { x } from "../client/options.ts";`).length, 1);
  assert.equal(wrongCommandImports(shared, `import { x } from "../get.ts";`).length, 1);
  assert.deepEqual(wrongCommandImports(shared, `import { x } from "./cli.ts";`), []);
});

// ---- no import cycles ----

/** Every cycle of imports among `graph`'s files: each strongly connected group of two or more. */
export function importCycles(graph: Map<string, string[]>): string[][] {
  // Tarjan's algorithm, iterative over a bounded graph.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (start: string) => {
    const work: [string, number][] = [[start, 0]];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const [node, i] = top;
      const edges = graph.get(node) ?? [];
      if (i < edges.length) {
        top[1]++;
        const to = edges[i];
        if (!graph.has(to)) continue;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push([to, 0]);
        } else if (onStack.has(to)) {
          low.set(node, Math.min(low.get(node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent)!, low.get(node)!));
      }
      if (low.get(node) === index.get(node)) {
        const group: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          group.push(member);
        } while (member !== node);
        if (group.length > 1 || edges.includes(node)) cycles.push(group.sort());
      }
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

Deno.test("layout: no import cycles in lib/, commands/ and main.ts", async () => {
  const files = [...await sources(LIB), ...await sources(COMMANDS_DIR), join(ROOT, "main.ts")];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const rel = relative(ROOT, file);
    graph.set(rel, importsOf(file, await Deno.readTextFile(file)).map((t) => relative(ROOT, t)));
  }
  assert.deepEqual(importCycles(graph), []);
});

Deno.test("layout: the cycle check finds a cycle of two and of three, and none in a chain", () => {
  const graph = (edges: Record<string, string[]>) => new Map(Object.entries(edges));
  assert.deepEqual(importCycles(graph({ a: ["b"], b: ["c"], c: [] })), []);
  assert.deepEqual(importCycles(graph({ a: ["b"], b: ["a"], c: ["a"] })), [["a", "b"]]);
  assert.deepEqual(importCycles(graph({ a: ["b"], b: ["c"], c: ["a"] })), [["a", "b", "c"]]);
  assert.deepEqual(importCycles(graph({ a: ["a"] })), [["a"]]);
});

Deno.test("layout: every relative import in lib/, commands/ and main.ts names a file that exists (dynamic ones too: deno check does not load those)", async () => {
  const files = [...await sources(LIB), ...await sources(COMMANDS_DIR), join(ROOT, "main.ts")];
  const missing: string[] = [];
  for (const file of files) {
    for (const target of importsOf(file, await Deno.readTextFile(file))) {
      const exists = await Deno.stat(target).then((info) => info.isFile, () => false);
      if (!exists) missing.push(`${relative(ROOT, file)} -> ${relative(ROOT, target)}`);
    }
  }
  assert.deepEqual(missing, []);
  // The check itself: a dynamic import of a file that is not there is caught.
  const wrong = importsOf(join(ROOT, "commands/get.ts"), `await import("./client/nope.ts")`);
  assert.equal(await Deno.stat(wrong[0]).then(() => true, () => false), false);
});
