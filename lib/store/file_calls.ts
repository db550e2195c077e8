/**
 * The metadata calls of the server's read path (realPath, stat, lstat,
 * open, readLink), synchronous where that cannot stall it and handed to
 * Deno's blocking threads where it could.
 *
 * An async call costs a hand-off to a thread and back: one small file's
 * calls (realPath, stat, open, the root's stat) take about 45 µs made
 * synchronously and 115-240 µs async (bench/fs_calls.ts), and in
 * `fsd get -r` of a tree the server is the bottleneck. But a synchronous
 * call on a stalled network file system (NFS, GlusterFS over FUSE, CIFS)
 * would freeze every client and every deadline with it, and a path can
 * reach one from anywhere (a mount under the directory, a symlink in it).
 * So the calls are synchronous only while the machine has no mount whose
 * calls could wait on a network or on a program (every one is a disk, a
 * memory or a kernel file system), which only /proc/self/mountinfo tells:
 * where fsd may not read it (Deno allows it only with --allow-all) or off
 * Linux, they stay async. A call finding the mount table read over
 * REFRESH_MS ago reads it again first, so a network file system mounted
 * later turns the calls async within that time. A file's contents are read
 * synchronously under the same rule, or when the file is on a block device
 * (`onBlockDevice`: its reads cannot leave its own file system, whatever
 * fsd may read), only up to SYNC_READ_BYTES (lib/bytes; a small file whole;
 * a large one's later reads overlap the network), except by a TFTP sender,
 * which reads each block straight into its datagram (the source's readSync,
 * offered under the same rule); uploads keep their own calls (staging.ts).
 */

import { now } from "../bytes/source_sink.ts";

export interface FileCalls {
  /** Whether the calls are made synchronously now (the mount table read again first when due). */
  syncNow(): Promise<boolean>;
  realPath(path: string): Promise<string>;
  stat(path: string): Promise<Deno.FileInfo>;
  lstat(path: string): Promise<Deno.FileInfo>;
  open(path: string, options?: Deno.OpenOptions): Promise<Deno.FsFile>;
  readLink(path: string): Promise<string>;
}

/** Always async: Deno's calls, each on a blocking thread. */
export const ASYNC_CALLS: FileCalls = {
  syncNow: () => Promise.resolve(false),
  realPath: (path) => Deno.realPath(path),
  stat: (path) => Deno.stat(path),
  lstat: (path) => Deno.lstat(path),
  open: (path, options) => Deno.open(path, options),
  readLink: (path) => Deno.readLink(path),
};

/**
 * File systems whose calls cannot wait on a network or a user-space program:
 * on a disk, in memory, or the kernel's own. Any other type (nfs, cifs,
 * ceph, 9p, virtiofs, every fuse.*, autofs, one not known here) means async.
 */
const LOCAL_TYPES = new Set([
  "ext2",
  "ext3",
  "ext4",
  "xfs",
  "btrfs",
  "f2fs",
  "jfs",
  "reiserfs",
  "zfs",
  "vfat",
  "exfat",
  "ntfs3",
  "squashfs",
  "iso9660",
  "erofs",
  "overlay",
  "tmpfs",
  "ramfs",
  "devtmpfs",
  "proc",
  "sysfs",
  "devpts",
  "cgroup",
  "cgroup2",
  "mqueue",
  "hugetlbfs",
  "debugfs",
  "tracefs",
  "securityfs",
  "pstore",
  "bpf",
  "configfs",
  "fusectl",
  "binfmt_misc",
  "efivarfs",
  "nsfs",
  "selinuxfs",
]);

/** How long a reading of the mount table is trusted. */
export const REFRESH_MS = 2000;

const MOUNTINFO = "/proc/self/mountinfo";

/**
 * Whether every mount `mountinfo`'s text lists is of a type in LOCAL_TYPES;
 * a line that cannot be read, or an empty table, counts as not.
 */
export function onlyLocalMounts(mountinfo: string): boolean {
  let mounts = 0;
  for (const line of mountinfo.split("\n")) {
    if (line === "") continue;
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (dash < 6 || fields.length < dash + 2 || !LOCAL_TYPES.has(fields[dash + 1])) return false;
    mounts++;
  }
  return mounts > 0;
}

/** The server's calls: synchronous while every mount is local (see above), else async. */
class MountCalls implements FileCalls {
  #sync = false;
  #checked = -Infinity;
  #checking: Promise<void> | undefined;

  syncNow(): Promise<boolean> {
    return this.#run(() => true, () => Promise.resolve(false));
  }

  /**
   * `made` (the call made synchronously) or `handed` (to Deno's threads), as
   * the mount table says; a table read over REFRESH_MS ago is read again
   * first, so a mount made meanwhile counts before the call (an idle server
   * is not left trusting an old reading).
   */
  #run<T>(made: () => T, handed: () => Promise<T>): Promise<T> {
    if (performance.now() - this.#checked <= REFRESH_MS) return this.#sync ? now(made) : handed();
    return (this.#checking ??= this.check()).then(() => this.#sync ? made() : handed());
  }

  /** Reads the mount table now (once before the first call). */
  async check(): Promise<void> {
    try {
      this.#sync = onlyLocalMounts(await Deno.readTextFile(MOUNTINFO));
    } catch {
      this.#sync = false;
    } finally {
      this.#checked = performance.now();
      this.#checking = undefined;
    }
  }

  realPath(path: string): Promise<string> {
    return this.#run(() => Deno.realPathSync(path), () => Deno.realPath(path));
  }

  stat(path: string): Promise<Deno.FileInfo> {
    return this.#run(() => Deno.statSync(path), () => Deno.stat(path));
  }

  lstat(path: string): Promise<Deno.FileInfo> {
    return this.#run(() => Deno.lstatSync(path), () => Deno.lstat(path));
  }

  open(path: string, options?: Deno.OpenOptions): Promise<Deno.FsFile> {
    return this.#run(() => Deno.openSync(path, options), () => Deno.open(path, options));
  }

  readLink(path: string): Promise<string> {
    return this.#run(() => Deno.readLinkSync(path), () => Deno.readLink(path));
  }
}

/**
 * Whether a file whose FileInfo says `dev` lives on a block device's file
 * system (ext4, xfs, vfat, ... on a disk: the device's major number is not
 * 0). Its contents can then be read synchronously whatever the rest of the
 * machine mounts, and whatever fsd may read: an open file's reads stay on
 * its own file system. NFS, CIFS, FUSE (GlusterFS), tmpfs, overlay and
 * btrfs have anonymous devices (major 0) and do not count; a network block
 * device (iSCSI, nbd) looks like a disk here, as it does to the mount table,
 * and so does a FUSE file system on a disk (fuseblk: ntfs-3g, exfat-fuse),
 * which the mount table would refuse: its reads wait on a local program.
 * Linux's dev_t keeps the major number's low 12 bits in bits 8-19 and the
 * rest from bit 44 up (glibc's gnu_dev_major).
 */
export function onBlockDevice(dev: number | null | undefined): boolean {
  if (Deno.build.os !== "linux" || !dev) return false;
  const major = Math.floor(dev / 2 ** 8) % 2 ** 12 + Math.floor(dev / 2 ** 44) * 2 ** 12;
  return major !== 0;
}

let shared: Promise<FileCalls> | undefined;

/** The calls every served directory of this process uses, its mount table read once first. */
export function fileCalls(): Promise<FileCalls> {
  return shared ??= (async () => {
    if (Deno.build.os !== "linux") return ASYNC_CALLS;
    // Asked first: where reading it is not granted, Deno would prompt on a terminal.
    if (Deno.permissions.querySync({ name: "read", path: MOUNTINFO }).state !== "granted") {
      return ASYNC_CALLS;
    }
    const calls = new MountCalls();
    await calls.check();
    return calls;
  })();
}
