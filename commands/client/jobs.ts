/**
 * The job scheduler of get and put: one file alone (runSingle), or the
 * files of a job on one or more lanes (runFiles, --jobs), each file's
 * outcome handed to the Reporter in order.
 */

import { CommandError } from "../shared/cli.ts";
import { endsJob } from "../shared/signals.ts";
import { type FileProgress, JobProgress } from "./job_progress.ts";
import { failedReport, failureText, type FileReport, type Reporter } from "./report.ts";

/**
 * An extra lane (--jobs) could not connect (a server's --max-per-ip, a
 * login refused, the server gone): its file goes back to the other lanes,
 * and the first lane, which never gives up, reports what went wrong.
 */
export class LaneUnavailable extends Error {
  constructor(cause: unknown) {
    super("extra connection unavailable", { cause });
  }
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
 * The files of a job, handed to the lanes as they are found: get -r lists
 * the tree on its first connection while the other lanes already move the
 * files of the directories listed so far. A slot may hold a report made
 * while finding (a directory), so that every report still goes out in the
 * order things were found, whatever the lanes' timing.
 */
export class FileFeed<F extends JobFile> {
  /** The files and, where undefined, a slot already reported (`early`). */
  readonly items: (F | undefined)[] = [];
  readonly early = new Map<number, FileReport>();
  #ended = false;
  #waiting: (() => void)[] = [];
  /** Hears each file added (the progress line grows). */
  onAdd: ((file: F) => void) | undefined;

  /** A feed of files all known already. */
  static of<F extends JobFile>(files: F[]): FileFeed<F> {
    const feed = new FileFeed<F>();
    feed.items.push(...files);
    feed.#ended = true;
    return feed;
  }

  get ended(): boolean {
    return this.#ended;
  }

  add(file: F): void {
    this.items.push(file);
    this.onAdd?.(file);
    this.#wake();
  }

  /** A report in the job's order that no lane moves (a directory made, or not). */
  report(report: FileReport): void {
    this.early.set(this.items.length, report);
    this.items.push(undefined);
    this.#wake();
  }

  /** No more files will come. */
  end(): void {
    this.#ended = true;
    this.#wake();
  }

  /** Resolves at the next add, report or end. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #wake(): void {
    for (const wake of this.#waiting.splice(0)) wake();
  }
}

export interface RunOptions {
  /** The lanes on the first lane's connection start only once this settles (it is busy listing until then). */
  firstLaneAfter?: Promise<unknown>;
}

/**
 * Moves the files of a job under one progress line, on every lane at once
 * (each lane one file at a time: --jobs). Reports go out in the order of
 * `files`, each as soon as it and all before it have ended, so the output
 * is the same whatever the lanes' timing. A stop signal ends every lane;
 * an extra lane that cannot connect hands its file back and ends. A feed
 * still growing is worked on as it grows.
 */
export async function runFiles<F extends JobFile, L>(
  reporter: Reporter,
  verb: string,
  files: F[] | FileFeed<F>,
  lanes: L[],
  transfer: (file: F, progress: FileProgress, lane: L) => Promise<FileReport>,
  options: RunOptions = {},
): Promise<void> {
  const feed = files instanceof FileFeed ? files : FileFeed.of(files);
  const known = feed.items.filter((f) => f !== undefined);
  const sizes = known.map((f) => f.size);
  const total = sizes.every((n) => n !== undefined) ? sizes.reduce((a, n) => a + n!, 0) : undefined;
  const progress = new JobProgress(verb, known.length, total, reporter.progress, !feed.ended);
  feed.onAdd = (file) => progress.grow(file.size);
  const reports: (FileReport | undefined)[] = [];
  let next = 0;
  const handedBack: number[] = [];
  const take = async (): Promise<number | undefined> => {
    for (;;) {
      const back = handedBack.pop();
      if (back !== undefined) return back;
      for (; next < feed.items.length; next++) {
        const early = feed.early.get(next);
        if (early) reports[next] = early;
        else return next++;
      }
      flush();
      if (feed.ended) return undefined;
      await feed.changed();
    }
  };
  let reported = 0;
  const flush = () => {
    for (; reports[reported] !== undefined; reported++) reporter.add(reports[reported]!);
  };
  let stop: unknown;
  const work = async (lane: L) => {
    const shown = lanes.length > 1 ? progress.lane() : progress;
    for (let at = await take(); stop === undefined && at !== undefined; at = await take()) {
      const file = feed.items[at]!;
      try {
        reports[at] = await settle(file.remote, file.local, () => transfer(file, shown, lane));
      } catch (error) {
        // An extra lane that cannot connect leaves its file to the others.
        if (error instanceof LaneUnavailable) handedBack.push(at);
        else stop ??= error;
        return;
      }
      flush();
    }
  };
  const count = feed.ended ? Math.max(1, feed.items.length) : lanes.length;
  try {
    await Promise.all(
      lanes.slice(0, count).map(async (lane) => {
        // Every lane on the first one's connection (lanes may share connections).
        if (lane === lanes[0] && options.firstLaneAfter) await options.firstLaneAfter;
        await work(lane);
      }),
    );
    // Files handed back after the first lane had run out of work: it takes them.
    if (stop === undefined && handedBack.length > 0) await work(lanes[0]);
    flush();
  } finally {
    feed.onAdd = undefined;
    progress.stop();
  }
  if (stop !== undefined) throw stop;
}
