/* build-helper.c - see build-helper.h. */
#include "build-helper.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Removes the claims' directory (its files are flat). */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d != NULL) {
    struct dirent *e;
    char path[4096 + 512];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

int build_helper_start(build_helper *h) {
  h->pid = -1, h->dir[0] = '\0';
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return -1;
  /* This program's command line, from the kernel: argv as main() got it, before any subcommand's parsing. */
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return -1;
  exe[n] = '\0';
  static char cmd[65536];
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  ssize_t got;
  while (len < sizeof cmd && (got = read(fd, cmd + len, sizeof cmd - len)) > 0) len += (size_t)got;
  close(fd);
  if (len == 0 || len >= sizeof cmd) return -1;
  char *args[260];
  int na = 0;
  for (size_t i = 0; i < len && na < 256; i += strlen(cmd + i) + 1) args[na++] = cmd + i;
  if (na == 0 || na >= 256) return -1;
  const char *tmp = getenv("TMPDIR");
  snprintf(h->dir, sizeof h->dir, "%s/clai-build-XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
  if (mkdtemp(h->dir) == NULL) {
    h->dir[0] = '\0';
    return -1;
  }
  args[na++] = (char *)"--as-build-helper";
  args[na++] = h->dir;
  args[na] = NULL;
  posix_spawn_file_actions_t fa;
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc == 0) {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&h->pid, exe, &fa, NULL, args, environ) != 0) rc = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  if (rc != 0) {
    remove_dir(h->dir);
    h->pid = -1, h->dir[0] = '\0';
    return -1;
  }
  return 0;
}

void build_helper_lead(build_helper *h, clai_context *ctx) {
  if (h->dir[0] != '\0' && clai_context_share_builds(ctx, h->dir, CLAI_SHARE_LEAD) != CLAI_OK)
    build_helper_stop(h, ctx);
}

void build_helper_stop(build_helper *h, clai_context *ctx) {
  if (h->pid > 0) {
    int status;
    if (waitpid(h->pid, &status, WNOHANG) == 0) {
      kill(h->pid, SIGTERM);
      waitpid(h->pid, &status, 0);
    }
    h->pid = -1;
  }
  if (h->dir[0] != '\0') {
    if (ctx != NULL) clai_context_share_builds(ctx, NULL, CLAI_SHARE_LEAD);
    remove_dir(h->dir);
    h->dir[0] = '\0';
  }
}

void build_helper_orphaned(const char *dir, pid_t parent) {
  if (getppid() != parent) remove_dir(dir);
}
