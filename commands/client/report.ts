/**
 * What a get or put job tells: with --json, one JSON object per file on
 * stdout as each one ends; otherwise the failures on stderr, and, when
 * stderr is a terminal (or with -v, never with -q), progress and a summary.
 * In scripts get and put print nothing but their data and errors. The exit
 * status says whether every file made it.
 */

import { errorMessage } from "../../lib/bytes/source_sink.ts";
import { PeerError } from "../../lib/store/errors.ts";
import { CommandError, formatBytes, UsageError } from "../shared/cli.ts";
import type { Flags } from "../shared/command.ts";
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
  /** get -r: the local file was already the server's (same size and mtime), nothing moved. */
  skipped?: true;
}

const encoder = new TextEncoder();

/** -q and -v of get and put, as curl and scp have them. */
export const VERBOSITY_FLAGS = {
  quiet: {
    type: "boolean",
    short: "q",
    help: "no progress and no summary, even on a terminal: data and errors only",
  },
  verbose: {
    type: "boolean",
    short: "v",
    help: `progress on a terminal, the summary and a line per file even
when stderr is not one`,
  },
} as const satisfies Flags;

export type Verbosity = "quiet" | "normal" | "verbose";

/** What -q and -v ask for (not both). */
export function verbosity(values: { quiet?: boolean; verbose?: boolean }): Verbosity {
  if (values.quiet && values.verbose) throw new UsageError("-q and -v do not mix");
  return values.quiet ? "quiet" : values.verbose ? "verbose" : "normal";
}

/** A file a rerun of -r left alone: already there with the same size and mtime. */
export function skippedReport(
  name: string,
  local: string,
  size: number,
  mtime?: number,
): FileReport {
  return {
    name,
    local,
    kind: "file",
    size,
    ...(mtime !== undefined && { mtime: new Date(mtime * 1000).toISOString() }),
    bytes: 0,
    seconds: 0,
    outcome: "ok",
    skipped: true,
  };
}

export class Reporter {
  readonly json: boolean;
  readonly reports: FileReport[] = [];
  readonly started = performance.now();
  /** Whether progress is drawn: on a terminal, unless -q. */
  readonly progress: boolean;
  /** Whether summaries are printed: on a terminal or with -v, never with -q or --json. */
  readonly tells: boolean;
  readonly #verbose: boolean;

  constructor(json: boolean, verbosity: Verbosity = "normal") {
    this.json = json;
    const terminal = Deno.stderr.isTerminal();
    this.progress = verbosity !== "quiet" && terminal;
    this.tells = !json && (verbosity === "verbose" || (verbosity === "normal" && terminal));
    this.#verbose = !json && verbosity === "verbose";
  }

  add(report: FileReport): void {
    report.seconds = Math.round(report.seconds * 1000) / 1000; // milliseconds are all a clock tells
    this.reports.push(report);
    if (this.json) Deno.stdout.writeSync(encoder.encode(JSON.stringify(report) + "\n"));
    if (this.#verbose && report.outcome === "ok" && report.kind === "file") {
      console.error(
        report.skipped
          ? `  ${shown(report.name)}: skipped: the same size and modification time`
          : `  ${shown(report.name)}: ${formatBytes(report.bytes)} in ${
            report.seconds.toFixed(3)
          } s`,
      );
    }
  }

  get failures(): FileReport[] {
    return this.reports.filter((r) => r.outcome === "failed");
  }

  /** For a job of several files: the summary and the failures on stderr; throws if any failed. */
  finish(verb: string): void {
    const files = this.reports.filter((r) => r.kind === "file");
    const ok = files.filter((r) => r.outcome === "ok");
    const skipped = ok.filter((r) => r.skipped).length;
    const bytes = ok.reduce((n, r) => n + r.bytes, 0);
    const seconds = (performance.now() - this.started) / 1000;
    const failed = this.failures;
    if (this.tells) {
      console.error(
        `${verb} ${ok.length - skipped} of ${files.length} file(s), ${formatBytes(bytes)} in ${
          seconds.toFixed(1)
        } s${skipped ? `; ${skipped} skipped: already the same` : ""}`,
      );
    }
    if (!this.json) {
      for (const f of failed) console.error(`  failed: ${shown(f.name)}: ${f.error}`);
    }
    if (failed.length > 0) {
      throw new CommandError(`${failed.length} of ${this.reports.length} failed`);
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
