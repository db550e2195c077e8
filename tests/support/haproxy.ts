/**
 * HAProxy (Debian's package) run from the shipped deploy/haproxy.cfg with only
 * the addresses changed, as an operator would: its log lines on stdout (the
 * servers going UP and DOWN), its stats socket read for each server's state,
 * and a frontend port chosen with a bounded retry when another process took
 * it first (HAProxy cannot listen on port 0 and say which port it got).
 */

import assert from "node:assert/strict";
import { withDeadline } from "./raw_client.ts";

const DEPLOY_CONFIG = new URL("../../deploy/haproxy.cfg", import.meta.url).pathname;
const BIND_ATTEMPTS = 5;

export interface HaproxyServer {
  name: string;
  port: number;
  /** The server's HTTP port (fsd serve --http), for the HTTP backend; none: it has no server. */
  httpPort?: number;
}

/** One server's row of `show stat`. */
export interface ServerStat {
  status: string;
  /** Failed checks since start, and UP-to-DOWN transitions. */
  chkfail: number;
  chkdown: number;
  checkStatus: string;
}

/** Each backend of deploy/haproxy.cfg, and which port of a server its `server` lines name. */
const BACKENDS = [
  { backend: "fsd_servers", port: (s: HaproxyServer) => s.port },
  { backend: "fsd_http_servers", port: (s: HaproxyServer) => s.httpPort },
];

/**
 * deploy/haproxy.cfg with this test's ports (fsd/1's frontend on `frontend`,
 * HTTP's on `httpFrontend`) and a stats socket: the shipped file is what runs.
 */
export async function haproxyConfig(
  ports: { frontend: number; httpFrontend: number },
  servers: HaproxyServer[],
  statsSocket: string,
): Promise<string> {
  const text = await Deno.readTextFile(DEPLOY_CONFIG);
  const lines = text.split("\n").filter((line) => !/^\s*server fsd\d/.test(line));
  const out = lines.map((line) =>
    line.replace(/^(\s*)bind \S+:10000$/, `$1bind 127.0.0.1:${ports.frontend}`)
      .replace(/^(\s*)bind \S+:8080$/, `$1bind 127.0.0.1:${ports.httpFrontend}`)
      .replace(/^(\s*)stats socket \S+/, `$1stats socket ${statsSocket}`)
  );
  for (const { backend, port } of BACKENDS) {
    const at = out.findIndex((line) => line.startsWith(`backend ${backend}`));
    assert.ok(at > 0, `deploy/haproxy.cfg has no backend ${backend}`);
    const defaults = out.findIndex((line, i) => i > at && /^\s*default-server /.test(line));
    const lines = servers.flatMap((s) => {
      const p = port(s);
      return p === undefined ? [] : [`    server ${s.name} 127.0.0.1:${p}`];
    });
    out.splice(defaults + 1, 0, ...lines);
  }
  if (!out.some((line) => /^\s*stats socket /.test(line))) {
    out.splice(out.indexOf("global") + 1, 0, `    stats socket ${statsSocket} level admin`);
  }
  return out.join("\n");
}

export interface Haproxy extends AsyncDisposable {
  port: number;
  /** The HTTP frontend's port. */
  httpPort: number;
  /** Every log line so far (stdout and stderr). */
  lines: string[];
  /** Resolves with the first log line from line `since` on (past or future) matching `pattern`. */
  waitForLine(pattern: RegExp, since?: number, ms?: number): Promise<string>;
  /** Each backend server's state ("fsd_servers/fsd1"), from the stats socket. */
  stats(): Promise<Map<string, ServerStat>>;
  /** Runs one command of HAProxy's runtime API on the stats socket and returns its answer. */
  command(text: string): Promise<string>;
  stop(): Promise<void>;
}

/** A port nobody listens on right now; another process may take it before we do. */
function unusedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/**
 * Starts HAProxy in front of `servers` from deploy/haproxy.cfg (files in
 * `dir`) and waits until its frontend listens. A frontend port taken by
 * someone else between choosing and binding is retried with another one, at
 * most 5 times; any other start-up failure is thrown with HAProxy's alert.
 */
export async function startHaproxy(dir: string, servers: HaproxyServer[]): Promise<Haproxy> {
  for (let attempt = 1;; attempt++) {
    const port = unusedPort();
    const started = await tryStart(dir, servers, port);
    if ("haproxy" in started) return started.haproxy;
    const taken = /cannot bind socket|Address already in use/i.test(started.failure);
    if (!taken || attempt === BIND_ATTEMPTS) {
      throw new Error(`haproxy did not start: ${started.failure}`);
    }
  }
}

async function tryStart(
  dir: string,
  servers: HaproxyServer[],
  port: number,
): Promise<{ haproxy: Haproxy } | { failure: string }> {
  // The stats socket on loopback TCP: a Unix socket needs --allow-net=unix:PATH, which the
  // test task does not grant. A port taken meanwhile fails the start like the frontend's.
  const statsPort = unusedPort();
  const httpPort = unusedPort();
  const statsSocket = `ipv4@127.0.0.1:${statsPort}`;
  const cfg = `${dir}/haproxy.cfg`;
  const ports = { frontend: port, httpFrontend: httpPort };
  await Deno.writeTextFile(cfg, await haproxyConfig(ports, servers, statsSocket));
  const child = new Deno.Command("haproxy", {
    args: ["-db", "-f", cfg],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      for (let nl; (nl = pending.indexOf("\n")) >= 0;) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        lines.push(line);
        for (const waiter of [...waiters]) {
          if (waiter.pattern.test(line)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(line);
          }
        }
      }
    }
  };
  const status = Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  status.then(() => exited = true);
  const waitForLine = (pattern: RegExp, since = 0, ms = 30_000) => {
    const seen = lines.slice(since).find((line) => pattern.test(line));
    if (seen) return Promise.resolve(seen);
    const line = new Promise<string>((resolve) => waiters.push({ pattern, resolve }));
    return withDeadline(line, `haproxy log ${pattern}`, ms);
  };
  const stop = async () => {
    if (!exited) child.kill("SIGTERM");
    await status;
  };
  // Listening once the stats socket answers (HAProxy binds everything before it serves).
  for (let i = 0; i < 200 && !exited; i++) {
    if (await statsText(statsPort).then(() => true, () => false)) {
      const haproxy: Haproxy = {
        port,
        httpPort,
        lines,
        waitForLine,
        stats: async () => parseStats(await statsText(statsPort)),
        command: (text) => statsText(statsPort, text),
        stop,
        [Symbol.asyncDispose]: stop,
      };
      return { haproxy };
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // HAProxy is still reading its config
  }
  await stop();
  return { failure: lines.filter((l) => /ALERT/.test(l)).join("; ") || lines.join("; ") };
}

/** Sends `command` (`show stat`: the servers' states as CSV) on HAProxy's stats socket. */
async function statsText(port: number, command = "show stat"): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(`${command}\n`));
    return await withDeadline(new Response(conn.readable).text(), "haproxy stats", 5_000);
  } finally {
    try {
      conn.close();
    } catch {
      // closed with its readable stream
    }
  }
}

function parseStats(csv: string): Map<string, ServerStat> {
  const [header, ...rows] = csv.trim().split("\n");
  const names = header.replace(/^# /, "").split(",");
  const column = (row: string[], name: string) => row[names.indexOf(name)];
  const out = new Map<string, ServerStat>();
  for (const row of rows.map((r) => r.split(","))) {
    const server = column(row, "svname");
    if (server === "FRONTEND" || server === "BACKEND") continue;
    out.set(`${column(row, "pxname")}/${server}`, {
      status: column(row, "status"),
      chkfail: Number(column(row, "chkfail")),
      chkdown: Number(column(row, "chkdown")),
      checkStatus: column(row, "check_status"),
    });
  }
  return out;
}

/**
 * Waits for HAProxy to log that `server` ("BACKEND/SERVER": fsd_servers/fsd1
 * for fsd/1, fsd_http_servers/fsd1 for HTTP) went `status` (from log line
 * `since` on), then checks that its stats socket agrees.
 */
export async function waitForStatus(
  haproxy: Haproxy,
  server: string,
  status: "UP" | "DOWN",
  since = 0,
): Promise<void> {
  await haproxy.waitForLine(new RegExp(`Server ${server} is ${status}`), since);
  const stat = (await haproxy.stats()).get(server);
  assert.ok(stat?.status.startsWith(status), `${server}: ${JSON.stringify(stat)}`);
}
