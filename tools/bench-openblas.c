/* bench-openblas.c - OpenBLAS's SGEMM as the CPU reference of `clai bench gemm`, loaded with dlopen when it
 * is installed (apt-get install libopenblas0), so neither libclai nor the tool depends on it. It runs on
 * as many threads as the machine has cores, unless OPENBLAS_NUM_THREADS says otherwise. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);
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

typedef struct blas_run {
  sgemm_fn sgemm;
  const float *a, *b;
  float *c;
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

bench_sgemm_fn bench_openblas_sgemm(char *why, size_t cap) {
  static void *h;
  static bench_sgemm_fn fn;
  if (fn != NULL) return fn;
  const char *name;
  if (h == NULL) h = openblas_open(&name);
  if (h == NULL) {
    snprintf(why, cap, "OpenBLAS not installed (apt-get install libopenblas0)");
    return NULL;
  }
  fn = (bench_sgemm_fn)dlsym(h, "cblas_sgemm");
  set_threads_fn set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
  if (fn == NULL) snprintf(why, cap, "OpenBLAS without cblas_sgemm");
  else if (set_threads != NULL && getenv("OPENBLAS_NUM_THREADS") == NULL) set_threads((int)sysconf(_SC_NPROCESSORS_ONLN));
  return fn;
}

int bench_openblas(int64_t m, int64_t n, int64_t k, int64_t batch, int trans_a, int trans_b, int samples,
                   double min_seconds, bench_ref_result *r) {
  memset(r, 0, sizeof *r);
  const char *name;
  void *h = openblas_open(&name);
  if (h == NULL) {
    snprintf(r->why, sizeof r->why, "OpenBLAS not installed (apt-get install libopenblas0)");
    return -1;
  }
  sgemm_fn sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
  set_threads_fn set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
  get_threads_fn get_threads = (get_threads_fn)dlsym(h, "openblas_get_num_threads");
  get_corename_fn get_corename = (get_corename_fn)dlsym(h, "openblas_get_corename");
  if (sgemm == NULL) {
    snprintf(r->why, sizeof r->why, "%s has no cblas_sgemm", name);
    dlclose(h);
    return -1;
  }
  if (set_threads != NULL && getenv("OPENBLAS_NUM_THREADS") == NULL) set_threads((int)sysconf(_SC_NPROCESSORS_ONLN));
  const char *core = get_corename != NULL ? get_corename() : NULL;
  snprintf(r->what, sizeof r->what, "%s, %s%s%d threads", name, core != NULL ? core : "",
           core != NULL ? " kernels, " : "", get_threads != NULL ? get_threads() : -1);
  size_t sa = (size_t)(m * k), sb = (size_t)(k * n), sc = (size_t)(m * n);
  float *a = malloc(sa * batch * sizeof *a), *b = malloc(sb * batch * sizeof *b), *c = malloc(sc * batch * sizeof *c);
  if (a == NULL || b == NULL || c == NULL) {
    free(a);
    free(b);
    free(c);
    dlclose(h);
    snprintf(r->why, sizeof r->why, "out of host memory");
    return -1;
  }
  for (size_t i = 0; i < sa * batch; i++) a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
  for (size_t i = 0; i < sb * batch; i++) b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
  double flop = 2.0 * (double)m * (double)n * (double)k * (double)batch;
  blas_run run = {sgemm, a, b, c, m, n, k, batch, trans_a, trans_b};
  bench_measure(run_blas, NULL, &run, flop, samples, min_seconds, &r->median, &r->min, &r->max);
  free(a);
  free(b);
  free(c);
  dlclose(h);
  return 0;
}
