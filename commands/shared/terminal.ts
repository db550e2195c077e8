/**
 * Reading stdin with secrets in it. On a terminal, a secret is typed without
 * echo (the terminal in raw mode, Ctrl-C still interrupting, backspace
 * editing the line before it is handed on); from a pipe or a file it is
 * just the next line. Shared by `fsd user add`, the clients' password
 * prompt and the echo client in the login lab.
 */

import { closeQuietly } from "../../lib/bytes/source_sink.ts";
import { CommandError } from "./cli.ts";

const MAX_LINE_BYTES = 64 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Stdin as a byte reader, any line of which can be typed without echo. */
export class TerminalInput {
  readonly terminal = Deno.stdin.isTerminal();
  #chunk = new Uint8Array(4096);
  #pending: Uint8Array = new Uint8Array(0);
  /** The hidden line typed so far. */
  #line: number[] = [];
  #hidden = false;

  /**
   * Stops echoing until the end of the next line, also while a read is
   * already waiting (a prompt that arrives while input is awaited). Does
   * nothing off a terminal.
   */
  hide(): void {
    if (!this.terminal || this.#hidden) return;
    Deno.stdin.setRaw(true, { cbreak: true });
    this.#hidden = true;
    Deno.addSignalListener("SIGINT", this.#onInterrupt);
  }

  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#pending.length > 0) {
        const n = Math.min(p.length, this.#pending.length);
        p.set(this.#pending.subarray(0, n));
        this.#pending = this.#pending.subarray(n);
        return n;
      }
      const n = await Deno.stdin.read(this.#chunk).catch(() => null);
      if (n === null) {
        if (this.#line.length === 0) {
          this.#reveal();
          return null;
        }
        this.#endLine(false);
        continue;
      }
      const bytes = this.#chunk.subarray(0, n);
      if (this.#hidden) this.#type(bytes);
      else this.#pending = bytes.slice();
    }
  }

  /** Ends input: a waiting read returns null, and the terminal echoes again. */
  cancel(): void {
    this.#reveal();
    closeQuietly(Deno.stdin);
  }

  /** Raw keys of a hidden line: Enter ends it (as "\n"), backspace removes a byte. */
  #type(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i];
      if (!this.#hidden) {
        this.#pending = concatBytes(this.#pending, bytes.subarray(i));
        return;
      }
      if (byte === 0x0d || byte === 0x0a) this.#endLine(true);
      else if (byte === 0x7f || byte === 0x08) this.#line.pop();
      else if (this.#line.length < MAX_LINE_BYTES) this.#line.push(byte);
    }
  }

  #endLine(newline: boolean): void {
    const line = Uint8Array.from(newline ? [...this.#line, 0x0a] : this.#line);
    this.#line = [];
    this.#pending = concatBytes(this.#pending, line);
    this.#reveal();
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

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Stdin's lines, one at a time, any of which may be typed without echo. */
export class StdinLines {
  readonly input = new TerminalInput();
  #buffer = new Uint8Array(4096);
  #used = 0;
  #eof = false;

  get terminal(): boolean {
    return this.input.terminal;
  }

  /** The next line without its end ("\n" or "\r\n"), or null at the end of input. */
  async next(): Promise<string | null> {
    for (;;) {
      const end = this.#buffer.subarray(0, this.#used).indexOf(0x0a);
      if (end >= 0) {
        const text = decoder.decode(this.#buffer.subarray(0, end)).replace(/\r$/, "");
        this.#buffer.copyWithin(0, end + 1, this.#used);
        this.#used -= end + 1;
        return text;
      }
      if (this.#eof) {
        if (this.#used === 0) return null;
        const rest = decoder.decode(this.#buffer.subarray(0, this.#used));
        this.#used = 0;
        return rest;
      }
      if (this.#used === this.#buffer.length) {
        if (this.#buffer.length >= MAX_LINE_BYTES) throw new CommandError("input line too long");
        const grown = new Uint8Array(this.#buffer.length * 2);
        grown.set(this.#buffer);
        this.#buffer = grown;
      }
      const n = await this.input.read(this.#buffer.subarray(this.#used));
      if (n === null) this.#eof = true;
      else this.#used += n;
    }
  }
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
    lines.input.hide(); // before the prompt, so nothing typed after it can echo
    Deno.stderr.writeSync(encoder.encode(prompt));
  }
  const line = await lines.next();
  if (line === null || line === "") throw new CommandError(`no ${what} given`);
  return line;
}

/**
 * Stdin to a server and the server to stdout, byte for byte, except that on
 * a terminal the line typed after a prompt matching `prompt` is hidden.
 * Off a terminal both are stdin and stdout themselves.
 */
export class TerminalPipe {
  readonly input: { read(p: Uint8Array): Promise<number | null>; cancel?(): void };
  readonly output: { write(p: Uint8Array): Promise<number> };

  constructor(prompt: RegExp) {
    const input = new TerminalInput();
    if (!input.terminal) {
      this.input = Deno.stdin;
      this.output = Deno.stdout;
      return;
    }
    this.input = input;
    let line = "";
    const lineDecoder = new TextDecoder();
    this.output = {
      write(p) {
        // Look before writing: the prompt shows only once echo is off.
        line = (line + lineDecoder.decode(p, { stream: true })).slice(-256);
        for (const text of line.split("\n")) if (prompt.test(text)) input.hide();
        line = line.slice(line.lastIndexOf("\n") + 1);
        return Deno.stdout.write(p);
      },
    };
  }
}
