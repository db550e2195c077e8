/**
 * What one file-system call costs on Deno, async against sync (issue 20
 * item 3; not part of CI): the calls a server makes to serve one small file
 * (realPath, stat, open, read, read to the end, close, the root's stat),
 * over 1,000 files of 64 KiB in 10 folders, one after another and as 4
 * requests at once. The async calls hand each call to one of Deno's
 * blocking threads and back; fsd's server keeps them (docs/PERFORMANCE.md,
 * "the tree against its floor"), so this is the price, measured.
 *
 *   deno run --allow-read --allow-write bench/fs_calls.ts [--files 1000]
 */

import { parseArgs } from "node:util";
import { makeFiles } from "./client_bench.ts";

const { values } = parseArgs({ options: { files: { type: "string", default: "1000" } } });
const files = Number(values.files);

type Way = "sync" | "async";

/** One request's calls on `path`, the way asked; `buffer` is reused. */
async function serveOne(way: Way, root: string, path: string, buffer: Uint8Array): Promise<void> {
  if (way === "sync") {
    const real = Deno.realPathSync(path);
    Deno.statSync(real);
    using file = Deno.openSync(real);
    while (file.readSync(buffer)) { /* to the end */ }
    Deno.statSync(root);
  } else {
    const real = await Deno.realPath(path);
    await Deno.stat(real);
    using file = await Deno.open(real);
    while (await file.read(buffer)) { /* to the end */ }
    await Deno.stat(root);
  }
}

async function timeCalls(way: Way, root: string, names: string[], lanes: number) {
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: lanes }, async () => {
    const buffer = new Uint8Array(64 * 1024);
    while (next < names.length) await serveOne(way, root, names[next++], buffer);
  }));
  return (performance.now() - start) * 1000 / names.length;
}

async function singleCall(name: string, names: string[], call: (path: string) => unknown) {
  const start = performance.now();
  for (const path of names) await call(path);
  console.log(
    `  ${name.padEnd(16)} ${((performance.now() - start) * 1000 / names.length).toFixed(1)} µs`,
  );
}

const root = await Deno.makeTempDir({ prefix: "fsd-fs-calls-" });
try {
  await makeFiles(`${root}/tree`, files, 64 * 1024, Math.max(1, files / 10));
  const perDir = Math.max(1, files / 10);
  const names = Array.from(
    { length: files },
    (_, i) => `${root}/tree/d${Math.floor(i / perDir)}/f${i}`,
  );
  console.log(`one call at a time, ${files} files (µs per call):`);
  await singleCall("stat", names, (p) => Deno.stat(p));
  await singleCall("statSync", names, (p) => Deno.statSync(p));
  await singleCall("realPath", names, (p) => Deno.realPath(p));
  await singleCall("realPathSync", names, (p) => Deno.realPathSync(p));
  console.log(
    `a server's calls for one file (realPath, stat, open, read to the end, close, root stat):`,
  );
  for (const lanes of [1, 4]) {
    for (let round = 0; round < 2; round++) {
      const sync = await timeCalls("sync", root, names, lanes);
      const async = await timeCalls("async", root, names, lanes);
      console.log(
        `  ${lanes} at once, round ${round + 1}: sync ${sync.toFixed(0)} µs, async ${
          async.toFixed(0)
        } µs per file`,
      );
    }
  }
} finally {
  await Deno.remove(root, { recursive: true });
}
