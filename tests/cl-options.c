/* cl-options - helper of tests/spir-check.sh (not a test itself): writes the exact source of every kernel
 * program (common prelude + file, as the library builds it) into DIR, and prints one line per program and
 * device profile: "FILE<TAB>BUILD OPTIONS". The profiles cover the CPU and GPU kernel shapes, with and
 * without cl_khr_fp16, AVX-512's packed tiles, and llvmpipe's (no hardware fma, the generic GEMM without k-block barriers), so the
 * SPIR check sees every specialisation a device can get. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: cl-options DIR\n");
    return 2;
  }
  static const struct {
    const char *name;
    int is_cpu, has_fp16, has_fma, lanes_cpu, vec_float;
  } profiles[] = {{"cpu", 1, 0, 1, 0, 8},      {"cpu-fp16", 1, 1, 1, 0, 8}, {"cpu-avx512", 1, 0, 1, 0, 16},
                  {"gpu", 0, 0, 1, 0, 1},      {"gpu-fp16", 0, 1, 1, 0, 1}, {"llvmpipe", 1, 0, 0, 1, 8}};
  for (int p = 0; p < CLAI__P_COUNT; p++) {
    char *src = clai__program_source(p);
    if (src == NULL) return 1;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.cl", argv[1], clai__program_stem(p));
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(src, f) == EOF || fclose(f) != 0) {
      perror(path);
      return 1;
    }
    free(src);
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
      clai__devcaps caps;
      memset(&caps, 0, sizeof caps);
      caps.is_cpu = profiles[i].is_cpu;
      caps.has_fp16 = profiles[i].has_fp16;
      caps.has_fma = profiles[i].has_fma;
      caps.lanes_cpu = profiles[i].lanes_cpu;
      caps.vec_float = profiles[i].vec_float;
      caps.cache_bytes = 32u << 20;
      caps.compute_units = 2;
      caps.max_wg_size = 1024;
      clai__gemm_config gemm;
      clai__gemm_config_default(&caps, &gemm);
      char opts[512];
      clai__program_options(p, &caps, &gemm, opts, sizeof opts);
      printf("%s\t%s\t%s\n", path, profiles[i].name, opts);
    }
  }
  return 0;
}
