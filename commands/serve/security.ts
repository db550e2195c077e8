/**
 * The accounts and TLS part of `fsd serve`: --users, --anonymous,
 * --allow-plaintext-login, --tls-cert and --tls-key, what the server says
 * about them at start, and rereading the accounts file on SIGHUP.
 */

import { readAccountsFile } from "../../lib/auth/accounts.ts";
import { Authenticator } from "../../lib/auth/authenticator.ts";
import type { AccountsConfig } from "../../lib/fsd/server.ts";
import type { TlsServerConfig } from "../../lib/net/tls.ts";
import { certificateDer, fingerprint } from "../../lib/net/tls_identity.ts";
import { errorMessage } from "../../lib/bytes/source_sink.ts";
import type { ServerEvent } from "../../lib/store/log.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import { requireOwnAccess } from "../shared/local_access.ts";
import type { Flags } from "../shared/command.ts";
import { oneOf } from "../shared/values.ts";
import { checkPublicName } from "../../lib/store/access.ts";

export const SECURITY_FLAGS = {
  users: {
    arg: "FILE",
    permission: "--allow-read=FILE",
    help: `only the accounts in FILE (see 'fsd user') may use the
server: clients log in first; each account is read-only
or read-write and may have its own root under DIR.
SIGHUP rereads FILE`,
  },
  anonymous: {
    arg: "read",
    value: oneOf("read"),
    help: `with --users: clients without an account may download
and list all of DIR but the accounts' homes (default:
nobody without an account)`,
  },
  public: {
    arg: "NAME",
    help: `with --users: DIR/NAME is public: everyone reads it as
NAME/..., clients without an account too (then that is
all they see); accounts with a home see it beside it`,
  },
  "allow-plaintext-login": {
    type: "boolean",
    help: `with --users and without TLS, take logins from any
address (default: from loopback only, as passwords
would cross the network readable)`,
  },
  "tls-cert": {
    arg: "CERT",
    permission: "--allow-read=CERT",
    help: "serve over TLS with the certificate chain in CERT (PEM)",
  },
  "tls-key": {
    arg: "KEY",
    permission: "--allow-read=KEY",
    help: `and its private key in KEY (PEM); the certificate's
SHA-256 fingerprint is printed at start, for --pin`,
  },
} as const satisfies Flags;

export interface SecurityValues {
  users?: string;
  anonymous?: "read";
  public?: string;
  "allow-plaintext-login": boolean;
  "tls-cert"?: string;
  "tls-key"?: string;
}

/** What the flags ask for: TLS, accounts, and the lines to print at start. */
export interface Security {
  tls?: TlsServerConfig;
  /** The accounts, checked here by this process's own Authenticator (workers ask it). */
  accounts?: AccountsConfig & { authenticator: Authenticator };
  /** Said once at start, before the "listening" line. */
  notices: string[];
}

/** Checks the flags (usage errors first, then the files) and reads the certificate and accounts. */
export async function securityConfig(values: SecurityValues): Promise<Security> {
  const { users, anonymous } = values;
  const certPath = values["tls-cert"];
  const keyPath = values["tls-key"];
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  if (
    users === undefined &&
    (anonymous !== undefined || values.public !== undefined || values["allow-plaintext-login"])
  ) {
    throw new UsageError("--anonymous, --public and --allow-plaintext-login go with --users");
  }
  const publicArea = values.public === undefined ? undefined : publicName(values.public);
  const notices: string[] = [];
  let tls: TlsServerConfig | undefined;
  if (certPath !== undefined && keyPath !== undefined) {
    tls = { cert: await readPem(certPath, "certificate"), key: await readPem(keyPath, "key") };
    let der: Uint8Array;
    try {
      der = certificateDer(tls.cert);
    } catch {
      throw new CommandError(`not a PEM certificate: ${certPath}`);
    }
    notices.push(`TLS certificate fingerprint: ${await fingerprint(der)}`);
  }
  if (users === undefined) return { tls, notices };
  requireOwnAccess(users, "read");
  const lines = await readAccountsFile(users).catch((error) => {
    throw new CommandError(errorMessage(error), { cause: error });
  });
  const authenticator = await Authenticator.create(lines);
  const accounts: AccountsConfig & { authenticator: Authenticator } = {
    authenticator,
    anonymousRead: anonymous === "read",
    public: publicArea,
    allowPlaintextLogin: values["allow-plaintext-login"],
  };
  notices.push(
    `Accounts: ${authenticator.size} from ${users}${
      accounts.public !== undefined
        ? `; ${accounts.public}/ is public: everyone may download and list it`
        : accounts.anonymousRead
        ? "; anonymous clients may download and list all but the homes"
        : ""
    }`,
  );
  const exposed = await readableByOthers(users);
  if (exposed) notices.push(`Warning: ${users} ${exposed}`);
  if (!tls) {
    notices.push(
      accounts.allowPlaintextLogin
        ? "Warning: logins without TLS from any address (--allow-plaintext-login): passwords cross the network readable"
        : "Logins without TLS are taken from loopback only: passwords would cross the network readable (use --tls-cert and --tls-key, or --allow-plaintext-login)",
    );
  }
  return { tls, accounts, notices };
}

/** Why the accounts file is exposed (readable or writable by other users), if it is. */
async function readableByOthers(path: string): Promise<string | undefined> {
  const mode = (await Deno.stat(path).catch(() => undefined))?.mode;
  if (mode == null || (mode & 0o077) === 0) return undefined;
  const octal = (mode & 0o777).toString(8).padStart(4, "0");
  return `is open to other users (mode ${octal}): its hashes can be attacked offline, ` +
    `and whoever can write it can add accounts (chmod 600 ${path}, as 'fsd user' writes it)`;
}

/** --public's NAME: one directory name directly under DIR. */
function publicName(text: string): string {
  try {
    checkPublicName(text);
  } catch (error) {
    throw new UsageError(`invalid --public: ${text}: ${(error as Error).message}`);
  }
  return text;
}

async function readPem(path: string, what: string): Promise<string> {
  requireOwnAccess(path, "read");
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new CommandError(`cannot read the TLS ${what} ${path}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

/** Rereads the accounts file on SIGHUP (a broken file keeps the old accounts); returns the way to stop. */
export function rereadOnHangup(
  path: string,
  authenticator: Authenticator,
  log: (event: ServerEvent) => void,
): () => void {
  const reread = async () => {
    try {
      const lines = await readAccountsFile(path);
      // Every face (fsd/1, HTTP) checks logins with this one authenticator.
      await authenticator.replace(lines);
      log({
        event: "accounts",
        path,
        accounts: lines.filter((line) => "account" in line).length,
      });
    } catch (error) {
      log({ event: "accounts", path, error: errorMessage(error) });
    }
  };
  Deno.addSignalListener("SIGHUP", reread);
  return () => Deno.removeSignalListener("SIGHUP", reread);
}
