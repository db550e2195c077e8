/**
 * Uploads over HTTP, every one through `FileStore.stageWrite` (staged,
 * synced, published with link(2) only when complete, never replacing):
 * `PUT /path`, a multipart `POST` to a directory (a form or dropped files,
 * each part streamed to its own staged file), and `MKCOL` or a form field
 * `mkdir` through `FileStore.makeDirectory`. A refusal is the status of the
 * store's error; a client that goes away leaves nothing.
 */

import { concatAll } from "../bytes/source_sink.ts";
import type { Files } from "../store/access.ts";
import { type BodyReader, copyInto } from "./body.ts";
import { boundaryOf, MultipartReader } from "./multipart.ts";
import { HttpError, statusOf } from "./respond.ts";
import { BadTarget } from "./target.ts";
import { parseName } from "../store/sandbox.ts";

/** What one upload (or new directory) became. */
export interface UploadResult {
  name: string;
  status: number;
  message: string;
  bytes: number;
}

/** PUT of `name` with the body in `body`; throws what refused it. */
export async function put(
  store: Files,
  name: string,
  body: BodyReader,
  declared: number | undefined,
  onProgress?: (bytes: number) => void,
): Promise<number> {
  const staged = await store.stageWrite(name, declared);
  try {
    const bytes = await copyInto(staged, () => body.read(), store.maxUploadBytes, onProgress);
    await staged.commit();
    return bytes;
  } finally {
    await staged.discard();
  }
}

/** The name `part` of directory `dir` would have, under the name rules. */
function childName(dir: string, part: string): string {
  const bytes = new TextEncoder().encode(dir === "" ? part : `${dir}/${part}`);
  if (part === "" || part.includes("/")) throw new BadTarget("name is not a plain file name");
  try {
    return parseName(bytes);
  } catch (error) {
    throw new BadTarget((error as Error).message);
  }
}

/**
 * A multipart POST to directory `dir`: every file part becomes a file of
 * that name; a `mkdir` field makes a directory. `csrf` must be the first
 * field and equal `token`. Each part's outcome is reported, refusals too.
 */
export async function postForm(
  store: Files,
  dir: string,
  contentType: string,
  body: BodyReader,
  token: string,
  onProgress?: (name: string, bytes: number) => void,
): Promise<UploadResult[]> {
  const reader = new MultipartReader(() => body.read(), boundaryOf(contentType));
  const results: UploadResult[] = [];
  let checked = false;
  for (let part = await reader.next(); part !== null; part = await reader.next()) {
    if (!checked) {
      if (part.field !== "csrf" || await text(reader) !== token) {
        throw new HttpError(403, "form refused: missing or wrong CSRF token (reload the page)");
      }
      checked = true;
      continue;
    }
    if (part.field === "mkdir") {
      results.push(await makeDirectory(store, dir, await text(reader)));
      continue;
    }
    if (part.filename === undefined || part.filename === "") continue; // no file chosen
    const shown = part.filename;
    try {
      const name = childName(dir, shown);
      const staged = await store.stageWrite(name);
      try {
        const parts = reader.body();
        const bytes = await copyInto(
          staged,
          async () => (await parts.next()).value ?? null,
          store.maxUploadBytes,
          (n) => onProgress?.(name, n),
        );
        await staged.commit();
        results.push({ name: shown, status: 201, message: `created, ${bytes} bytes`, bytes });
      } finally {
        await staged.discard();
      }
    } catch (error) {
      if (error instanceof HttpError && error.status === 408) throw error;
      const status = statusOf(error);
      if (status === 500 && !(error instanceof HttpError)) throw error;
      results.push({ name: shown, status, message: (error as Error).message, bytes: 0 });
    }
  }
  if (!checked) throw new HttpError(403, "form refused: missing CSRF token");
  return results;
}

/** A `mkdir` (form field or MKCOL): the result, refusals too. */
export async function makeDirectory(
  store: Files,
  dir: string,
  typed: string,
): Promise<UploadResult> {
  const shown = typed.trim();
  try {
    await store.makeDirectory(childName(dir, shown));
    return { name: shown, status: 201, message: "directory created", bytes: 0 };
  } catch (error) {
    return { name: shown, status: statusOf(error), message: (error as Error).message, bytes: 0 };
  }
}

/** The whole of a small text field (at most 1 KiB). */
async function text(reader: MultipartReader): Promise<string> {
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of reader.body()) {
    length += chunk.length;
    if (length > 1024) throw new HttpError(400, "form field too long");
    parts.push(chunk.slice());
  }
  return new TextDecoder().decode(concatAll(parts));
}
