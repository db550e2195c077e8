/**
 * The FUSE file systems tests build from tests/support/*.c (libfuse 3):
 * they need root (mount, umount), /dev/fuse, a C compiler and
 * libfuse3-dev, so their tests are ignored with a note elsewhere and fail
 * under CI where any of it is missing.
 */

import assert from "node:assert/strict";
import { isRoot } from "./cluster.ts";
import { assertTools, IN_CI, needs } from "./tools.ts";

/** Deno.test's `ignore` for a test of `what` that mounts a FUSE file system. */
export function fuseTest(what: string): { ignore: boolean } {
  const tools = needs("fuse3-dev");
  if (tools.ignore || isRoot() || IN_CI) return tools;
  console.error(`ignored: ${what} needs root (mount, umount)`);
  return { ignore: true };
}

/** Fails the test where `fuseTest` would have ignored it (under CI). */
export function assertFuseTest(what: string): void {
  assertTools("fuse3-dev");
  assert.ok(isRoot(), `${what} needs root`);
}

/** Runs `cmd` to the end, bounded in time: its stdout, or a throw with its stderr. */
export async function runBounded(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command("timeout", {
    args: ["-k", "5", "60", cmd, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${decode(out.stderr)}`);
  return decode(out.stdout);
}

/** Compiles tests/support/`name`.c into `dir`; the program's path. */
export async function buildFuse(name: string, dir: string): Promise<string> {
  const source = new URL(`./${name}.c`, import.meta.url).pathname;
  const program = `${dir}/${name}`;
  const flags = (await runBounded("pkg-config", ["--cflags", "--libs", "fuse3"])).split(/\s+/);
  await runBounded("cc", ["-o", program, source, ...flags]);
  return program;
}
