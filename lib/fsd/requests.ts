/**
 * The two kinds of request an fsd/1 session serves, through the file store:
 * a read (RRQ, DRQ) sends a file's bytes or a directory's listing; a write
 * (WRQ) receives into a staged file that gets its name only once complete
 * and synced. With OPT before the request, OACK answers what was granted,
 * and the extension's options apply: integrity (SUM after the last DAT),
 * resume at an offset, directory creation, listings with digests.
 */

import { hasherFor, hashingSink, hashingSource } from "../bytes/sha256.ts";
import type { OpenedFile } from "../store/file_store.ts";
import { SERVED_DIGESTS } from "../store/digest_cache.ts";
import type { Files } from "../store/access.ts";
import { encodeAck, encodeOptions, Opcode } from "./codec.ts";
import {
  type Asked,
  BLKSIZE_RANGE,
  checksumOf,
  type Facts,
  grant,
  oackPairs,
  type TransferParams,
} from "./negotiation.ts";
import { DigestCheck } from "./integrity.ts";
import type { Request } from "./request.ts";
import { expectAck, receiveFile, sendFile } from "./window.ts";

/** The most a client may negotiate: the protocol's largest block, and a window of 64 blocks. */
export const SERVER_LIMITS: TransferParams = { blockSize: BLKSIZE_RANGE[1], windowSize: 64 };

/** The latest mtime an upload may ask for (2106, 32-bit seconds: what every file system keeps). */
const MAX_UPLOAD_MTIME = 2 ** 32 - 1;

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
export async function serveRead(request: Request, raw: Uint8Array, asked?: Asked): Promise<void> {
  const opened = await request.prepare(async () =>
    (await request.storeFor(request.op)).openRead(raw, { digests: asked?.digests })
  );
  if (!opened) return;
  const checksum = checksumOf(asked);
  // An unchanged file sent before needs no checksum again (a resume reads no prefix then).
  const known = checksum ? SERVED_DIGESTS.get(checksum, opened) : undefined;
  const hash = checksum && !known ? hasherFor(checksum, opened.size) : undefined;
  try {
    let params: TransferParams | undefined;
    let lead: Uint8Array | undefined;
    let pipeline = false;
    if (asked) {
      const offset = resumeOffset(asked, opened);
      const eager = asked.eager === true;
      pipeline = asked.pipeline === true;
      const facts = {
        size: opened.size,
        kind: opened.kind,
        mtime: mtimeSeconds(opened),
        offset,
        eager,
        pipeline,
      };
      // Eager or pipelined: the OACK goes out in the same write as the first data, and no ACK 0
      // is due (pipelined, no ACK at all).
      const granted = grantOack(request, asked, facts);
      params = granted.params;
      if (eager || pipeline) lead = granted.oack;
      else {
        await request.conn.write(granted.oack);
        await expectAck(request.conn, 0);
      }
      if (offset > 0) await opened.skip(offset, hash);
    }
    await sendFile(request.conn, hashingSource(opened.source, hash), {
      params,
      lead,
      unacknowledged: pipeline,
      onProgress: (n) => request.bytes = n,
      digest: known ? () => Promise.resolve(known) : hash && (async () => {
        const digest = await hash.digest();
        await SERVED_DIGESTS.remember(checksum!, opened, digest);
        return digest;
      }),
    });
    request.finish({ outcome: "ok", kind: opened.kind });
  } finally {
    hash?.close();
    opened.close();
  }
}

/** WRQ: into a staging file, published under its name only once complete and synced. */
export async function serveWrite(request: Request, raw: Uint8Array, asked?: Asked): Promise<void> {
  if (asked?.mkdir) return await serveMakeDirectory(request, raw, asked);
  let store: Files = request.store;
  const staged = await request.prepare(async () => {
    store = await request.storeFor("WRQ");
    return await store.stageWrite(raw, asked?.transferSize);
  });
  if (!staged) return;
  const checksum = checksumOf(asked);
  const hash = checksum && hasherFor(checksum, asked?.transferSize);
  // WRQ mtime: the time the file gets; beyond 32-bit seconds it is answered 0, not applied.
  const mtime = asked?.mtime && asked.mtime <= MAX_UPLOAD_MTIME ? asked.mtime : undefined;
  try {
    let params: TransferParams | undefined;
    if (asked) {
      params = await sendOack(request, asked, { size: asked.transferSize, mtime });
    } else {
      await request.conn.write(encodeAck(0));
    }
    await receiveFile(request.conn, hashingSink(staged.sink, hash), {
      params,
      maxBytes: store.maxUploadBytes || undefined,
      onProgress: (n) => request.bytes = n,
      sum: checksum && hash && new DigestCheck(checksum, hash, "client"),
      onComplete: () => staged.commit(mtime),
    });
    request.finish({ outcome: "ok", kind: "file" });
  } finally {
    hash?.close();
    await staged.discard();
  }
}

/** OPT mkdir=1 + WRQ: creates the directory; the OACK is the whole answer. */
async function serveMakeDirectory(request: Request, raw: Uint8Array, asked: Asked): Promise<void> {
  const made = await request.prepare(async () => {
    await (await request.storeFor("WRQ")).makeDirectory(raw, request.address);
    return true;
  });
  if (!made) return;
  await sendOack(request, asked, { made: true });
  request.finish({ outcome: "ok", kind: "directory" });
}

/** Grants what the OPT asked within the server's limits and records it for the log; the OACK to send. */
function grantOack(
  request: Request,
  asked: Asked,
  facts: Facts,
): { params: TransferParams; oack: Uint8Array } {
  const params = grant(asked, SERVER_LIMITS);
  request.params = params;
  return { params, oack: encodeOptions(Opcode.OACK, oackPairs(asked, params, facts)) };
}

/** Grants what the OPT asked within the server's limits, answers OACK, and records it for the log. */
async function sendOack(request: Request, asked: Asked, facts: Facts): Promise<TransferParams> {
  const { params, oack } = grantOack(request, asked, facts);
  await request.conn.write(oack);
  return params;
}
