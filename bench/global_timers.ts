/**
 * What the first touch of Deno's global timers costs (lib/timer.ts). Since
 * Deno 2.8 `setTimeout` and its kin are node:timers', loaded with node's
 * errors, inspect and validators the first time a program reads one of them;
 * `AbortSignal.timeout` runs on the web platform's timers, loaded already.
 * Each way is timed in a fresh process of its own, first use then second:
 *
 *   deno run --allow-run --allow-read --allow-write bench/global_timers.ts [ROUNDS]
 */

const WAYS: Record<string, string> = {
  "setTimeout + clearTimeout": "clearTimeout(setTimeout(() => {}, 1000));",
  "clearTimeout(undefined) alone": "clearTimeout(undefined);",
  "AbortSignal.timeout": "AbortSignal.timeout(1000);",
  "lib/timer.ts after + cancel": `(await import("${
    new URL("../lib/timer.ts", import.meta.url).href
  }")).after(1000, () => {}).cancel();`,
};

const rounds = Number(Deno.args[0] ?? 5);
for (const [name, code] of Object.entries(WAYS)) {
  const firsts: number[] = [];
  const seconds: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const script = `const t0 = performance.now(); ${code} const t1 = performance.now(); ${code}
console.log(JSON.stringify([t1 - t0, performance.now() - t1]));`;
    const file = await Deno.makeTempFile({ suffix: ".ts" });
    await Deno.writeTextFile(file, script);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", `--allow-read=${new URL("..", import.meta.url).pathname}`, file],
      stdout: "piped",
    }).output();
    await Deno.remove(file);
    const [first, second] = JSON.parse(new TextDecoder().decode(out.stdout));
    firsts.push(first);
    seconds.push(second);
  }
  const median = (list: number[]) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)];
  console.log(
    `${name}: first ${median(firsts).toFixed(2)} ms, second ${
      median(seconds).toFixed(3)
    } ms (medians of ${rounds} processes)`,
  );
}
