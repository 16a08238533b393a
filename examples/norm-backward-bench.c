/* norm-backward-bench - times the backward of softmax, log_softmax, layernorm and rmsnorm (and, for
 * comparison, their forwards) on the best OpenCL device for x = [R, N]. Reports the best of REPS runs (after
 * one warm-up run) in ms and GB/s, counting each tensor of R*N elements once (backward: grad_y, the saved
 * x or y, grad_x; forward: x, out), whatever the kernel rereads. Usage: norm-backward-bench [R] [N] [REPS]
 * [f16], default 4096 1024 10 f32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clai.h"

static clai_context *ctx;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check(clai_status st) {
  if (st != CLAI_OK) {
    fprintf(stderr, "norm-backward-bench: %s: %s\n", clai_status_name(st), clai_errmsg(ctx));
    exit(1);
  }
}

static clai_tensor *tensor(clai_dtype dt, int ndim, const int64_t *s, uint64_t seed, float lo, float hi) {
  clai_tensor *t = NULL;
  check(clai_tensor_init(ctx, &t, dt, ndim, s));
  check(clai_rand_uniform(ctx, t, seed, 0, lo, hi));
  return t;
}

int main(int argc, char **argv) {
  const int64_t R = argc > 1 ? atoll(argv[1]) : 4096, N = argc > 2 ? atoll(argv[2]) : 1024;
  const int reps = argc > 3 ? atoi(argv[3]) : 10;
  const clai_dtype dt = argc > 4 && strcmp(argv[4], "f16") == 0 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
  check(clai_context_init(&ctx, NULL));
  const int64_t s[2] = {R, N};
  clai_tensor *x = tensor(dt, 2, s, 1, -2, 2), *gy = tensor(dt, 2, s, 2, -1, 1), *y = tensor(dt, 2, s, 3, 0, 1),
              *gx = tensor(dt, 2, s, 4, 0, 1), *gam = tensor(CLAI_DTYPE_F32, 1, &N, 5, 0.5f, 1.5f),
              *gg = tensor(CLAI_DTYPE_F32, 1, &N, 6, 0, 1), *gb = tensor(CLAI_DTYPE_F32, 1, &N, 7, 0, 1),
              *mean = tensor(CLAI_DTYPE_F32, 1, &R, 8, 0, 1), *rstd = tensor(CLAI_DTYPE_F32, 1, &R, 9, 0.5f, 1);
  const double es = dt == CLAI_DTYPE_F32 ? 4 : 2;
  clai_device_info info;
  check(clai_context_device_info(ctx, -1, &info));
  printf("norm-backward-bench on %s: [%lld, %lld] %s, best of %d\n", info.name, (long long)R,
         (long long)N, dt == CLAI_DTYPE_F32 ? "f32" : "f16", reps);
  const char *names[] = {"softmax fwd",        "softmax bwd", "log_softmax bwd",         "layernorm fwd",
                         "layernorm bwd (dx)", "layernorm bwd (dx, dgamma, dbeta)",      "rmsnorm bwd (dx)",
                         "rmsnorm bwd (dx, dgamma)"};
  const int tensors[] = {2, 3, 3, 2, 3, 3, 3, 3};
  for (int op = 0; op < 8; op++) {
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
      check(clai_sync(ctx));
      double t = now();
      switch (op) {
      case 0: check(clai_softmax(ctx, y, x, NULL)); break;
      case 1: check(clai_softmax_backward(ctx, gx, gy, y, NULL)); break;
      case 2: check(clai_log_softmax_backward(ctx, gx, gy, y, NULL)); break;
      case 3: check(clai_layernorm(ctx, y, x, gam, NULL, 1e-5f, mean, rstd)); break;
      case 4: check(clai_layernorm_backward(ctx, gx, NULL, NULL, gy, x, gam, mean, rstd)); break;
      case 5: check(clai_layernorm_backward(ctx, gx, gg, gb, gy, x, gam, mean, rstd)); break;
      case 6: check(clai_rmsnorm_backward(ctx, gx, NULL, gy, x, gam, rstd)); break;
      default: check(clai_rmsnorm_backward(ctx, gx, gg, gy, x, gam, rstd)); break;
      }
      check(clai_sync(ctx));
      t = now() - t;
      if (r > 0 && t < best) best = t;
    }
    printf("  %-36s %8.3f ms %8.2f GB/s\n", names[op], best * 1e3, tensors[op] * (double)(R * N) * es / best / 1e9);
  }
  clai_tensor *all[] = {x, gy, y, gx, gam, gg, gb, mean, rstd};
  for (int i = 0; i < 9; i++) clai_tensor_free(all[i]);
  clai_context_free(ctx);
  return 0;
}
