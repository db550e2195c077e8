/**
 * `fsd user add|remove|list FILE ...`: manage the accounts file that
 * `fsd serve --users FILE` and `fsd echo serve --login FILE` read.
 * Its flags, help and permissions are declared below, once.
 */

import { dirname } from "../lib/path.ts";
import {
  type AccountLine,
  checkHome,
  checkName,
  parseAccounts,
  readAccountsFile,
  type Rights,
  writeAccountsFile,
} from "../lib/auth/accounts.ts";
import { hashPassword, MAX_PASSWORD_BYTES } from "../lib/auth/password.ts";
import { CommandError, expectPositionals, UsageError } from "./shared/cli.ts";
import { defineCommand } from "./shared/command.ts";
import { requireAccess, requireOwnAccess } from "./shared/local_access.ts";
import { readSecret, StdinLines } from "./shared/terminal.ts";

const USAGE = `fsd user add FILE NAME [--read-only] [--home SUBDIR] [--replace]
       fsd user remove FILE NAME
       fsd user list FILE`;

export const user = defineCommand({
  name: "user",
  title: "Manage an accounts file for fsd serve --users and fsd echo serve --login.",
  usage: USAGE.split("\n").map((line) => line.trim()),
  about: `add     adds the account NAME (creating FILE, mode 0600, if needed). The
        password is typed twice without echo on a terminal, or read as one
        line from stdin; it is never taken from the command line. FILE keeps
        only a salted scrypt hash.
remove  removes the account NAME.
list    prints each account: NAME RIGHTS HOME (HOME "/" is the whole directory).

File format, one account per line (blank lines and # comments are kept):
  NAME:HASH:RIGHTS[:HOME]
NAME is 1 to 64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit),
HASH is $scrypt$ln=14,r=8,p=5$SALT$HASH, RIGHTS is rw, ro or admin (rw, and
the live page of fsd serve --live from any address), HOME a subdirectory of
the served directory that becomes the account's root.`,
  flags: {
    "read-only": { type: "boolean", help: "the account may download and list, not upload" },
    admin: {
      type: "boolean",
      help: "the account may upload and watch the live page (fsd serve --live) from afar",
    },
    home: { arg: "SUBDIR", help: "the account's root, relative to the served directory" },
    replace: {
      type: "boolean",
      help: "replace an existing account (a new password, rights, home)",
    },
  },
  permissions: "--allow-read=DIR --allow-write=DIR",
  permissionNotes: `(add and remove: DIR holds FILE, whose new version is written beside it;
list needs only --allow-read=FILE)`,
  examples: [
    "fsd user add users.txt alice --home alice",
    `printf '%s\\n' "$PASSWORD" | fsd user add users.txt bob --read-only`,
    "fsd user list users.txt",
    "fsd user remove users.txt bob",
  ],
  async run({ values, positionals }) {
    const [action, ...rest] = positionals;
    const home = values.home;
    if (
      action !== "add" &&
      (values["read-only"] || values.admin || home !== undefined || values.replace)
    ) {
      throw new UsageError("--read-only, --admin, --home and --replace go with 'fsd user add'");
    }
    if (values["read-only"] && values.admin) {
      throw new UsageError("--read-only and --admin do not mix");
    }
    switch (action) {
      case "add": {
        expectPositionals(rest, 2, 2, USAGE);
        const [file, name] = rest;
        checkUsage(() => checkName(name));
        if (home !== undefined) checkUsage(() => checkHome(home));
        const rights: Rights = values["read-only"] ? "ro" : values.admin ? "admin" : "rw";
        return await add(file, name, rights, home, values.replace);
      }
      case "remove": {
        expectPositionals(rest, 2, 2, USAGE);
        return await remove(rest[0], rest[1]);
      }
      case "list":
        expectPositionals(rest, 1, 1, USAGE);
        return await list(rest[0]);
      case undefined:
        throw new UsageError(`missing arguments: usage: ${USAGE}`);
      default:
        throw new UsageError(`unknown action: ${action}: expected add, remove or list`);
    }
  },
});

function checkUsage(check: () => void): void {
  try {
    check();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function add(
  file: string,
  name: string,
  rights: Rights,
  home: string | undefined,
  replace: boolean,
): Promise<void> {
  const lines = await readOrEmpty(file);
  const index = lines.findIndex((line) => "account" in line && line.account.name === name);
  if (index >= 0 && !replace) {
    throw new CommandError(`account exists: ${name}: use --replace to change it`);
  }
  const password = await askPassword(name);
  const hashText = await hashPassword(password);
  const [line] = parseAccounts(
    `${name}:${hashText}:${rights}${home ? `:${home}` : ""}\n`,
  );
  if (index >= 0) lines[index] = line;
  else lines.push(line);
  await writeAccountsFile(file, lines);
  console.error(
    `${index >= 0 ? "replaced" : "added"} account ${name} (${rights}${
      home ? `, home ${home}` : ""
    }) in ${file}`,
  );
}

async function askPassword(name: string): Promise<string> {
  const lines = new StdinLines();
  const password = await readSecret(`Password for ${name}: `, "password", lines);
  if (lines.terminal) {
    const again = await readSecret("Again: ", "password", lines);
    if (again !== password) throw new CommandError("the passwords differ");
  }
  if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES) {
    throw new CommandError(`password too long: at most ${MAX_PASSWORD_BYTES} bytes`);
  }
  if (password.includes("\u0000")) throw new CommandError("password contains a NUL byte");
  return password;
}

async function remove(file: string, name: string): Promise<void> {
  requireOwnAccess(dirname(file), "read", "write");
  const lines = await readAccountsFile(file);
  const kept = lines.filter((line) => !("account" in line && line.account.name === name));
  if (kept.length === lines.length) throw new CommandError(`no such account: ${name} in ${file}`);
  await writeAccountsFile(file, kept);
  console.error(`removed account ${name} from ${file}`);
}

async function list(file: string): Promise<void> {
  requireAccess(file, "read");
  for (const line of await readAccountsFile(file)) {
    if ("account" in line) {
      const { name, rights, home } = line.account;
      console.log(`${name} ${rights} ${home ?? "/"}`);
    }
  }
}

async function readOrEmpty(file: string): Promise<AccountLine[]> {
  requireOwnAccess(dirname(file), "read", "write");
  try {
    await Deno.lstat(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return await readAccountsFile(file);
}
