/**
 * A directory's entries through the FileStore (its listing, parsed with
 * the one listing format), for pages, `?json` and `?tar`.
 */

import { ErrorCode, ProtocolError } from "../store/errors.ts";
import type { Files } from "../store/access.ts";
import { type ListingEntry, parseListing } from "../store/listing.ts";

/** The entries of directory `name`; ProtocolError 1 if it is a file. */
export async function readEntries(
  store: Files,
  name: string,
  digests = false,
): Promise<ListingEntry[]> {
  const opened = await store.openRead(name, { digests });
  try {
    if (opened.kind !== "listing") {
      throw new ProtocolError(ErrorCode.NOT_FOUND, `not a directory: ${name}`);
    }
    const bytes = new Uint8Array(opened.size);
    let filled = 0;
    while (filled < bytes.length) {
      const n = await opened.source.read(bytes.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    return parseListing(new TextDecoder().decode(bytes.subarray(0, filled)), digests);
  } finally {
    opened.close();
  }
}
