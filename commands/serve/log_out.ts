/**
 * The server's log on stdout, a line per event. Written straight to stdout,
 * as console.log would, but without its formatting of arguments: at a line
 * per request that cost a busy server about a tenth of its time with
 * thousands of small files (docs/PERFORMANCE.md). Like console.log, a stdout
 * that is gone (a closed pipe) is not the server's failure: the lines are
 * dropped and it goes on serving.
 */

import { writeAllSync } from "../../lib/bytes/source_sink.ts";

const encoder = new TextEncoder();
let stdoutGone = false;

/** Writes `text` and a newline to stdout. */
export function logLine(text: string): void {
  if (stdoutGone) return;
  try {
    writeAllSync((bytes) => Deno.stdout.writeSync(bytes), encoder.encode(text + "\n"));
  } catch (error) {
    // A closed pipe stays closed; any other failure loses this line only.
    if (error instanceof Deno.errors.BrokenPipe) stdoutGone = true;
  }
}
