/* share.c - compiling once for several processes (clai_context_share_builds in clai.h).
 *
 * A claim is a file in the shared directory, named after what it stands for: a program's front end, or one
 * launch shape of one kernel (program.c names them). The process that compiles it holds an exclusive
 * flock() on the file meanwhile and writes one byte into it once the compilation succeeded; the others
 * either wait for the lock (a leader, which needs the kernel next) or pass on (a helper, which only
 * compiles). A leader that waits leaves a mark (the claim's name + ".want"): the helper, finding it when it
 * is done, leaves the next kernel to the leader and compiles the one after, so that when the leader has
 * caught up the two leapfrog instead of the leader waiting for each kernel in turn. flock() locks belong
 * to the open file and go away with the process, so one that dies while compiling leaves an empty,
 * unlocked claim, and the next taker compiles it again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#define CLAI__HAVE_FLOCK 1
#else
#define CLAI__HAVE_FLOCK 0
#endif

#if CLAI__HAVE_FLOCK
#define CLAI__CLAIM_WAIT_S 300.0

int clai__claim_take(const char *dir, const char *name, int wait, int *fd) {
  char path[4096];
  *fd = -1;
  if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return CLAI__CLAIM_NONE;
  int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (f < 0) return CLAI__CLAIM_NONE;
  /* A waiter polls (every millisecond: compilations take a tenth of a second and more) rather than block,
   * so that a holder that hangs costs it CLAI__CLAIM_WAIT_S, then it compiles alone. */
  const double give_up = clai__now() + CLAI__CLAIM_WAIT_S;
  int wants = 0;
  while (flock(f, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    if (e == EINTR) continue;
    if (e != EWOULDBLOCK || !wait || clai__now() > give_up) {
      close(f);
      return e == EWOULDBLOCK && !wait ? CLAI__CLAIM_BUSY : CLAI__CLAIM_NONE;
    }
    if (!wants) { /* tell the holder (clai__claim_wanted) */
      char want[4096 + 8];
      snprintf(want, sizeof want, "%s.want", path);
      const int w = open(want, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (w >= 0) close(w);
      wants = 1;
    }
    const struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  struct stat sb;
  if (fstat(f, &sb) == 0 && sb.st_size > 0) { /* compiled by whoever held it before */
    flock(f, LOCK_UN);
    close(f);
    return CLAI__CLAIM_DONE;
  }
  *fd = f;
  return CLAI__CLAIM_MINE;
}

int clai__claim_wanted(const char *dir, const char *name) {
  char want[4096 + 8];
  struct stat sb;
  if (snprintf(want, sizeof want, "%s/%s.want", dir, name) >= (int)sizeof want) return 0;
  return stat(want, &sb) == 0;
}

void clai__claim_release(int fd, int ok) {
  if (fd < 0) return;
  if (ok) {
    ssize_t w;
    do
      w = write(fd, "1", 1);
    while (w < 0 && errno == EINTR);
    /* a failed write only leaves the claim to be compiled again */
  }
  flock(fd, LOCK_UN);
  close(fd);
}
#else
int clai__claim_take(const char *dir, const char *name, int wait, int *fd) {
  (void)dir, (void)name, (void)wait;
  *fd = -1;
  return CLAI__CLAIM_NONE;
}
void clai__claim_release(int fd, int ok) { (void)fd, (void)ok; }
int clai__claim_wanted(const char *dir, const char *name) {
  (void)dir, (void)name;
  return 0;
}
#endif

clai_status clai_context_share_builds(clai_context *ctx, const char *dir, clai_share_role role) {
  const char *fn = "clai_context_share_builds";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (dir == NULL) {
    free(ctx->share_dir);
    ctx->share_dir = NULL;
    ctx->share_role = 0;
    return CLAI_OK;
  }
  if (role != CLAI_SHARE_LEAD && role != CLAI_SHARE_HELP)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: role is %d, must be CLAI_SHARE_LEAD or CLAI_SHARE_HELP", fn,
                       (int)role);
  if (!CLAI__HAVE_FLOCK) return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: this platform has no flock()", fn);
  struct stat sb;
  if (stat(dir, &sb) != 0)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: '%s': %s", fn, dir, strerror(errno));
  if (!S_ISDIR(sb.st_mode)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: '%s' is not a directory", fn, dir);
  char *copy = malloc(strlen(dir) + 1);
  if (copy == NULL) return clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "%s: out of host memory", fn);
  strcpy(copy, dir);
  free(ctx->share_dir);
  ctx->share_dir = copy;
  ctx->share_role = role;
  return CLAI_OK;
}
