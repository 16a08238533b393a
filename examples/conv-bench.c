/* conv-bench - times the layers of the small Fashion-MNIST CNN on the best OpenCL device: conv 5x5 1->32
 * pad 2 on 28x28 (+ bias, relu), max pool 2, conv 5x5 32->64 pad 2 on 14x14 (+ bias, relu), max pool 2,
 * and a depthwise 3x3 for comparison. Reports the best of R runs (after one warm-up run) in ms and, for
 * the convolutions, GFLOP/s counted as 2*N*O*OH*OW*C/groups*KH*KW. Usage: conv-bench [N] [R] [f16],
 * default N = 128, R = 10, f32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clai.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static clai_context *ctx;
static clai_dtype dt = CLAI_DTYPE_F32;

static clai_tensor *tensor(int ndim, int64_t a, int64_t b, int64_t c, int64_t d, double v) {
  const int64_t s[4] = {a, b, c, d};
  clai_tensor *t = NULL;
  if (clai_tensor_init(ctx, &t, dt, ndim, s) != CLAI_OK || clai_fill(ctx, t, v) != CLAI_OK) {
    fprintf(stderr, "conv-bench: %s\n", clai_errmsg(ctx));
    exit(1);
  }
  return t;
}

/* One layer: conv (w != NULL) or max pool 2x2. Returns the best time in seconds. */
static double run(clai_tensor *out, clai_tensor *x, clai_tensor *w, clai_tensor *b, const clai_conv2d_params *cp,
                  int reps) {
  const clai_pool2d_params pp = {2, 2, 0, 0, 0, 0, 0, 0, 0};
  double best = 1e30;
  for (int r = 0; r <= reps; r++) {
    double t = now();
    clai_status st = w != NULL ? clai_conv2d(ctx, out, x, w, b, cp) : clai_max_pool2d(ctx, out, NULL, x, &pp);
    if (st == CLAI_OK) st = clai_sync(ctx);
    if (st != CLAI_OK) {
      fprintf(stderr, "conv-bench: %s: %s\n", clai_status_name(st), clai_errmsg(ctx));
      exit(1);
    }
    t = now() - t;
    if (r > 0 && t < best) best = t;
  }
  return best;
}

static void report(const char *what, double t, double flops) {
  if (flops > 0)
    printf("%-44s %8.2f ms %8.1f GFLOP/s\n", what, t * 1e3, flops / t * 1e-9);
  else
    printf("%-44s %8.2f ms\n", what, t * 1e3);
}

int main(int argc, char **argv) {
  int64_t n = argc > 1 ? atoll(argv[1]) : 128;
  int reps = argc > 2 ? atoi(argv[2]) : 10;
  if (argc > 3 && strcmp(argv[3], "f16") == 0) dt = CLAI_DTYPE_F16;
  if (n < 1 || reps < 1) {
    fprintf(stderr, "usage: conv-bench [N] [R] [f16]\n");
    return 2;
  }
  char err[4096];
  if (clai_context_init_ex(&ctx, NULL, err, sizeof err) != CLAI_OK) {
    fprintf(stderr, "conv-bench: %s\n", err);
    return 1;
  }
  clai_device_info dev;
  clai_context_device_info(ctx, -1, &dev);
  printf("device: %s / %s, batch %lld, %s\n", dev.platform, dev.name, (long long)n, clai_dtype_name(dt));
  clai_tensor *x = tensor(4, n, 1, 28, 28, 0.5), *w1 = tensor(4, 32, 1, 5, 5, 0.01), *b1 = tensor(1, 32, 0, 0, 0, 0.1);
  clai_tensor *y1 = tensor(4, n, 32, 28, 28, 0), *p1 = tensor(4, n, 32, 14, 14, 0);
  clai_tensor *w2 = tensor(4, 64, 32, 5, 5, 0.01), *b2 = tensor(1, 64, 0, 0, 0, 0.1);
  clai_tensor *y2 = tensor(4, n, 64, 14, 14, 0), *p2 = tensor(4, n, 64, 7, 7, 0);
  clai_tensor *wd = tensor(4, 32, 1, 3, 3, 0.1), *yd = tensor(4, n, 32, 14, 14, 0);
  clai_conv2d_params cp = {0};
  cp.pad_top = cp.pad_bottom = cp.pad_left = cp.pad_right = 2;
  cp.activation = CLAI_ACT_RELU;
  double nn = (double)n;
  report("conv 5x5 1->32 pad 2, 28x28, bias+relu", run(y1, x, w1, b1, &cp, reps), 2 * nn * 32 * 784 * 25);
  report("max pool 2, 32x28x28", run(p1, y1, NULL, NULL, NULL, reps), 0);
  report("conv 5x5 32->64 pad 2, 14x14, bias+relu", run(y2, p1, w2, b2, &cp, reps), 2 * nn * 64 * 196 * 800);
  report("max pool 2, 64x14x14", run(p2, y2, NULL, NULL, NULL, reps), 0);
  cp.pad_top = cp.pad_bottom = cp.pad_left = cp.pad_right = 1;
  cp.groups = 32;
  report("depthwise 3x3 32 ch pad 1, 14x14, relu", run(yd, p1, wd, NULL, &cp, reps), 2 * nn * 32 * 196 * 9);
  clai_context_free(ctx);
  return 0;
}
