/**
 * What a get or put job tells: with --json, one JSON object per file on
 * stdout as each one ends; otherwise, for jobs of several files, a summary
 * and the list of failures on stderr. The exit status says whether every
 * file made it.
 */

import { errorMessage } from "../lib/bytes/source_sink.ts";
import { PeerError } from "../lib/store/errors.ts";
import { CommandError, formatBytes } from "./cli.ts";
import { ExitError } from "./interrupt.ts";
import { LaneUnavailable } from "./connection.ts";
import { type FileProgress, JobProgress } from "./job_progress.ts";
import { shown } from "./remote_names.ts";

export interface FileReport {
  /** The name on the server. */
  name: string;
  /** Where it is on this machine (a path, or "-" for stdin and stdout). */
  local: string;
  kind: "file" | "directory";
  size?: number;
  /** ISO 8601, UTC. */
  mtime?: string;
  /** Bytes moved over the network. */
  bytes: number;
  seconds: number;
  outcome: "ok" | "failed";
  /** Why it failed. */
  error?: string;
  /** The SHA-256 of the file, when computed. */
  sha256?: string;
  /** Whether the peer's digest was checked against it. */
  verified?: boolean;
}

const encoder = new TextEncoder();

export class Reporter {
  readonly json: boolean;
  readonly reports: FileReport[] = [];
  readonly started = performance.now();

  constructor(json: boolean) {
    this.json = json;
  }

  add(report: FileReport): void {
    this.reports.push(report);
    if (this.json) Deno.stdout.writeSync(encoder.encode(JSON.stringify(report) + "\n"));
  }

  get failures(): FileReport[] {
    return this.reports.filter((r) => r.outcome === "failed");
  }

  /** For a job of several files: the summary and the failures on stderr; throws if any failed. */
  finish(verb: string): void {
    const files = this.reports.filter((r) => r.kind === "file");
    const ok = files.filter((r) => r.outcome === "ok");
    const bytes = ok.reduce((n, r) => n + r.bytes, 0);
    const seconds = (performance.now() - this.started) / 1000;
    const failed = this.failures;
    if (!this.json) {
      console.error(
        `${verb} ${ok.length} of ${files.length} file(s), ${formatBytes(bytes)} in ${
          seconds.toFixed(1)
        } s`,
      );
      for (const f of failed) console.error(`  failed: ${shown(f.name)}: ${f.error}`);
    }
    if (failed.length > 0) {
      throw new ExitError(`${failed.length} of ${this.reports.length} failed`, 1);
    }
  }
}

/** The message for a failed transfer, as the one `fsd:` line or a failure entry. */
export function failureText(error: unknown, remote: string): string {
  if (error instanceof Deno.errors.IsADirectory) {
    return `${shown(remote)} is a directory: use fsd get -r to copy it, or fsd ls to list it`;
  }
  if (error instanceof PeerError) return `server error ${error.code}: ${error.message}`;
  return errorMessage(error);
}

/** The report of a file that did not make it. */
export function failedReport(name: string, local: string, error: unknown): FileReport {
  return {
    name,
    local,
    kind: "file",
    bytes: 0,
    seconds: 0,
    outcome: "failed",
    error: failureText(error, name),
  };
}

/** One file of a job of several: its report, a failure too (the job goes on); a stop signal ends it. */
async function settle(
  name: string,
  local: string,
  transfer: () => Promise<FileReport>,
): Promise<FileReport> {
  try {
    return await transfer();
  } catch (error) {
    if (error instanceof ExitError || error instanceof LaneUnavailable) throw error;
    return failedReport(name, local, error);
  }
}

/** The one-file form: a failure is the one `fsd:` line (with --json, its report and exit 1). */
export async function runSingle(
  reporter: Reporter,
  name: string,
  local: string,
  transfer: () => Promise<FileReport>,
): Promise<FileReport> {
  try {
    return await transfer();
  } catch (error) {
    if (error instanceof ExitError) throw error;
    if (!reporter.json) throw new CommandError(failureText(error, name), { cause: error });
    reporter.add(failedReport(name, local, error));
    throw new ExitError("", 1);
  }
}

/** One file of a job: where it is on the server and here, and its size when known. */
export interface JobFile {
  remote: string;
  local: string;
  size?: number;
}

/**
 * Moves the files of a job under one progress line, on every lane at once
 * (each lane one file at a time: --jobs). Reports go out in the order of
 * `files`, each as soon as it and all before it have ended, so the output
 * is the same whatever the lanes' timing. A stop signal ends every lane;
 * an extra lane that cannot connect hands its file back and ends.
 */
export async function runFiles<F extends JobFile, L>(
  reporter: Reporter,
  verb: string,
  files: F[],
  lanes: L[],
  transfer: (file: F, progress: FileProgress, lane: L) => Promise<FileReport>,
): Promise<void> {
  const sizes = files.map((f) => f.size);
  const total = sizes.every((n) => n !== undefined) ? sizes.reduce((a, n) => a + n!, 0) : undefined;
  const progress = new JobProgress(verb, files.length, total);
  const reports: (FileReport | undefined)[] = [];
  let next = 0;
  const handedBack: number[] = [];
  const take = () => handedBack.pop() ?? (next < files.length ? next++ : undefined);
  let reported = 0;
  let stop: unknown;
  const work = async (lane: L) => {
    const shown = lanes.length > 1 ? progress.lane() : progress;
    for (let at = take(); stop === undefined && at !== undefined; at = take()) {
      const file = files[at];
      try {
        reports[at] = await settle(file.remote, file.local, () => transfer(file, shown, lane));
      } catch (error) {
        // An extra lane that cannot connect leaves its file to the others.
        if (error instanceof LaneUnavailable) handedBack.push(at);
        else stop ??= error;
        return;
      }
      for (; reports[reported] !== undefined; reported++) reporter.add(reports[reported]!);
    }
  };
  try {
    await Promise.all(lanes.slice(0, Math.max(1, files.length)).map(work));
    // Files handed back after the first lane had run out of work: it takes them.
    if (stop === undefined && handedBack.length > 0) await work(lanes[0]);
  } finally {
    progress.stop();
  }
  if (stop !== undefined) throw stop;
}
