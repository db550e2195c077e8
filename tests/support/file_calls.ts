/** Asks a process of its own which metadata calls a server would make, and why. */

import { probe } from "./probe.ts";

const PROBE = new URL("./fixtures/file_calls_probe.ts", import.meta.url).pathname;

/**
 * Whether `fsd serve` run with `permissions` would make its metadata calls
 * synchronously, and the mount table it could read (undefined: none).
 */
export function serverCalls(
  permissions: string[],
): Promise<{ sync: boolean; mountinfo?: string }> {
  return probe(PROBE, "/", permissions);
}
