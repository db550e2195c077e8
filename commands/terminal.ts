/**
 * Reading lines and secrets from stdin. On a terminal, a secret is typed
 * without echo (the terminal in raw mode, Ctrl-C still interrupting); from
 * a pipe or a file it is one line. Shared by `fsd user add`, the clients'
 * password prompt and the echo client's login lab.
 */

const MAX_LINE_BYTES = 64 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Lines from stdin, one at a time, any of which may be read without echo. */
export class StdinLines {
  #buffer = new Uint8Array(4096);
  #used = 0;
  #eof = false;
  #hidden = false;
  readonly terminal = Deno.stdin.isTerminal();

  /**
   * Stops echoing from now on, until the end of the next line; also while a
   * read is already waiting (the echo client hides the answer to a prompt
   * that arrives while it waits for input). Does nothing off a terminal.
   */
  hide(): void {
    if (!this.terminal || this.#hidden) return;
    Deno.stdin.setRaw(true, { cbreak: true });
    this.#hidden = true;
    Deno.addSignalListener("SIGINT", this.#onInterrupt);
  }

  /** The next line without its end, or null at the end of input. */
  async next(): Promise<string | null> {
    for (;;) {
      const line = this.#takeLine();
      if (line !== undefined) return line;
      if (this.#eof) {
        this.#reveal();
        if (this.#used === 0) return null;
        const rest = decoder.decode(this.#buffer.subarray(0, this.#used));
        this.#used = 0;
        return rest;
      }
      if (this.#used === this.#buffer.length) {
        if (this.#buffer.length >= MAX_LINE_BYTES) throw new Error("input line too long");
        const grown = new Uint8Array(this.#buffer.length * 2);
        grown.set(this.#buffer);
        this.#buffer = grown;
      }
      const n = await Deno.stdin.read(this.#buffer.subarray(this.#used)).catch(() => null);
      if (n === null) this.#eof = true;
      else this.#used += this.#hidden ? this.#edit(this.#used, n) : n;
    }
  }

  /** Raw input: backspace removes the byte before it; returns how many bytes remain of the `n` new ones. */
  #edit(from: number, n: number): number {
    let at = from;
    for (let i = from; i < from + n; i++) {
      const byte = this.#buffer[i];
      if (byte === 0x7f || byte === 0x08) {
        if (at > 0 && this.#buffer[at - 1] !== 0x0a) at--;
      } else {
        this.#buffer[at++] = byte;
      }
    }
    return at - from;
  }

  #takeLine(): string | undefined {
    const view = this.#buffer.subarray(0, this.#used);
    let end = view.indexOf(0x0a);
    // Raw mode hands Enter over as "\r".
    const cr = this.#hidden ? view.indexOf(0x0d) : -1;
    if (cr >= 0 && (end < 0 || cr < end)) end = cr;
    if (end < 0) return undefined;
    const text = decoder.decode(
      view.subarray(0, end > 0 && view[end - 1] === 0x0d ? end - 1 : end),
    );
    this.#buffer.copyWithin(0, end + 1, this.#used);
    this.#used -= end + 1;
    if (this.#hidden) this.#reveal();
    return text;
  }

  /** Ends input: a waiting read returns (null), and the terminal echoes again. */
  close(): void {
    this.#reveal();
    this.#eof = true;
    try {
      Deno.stdin.close();
    } catch {
      // already closed
    }
  }

  #reveal(): void {
    if (!this.#hidden) return;
    this.#hidden = false;
    Deno.removeSignalListener("SIGINT", this.#onInterrupt);
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(encoder.encode("\n"));
  }

  #onInterrupt = (): void => {
    this.#reveal();
    Deno.exit(130);
  };
}

/**
 * Reads a secret: prompted on stderr and typed without echo on a terminal,
 * else one line of stdin. An empty answer is an error.
 */
export async function readSecret(
  prompt: string,
  what = "password",
  lines = new StdinLines(),
): Promise<string> {
  if (lines.terminal) {
    lines.hide(); // before the prompt, so nothing typed after it can echo
    Deno.stderr.writeSync(encoder.encode(prompt));
  }
  const line = await lines.next();
  if (line === null || line === "") throw new Error(`no ${what} given`);
  return line;
}
