/**
 * One connection for a whole job: opened on first use, reused for every
 * file, opened again after a failure closed it, and switched to plain fsd/1
 * once if the server turns the options extension down. A stop signal
 * closes it, which ends the transfer in progress. `lanes` gives a job of
 * many files several connections to the same server (--jobs).
 */

import type { FsdClient } from "../../lib/fsd/client.ts";
import { FSD1, type TransferParams } from "../../lib/fsd/negotiation.ts";
import { OptionsRefusedError } from "../../lib/store/errors.ts";
import { NotAnswered } from "../../lib/fsd/pipeline.ts";
import { connectClient, type Target } from "./options.ts";
import type { Interruption } from "../shared/signals.ts";
import { LaneUnavailable } from "./jobs.ts";

/** Times a file is tried when its connection closes before its turn (another file's failure). */
const MAX_UNANSWERED_TRIES = 3;

/** Downloads at once on one connection of a job (--jobs connections): see `downloadLanes`. */
const DOWNLOADS_PER_CONNECTION = 8;

export class JobConnection implements Disposable {
  readonly target: Target;
  params: TransferParams;
  #client: FsdClient | undefined;
  #interruption: Interruption;
  #told: { fsd1: boolean };
  /** For an extra lane, the job's first: connected before this one, which may then be refused (LaneUnavailable). */
  #first: JobConnection | undefined;
  #opening: Promise<FsdClient> | undefined;

  constructor(
    target: Target,
    params: TransferParams,
    interruption: Interruption,
    told = { fsd1: false },
    first?: JobConnection,
  ) {
    this.target = target;
    this.params = params;
    this.#interruption = interruption;
    this.#told = told;
    this.#first = first;
  }

  /**
   * `count` connections for a job's files: this one first, then as many
   * more to the same server (opened on first use, with this one's params,
   * so a server that turned the extension down is asked in fsd/1 at once).
   * With `depth`, each connection is in the list that many times (in turn:
   * the first `count` are the connections), for as many downloads at once
   * on it: their requests go out ahead where the server pipelines reads,
   * else they take turns.
   */
  lanes(count: number, depth = 1): JobConnection[] & Disposable {
    const more = Array.from(
      { length: count - 1 },
      () => new JobConnection(this.target, this.params, this.#interruption, this.#told, this),
    );
    const connections = [this, ...more];
    const lanes = Array.from({ length: depth }, () => connections).flat();
    return Object.assign(lanes, {
      [Symbol.dispose]: () => more.forEach((lane) => lane[Symbol.dispose]()),
    });
  }

  /**
   * The lanes of a download job: `count` connections, each DOWNLOADS_PER_CONNECTION
   * times with the options extension (where pipelined reads may be granted), once
   * in plain fsd/1 (one request at a time anyway).
   */
  downloadLanes(count: number): JobConnection[] & Disposable {
    return this.lanes(count, this.extended ? DOWNLOADS_PER_CONNECTION : 1);
  }

  /** Whether the options extension is in use. */
  get extended(): boolean {
    return this.params !== FSD1;
  }

  /** Runs `use` on the connection; a refusal of the extension retries once in fsd/1. */
  async use<T>(use: (client: FsdClient, params: TransferParams) => Promise<T>): Promise<T> {
    try {
      return await this.#run(use);
    } catch (error) {
      if (!(error instanceof OptionsRefusedError) || this.params === FSD1) throw error;
      this.params = FSD1;
      if (!this.#told.fsd1 && Deno.stderr.isTerminal()) {
        console.error("fsd: the server speaks only fsd/1; using 512-byte blocks");
      }
      this.#told.fsd1 = true;
      return await this.#run(use);
    }
  }

  async #run<T>(use: (client: FsdClient, params: TransferParams) => Promise<T>): Promise<T> {
    for (let tries = 1;; tries++) {
      this.#interruption.check();
      const client = await this.#connected();
      const forget = this.#interruption.onStop(() => client.close());
      try {
        return await use(client, this.params);
      } catch (error) {
        // Closed under a download waiting its turn (another one's failure): again on a new one.
        if (error instanceof NotAnswered && tries < MAX_UNANSWERED_TRIES) continue;
        throw this.#interruption.explain(error);
      } finally {
        forget();
      }
    }
  }

  /** The open connection, opened (once, whoever asks) when there is none. */
  #connected(): Promise<FsdClient> {
    if (this.#client && !this.#client.closed) return Promise.resolve(this.#client);
    return this.#opening ??= this.#connect().finally(() => this.#opening = undefined);
  }

  async #connect(): Promise<FsdClient> {
    this.#client?.close();
    this.#client = undefined;
    // The first lane first: a server's per-address limit then refuses only extra lanes.
    if (this.#first) await this.#first.#connected().catch(() => {});
    try {
      this.#client = await connectClient(this.target);
      return this.#client;
    } catch (error) {
      const explained = this.#interruption.explain(error);
      if (this.#first && explained === error) throw new LaneUnavailable(error);
      throw explained;
    }
  }

  [Symbol.dispose](): void {
    this.#client?.close();
    this.#client = undefined;
  }
}
