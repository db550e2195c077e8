/**
 * What Deno's permission check adds to a file call, with a scoped
 * permission against --allow-all: with `--allow-read=DIR --allow-write=DIR`
 * Deno looks the path up component by component (a readlink(2) each, on
 * the calling thread) before an open or a remove, and not before a link or
 * an lstat; with --allow-all it checks nothing. Run it both ways on the
 * same directory (best on a tmpfs, where the calls themselves are cheap):
 *
 *   deno run --allow-read=DIR --allow-write=DIR bench/permission_cost.ts DIR
 *   deno run --allow-all bench/permission_cost.ts DIR
 *
 * It makes 1,000 files in 10 folders under DIR/permission-cost as a client's
 * `get -r` stages them (create, link to the name, remove the staging name),
 * times each kind of call, prints µs per call (best of 5 rounds), and
 * removes what it made.
 */

const dir = Deno.args[0];
if (!dir) {
  console.error("usage: deno run ... bench/permission_cost.ts DIR");
  Deno.exit(2);
}
const root = `${dir}/permission-cost`;
const FILES = 1000;
const ROUNDS = 5;
const calls = ["create", "lstat", "link", "remove"] as const;
const best: Record<string, number> = {};

for (let round = 0; round < ROUNDS; round++) {
  Deno.mkdirSync(root);
  for (let d = 0; d < 10; d++) Deno.mkdirSync(`${root}/d${d}`);
  const staged = Array.from(
    { length: FILES },
    (_, i) => `${root}/d${i % 10}/.fsd-download-${crypto.randomUUID()}`,
  );
  const named = staged.map((_, i) => `${root}/d${i % 10}/f${i}`);
  const spent: Record<string, number> = {};
  const time = (call: string, body: (i: number) => void) => {
    const started = performance.now();
    for (let i = 0; i < FILES; i++) body(i);
    spent[call] = (performance.now() - started) * 1000 / FILES;
  };
  time("create", (i) => Deno.openSync(staged[i], { write: true, createNew: true }).close());
  time("lstat", (i) => Deno.lstatSync(staged[i]));
  time("link", (i) => Deno.linkSync(staged[i], named[i]));
  time("remove", (i) => Deno.removeSync(staged[i]));
  for (const call of calls) best[call] = Math.min(best[call] ?? Infinity, spent[call]);
  Deno.removeSync(root, { recursive: true });
}

const scoped = Deno.permissions.querySync({ name: "write" }).state !== "granted";
console.log(`${scoped ? "scoped --allow-read/--allow-write" : "--allow-all"}, µs a call:`);
for (const call of calls) console.log(`  ${call.padEnd(7)} ${best[call].toFixed(1)}`);
