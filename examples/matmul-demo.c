/* matmul-demo - multiplies matrices on the best OpenCL device, checks a sample of the result against the
 * CPU, and reports the device and the speed. Usage: matmul-demo [N] (default 1024). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clai.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CHECK(call)                                                                          \
  do {                                                                                       \
    clai_status st_ = (call);                                                                \
    if (st_ != CLAI_OK) {                                                                    \
      fprintf(stderr, "%s failed: %s: %s\n", #call, clai_status_name(st_), clai_errmsg(ctx)); \
      goto done;                                                                             \
    }                                                                                        \
  } while (0)

int main(int argc, char **argv) {
  int64_t n = argc > 1 ? atoll(argv[1]) : 1024;
  if (n < 1 || n > 16384) {
    fprintf(stderr, "usage: matmul-demo [N], 1 <= N <= 16384\n");
    return 2;
  }
  char err[4096];
  clai_context *ctx = NULL;
  double t0 = now();
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st != CLAI_OK) {
    fprintf(stderr, "matmul-demo: %s: %s\n", clai_status_name(st), err);
    return 1;
  }
  double t_init = now() - t0;
  int rc = 1;
  clai_tensor *a = NULL, *b = NULL, *c = NULL;
  float *ha = malloc((size_t)(n * n) * sizeof *ha), *hb = malloc((size_t)(n * n) * sizeof *hb);
  float *hc = malloc((size_t)(n * n) * sizeof *hc);
  if (!ha || !hb || !hc) goto done;
  srand(42);
  for (int64_t i = 0; i < n * n; i++) {
    ha[i] = (float)rand() / RAND_MAX - 0.5f;
    hb[i] = (float)rand() / RAND_MAX - 0.5f;
  }
  clai_device_info dev;
  CHECK(clai_context_device_info(ctx, -1, &dev));
  printf("device: %s / %s (%s)%s\n", dev.platform, dev.name, dev.driver_version, dev.fallback ? " [CPU fallback]" : "");
  clai_context_stats stats;
  CHECK(clai_context_stats_get(ctx, &stats));
  printf("start-up: %.0f ms (%u kernel programs built, %u from the cache)\n", t_init * 1e3, stats.programs_built,
         stats.programs_cached);
  int64_t shape[2] = {n, n};
  CHECK(clai_tensor_init(ctx, &a, CLAI_DTYPE_F32, 2, shape));
  CHECK(clai_tensor_init(ctx, &b, CLAI_DTYPE_F32, 2, shape));
  CHECK(clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 2, shape));
  CHECK(clai_tensor_write(a, ha, (size_t)(n * n) * sizeof *ha));
  CHECK(clai_tensor_write(b, hb, (size_t)(n * n) * sizeof *hb));
  CHECK(clai_matmul(ctx, c, a, 0, b, 0, 1.0f, 0.0f)); /* warm-up */
  CHECK(clai_sync(ctx));
  int reps = 0;
  double t1 = now(), el = 0;
  do {
    CHECK(clai_matmul(ctx, c, a, 0, b, 0, 1.0f, 0.0f));
    CHECK(clai_sync(ctx));
    reps++;
    el = now() - t1;
  } while (el < 1.0 && reps < 1000);
  CHECK(clai_tensor_read(c, hc, (size_t)(n * n) * sizeof *hc));
  double max_err = 0;
  for (int s = 0; s < 64; s++) { /* spot-check 64 entries against a double-precision dot product */
    int64_t i = rand() % n, j = rand() % n;
    double ref = 0;
    for (int64_t k = 0; k < n; k++) ref += (double)ha[i * n + k] * hb[k * n + j];
    double e = fabs(ref - hc[i * n + j]);
    if (e > max_err) max_err = e;
  }
  double gflops = 2.0 * (double)n * n * n * reps / el * 1e-9;
  printf("matmul %lldx%lldx%lld f32: %.2f ms per product, %.1f GFLOP/s (%d runs); max error %.2g on 64 samples\n",
         (long long)n, (long long)n, (long long)n, el / reps * 1e3, gflops, reps, max_err);
  rc = max_err < 1e-3 * sqrt((double)n) ? 0 : 1;
  if (rc) fprintf(stderr, "matmul-demo: result differs from the CPU reference\n");
done:
  free(ha);
  free(hb);
  free(hc);
  clai_context_free(ctx); /* frees a, b and c too */
  return rc;
}
