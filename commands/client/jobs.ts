/**
 * The job scheduler of get and put: one file alone (runSingle), or the
 * files of a job on one or more lanes (runFiles, --jobs), each file's
 * outcome handed to the Reporter in order.
 */

import { CommandError } from "../shared/cli.ts";
import { endsJob } from "../shared/signals.ts";
import { LaneUnavailable } from "./job_connection.ts";
import { type FileProgress, JobProgress } from "./job_progress.ts";
import { failedReport, failureText, type FileReport, type Reporter } from "./report.ts";

/** One file of a job of several: its report, a failure too (the job goes on); a stop signal ends it. */
async function settle(
  name: string,
  local: string,
  transfer: () => Promise<FileReport>,
): Promise<FileReport> {
  try {
    return await transfer();
  } catch (error) {
    if (endsJob(error) || error instanceof LaneUnavailable) throw error;
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
    if (endsJob(error)) throw error;
    if (!reporter.json) throw new CommandError(failureText(error, name), { cause: error });
    reporter.add(failedReport(name, local, error));
    throw new CommandError("", { exitCode: 1 });
  }
}

/**
 * The one-file form of every protocol: progress, the report (with --json),
 * the summary when the reporter tells (`said` names what moved where), a
 * failure as the one `fsd:` line.
 */
export async function runOneFile(
  reporter: Reporter,
  verb: "receiving" | "sending",
  file: { name: string; local: string; said: string },
  transfer: (progress: FileProgress) => Promise<FileReport>,
): Promise<void> {
  const progress = new JobProgress(verb, 1, undefined, reporter.progress);
  try {
    const report = await runSingle(reporter, file.name, file.local, () => transfer(progress));
    progress.stop();
    reporter.add(report);
    if (reporter.tells) console.error(`${file.said}: ${progress.summary(report.bytes)}`);
  } finally {
    progress.stop();
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
  const progress = new JobProgress(verb, files.length, total, reporter.progress);
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
