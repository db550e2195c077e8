/** Running the CLI on a pseudo-terminal (util-linux `script`), for the no-echo prompts. */

import { MAIN } from "./cli.ts";
import { text } from "./files.ts";
import { assertTools } from "./tools.ts";

/** Runs `fsd ARGS` on a pseudo-terminal (util-linux `script`), typing each step's keys once its pattern shows. Tests that call it take `needs("script")`. */
export async function onTerminal(
  permissions: string[],
  args: string[],
  steps: { after: RegExp; type: string }[],
  cwd?: string,
): Promise<{ code: number; output: string }> {
  assertTools("script");
  const command = [Deno.execPath(), "run", "--quiet", "--no-prompt", ...permissions, MAIN, ...args]
    .map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  let output = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  for (const step of steps) {
    while (!step.after.test(output)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`no ${step.after} in: ${output}`);
      output += value;
    }
    output = output.replace(step.after, "<$&>");
    await writer.write(text.encode(step.type));
  }
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    output += value;
  }
  await writer.close().catch(() => {});
  const status = await child.status;
  await child.stderr.cancel();
  return { code: status.code, output };
}
