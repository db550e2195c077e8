/**
 * A TFTP sender thread (a Deno worker of `SendPool`, lib/tftp/send_pool.ts):
 * it runs one download at a time on a BlockingChannel, whose waits block
 * this thread and no one else's, reading the file the server opened through
 * its rules by the descriptor it holds. Its own socket is the transfer's ID;
 * the peer rules, the OACK, the windows and the timeouts are the server's
 * own (`awaitAckZero`, `sendFile`), and it tells the peer of a failure
 * itself, as the server's thread would.
 */

import { loadLibc } from "../net/libc.ts";
import { descriptorSource } from "../store/descriptor_source.ts";
import { awaitAckZero, sendFile } from "./blocks.ts";
import { BlockingChannel } from "./blocking_channel.ts";
import type { FromSender, SendJob, SendOutcome, ToSender } from "./send_pool.ts";
import { settleFailure, shutDown } from "./failure.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent<ToSender>) => void) | null;
  postMessage(message: FromSender): void;
}

/** Takes jobs from the pool until it is terminated; one runs at a time. */
export function sendInWorker(): void {
  const scope = globalThis as unknown as WorkerScope;
  let running: { id: number; channel: BlockingChannel; aborted: boolean } | undefined;
  scope.onmessage = (event) => {
    const message = event.data;
    if (message.type === "abort") {
      if (running?.id !== message.id) return;
      running.aborted = true;
      shutDown(running.channel);
      return;
    }
    const job = message.job;
    const channel = BlockingChannel.open(message.hostname, job.peer, { peerKnown: true });
    if (!channel) {
      scope.postMessage({ type: "done", id: job.id, outcome: { unavailable: true } });
      return;
    }
    const state = running = { id: job.id, channel, aborted: false };
    send(job, channel, () => state.aborted).then((outcome) => {
      running = undefined;
      scope.postMessage({ type: "done", id: job.id, outcome });
    });
  };
  scope.postMessage({ type: "ready" });
}

/** Runs `job` to its end on `channel`; never rejects. */
async function send(
  job: SendJob,
  channel: BlockingChannel,
  aborted: () => boolean,
): Promise<SendOutcome> {
  let dataMoved = false;
  try {
    const config = { params: job.params, retries: job.retries };
    const firstAnswerBy = channel.now() + job.firstAnswerMs;
    if (job.oack) await awaitAckZero(channel, job.oack, config, firstAnswerBy);
    dataMoved = true;
    const source = descriptorSource(loadLibc()!, job.fd);
    const bytes = await sendFile(channel, source, {
      ...config,
      firstAnswerBy: job.oack ? undefined : firstAnswerBy,
    });
    return { bytes, dataMoved };
  } catch (error) {
    return { failure: settleFailure(error, channel, aborted()), dataMoved };
  } finally {
    channel.close();
  }
}
