/**
 * The client of an HTTP face (or, for downloads, of any HTTP server):
 * download into a sink (from an offset, if the file is unchanged), upload
 * from a source with its length, list a directory with `?json`. Over
 * fetch, with a per-read deadline, Basic credentials and extra CA
 * certificates for HTTPS.
 */

import { type ByteSink, type ByteSource, writeAll } from "../bytes/source_sink.ts";
import type { ListingEntry } from "../store/listing.ts";
import { BodyReader } from "./body.ts";
import { HttpError } from "./respond.ts";

export interface HttpClientConfig {
  /** Give up when the server sends nothing for this long. */
  timeoutMs: number;
  login?: { user: string; password: string };
  /** PEM CA certificates trusted besides the system's, for https://. */
  caCerts?: string[];
}

export interface Downloaded {
  /** Bytes received now (not counting a resumed prefix). */
  bytes: number;
  /** The whole file's size, when the server said it. */
  size?: number;
  mtime?: Date;
  /** The server sent the rest from the offset asked for (206). */
  resumed: boolean;
}

/** A refusal from the server: its status and message. */
export class HttpStatusError extends HttpError {}

export class HttpClient {
  #config: HttpClientConfig;
  #client: Deno.HttpClient | undefined;

  constructor(config: HttpClientConfig) {
    this.#config = config;
    if (config.caCerts) this.#client = Deno.createHttpClient({ caCerts: config.caCerts });
  }

  close(): void {
    this.#client?.close();
  }

  /**
   * GET `url` into `sink`. With `from`, asks for the bytes from that offset
   * if the file is unchanged since `unchangedSince` (If-Range); `onRestart`
   * is called before writing when the whole file comes instead.
   */
  async download(
    url: string,
    sink: ByteSink,
    options: {
      from?: { offset: number; unchangedSince: Date };
      onRestart?: () => Promise<void>;
      onStart?: (
        size: number | undefined,
        mtime: Date | undefined,
        resumed: boolean,
      ) => void | Promise<void>;
      onProgress?: (bytes: number) => void;
    } = {},
  ): Promise<Downloaded> {
    const headers: Record<string, string> = {};
    if (options.from) {
      headers.range = `bytes=${options.from.offset}-`;
      headers["if-range"] = options.from.unchangedSince.toUTCString();
    }
    const response = await this.#fetch(url, { headers });
    const resumed = response.status === 206;
    if (response.status === 416 && options.from) {
      // The partial file is already whole (or longer): nothing more to fetch.
      await response.body?.cancel();
      return { bytes: 0, resumed: true };
    }
    await expectOk(response);
    if (!resumed) await options.onRestart?.();
    const length = response.headers.get("content-length");
    const total = resumed
      ? Number(/\/(\d+)$/.exec(response.headers.get("content-range") ?? "")?.[1] ?? NaN)
      : length === null
      ? NaN
      : Number(length);
    const modified = response.headers.get("last-modified");
    const mtime = modified ? new Date(modified) : undefined;
    const size = Number.isNaN(total) ? undefined : total;
    await options.onStart?.(size, mtime, resumed);
    const reader = new BodyReader(response.body!, this.#config.timeoutMs, "response");
    let bytes = 0;
    try {
      for (let chunk = await reader.read(); chunk !== null; chunk = await reader.read()) {
        await writeAll(sink, chunk);
        bytes += chunk.length;
        options.onProgress?.(bytes);
      }
    } catch (error) {
      await reader.cancel();
      throw error;
    }
    const expected = size === undefined ? undefined : size - (resumed ? options.from!.offset : 0);
    if (expected !== undefined && bytes !== expected) {
      throw new Error(`connection closed after ${bytes} of ${expected} bytes`);
    }
    return { bytes, size, mtime, resumed };
  }

  /** PUT `source` (`size` bytes) as `url`; the server's reply text. */
  async upload(
    url: string,
    source: ByteSource,
    size: number | undefined,
    onProgress?: (bytes: number) => void,
  ): Promise<string> {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const chunk = new Uint8Array(256 * 1024);
        const n = await source.read(chunk);
        if (n === null) return controller.close();
        sent += n;
        onProgress?.(sent);
        controller.enqueue(chunk.subarray(0, n));
      },
    }, { highWaterMark: 1 });
    const headers: Record<string, string> = size === undefined
      ? {}
      : { "content-length": String(size) };
    const response = await this.#fetch(url, { method: "PUT", body, headers });
    await expectOk(response);
    return (await response.text()).trim();
  }

  /** The entries of the directory at `url` (a URL ending in /), from `?json`. */
  async list(url: string, digests = false): Promise<ListingEntry[]> {
    const response = await this.#fetch(`${url}?json${digests ? "&sha256" : ""}`, {
      headers: { accept: "application/json" },
    });
    await expectOk(response);
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`not an fsd listing: ${url}: the server sent no JSON`);
    }
    if (!Array.isArray(parsed)) throw new Error(`not an fsd listing: ${url}`);
    return parsed.map((e) => ({
      kind: e.kind === "directory" ? "d" : "f",
      size: Number(e.size),
      mtime: new Date(e.mtime),
      name: String(e.name),
      ...(typeof e.sha256 === "string" && { sha256: e.sha256 }),
    }));
  }

  async #fetch(url: string, init: RequestInit & { headers: Record<string, string> }) {
    const login = this.#config.login;
    if (login) {
      const pair = new TextEncoder().encode(`${login.user}:${login.password}`);
      init.headers.authorization = `Basic ${btoa(String.fromCharCode(...pair))}`;
    }
    const signal = AbortSignal.timeout(this.#config.timeoutMs);
    const response = await fetch(url, {
      ...init,
      redirect: "follow",
      signal,
      ...(this.#client && { client: this.#client }),
    }).catch((error) => {
      throw new Error(
        signal.aborted
          ? `no answer from ${new URL(url).host} within ${this.#config.timeoutMs / 1000} s`
          : `cannot reach ${new URL(url).host}: ${(error as Error).message}`,
        { cause: error },
      );
    });
    return response;
  }
}

async function expectOk(response: Response): Promise<void> {
  if (response.ok) return;
  const text = (await response.text().catch(() => "")).trim().split("\n")[0].slice(0, 200);
  const reason = text.startsWith("<") || text === "" ? response.statusText : text;
  throw new HttpStatusError(response.status, `server said ${response.status}: ${reason}`);
}
