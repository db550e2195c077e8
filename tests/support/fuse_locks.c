/*
 * A FUSE file system (libfuse 3) that mirrors a directory but whose flock(2)
 * falls short as some network file systems' do, for the test that fsd's
 * start-up probe refuses to serve it (tests/net/shared_dir_probe_test.ts):
 *
 *   fuse_locks fail   SOURCE MOUNTPOINT   flock fails with ENOLCK (NFSv3 without lockd)
 *   fuse_locks ignore SOURCE MOUNTPOINT   flock succeeds and locks nothing (locks that are
 *                                         not seen through another handle)
 *
 * Returns once MOUNTPOINT is mounted, serving it from the background until it
 * is unmounted (umount MOUNTPOINT). Build:
 *   cc -o fuse_locks fuse_locks.c $(pkg-config --cflags --libs fuse3)
 */

#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int source = -1; /* the mirrored directory */
static int ignore_locks = 0;

/* "/a/b" as a path relative to the source directory ("." for the root). */
static const char *rel(const char *path) { return path[1] ? path + 1 : "."; }

static int fail(int result) { return result < 0 ? -errno : 0; }

static int fl_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  if (fi) return fail(fstat(fi->fh, st));
  return fail(fstatat(source, rel(path), st, AT_SYMLINK_NOFOLLOW));
}

static int fl_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)offset, (void)fi, (void)flags;
  int fd = openat(source, rel(path), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return -errno;
  DIR *dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return -errno;
  }
  for (struct dirent *e; (e = readdir(dir));) fill(buf, e->d_name, NULL, 0, 0);
  closedir(dir);
  return 0;
}

static int fl_open(const char *path, struct fuse_file_info *fi) {
  int fd = openat(source, rel(path), fi->flags & ~O_NOFOLLOW);
  if (fd < 0) return -errno;
  fi->fh = fd;
  return 0;
}

static int fl_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  int fd = openat(source, rel(path), fi->flags, mode);
  if (fd < 0) return -errno;
  fi->fh = fd;
  return 0;
}

static int fl_read(const char *path, char *buf, size_t size, off_t offset,
                   struct fuse_file_info *fi) {
  (void)path;
  ssize_t n = pread(fi->fh, buf, size, offset);
  return n < 0 ? -errno : (int)n;
}

static int fl_write(const char *path, const char *buf, size_t size, off_t offset,
                    struct fuse_file_info *fi) {
  (void)path;
  ssize_t n = pwrite(fi->fh, buf, size, offset);
  return n < 0 ? -errno : (int)n;
}

static int fl_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  close(fi->fh);
  return 0;
}

static int fl_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  return fail(datasync ? fdatasync(fi->fh) : fsync(fi->fh));
}

static int fl_flock(const char *path, struct fuse_file_info *fi, int op) {
  (void)path, (void)fi, (void)op;
  return ignore_locks ? 0 : -ENOLCK;
}

static int fl_unlink(const char *path) { return fail(unlinkat(source, rel(path), 0)); }
static int fl_rmdir(const char *path) { return fail(unlinkat(source, rel(path), AT_REMOVEDIR)); }
static int fl_mkdir(const char *path, mode_t mode) { return fail(mkdirat(source, rel(path), mode)); }

static int fl_rename(const char *from, const char *to, unsigned int flags) {
  return fail(renameat2(source, rel(from), source, rel(to), flags));
}

static int fl_link(const char *from, const char *to) {
  return fail(linkat(source, rel(from), source, rel(to), 0));
}

static int fl_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  if (fi) return fail(ftruncate(fi->fh, size));
  int fd = openat(source, rel(path), O_WRONLY);
  if (fd < 0) return -errno;
  int result = fail(ftruncate(fd, size));
  close(fd);
  return result;
}

static int fl_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  if (fi) return fail(futimens(fi->fh, tv));
  return fail(utimensat(source, rel(path), tv, AT_SYMLINK_NOFOLLOW));
}

static int fl_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  if (fi) return fail(fchmod(fi->fh, mode));
  return fail(fchmodat(source, rel(path), mode, 0));
}

static int fl_access(const char *path, int mask) {
  return fail(faccessat(source, rel(path), mask, 0));
}

static int fl_statfs(const char *path, struct statvfs *st) {
  (void)path;
  return fail(fstatvfs(source, st));
}

static void *fl_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  cfg->use_ino = 1;     /* the source's inode numbers: fsd compares them */
  cfg->entry_timeout = 0;
  cfg->attr_timeout = 0;
  cfg->negative_timeout = 0;
  return NULL;
}

static const struct fuse_operations ops = {
    .init = fl_init,
    .getattr = fl_getattr,
    .readdir = fl_readdir,
    .open = fl_open,
    .create = fl_create,
    .read = fl_read,
    .write = fl_write,
    .release = fl_release,
    .fsync = fl_fsync,
    .flock = fl_flock,
    .unlink = fl_unlink,
    .rmdir = fl_rmdir,
    .mkdir = fl_mkdir,
    .rename = fl_rename,
    .link = fl_link,
    .truncate = fl_truncate,
    .utimens = fl_utimens,
    .chmod = fl_chmod,
    .access = fl_access,
    .statfs = fl_statfs,
};

int main(int argc, char *argv[]) {
  if (argc != 4 || (strcmp(argv[1], "fail") && strcmp(argv[1], "ignore"))) {
    fprintf(stderr, "usage: %s fail|ignore SOURCE MOUNTPOINT\n", argv[0]);
    return 2;
  }
  ignore_locks = strcmp(argv[1], "ignore") == 0;
  source = open(argv[2], O_RDONLY | O_DIRECTORY);
  if (source < 0) {
    perror(argv[2]);
    return 1;
  }
  char *args[] = {argv[0], "-s", "-o", "fsname=fuse_locks", argv[3], NULL};
  return fuse_main(5, args, &ops, NULL);
}
