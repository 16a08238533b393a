/* conv-backward-bench - times the gradients of the small Fashion-MNIST CNN's layers on the best OpenCL
 * device: conv 5x5 1->32 pad 2 on 28x28 and conv 5x5 32->64 pad 2 on 14x14 (data and weight+bias
 * gradients), their 2x2 max pools, and a depthwise 3x3 for comparison. Reports the best of R runs (after
 * one warm-up run) in ms and, for the convolutions, GFLOP/s counted as 2*N*O*OH*OW*C/groups*KH*KW per
 * gradient, and the CPU time of the best run of each (all threads). Usage: conv-backward-bench [N] [R] [f16], default N = 128, R = 10, f32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "clai.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the process (every thread): on a shared machine it varies less than the wall clock. */
static double cpu_time(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static clai_context *ctx;
static double best_cpu;
static clai_dtype dt = CLAI_DTYPE_F32;

static void check(clai_status st) {
  if (st != CLAI_OK) {
    fprintf(stderr, "conv-backward-bench: %s: %s\n", clai_status_name(st), clai_errmsg(ctx));
    exit(1);
  }
}

static clai_tensor *tensor(int ndim, int64_t a, int64_t b, int64_t c, int64_t d, uint64_t seed) {
  const int64_t s[4] = {a, b, c, d};
  clai_tensor *t = NULL;
  check(clai_tensor_init(ctx, &t, dt, ndim, s));
  check(clai_rand_uniform(ctx, t, seed, 0, -1.0f, 1.0f));
  return t;
}

enum { DATA, WEIGHT, MAXPOOL };

static double run(int what, clai_tensor *o1, clai_tensor *o2, const clai_tensor *i1, const clai_tensor *i2,
                  const clai_conv2d_params *cp, int reps) {
  const clai_pool2d_params pp = {2, 2, 0, 0, 0, 0, 0, 0, 0};
  double best = 1e30;
  best_cpu = 1e30;
  for (int r = 0; r <= reps; r++) {
    double t = now(), c = cpu_time();
    if (what == DATA) check(clai_conv2d_backward_data(ctx, o1, i1, i2, cp));
    if (what == WEIGHT) check(clai_conv2d_backward_weight(ctx, o1, o2, i1, i2, cp));
    if (what == MAXPOOL) check(clai_max_pool2d_backward(ctx, o1, i1, i2, &pp));
    check(clai_sync(ctx));
    t = now() - t;
    c = cpu_time() - c;
    if (r > 0 && t < best) best = t;
    if (r > 0 && c < best_cpu) best_cpu = c;
  }
  return best;
}

static void report(const char *what, double t, double flops) {
  if (flops > 0)
    printf("%-48s %8.2f ms %7.1f GFLOP/s  (cpu %.2f ms)\n", what, t * 1e3, flops / t * 1e-9, best_cpu * 1e3);
  else
    printf("%-48s %8.2f ms                  (cpu %.2f ms)\n", what, t * 1e3, best_cpu * 1e3);
}

int main(int argc, char **argv) {
  int64_t n = argc > 1 ? atoll(argv[1]) : 128;
  int reps = argc > 2 ? atoi(argv[2]) : 10;
  if (argc > 3 && strcmp(argv[3], "f16") == 0) dt = CLAI_DTYPE_F16;
  if (n < 1 || reps < 1) {
    fprintf(stderr, "usage: conv-backward-bench [N] [R] [f16]\n");
    return 2;
  }
  char err[4096];
  if (clai_context_init_ex(&ctx, NULL, err, sizeof err) != CLAI_OK) {
    fprintf(stderr, "conv-backward-bench: %s\n", err);
    return 1;
  }
  clai_device_info dev;
  clai_context_device_info(ctx, -1, &dev);
  printf("device: %s / %s, batch %lld, %s\n", dev.platform, dev.name, (long long)n, clai_dtype_name(dt));
  clai_tensor *x = tensor(4, n, 1, 28, 28, 1), *gx = tensor(4, n, 1, 28, 28, 2), *w1 = tensor(4, 32, 1, 5, 5, 3);
  clai_tensor *gw1 = tensor(4, 32, 1, 5, 5, 4), *gb1 = tensor(1, 32, 0, 0, 0, 5), *gy1 = tensor(4, n, 32, 28, 28, 6);
  clai_tensor *p1 = tensor(4, n, 32, 14, 14, 7), *gp1 = tensor(4, n, 32, 14, 14, 8), *i1 = NULL;
  clai_tensor *w2 = tensor(4, 64, 32, 5, 5, 9), *gw2 = tensor(4, 64, 32, 5, 5, 10), *gb2 = tensor(1, 64, 0, 0, 0, 11);
  clai_tensor *gy2 = tensor(4, n, 64, 14, 14, 12), *gp2 = tensor(4, n, 64, 7, 7, 13), *i2 = NULL;
  clai_tensor *wd = tensor(4, 32, 1, 3, 3, 14), *gwd = tensor(4, 32, 1, 3, 3, 15), *gyd = tensor(4, n, 32, 14, 14, 16);
  const int64_t s1[4] = {n, 32, 14, 14}, s2[4] = {n, 64, 7, 7};
  check(clai_tensor_init(ctx, &i1, CLAI_DTYPE_I32, 4, s1));
  check(clai_tensor_init(ctx, &i2, CLAI_DTYPE_I32, 4, s2));
  const clai_pool2d_params pp = {2, 2, 0, 0, 0, 0, 0, 0, 0};
  check(clai_max_pool2d(ctx, p1, i1, gy1, &pp)); /* indices of a real forward */
  check(clai_max_pool2d(ctx, gp2, i2, gy2, &pp));
  clai_conv2d_params cp = {0};
  cp.pad_top = cp.pad_bottom = cp.pad_left = cp.pad_right = 2;
  const double nn = (double)n, f1 = 2 * nn * 32 * 784 * 25, f2 = 2 * nn * 64 * 196 * 800;
  report("conv1 5x5 1->32 28x28: grad w + bias", run(WEIGHT, gw1, gb1, x, gy1, &cp, reps), f1);
  report("conv1 5x5 1->32 28x28: grad x (unused in training)", run(DATA, gx, NULL, gy1, w1, &cp, reps), f1);
  report("max pool 2 backward, 32x28x28", run(MAXPOOL, gy1, NULL, gp1, i1, &cp, reps), 0);
  report("conv2 5x5 32->64 14x14: grad w + bias", run(WEIGHT, gw2, gb2, p1, gy2, &cp, reps), f2);
  report("conv2 5x5 32->64 14x14: grad x", run(DATA, gp1, NULL, gy2, w2, &cp, reps), f2);
  report("max pool 2 backward, 64x14x14", run(MAXPOOL, gy2, NULL, gp2, i2, &cp, reps), 0);
  cp.pad_top = cp.pad_bottom = cp.pad_left = cp.pad_right = 1;
  cp.groups = 32;
  const double fd = 2 * nn * 32 * 196 * 9;
  report("depthwise 3x3 32 ch 14x14: grad w", run(WEIGHT, gwd, NULL, p1, gyd, &cp, reps), fd);
  report("depthwise 3x3 32 ch 14x14: grad x", run(DATA, gp1, NULL, gyd, wd, &cp, reps), fd);
  clai_context_free(ctx);
  return 0;
}
