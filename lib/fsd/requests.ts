/**
 * The two kinds of request an fsd/1 session serves, through the file store:
 * a read (RRQ, DRQ) sends a file's bytes or a directory's listing; a write
 * (WRQ) receives into a staged file that gets its name only once complete
 * and synced. With OPT before the request, OACK answers what was granted.
 */

import type { Op } from "../store/log.ts";
import { encodeAck, encodeOptions, Opcode } from "./codec.ts";
import { type Asked, BLKSIZE_RANGE, grant, oackPairs, type TransferParams } from "./negotiation.ts";
import type { Session } from "./session.ts";
import { expectAck, receiveFile, sendFile } from "./window.ts";

/** The most a client may negotiate: the protocol's largest block, and a window of 64 blocks. */
export const SERVER_LIMITS: TransferParams = { blockSize: BLKSIZE_RANGE[1], windowSize: 64 };

/** RRQ and DRQ: a file's bytes, or a directory's listing. */
export async function serveRead(
  session: Session,
  op: Op,
  raw: Uint8Array,
  asked?: Asked,
): Promise<void> {
  const request = session.begin(op, raw);
  const opened = await session.prepare(async () => (await session.storeFor(op)).openRead(raw));
  if (!opened) return;
  try {
    let params: TransferParams | undefined;
    if (asked) {
      params = await sendOack(session, asked, opened.size);
      await expectAck(session.conn, 0);
    }
    await sendFile(session.conn, opened.source, { params, onProgress: (n) => request.bytes = n });
    session.finish({ outcome: "ok", kind: opened.kind });
  } finally {
    opened.close();
  }
}

/** WRQ: into a staging file, published under its name only once complete and synced. */
export async function serveWrite(session: Session, raw: Uint8Array, asked?: Asked): Promise<void> {
  const request = session.begin("WRQ", raw);
  let store = session.context.store;
  const staged = await session.prepare(async () => {
    store = await session.storeFor("WRQ");
    return await store.stageWrite(raw, asked?.transferSize);
  });
  if (!staged) return;
  try {
    let params: TransferParams | undefined;
    if (asked) {
      params = await sendOack(session, asked, asked.transferSize);
    } else {
      await session.conn.write(encodeAck(0));
    }
    await receiveFile(session.conn, staged.sink, {
      params,
      maxBytes: store.maxUploadBytes || undefined,
      onProgress: (n) => request.bytes = n,
      onComplete: () => staged.commit(),
    });
    session.finish({ outcome: "ok", kind: "file" });
  } finally {
    await staged.discard();
  }
}

/** Grants what the OPT asked within the server's limits, answers OACK, and records it for the log. */
async function sendOack(
  session: Session,
  asked: Asked,
  size: number | undefined,
): Promise<TransferParams> {
  const params = grant(asked, SERVER_LIMITS);
  await session.conn.write(encodeOptions(Opcode.OACK, oackPairs(asked, params, size)));
  session.request!.params = params;
  return params;
}
