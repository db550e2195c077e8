/**
 * Many clients mixing get, put and ls against one address (HAProxy in front
 * of fsd servers), each retried a bounded number of times after a growing
 * pause (as a script's client would), and the checks
 * that follow a failure under load: no acknowledged upload lost, no partial
 * file, no staging file left, every failure a clear error.
 */

import assert from "node:assert/strict";
import { bytesSource, MemorySink } from "../../lib/bytes/source_sink.ts";
import { FsdClient } from "../../lib/fsd/client.ts";
import { PeerError } from "../../lib/store/errors.ts";
import { rng } from "../fsd/fuzz.ts";
import { assertSameBytes, dirNames, randomBytes } from "./files.ts";

/** The file every get downloads and every ls must list. */
export const SHARED_NAME = "shared.bin";

/**
 * What a client cut off or refused is told: the connection broke, or the
 * server said why (fsd/1's ERR, an HTTP status with its text, curl's own
 * error for a broken HTTP connection), or a deadline passed ("no fsd
 * greeting within 5 s": a loaded machine).
 */
export const CLEAR_ERROR =
  /closed|reset|broken pipe|refused|timed out|within \d+ m?s\b|server error|eof|HTTP [45]\d\d: |curl exit \d+: /i;

export interface LoadOptions {
  port: number;
  /** An HTTP port (HAProxy's HTTP frontend): curl GETs and PUTs join the mix. */
  httpPort?: number;
  clients: number;
  concurrency: number;
  attempts: number;
  seed: number;
  /** SHARED_NAME's bytes. */
  shared: Uint8Array;
  /** Reads a file as stored (to check a retried upload that had in fact completed). */
  readStored(name: string): Promise<Uint8Array>;
  /** Runs after each finished client, with how many have finished (a kill midway, say). */
  afterClient?(done: number): Promise<void>;
  /** Uploads are named PREFIX-INDEX (default "up"). */
  prefix?: string;
  /**
   * A client that fails every attempt with an error matching this is
   * recorded in `gaveUp` instead of failing the load (a server refusing
   * everyone until the health checks take it out).
   */
  expectedRefusal?: RegExp;
  /** Where to record each upload tried, as it starts (default: a new map, in the result). */
  attempted?: Map<string, Uint8Array>;
  maxUploadBytes?: number;
}

export interface LoadResult {
  /** Every upload tried, by name, with its bytes. */
  attempted: Map<string, Uint8Array>;
  acknowledged: Set<string>;
  /** Failed attempts, "op target attempt N: message". */
  failures: string[];
  retriedOk: number;
  /** Clients that failed every attempt with the expected refusal: their last error. */
  gaveUp: string[];
}

type Op = "get" | "put" | "ls" | "http-get" | "http-put";

/**
 * A failed client waits this long before its second attempt, twice as long before each next one
 * (0.5, 1, 2 s for 4 attempts): a retry at once can land in the same moment as the failure, such
 * as HAProxy's "503 No server is available" while every server's health check is late on a
 * loaded machine (deploy/haproxy.cfg: the check's timeout is its 2 s interval).
 */
const RETRY_PAUSE_MS = 500;

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const FSD1_OPS: Op[] = ["get", "put", "ls"];
const ALL_OPS: Op[] = [...FSD1_OPS, "http-get", "http-put"];

/**
 * Runs `clients` clients, `concurrency` at a time. A client that fails every
 * attempt stops the others taking new work, and every worker ends before
 * this returns (nothing is left running to fail after the test); then it
 * throws that client's error.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { port, clients, attempts, seed, shared } = options;
  const random = rng(seed);
  const result: LoadResult = {
    attempted: options.attempted ?? new Map(),
    acknowledged: new Set(),
    failures: [],
    retriedOk: 0,
    gaveUp: [],
  };
  const broken: unknown[] = [];
  const started = performance.now();
  let next = 0;
  let done = 0;
  const one = async (index: number) => {
    const ops = options.httpPort === undefined ? FSD1_OPS : ALL_OPS;
    const op = ops[Math.floor(random() * ops.length)];
    const uploads = op === "put" || op === "http-put";
    const name = `${options.prefix ?? "up"}-${index}`;
    const content = randomBytes(
      Math.floor(random() * (options.maxUploadBytes ?? 400_000)),
      seed + index,
    );
    if (uploads) result.attempted.set(name, content);
    /** This client's failed attempts, each with when it failed (ms into the load). */
    const mine: string[] = [];
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await pause(RETRY_PAUSE_MS * 2 ** (attempt - 2));
      try {
        if (op === "http-get" || op === "http-put") {
          await runHttpOp(options.httpPort!, op, name, content, shared);
        } else await runOp(port, op, name, content, shared);
        if (uploads) result.acknowledged.add(name);
        if (attempt > 1) result.retriedOk++;
        return;
      } catch (error) {
        // As the CLI says it: a refusal from the server carries its code.
        const message = error instanceof PeerError
          ? `server error ${error.code}: ${error.message}`
          : error instanceof Error
          ? error.message
          : String(error);
        // A retried upload that had in fact completed finds its own file there.
        if (uploads && attempt > 1 && /file already exists/.test(message)) {
          assertSameBytes(
            await options.readStored(name),
            content,
            `${name} as stored after its retry`,
          );
          result.retriedOk++;
          return;
        }
        const target = uploads ? name : op === "ls" ? "/" : SHARED_NAME;
        const failure = `${op} ${target} attempt ${attempt}: ${message}`;
        result.failures.push(failure);
        mine.push(`at ${Math.round(performance.now() - started)} ms: ${failure}`);
      }
    }
    const last = result.failures.at(-1)!;
    if (options.expectedRefusal?.test(last)) return void result.gaveUp.push(last);
    // Every attempt, timed, and how the load stood: what a flaky run needs to be understood.
    throw new Error(
      `${op} ${name}: failed ${attempts} times: ${last}\n  ${mine.join("\n  ")}\n` +
        `  (${done} clients done, ${result.failures.length} failed attempts in all, ` +
        `${Math.round(performance.now() - started)} ms into the load)`,
    );
  };
  const worker = async () => {
    while (next < clients && broken.length === 0) {
      await one(next++);
      done++; // not inside ?.(): an absent hook would skip the increment too
      await options.afterClient?.(done);
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: options.concurrency }, worker));
  for (const s of settled) if (s.status === "rejected") broken.push(s.reason);
  if (broken.length > 0) throw broken[0];
  assert.equal(done, clients);
  return result;
}

async function runOp(
  port: number,
  op: Op,
  name: string,
  content: Uint8Array,
  shared: Uint8Array,
): Promise<void> {
  const client = await FsdClient.connect("127.0.0.1", port, { timeoutMs: 10_000 });
  try {
    const params = { blockSize: 8192, windowSize: 8 };
    if (op === "put") {
      await client.upload(name, bytesSource(content), { params, size: content.length });
    } else if (op === "get") {
      const sink = new MemorySink();
      await client.download(SHARED_NAME, sink, { params });
      assertSameBytes(sink.bytes(), shared, `download of ${SHARED_NAME}`);
    } else {
      const entries = await client.list();
      assert.ok(entries.some((e) => e.name === SHARED_NAME));
    }
  } finally {
    client.close();
  }
}

/**
 * curl as a browser's stand-in: GET of SHARED_NAME or PUT of `name`. Fails
 * with "HTTP STATUS: TEXT" when the server (or HAProxy) refuses, and with
 * "curl exit N: ERROR" when the connection breaks.
 */
async function runHttpOp(
  port: number,
  op: "http-get" | "http-put",
  name: string,
  content: Uint8Array,
  shared: Uint8Array,
): Promise<void> {
  const url = `http://127.0.0.1:${port}/${op === "http-put" ? name : SHARED_NAME}`;
  const upload = op === "http-put" ? ["-T", "-"] : [];
  const child = new Deno.Command("curl", {
    args: ["-sS", "--max-time", "30", "-w", "\n%{http_code}", ...upload, url],
    stdin: op === "http-put" ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (op === "http-put") {
    const writer = child.stdin.getWriter();
    // A server cut off mid-upload closes the pipe: curl's exit says so.
    await writer.write(content).then(() => writer.close()).catch(() => {});
  }
  const out = await child.output();
  if (!out.success) {
    throw new Error(`curl exit ${out.code}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const end = out.stdout.lastIndexOf(0x0a);
  const status = Number(new TextDecoder().decode(out.stdout.subarray(end + 1)));
  const body = out.stdout.subarray(0, end);
  if (status >= 400) throw new Error(`HTTP ${status}: ${new TextDecoder().decode(body).trim()}`);
  if (op === "http-get") assertSameBytes(body, shared, `HTTP download of ${SHARED_NAME}`);
  else assert.equal(status, 201, `HTTP PUT ${name}: status ${status}`);
}

/**
 * What `dir` must hold after the load: no staging file, every file the
 * bytes of its upload (nothing partial), every acknowledged upload there,
 * every failure a clear error. `others` are files the test put there itself.
 */
export async function checkAfterLoad(
  dir: string,
  load: LoadResult,
  others: (name: string) => boolean,
): Promise<void> {
  const names = await dirNames(dir);
  for (const name of names) {
    assert.ok(!name.startsWith(".fsd-upload-"), `${dir}: staging file left: ${name}`);
    if (name === SHARED_NAME || others(name)) continue;
    const expected = load.attempted.get(name);
    assert.ok(expected, `${dir}: unexpected file ${name}`);
    assertSameBytes(await Deno.readFile(`${dir}/${name}`), expected, `${dir}/${name}`);
  }
  for (const name of load.acknowledged) assert.ok(names.includes(name), `${dir}: ${name} lost`);
  for (const failure of load.failures) assert.match(failure, CLEAR_ERROR);
}

/** One line for the test's output: what the load did. */
export function describeLoad(clients: number, load: LoadResult): string {
  const lines = [
    `  ${clients} clients: ${load.acknowledged.size} uploads acknowledged, ` +
    `${load.failures.length} failed attempts, ${load.retriedOk} clients succeeded on a retry` +
    (load.gaveUp.length > 0 ? `, ${load.gaveUp.length} refused every time` : ""),
    ...load.failures.slice(0, 5).map((failure) => `    ${failure}`),
  ];
  return lines.join("\n");
}
