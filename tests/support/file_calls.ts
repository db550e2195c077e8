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

/**
 * The same, and for the files `small` and `large` in `dir`, whether each read
 * of the store's source (64 KiB each, to the end) was synchronous, and whether
 * the source offers `readSync` (a TFTP sender's reads straight into datagrams).
 */
export function serverReads(
  dir: string,
  permissions: string[],
): Promise<{
  sync: boolean;
  mountinfo?: string;
  reads: Record<"small" | "large", boolean[]>;
  readSync: Record<"small" | "large", boolean>;
}> {
  return probe(PROBE, dir, permissions);
}
