/**
 * The whole suite three times in a row while two busy loops load both cores,
 * as on a shared CI runner or a student's laptop (issue 23): `deno task
 * test:loaded`. Stops at the first failing run and exits with its status.
 * The busy loops are bounded (killed at the end, and by `timeout` after
 * 3 hours whatever happens).
 *
 *   deno task test:loaded            # 3 runs
 *   deno task test:loaded 1          # 1 run (CI)
 */

const runs = Number(Deno.args[0] ?? 3);
if (!Number.isInteger(runs) || runs < 1 || runs > 10) {
  console.error("usage: deno task test:loaded [RUNS 1-10]");
  Deno.exit(2);
}
const BUSY_SECONDS = 3 * 3600;
const loops = [1, 2].map(() =>
  new Deno.Command("timeout", {
    args: [String(BUSY_SECONDS), "sh", "-c", "while :; do :; done"],
    stdout: "null",
    stderr: "null",
  }).spawn()
);
const stopLoops = async () => {
  for (const loop of loops) {
    try {
      loop.kill("SIGTERM"); // timeout passes it on to the loop
    } catch {
      // already ended
    }
    await loop.status;
  }
};
/** The suite's run under way. */
let suite: Deno.ChildProcess | undefined;
// Ctrl-C (or a kill) ends the run without the finally below: neither the loops nor the suite may outlive it.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    try {
      suite?.kill(signal);
    } catch {
      // already ended
    }
    await suite?.status;
    await stopLoops();
    Deno.exit(signal === "SIGINT" ? 130 : 143);
  });
}
let code = 0;
try {
  for (let run = 1; run <= runs && code === 0; run++) {
    console.log(`== test:loaded: run ${run} of ${runs}, both cores busy`);
    const started = Date.now();
    suite = new Deno.Command(Deno.execPath(), {
      args: ["task", "test"],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const status = await suite.status;
    code = status.code;
    const seconds = Math.round((Date.now() - started) / 1000);
    console.log(`== test:loaded: run ${run}: ${code === 0 ? "ok" : "FAILED"} in ${seconds} s`);
  }
} finally {
  await stopLoops();
}
console.log(code === 0 ? `== test:loaded: ${runs} runs, 0 failures` : "== test:loaded: FAILED");
Deno.exit(code);
