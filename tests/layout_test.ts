/**
 * The map of lib/ (docs/ARCHITECTURE.md) kept true: every import under lib/
 * points down the ranks or within its own folder, never sideways or up,
 * never into commands/ or tests/, and nothing outside node: modules.
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
const LEAVES = new Set(["version.ts"]);

const LIB = new URL("../lib/", import.meta.url).pathname;
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
  assert.equal(wrongImports(file, `export { y } from "../../commands/cli.ts";`).length, 1);
  assert.equal(wrongImports(file, `import { z } from "jsr:@std/path";`).length, 1);
  assert.equal(wrongImports(file, `const m = await import("../echo/server.ts");`).length, 1);
});
