/**
 * `fsd get HOST PORT REMOTE [LOCAL]`: download a file; with `-o DIR`, any
 * number of files; with `-r`, a whole directory tree. One connection for
 * the whole job.
 * Its flags, help and permissions are declared below, once.
 */

import { fromHex } from "../lib/bytes/sha256.ts";
import { CommandError, UsageError } from "./shared/cli.ts";
import { defineCommand } from "./shared/command.ts";
import {
  TRANSFER_EXIT_STATUS,
  TRANSFER_GROUPS,
  TRANSFER_JOB_FLAGS,
} from "./client/transfer_flags.ts";
import { custom } from "./shared/values.ts";
import { TRANSFER_SIDES } from "./client/sides.ts";
import { INTEGRITY_FLAGS, refuseChecks } from "./client/integrity.ts";

/** --sha256 HEX: 64 hex digits. */
const sha256Hex = custom((text, flag) => {
  const digest = fromHex(text);
  if (!digest) throw new UsageError(`invalid ${flag}: ${text}: expected 64 hex digits`);
  return digest;
});

const USAGE = [
  "fsd get HOST PORT REMOTE [LOCAL] [OPTIONS]",
  "fsd get HOST PORT REMOTE... -o DIR [OPTIONS]",
  "fsd get -r HOST PORT REMOTEDIR [LOCALDIR] [OPTIONS]",
  "fsd get http[s]://HOST:PORT/REMOTE [LOCAL] [OPTIONS]",
  "fsd get URL... -o DIR [OPTIONS]",
];

export const get = defineCommand({
  name: "get",
  title: "Download from an fsd server: one file, several, or a whole tree.",
  usage: USAGE,
  about: `HOST PORT may also be typed HOST:PORT, or with REMOTE as one URL,
fsd://HOST[:PORT]/REMOTE (port 10000 if none). LOCAL defaults to REMOTE's base name; an existing directory as LOCAL receives
the file under that name (a LOCAL ending in '/' must be one); '-' writes to
stdout (so do /dev/stdout and /dev/stderr to theirs); a special file
(/dev/null, a FIFO) is written directly. With -o, every
name after PORT is a file to fetch into DIR. With -r, REMOTEDIR is copied as
LOCALDIR (default: REMOTEDIR's last part; into it if it exists), as cp -r does.
With -o and -r, files move on up to --jobs connections at once, up to 8
downloads under way on each (their requests sent ahead where the server
pipelines reads; the listing of -r on one); reports, --json lines and
failures come in the order of the names or the tree.

A file appears under its name only once complete and checked: a failed or
interrupted download leaves nothing behind. An existing LOCAL is never
replaced unless --force is given. Every file is checked: the server sends a
CRC-32 of it after its data and the client checks it before the file gets its
name (--integrity sha256 for a SHA-256; --no-integrity for none). To stdout
('-'), the exit status and the message carry the verdict.`,
  flags: {
    output: { short: "o", arg: "DIR", help: "fetch every REMOTE into DIR" },
    recursive: {
      type: "boolean",
      short: "r",
      side: "fsd",
      help: "copy the directory REMOTEDIR and everything in it",
    },
    force: {
      type: "boolean",
      short: "f",
      help: `replace LOCAL if it exists (with -r: fetch every file, also
those already here and identical)`,
    },
    preserve: {
      type: "boolean",
      short: "p",
      side: "fsd",
      help: `give each file the server's modification time, as scp -p
(always with -r, as wget -r: a rerun then skips the files
already here with the same size and time)`,
    },
    continue: {
      type: "boolean",
      help: `resume an interrupted download from its .fsd-partial-NAME
file (kept on failure when --continue is given)`,
    },
    sha256: {
      arg: "HEX",
      value: sha256Hex,
      help: `the file must have this SHA-256 (else: error, nothing
kept; with '-', exit 1 after the data)`,
    },
    ...INTEGRITY_FLAGS,
    json: {
      type: "boolean",
      help: `one JSON object per file on stdout (name, local, kind,
size, mtime, bytes, seconds, outcome, error, crc32 or sha256)`,
    },
    ...TRANSFER_JOB_FLAGS,
  },
  groups: TRANSFER_GROUPS,
  notes: `${TRANSFER_EXIT_STATUS} A closed stdout ends quietly with 141, as cat.`,
  permissions: "--allow-net=HOST:PORT --allow-read=DIR --allow-write=DIR",
  permissionNotes: `(DIR: LOCAL's directory, or -o's or -r's, or its parent when it is created;
LOCAL '-' needs only --allow-net, as do /dev/stdout and /dev/stderr (written
through the open streams); /dev/null: --allow-read=/dev/null
--allow-write=/dev/null; other devices only with --allow-all: give '-' and
redirect instead)`,
  examples: [
    "fsd get 127.0.0.1 10000 notes.txt",
    "fsd get lab1 10000 images/disk.img /tmp/disk.img --force",
    "fsd get lab1 10000 data.csv - | head",
    "fsd get lab1 10000 a.txt b.txt c.txt -o ./in",
    "fsd get -r lab1 10000 images ./backup",
    "fsd get lab1 10000 big.iso --continue",
    "fsd get http://lab1:8080/images/disk.img --continue",
    "fsd get fsd://lab1:10000/notes.txt",
  ],
  side: TRANSFER_SIDES,
  // Each side's client and the tree walk are imported only when they run: a plain fsd/1
  // get loads neither TFTP's nor HTTP's modules (docs/PERFORMANCE.md, session 26), nor a
  // TFTP or HTTP get fsd/1's (session 36).
  async run({ values, positionals, side }) {
    if (side === "tftp") {
      refuseChecks({ integrity: values.integrity }); // --sha256 HEX: the client checks alone
      const { tftpGet } = await import("./client/tftp_get.ts");
      return await tftpGet({ values, positionals });
    }
    if (side === "http") {
      if (values.integrity !== undefined) {
        throw new CommandError("--integrity cannot be checked over HTTP: use --sha256 HEX");
      }
      const { httpGet } = await import("./client/http.ts");
      return await httpGet({ values, positionals });
    }
    const { fsdGet } = await import("./client/fsd_get.ts");
    await fsdGet({ values, positionals });
  },
});
