/**
 * What the client flags for servers with accounts and TLS mean (their
 * declarations: CLIENT_SECURITY_FLAGS in client_flags.ts): --user (the
 * password from FSD_PASSWORD, --password-file, or a prompt without echo on
 * a terminal; never from the command line), --tls, --ca FILE and --pin
 * SHA256:...
 */

import type { TlsClientConfig } from "../../lib/net/tls.ts";
import { parsePin } from "../../lib/net/tls_identity.ts";
import { errorMessage } from "../../lib/bytes/source_sink.ts";
import { CommandError, UsageError } from "../shared/cli.ts";
import { requireOwnAccess } from "../shared/local_access.ts";

export interface ClientSecurityValues {
  user?: string;
  "password-file"?: string;
  tls?: boolean;
  ca?: string;
  pin?: string;
}

/** TLS and the login, resolved once (files read, password asked) however often the client connects. */
export interface ClientSecurity {
  tls?: TlsClientConfig;
  login?: { user: string; password: string };
}

/** Checks the flags now; returns what reads files and asks for the password, once, when first needed. */
export function parseClientSecurity(
  values: ClientSecurityValues,
): (() => Promise<ClientSecurity>) | undefined {
  const { user, ca, pin } = values;
  const passwordFile = values["password-file"];
  if (ca !== undefined && pin !== undefined) throw new UsageError("choose --ca or --pin, not both");
  if (passwordFile !== undefined && user === undefined) {
    throw new UsageError("--password-file goes with --user");
  }
  let pinBytes: Uint8Array | undefined;
  if (pin !== undefined) {
    try {
      pinBytes = parsePin(pin);
    } catch (error) {
      throw new UsageError(errorMessage(error));
    }
  }
  const tls = values.tls || ca !== undefined || pin !== undefined;
  if (!tls && user === undefined) return undefined;
  let resolved: Promise<ClientSecurity> | undefined;
  return () =>
    resolved ??= (async () => ({
      tls: tls ? { caCerts: ca ? [await readCa(ca)] : undefined, pin: pinBytes } : undefined,
      login: user === undefined
        ? undefined
        : { user, password: await password(user, passwordFile) },
    }))();
}

async function readCa(path: string): Promise<string> {
  requireOwnAccess(path, "read");
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new CommandError(`cannot read --ca ${path}: ${errorMessage(error)}`, { cause: error });
  }
}

async function password(user: string, file: string | undefined): Promise<string> {
  if (file !== undefined) {
    requireOwnAccess(file, "read");
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (error) {
      throw new CommandError(`cannot read --password-file ${file}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    const line = text.split("\n")[0].replace(/\r$/, "");
    if (line === "") throw new CommandError(`no password in --password-file ${file}`);
    return line;
  }
  const readable = envReadable();
  const fromEnv = readable ? Deno.env.get("FSD_PASSWORD") || undefined : undefined;
  if (fromEnv !== undefined) return fromEnv;
  if (!Deno.stdin.isTerminal()) {
    const env = readable
      ? "set FSD_PASSWORD"
      : "run with --allow-env=FSD_PASSWORD to read FSD_PASSWORD";
    throw new CommandError(
      `no password for ${user}: ${env}, give --password-file, or run on a terminal`,
    );
  }
  // The prompt's module only when there is a prompt.
  const { readSecret } = await import("../shared/terminal.ts");
  return await readSecret(`Password for ${user}: `);
}

/** Whether FSD_PASSWORD may be read (--allow-env=FSD_PASSWORD): asked, so that Deno never prompts. */
function envReadable(): boolean {
  return Deno.permissions.querySync({ name: "env", variable: "FSD_PASSWORD" }).state === "granted";
}
