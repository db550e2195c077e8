/**
 * Why `fsd --version` from source reads every module (docs/PERFORMANCE.md, "Issue 20, session
 * 37"): the smallest program that shows Deno's two ways of importing a module it was not started
 * with, under a narrow `--allow-read` (the `deno run` lines fsd documents give read access to the
 * served or written directory only, not to fsd's own files):
 *
 *   deno run --allow-read=/tmp bench/opaque_import.ts literal   # loads: Deno read it before start
 *   deno run --allow-read=/tmp bench/opaque_import.ts opaque    # "Requires read access to ..."
 *   deno run --allow-read=/tmp --unstable-lazy-dynamic-imports bench/opaque_import.ts literal  # same
 *
 * A string-literal `import()` is read (with all it imports) before the first line runs, whether
 * it runs or not: main.ts names each command so, and so every start reads 164 modules. A specifier
 * held in a variable is not read ahead, but then loading it needs read access to the file, which
 * the narrow lines do not give; `--unstable-lazy-dynamic-imports` makes the literal one lazy and
 * checked the same way. The installed command (`--allow-all`) has that access, and uses the flag.
 */

const how = Deno.args[0] ?? "literal";
try {
  if (how === "literal") await import("../lib/version.ts");
  else {
    // Another module than the literal one's: that one is in the graph already, read before start.
    const specifier = new URL("../lib/fsd/worker_name.ts", import.meta.url).href;
    await import(specifier);
  }
  console.log(`${how}: loaded`);
} catch (error) {
  console.log(`${how}: ${(error as Error).message}`);
}
