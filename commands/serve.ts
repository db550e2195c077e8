/**
 * `fsd serve DIR PORT`: serve one directory over fsd/1.
 * Its flags, help and permissions are declared below, once.
 */

import { formatJson, formatText, type ServerEvent } from "../lib/store/log.ts";
import { FileServer, SERVER_DEFAULTS } from "../lib/fsd/server.ts";
import { ConnectionLimits } from "../lib/net/limits.ts";
import { parseTrusted, type ProxyProtocolConfig } from "../lib/net/proxied.ts";
import { rereadOnHangup, SECURITY_FLAGS, securityConfig } from "./serve/security.ts";
import { ServerPool } from "../lib/fsd/worker_pool.ts";
import {
  CommandError,
  expectedFailure,
  expectPositionals,
  stopOnSignal,
  UsageError,
} from "./shared/cli.ts";
import { type StrictModes, strictModes } from "../lib/store/strict_modes.ts";
import { defineCommand } from "./shared/command.ts";
import { requireOwnAccess } from "./shared/local_access.ts";
import { integer, oneOf, parsePort, seconds, size } from "./shared/values.ts";
import { limitFlags } from "./shared/limit_flags.ts";
import {
  startTftp,
  TFTP_SERVE_FLAGS,
  TFTP_SERVE_HEADING,
  tftpExposure,
  wantsFsd1,
} from "./serve/tftp.ts";
import {
  checkHttpFlags,
  HTTP_SERVE_FLAGS,
  HTTP_SERVE_HEADING,
  startHttp,
  wantsFsd1OverHttp,
} from "./serve/http.ts";
import { LiveHub } from "../lib/capture/live.ts";
import { logLine } from "./serve/log_out.ts";

const USAGE = "fsd serve DIR PORT [OPTIONS]";

export const serve = defineCommand({
  name: "serve",
  title: "Serve the files in DIR to fsd clients on TCP port PORT.",
  usage: USAGE,
  about: `Clients may download and list anything inside DIR and upload new files into
it; nothing outside DIR can be reached, and no existing file is ever
replaced. An upload appears under its name only once complete and flushed to
disk. PORT 0 lets the system choose a free port.`,
  flags: {
    host: { arg: "ADDR", help: "address to listen on (default 0.0.0.0; :: for IPv6)" },
    "request-timeout": {
      arg: "SECONDS",
      value: seconds({ min: 0 }),
      help: `close a connection whose packet (an HTTP request head),
once begun, is not whole within this long (default 10;
0: no limit)`,
    },
    "login-grace": {
      arg: "SECONDS",
      value: seconds({ min: 0 }),
      help: `with --users and no --anonymous read: close a connection
not logged in after this long (default 30; 0: never)`,
    },
    "min-rate": {
      arg: "BYTES",
      value: integer(),
      help: `during a transfer (an HTTP request), close a connection
moving fewer bytes per second, measured over each
--request-timeout (default 100; 0: no floor)`,
    },
    name: { arg: "NAME", help: "the name in the greeting (default: the host name)" },
    ...limitFlags(SERVER_DEFAULTS, undefined, false),
    "max-upload": {
      arg: "SIZE",
      value: size,
      help: "largest upload, e.g. 500M (default 8G; 0: no limit)",
    },
    "read-only": { type: "boolean", help: "refuse every upload" },
    fsd1: {
      type: "boolean",
      help: `speak only fsd/1: refuse the options extension, as a
server without it would (OPT is an unknown opcode)`,
    },
    "shutdown-grace": {
      arg: "SECONDS",
      value: seconds({ min: 0 }),
      default: "10",
      help: `on SIGINT/SIGTERM, let running transfers finish
for this long; a second signal stops at once`,
    },
    log: { arg: "text|json", value: oneOf("text", "json"), default: "text", help: "log format" },
    workers: {
      arg: "N",
      value: integer(1),
      default: "1",
      permission: "--unstable-net --allow-read=FSD",
      help: `serve with N workers (threads) sharing PORT and DIR;
limits stay the whole server's; needs --unstable-net and
read access to fsd's own files (FSD) when N > 1`,
    },
    "proxy-protocol": {
      type: "boolean",
      help: `behind a load balancer: every connection starts with a
PROXY protocol header (v1 or v2), whose client address
then counts for the logs and --max-per-ip`,
    },
    "trusted-proxy": {
      arg: "ADDR[/BITS]",
      multiple: true,
      help: `who may send that header (repeatable; IPv4 or IPv6;
required with --proxy-protocol); others are refused.
With --http: whose X-Forwarded-For (its last address)
names an HTTP client`,
    },
    ...SECURITY_FLAGS,
    ...TFTP_SERVE_FLAGS,
    ...HTTP_SERVE_FLAGS,
  },
  groups: { tftp: TFTP_SERVE_HEADING, http: HTTP_SERVE_HEADING },
  notes: `Over a limit, a client gets ERR 0 with the reason instead of the greeting;
an upload over --max-upload ends with ERR 3. Logs one event per line on
stdout: connections, requests with their outcome, bytes and duration, errors.`,
  permissions: "--allow-net --allow-read=DIR --allow-write=DIR",
  permissionNotes: `(--read-only needs no --allow-write; add --allow-sys=hostname for the host
name in the greeting. On Linux, --allow-all makes every open race-free
against symlinks swapped in under DIR (Deno allows /proc/self/fd only
then); without it, a DIR with a directory other users can write into is
refused)`,
  examples: [
    "fsd serve ./files 10000",
    "fsd serve /srv/lab 6969 --host 127.0.0.1 --idle-timeout 10 --name lab1",
    "fsd serve /srv/iso 10000 --read-only --log json",
    "fsd serve /srv/lab 10000 --proxy-protocol --trusted-proxy 10.0.0.2 --trusted-proxy fd00::/8",
    "fsd serve /srv/lab 10000 --http 8080 --live",
  ],
  async run({ values, positionals }) {
    expectPositionals(positionals, 2, 2, USAGE);
    const [root, portText] = positionals;
    const port = parsePort(portText);
    const format: (event: ServerEvent) => string = values.log === "json"
      ? (e) => formatJson(e)
      : formatText;
    checkHttpFlags(values);
    // The live page hears every event and sees every fsd/1 connection's bytes.
    const live = values.live ? new LiveHub() : undefined;
    const config = {
      root,
      port,
      hostname: values.host,
      name: values.name,
      idleTimeoutMs: values["idle-timeout"],
      requestTimeoutMs: values["request-timeout"],
      loginGraceMs: values["login-grace"],
      minRate: values["min-rate"],
      maxClients: values["max-clients"],
      maxPerIp: values["max-per-ip"],
      maxUploadBytes: values["max-upload"],
      readOnly: values["read-only"],
      fsd1Only: values.fsd1,
      proxyProtocol: proxyProtocolConfig(values["proxy-protocol"], values["trusted-proxy"]),
      log: (event: ServerEvent) => {
        logLine(format(event));
        live?.event(event);
      },
      tap: live && ((id: number) => live.tap(id)),
      datagramTap: live && ((id: number) => live.tftpTap(id)),
    };

    const fsd1 = wantsFsd1(values) && wantsFsd1OverHttp(values);
    const security = await securityConfig(values);
    requireOwnAccess(root, "read");
    const modes = await Deno.realPath(root).then(strictModes, () => ({} as StrictModes));
    if (modes.refusal) throw new CommandError(modes.refusal);
    if (modes.warning) security.notices.push(modes.warning);
    const workers = values.workers;
    // fsd/1 and TFTP in one log: one sequence of connection ids for both.
    const ids = fsd1 && values.tftp !== undefined ? sharedIds(config.log) : undefined;
    const fsdConfig = { ...config, ...security, log: ids?.("fsd") ?? config.log };
    // fsd/1 and HTTP count against one --max-clients and --max-per-ip (one worker).
    const limits = workers > 1 ? undefined : new ConnectionLimits({
      maxClients: config.maxClients ?? SERVER_DEFAULTS.maxClients,
      maxPerIp: config.maxPerIp ?? SERVER_DEFAULTS.maxPerIp,
    });
    const server = !fsd1
      ? undefined
      : workers > 1
      ? await ServerPool.start({ ...fsdConfig, workers, workerModule: Deno.mainModule })
        .catch(expectedFailure)
      : await FileServer.start({ ...fsdConfig, limits }).catch(expectedFailure);
    // The live page hears each server's events under that server's own ids; the log shows
    // fsd/1's and TFTP's in one sequence.
    const tftpLog = ids?.("tftp");
    const logOf = (from: "tftp" | "http") => (event: ServerEvent) => {
      if (from === "tftp" && tftpLog) tftpLog(event);
      else config.log(event);
      live?.event(event, from);
    };
    const tftpConfig = { ...config, log: logOf("tftp") };
    const tftp = wantsFsd1OverHttp(values)
      ? await startTftp(values, tftpConfig, fsd1, security.accounts).catch(async (error) => {
        await server?.close();
        return expectedFailure(error);
      })
      : undefined;
    if (live && server) live.serverPort = server.addr.port;
    const http = await startHttp(
      values,
      { ...config, log: logOf("http") },
      security,
      fsd1 || tftp !== undefined,
      live,
      limits,
    )
      .catch(async (error) => {
        await Promise.all([server?.close(), tftp?.close()]);
        return expectedFailure(error);
      });
    // Every face checks logins with the one authenticator: rereading it serves them all.
    const accounts = security.accounts;
    const stopRereading = values.users === undefined || !accounts
      ? () => {}
      : rereadOnHangup(values.users, accounts.authenticator, config.log);
    const servers = [server, tftp, http].filter((s) => s !== undefined);

    // The first signal stops gracefully, a second one at once. The listeners go
    // in before the "listening" line, so whoever waits for it can stop us.
    const graceMs = values["shutdown-grace"];
    const stopped = stopOnSignal(async (signals) => {
      await Promise.all(servers.map((s) => signals === 1 ? s.shutdown(graceMs) : s.close()));
    });
    // Through the log, so that every line of --log json is JSON.
    for (const message of security.notices) config.log({ event: "notice", message });
    if (server) {
      const { hostname: address, port } = server.addr;
      const many = workers > 1 ? { workers } : {};
      config.log({ event: "listening", transport: "fsd", address, port, ...many });
    }
    if (tftp) {
      const exposure = tftpExposure(security.accounts);
      if (exposure) config.log({ event: "notice", message: exposure });
      const { hostname: address, port } = tftp.addr;
      config.log({ event: "listening", transport: "tftp", address, port });
    }
    if (http) {
      const { hostname: address, port } = http.addr;
      config.log({ event: "listening", transport: "http", address, port, urls: http.urls() });
    }
    await stopped;
    live?.close();
    stopRereading();
  },
});

/** Most connections a shared id sequence remembers at once (beyond: a later event gets a new id). */
const MAX_SHARED_IDS = 100_000;

/**
 * Each server numbers its connections from 1; with fsd/1 and TFTP in one
 * log, every connection instead gets the next number of one sequence at
 * its first event, kept until its last.
 */
function sharedIds(log: (event: ServerEvent) => void) {
  let next = 1;
  const ids = new Map<string, number>();
  return (transport: "fsd" | "tftp") => (event: ServerEvent) => {
    if (!("id" in event)) return log(event);
    const key = `${transport} ${event.id}`;
    let id = ids.get(key);
    if (id === undefined) {
      id = next++;
      if (ids.size < MAX_SHARED_IDS) ids.set(key, id);
    }
    // A connection ends at its close (or rejection); a TFTP transfer also at its one request.
    const last = event.event === "close" || event.event === "rejected" ||
      (transport === "tftp" && event.event === "request");
    if (last) ids.delete(key);
    log({ ...event, id });
  };
}

/** --proxy-protocol and --trusted-proxy: both or neither. */
function proxyProtocolConfig(
  enabled: boolean,
  trusted: string[] | undefined,
): ProxyProtocolConfig | undefined {
  if (!enabled) {
    if (trusted) throw new UsageError("--trusted-proxy needs --proxy-protocol");
    return undefined;
  }
  if (!trusted) throw new UsageError("--proxy-protocol needs --trusted-proxy ADDR[/BITS]");
  try {
    return { trusted: parseTrusted(trusted) };
  } catch (error) {
    throw new UsageError(`invalid --trusted-proxy: ${(error as Error).message}`);
  }
}
