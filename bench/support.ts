/** What the benchmark scripts share: starting services, timing commands, reading memory. */

import dgram from "node:dgram";

/** The fsd entry point, for running the real CLI. */
export const MAIN = new URL("../main.ts", import.meta.url).pathname;

export interface Service {
  child: Deno.ChildProcess;
  port: number;
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<Deno.CommandStatus>;
}

/**
 * Starts a long-running process and waits for the stdout line matching
 * `ready`, whose first group is the port. The rest of its output goes to
 * `onOutput` (or is drained), so it never blocks on a full pipe.
 */
export async function service(
  command: string,
  args: string[],
  ready: RegExp,
  onOutput: (text: string) => void = () => {},
): Promise<Service> {
  const child = new Deno.Command(command, { args, stdout: "piped", stderr: "inherit" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let port = 0;
  while (!port) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${command} ${args.join(" ")}: exited before it was ready`);
    seen += value;
    const match = ready.exec(seen);
    if (match) port = Number(match[1]);
  }
  const draining = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onOutput(value);
    }
  })();
  return {
    child,
    port,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      const status = await child.status;
      await draining;
      return status;
    },
  };
}

/**
 * From /proc/PID/status (read through cat: Deno guards other processes'
 * /proc entries behind --allow-all): VmRSS, the resident set now, or VmHWM,
 * its peak so far, in kB; 0 when the process is gone.
 */
export async function memoryKb(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): Promise<number> {
  const out = await new Deno.Command("cat", {
    args: [`/proc/${pid}/status`],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  const match = new RegExp(`${field}:\\s+(\\d+)`).exec(new TextDecoder().decode(out.stdout));
  return Number(match?.[1] ?? 0);
}

/** Runs a command to its end; its time in ms and the peak RSS seen (kB, sampled every 50 ms). */
export async function timed(
  command: string,
  args: string[],
): Promise<{ ms: number; peakKb: number }> {
  const started = performance.now();
  const child = new Deno.Command(command, { args, stdout: "null", stderr: "piped" }).spawn();
  let peakKb = 0;
  const sampler = setInterval(async () => peakKb = Math.max(peakKb, await memoryKb(child.pid)), 50);
  const output = await child.output();
  clearInterval(sampler);
  const ms = performance.now() - started;
  if (!output.success) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return { ms, peakKb };
}

/** `fsd get` of `remote` into `directory`, with the narrow permissions the README documents. */
export function fsdGet(port: number, remote: string, directory: string, extra: string[] = []) {
  return fsdClient("get", port, directory, [remote, `${directory}/${remote}`, "--force", ...extra]);
}

/** `fsd put` of `directory/local` as `local`, with the narrow permissions the README documents. */
export function fsdPut(port: number, local: string, directory: string, extra: string[] = []) {
  return fsdClient("put", port, directory, [`${directory}/${local}`, local, ...extra]);
}

function fsdClient(op: "get" | "put", port: number, directory: string, args: string[]) {
  return timed(Deno.execPath(), [
    "run",
    "--quiet",
    `--allow-net=127.0.0.1:${port}`,
    `--allow-read=${directory}`,
    `--allow-write=${directory}`,
    MAIN,
    op,
    "127.0.0.1",
    String(port),
    ...args,
  ]);
}

/**
 * `fsd serve ROOT 0` on 127.0.0.1 with its narrow permissions (or
 * `permissions`, for a server that needs others), once its output matches
 * `ready` (default: the "listening ... port N" line); with `raiseFileLimit`,
 * under a shell that first raises its descriptor limit (Deno cannot raise its
 * own).
 */
export function fsdServe(
  root: string,
  extra: string[] = [],
  onOutput?: (text: string) => void,
  options: { raiseFileLimit?: boolean; permissions?: string[]; ready?: RegExp } = {},
): Promise<Service> {
  const permissions = options.permissions ??
    ["--allow-net=127.0.0.1", `--allow-read=${root}`, `--allow-write=${root}`];
  const command = [
    Deno.execPath(),
    "run",
    "--quiet",
    ...permissions,
    MAIN,
    "serve",
    root,
    "0",
    "--host",
    "127.0.0.1",
    ...extra,
  ];
  const ready = options.ready ?? /port (\d+)\n/;
  if (!options.raiseFileLimit) return service(command[0], command.slice(1), ready, onOutput);
  const script = `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$0" "$@"`;
  return service("sh", ["-c", script, ...command], ready, onOutput);
}

/** A UDP port free right now on 127.0.0.1 (for servers that cannot be given port 0). */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** tftpd-hpa (`in.tftpd`, run as root) serving `root` on 127.0.0.1, blocks up to 65464 bytes. */
export async function startTftpd(root: string): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freeUdpPort();
  const child = new Deno.Command("in.tftpd", {
    args: ["-L", "-s", root, "-u", "root", "-B", "65464", "-a", `127.0.0.1:${port}`],
  }).spawn();
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** A command's wall time alone (`timed` also samples memory, which costs at these scales). */
export async function wallTime(command: string, args: readonly string[]): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command(command, { args: [...args], stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`${command} failed: ${new TextDecoder().decode(out.stderr)}`);
  return performance.now() - start;
}

/** curl downloading `file` from a TFTP server on 127.0.0.1 at `blockSize` (lock-step) to /dev/null. */
export function curlTftpGet(port: number, file: string, blockSize: number): [string, string[]] {
  return ["curl", [
    "-s",
    "--tftp-blksize",
    String(blockSize),
    "-o",
    "/dev/null",
    `tftp://127.0.0.1:${port}/${file}`,
  ]];
}

/** A named command line, for `bestOfRounds`. */
export type Row = readonly [string, readonly [string, readonly string[]]];

/**
 * Each row's wall times over `rounds` rounds, the rows interleaved within each round;
 * `prepare`, untimed, before each run (removing what the last one wrote, say).
 */
export async function timesOfRounds(
  rows: readonly Row[],
  rounds: number,
  prepare?: () => Promise<void>,
): Promise<Map<string, number[]>> {
  const times = new Map<string, number[]>(rows.map(([what]) => [what, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [what, [command, args]] of rows) {
      await prepare?.();
      times.get(what)!.push(await wallTime(command, args));
    }
  }
  return times;
}

/** Each row's best wall time over `rounds` rounds, the rows interleaved within each round. */
export async function bestOfRounds(
  rows: readonly Row[],
  rounds: number,
): Promise<Map<string, number>> {
  const times = await timesOfRounds(rows, rounds);
  return new Map([...times].map(([what, list]) => [what, Math.min(...list)]));
}

/** Prints each row's best and median of `times`. */
export function printTimes(times: Map<string, number[]>): void {
  for (const [what, list] of times) {
    const sorted = list.toSorted((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    console.log(`  ${what}: best ${sorted[0].toFixed(0)} ms, median ${median.toFixed(0)} ms`);
  }
}

const README = new URL("../README.md", import.meta.url).pathname;

/** The flags of README.md's `deno install ... -n fsd ...` line: what an installed `fsd` runs with. */
export async function installedFlags(): Promise<string[]> {
  const line = (await Deno.readTextFile(README)).split("\n")
    .find((l) => /^deno install .* -n fsd /.test(l));
  if (!line) throw new Error("README.md has no `deno install ... -n fsd ...` line");
  return line.trim().split(/\s+/).filter((word) => word.startsWith("--"));
}
