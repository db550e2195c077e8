/**
 * The two kinds of request an fsd/1 session serves, through the file store:
 * a read (RRQ, DRQ) sends a file's bytes or a directory's listing; a write
 * (WRQ) receives into a staged file that gets its name only once complete
 * and synced. With OPT before the request, OACK answers what was granted,
 * and the extension's options apply: integrity (SUM after the last DAT),
 * resume at an offset, directory creation, listings with digests.
 */

import { hashingSink, hashingSource, sha256For } from "../bytes/sha256.ts";
import type { OpenedFile } from "../store/file_store.ts";
import type { Files } from "../store/access.ts";
import type { Op } from "../store/log.ts";
import { encodeAck, encodeOptions, Opcode } from "./codec.ts";
import {
  type Asked,
  BLKSIZE_RANGE,
  type Facts,
  grant,
  oackPairs,
  type TransferParams,
} from "./negotiation.ts";
import { DigestCheck } from "./integrity.ts";
import type { Session } from "./session.ts";
import { expectAck, receiveFile, sendFile } from "./window.ts";

/** The most a client may negotiate: the protocol's largest block, and a window of 64 blocks. */
export const SERVER_LIMITS: TransferParams = { blockSize: BLKSIZE_RANGE[1], windowSize: 64 };

/** Whole seconds of a file's mtime, as the mtime option carries it. */
function mtimeSeconds(opened: OpenedFile): number | undefined {
  return opened.mtime ? Math.floor(opened.mtime.getTime() / 1000) : undefined;
}

/** Where a resumed read starts: the asked offset if the file is unchanged since (same mtime, long enough), else 0. */
function resumeOffset(asked: Asked, opened: OpenedFile): number {
  const offset = asked.offset ?? 0;
  if (offset === 0 || opened.kind !== "file") return 0;
  return asked.mtime === mtimeSeconds(opened) && offset <= opened.size ? offset : 0;
}

/** RRQ and DRQ: a file's bytes, or a directory's listing. */
export async function serveRead(
  session: Session,
  op: Op,
  raw: Uint8Array,
  asked?: Asked,
): Promise<void> {
  const request = session.begin(op, raw);
  const opened = await session.prepare(async () =>
    (await session.storeFor(op)).openRead(raw, { digests: asked?.digests })
  );
  if (!opened) return;
  const hash = asked?.sha256 ? sha256For(opened.size) : undefined;
  try {
    let params: TransferParams | undefined;
    if (asked) {
      const offset = resumeOffset(asked, opened);
      const facts = { size: opened.size, kind: opened.kind, mtime: mtimeSeconds(opened), offset };
      params = await sendOack(session, asked, facts);
      await expectAck(session.conn, 0);
      if (offset > 0) await opened.skip(offset, hash);
    }
    await sendFile(session.conn, hashingSource(opened.source, hash), {
      params,
      onProgress: (n) => request.bytes = n,
      digest: hash && (() => hash.digest()),
    });
    session.finish({ outcome: "ok", kind: opened.kind });
  } finally {
    hash?.close();
    opened.close();
  }
}

/** WRQ: into a staging file, published under its name only once complete and synced. */
export async function serveWrite(session: Session, raw: Uint8Array, asked?: Asked): Promise<void> {
  if (asked?.mkdir) return await serveMakeDirectory(session, raw, asked);
  const request = session.begin("WRQ", raw);
  let store: Files = session.context.store;
  const staged = await session.prepare(async () => {
    store = await session.storeFor("WRQ");
    return await store.stageWrite(raw, asked?.transferSize);
  });
  if (!staged) return;
  const hash = asked?.sha256 ? sha256For(asked.transferSize) : undefined;
  try {
    let params: TransferParams | undefined;
    if (asked) {
      params = await sendOack(session, asked, { size: asked.transferSize });
    } else {
      await session.conn.write(encodeAck(0));
    }
    await receiveFile(session.conn, hashingSink(staged.sink, hash), {
      params,
      maxBytes: store.maxUploadBytes || undefined,
      onProgress: (n) => request.bytes = n,
      checkDigest: hash && new DigestCheck(hash, "client").check,
      onComplete: () => staged.commit(),
    });
    session.finish({ outcome: "ok", kind: "file" });
  } finally {
    hash?.close();
    await staged.discard();
  }
}

/** OPT mkdir=1 + WRQ: creates the directory; the OACK is the whole answer. */
async function serveMakeDirectory(session: Session, raw: Uint8Array, asked: Asked): Promise<void> {
  session.begin("WRQ", raw);
  const made = await session.prepare(async () => {
    await (await session.storeFor("WRQ")).makeDirectory(raw, session.address);
    return true;
  });
  if (!made) return;
  await sendOack(session, asked, { made: true });
  session.finish({ outcome: "ok", kind: "directory" });
}

/** Grants what the OPT asked within the server's limits, answers OACK, and records it for the log. */
async function sendOack(session: Session, asked: Asked, facts: Facts): Promise<TransferParams> {
  const params = grant(asked, SERVER_LIMITS);
  await session.conn.write(encodeOptions(Opcode.OACK, oackPairs(asked, params, facts)));
  session.request!.params = params;
  return params;
}
