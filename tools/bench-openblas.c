/* bench-openblas.c - OpenBLAS's SGEMM as the CPU reference of `clai bench gemm`, loaded with dlopen when it
 * is installed (apt-get install libopenblas0), so neither libclai nor the tool depends on it. It runs on
 * as many threads as the machine has cores, unless OPENBLAS_NUM_THREADS says otherwise.
 *
 * OpenBLAS picks its kernels for the CPU once, when it is loaded, unless OPENBLAS_CORETYPE names them. A
 * release older than the CPU does not know its model and falls back far below it (Debian 12's 0.3.21 runs
 * its SSE3 "Prescott" kernels on Emerald Rapids, several times slower than its AVX-512 ones), which would
 * flatter libclai; bench_openblas_choose_kernels sets OPENBLAS_CORETYPE before then. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*get_corename_fn)(void);

/* The first of OpenBLAS's library names that loads, its name in *name; NULL when none does. */
static void *openblas_open(const char **name) {
  static const char *const names[] = {"libopenblas.so.0", "libopenblasp.so.0", "libopenblas.so"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    void *h = dlopen(names[i], RTLD_NOW);
    if (h != NULL) {
      *name = names[i];
      return h;
    }
  }
  return NULL;
}

/* ---- which kernels OpenBLAS runs ---------------------------------------------------------------------- */

enum { PROBE_OK, PROBE_ABSENT, PROBE_NO_NAME, PROBE_FAILED };

static struct {
  int decided;
  int user;          /* OPENBLAS_CORETYPE was set before */
  int found;         /* PROBE_*: what the probe of OpenBLAS on its own gave */
  char own[64];      /* the kernels OpenBLAS picks on its own, when found is PROBE_OK */
  const char *tried; /* the OPENBLAS_CORETYPE this CPU calls for, NULL when its own choice is as good */
  const char *below; /* what of the CPU its own choice leaves unused */
  char used[64];     /* the kernels it picks with tried set, "" when unknown */
  int set;           /* tried is set (unset again when OpenBLAS took no notice of it) */
  char line[256];
} kernels;

/* The kernels OpenBLAS picks when loaded with the environment as it is now, learnt in a child process:
 * OpenBLAS reads OPENBLAS_CORETYPE only when it is first loaded, so it must not be loaded into this one
 * yet. Writes the name into out and returns PROBE_OK, or another PROBE_*. Only while this process has a
 * single thread (a child of a threaded process may only call async-signal-safe functions, and dlopen is
 * not one). */
static int probe_corename(char *out, size_t cap) {
  out[0] = '\0';
  int fd[2];
  if (pipe(fd) != 0) return PROBE_FAILED;
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]), close(fd[1]);
    return PROBE_FAILED;
  }
  if (pid == 0) {
    close(fd[0]);
    setenv("OPENBLAS_NUM_THREADS", "1", 1); /* no thread pool to start for one question */
    const char *name;
    void *h = openblas_open(&name);
    if (h == NULL) _exit(PROBE_ABSENT);
    get_corename_fn get = (get_corename_fn)dlsym(h, "openblas_get_corename");
    const char *core = get != NULL ? get() : NULL;
    if (core == NULL) _exit(PROBE_NO_NAME);
    size_t len = strlen(core);
    _exit(write(fd[1], core, len) == (ssize_t)len ? PROBE_OK : PROBE_FAILED);
  }
  close(fd[1]);
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t got = read(fd[0], out + len, cap - len - 1);
    if (got > 0) len += (size_t)got;
    else if (got == 0 || errno != EINTR) break;
  }
  out[len] = '\0';
  close(fd[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return PROBE_FAILED;
  if (!WIFEXITED(status)) return PROBE_FAILED;
  int rc = WEXITSTATUS(status);
  return rc == PROBE_OK && len == 0 ? PROBE_FAILED : rc <= PROBE_FAILED ? rc : PROBE_FAILED;
}

#if defined(__x86_64__) && defined(__GNUC__)
static int is_one_of(const char *name, const char *const *list) {
  for (; *list != NULL; list++)
    if (strcasecmp(name, *list) == 0) return 1;
  return 0;
}
#endif

void bench_openblas_choose_kernels(void) {
  if (kernels.decided) return;
  kernels.decided = 1;
  const char *user = getenv("OPENBLAS_CORETYPE");
  if (user != NULL && user[0] != '\0') {
    kernels.user = 1;
    return;
  }
  /* OpenBLAS takes an empty value for a kernel set it does not know, and falls back to Prescott's */
  if (user != NULL) unsetenv("OPENBLAS_CORETYPE");
  kernels.found = probe_corename(kernels.own, sizeof kernels.own);
  if (kernels.found != PROBE_OK) return;
#if defined(__x86_64__) && defined(__GNUC__)
  /* OpenBLAS's names for its kernel sets (driver/others/dynamic.c) that use AVX-512, and AVX2 with FMA */
  static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
  static const char *const avx2[] = {"Haswell",        "Zen",       "SkylakeX",    "Cooperlake",
                                     "SapphireRapids", "Excavator", "Steamroller", NULL};
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && !is_one_of(kernels.own, avx512)) {
    kernels.tried = __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
    kernels.below = "AVX-512";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !is_one_of(kernels.own, avx2)) {
    kernels.tried = "Haswell";
    kernels.below = "AVX2 and FMA";
  }
  if (kernels.tried == NULL) return;
  setenv("OPENBLAS_CORETYPE", kernels.tried, 1);
  kernels.set = 1;
  /* Ask again: an OpenBLAS built for one CPU (without DYNAMIC_ARCH) ignores the variable, and one that
   * finds the CPU short of a kernel set's instructions picks another. */
  if (probe_corename(kernels.used, sizeof kernels.used) != PROBE_OK) kernels.used[0] = '\0';
  if (strcasecmp(kernels.used, kernels.own) == 0) {
    unsetenv("OPENBLAS_CORETYPE");
    kernels.set = 0;
  }
#endif
}

const char *bench_openblas_kernels(void) {
  const char *user = getenv("OPENBLAS_CORETYPE");
  if (!kernels.decided) {
    snprintf(kernels.line, sizeof kernels.line, "OpenBLAS kernels: not chosen (bench_openblas_choose_kernels)");
  } else if (kernels.user) {
    snprintf(kernels.line, sizeof kernels.line, "OpenBLAS kernels: %s (OPENBLAS_CORETYPE=%s, the user's)", user, user);
  } else if (kernels.found == PROBE_ABSENT) {
    snprintf(kernels.line, sizeof kernels.line, "OpenBLAS kernels: none (OpenBLAS not installed)");
  } else if (kernels.found == PROBE_NO_NAME) {
    snprintf(kernels.line, sizeof kernels.line,
             "OpenBLAS kernels: its own choice, unknown (no openblas_get_corename to ask)");
  } else if (kernels.found != PROBE_OK) {
    snprintf(kernels.line, sizeof kernels.line, "OpenBLAS kernels: its own choice (asking it which failed)");
  } else if (kernels.tried == NULL) {
    snprintf(kernels.line, sizeof kernels.line, "OpenBLAS kernels: %s (its own choice)", kernels.own);
  } else if (!kernels.set) {
    snprintf(kernels.line, sizeof kernels.line,
             "OpenBLAS kernels: %s (its own choice, below this CPU's %s; it takes no notice of "
             "OPENBLAS_CORETYPE=%s)",
             kernels.own, kernels.below, kernels.tried);
  } else {
    snprintf(kernels.line, sizeof kernels.line,
             "OpenBLAS kernels: %s (OPENBLAS_CORETYPE%s%s set by clai bench: OpenBLAS chose %s on its own, below "
             "this CPU's %s)",
             kernels.used[0] != '\0' ? kernels.used : kernels.tried,
             strcasecmp(kernels.used, kernels.tried) != 0 ? "=" : "",
             strcasecmp(kernels.used, kernels.tried) != 0 ? kernels.tried : "", kernels.own, kernels.below);
  }
  return kernels.line;
}

typedef struct blas_run {
  void *lib; /* OpenBLAS, open while the side lives */
  bench_sgemm_fn sgemm;
  float *a, *b, *c;
  int64_t m, n, k, batch;
  int trans_a, trans_b;
} blas_run;

static int run_blas(void *arg) {
  const blas_run *r = arg;
  const int64_t sa = r->m * r->k, sb = r->k * r->n, sc = r->m * r->n;
  const int lda = r->trans_a ? (int)r->m : (int)r->k, ldb = r->trans_b ? (int)r->k : (int)r->n;
  for (int64_t z = 0; z < r->batch; z++)
    r->sgemm(ROW_MAJOR, r->trans_a ? TRANS : NO_TRANS, r->trans_b ? TRANS : NO_TRANS, (int)r->m, (int)r->n, (int)r->k,
             1.0f, r->a + z * sa, lda, r->b + z * sb, ldb, 0.0f, r->c + z * sc, (int)r->n);
  return 0;
}

/* OpenBLAS loaded, its cblas_sgemm in *sgemm, running on as many threads as the machine has cores unless
 * OPENBLAS_NUM_THREADS says otherwise; NULL with the reason in why when it is not there or has no SGEMM. */
static void *openblas_load(const char **name, bench_sgemm_fn *sgemm, char *why, size_t cap) {
  void *h = openblas_open(name);
  if (h == NULL) {
    snprintf(why, cap, "OpenBLAS not installed (apt-get install libopenblas0)");
    return NULL;
  }
  *sgemm = (bench_sgemm_fn)dlsym(h, "cblas_sgemm");
  if (*sgemm == NULL) {
    snprintf(why, cap, "%s has no cblas_sgemm", *name);
    dlclose(h);
    return NULL;
  }
  set_threads_fn set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
  if (set_threads != NULL && getenv("OPENBLAS_NUM_THREADS") == NULL) set_threads((int)sysconf(_SC_NPROCESSORS_ONLN));
  return h;
}

bench_sgemm_fn bench_openblas_sgemm(char *why, size_t cap) {
  static bench_sgemm_fn fn;
  const char *name;
  if (fn == NULL) openblas_load(&name, &fn, why, cap); /* kept open for the process's life */
  return fn;
}

static void release_blas(void *arg) {
  blas_run *r = arg;
  free(r->a);
  free(r->b);
  free(r->c);
  dlclose(r->lib);
  free(r);
}

int bench_openblas_prepare(int64_t m, int64_t n, int64_t k, int64_t batch, int trans_a, int trans_b, bench_side *side,
                           bench_ref_result *r) {
  memset(r, 0, sizeof *r);
  memset(side, 0, sizeof *side);
  const char *name;
  bench_sgemm_fn sgemm;
  void *h = openblas_load(&name, &sgemm, r->why, sizeof r->why);
  if (h == NULL) return -1;
  get_threads_fn get_threads = (get_threads_fn)dlsym(h, "openblas_get_num_threads");
  get_corename_fn get_corename = (get_corename_fn)dlsym(h, "openblas_get_corename");
  const char *core = get_corename != NULL ? get_corename() : NULL;
  snprintf(r->what, sizeof r->what, "%s, %s%s%d threads", name, core != NULL ? core : "",
           core != NULL ? " kernels, " : "", get_threads != NULL ? get_threads() : -1);
  size_t sa = (size_t)(m * k), sb = (size_t)(k * n), sc = (size_t)(m * n);
  blas_run *run = calloc(1, sizeof *run);
  if (run != NULL) {
    *run = (blas_run){h, sgemm, NULL, NULL, NULL, m, n, k, batch, trans_a, trans_b};
    run->a = malloc(sa * batch * sizeof *run->a);
    run->b = malloc(sb * batch * sizeof *run->b);
    run->c = malloc(sc * batch * sizeof *run->c);
  }
  if (run == NULL || run->a == NULL || run->b == NULL || run->c == NULL) {
    if (run != NULL) release_blas(run);
    else dlclose(h);
    snprintf(r->why, sizeof r->why, "out of host memory");
    return -1;
  }
  for (size_t i = 0; i < sa * batch; i++) run->a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
  for (size_t i = 0; i < sb * batch; i++) run->b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
  *side = (bench_side){run_blas, NULL, release_blas, run, 0};
  return 0;
}
