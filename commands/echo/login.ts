/** The login lab's part of `fsd echo serve`: the accounts behind --login, checked flags. */

import { readAccountsFile } from "../../lib/auth/accounts.ts";
import { Authenticator } from "../../lib/auth/authenticator.ts";
import type { LoginLabConfig } from "../../lib/echo/login.ts";
import { UsageError } from "../shared/cli.ts";
import { requireOwnAccess } from "../shared/local_access.ts";

/** A line from the server after which the client's next line is typed without echo. */
export const PASSWORD_PROMPT = /^Password:\s*$/;

/** The login lab's configuration from `--login USERS [--show-passwords]`, or undefined without --login. */
export async function loginLab(
  values: { login?: string; "show-passwords"?: boolean },
  udp: boolean,
  modes: readonly string[],
): Promise<LoginLabConfig | undefined> {
  const users = values.login;
  if (users === undefined) {
    if (values["show-passwords"]) throw new UsageError("--show-passwords goes with --login");
    return undefined;
  }
  if (udp) throw new UsageError("--login works over TCP only, not with --udp");
  if (modes.length > 0) {
    throw new UsageError(`--login takes no ${modes.map((m) => `--${m}`).join(" or ")}`);
  }
  requireOwnAccess(users, "read");
  const authenticator = await Authenticator.create(await readAccountsFile(users));
  return { authenticator, showPasswords: Boolean(values["show-passwords"]) };
}
