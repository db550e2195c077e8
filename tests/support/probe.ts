/** Runs a probe script in a process of its own, with the permissions a test asks. */

import assert from "node:assert/strict";

/**
 * Runs `script` (a path) on `dir` under `permissions`, never prompting, and
 * parses what it prints as JSON. A process of its own: what a probe finds
 * depends on the permissions, and a test runs without --allow-all.
 */
export async function probe<T>(script: string, dir: string, permissions: string[]): Promise<T> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", ...permissions, script, dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout));
}
