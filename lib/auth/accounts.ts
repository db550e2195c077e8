/**
 * The accounts file: who may use a server, with which rights, under which
 * root. One account per line, fields separated by ":":
 *
 *   NAME:HASH:RIGHTS[:HOME]
 *
 * - NAME: 1 to 64 characters from A-Z a-z 0-9 . _ @ -, starting with a
 *   letter or digit; unique in the file.
 * - HASH: an scrypt hash string (lib/auth/password.ts), never a password.
 * - RIGHTS: `rw` (download, list, upload) or `ro` (download and list).
 * - HOME: optional; a relative directory under the served directory that
 *   becomes the account's root (parts separated by "/", no "." or "..").
 *
 * Blank lines and lines starting with "#" are ignored (and kept when the
 * file is rewritten). The file holds hashes, not passwords, but is still
 * written with mode 0600: a hash can be attacked offline.
 */

import { writeAll } from "../bytes/source_sink.ts";
import { type ParsedHash, parseHash } from "./password.ts";

/** ro: download and list; rw: upload too; admin: rw, and the live page from afar (fsd serve --live). */
export type Rights = "ro" | "rw" | "admin";

export interface Account {
  name: string;
  /** The hash string as stored. */
  hashText: string;
  hash: ParsedHash;
  rights: Rights;
  /** The account's root, relative to the served directory; absent: the whole directory. */
  home?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** Longest account name, in bytes (all name characters are ASCII). */
export const MAX_NAME_BYTES = 64;

/** Throws when `name` cannot be an account name. */
export function checkName(name: string): void {
  if (!NAME.test(name)) {
    throw new Error(
      `invalid account name: ${
        JSON.stringify(name)
      }: 1 to 64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit`,
    );
  }
}

/** Whether `name` is a well-formed account name (for checks that must not throw). */
export function isValidName(name: string): boolean {
  return NAME.test(name);
}

// deno-lint-ignore no-control-regex
const CONTROL_OR_BACKSLASH = /[\u0000-\u001f\u007f-\u009f\\]/;

/** Throws when `home` is not a plain relative directory path. */
export function checkHome(home: string): void {
  const parts = home.split("/");
  const bad = home.length === 0 || home.length > 255 || home.includes(":") ||
    CONTROL_OR_BACKSLASH.test(home) ||
    parts.some((part) => part === "" || part === "." || part === "..");
  if (bad) {
    throw new Error(
      `invalid home: ${
        JSON.stringify(home)
      }: a relative directory, parts separated by "/", no "." or ".." parts`,
    );
  }
}

/** The lines of an accounts file: accounts, and the comments and blank lines around them. */
export type AccountLine = { account: Account } | { text: string };

/** Parses an accounts file; `source` names it in error messages. */
export function parseAccounts(content: string, source = "accounts file"): AccountLine[] {
  const lines: AccountLine[] = [];
  const seen = new Set<string>();
  const rows = content.split("\n");
  if (rows.at(-1) === "") rows.pop();
  rows.forEach((row, index) => {
    const line = row.replace(/\r$/, "");
    if (line.trim() === "" || line.trimStart().startsWith("#")) {
      lines.push({ text: line });
      return;
    }
    try {
      const account = parseAccountLine(line);
      if (seen.has(account.name)) throw new Error(`account ${account.name} appears twice`);
      seen.add(account.name);
      lines.push({ account });
    } catch (error) {
      throw new Error(`${source} line ${index + 1}: ${(error as Error).message}`);
    }
  });
  return lines;
}

function parseAccountLine(line: string): Account {
  const fields = line.split(":");
  if (fields.length < 3 || fields.length > 4) {
    throw new Error("expected NAME:HASH:RIGHTS or NAME:HASH:RIGHTS:HOME");
  }
  const [name, hashText, rights, home] = fields;
  checkName(name);
  if (rights !== "ro" && rights !== "rw" && rights !== "admin") {
    throw new Error(`invalid rights: ${JSON.stringify(rights)}: expected ro, rw or admin`);
  }
  if (home !== undefined) checkHome(home);
  return { name, hashText, hash: parseHash(hashText), rights, ...(home && { home }) };
}

/** The file's text for `lines`. */
export function formatAccounts(lines: AccountLine[]): string {
  return lines.map((line) =>
    "text" in line ? line.text : [
      line.account.name,
      line.account.hashText,
      line.account.rights,
      ...(line.account.home ? [line.account.home] : []),
    ].join(":")
  ).map((line) => line + "\n").join("");
}

/** The accounts among `lines`, by name. */
export function accountsByName(lines: AccountLine[]): Map<string, Account> {
  const out = new Map<string, Account>();
  for (const line of lines) if ("account" in line) out.set(line.account.name, line.account);
  return out;
}

/** Reads and parses an accounts file. */
export async function readAccountsFile(path: string): Promise<AccountLine[]> {
  let content: string;
  try {
    content = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`accounts file not found: ${path}`);
    }
    throw new Error(`cannot read accounts file ${path}: ${(error as Error).message}`);
  }
  return parseAccounts(content, path);
}

/**
 * Writes `lines` to `path` with mode 0600: into a new file beside it, then
 * renamed over it, so a reader (a server rereading on SIGHUP) sees the old
 * file or the new one, never half of one.
 */
export async function writeAccountsFile(path: string, lines: AccountLine[]): Promise<void> {
  const temporary = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const file = await Deno.open(temporary, { write: true, createNew: true, mode: 0o600 });
  try {
    await writeAll(file, new TextEncoder().encode(formatAccounts(lines)));
    await file.syncData();
  } catch (error) {
    file.close();
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  file.close();
  await Deno.chmod(temporary, 0o600);
  await Deno.rename(temporary, path);
}
