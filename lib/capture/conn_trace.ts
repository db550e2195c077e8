/**
 * One connection's trace, in the mode asked for: fsd packets one per line,
 * a hex dump or the printable text of every chunk, or a ladder diagram. The
 * proxy and the clients print these lines the same way.
 */

import { chunkEntry, FsdTracer } from "./trace.ts";
import { arrowLine, type Direction, Ladder, ladderHeader } from "./ladder.ts";
import type { TraceMode } from "./trace_modes.ts";

export type { Direction };

export { isTraceMode, TRACE_MODES, type TraceMode } from "./trace_modes.ts";

function clock(): string {
  return new Date().toISOString().slice(11, 23);
}

/** Traces connection `id`, handing each line to `print`; `ladderPrefix` puts `[id] ` before ladder lines too. */
export class ConnectionTrace {
  #mode: TraceMode;
  #id: number;
  #print: (line: string) => void;
  #decoders = { up: new FsdTracer(), down: new FsdTracer() };
  #offsets = { up: 0, down: 0 };
  #ladder: Ladder | undefined;
  #prefix: string;

  constructor(mode: TraceMode, id: number, print: (line: string) => void, ladderPrefix = true) {
    this.#mode = mode;
    this.#id = id;
    this.#print = print;
    this.#prefix = ladderPrefix ? `[${id}] ` : "";
    if (mode === "ladder") {
      this.#ladder = new Ladder((line) => print(this.#prefix + line));
      print(this.#prefix + ladderHeader());
    }
  }

  /** `chunk` went `direction` (up: client to server). */
  data(direction: Direction, chunk: Uint8Array): void {
    const arrow = direction === "up" ? ">" : "<";
    const head = `${clock()} [${this.#id}] ${arrow}`;
    switch (this.#mode) {
      case "none":
        return;
      case "fsd":
        for (const line of this.#decoders[direction].push(chunk)) this.#print(`${head} ${line}`);
        return;
      case "ladder": {
        const ladder = this.#ladder!;
        const broken = this.#decoders[direction].each(chunk, (p) => ladder.packet(direction, p));
        if (broken) this.#print(this.#prefix + arrowLine(direction, broken));
        return;
      }
      case "hex":
      case "text":
        this.#print(chunkEntry(this.#mode, head, chunk, this.#offsets[direction]));
        this.#offsets[direction] += chunk.length;
    }
  }

  /** The connection closed. */
  close(): void {
    this.#ladder?.close();
  }
}
