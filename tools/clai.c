/* clai - libclai's command-line tool: `clai devices` lists every OpenCL device, its rank and which one
 * libclai chooses and why; `clai bench gemm` measures matmul (bench.c), `clai bench ops` the other ops
 * (bench-ops.c); `clai tune` tunes matmul (tune.c); `clai train` trains on Fashion-MNIST
 * (examples/fashion-mnist/train.c); `clai version`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "clai.h"
#include "train.h"

static const char *type_name(clai_device_type t) {
  switch (t) {
  case CLAI_DEVICE_DISCRETE_GPU: return "discrete GPU";
  case CLAI_DEVICE_INTEGRATED_GPU: return "integrated GPU";
  case CLAI_DEVICE_ACCELERATOR: return "accelerator";
  case CLAI_DEVICE_CPU: return "CPU";
  default: return "other";
  }
}

static int cmd_devices(void) {
  char err[4096];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st != CLAI_OK) {
    fprintf(stderr, "clai: %s: %s\n", clai_status_name(st), err);
    return 1;
  }
  int n = clai_context_device_count(ctx);
  for (int i = 0; i < n; i++) {
    clai_device_info d;
    if (clai_context_device_info(ctx, i, &d) != CLAI_OK) continue;
    printf("%c %d: %s / %s\n", d.chosen ? '*' : ' ', d.index, d.platform, d.name);
    printf("     type %s, %u compute units at %u MHz, %.1f GiB global memory (max allocation %.1f GiB)\n",
           type_name(d.type), d.compute_units, d.clock_mhz, (double)d.global_mem_bytes / (1 << 30),
           (double)d.max_alloc_bytes / (1 << 30));
    printf("     vendor %s, %s, driver %s, %s, fp16 %s\n", d.vendor, d.device_version, d.driver_version,
           d.opencl_c_version, d.has_fp16 ? "yes" : "no");
    printf("     %s%s\n", d.note, d.fallback ? " (fallback)" : "");
  }
  clai_context_stats s;
  clai_context_stats_get(ctx, &s);
  const char *eager = getenv("CLAI_EAGER");
  const int all = eager != NULL && strcmp(eager, "1") == 0;
  printf("kernels: %u programs, %u built, %u from the cache (%s), start-up %.0f ms%s\n", s.programs,
         s.programs_built, s.programs_cached, clai_context_cache_dir(ctx) ? clai_context_cache_dir(ctx) : "cache off",
         s.init_seconds * 1e3, all ? "" : "; the other op families load on first use (CLAI_EAGER=1: all now)");
  clai_context_free(ctx);
  return 0;
}

static void usage(FILE *f) {
  fprintf(f, "usage: clai devices       list OpenCL devices and the one libclai chooses\n"
             "       clai bench gemm    matmul GFLOP/s on the chosen device (clai bench --help)\n"
             "       clai tune          tune the matmul kernels for the chosen device (clai tune --help)\n"
             "       clai bench ops     GB/s of elementwise ops, softmax, layernorm, reductions (--help)\n"
             "       clai train         train a classifier on Fashion-MNIST (clai train --help)\n"
             "       clai bench train   training samples/s of clai train beside PyTorch (--help)\n"
             "       clai version       print the library version\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "devices") == 0) return cmd_devices();
  if (strcmp(argv[1], "bench") == 0) return clai_tool_bench(argc - 2, argv + 2);
  if (strcmp(argv[1], "tune") == 0) return clai_tool_tune(argc - 2, argv + 2);
  if (strcmp(argv[1], "train") == 0) return fmnist_train_main("clai train", argc - 2, argv + 2);
  if (strcmp(argv[1], "version") == 0) {
    printf("libclai %s\n", clai_version());
    return 0;
  }
  if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "clai: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
