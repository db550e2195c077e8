/**
 * `fsd get` and `fsd put` over TFTP: `fsd get tftp://HOST[:PORT]/REMOTE
 * [LOCAL]`, `fsd put tftp://HOST[:PORT]/[REMOTE] LOCAL`, or the fsd/1 argument
 * order with `--tftp`. The same local-file rules as fsd/1's client: a
 * download is staged and appears under its name only once complete, an
 * existing file is replaced only with --force, '-' is stdout or stdin.
 *
 * Permissions: --allow-net=HOST,0.0.0.0 (answers come from a new port of
 * HOST's; the socket binds the wildcard address), or --allow-net=127.0.0.1
 * for a server on loopback; and --allow-read --allow-write for LOCAL's
 * directory (get), --allow-read for LOCAL (put).
 */

import { TFTP_CLIENT_DEFAULTS, type TftpClientConfig } from "../../lib/tftp/client.ts";
import type { DatagramTap } from "../../lib/tftp/channel.ts";
import type { TraceMode } from "../../lib/capture/conn_trace.ts";
import { expectPositionals, UsageError } from "../shared/cli.ts";
import { URL_PREFIX } from "./sides.ts";
import { parsePort } from "../shared/values.ts";
import { Interruption } from "../shared/signals.ts";

/** What TFTP takes of get's and put's flags. */
export interface TftpValues {
  timeout: number;
  /** With -o: files moving at once, each transfer on its own socket. */
  jobs?: number;
  blksize?: number;
  window?: number;
  fsd1: boolean;
  /** --pcap FILE: every datagram of the job recorded. */
  pcap?: string;
  /** --trace MODE: every datagram of the job shown on stderr. */
  trace?: TraceMode;
}

/**
 * --pcap and --trace over TFTP: a tap that writes each datagram as a UDP frame on its real ports
 * and traces it on stderr (one trace per transfer), and its close.
 */
async function tftpCapture(
  path: string | undefined,
  mode?: TraceMode,
): Promise<{ tap?: DatagramTap; close(): void }> {
  const tracing = mode !== undefined && mode !== "none";
  // The pcap writer and the tracer are loaded only when asked for.
  if (path === undefined && !tracing) return { close() {} };
  const writer = path === undefined
    ? undefined
    : (await import("../shared/capture.ts")).openCapture(path);
  const trace = tracing
    ? (await import("../../lib/capture/tftp_trace.ts")).tftpTraceTap(
      mode,
      (line) => console.error(line),
    )
    : undefined;
  return {
    tap: (sent, bytes, local, peer) => {
      writer?.datagram(sent ? "client" : "server", local.port, peer.port, bytes);
      trace?.tap(sent, bytes, local, peer);
    },
    close: () => {
      trace?.close();
      writer?.close();
    },
  };
}

export interface Where {
  config: TftpClientConfig;
  remote: string;
  rest: string[];
}

/** tftp://HOST[:PORT]/PATH, or HOST PORT PATH with --tftp; `rest` is what follows. */
export function parseWhere(positionals: string[], usage: string): Where {
  const [first] = positionals;
  if (first?.toLowerCase().startsWith(URL_PREFIX)) {
    const match = /^tftp:\/\/(\[[^\]]+\]|[^/:]+)(?::([^/]*))?(?:\/(.*))?$/i.exec(first);
    if (!match) {
      throw new UsageError(`invalid TFTP URL: ${first}: expected tftp://HOST[:PORT]/PATH`);
    }
    const hostname = match[1].replace(/^\[(.*)\]$/, "$1");
    const port = match[2] ? parsePort(match[2]) : TFTP_CLIENT_DEFAULTS.port;
    return {
      config: { hostname, port },
      remote: decodePath(match[3] ?? ""),
      rest: positionals.slice(1),
    };
  }
  expectPositionals(positionals, 3, 4, usage);
  const [hostname, portText, remote] = positionals;
  return { config: { hostname, port: parsePort(portText) }, remote, rest: positionals.slice(3) };
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new UsageError(`invalid TFTP URL path: ${path}`);
  }
}

function transferConfig(values: TftpValues): Partial<TftpClientConfig> {
  if (values.fsd1 && (values.blksize !== undefined || values.window !== undefined)) {
    throw new UsageError("--fsd1 takes no --blksize or --window");
  }
  return {
    blockSize: values.fsd1 ? 0 : values.blksize,
    windowSize: values.window,
    timeoutMs: values.timeout,
    // One transfer at a time: its waits may block (lib/net's BlockingUdp, with --allow-ffi).
    alone: (values.jobs ?? 1) <= 1,
  };
}

/** The lanes of a job of several files (--jobs): each file a transfer of its own. */
export function lanes(jobs = 1): undefined[] {
  return Array.from({ length: jobs }, () => undefined);
}

/**
 * Runs a TFTP get or put job (`values` its flags): `run` gets each file's
 * whole client config from its server's (block and window size, timeout,
 * the stop signal, the --pcap tap). A stop signal aborts the transfers and
 * ends the job with 128+N, as over fsd/1; the capture is closed at the end.
 */
export async function withTftpJob(
  values: TftpValues,
  run: (configFor: (file: { config: TftpClientConfig }) => TftpClientConfig) => Promise<void>,
): Promise<void> {
  const transfer = transferConfig(values);
  const capture = await tftpCapture(values.pcap, values.trace);
  globalThis.addEventListener("unload", () => capture.close());
  using interruption = new Interruption();
  const interrupt = new AbortController();
  const unregister = interruption.onStop(() => interrupt.abort());
  try {
    const signal = interrupt.signal;
    await run((file) => ({ ...file.config, ...transfer, signal, tap: capture.tap }));
  } catch (error) {
    throw interruption.explain(error);
  } finally {
    unregister();
    capture.close();
  }
}
