/*
 * The lock-step floor of this machine, outside Deno: two processes over
 * 127.0.0.1 TCP trade a 518-byte frame (a full fsd/1 DAT) for a 4-byte
 * answer (an ACK), ROUNDS times. With "block" each side sleeps in read()
 * until the other's bytes arrive, as tftp-hpa and fsd do; with "spin" it
 * polls without sleeping, which shows what the wake-ups cost.
 *
 *   cc -O2 -o pingpong bench/tcp_pingpong.c && ./pingpong 100000 block
 *
 * Prints: microseconds per round trip. bench/lockstep.ts builds and runs it
 * when a C compiler is installed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int spin;

static void read_exactly(int fd, char *buffer, int n) {
  for (int got = 0; got < n;) {
    int r = recv(fd, buffer + got, n - got, spin ? MSG_DONTWAIT : 0);
    if (r < 0 && spin) continue; /* nothing yet: ask again at once */
    if (r <= 0) {
      perror("recv");
      exit(1);
    }
    got += r;
  }
}

static void write_all(int fd, const char *buffer, int n) {
  for (int put = 0; put < n;) {
    int w = write(fd, buffer + put, n - put);
    if (w <= 0) {
      perror("write");
      exit(1);
    }
    put += w;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s ROUNDS block|spin\n", argv[0]);
    return 2;
  }
  int rounds = atoi(argv[1]);
  spin = strcmp(argv[2], "spin") == 0;
  int one = 1;
  struct sockaddr_in address = {0};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (bind(listener, (struct sockaddr *)&address, length) != 0 || listen(listener, 1) != 0 ||
      getsockname(listener, (struct sockaddr *)&address, &length) != 0) {
    perror("listen");
    return 1;
  }
  char buffer[518] = {0};
  pid_t child = fork();
  if (child == 0) { /* the receiving side: takes each frame, answers 4 bytes */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
      perror("connect");
      return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (int i = 0; i < rounds; i++) {
      read_exactly(fd, buffer, 518);
      write_all(fd, buffer, 4);
    }
    return 0;
  }
  int fd = accept(listener, NULL, NULL);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (int i = 0; i < rounds; i++) {
    write_all(fd, buffer, 518);
    read_exactly(fd, buffer, 4);
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  waitpid(child, NULL, 0);
  double us = ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / 1e3 / rounds;
  printf("%.1f\n", us);
  return 0;
}
