/**
 * The HTTP face's own requests, under /.fsd/: the page's style and script,
 * the login form's target and the logout; and the rule every unsafe request
 * from a browser follows (same origin only).
 */

import { concatAll } from "../bytes/source_sink.ts";
import { APP_CSS, APP_JS } from "./assets.ts";
import type { HttpLogins } from "./auth.ts";
import { BodyReader } from "./body.ts";
import { HttpError, SECURITY_HEADERS } from "./respond.ts";

/** Largest login or logout form. */
const MAX_FORM = 4096;

/** Answers `path` under /.fsd/; `user` is who logged in, for the log. */
export async function answerOwn(
  request: Request,
  path: string,
  address: string,
  logins: HttpLogins,
): Promise<{ response: Response; user?: string }> {
  const asset = (body: string, type: string) => ({
    response: new Response(body, {
      headers: { ...SECURITY_HEADERS, "content-type": type, "cache-control": "max-age=300" },
    }),
  });
  if (path === "/.fsd/app.css") return asset(APP_CSS, "text/css; charset=utf-8");
  if (path === "/.fsd/app.js") return asset(APP_JS, "text/javascript; charset=utf-8");
  const known = path === "/.fsd/logout" || (path === "/.fsd/login" && logins.enabled);
  if (request.method !== "POST" || !known) throw new HttpError(404, `not found: ${path}`);
  sameOrigin(request);
  const form = await smallForm(request);
  const home = (cookie: string) =>
    new Response(null, {
      status: 303,
      headers: { ...SECURITY_HEADERS, location: "/", "set-cookie": cookie },
    });
  if (path === "/.fsd/logout") return { response: home(logins.logout(request)) };
  if (form.get("csrf") !== logins.csrf) {
    throw new HttpError(403, "form refused: missing or wrong CSRF token (reload the page)");
  }
  const user = form.get("user") ?? "";
  return { response: home(await logins.login(user, form.get("password") ?? "", address)), user };
}

/** A browser's unsafe request must come from a page of this origin (no CSRF from elsewhere). */
export function sameOrigin(request: Request): void {
  const site = request.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") {
    throw new HttpError(403, `refused: a cross-site request (${site})`);
  }
  const origin = request.headers.get("origin");
  if (origin === null) return;
  if (origin === "null") throw new HttpError(403, "refused: a request from an opaque origin");
  let from: string;
  try {
    from = new URL(origin).host;
  } catch {
    throw new HttpError(403, "refused: a malformed Origin");
  }
  if (from !== request.headers.get("host")) {
    throw new HttpError(403, `refused: a cross-origin request from ${origin}`);
  }
}

/** A urlencoded form of at most MAX_FORM bytes. */
async function smallForm(request: Request): Promise<URLSearchParams> {
  const tooLarge = new HttpError(413, `form too large: at most ${MAX_FORM} bytes`);
  if (!(Number(request.headers.get("content-length") ?? "0") <= MAX_FORM)) throw tooLarge;
  const reader = new BodyReader(
    request.body ?? new ReadableStream({ start: (c) => c.close() }),
    10_000,
  );
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let chunk = await reader.read(); chunk !== null; chunk = await reader.read()) {
    total += chunk.length;
    if (total > MAX_FORM) {
      await reader.cancel();
      throw tooLarge;
    }
    parts.push(chunk);
  }
  return new URLSearchParams(new TextDecoder().decode(concatAll(parts)));
}
