/*
 * The floor of one stdio hop, in C: runs argv[1..] as a child and copies bytes
 * stdin -> child stdin and child stdout -> stdout with poll(2), nothing else.
 * bench/proxy.ts compiles it with `cc` when one is installed (the "relay-c" variant).
 */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int copy(int from, int to) {
  char buf[65536];
  ssize_t n = read(from, buf, sizeof buf);
  if (n <= 0) return -1;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(to, buf + off, (size_t)(n - off));
    if (w <= 0) return -1;
    off += w;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int in[2], out[2];
  if (pipe(in) || pipe(out)) return 1;
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]); close(in[1]); close(out[0]); close(out[1]);
    execvp(argv[1], argv + 1);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  signal(SIGPIPE, SIG_IGN);
  struct pollfd fds[2] = { { .fd = 0, .events = POLLIN }, { .fd = out[0], .events = POLLIN } };
  for (;;) {
    if (poll(fds, 2, -1) < 0) break;
    if (fds[0].revents && copy(0, in[1])) break;
    if (fds[1].revents && copy(out[0], 1)) break;
  }
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  return 0;
}
