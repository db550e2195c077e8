/** Helpers of the HTTP face's tests: `fsd serve --http-only` as a subprocess, and curl. */

import { concatAll } from "../../lib/bytes/source_sink.ts";
import { sleep } from "../../lib/timer.ts";
import { type ServeProcess, spawnFsd } from "./cli.ts";

/** `fsd serve DIR 0 --http-only` on loopback with the documented permissions (plus `read` files). */
export function serveHttp(
  dir: string,
  extra: string[] = [],
  read: string[] = [],
): Promise<ServeProcess> {
  return spawnFsd(
    ["serve", dir, "0", "--host", "127.0.0.1", "--http-only", ...extra],
    ["--allow-net=127.0.0.1", `--allow-read=${[dir, ...read].join(",")}`, `--allow-write=${dir}`],
    /^HTTP server listening on /,
  );
}

export interface CurlResult {
  code: number;
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
  text: string;
  stderr: string;
}

/** Runs curl with `args`; the status and headers of the last response are parsed from -D. */
export async function curl(args: string[], cwd?: string): Promise<CurlResult> {
  const headerFile = await Deno.makeTempFile();
  try {
    const out = await new Deno.Command("curl", {
      args: ["-sS", "--max-time", "30", "-D", headerFile, ...args],
      stdout: "piped",
      stderr: "piped",
      cwd,
    }).output();
    const raw = await Deno.readTextFile(headerFile);
    const blocks = raw.split(/\r\n\r\n/).filter((b) => b.startsWith("HTTP/"));
    const last = blocks.at(-1) ?? "";
    const [statusLine, ...lines] = last.split("\r\n");
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    return {
      code: out.code,
      status: Number(statusLine.split(" ")[1] ?? 0),
      headers,
      body: out.stdout,
      text: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    await Deno.remove(headerFile);
  }
}

/** SHA-256 in hex. */
export async function hexDigest(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array(data));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Sends `request` bytes as they are over a new connection (a list: piece by
 * piece, `pauseMs` apart); the reply's status and text.
 */
export async function rawRequest(
  port: number,
  request: string | Uint8Array | string[],
  pauseMs = 100,
): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const pieces = Array.isArray(request) ? request : [request];
    for (const [i, piece] of pieces.entries()) {
      if (i > 0) await sleep(pauseMs);
      await conn.write(typeof piece === "string" ? new TextEncoder().encode(piece) : piece);
    }
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(65536);
    for (let i = 0; i < 1000; i++) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
      const text = new TextDecoder().decode(concatAll(chunks));
      const end = text.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: (\d+)/i.exec(text)?.[1];
      if (end >= 0 && length !== undefined && text.length >= end + 4 + Number(length)) break;
    }
    const text = new TextDecoder().decode(concatAll(chunks));
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text };
  } finally {
    conn.close();
  }
}

/** `fsd serve DIR 0 --http 0 --live` on loopback: the process and both ports. */
export async function serveLive(
  dir: string,
  extra: string[] = [],
): Promise<{ server: ServeProcess; fsdPort: number; httpPort: number }> {
  const server = await spawnFsd(
    ["serve", dir, "0", "--host", "127.0.0.1", "--http", "0", "--live", ...extra],
    ["--allow-net=127.0.0.1", `--allow-read=${dir}`, `--allow-write=${dir}`],
    /^HTTP server listening on /,
  );
  const port = async (pattern: RegExp) =>
    Number(/port (\d+)/.exec(await server.waitForLine(pattern))![1]);
  return { server, fsdPort: await port(/^File server/), httpPort: await port(/^HTTP server/) };
}
