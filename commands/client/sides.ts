/**
 * Which protocol a client command speaks (fsd/1, TFTP or HTTP), the help
 * headings of each and --tftp: declared data only, so that get, put and ls
 * can declare their flags and pick a side while loading only the client of
 * the side that runs (commands/client/tftp*.ts and http.ts come with
 * `await import` then).
 */

import { CLIENT_MAX_WINDOW, TFTP_CLIENT_DEFAULTS } from "../../lib/tftp/options.ts";
import type { Flags } from "../shared/command.ts";

/** The heading of the TFTP part of get's and put's help. */
export const TFTP_CLIENT_HEADING = `TFTP (RFC 1350 over UDP, port 69 unless given):
  fsd get tftp://HOST[:PORT]/REMOTE [LOCAL]     fsd put tftp://HOST[:PORT]/[REMOTE] LOCAL
or the fsd/1 arguments with --tftp. Asks for blksize ${TFTP_CLIENT_DEFAULTS.blockSize} and windowsize ${TFTP_CLIENT_DEFAULTS.windowSize}
(a download with --allow-ffi, as installed: the window its receive buffer
holds, up to ${CLIENT_MAX_WINDOW}; --blksize, --window; --fsd1 asks for no options), and for
fsd's sliding window (ackevery: an ACK every half window) that fsd's server
grants; falls back to plain RFC 1350 when the server ignores them. --timeout: give up after this long
without an answer (a dead port too). get's -o DIR (several tftp:// URLs, or
HOST PORT and several names with --tftp), --json, --sha256, --force and
--continue work as over fsd/1, except that TFTP has no offsets: --continue
keeps what a failed download got, but the next try starts the file over.
put's -o REMOTEDIR (tftp://HOST[:PORT] LOCAL..., or HOST PORT LOCAL... with
--tftp) and --json work too; with -o, --jobs N moves N files at once.`;

export const URL_PREFIX = "tftp://";

/** The sides of get and put: fsd/1, or TFTP (a tftp:// argument or --tftp). */
export const CLIENT_SIDES = {
  of: (positionals: string[], values: Record<string, unknown>) =>
    values.tftp || positionals.some((arg) => arg.toLowerCase().startsWith(URL_PREFIX))
      ? "tftp"
      : "fsd",
  names: { fsd: "fsd/1", tftp: "TFTP (--tftp or tftp://)" },
};

/** --tftp: the fsd/1 arguments, spoken to a TFTP server. */
export const TFTP_FLAG = {
  tftp: {
    type: "boolean",
    side: "tftp",
    group: "tftp",
    permission: "--allow-net=HOST,0.0.0.0",
    help: `HOST PORT are a TFTP server's (the permission is the same
for a tftp:// URL: answers come from a new port of
HOST's, and the socket binds the wildcard address;
--allow-net=127.0.0.1 is enough on loopback; with
--allow-ffi too, as installed, one file at a time
waits on a faster socket through the C library)`,
  },
} as const satisfies Flags;

/** The heading of the HTTP part of get's, put's and ls's help. */
export const HTTP_CLIENT_HEADING =
  `HTTP (the HTTP face of fsd serve --http; for get, any HTTP server):
  fsd get http[s]://HOST:PORT/REMOTE [LOCAL]   fsd get URL... -o DIR
  fsd put http[s]://HOST:PORT/[DIR/] LOCAL...  fsd ls http[s]://HOST:PORT/[DIR]
with -f, -o, --continue, --sha256, --json, --timeout, --user, --password-file
and --ca (a URL of its own needs --allow-net=HOST:PORT).`;

/** Whether `arg` is an http:// or https:// URL. */
export function isHttpUrl(arg: string): boolean {
  return /^https?:\/\//i.test(arg);
}

/** The sides of get and put: fsd/1, TFTP, or HTTP (an http:// or https:// URL). */
export const TRANSFER_SIDES = {
  of: (positionals: string[], values: Record<string, unknown>) =>
    positionals.some(isHttpUrl) ? "http" : CLIENT_SIDES.of(positionals, values),
  names: { ...CLIENT_SIDES.names, http: "HTTP (http:// or https://)" },
};

/** The sides of ls: fsd/1, or HTTP. */
export const LIST_SIDES = {
  of: (positionals: string[]) => positionals.some(isHttpUrl) ? "http" : "fsd",
  names: { fsd: "fsd/1", http: "HTTP (http:// or https://)" },
};
