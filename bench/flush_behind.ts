/**
 * What a flush behind the writes costs and saves (lib/store/staging.ts,
 * FlushBehind): writes 1 GiB in 64 KiB writes into a new file in DIR, then
 * one fdatasync ("end"); or with an fdatasync of what is written every
 * EVERY MiB, one at a time, through the writing FsFile ("same") or a second
 * FsFile of the file ("second"), then the final one. Prints the times.
 *
 *   deno run --allow-read=DIR --allow-write=DIR bench/flush_behind.ts DIR end|same|second [EVERY]
 */

const [dir, mode = "second", everyArg = "32"] = Deno.args;
if (!dir || !["end", "same", "second"].includes(mode)) {
  console.error("usage: flush_behind.ts DIR end|same|second [EVERY_MIB]");
  Deno.exit(2);
}
const every = Number(everyArg) * 1024 * 1024;
const path = `${dir}/flush-behind-${crypto.randomUUID()}`;
const file = await Deno.open(path, { write: true, createNew: true });
const second = await Deno.open(path, { read: true });
const flusher = mode === "same" ? file : second;
const buffer = new Uint8Array(65536).fill(7);
let since = 0;
let flushes = 0;
let inFlight: Promise<void> | undefined;
const started = performance.now();
for (let i = 0; i < 16384; i++) {
  let n = 0;
  while (n < buffer.length) n += await file.write(buffer.subarray(n));
  since += n;
  if (mode !== "end" && since >= every && !inFlight) {
    since = 0;
    flushes++;
    inFlight = flusher.syncData().finally(() => inFlight = undefined);
  }
}
const written = performance.now();
await inFlight;
const before = performance.now();
await file.syncData();
const done = performance.now();
file.close();
second.close();
await Deno.remove(path);
const ms = (a: number, b: number) => `${(b - a).toFixed(0)} ms`;
console.log(
  `${mode} every ${everyArg} MiB: writes ${ms(started, written)}, final fdatasync ${
    ms(before, done)
  }, total ${ms(started, done)}, ${flushes} flushes behind`,
);
