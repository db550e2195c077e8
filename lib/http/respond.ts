/**
 * How the HTTP face answers: the status for each store refusal, the
 * headers every response carries (nothing of this origin runs a served
 * file), and small text and JSON replies.
 */

import { ErrorCode, ProtocolError } from "../store/errors.ts";
import { BadTarget } from "./target.ts";

/** On every response: no sniffing, no framing, no scripts but the page's own. */
export const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on a form POST.
  "referrer-policy": "same-origin",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

/** On a served file's bytes: a sandbox, so an HTML or SVG file cannot act as this origin. */
export const FILE_CSP = "default-src 'none'; sandbox";

/** An HTTP status and the reason for it. */
export class HttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.headers = headers;
  }
}

/** The status a store refusal becomes (the fsd/1 code stays in the log). */
export function statusOf(error: unknown): number {
  if (error instanceof HttpError) return error.status;
  if (error instanceof BadTarget) return 400;
  if (!(error instanceof ProtocolError)) return 500;
  switch (error.code) {
    case ErrorCode.NOT_FOUND:
      return 404;
    case ErrorCode.ACCESS_VIOLATION:
      return /^name |^empty file name/.test(error.message) ? 400 : 403;
    case ErrorCode.FILE_EXISTS:
      return 409;
    case ErrorCode.DISK_FULL:
      return error.message.startsWith("upload too large") ? 413 : 507;
    case ErrorCode.NO_SUCH_USER:
      return 401;
    default:
      return 500;
  }
}

const encoder = new TextEncoder();

/** A reply of this origin with `text` as its body, its length said (HEAD: no body). */
function reply(
  status: number,
  text: string,
  type: string,
  headers: Record<string, string>,
  head = false,
): Response {
  const body = encoder.encode(text);
  return new Response(head ? null : body, {
    status,
    headers: {
      ...SECURITY_HEADERS,
      "content-type": type,
      "content-length": String(body.length),
      ...headers,
    },
  });
}

/** A short plain-text reply (HEAD: no body). */
export function textReply(
  status: number,
  message: string,
  headers: Record<string, string> = {},
  head = false,
): Response {
  return reply(status, `${message}\n`, "text/plain; charset=utf-8", headers, head);
}

/** A JSON reply. */
export function jsonReply(
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): Response {
  return reply(status, JSON.stringify(value) + "\n", "application/json; charset=utf-8", {
    "cache-control": "no-store",
    ...headers,
  });
}

/** An HTML page of this origin. */
export function htmlReply(
  status: number,
  html: string,
  headers: Record<string, string> = {},
): Response {
  return reply(status, html, "text/html; charset=utf-8", {
    "cache-control": "no-store",
    ...headers,
  });
}
