/**
 * What Deno's permission checks add to a file's calls (issue 20 item 3; not
 * part of CI): the calls `fsd get` makes for each downloaded file (create a
 * staging file, lock it, lstat and fstat it, write 64 KiB, link it to its
 * name, unlink the staging name, set the mtime, close), 2,000 files in a
 * row, run once with --allow-all and once with the narrow permissions
 * README's `get` lines use (--allow-read=DIR --allow-write=DIR), each in a
 * process of its own. Without --allow-all, Deno resolves every path it
 * checks component by component with readlink(2), for the open (twice)
 * and for an fstat too (`strace -c` shows 17 readlinks a file here).
 *
 *   deno run --allow-read --allow-write --allow-run bench/permission_calls.ts [--dir DIR] [--files 2000]
 *
 * `--dir` is where the files go (a tmpfs shows the calls' own cost best).
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    dir: { type: "string" },
    files: { type: "string", default: "2000" },
    child: { type: "boolean", default: false },
  },
});
const files = Number(values.files);

/** The calls for `files` files in `dir`, three rounds; prints the best µs per file. */
function calls(dir: string): void {
  const data = new Uint8Array(65536);
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const start = performance.now();
    for (let i = 0; i < files; i++) {
      const staging = `${dir}/.staging-${i}`;
      const file = Deno.openSync(staging, { read: true, write: true, createNew: true });
      file.lockSync(true);
      Deno.lstatSync(staging);
      file.statSync();
      file.writeSync(data);
      Deno.linkSync(staging, `${dir}/f${i}`);
      Deno.removeSync(staging);
      file.utimeSync(1, 1);
      file.close();
    }
    best = Math.min(best, (performance.now() - start) / files * 1000);
    for (let i = 0; i < files; i++) Deno.removeSync(`${dir}/f${i}`);
  }
  console.log(best.toFixed(1));
}

if (values.child) {
  calls(values.dir!);
} else {
  const base = await Deno.makeTempDir({ dir: values.dir });
  // A few levels deep, as a download's directory is: each level is a readlink per check.
  const dir = `${base}/a/b/c`;
  await Deno.mkdir(dir, { recursive: true });
  const self = new URL(import.meta.url).pathname;
  const run = async (permissions: string[]) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, self, "--child", "--dir", dir, "--files", String(files)],
      stderr: "inherit",
    }).output();
    return new TextDecoder().decode(output.stdout).trim();
  };
  try {
    console.log(`one downloaded file's calls, ${files} files in ${dir}, best of 3 rounds:`);
    console.log(`  --allow-all: ${await run(["--allow-all"])} µs a file`);
    const narrow = [`--allow-read=${base}`, `--allow-write=${base}`];
    console.log(`  ${narrow.join(" ")}: ${await run(narrow)} µs a file`);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}
