/**
 * `fsd put HOST PORT LOCAL [REMOTE]`: upload a file; with `-o REMOTEDIR`,
 * any number of files; with `-r`, a whole directory tree. One connection
 * for the whole job.
 * Its flags, help and permissions are declared below, once.
 */

import { CommandError } from "./shared/cli.ts";
import { defineCommand } from "./shared/command.ts";
import {
  TRANSFER_EXIT_STATUS,
  TRANSFER_GROUPS,
  TRANSFER_JOB_FLAGS,
} from "./client/transfer_flags.ts";
import { TRANSFER_SIDES } from "./client/sides.ts";
import { INTEGRITY_FLAGS, refuseChecks } from "./client/integrity.ts";

export const put = defineCommand({
  name: "put",
  title: "Upload to an fsd server: one file, several, or a whole tree.",
  usage: [
    "fsd put HOST PORT LOCAL [REMOTE] [OPTIONS]",
    "fsd put HOST PORT LOCAL... -o REMOTEDIR [OPTIONS]",
    "fsd put -r HOST PORT LOCALDIR [REMOTEDIR] [OPTIONS]",
    "fsd put http[s]://HOST:PORT/[DIR/] LOCAL... [OPTIONS]",
  ],
  about: `HOST PORT may also be typed HOST:PORT, or with REMOTE as one URL before LOCAL,
fsd://HOST[:PORT]/REMOTE (port 10000 if none). REMOTE defaults to LOCAL's base name; a REMOTE ending in '/' is a directory to
upload into, as with cp. LOCAL '-' reads stdin (REMOTE is then required); a
pipe such as <(cmd) is read as it comes. With -o, every name after PORT is a
file to upload into REMOTEDIR. With -r, LOCALDIR is recreated as REMOTEDIR
(default: LOCALDIR's last part; into it if it exists on the server), as
cp -r does. With -o and -r, up to --jobs files move at once, each on its own
connection (directories are made first, on one); reports, --json lines and
failures come in the order of the names or the tree.

The server never replaces an existing file: it answers "file already exists"
instead. An upload that does not complete leaves nothing on the server. Every
file is checked: the client sends a CRC-32 of it after its data and the server
checks it before the file gets its name (--sha256 for a SHA-256,
--no-integrity for none).`,
  flags: {
    output: {
      short: "o",
      arg: "REMOTEDIR",
      help: "upload every LOCAL into REMOTEDIR",
    },
    recursive: {
      type: "boolean",
      short: "r",
      side: "fsd",
      help: "copy the directory LOCALDIR and everything in it",
    },
    preserve: {
      type: "boolean",
      short: "p",
      side: "fsd",
      help: `give each file on the server LOCAL's modification time, as
scp -p (always with -r: a rerun then skips the files
already there with the same size and time)`,
    },
    ...INTEGRITY_FLAGS,
    sha256: { type: "boolean", help: "the same as --integrity sha256" },
    json: {
      type: "boolean",
      help: `one JSON object per file on stdout (name, local, kind,
size, bytes, seconds, outcome, error, crc32 or sha256)`,
    },
    ...TRANSFER_JOB_FLAGS,
  },
  groups: TRANSFER_GROUPS,
  notes: TRANSFER_EXIT_STATUS,
  permissions: "--allow-net=HOST:PORT --allow-read=LOCAL",
  permissionNotes: `(LOCAL '-' needs only --allow-net; <(cmd) and other paths under /dev need
--allow-all, the only flag Deno grants them with)`,
  examples: [
    "fsd put 127.0.0.1 10000 notes.txt",
    "fsd put lab1 10000 build/report.pdf reports/week3.pdf",
    "fsd put lab1 10000 build/report.pdf reports/",
    "tar c src | fsd put lab1 10000 - src.tar",
    "fsd put lab1 10000 *.log -o logs",
    "fsd put -r lab1 10000 ./site www",
  ],
  side: TRANSFER_SIDES,
  async run({ values, positionals, side }) {
    if (side === "tftp") {
      refuseChecks(values);
      const { tftpPut } = await import("./client/tftp_put.ts");
      return await tftpPut({ values, positionals });
    }
    if (side === "http") {
      if (
        values.integrity !== undefined || (values.sha256 !== undefined && values.sha256 !== false)
      ) {
        throw new CommandError("--integrity and --sha256 cannot be checked over HTTP put");
      }
      const { httpPut } = await import("./client/http.ts");
      return await httpPut({ values, positionals });
    }
    const { fsdPut } = await import("./client/fsd_put.ts");
    await fsdPut({ values, positionals });
  },
});
