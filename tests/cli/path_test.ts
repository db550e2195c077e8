/**
 * lib/path.ts gives node:path's POSIX results: the hand-picked names every
 * sandbox and client path meets, then a seeded corpus of random ones.
 */

import assert from "node:assert/strict";
import { rng } from "../fsd/fuzz.ts";
import posix from "node:path/posix";
import { basename, dirname, join, normalize } from "../../lib/path.ts";

const PICKED = [
  "",
  ".",
  "..",
  "/",
  "//",
  "///",
  "a",
  "a/",
  "a//",
  "/a",
  "//a",
  "a/b",
  "a//b",
  "a/b/",
  "/a/b//",
  "./a",
  "../a",
  "a/..",
  "a/../..",
  "/..",
  "/../a",
  "a/./b/../c",
  ".fsd-upload-x",
  "a/.hidden",
  "dir/file.txt",
  "../../etc/passwd",
  "/srv/files/../x",
  "a/b/c/../../..",
  "...",
  "a/.../b",
];

/** A seeded generator, so a failure names a corpus that can be run again. */
function* corpus(seed: number, count: number): Generator<string> {
  const alphabet = ["a", "b", "/", "/", ".", ".", "..", "x.y", ""];
  const next = rng(seed);
  for (let i = 0; i < count; i++) {
    const parts = Math.floor(next() * 8);
    yield Array.from({ length: parts }, () => alphabet[Math.floor(next() * alphabet.length)])
      .join("");
  }
}

Deno.test("path: normalize, dirname and basename as node:path's POSIX ones", () => {
  for (const path of [...PICKED, ...corpus(20, 3000)]) {
    assert.equal(normalize(path), posix.normalize(path), `normalize(${JSON.stringify(path)})`);
    assert.equal(dirname(path), posix.dirname(path), `dirname(${JSON.stringify(path)})`);
    assert.equal(basename(path), posix.basename(path), `basename(${JSON.stringify(path)})`);
  }
});

Deno.test("path: join as node:path's POSIX one, with empty parts and none", () => {
  assert.equal(join(), posix.join());
  const names = [...PICKED, ...corpus(33, 400)];
  for (let i = 0; i + 2 < names.length; i += 3) {
    const parts = names.slice(i, i + 3);
    assert.equal(join(...parts), posix.join(...parts), `join(${JSON.stringify(parts)})`);
    assert.equal(join(parts[0]), posix.join(parts[0]), `join(${JSON.stringify(parts[0])})`);
  }
});
