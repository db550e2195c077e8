/** Test helpers for files and bytes: temporary directories, seeded random bytes, comparing, text. */

import assert from "node:assert/strict";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The names in directory `path`, sorted. */
export async function dirNames(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(path)) names.push(entry.name);
  return names.sort();
}

/** The index of the first byte where `a` and `b` differ, or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * Fails unless `actual` holds exactly `expected`'s bytes, naming `what`, both
 * lengths and the first differing offset. Use it for file contents instead
 * of node:assert's deepEqual, whose failure message diffs the arrays element
 * by element: 10,000 differing bytes take 17 s and 2 GiB, a 300 KB file more
 * than the machine has (the cluster test's 24 GiB out-of-memory kill).
 */
export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const at = firstDifference(actual, expected);
  if (at === -1) return;
  assert.fail(
    `${what}: ${actual.length} bytes where ${expected.length} were expected, ` +
      `first difference at byte ${at}`,
  );
}

/** A temporary directory, removed on dispose. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "fsd-test-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Bytes 0..n-1 of a fixed pseudo-random sequence (the same for a given seed). */
export function randomBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export const text = {
  encode: (s: string) => encoder.encode(s),
  decode: (b: Uint8Array) => decoder.decode(b),
};

/** Mounts a 128 KiB tmpfs on `path` (a disk that fills up); false where that is not allowed (not root, no CAP_SYS_ADMIN). */
export function mountSmallDisk(path: string): boolean {
  try {
    const args = ["-t", "tmpfs", "-o", "size=128k", "tmpfs", path];
    return new Deno.Command("mount", { args, stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

export function unmount(path: string): void {
  new Deno.Command("umount", { args: [path] }).outputSync();
}

let mountable: boolean | undefined;

/** Whether this process may mount a small disk (probed once: mounted on a temporary directory and unmounted). */
export function canMountSmallDisk(): boolean {
  if (mountable === undefined) {
    const probe = Deno.makeTempDirSync();
    mountable = mountSmallDisk(probe);
    if (mountable) unmount(probe);
    Deno.removeSync(probe);
  }
  return mountable;
}
