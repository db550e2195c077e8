/**
 * What each HTTP request gets: downloads, directory pages, `?json`,
 * `?tar` and `?sha256` for GET and HEAD; uploads for PUT, POST and MKCOL;
 * the login form; the page's assets. Every name goes through `parseTarget`
 * and then the caller's `FileStore`; every refusal is the status of the
 * store's error, with its message.
 */

import { toHex } from "../bytes/sha256.ts";
import { sha256For } from "../bytes/sha256.ts";
import type { FileStore } from "../store/file_store.ts";
import { entryJson } from "../store/listing.ts";
import type { Op } from "../store/log.ts";
import type { Caller, HttpLogins } from "./auth.ts";
import { BodyReader } from "./body.ts";
import { disposition, sendFile } from "./download.ts";
import { readEntries } from "./listing.ts";
import { directoryPage, loginPage, resultsPage } from "./page.ts";
import {
  htmlReply,
  HttpError,
  jsonReply,
  SECURITY_HEADERS,
  statusOf,
  textReply,
} from "./respond.ts";
import { parseTarget, type Target } from "./target.ts";
import { answerOwn, sameOrigin } from "./own.ts";
import { isLoopback } from "../net/ip.ts";
import { type HttpActivity, LivePage, type LiveView } from "./live.ts";
import { tarStream } from "./tar.ts";
import { makeDirectory, postForm, put } from "./upload.ts";

export interface RoutesConfig {
  store: FileStore;
  logins: HttpLogins;
  bodyTimeoutMs: number;
  /** The live page's data (fsd serve --live); its /.live/ pages exist only then. */
  live?: LiveView & HttpActivity;
}

/** A transfer's start (with its size, if known) and progress, for the live page. */
interface Track {
  start(size?: number): void;
  progress(bytes: number): void;
}

/** A request answered, with what the log says of it. */
export interface Handled {
  response: Response;
  op: Op;
  name: string;
  kind?: "file" | "listing" | "directory" | "archive" | "digest" | "page" | "redirect";
  user?: string;
  /** Why it was refused. */
  message?: string;
  /** Bytes moved so far (a body still being sent counts as it goes). */
  bytes(): number;
}

const METHODS = new Set(["GET", "HEAD", "PUT", "POST", "MKCOL"]);
const ALLOW = "GET, HEAD, PUT, POST, MKCOL";

/** Where a load balancer checks the server (GET or HEAD; no login). */
export const HEALTH_PATH = "/.fsd/health";

function writingMethod(method: string): boolean {
  return method !== "GET" && method !== "HEAD";
}

export class Routes {
  #config: RoutesConfig;
  #live: LivePage | undefined;

  constructor(config: RoutesConfig) {
    this.#config = config;
    this.#live = config.live && new LivePage(config.live);
  }

  /** Answers `request` from `address`; never throws. */
  async answer(
    request: Request,
    id: number,
    address: string,
    signal: AbortSignal,
  ): Promise<Handled> {
    const method = request.method;
    const op = (METHODS.has(method) ? method : "GET") as Op;
    let name = "";
    let user: string | undefined;
    try {
      if (!METHODS.has(method)) {
        throw new HttpError(405, `method not allowed: ${method}`, { allow: ALLOW });
      }
      const target = parseTarget(request.url);
      name = target.name;
      if (target.path === HEALTH_PATH && !writingMethod(method)) {
        return fixedAs(await this.#health(method === "HEAD"), op, name);
      }
      if (target.path.startsWith("/.fsd/")) {
        const own = await answerOwn(request, target.path, address, this.#config.logins);
        return { response: own.response, op, name, user: own.user, kind: "page", bytes: () => 0 };
      }
      if (target.path === "/.live" || target.path.startsWith("/.live/")) {
        if (!this.#live || method !== "GET") throw new HttpError(404, `not found: ${target.path}`);
        if (target.path === "/.live") {
          return fixedAs(redirect("/.live/"), op, name);
        }
        // From afar, only an account with the admin right (asked to log in if it has not).
        const admin = !isLoopback(address) &&
          (await this.#config.logins.caller(request, address, false)).admin;
        return fixedAs(this.#live.answer(target.path.slice(7), address, signal, admin), op, name);
      }
      const writing = writingMethod(method);
      if (writing) sameOrigin(request);
      const caller = await this.#config.logins.caller(request, address, writing);
      user = caller.user;
      const done = (h: Omit<Handled, "op" | "name" | "user">): Handled => ({
        ...h,
        op,
        name,
        user,
      });
      const live = this.#config.live;
      const track: Track = {
        start: (size) => live?.begin(id, { address, op, name, user, size }),
        progress: (bytes) => live?.progress(id, bytes),
      };
      if (!writing) return done(await this.#read(request, target, caller, track));
      const body = new BodyReader(
        request.body ?? new ReadableStream({ start: (c) => c.close() }),
        this.#config.bodyTimeoutMs,
      );
      signal.addEventListener("abort", () => void body.cancel(), { once: true });
      return done(await this.#write(request, target, caller, body, track));
    } catch (error) {
      return { ...refusal(request, error, this.#config.logins), op, name, user };
    }
  }

  /**
   * A load balancer's health check (deploy/haproxy.cfg): 200 while the
   * served directory is the one the server started on, 503 with the reason
   * once it is not (the volume unmounted). One stat, no listing, no login.
   */
  async #health(head: boolean): Promise<Response> {
    const gone = await this.#config.store.rootChanged();
    const headers = { "cache-control": "no-store" };
    return gone ? textReply(503, gone, headers, head) : textReply(200, "ok", headers, head);
  }

  async #read(
    request: Request,
    target: Target,
    caller: Caller,
    track: Track,
  ): Promise<Omit<Handled, "op" | "name" | "user">> {
    const opened = await caller.files.openRead(target.name);
    if (opened.kind === "listing") {
      opened.close();
      if (!target.directory) {
        const query = request.url.includes("?") ? request.url.slice(request.url.indexOf("?")) : "";
        const location = `${target.path}/${query}`;
        return fixed(
          new Response(null, { status: 301, headers: { ...SECURITY_HEADERS, location } }),
          "redirect",
        );
      }
      return await this.#directory(request, target, caller, track);
    }
    if (target.directory) {
      opened.close();
      throw new HttpError(404, `not a directory: ${target.name}`);
    }
    if (target.query.has("sha256")) {
      const hash = sha256For(opened.size);
      try {
        await opened.skip(opened.size, hash);
        const hex = toHex(await hash.digest());
        const base = target.name.slice(target.name.lastIndexOf("/") + 1);
        return fixed(textReply(200, `${hex}  ${base}`), "digest");
      } finally {
        hash.close();
        opened.close();
      }
    }
    track.start(opened.size);
    const sent = await sendFile(request, opened, target.name, track.progress);
    let moved = 0;
    sent.done.then((n) => moved = n);
    return { response: sent.response, kind: "file", bytes: () => moved };
  }

  async #directory(
    request: Request,
    target: Target,
    caller: Caller,
    track: Track,
  ): Promise<Omit<Handled, "op" | "name" | "user">> {
    const store = caller.files;
    if (target.query.has("tar")) {
      track.start();
      const base = target.name === ""
        ? "files"
        : target.name.slice(target.name.lastIndexOf("/") + 1);
      let moved = 0;
      const body = request.method === "HEAD" ? null : tarStream(store, target.name, base, (n) => {
        moved = n;
        track.progress(n);
      });
      return {
        response: new Response(body, {
          headers: {
            ...SECURITY_HEADERS,
            "content-type": "application/x-tar",
            "content-disposition": disposition(`${base}.tar`),
          },
        }),
        kind: "archive",
        bytes: () => moved,
      };
    }
    const digests = target.query.has("sha256");
    const entries = await readEntries(store, target.name, digests);
    const accept = request.headers.get("accept") ?? "";
    if (target.query.has("json") || (/^application\/json/.test(accept))) {
      return fixed(jsonReply(200, entries.map((e) => entryJson(e, digests))), "listing");
    }
    const html = directoryPage({
      name: target.name,
      entries,
      query: target.query,
      writable: caller.mayWrite(target.name),
      csrf: caller.csrf,
      user: caller.user === "anonymous" ? "" : caller.user,
      accounts: this.#config.logins.enabled,
    });
    return fixed(htmlReply(200, html), "page");
  }

  async #write(
    request: Request,
    target: Target,
    caller: Caller,
    body: BodyReader,
    track: Track,
  ): Promise<Omit<Handled, "op" | "name" | "user">> {
    // Refusals (a read-only server or account, the public area, no login) come from the store's access model.
    const store = caller.files;
    if (request.method === "MKCOL") {
      await body.cancel();
      const slash = target.name.lastIndexOf("/");
      const result = await makeDirectory(
        store,
        target.name.slice(0, Math.max(0, slash)),
        target.name.slice(slash + 1),
      );
      if (result.status >= 300) throw new HttpError(result.status, result.message);
      return fixed(textReply(201, `created directory: ${target.name}`), "directory");
    }
    if (request.method === "PUT") {
      if (target.directory) throw new HttpError(400, "a PUT names a file: the path ends in /");
      const length = request.headers.get("content-length");
      const declared = length !== null && /^\d{1,19}$/.test(length) ? Number(length) : undefined;
      track.start(declared);
      const bytes = await put(store, target.name, body, declared, track.progress);
      return {
        response: textReply(201, `created: ${target.name}, ${bytes} bytes`),
        kind: "file",
        bytes: () => bytes,
      };
    }
    // POST: a form to a directory.
    if (!target.directory) {
      throw new HttpError(405, "POST goes to a directory (a path ending in /)", {
        allow: "GET, HEAD, PUT",
      });
    }
    const type = request.headers.get("content-type") ?? "";
    track.start();
    const results = await postForm(
      store,
      target.name,
      type,
      body,
      caller.csrf,
      (_, n) => track.progress(n),
    );
    const bytes = results.reduce((n, r) => n + r.bytes, 0);
    const status = results.some((r) => r.status < 300) || results.length === 0
      ? 200
      : results[0].status;
    const json = /application\/json/.test(request.headers.get("accept") ?? "");
    const response = json
      ? jsonReply(status, { results })
      : htmlReply(status, resultsPage(results));
    return {
      response,
      kind: "file",
      bytes: () => bytes,
      message: results.map((r) => r.message).join("; "),
    };
  }
}

function fixedAs(response: Response, op: Op, name: string): Handled {
  return { response, op, name, kind: "page", bytes: () => 0 };
}

function redirect(location: string): Response {
  return new Response(null, { status: 301, headers: { ...SECURITY_HEADERS, location } });
}

function fixed(response: Response, kind: Handled["kind"]): Omit<Handled, "op" | "name" | "user"> {
  const length = Number(response.headers.get("content-length") ?? 0);
  return { response, kind, bytes: () => length };
}

/** A refusal as a response: text for scripts, the login page for a browser asked to log in. */
function refusal(
  request: Request,
  error: unknown,
  logins: HttpLogins,
): Omit<Handled, "op" | "name" | "user"> {
  const status = statusOf(error);
  const message = status === 500 && !(error instanceof HttpError)
    ? `internal error: ${(error as Error).message}`
    : (error as Error).message;
  const headers: Record<string, string> = error instanceof HttpError ? { ...error.headers } : {};
  const html = /text\/html/.test(request.headers.get("accept") ?? "");
  if (status === 401) {
    if (html) {
      headers["www-authenticate"] = 'FormLogin realm="fsd"';
      return {
        response: htmlReply(401, loginPage(logins.csrf, message), headers),
        message,
        bytes: () => 0,
      };
    }
    headers["www-authenticate"] = 'Basic realm="fsd", charset="UTF-8"';
  }
  if (request.body && !request.bodyUsed) request.body.cancel().catch(() => {});
  return {
    response: textReply(status, message, headers, request.method === "HEAD"),
    message,
    bytes: () => 0,
  };
}
