/**
 * The flags every client command shares (--timeout, --trace, --pcap, TLS
 * and login, --blksize, --window, --fsd1, --jobs): declared data and their
 * checks only, so that a command declares them without loading the fsd/1
 * client (options.ts), which a TFTP or HTTP transfer never runs.
 */

import { BLKSIZE_RANGE, WINDOWSIZE_RANGE } from "../../lib/fsd/negotiation.ts";
import { isTraceMode, type TraceMode } from "../../lib/capture/trace_modes.ts";
import { UsageError } from "../shared/cli.ts";
import type { Flags } from "../shared/command.ts";
import { custom, integer, seconds } from "../shared/values.ts";

/** Flags of the client commands for servers with accounts and TLS (--user, --password-file and --ca for HTTP too). */
export const CLIENT_SECURITY_FLAGS = {
  user: {
    arg: "NAME",
    side: ["fsd", "http"],
    permission: "--allow-env=FSD_PASSWORD",
    help: `log in as NAME (a server with --users); the password comes
from FSD_PASSWORD, --password-file, or is asked for
without echo on a terminal`,
  },
  "password-file": {
    arg: "F",
    side: ["fsd", "http"],
    permission: "--allow-read=F",
    help: "read the password from the first line of F",
  },
  tls: {
    type: "boolean",
    side: "fsd",
    help: "connect with TLS, trusting the system's root certificates",
  },
  ca: {
    arg: "FILE",
    side: ["fsd", "http"],
    permission: "--allow-read=FILE",
    help: "trust the CA certificate(s) in FILE (PEM); implies --tls",
  },
  pin: {
    arg: "SHA256:HEX",
    side: "fsd",
    help: `trust exactly the certificate with this fingerprint (as
fsd serve prints it); implies --tls. A certificate that is
not trusted ends the command before anything is sent`,
  },
} as const satisfies Flags;

/** --trace MODE: how a connection is shown on stderr. */
export const traceMode = custom((text, flag): TraceMode => {
  if (!isTraceMode(text)) {
    throw new UsageError(`invalid ${flag}: ${text}: expected fsd, ladder, hex, text or none`);
  }
  return text;
});

/** The longest --timeout: a day (timers cannot wait much beyond 24 days anyway). */
const MAX_TIMEOUT_SECONDS = 86400;

/** Flags every client command takes. */
export const CLIENT_FLAGS = {
  timeout: {
    arg: "SECONDS",
    value: seconds({ min: 0.001, max: MAX_TIMEOUT_SECONDS }),
    default: "60",
    help: "give up when the server says nothing for this long",
  },
  trace: {
    arg: "MODE",
    value: traceMode,
    side: ["fsd", "tftp"],
    help: `show the connection on stderr: fsd (one line per packet, as
fsd proxy --trace fsd), ladder (a ladder diagram), hex, text;
over TFTP each datagram, with the same names (DAT 7, ACK 7)`,
  },
  pcap: {
    arg: "FILE",
    permission: "--allow-write=FILE",
    help: `record the connection to FILE (pcap, for Wireshark with
'fsd wireshark'; over TFTP each datagram, on its real ports)`,
  },
  ...CLIENT_SECURITY_FLAGS,
} as const satisfies Flags;

/** Flags of the commands that move files: how to move them. */
export const TRANSFER_FLAGS = {
  blksize: {
    arg: "BYTES",
    value: integer(...BLKSIZE_RANGE),
    help: `block size to ask for, ${BLKSIZE_RANGE[0]} to ${BLKSIZE_RANGE[1]} (default ${
      BLKSIZE_RANGE[1]
    })`,
  },
  window: {
    arg: "BLOCKS",
    value: integer(...WINDOWSIZE_RANGE),
    help: `blocks in flight before an ACK, ${WINDOWSIZE_RANGE[0]} to ${
      WINDOWSIZE_RANGE[1]
    } (default 16; 64 over TLS)`,
  },
  fsd1: { type: "boolean", help: "plain fsd/1: 512-byte blocks, one at a time, no options" },
} as const satisfies Flags;

export const MAX_JOBS = 16;

/**
 * Files of an fsd/1 job (-o, -r) moving at once by default, each lane on
 * its own connection: measured (docs/PERFORMANCE.md, "Many files"), four
 * lanes took a third to half less time than one for 100 x 1 KiB and for
 * 1,000 x 64 KiB, and eight no less than four. fsd/1 is one request at a time
 * per connection, so lanes are how a job overlaps one file's round trips and
 * file-system calls with another's. TFTP jobs keep one transfer at a time.
 * Downloads now also go several to a connection where the server pipelines
 * reads (JobConnection.downloadLanes); four connections still
 * measured best with that (docs/PERFORMANCE.md).
 */
export const DEFAULT_JOBS = 4;

/** --jobs: how many connections a job's files move on at once (get: several downloads on each). */
export const JOBS_FLAG = {
  jobs: {
    short: "j",
    arg: "N",
    value: integer(1, MAX_JOBS),
    help: `with -o or -r: connections moving files at once (TFTP:
transfers), 1 to ${MAX_JOBS} (default ${DEFAULT_JOBS}; TFTP 1); get keeps up to 8
downloads under way on each`,
  },
} as const satisfies Flags;

/** --jobs N: with -o or -r only; a one-file job moves on one connection. */
export function parseJobs(jobs: number | undefined, many: boolean): number {
  if (jobs !== undefined && !many) {
    throw new UsageError("--jobs takes -o or -r: one file moves on one connection");
  }
  return jobs ?? DEFAULT_JOBS;
}
