/** The CLI as a subprocess: main.ts run with exactly the permissions a test gives, long-running commands (serve, proxy, echo serve) waited for until they listen. */

import assert from "node:assert/strict";
import { tempDir } from "./files.ts";
import { withDeadline } from "./raw_client.ts";

const decoder = new TextDecoder();

// ---- the CLI as a subprocess ----

export const MAIN = new URL("../../main.ts", import.meta.url).pathname;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array;
}

/** Runs `deno run PERMISSIONS main.ts ARGS` to the end. */
export async function runFsd(
  permissions: string[],
  args: string[],
  options: { cwd?: string; stdin?: Uint8Array; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", ...permissions, MAIN, ...args],
    cwd: options.cwd,
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  if (options.stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(options.stdin);
    await writer.close();
  }
  const output = await child.output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
    stdoutBytes: output.stdout,
  };
}

export interface ServeProcess extends AsyncDisposable {
  child: Deno.ChildProcess;
  port: number;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the `count`th stdout line (past or future) matching `pattern` (the first by default). */
  waitForLine(pattern: RegExp, count?: number): Promise<string>;
  /** Sends `signal` and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Waits for the process to exit by itself (no signal sent). */
  exited(): Promise<Deno.CommandStatus>;
  /** Its stderr, whole, once it has exited. */
  stderr: Promise<string>;
}

/** How long a spawned server may take to print its ready line. */
const START_MS = 30_000;

/** Starts `fsd serve DIR PORT ...` with exactly the documented permissions (or `permissions`) and waits until it listens. */
export function spawnServe(
  dir: string,
  port = 0,
  extra: string[] = [],
  permissions = ["--allow-net", `--allow-read=${dir}`, `--allow-write=${dir}`],
): Promise<ServeProcess> {
  return spawnFsd(
    ["serve", dir, String(port), "--host", "127.0.0.1", ...extra],
    permissions,
    /^File server listening on |^\{.*"event":"listening","transport":"fsd"/,
  );
}

/** A server with its HTTP face too: `port` is fsd/1's, `httpPort` HTTP's. */
export type ServeWithHttp = ServeProcess & { httpPort: number };

/** `fsd serve DIR 0 --http 0 ...`, once both fsd/1 and HTTP listen. */
export async function spawnServeWithHttp(
  dir: string,
  extra: string[] = [],
  permissions = ["--allow-net", `--allow-read=${dir}`, `--allow-write=${dir}`],
): Promise<ServeWithHttp> {
  const server = await spawnFsd(
    ["serve", dir, "0", "--host", "127.0.0.1", "--http", "0", ...extra],
    permissions,
    /^HTTP server listening on |^\{.*"event":"listening","transport":"http"/, // the last start line
  );
  const fsd1 = await server.waitForLine(
    /^File server listening on |^\{.*"event":"listening","transport":"fsd"/,
  );
  const port = (line: string) => Number(/port"?:? ?(\d+)/.exec(line)![1]);
  return { ...server, port: port(fsd1), httpPort: server.port };
}

/**
 * Starts a long-running fsd command (serve, proxy, echo serve) with
 * `permissions`, collects its stdout lines, and waits for the line matching
 * `ready`, which must end with "port N". `script` stands in for main.ts; `cwd`: where it runs.
 */
export function spawnFsd(
  args: string[],
  permissions: string[],
  ready: RegExp,
  script = MAIN,
  cwd?: string,
): Promise<ServeProcess> {
  const run = ["run", "--quiet", "--no-prompt", ...permissions, script, ...args];
  return spawnReady(Deno.execPath(), run, ready, cwd, args[0]);
}

/** A child's stdout read line by line as it comes (see `watchLines`). */
export interface WatchedLines {
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the `count`th stdout line (past or future) matching `pattern` (the first by default); rejects if the child exits first. */
  waitForLine(pattern: RegExp, count?: number): Promise<string>;
  /** Its stderr, whole, once it has exited. */
  stderr: Promise<string>;
  /** Its exit status, once its output is read to the end. */
  status: Promise<Deno.CommandStatus>;
}

/** Reads `child`'s stdout (piped) line by line and its stderr (piped) whole; `what` names it in errors. */
export function watchLines(child: Deno.ChildProcess, what: string): WatchedLines {
  const lines: string[] = [];
  const waiters: {
    pattern: RegExp;
    /** Matches still to see before resolving. */
    left: number;
    resolve: (line: string) => void;
    reject: (e: Error) => void;
  }[] = [];
  const stderr = new Response(child.stderr).text();
  const pump = (async () => {
    let pending = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        lines.push(line);
        for (const waiter of [...waiters]) {
          if (waiter.pattern.test(line) && --waiter.left === 0) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(line);
          }
        }
      }
    }
    const error = new Error(`${what} exited: ${await stderr}`);
    for (const waiter of waiters.splice(0)) waiter.reject(error);
  })();
  const waitForLine = (pattern: RegExp, count = 1) => {
    const seen = lines.filter((line) => pattern.test(line));
    if (seen.length >= count) return Promise.resolve(seen[count - 1]);
    const left = count - seen.length;
    return new Promise<string>((resolve, reject) =>
      waiters.push({ pattern, left, resolve, reject })
    );
  };
  const status = Promise.all([child.status, pump, stderr]).then(([s]) => s);
  return { lines, waitForLine, stderr, status };
}

/**
 * Starts a server program (fsd, or a peer such as python3's http.server)
 * that prints the port it was given (port 0) on stdout, and waits for
 * that line, `ready`, with "port N" in it: no free port guessed.
 */
export async function spawnReady(
  program: string,
  args: string[],
  ready: RegExp,
  cwd?: string,
  what = program,
): Promise<ServeProcess> {
  const child = new Deno.Command(program, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const { lines, waitForLine, status, stderr } = watchLines(child, "server");
  let signalled = false;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    if (!signalled) {
      signalled = true;
      try {
        child.kill(signal);
      } catch {
        // already exited
      }
    }
    return status;
  };
  let listening: string;
  try {
    // A process start is CPU-bound (module loading): ten at once on a loaded 2-core machine took
    // over 10 s (deno task test:loaded). A server that fails to start exits and rejects at once.
    listening = await withDeadline(waitForLine(ready), `${what} start`, START_MS);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    child,
    port: Number(/port"?:? ?(\d+)\b/.exec(listening)![1]),
    lines,
    waitForLine,
    stop,
    exited: () => status,
    stderr,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/**
 * The permissions the installed and compiled commands run with (README's install line; the race
 * test checks that line and deno.json's compile task say exactly these). With them a server's
 * opens are race-free (lib/store/opened.ts).
 */
export const INSTALLED = ["--unstable-net", "--allow-all"];

/** The CLI's permission to reach a server on 127.0.0.1 `port`, and nothing else. */
export const net = (port: number) => `--allow-net=127.0.0.1:${port}`;
/** The CLI's permissions to read and write `dir`. */
export const rw = (dir: string) => [`--allow-read=${dir}`, `--allow-write=${dir}`];
/** A command's --json output: one object a line. */
export const jsonLines = (stdout: string) => stdout.trim().split("\n").map((l) => JSON.parse(l));

/** One line on stderr, starting with "fsd: " and matching `pattern`. */
export function oneErrorLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got: ${stderr}`);
  assert.match(lines[0], /^fsd: /);
  assert.match(lines[0], pattern);
}

/** A served directory, a separate client working directory, and `fsd serve` on the first. */
export async function servedAndWork() {
  const served = await tempDir();
  const work = await tempDir();
  const server = await spawnServe(served.path);
  return {
    served: served.path,
    work: work.path,
    server,
    port: server.port,
    async [Symbol.asyncDispose]() {
      await server.stop();
      await served[Symbol.asyncDispose]();
      await work[Symbol.asyncDispose]();
    },
  };
}

/** `fsd get 127.0.0.1 PORT NAME... -o WORK/in FLAGS...`, allowed to reach the server and WORK only. */
export function getInto(port: number, work: string, names: string[], flags: string[] = []) {
  return runFsd([net(port), ...rw(work)], [
    "get",
    "127.0.0.1",
    String(port),
    ...names,
    "-o",
    `${work}/in`,
    ...flags,
  ]);
}
