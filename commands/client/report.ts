/**
 * What a get or put job tells: with --json, one JSON object per file on
 * stdout as each one ends; otherwise, for jobs of several files, a summary
 * and the list of failures on stderr. The exit status says whether every
 * file made it.
 */

import { errorMessage } from "../../lib/bytes/source_sink.ts";
import { PeerError } from "../../lib/store/errors.ts";
import { CommandError, formatBytes } from "../shared/cli.ts";
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
