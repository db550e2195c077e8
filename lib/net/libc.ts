/**
 * The C library's calls fsd makes through Deno's FFI (glibc on Linux):
 * `BlockingUdp`'s socket, and the positional read of a descriptor another
 * thread of the process holds (TFTP's blocking sender). Loaded once, and
 * only where Deno grants --allow-ffi: queried first, never prompted.
 */

export const EINTR = 4;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  inet_pton: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  inet_ntop: { parameters: ["i32", "buffer", "buffer", "u32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | null | undefined;

/** glibc's symbols, loaded once; null where that cannot be (not Linux, no --allow-ffi, no glibc). */
export function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (Deno.build.os !== "linux") return libc;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return libc;
  try {
    libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  } catch {
    // musl, or no C library by that name: Deno's calls serve
  }
  return libc;
}

/** The calling thread's errno, as the last failed call left it. */
export function errno(c: Libc): number {
  const at = c.__errno_location();
  return at ? new Deno.UnsafePointerView(at).getInt32() : 0;
}
