/**
 * Commands as a person types them: each shell line on a pseudo-terminal
 * (util-linux script(1)), with `fsd` the launcher README.md's own
 * `deno install` line puts on the PATH. Deno prompts only on a terminal,
 * so this is where a permission prompt shows; `PROMPT` finds one.
 *
 * Tests that use it take `needs("script")`.
 */

import { assertTools } from "./tools.ts";

/** What Deno prints when it asks for a permission, or fails to ask. */
export const PROMPT = /Deno requests|Allow\? \[y\/n|Cannot prompt|requests \w+ access/;
/** What Deno prints when a permission is missing: the command's flags are not what it needs. */
export const DENIED = /NotCapable|Requires \w+ access|run again with --allow|--allow-all/;

const REPO = new URL("../../", import.meta.url).pathname;
const README = `${REPO}README.md`;

/** README.md's `deno install` line, exactly as written. */
export async function readmeInstallLine(): Promise<string> {
  const line = (await Deno.readTextFile(README)).split("\n")
    .find((l) => /^deno install .* -n fsd /.test(l));
  if (!line) throw new Error("README.md has no `deno install ... -n fsd ...` line");
  return line.trim();
}

/**
 * Runs README.md's install line with `--root ROOT` added (from the
 * repository, as the README says), and returns the PATH and environment
 * under which `fsd` is that launcher and `deno` this Deno.
 */
export async function installFsd(root: string): Promise<Record<string, string>> {
  const line = await readmeInstallLine();
  const args = line.split(/\s+/).slice(1);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [args[0], "--root", root, ...args.slice(1)],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`${line}: ${new TextDecoder().decode(output.stderr)}`);
  }
  const denoDir = Deno.execPath().replace(/\/[^/]*$/, "");
  return {
    PATH: `${root}/bin:${denoDir}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    SHELL: "/bin/bash",
    NO_COLOR: "1",
    TERM: "dumb",
  };
}

/** One shell line running on a pseudo-terminal; what it shows is read as it comes. */
export class PtyLine implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pump: Promise<void>;
  #done = false;
  #wake: () => void = () => {};
  readonly status: Promise<Deno.CommandStatus>;
  /** Everything the terminal showed so far. */
  output = "";

  constructor(line: string, options: { cwd: string; env: Record<string, string> }) {
    assertTools("script");
    const child = new Deno.Command("script", {
      args: ["-qec", line, "/dev/null"],
      cwd: options.cwd,
      env: options.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.status = child.status;
    this.#pump = (async () => {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        this.output += chunk;
        this.#wake();
      }
      this.#done = true;
      this.#wake();
    })();
  }

  /** Waits until `pattern` shows (true) or the line ends (false); after `ms`, an error. */
  waitFor(pattern: RegExp, ms: number, what: string): Promise<boolean> {
    return this.waitUntil((output) => pattern.test(output), ms, what);
  }

  /** Waits until `shown` holds for the output (true) or the line ends (false); after `ms`, an error. */
  async waitUntil(shown: (output: string) => boolean, ms: number, what: string): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!shown(this.output)) {
      if (this.#done) return false;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: nothing after ${ms} ms:\n${this.output}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return true;
  }

  /** What shows within `ms` more (or until the line ends). */
  async settle(ms: number): Promise<string> {
    await this.waitFor(/(?!)/, ms, "").catch(() => {});
    return this.output;
  }

  /** Types `keys` on the terminal. */
  async type(keys: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(keys));
  }

  /** Waits (at most `ms`) for the line to end; returns its exit code. */
  async finish(ms: number, what: string): Promise<number> {
    await this.waitFor(/(?!)/, ms, what);
    await this.#pump;
    return (await this.status).code;
  }

  /** Stops a line still running (script(1) passes the signal on) and drains it. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // already ended
    }
    await this.#writer.close().catch(() => {});
    await this.#pump;
    await this.status;
  }
}

/** A port a server's start lines name: what listens there ("fsd", "tftp", "http"; "" for echo and proxy). */
export interface Listening {
  transport: string;
  port: string;
}

/** Every port a server's start lines name, in order, as text or `--log json` lines. */
export function listening(output: string): Listening[] {
  const found: Listening[] = [];
  for (const line of output.split(/\r?\n|\r/)) {
    if (/^\{.*"event":"listening".*\}$/.test(line)) {
      const event = JSON.parse(line);
      found.push({ transport: event.transport, port: String(event.port) });
      continue;
    }
    const text = /listening on \S+ (?:UDP )?port (\d+)/.exec(line);
    if (!text) continue;
    const kind = /^(File|TFTP|HTTP) server /.exec(line.trimStart())?.[1];
    const transport = kind === "File" ? "fsd" : kind?.toLowerCase() ?? "";
    found.push({ transport, port: text[1] });
  }
  return found;
}

/** The ports a documented server line listens on, each with what listens there. */
export function serverPorts(line: string, documented: RegExp): Listening[] {
  const own = [...line.matchAll(/--(tftp|http) (\d+)/g)];
  const first = [...line.replace(/--(tftp|http) \d+/g, "").matchAll(documented)][0]?.[0];
  const serve = /(^|\s)serve\s/.test(line) && !/echo serve/.test(line);
  const transport = !serve
    ? ""
    : /--tftp-only/.test(line)
    ? "tftp"
    : /--http-only/.test(line) && own.every((m) => m[1] !== "http")
    ? "http"
    : "fsd";
  return [
    ...(first ? [{ transport, port: first }] : []),
    ...own.map((m) => ({ transport: m[1], port: m[2] })),
  ];
}

/**
 * Starts a documented server line on a pseudo-terminal without guessing a
 * free port: its own documented ports become 0, the ports it reaches
 * become the ones their servers were given (`ports`, documented to real),
 * and once its start lines show, `ports` maps its documented ports to the
 * ones it printed. A target port no server has yet is left as written (a
 * proxy connects only when a client comes). Fails on a Deno prompt or a
 * missing permission.
 */
export async function startDocumented(
  documentedLine: string,
  documented: RegExp,
  ports: Map<string, string>,
  options: { cwd: string; env: Record<string, string> },
): Promise<{ pty: PtyLine; ports: string[]; line: string }> {
  const own = serverPorts(documentedLine, documented);
  let positional = true; // the first documented port left once --tftp/--http are 0 is the server's own
  const line = documentedLine
    .replace(/--(tftp|http) \d+/g, "--$1 0")
    .replace(documented, (p) => {
      if (!positional) return ports.get(p) ?? p;
      positional = false;
      return "0";
    });
  const pty = new PtyLine(line, options);
  const failed = new RegExp(`(^|\n)fsd: |${PROMPT.source}|${DENIED.source}`);
  try {
    await pty.waitUntil(
      (output) => failed.test(output) || listening(output).length >= own.length,
      30_000,
      line,
    );
    const shown = pty.output;
    if (PROMPT.test(shown)) throw new Error(`${documentedLine}: a Deno prompt:\n${shown}`);
    if (DENIED.test(shown)) throw new Error(`${documentedLine}: permissions:\n${shown}`);
    const found = listening(shown);
    for (const { transport, port } of own) {
      const match = found.find((l) => l.transport === transport);
      if (!match) throw new Error(`${documentedLine} (run as: ${line}): no port shown:\n${shown}`);
      found.splice(found.indexOf(match), 1);
      ports.set(port, match.port);
    }
  } catch (error) {
    await pty[Symbol.asyncDispose]();
    throw error;
  }
  return { pty, ports: own.map((l) => l.port), line };
}
