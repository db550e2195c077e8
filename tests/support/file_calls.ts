/** Asks a process of its own which metadata calls a server would make under a directory. */

import { probe } from "./probe.ts";

const PROBE = new URL("./fixtures/file_calls_probe.ts", import.meta.url).pathname;

/** Whether `fsd serve` run with `permissions` would make its metadata calls under `dir` synchronously. */
export function syncUnder(dir: string, permissions: string[]): Promise<boolean> {
  return probe<boolean>(PROBE, dir, permissions);
}
