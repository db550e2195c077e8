/**
 * The HTTP face's parsers against seeded random and damaged input: the
 * request target, Basic credentials, cookies and multipart bodies. Each
 * either answers or refuses with its own error (BadTarget, HttpError),
 * never anything else, and never reads more than it was given.
 */

import assert from "node:assert/strict";
import { basicCredentials, cookie } from "../../lib/http/auth.ts";
import { MultipartReader } from "../../lib/http/multipart.ts";
import { HttpError } from "../../lib/http/respond.ts";
import { BadTarget, parseTarget } from "../../lib/http/target.ts";

/** A small seeded generator (xorshift32), so a failure can be repeated. */
function random(seed: number) {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const PIECES = [
  "/",
  "..",
  ".",
  "%2e",
  "%2f",
  "%2F",
  "%00",
  "%",
  "%c0%ae",
  "\\",
  "a",
  "é",
  "?",
  "&",
  "=",
  "%ff",
  "//",
  ".fsd-upload-",
  "json",
  "tar",
];

Deno.test("http fuzz: request targets only answer or refuse with BadTarget", () => {
  const next = random(1337);
  for (let i = 0; i < 5000; i++) {
    const parts = Array.from(
      { length: 1 + Math.floor(next() * 12) },
      () => PIECES[Math.floor(next() * PIECES.length)],
    );
    const url = `http://x/${parts.join("")}`;
    try {
      const target = parseTarget(url);
      assert.ok(!target.name.split("/").includes(".."), url);
      assert.ok(!target.name.startsWith("/"), url);
      assert.ok(!target.name.includes("\\"), url);
    } catch (error) {
      assert.ok(error instanceof BadTarget, `${url}: ${error}`);
    }
  }
});

Deno.test("http fuzz: Basic credentials and cookies never throw", () => {
  const next = random(7);
  const alphabet = "Basic YWxpY2U6d29uZGVybGFuZA==:;= \u0000\u00ff";
  for (let i = 0; i < 5000; i++) {
    const text = Array.from(
      { length: Math.floor(next() * 60) },
      () => alphabet[Math.floor(next() * alphabet.length)],
    ).join("");
    basicCredentials(text);
    cookie(text, "fsd_session");
  }
  assert.deepEqual(basicCredentials("Basic YWxpY2U6d29uZGVybGFuZA=="), {
    user: "alice",
    password: "wonderland",
  });
});

Deno.test("http fuzz: damaged multipart bodies are refused with HttpError 400", async () => {
  const encoder = new TextEncoder();
  const good = encoder.encode(
    '--B\r\ncontent-disposition: form-data; name="csrf"\r\n\r\ntoken\r\n' +
      '--B\r\ncontent-disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello\r\n--B--\r\n',
  );
  const next = random(99);
  for (let i = 0; i < 2000; i++) {
    const body = good.slice(0, Math.floor(next() * (good.length + 1)));
    for (let j = 0; j < 3; j++) body[Math.floor(next() * body.length)] = Math.floor(next() * 256);
    // Fed in random small chunks.
    let at = 0;
    const read = () => {
      if (at >= body.length) return Promise.resolve(null);
      const n = 1 + Math.floor(next() * 16);
      const chunk = body.subarray(at, at + n);
      at += n;
      return Promise.resolve(chunk);
    };
    const reader = new MultipartReader(read, "B");
    try {
      for (let part = await reader.next(), k = 0; part && k < 10; part = await reader.next(), k++) {
        for await (const _ of reader.body()) { /* drained */ }
      }
    } catch (error) {
      assert.ok(error instanceof HttpError && error.status === 400, String(error));
    }
  }
  // The undamaged body: two parts, the file's bytes exact.
  let given = false;
  const reader = new MultipartReader(() => {
    if (given) return Promise.resolve(null);
    given = true;
    return Promise.resolve(good);
  }, "B");
  const fields: string[] = [];
  for (let part = await reader.next(); part; part = await reader.next()) {
    let text = "";
    for await (const chunk of reader.body()) text += new TextDecoder().decode(chunk);
    fields.push(`${part.field}:${part.filename ?? ""}:${text}`);
  }
  assert.deepEqual(fields, ["csrf::token", "file:a.txt:hello"]);
});
