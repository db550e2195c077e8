/**
 * The HTTP part of `fsd serve`: --http and --http-only, their help, and
 * starting the HTTP face beside (or instead of) fsd/1 on the same
 * directory, host, limits, accounts and certificate.
 */

import type { Security } from "./security.ts";
import { HttpServer } from "../../lib/http/server.ts";
import type { ProxyProtocolConfig } from "../../lib/net/proxied.ts";
import type { Limits } from "../../lib/net/shared_limits.ts";
import type { LiveHub } from "../../lib/capture/live.ts";
import { FileStore } from "../../lib/store/file_store.ts";
import { UsageError } from "../shared/cli.ts";
import type { Flags, FlagValues } from "../shared/command.ts";
import { port } from "../shared/values.ts";
import type { SharedServeConfig } from "./tftp.ts";

export const HTTP_SERVE_FLAGS = {
  http: {
    arg: "HTTPPORT",
    value: port,
    group: "http",
    help: `also serve DIR over HTTP/1.1 on TCP port HTTPPORT, on the
same --host; HTTPS with --tls-cert/--tls-key. Pages,
downloads with ranges, ?json, ?tar, ?sha256; uploads
with PUT, POST (forms) and MKCOL`,
  },
  "http-only": {
    type: "boolean",
    group: "http",
    help: "serve HTTP alone, on --http HTTPPORT or else on PORT",
  },
  live: {
    type: "boolean",
    group: "http",
    help: `with --http: a live page /.live/ (loopback clients, or
accounts with the admin right: fsd user add --admin)
showing every connection of every protocol, and the
packets of an fsd/1 session as a ladder, as pcap, as text`,
  },
} as const satisfies Flags;

/** The heading of the HTTP flags in serve's help. */
export const HTTP_SERVE_HEADING =
  "HTTP (browsers, curl, wget; the same rules, accounts and limits; nothing new to allow):";

type HttpFlags = Partial<FlagValues<typeof HTTP_SERVE_FLAGS>>;

/** Whether fsd/1 (and TFTP) run: not with --http-only. */
export function wantsFsd1OverHttp(values: HttpFlags): boolean {
  return !values["http-only"];
}

/** Checks the HTTP flags against the others (before anything starts). */
export function checkHttpFlags(
  values: HttpFlags & { tftp?: number; "tftp-only"?: boolean; workers?: number },
): void {
  if (values.live && values.http === undefined && !values["http-only"]) {
    throw new UsageError("--live needs --http HTTPPORT (the live page is served over HTTP)");
  }
  if (values.live && values.workers !== undefined && values.workers > 1) {
    throw new UsageError("--live and --workers do not combine: run one worker with --live");
  }
  if (values["http-only"] && (values.tftp !== undefined || values["tftp-only"])) {
    throw new UsageError("--http-only serves HTTP alone: no --tftp or --tftp-only with it");
  }
}

/** Starts the HTTP face if the flags ask for it; `shared`: another server already cleaned the directory. */
export async function startHttp(
  values: HttpFlags,
  common: SharedServeConfig & {
    idleTimeoutMs?: number;
    requestTimeoutMs?: number;
    minRate?: number;
    proxyProtocol?: ProxyProtocolConfig;
  },
  security: Security,
  shared: boolean,
  live?: LiveHub,
  limits?: Limits,
): Promise<HttpServer | undefined> {
  const only = values["http-only"] ?? false;
  if (values.http === undefined && !only) return undefined;
  const port = values.http ?? common.port;
  const store = await FileStore.open(common);
  if (!shared) {
    const removed = await store.removeStaleStaging();
    if (removed > 0) common.log({ event: "cleanup", removed, directory: store.root });
  }
  return await HttpServer.start(store, {
    port,
    hostname: common.hostname,
    tls: security.tls,
    accounts: security.accounts,
    idleTimeoutMs: common.idleTimeoutMs,
    requestTimeoutMs: common.requestTimeoutMs,
    minRate: common.minRate,
    maxClients: common.maxClients,
    maxPerIp: common.maxPerIp,
    log: common.log,
    live,
    limits,
    // Behind HAProxy (--proxy-protocol): HTTP carries no PROXY header; the client is named in
    // X-Forwarded-For, believed from the same trusted proxies.
    forwardedBy: common.proxyProtocol?.trusted,
  });
}
