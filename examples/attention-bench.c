/* attention-bench.c - GFLOP/s of clai_attention (fused, online softmax) beside the unfused route: clai_matmul
 * for S = scale q k^T, the softmax of S on the host in C (read, softmax with the causal mask, write), and
 * clai_matmul for P v. Flops: 4 B H Lq Lk D (half that with a causal mask, Lq = Lk), for both routes.
 *
 * The backward (clai_attention_backward, from the forward's out and lse) is timed too; its flops are counted
 * as 2.5 times the forward's (the five products of FlashAttention-2's count: q k^T, dO v^T, dV, dK, dQ),
 * although the kernels recompute q k^T and dO v^T once more.
 *
 * Usage: attention-bench [B H L D [samples]]   (default 1 8 512 64 7)
 * Timing follows `clai bench` (tools/bench.c): one warm-up run, runs repeated so one timing lasts at least
 * 0.2 s, each timing ended by clai_sync; the median of `samples` timings is printed with min and max. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clai.h"

typedef struct run {
  clai_context *ctx;
  clai_tensor *q, *k, *v, *out, *s;
  clai_tensor *lse, *dout, *dq, *dk, *dv; /* the backward */
  int causal;
  int64_t B, H, L, D;
  float *host; /* scores on the host for the unfused route */
} run;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fused(run *r) { return clai_attention(r->ctx, r->out, NULL, r->q, r->k, r->v, 0.0f, r->causal); }

static int backward(run *r) {
  return clai_attention_backward(r->ctx, r->dq, r->dk, r->dv, r->dout, r->q, r->k, r->v, r->out, r->lse, 0.0f,
                                 r->causal);
}

static int unfused(run *r) {
  const float scale = 1.0f / sqrtf((float)r->D);
  int64_t L = r->L, rows = r->B * r->H * L;
  size_t bytes = (size_t)(rows * L) * sizeof(float);
  int st = clai_matmul(r->ctx, r->s, r->q, 0, r->k, 1, scale, 0.0f);
  if (st == 0) st = clai_tensor_read(r->s, r->host, bytes);
  if (st != 0) return st;
  for (int64_t row = 0; row < rows; row++) {
    float *p = r->host + row * L;
    int64_t i = row % L, n = r->causal ? i + 1 : L;
    float m = -INFINITY, sum = 0.0f;
    for (int64_t j = 0; j < n; j++) m = p[j] > m ? p[j] : m;
    for (int64_t j = 0; j < n; j++) sum += p[j] = expf(p[j] - m);
    for (int64_t j = 0; j < n; j++) p[j] /= sum;
    for (int64_t j = n; j < L; j++) p[j] = 0.0f;
  }
  st = clai_tensor_write(r->s, r->host, bytes);
  if (st == 0) st = clai_matmul(r->ctx, r->out, r->s, 0, r->v, 0, 1.0f, 0.0f);
  return st;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int measure(int (*fn)(run *), run *r, double flop, int samples, double *med, double *mn, double *mx) {
  int st = fn(r);
  if (st == 0) st = clai_sync(r->ctx);
  double t0 = now();
  if (st == 0) st = fn(r);
  if (st == 0) st = clai_sync(r->ctx);
  double once = now() - t0;
  int reps = once > 0 && once < 0.2 ? (int)(0.2 / once) + 1 : 1;
  double g[64];
  if (samples > 64) samples = 64;
  for (int s = 0; s < samples && st == 0; s++) {
    t0 = now();
    for (int i = 0; i < reps && st == 0; i++) st = fn(r);
    if (st == 0) st = clai_sync(r->ctx);
    g[s] = flop * reps / (now() - t0) * 1e-9;
  }
  if (st != 0) return st;
  qsort(g, (size_t)samples, sizeof *g, cmp);
  *med = samples % 2 ? g[samples / 2] : 0.5 * (g[samples / 2 - 1] + g[samples / 2]);
  *mn = g[0];
  *mx = g[samples - 1];
  return 0;
}

int main(int argc, char **argv) {
  int64_t B = 1, H = 8, L = 512, D = 64;
  int samples = 7;
  if (argc >= 5) B = atoll(argv[1]), H = atoll(argv[2]), L = atoll(argv[3]), D = atoll(argv[4]);
  if (argc >= 6) samples = atoi(argv[5]);
  if (B < 1 || H < 1 || L < 1 || D < 1 || samples < 1) {
    fprintf(stderr, "usage: %s [B H L D [samples]]\n", argv[0]);
    return 2;
  }
  clai_context *ctx = NULL;
  char err[4096];
  if (clai_context_init_ex(&ctx, NULL, err, sizeof err) != CLAI_OK) {
    fprintf(stderr, "clai_context_init: %s\n", err);
    return 1;
  }
  clai_device_info info;
  clai_context_device_info(ctx, -1, &info);
  printf("device: %s / %s\nB %lld H %lld L %lld D %lld, GFLOP/s median (min-max) of %d\n", info.platform, info.name,
         (long long)B, (long long)H, (long long)L, (long long)D, samples);
  const int64_t qs[4] = {B, H, L, D}, ss[4] = {B, H, L, L};
  size_t n = (size_t)(B * H * L * D);
  float *x = malloc(n * sizeof *x);
  run r = {.ctx = ctx, .B = B, .H = H, .L = L, .D = D};
  r.host = malloc((size_t)(B * H * L * L) * sizeof(float));
  if (x == NULL || r.host == NULL) return 1;
  for (size_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  int rc = 0;
  for (int dt = 0; dt < 2 && rc == 0; dt++) {
    clai_dtype dtype = dt == 0 ? CLAI_DTYPE_F32 : CLAI_DTYPE_F16;
    clai_tensor *src = NULL;
    rc |= clai_tensor_init(ctx, &r.q, dtype, 4, qs) | clai_tensor_init(ctx, &r.k, dtype, 4, qs) |
          clai_tensor_init(ctx, &r.v, dtype, 4, qs) | clai_tensor_init(ctx, &r.out, dtype, 4, qs) |
          clai_tensor_init(ctx, &r.s, CLAI_DTYPE_F32, 4, ss) | clai_tensor_init(ctx, &src, CLAI_DTYPE_F32, 4, qs) |
          clai_tensor_init(ctx, &r.lse, CLAI_DTYPE_F32, 3, qs) | clai_tensor_init(ctx, &r.dout, dtype, 4, qs) |
          clai_tensor_init(ctx, &r.dq, dtype, 4, qs) | clai_tensor_init(ctx, &r.dk, dtype, 4, qs) |
          clai_tensor_init(ctx, &r.dv, dtype, 4, qs);
    rc |= clai_tensor_write(src, x, n * sizeof *x);
    rc |= clai_copy(ctx, r.q, src) | clai_copy(ctx, r.k, src) | clai_copy(ctx, r.v, src) | clai_copy(ctx, r.dout, src);
    clai_tensor_free(src);
    for (int causal = 0; causal < 2 && rc == 0; causal++) {
      r.causal = causal;
      double flop = 4.0 * (double)(B * H) * (double)L * (double)L * (double)D * (causal ? 0.5 : 1.0);
      double fm, fmin, fmax, um = 0, umin = 0, umax = 0;
      rc = measure(fused, &r, flop, samples, &fm, &fmin, &fmax);
      if (rc == 0 && dtype == CLAI_DTYPE_F32) rc = measure(unfused, &r, flop, samples, &um, &umin, &umax);
      double bm = 0, bmin = 0, bmax = 0;
      if (rc == 0) rc = clai_attention(ctx, r.out, r.lse, r.q, r.k, r.v, 0.0f, causal);
      if (rc == 0) rc = measure(backward, &r, 2.5 * flop, samples, &bm, &bmin, &bmax);
      if (rc != 0) break;
      printf("%s causal %d: backward %7.1f (%6.1f-%6.1f)\n", clai_dtype_name(dtype), causal, bm, bmin, bmax);
      printf("%s causal %d: fused %7.1f (%6.1f-%6.1f)", clai_dtype_name(dtype), causal, fm, fmin, fmax);
      if (dtype == CLAI_DTYPE_F32)
        printf("   unfused (matmul + host softmax + matmul) %7.1f (%6.1f-%6.1f)  %.2fx", um, umin, umax, fm / um);
      printf("\n");
    }
    clai_tensor_free(r.q);
    clai_tensor_free(r.k);
    clai_tensor_free(r.v);
    clai_tensor_free(r.out);
    clai_tensor_free(r.s);
    clai_tensor_free(r.lse);
    clai_tensor_free(r.dout);
    clai_tensor_free(r.dq);
    clai_tensor_free(r.dk);
    clai_tensor_free(r.dv);
  }
  if (rc != 0) fprintf(stderr, "failed: %s: %s\n", clai_status_name((clai_status)rc), clai_errmsg(ctx));
  free(x);
  free(r.host);
  clai_context_free(ctx);
  return rc != 0;
}
