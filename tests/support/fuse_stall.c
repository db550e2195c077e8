/*
 * A FUSE file system (libfuse 3) standing in for a stalled network file
 * system, for the test of what a stalled mount holds up
 * (tests/store/stalled_mount_test.ts):
 *
 *   fuse_stall CONTROL MOUNTPOINT
 *
 * MOUNTPOINT holds one file, "stuck" ("ok\n"). Looking it up stalls, as a
 * lookup on an NFS server that stopped answering does: until the file
 * CONTROL/release exists, a lookup prints "stalled" and waits for it (at
 * most 60 s), then answers; once it exists, lookups answer at once.
 * Nothing is cached (entry and attribute timeouts 0), so every lookup
 * before the release waits. Runs in the foreground and prints "mounted" once the
 * kernel has the mount; ends when MOUNTPOINT is unmounted. Build:
 *   cc -o fuse_stall fuse_stall.c $(pkg-config --cflags --libs fuse3)
 */

#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char CONTENT[] = "ok\n";
static char release[4096];

static void say(const char *line) {
  printf("%s\n", line);
  fflush(stdout);
}

/* Waits until the release file exists, polling every 10 ms for at most 60 s. */
static void stall(void) {
  if (access(release, F_OK) == 0) return;
  say("stalled");
  struct timespec tick = {0, 10 * 1000 * 1000};
  for (int n = 0; n < 6000 && access(release, F_OK) != 0; n++) nanosleep(&tick, NULL);
}

static int st_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  memset(st, 0, sizeof *st);
  if (strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (strcmp(path, "/stuck") != 0) return -ENOENT;
  if (fi == NULL) stall(); /* a lookup by name, not an open file's fstat */
  st->st_mode = S_IFREG | 0644;
  st->st_nlink = 1;
  st->st_size = sizeof CONTENT - 1;
  return 0;
}

static int st_open(const char *path, struct fuse_file_info *fi) {
  if (strcmp(path, "/stuck") != 0) return -ENOENT;
  return (fi->flags & O_ACCMODE) == O_RDONLY ? 0 : -EACCES;
}

static int st_read(const char *path, char *buf, size_t size, off_t offset,
                   struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  if (offset >= (off_t)(sizeof CONTENT - 1)) return 0;
  size_t left = sizeof CONTENT - 1 - (size_t)offset;
  if (size > left) size = left;
  memcpy(buf, CONTENT + offset, size);
  return (int)size;
}

static void *st_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  cfg->entry_timeout = 0;
  cfg->attr_timeout = 0;
  cfg->negative_timeout = 0;
  say("mounted");
  return NULL;
}

static const struct fuse_operations ops = {
    .init = st_init,
    .getattr = st_getattr,
    .open = st_open,
    .read = st_read,
};

int main(int argc, char *argv[]) {
  if (argc != 3) {
    fprintf(stderr, "usage: fuse_stall CONTROL MOUNTPOINT\n");
    return 2;
  }
  snprintf(release, sizeof release, "%s/release", argv[1]);
  char *args[] = {argv[0], "-f", argv[2], NULL};
  return fuse_main(3, args, &ops, NULL);
}
