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

/* The shape of a convolution or attention case (the compute-bound cases). */
typedef struct net_shape {
  int64_t n, c, h, w, o, k, pad;   /* conv2d: x [n, c, h, w], w [o, c, k, k], padding pad, stride 1 */
  int64_t b, heads, l, d;          /* attention: [b, heads, l, d] */
  int causal;
} net_shape;

/* What one case works on: up to four device tensors and their host twins for the C reference. */
typedef struct ops_state {
  clai_context *ctx;
  int64_t rows, cols;           /* the [rows, cols] matrix the case works on */
  clai_tensor *t[4];            /* t[0] the output; inputs after it */
  float *h[4];                  /* host copies, same order */
  float partial[REF_THREADS];   /* per-thread results of the reference sum over everything */
  const net_shape *net;         /* the compute-bound cases' shapes */
  float *work;                  /* their host workspace (im2col columns, attention scores) */
  bench_sgemm_fn sgemm;         /* OpenBLAS, for their references */
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
  const net_shape *net;                         /* compute-bound cases: their shapes (NULL otherwise) */
  /* A reference in phases (2-thread C loops and OpenBLAS calls); replaces ref when not NULL. */
  void (*ref_phases)(ops_state *s, struct ref_pool *pool);
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

/* ---- compute-bound cases: conv2d as the Fashion-MNIST CNN has it, attention ---------------------------- */

static int64_t conv_out(const net_shape *g) { return g->h + 2 * g->pad - g->k + 1; } /* square, stride 1 */

/* conv2d 5x5, padding 2, bias and relu fused: out [n, o, oh, ow] (t0), x (t1), w (t2), bias (t3) */
static int setup_conv(ops_state *s) {
  const net_shape *g = s->net;
  const int64_t oh = conv_out(g), so[4] = {g->n, g->o, oh, oh}, sx[4] = {g->n, g->c, g->h, g->w},
                sw[4] = {g->o, g->c, g->k, g->k}, sb[1] = {g->o};
  if (mk(s, 0, 4, so, 1.0f) || mk(s, 1, 4, sx, 0.0f) || mk(s, 2, 4, sw, 0.0f) || mk(s, 3, 1, sb, 0.0f)) return -1;
  for (int64_t i = 0; i < g->o * g->c * g->k * g->k; i++) s->h[2][i] *= 0.05f;
  if (clai_tensor_write(s->t[2], s->h[2], (size_t)(g->o * g->c * g->k * g->k) * 4) != CLAI_OK) return -1;
  char why[256];
  s->sgemm = bench_openblas_sgemm(why, sizeof why);
  /* the reference's columns [c*k*k, n*oh*ow], then its GEMM result [o, n*oh*ow] */
  s->work = s->sgemm ? malloc((size_t)((g->c * g->k * g->k + g->o) * g->n * oh * oh) * sizeof(float)) : NULL;
  return 0;
}
static double amount_conv(const ops_state *s) {
  const net_shape *g = s->net;
  const double oh = (double)conv_out(g);
  return 2.0 * (double)g->n * (double)g->o * oh * oh * (double)(g->c * g->k * g->k);
}
static int run_conv(void *p) {
  ops_state *s = p;
  clai_conv2d_params cp;
  memset(&cp, 0, sizeof cp);
  cp.pad_top = cp.pad_bottom = cp.pad_left = cp.pad_right = s->net->pad;
  cp.activation = CLAI_ACT_RELU;
  return clai_conv2d(s->ctx, s->t[0], s->t[1], s->t[2], s->t[3], &cp);
}
/* The CPU reference as Caffe-style CPU libraries do it: im2col (2 threads), one OpenBLAS SGEMM
 * [o, ckk] x [ckk, n*oh*ow], then bias + relu while writing NCHW (2 threads). */
static void conv_im2col(void *p, int t, int nt) {
  ops_state *s = p;
  const net_shape *g = s->net;
  const int64_t oh = conv_out(g), cols = g->n * oh * oh, rows = g->c * g->k * g->k;
  for (int64_t r = rows * t / nt; r < rows * (t + 1) / nt; r++) {
    const int64_t c = r / (g->k * g->k), kh = r / g->k % g->k, kw = r % g->k;
    float *dst = s->work + r * cols;
    for (int64_t n = 0; n < g->n; n++)
      for (int64_t y = 0; y < oh; y++) {
        const int64_t iy = y - g->pad + kh;
        const float *src = s->h[1] + ((n * g->c + c) * g->h + iy) * g->w;
        for (int64_t x = 0; x < oh; x++) {
          const int64_t ix = x - g->pad + kw;
          *dst++ = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w ? src[ix] : 0.0f;
        }
      }
  }
}
static void conv_epilogue(void *p, int t, int nt) {
  ops_state *s = p;
  const net_shape *g = s->net;
  const int64_t plane = conv_out(g) * conv_out(g), cols = g->n * plane;
  /* the GEMM wrote [o, n*plane] after the columns in work; move it to [n, o, plane] with bias and relu */
  const float *gemm = s->work + (g->c * g->k * g->k) * cols;
  for (int64_t no = g->n * g->o * t / nt; no < g->n * g->o * (t + 1) / nt; no++) {
    const int64_t n = no / g->o, o = no % g->o;
    const float *src = gemm + o * cols + n * plane;
    float *dst = s->h[0] + no * plane;
    const float b = s->h[3][o];
    for (int64_t i = 0; i < plane; i++) {
      const float v = src[i] + b;
      dst[i] = v > 0.0f ? v : 0.0f;
    }
  }
}
static void ref_conv(ops_state *s, struct ref_pool *pool);

/* The two gradients at the same shapes, grad_out (t2) given: conv*-dw computes grad_w [o, c, k, k] (t0) from x
 * (t1), conv*-dx grad_x [n, c, h, w] (t0) from w (t1). */
static int setup_conv_grad(ops_state *s, int data) {
  const net_shape *g = s->net;
  const int64_t oh = conv_out(g), sy[4] = {g->n, g->o, oh, oh}, sx[4] = {g->n, g->c, g->h, g->w},
                sw[4] = {g->o, g->c, g->k, g->k};
  if (mk(s, 0, 4, data ? sx : sw, 1.0f) || mk(s, 1, 4, data ? sw : sx, 0.0f) || mk(s, 2, 4, sy, 0.0f)) return -1;
  char why[256];
  s->sgemm = bench_openblas_sgemm(why, sizeof why);
  /* the reference's columns [c*k*k, n*oh*ow], then grad_out as rows [o, n*oh*ow] */
  s->work = s->sgemm ? malloc((size_t)((g->c * g->k * g->k + g->o) * g->n * oh * oh) * sizeof(float)) : NULL;
  return 0;
}
static int setup_conv_dw(ops_state *s) { return setup_conv_grad(s, 0); }
static int setup_conv_dx(ops_state *s) { return setup_conv_grad(s, 1); }
static void conv_grad_params(const ops_state *s, clai_conv2d_params *cp) {
  memset(cp, 0, sizeof *cp);
  cp->pad_top = cp->pad_bottom = cp->pad_left = cp->pad_right = s->net->pad;
}
static int run_conv_dw(void *p) {
  ops_state *s = p;
  clai_conv2d_params cp;
  conv_grad_params(s, &cp);
  return clai_conv2d_backward_weight(s->ctx, s->t[0], NULL, s->t[1], s->t[2], &cp);
}
static int run_conv_dx(void *p) {
  ops_state *s = p;
  clai_conv2d_params cp;
  conv_grad_params(s, &cp);
  return clai_conv2d_backward_data(s->ctx, s->t[0], s->t[2], s->t[1], &cp);
}
/* The references: grad_out regrouped as rows [o, n*plane] after the columns in work (2 threads); the weight
 * gradient is im2col(x) and one OpenBLAS SGEMM rows x columns^T; the data gradient one SGEMM w^T x rows into
 * the columns, then col2im (2 threads, a plane each, taps summed in order). */
static void conv_gy_rows(void *p, int t, int nt) {
  ops_state *s = p;
  const net_shape *g = s->net;
  const int64_t plane = conv_out(g) * conv_out(g), cols = g->n * plane;
  float *rows = s->work + (g->c * g->k * g->k) * cols;
  for (int64_t no = g->n * g->o * t / nt; no < g->n * g->o * (t + 1) / nt; no++) {
    const int64_t n = no / g->o, o = no % g->o;
    memcpy(rows + o * cols + n * plane, s->h[2] + no * plane, (size_t)plane * sizeof(float));
  }
}
static void conv_col2im(void *p, int t, int nt) {
  ops_state *s = p;
  const net_shape *g = s->net;
  const int64_t oh = conv_out(g), cols = g->n * oh * oh;
  for (int64_t nc = g->n * g->c * t / nt; nc < g->n * g->c * (t + 1) / nt; nc++) {
    const int64_t n = nc / g->c, c = nc % g->c;
    float *dst = s->h[0] + nc * g->h * g->w;
    memset(dst, 0, (size_t)(g->h * g->w) * sizeof(float));
    for (int64_t kh = 0; kh < g->k; kh++)
      for (int64_t kw = 0; kw < g->k; kw++) {
        const float *src = s->work + ((c * g->k + kh) * g->k + kw) * cols + n * oh * oh;
        for (int64_t y = 0; y < oh; y++) {
          const int64_t iy = y - g->pad + kh;
          if (iy < 0 || iy >= g->h) continue;
          for (int64_t x = 0; x < oh; x++) {
            const int64_t ix = x - g->pad + kw;
            if (ix >= 0 && ix < g->w) dst[iy * g->w + ix] += src[y * oh + x];
          }
        }
      }
  }
}
static void ref_conv_dw(ops_state *s, struct ref_pool *pool);
static void ref_conv_dx(ops_state *s, struct ref_pool *pool);

/* attention [b, heads, l, d], f32: out (t0), q (t1), k (t2), v (t3) */
static int setup_attention(ops_state *s) {
  const net_shape *g = s->net;
  const int64_t sh[4] = {g->b, g->heads, g->l, g->d};
  if (mk(s, 0, 4, sh, 1.0f) || mk(s, 1, 4, sh, 0.0f) || mk(s, 2, 4, sh, 0.0f) || mk(s, 3, 4, sh, 0.0f)) return -1;
  char why[256];
  s->sgemm = bench_openblas_sgemm(why, sizeof why);
  s->work = s->sgemm ? malloc((size_t)(g->l * g->l) * sizeof(float)) : NULL; /* one head's scores at a time */
  return 0;
}
static double amount_attention(const ops_state *s) {
  const net_shape *g = s->net;
  const double f = 4.0 * (double)(g->b * g->heads) * (double)g->l * (double)g->l * (double)g->d;
  return g->causal ? f / 2 : f;
}
static int run_attention(void *p) {
  ops_state *s = p;
  return clai_attention(s->ctx, s->t[0], NULL, s->t[1], s->t[2], s->t[3], 0.0f, s->net->causal);
}
/* The CPU reference: per head, OpenBLAS S = scale q k^T, a C softmax of S's rows (2 threads, the mask
 * applied), OpenBLAS out = P v. */
static void attention_softmax(void *p, int t, int nt) {
  ops_state *s = p;
  const int64_t l = s->net->l;
  for (int64_t r = l * t / nt; r < l * (t + 1) / nt; r++) {
    float *row = s->work + r * l;
    const int64_t n = s->net->causal ? r + 1 : l;
    float m = row[0], sum = 0.0f;
    for (int64_t j = 1; j < n; j++) m = row[j] > m ? row[j] : m;
    for (int64_t j = 0; j < n; j++) sum += row[j] = expf(row[j] - m);
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; j++) row[j] *= inv;
    for (int64_t j = n; j < l; j++) row[j] = 0.0f;
  }
}
static void ref_attention(ops_state *s, struct ref_pool *pool);

static const net_shape conv1_shape = {128, 1, 28, 28, 32, 5, 2, 0, 0, 0, 0, 0};
static const net_shape conv2_shape = {128, 32, 14, 14, 64, 5, 2, 0, 0, 0, 0, 0};
static const net_shape att_shape = {0, 0, 0, 0, 0, 0, 0, 1, 8, 512, 64, 0};
static const net_shape att_causal_shape = {0, 0, 0, 0, 0, 0, 0, 1, 8, 512, 64, 1};

static const ops_case cases[] = {
    {"copy", "GB/s", setup_copy, amount_copy, run_copy, ref_copy, "[4R*C] f32 (clai_copy / memcpy)", NULL, NULL},
    {"add", "GB/s", setup_add, amount_add, run_add, ref_add, "[R,C] + [R,C]", NULL, NULL},
    {"add-bcast", "GB/s", setup_add_bcast, amount_add_bcast, run_add, ref_add_bcast, "[R,C] + [C]", NULL, NULL},
    {"scale", "GB/s", setup_rows, amount_rows, run_scale, ref_scale, "2 * [R,C] (unary)", NULL, NULL},
    {"softmax", "GB/s", setup_rows, amount_rows, run_softmax, ref_softmax, "[R,C], last axis", NULL, NULL},
    {"layernorm", "GB/s", setup_layernorm, amount_rows, run_layernorm, ref_layernorm, "[R,C], gamma, beta", NULL, NULL},
    {"sum-rows", "GB/s", setup_sum_rows, amount_sum, run_sum_rows, ref_sum_rows, "[R,C] -> [R]", NULL, NULL},
    {"sum-cols", "GB/s", setup_sum_cols, amount_sum, run_sum_cols, ref_sum_cols, "[R,C] -> [C] (bias gradient)", NULL, NULL},
    {"sum-all", "GB/s", setup_sum_all, amount_sum, run_sum_all, ref_sum_all, "[R,C] -> []", NULL, NULL},
    {"conv1", "GFLOP/s", setup_conv, amount_conv, run_conv, NULL,
     "[128,1,28,28]*[32,1,5,5] p2,b,relu", &conv1_shape, ref_conv},
    {"conv2", "GFLOP/s", setup_conv, amount_conv, run_conv, NULL,
     "[128,32,14,14]*[64,32,5,5] p2,b,relu", &conv2_shape, ref_conv},
    {"conv1-dw", "GFLOP/s", setup_conv_dw, amount_conv, run_conv_dw, NULL, "conv1's weight gradient", &conv1_shape,
     ref_conv_dw},
    {"conv2-dw", "GFLOP/s", setup_conv_dw, amount_conv, run_conv_dw, NULL, "conv2's weight gradient", &conv2_shape,
     ref_conv_dw},
    {"conv2-dx", "GFLOP/s", setup_conv_dx, amount_conv, run_conv_dx, NULL, "conv2's data gradient", &conv2_shape,
     ref_conv_dx},
    {"attention", "GFLOP/s", setup_attention, amount_attention, run_attention, NULL, "q,k,v [1,8,512,64]",
     &att_shape, ref_attention},
    {"attn-causal", "GFLOP/s", setup_attention, amount_attention, run_attention, NULL, "q,k,v [1,8,512,64], causal",
     &att_causal_shape, ref_attention},
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
  if (r->c->ref_phases != NULL)
    r->c->ref_phases(r->s, r->pool);
  else
    ref_pool_run(r->pool, r->c->ref, r->s);
  return 0;
}

static void ref_conv(ops_state *s, ref_pool *pool) {
  const net_shape *g = s->net;
  const int64_t cols = g->n * conv_out(g) * conv_out(g), ckk = g->c * g->k * g->k;
  ref_pool_run(pool, conv_im2col, s);
  s->sgemm(BENCH_ROW_MAJOR, BENCH_NO_TRANS, BENCH_NO_TRANS, (int)g->o, (int)cols, (int)ckk, 1.0f, s->h[2], (int)ckk,
           s->work, (int)cols, 0.0f, s->work + ckk * cols, (int)cols);
  ref_pool_run(pool, conv_epilogue, s);
}

static void ref_conv_dw(ops_state *s, ref_pool *pool) {
  const net_shape *g = s->net;
  const int64_t cols = g->n * conv_out(g) * conv_out(g), ckk = g->c * g->k * g->k;
  ref_pool_run(pool, conv_im2col, s);
  ref_pool_run(pool, conv_gy_rows, s);
  s->sgemm(BENCH_ROW_MAJOR, BENCH_NO_TRANS, BENCH_TRANS, (int)g->o, (int)ckk, (int)cols, 1.0f, s->work + ckk * cols,
           (int)cols, s->work, (int)cols, 0.0f, s->h[0], (int)ckk);
}

static void ref_conv_dx(ops_state *s, ref_pool *pool) {
  const net_shape *g = s->net;
  const int64_t cols = g->n * conv_out(g) * conv_out(g), ckk = g->c * g->k * g->k;
  ref_pool_run(pool, conv_gy_rows, s);
  s->sgemm(BENCH_ROW_MAJOR, BENCH_TRANS, BENCH_NO_TRANS, (int)ckk, (int)cols, (int)g->o, 1.0f, s->h[1], (int)ckk,
           s->work + ckk * cols, (int)cols, 0.0f, s->work, (int)cols);
  ref_pool_run(pool, conv_col2im, s);
}

static void ref_attention(ops_state *s, ref_pool *pool) {
  const net_shape *g = s->net;
  const int64_t l = g->l, d = g->d, head = l * d;
  const float scale = 1.0f / sqrtf((float)d);
  for (int64_t bh = 0; bh < g->b * g->heads; bh++) {
    s->sgemm(BENCH_ROW_MAJOR, BENCH_NO_TRANS, BENCH_TRANS, (int)l, (int)l, (int)d, scale, s->h[1] + bh * head, (int)d,
             s->h[2] + bh * head, (int)d, 0.0f, s->work, (int)l);
    ref_pool_run(pool, attention_softmax, s);
    s->sgemm(BENCH_ROW_MAJOR, BENCH_NO_TRANS, BENCH_NO_TRANS, (int)l, (int)d, (int)l, 1.0f, s->work, (int)l,
             s->h[3] + bh * head, (int)d, 0.0f, s->h[0] + bh * head, (int)d);
  }
}

static int finish_clai(void *p) { return clai_sync(((ops_state *)p)->ctx); }

static void ops_usage(FILE *f) {
  fprintf(f, "usage: clai bench ops [--rows R] [--cols C] [--only NAME,...] [--samples S] [--min-time SECONDS]\n"
             "                      [--no-ref] [--json]\n"
             "  throughput of memory-bound ops on [R, C] f32 (default 4096 x 1024) and GFLOP/s of conv2d, its\n"
             "  gradients and attention (fixed shapes: the Fashion-MNIST CNN's layers, a 512-token head set), data\n"
             "  on the device, median (min-max) of S timings after a warm-up; beside a C reference on %d threads\n"
             "  (OpenBLAS SGEMM for conv and attention, with the best kernels it has for this CPU, chosen by the\n"
             "  bench, unless OPENBLAS_CORETYPE is set).\n"
             "  Cases:",
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
  bench_openblas_choose_kernels(); /* before the OpenCL context starts threads (it forks) */
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
    if (refs) printf("%s\n", bench_openblas_kernels());
    printf("%-11s %-36s %9s %17s %9s %6s %8s %8s\n", "op", "shapes", "libclai", "(min-max)", "C x2", "ratio",
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
    s.net = c->net;
    double med = 0, mn = 0, mx = 0, rmed = -1, rmn, rmx, ratio = -1;
    if (c->setup(&s) != 0) {
      fprintf(stderr, "clai bench ops: setting up %s failed: %s\n", c->name, clai_errmsg(ctx));
      rc = 1;
    } else {
      double amount = c->amount(&s);
      /* libclai and the C reference take turns, one bench_measure timing each, so that the load of a
       * shared machine, which drifts over seconds, weighs on both alike; then median, min and max. */
      double g[64], r[64], unused0, unused1;
      int have_ref = pool != NULL && (c->ref != NULL || (c->ref_phases != NULL && s.work != NULL));
      ref_run rr = {pool, c, &s};
      for (int k = 0; k < samples && rc == 0; k++) {
        if (have_ref) bench_measure(run_ref, NULL, &rr, amount, 1, min_time, &r[k], &unused0, &unused1);
        rc = bench_measure(c->run, finish_clai, &s, amount, 1, min_time, &g[k], &unused0, &unused1);
      }
      if (rc != 0) fprintf(stderr, "clai bench ops: %s: %s\n", c->name, clai_errmsg(ctx));
      if (rc == 0 && have_ref) { /* the ratio: the median of the turns' ratios, not the ratio of the medians */
        double q[64], qmn, qmx;
        for (int k = 0; k < samples; k++) q[k] = g[k] / r[k];
        bench_median_min_max(q, samples, &ratio, &qmn, &qmx);
      }
      if (rc == 0) {
        bench_median_min_max(g, samples, &med, &mn, &mx);
        if (have_ref) bench_median_min_max(r, samples, &rmed, &rmn, &rmx);
      }
      if (strcmp(c->name, "copy") == 0) copy_bw = med;
      if (rc == 0 && selected(only, c->name)) {
        double ms = amount / (med * 1e9) * 1e3;
        if (json) {
          printf("{\"op\": \"%s\", \"shapes\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"unit\": \"%s\", "
                 "\"value\": %.2f, \"min\": %.2f, \"max\": %.2f, \"ms\": %.4f",
                 c->name, c->what, (long long)rows, (long long)cols, c->unit, med, mn, mx, ms);
          if (rmed > 0) printf(", \"c_threads\": %d, \"c_value\": %.2f, \"ratio\": %.3f", REF_THREADS, rmed, ratio);
          if (copy_bw > 0) printf(", \"copy_gbs\": %.2f", copy_bw);
          printf(", \"device\": \"%s\"}\n", dev.name);
        } else {
          printf("%-11s %-36s %9.2f (%7.2f-%7.2f)", c->name, c->what, med, mn, mx);
          if (rmed > 0) printf(" %9.2f %5.2fx", rmed, ratio);
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
    free(s.work);
  }
  if (!json && rc == 0)
    printf("GB/s of the bytes each op must move, GFLOP/s for conv and attention; C x2: a plain C loop on %d "
           "threads (row ops built -O3 -ffast-math), for conv im2col + OpenBLAS SGEMM + bias/relu (its weight "
           "gradient: im2col + SGEMM, data gradient: SGEMM + col2im), for attention "
           "per head OpenBLAS q k^T, C softmax, OpenBLAS P v; ratio: libclai / C, the median of the turns' ratios (each turn times libclai and C once, one after the other); vs copy: libclai / clai_copy "
           "bandwidth; ms: libclai's median time\n",
           REF_THREADS);
  ref_pool_free(pool);
  clai_context_free(ctx);
  return rc;
}
