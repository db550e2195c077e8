/**
 * `fsd echo serve PORT`: the echo, upper-case, ceiling, chat-room and login
 * lab servers, over TCP or UDP, from their flags. Loaded only for the server.
 */

import { startEchoServer } from "../../lib/echo/server.ts";
import type { EchoMode } from "../../lib/echo/server.ts";
import { readAccountsFile } from "../../lib/auth/accounts.ts";
import { Authenticator } from "../../lib/auth/authenticator.ts";
import type { LoginLabConfig } from "../../lib/echo/login.ts";
import { expectedFailure, stopOnSignal, UsageError } from "../shared/cli.ts";
import { requireOwnAccess } from "../shared/local_access.ts";
import { parsePort } from "../shared/values.ts";
import type { EchoValues } from "./flags.ts";

/** The server, from its positionals (PORT) and flags. */
export async function echoServer(positionals: string[], values: EchoValues): Promise<void> {
  const udp = values.udp;
  if (positionals.length !== 1) {
    throw new UsageError("usage: fsd echo serve PORT [--udp] [--upper | --ceil | --broadcast]");
  }
  const port = parsePort(positionals[0]);
  const modes = (["upper", "ceil", "broadcast"] as const).filter((m) => values[m]);
  if (modes.length > 1) {
    throw new UsageError(
      `choose one of --upper, --ceil, --broadcast, not ${modes.map((m) => `--${m}`).join(" and ")}`,
    );
  }
  const mode: EchoMode = modes[0] ?? "echo";
  const limits = (["max-clients", "max-per-ip", "idle-timeout"] as const).find((f) =>
    values[f] !== undefined
  );
  if (udp && limits) {
    throw new UsageError(
      `--${limits} applies to TCP servers: over UDP each source has a rate instead (see --help)`,
    );
  }
  const login = await loginLab(values, udp, modes);
  const server = await startEchoServer({
    port,
    hostname: values.host,
    udp,
    mode,
    login,
    maxClients: values["max-clients"],
    maxPerIp: values["max-per-ip"],
    idleTimeoutMs: values["idle-timeout"],
    log: (line) => console.log(line),
  }).catch(expectedFailure);
  const stopped = stopOnSignal(() => server.close());
  console.log(
    `Echo server (${login ? "login" : mode}, ${
      udp ? "UDP" : "TCP"
    }) listening on ${server.hostname} port ${server.port}`,
  );
  await stopped;
}

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
