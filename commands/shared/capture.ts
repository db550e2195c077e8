/** A capture file a command was asked to write (--pcap): opened once, its failures said in one line. */

import { PcapWriter } from "../../lib/capture/pcap.ts";
import { errorMessage } from "../../lib/bytes/source_sink.ts";
import { CommandError } from "./cli.ts";
import { requireOwnAccess } from "./local_access.ts";

/** Opens `path` for --pcap (undefined: none asked for); a file that cannot be written is a CommandError. */
export function openCapture(path: string | undefined): PcapWriter | undefined {
  if (path === undefined) return undefined;
  requireOwnAccess(path, "write");
  let writer: PcapWriter;
  try {
    writer = PcapWriter.create(path);
  } catch (error) {
    throw new CommandError(errorMessage(error), { cause: error });
  }
  writer.onError = (error) =>
    console.error(`fsd: capture stopped, cannot write ${path}: ${error.message}`);
  return writer;
}
