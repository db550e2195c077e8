/**
 * `fsd serve DIR PORT`: serve one directory over fsd/1.
 *
 * Permissions: --allow-net, --allow-read=DIR --allow-write=DIR (with
 * --read-only, --allow-read=DIR is enough). Nothing else: without
 * --allow-sys=hostname the greeting names "fsd" (or --name). --users FILE,
 * --tls-cert CERT and --tls-key KEY add --allow-read for those files.
 */

import { formatJson, formatText, type ServerEvent } from "../lib/store/log.ts";
import { FileServer, SERVER_DEFAULTS } from "../lib/fsd/server.ts";
import { parseTrusted, type ProxyProtocolConfig } from "../lib/net/proxied.ts";
import { rereadOnHangup, SECURITY_FLAGS, SECURITY_HELP, securityConfig } from "./serve/security.ts";
import { ServerPool } from "../lib/fsd/worker_pool.ts";
import {
  type Command,
  expectedFailure,
  expectPositionals,
  parseCommandLine,
  parseCount,
  parsePort,
  parseSeconds,
  parseSize,
  stopOnSignal,
  UsageError,
} from "./shared/cli.ts";
import { startTftp, TFTP_SERVE_FLAGS, TFTP_SERVE_HELP, wantsFsd1 } from "./serve/tftp.ts";

const USAGE = "fsd serve DIR PORT [OPTIONS]";

const DEFAULT_GRACE_SECONDS = 10;

const help = `Serve the files in DIR to fsd clients on TCP port PORT.

Usage: ${USAGE}

Clients may download and list anything inside DIR and upload new files into
it; nothing outside DIR can be reached, and no existing file is ever
replaced. An upload appears under its name only once complete and flushed to
disk. PORT 0 lets the system choose a free port.

Options:
  --host ADDR               address to listen on (default 0.0.0.0; :: for IPv6)
  --idle-timeout SECONDS    close connections silent for this long (default 60)
  --name NAME               the name in the greeting (default: the host name)
  --max-clients N           connections served at once (default ${SERVER_DEFAULTS.maxClients}; 0: no limit)
  --max-per-ip N            connections from one address (default ${SERVER_DEFAULTS.maxPerIp}; 0: no limit)
  --max-upload SIZE         largest upload, e.g. 500M (default 8G; 0: no limit)
  --read-only               refuse every upload
  --fsd1                    speak only fsd/1: refuse the options extension, as a
                            server without it would (OPT is an unknown opcode)
  --shutdown-grace SECONDS  on SIGINT/SIGTERM, let running transfers finish
                            for this long (default ${DEFAULT_GRACE_SECONDS}); a second signal stops at once
  --log text|json           log format (default text)
  --workers N               serve with N workers (threads) sharing PORT and DIR
                            (default 1); limits stay the whole server's; needs
                            --unstable-net and read access to fsd's own files
  --proxy-protocol          behind a load balancer: every connection starts with a
                            PROXY protocol header (v1 or v2), whose client address
                            then counts for the logs and --max-per-ip
  --trusted-proxy ADDR[/BITS]
                            who may send that header (repeatable; IPv4 or IPv6;
                            required with --proxy-protocol); others are refused
${SECURITY_HELP}
  -h, --help                show this help
${TFTP_SERVE_HELP}

Over a limit, a client gets ERR 0 with the reason instead of the greeting;
an upload over --max-upload ends with ERR 3. Logs one event per line on
stdout: connections, requests with their outcome, bytes and duration, errors.

Permissions: --allow-net --allow-read=DIR --allow-write=DIR
  (--users FILE, --tls-cert CERT, --tls-key KEY: --allow-read for them too)
  (--read-only needs no --allow-write; add --allow-sys=hostname for the host
  name in the greeting).

Examples:
  fsd serve ./files 10000
  fsd serve /srv/lab 6969 --host 127.0.0.1 --idle-timeout 10 --name lab1
  fsd serve /srv/iso 10000 --read-only --log json
  fsd serve /srv/lab 10000 --proxy-protocol --trusted-proxy 10.0.0.2 --trusted-proxy fd00::/8`;

async function run(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, {
    host: { type: "string" },
    "idle-timeout": { type: "string" },
    name: { type: "string" },
    "max-clients": { type: "string" },
    "max-per-ip": { type: "string" },
    "max-upload": { type: "string" },
    "read-only": { type: "boolean" },
    fsd1: { type: "boolean" },
    "shutdown-grace": { type: "string" },
    log: { type: "string" },
    "proxy-protocol": { type: "boolean" },
    "trusted-proxy": { type: "string", multiple: true },
    ...SECURITY_FLAGS,
    workers: { type: "string" },
    ...TFTP_SERVE_FLAGS,
  }, help);
  if (!parsed) return;
  const { values, positionals } = parsed;
  expectPositionals(positionals, 2, 2, USAGE);
  const [root, portText] = positionals;
  const port = parsePort(portText);
  const ifGiven = <T>(text: string | undefined, parse: (text: string) => T) =>
    text === undefined ? undefined : parse(text);
  const logFormat = values.log ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`invalid --log: ${logFormat}: expected text or json`);
  }
  const format: (event: ServerEvent) => string = logFormat === "json"
    ? (e) => formatJson(e)
    : formatText;
  const graceMs =
    ifGiven(values["shutdown-grace"], (t) => parseSeconds(t, "--shutdown-grace", true)) ??
      DEFAULT_GRACE_SECONDS * 1000;
  const config = {
    root,
    port,
    hostname: values.host,
    name: values.name,
    idleTimeoutMs: ifGiven(values["idle-timeout"], (t) => parseSeconds(t, "--idle-timeout")),
    maxClients: ifGiven(values["max-clients"], (t) => parseCount(t, "--max-clients")),
    maxPerIp: ifGiven(values["max-per-ip"], (t) => parseCount(t, "--max-per-ip")),
    maxUploadBytes: ifGiven(values["max-upload"], (t) => parseSize(t, "--max-upload")),
    readOnly: values["read-only"] ?? false,
    fsd1Only: values.fsd1 ?? false,
    proxyProtocol: proxyProtocolConfig(values["proxy-protocol"] ?? false, values["trusted-proxy"]),
    log: (event: ServerEvent) => console.log(format(event)),
  };

  const fsd1 = wantsFsd1(values);
  const security = await securityConfig(values);
  const workers = ifGiven(values.workers, (t) => parseCount(t, "--workers", 1)) ?? 1;
  const server = !fsd1
    ? undefined
    : workers > 1
    ? await ServerPool.start({ ...config, ...security, workers, workerModule: Deno.mainModule })
      .catch(expectedFailure)
    : await FileServer.start({ ...config, ...security }).catch(expectedFailure);
  const stopRereading = values.users === undefined || !server
    ? () => {}
    : rereadOnHangup(values.users, server, config.log);
  const tftp = await startTftp(values, config, fsd1).catch(async (error) => {
    await server?.close();
    return expectedFailure(error);
  });
  const servers = [server, tftp].filter((s) => s !== undefined);

  // The first signal stops gracefully, a second one at once. The listeners go
  // in before the "listening" line, so whoever waits for it can stop us.
  const stopped = stopOnSignal(async (signals) => {
    await Promise.all(servers.map((s) => signals === 1 ? s.shutdown(graceMs) : s.close()));
  });
  for (const notice of security.notices) console.log(notice);
  if (server) {
    const many = workers > 1 ? `, ${workers} workers` : "";
    console.log(`File server listening on ${server.addr.hostname} port ${server.addr.port}${many}`);
  }
  if (tftp) {
    console.log(`TFTP server listening on ${tftp.addr.hostname} UDP port ${tftp.addr.port}`);
  }
  await stopped;
  stopRereading();
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

export const serve: Command = {
  name: "serve",
  summary: "serve a directory",
  help,
  run,
};
