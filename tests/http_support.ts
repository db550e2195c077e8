/** Helpers of the HTTP face's tests: `fsd serve --http-only` as a subprocess, and curl. */

import { type ServeProcess, spawnFsd } from "./helpers.ts";

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
