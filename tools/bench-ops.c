/* bench-ops.c - `clai bench ops`: throughput of libclai's memory-bound ops on the chosen device, beside the
 * device's copy bandwidth (clai_copy) and a plain C loop doing the same op on the CPU with 2 threads,
 * measured in the same run with the same method as `clai bench gemm` (bench_measure: median of repeated
 * timings after a warm-up, libclai and the reference taking turns). Memory-bound ops are reported in GB/s of the bytes an op must move (each input
 * read once, the output written once); compute-bound entries (conv2d, attention) can report GFLOP/s: the
 * table of cases below is the one place to add them. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "clai.h"

/* ---- a 2-thread pool for the C references: the calling thread is worker 0 ------------------------------ */

#define REF_THREADS 2

typedef struct ref_pool {
  pthread_t th[REF_THREADS - 1];
  pthread_barrier_t start, done;
  void (*job)(void *arg, int t, int nt);
  void *arg;
  int quit;
} ref_pool;

static void *ref_worker(void *p) {
  ref_pool *pool = p;
  const int t = 1; /* REF_THREADS is 2: one helper beside the calling thread */
  for (;;) {
    pthread_barrier_wait(&pool->start);
    if (pool->quit) break;
    pool->job(pool->arg, t, REF_THREADS);
    pthread_barrier_wait(&pool->done);
  }
  return NULL;
}

static ref_pool *ref_pool_new(void) {
  ref_pool *pool = calloc(1, sizeof *pool);
  if (pool == NULL) return NULL;
  pthread_barrier_init(&pool->start, NULL, REF_THREADS);
  pthread_barrier_init(&pool->done, NULL, REF_THREADS);
  for (int i = 0; i < REF_THREADS - 1; i++) {
    if (pthread_create(&pool->th[i], NULL, ref_worker, pool) != 0) abort();
  }
  return pool;
}

static void ref_pool_run(ref_pool *pool, void (*job)(void *, int, int), void *arg) {
  pool->job = job;
  pool->arg = arg;
  pthread_barrier_wait(&pool->start);
  job(arg, 0, REF_THREADS);
  pthread_barrier_wait(&pool->done);
}

static void ref_pool_free(ref_pool *pool) {
  if (pool == NULL) return;
  pool->quit = 1;
  pthread_barrier_wait(&pool->start);
  for (int i = 0; i < REF_THREADS - 1; i++) pthread_join(pool->th[i], NULL);
  pthread_barrier_destroy(&pool->start);
  pthread_barrier_destroy(&pool->done);
  free(pool);
}

/* ---- the cases ------------------------------------------------------------------------------------------ */

/* What one case works on: up to four device tensors and their host twins for the C reference. */
typedef struct ops_state {
  clai_context *ctx;
  int64_t rows, cols;           /* the [rows, cols] matrix the case works on */
  clai_tensor *t[4];            /* t[0] the output; inputs after it */
  float *h[4];                  /* host copies, same order */
  float partial[REF_THREADS];   /* per-thread results of the reference sum over everything */
} ops_state;

typedef struct ops_case {
  const char *name;
  const char *unit;              /* "GB/s" (memory-bound) or "GFLOP/s" */
  /* Creates the tensors and host buffers of s (s->rows/cols are set); returns 0 on success. */
  int (*setup)(ops_state *s);
  /* Bytes moved (GB/s) or floating-point operations (GFLOP/s) by one run. */
  double (*amount)(const ops_state *s);
  int (*run)(void *s);                          /* the libclai op, enqueued */
  void (*ref)(void *s, int t, int nt);          /* the C reference's share t of nt; NULL: none */
  const char *what;                             /* the shapes, for the table */
} ops_case;

static void rows_of(const ops_state *s, int t, int nt, int64_t *r0, int64_t *r1) {
  *r0 = s->rows * t / nt;
  *r1 = s->rows * (t + 1) / nt;
}

static int mk(ops_state *s, int i, int ndim, const int64_t *shape, float fill) {
  if (clai_tensor_init(s->ctx, &s->t[i], CLAI_DTYPE_F32, ndim, shape) != CLAI_OK) return -1;
  size_t n = (size_t)clai_tensor_numel(s->t[i]);
  s->h[i] = malloc(n * sizeof(float));
  if (s->h[i] == NULL) return -1;
  for (size_t k = 0; k < n; k++) s->h[i][k] = fill == 0.0f ? (float)((k * 7919) % 1000) / 250.0f - 2.0f : fill;
  /* the output's host twin is written once by the reference before timing, so its pages are mapped */
  return clai_tensor_write(s->t[i], s->h[i], n * sizeof(float)) == CLAI_OK ? 0 : -1;
}

static double numel_bytes(const ops_state *s, int i) { return 4.0 * (double)clai_tensor_numel(s->t[i]); }

/* copy: the device's copy bandwidth */
static int setup_copy(ops_state *s) {
  int64_t n[1] = {s->rows * s->cols * 4};
  return mk(s, 0, 1, n, 1.0f) || mk(s, 1, 1, n, 0.0f);
}
static double amount_copy(const ops_state *s) { return 2 * numel_bytes(s, 0); }
static int run_copy(void *p) {
  ops_state *s = p;
  return clai_copy(s->ctx, s->t[0], s->t[1]);
}
static void ref_copy(void *p, int t, int nt) {
  ops_state *s = p;
  int64_t n = clai_tensor_numel(s->t[0]), i0 = n * t / nt, i1 = n * (t + 1) / nt;
  memcpy(s->h[0] + i0, s->h[1] + i0, (size_t)(i1 - i0) * sizeof(float));
}

/* add: [R, C] + [R, C] */
static int setup_add(ops_state *s) {
  int64_t sh[2] = {s->rows, s->cols};
  return mk(s, 0, 2, sh, 1.0f) || mk(s, 1, 2, sh, 0.0f) || mk(s, 2, 2, sh, 0.0f);
}
static double amount_add(const ops_state *s) { return 3 * numel_bytes(s, 0); }
static int run_add(void *p) {
  ops_state *s = p;
  return clai_binary(s->ctx, CLAI_ADD, s->t[0], s->t[1], s->t[2]);
}
static void ref_add(void *p, int t, int nt) {
  ops_state *s = p;
  int64_t n = clai_tensor_numel(s->t[0]), i0 = n * t / nt, i1 = n * (t + 1) / nt;
  float *o = s->h[0];
  const float *a = s->h[1], *b = s->h[2];
  for (int64_t i = i0; i < i1; i++) o[i] = a[i] + b[i];
}

/* add with broadcasting: [R, C] + [C] */
static int setup_add_bcast(ops_state *s) {
  int64_t sh[2] = {s->rows, s->cols}, row[1] = {s->cols};
  return mk(s, 0, 2, sh, 1.0f) || mk(s, 1, 2, sh, 0.0f) || mk(s, 2, 1, row, 0.0f);
}
static double amount_add_bcast(const ops_state *s) { return 2 * numel_bytes(s, 0) + numel_bytes(s, 2); }
static void ref_add_bcast(void *p, int t, int nt) {
  ops_state *s = p;
  int64_t r0, r1, c = s->cols;
  rows_of(s, t, nt, &r0, &r1);
  for (int64_t r = r0; r < r1; r++) {
    float *o = s->h[0] + r * c;
    const float *a = s->h[1] + r * c, *b = s->h[2];
    for (int64_t j = 0; j < c; j++) o[j] = a[j] + b[j];
  }
}

/* a unary op: out = 2 * x (clai_scale) */
static int run_scale(void *p) {
  ops_state *s = p;
  return clai_scale(s->ctx, s->t[0], s->t[1], 2.0f);
}
static void ref_scale(void *p, int t, int nt) {
  ops_state *s = p;
  int64_t n = clai_tensor_numel(s->t[0]), i0 = n * t / nt, i1 = n * (t + 1) / nt;
  float *o = s->h[0];
  const float *x = s->h[1];
  for (int64_t i = i0; i < i1; i++) o[i] = 2.0f * x[i];
}

/* softmax over the last axis */
static int setup_rows(ops_state *s) {
  int64_t sh[2] = {s->rows, s->cols};
  return mk(s, 0, 2, sh, 1.0f) || mk(s, 1, 2, sh, 0.0f);
}
static double amount_rows(const ops_state *s) { return 2 * numel_bytes(s, 0); }
static int run_softmax(void *p) {
  ops_state *s = p;
  return clai_softmax(s->ctx, s->t[0], s->t[1], NULL);
}
static void ref_softmax(void *p, int t, int nt) {
  ops_state *s = p;
  int64_t r0, r1;
  rows_of(s, t, nt, &r0, &r1);
  bench_ref_softmax(s->h[0], s->h[1], r0, r1, s->cols);
}

/* layernorm over the last axis with gamma and beta */
static int setup_layernorm(ops_state *s) {
  int64_t sh[2] = {s->rows, s->cols}, row[1] = {s->cols};
  return mk(s, 0, 2, sh, 1.0f) || mk(s, 1, 2, sh, 0.0f) || mk(s, 2, 1, row, 0.0f) || mk(s, 3, 1, row, 0.0f);
}
static int run_layernorm(void *p) {
  ops_state *s = p;
  return clai_layernorm(s->ctx, s->t[0], s->t[1], s->t[2], s->t[3], 1e-5f, NULL, NULL);
}
static void ref_layernorm(void *p, int t, int nt) {
  ops_state *s = p;
  int64_t r0, r1;
  rows_of(s, t, nt, &r0, &r1);
  bench_ref_layernorm(s->h[0], s->h[1], s->h[2], s->h[3], r0, r1, s->cols, 1e-5f);
}

/* sum over each row, and over everything */
static int setup_sum_rows(ops_state *s) {
  int64_t sh[2] = {s->rows, s->cols}, col[1] = {s->rows};
  return mk(s, 0, 1, col, 1.0f) || mk(s, 1, 2, sh, 0.0f);
}
static double amount_sum(const ops_state *s) { return numel_bytes(s, 1) + numel_bytes(s, 0); }
static int run_sum_rows(void *p) {
  ops_state *s = p;
  return clai_reduce(s->ctx, CLAI_REDUCE_SUM, s->t[0], s->t[1], -1, 0);
}
static void ref_sum_rows(void *p, int t, int nt) {
  ops_state *s = p;
  int64_t r0, r1;
  rows_of(s, t, nt, &r0, &r1);
  bench_ref_sum_rows(s->h[0], s->h[1], r0, r1, s->cols);
}
static int setup_sum_cols(ops_state *s) {
  int64_t sh[2] = {s->rows, s->cols}, row[1] = {s->cols};
  return mk(s, 0, 1, row, 1.0f) || mk(s, 1, 2, sh, 0.0f);
}
static int run_sum_cols(void *p) {
  ops_state *s = p;
  return clai_reduce(s->ctx, CLAI_REDUCE_SUM, s->t[0], s->t[1], 0, 0);
}
static void ref_sum_cols(void *p, int t, int nt) {
  ops_state *s = p;
  int64_t c0 = s->cols * t / nt, c1 = s->cols * (t + 1) / nt;
  bench_ref_sum_cols(s->h[0], s->h[1], c0, c1, s->rows, s->cols);
}
static int setup_sum_all(ops_state *s) {
  int64_t sh[2] = {s->rows, s->cols};
  return mk(s, 0, 0, NULL, 1.0f) || mk(s, 1, 2, sh, 0.0f);
}
static int run_sum_all(void *p) {
  ops_state *s = p;
  return clai_reduce(s->ctx, CLAI_REDUCE_SUM, s->t[0], s->t[1], CLAI_AXIS_ALL, 0);
}
static void ref_sum_all(void *p, int t, int nt) {
  ops_state *s = p;
  int64_t n = clai_tensor_numel(s->t[1]), i0 = n * t / nt, i1 = n * (t + 1) / nt;
  s->partial[t] = bench_ref_sum(s->h[1], i0, i1);
  if (t == 0) s->h[0][0] = 0.0f; /* the threads' partials are added after the join: negligible */
}

static const ops_case cases[] = {
    {"copy", "GB/s", setup_copy, amount_copy, run_copy, ref_copy, "[4R*C] f32 (clai_copy / memcpy)"},
    {"add", "GB/s", setup_add, amount_add, run_add, ref_add, "[R,C] + [R,C]"},
    {"add-bcast", "GB/s", setup_add_bcast, amount_add_bcast, run_add, ref_add_bcast, "[R,C] + [C]"},
    {"scale", "GB/s", setup_rows, amount_rows, run_scale, ref_scale, "2 * [R,C] (unary)"},
    {"softmax", "GB/s", setup_rows, amount_rows, run_softmax, ref_softmax, "[R,C], last axis"},
    {"layernorm", "GB/s", setup_layernorm, amount_rows, run_layernorm, ref_layernorm, "[R,C], gamma, beta"},
    {"sum-rows", "GB/s", setup_sum_rows, amount_sum, run_sum_rows, ref_sum_rows, "[R,C] -> [R]"},
    {"sum-cols", "GB/s", setup_sum_cols, amount_sum, run_sum_cols, ref_sum_cols, "[R,C] -> [C] (bias gradient)"},
    {"sum-all", "GB/s", setup_sum_all, amount_sum, run_sum_all, ref_sum_all, "[R,C] -> []"},
    /* conv2d and attention (GFLOP/s) go here */
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

/* ---- measuring ------------------------------------------------------------------------------------------ */

typedef struct ref_run {
  ref_pool *pool;
  const ops_case *c;
  ops_state *s;
} ref_run;

static int run_ref(void *p) {
  ref_run *r = p;
  ref_pool_run(r->pool, r->c->ref, r->s);
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void median_min_max(double *v, int n, double *med, double *mn, double *mx) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  *med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  *mn = v[0];
  *mx = v[n - 1];
}

static int finish_clai(void *p) { return clai_sync(((ops_state *)p)->ctx); }

static void ops_usage(FILE *f) {
  fprintf(f, "usage: clai bench ops [--rows R] [--cols C] [--only NAME,...] [--samples S] [--min-time SECONDS]\n"
             "                      [--no-ref] [--json]\n"
             "  throughput of memory-bound ops on [R, C] f32 (default 4096 x 1024), data on the device, median\n"
             "  (min-max) of S timings after a warm-up; beside a plain C loop on %d threads. Cases:",
          REF_THREADS);
  for (int i = 0; i < NCASES; i++) fprintf(f, " %s", cases[i].name);
  fprintf(f, "\n");
}

static int selected(const char *only, const char *name) {
  if (only == NULL) return 1;
  size_t n = strlen(name);
  for (const char *p = only; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

int bench_ops(int argc, char **argv) {
  int64_t rows = 4096, cols = 1024;
  int samples = 9, json = 0, refs = 1;
  double min_time = 0.05;
  const char *only = NULL;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--json") == 0) {
      json = 1;
    } else if (strcmp(arg, "--no-ref") == 0) {
      refs = 0;
    } else if (strcmp(arg, "--rows") == 0 && val) {
      rows = atoll(val);
      i++;
    } else if (strcmp(arg, "--cols") == 0 && val) {
      cols = atoll(val);
      i++;
    } else if (strcmp(arg, "--only") == 0 && val) {
      only = val;
      i++;
    } else if (strcmp(arg, "--samples") == 0 && val) {
      samples = atoi(val);
      i++;
    } else if (strcmp(arg, "--min-time") == 0 && val) {
      min_time = atof(val);
      i++;
    } else {
      ops_usage(strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 ? stdout : stderr);
      return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 ? 0 : 2;
    }
  }
  if (rows < 1 || cols < 1 || samples < 1 || samples > 64 || min_time < 0) {
    ops_usage(stderr);
    return 2;
  }
  char err[4096];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st != CLAI_OK) {
    fprintf(stderr, "clai bench: %s: %s\n", clai_status_name(st), err);
    return 1;
  }
  clai_device_info dev;
  clai_context_device_info(ctx, -1, &dev);
  ref_pool *pool = refs ? ref_pool_new() : NULL;
  if (!json) {
    printf("device: %s / %s (driver %s); R = %lld, C = %lld\n", dev.platform, dev.name, dev.driver_version,
           (long long)rows, (long long)cols);
    printf("%-10s %-34s %9s %17s %9s %6s %8s %8s\n", "op", "shapes", "libclai", "(min-max)", "C x2", "ratio",
           "vs copy", "ms");
  }
  int rc = 0;
  double copy_bw = -1;
  for (int ci = 0; ci < NCASES && rc == 0; ci++) {
    const ops_case *c = &cases[ci];
    if (!selected(only, c->name) && strcmp(c->name, "copy") != 0) continue;
    ops_state s;
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    s.rows = rows;
    s.cols = cols;
    double med = 0, mn = 0, mx = 0, rmed = -1, rmn, rmx;
    if (c->setup(&s) != 0) {
      fprintf(stderr, "clai bench ops: setting up %s failed: %s\n", c->name, clai_errmsg(ctx));
      rc = 1;
    } else {
      double amount = c->amount(&s);
      /* libclai and the C reference take turns, one bench_measure timing each, so that the load of a
       * shared machine, which drifts over seconds, weighs on both alike; then median, min and max. */
      double g[64], r[64], unused0, unused1;
      int have_ref = pool != NULL && c->ref != NULL;
      ref_run rr = {pool, c, &s};
      for (int k = 0; k < samples && rc == 0; k++) {
        if (have_ref) bench_measure(run_ref, NULL, &rr, amount, 1, min_time, &r[k], &unused0, &unused1);
        rc = bench_measure(c->run, finish_clai, &s, amount, 1, min_time, &g[k], &unused0, &unused1);
      }
      if (rc != 0) fprintf(stderr, "clai bench ops: %s: %s\n", c->name, clai_errmsg(ctx));
      if (rc == 0) {
        median_min_max(g, samples, &med, &mn, &mx);
        if (have_ref) median_min_max(r, samples, &rmed, &rmn, &rmx);
      }
      if (strcmp(c->name, "copy") == 0) copy_bw = med;
      if (rc == 0 && selected(only, c->name)) {
        double ms = amount / (med * 1e9) * 1e3;
        if (json) {
          printf("{\"op\": \"%s\", \"shapes\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"unit\": \"%s\", "
                 "\"value\": %.2f, \"min\": %.2f, \"max\": %.2f, \"ms\": %.4f",
                 c->name, c->what, (long long)rows, (long long)cols, c->unit, med, mn, mx, ms);
          if (rmed > 0) printf(", \"c_threads\": %d, \"c_value\": %.2f", REF_THREADS, rmed);
          if (copy_bw > 0) printf(", \"copy_gbs\": %.2f", copy_bw);
          printf(", \"device\": \"%s\"}\n", dev.name);
        } else {
          printf("%-10s %-34s %9.2f (%7.2f-%7.2f)", c->name, c->what, med, mn, mx);
          if (rmed > 0) printf(" %9.2f %5.2fx", rmed, med / rmed);
          else printf(" %9s %6s", "-", "");
          if (copy_bw > 0 && strcmp(c->unit, "GB/s") == 0) printf(" %7.2fx", med / copy_bw);
          else printf(" %8s", "-");
          printf(" %8.3f\n", ms);
        }
        fflush(stdout);
      }
    }
    for (int i = 0; i < 4; i++) {
      clai_tensor_free(s.t[i]);
      free(s.h[i]);
    }
  }
  if (!json && rc == 0)
    printf("GB/s of the bytes each op must move; C x2: a plain C loop on %d threads (row ops built -O3 "
           "-ffast-math); ratio: libclai / C; vs copy: libclai / clai_copy bandwidth; ms: libclai's median time\n",
           REF_THREADS);
  ref_pool_free(pool);
  clai_context_free(ctx);
  return rc;
}
