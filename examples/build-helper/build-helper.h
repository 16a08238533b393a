/* build-helper.h - a second process that compiles ahead of this one on a cold kernel cache (the trainer,
 * examples/fashion-mnist, and the Llama runner, examples/llama; see clai_context_share_builds in clai.h).
 *
 * POCL compiles one kernel at a time per process, whatever the cores. A program that starts itself again
 * with `--as-build-helper DIR` appended to its command line, and has that copy run its first steps in a
 * helper context (CLAI_SHARE_HELP: everything compiled, nothing computed) while it leads (CLAI_SHARE_LEAD),
 * compiles on two cores: each program and kernel shape once, by whichever process gets to it first.
 *
 *   build_helper h = BUILD_HELPER_NONE;
 *   build_helper_start(&h);              before creating the context: the helper builds its own beside it
 *   ...create ctx...
 *   build_helper_lead(&h, ctx);          ctx shares the helper's directory
 *   ...the first steps...
 *   build_helper_stop(&h, ctx);          reaps the helper (stops it if it still runs), removes the directory
 *
 * The helper's side: a context created with clai_context_params.eager = -2 (nothing built at init), then
 * clai_context_share_builds(ctx, dir, CLAI_SHARE_HELP), the same first steps on data of the same shapes,
 * and build_helper_orphaned(dir) before it exits. Linux only (/proc/self/exe and /proc/self/cmdline);
 * anything that fails means no helper, never an error. */
#ifndef CLAI_EXAMPLE_BUILD_HELPER_H
#define CLAI_EXAMPLE_BUILD_HELPER_H

#include <sys/types.h>

#include <clai.h>

typedef struct build_helper {
  pid_t pid;       /* -1: none */
  char dir[4096];  /* the claims' directory, "" when none */
} build_helper;

#define BUILD_HELPER_NONE {-1, ""}

/* Starts this program again as the helper (stdin, stdout and stderr on /dev/null), in a fresh directory
 * under $TMPDIR (else /tmp); 0 when it runs. Needs two CPUs or more. */
int build_helper_start(build_helper *h);

/* Makes ctx the leader of h's directory; stops the helper when ctx cannot share. No-op without a helper. */
void build_helper_lead(build_helper *h, clai_context *ctx);

/* Ends the sharing: ctx (may be NULL) stops sharing, the helper is reaped (sent SIGTERM first if it still
 * runs), the directory removed. Safe to call again. */
void build_helper_stop(build_helper *h, clai_context *ctx);

/* For the helper, at its end: removes dir when the process that started it is gone (nobody else will).
 * parent: getppid() at the helper's start. */
void build_helper_orphaned(const char *dir, pid_t parent);

#endif
