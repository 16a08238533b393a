/* bench-ops-ref.c - plain C references of the row ops for `clai bench ops`: softmax, layernorm and sums,
 * each over a range of rows, so that a caller can split the rows across threads. This file is built with
 * -ffast-math (Makefile.am) and at -O3 (the pragma below, which wins over the -O2 of the default CFLAGS), so
 * the compiler may vectorise the reductions and call the vector expf of glibc's libmvec: the reference is
 * what a careful C programmer gets from the compiler, not a strawman. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include <math.h>
#include <stdint.h>

#include "bench.h"

/* Built for AVX2 + FMA as well as the baseline, chosen at run time (GCC function multi-versioning), so on
 * this kind of CPU the reference uses the same vector width as the OpenCL compiler does. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define REF_CLONES __attribute__((target_clones("avx2,fma", "default")))
#else
#define REF_CLONES
#endif

REF_CLONES void bench_ref_softmax(float *out, const float *x, int64_t r0, int64_t r1, int64_t n) {
  for (int64_t r = r0; r < r1; r++) {
    const float *xr = x + r * n;
    float *o = out + r * n;
    float m = -INFINITY;
    for (int64_t j = 0; j < n; j++) m = xr[j] > m ? xr[j] : m;
    float s = 0.0f;
    for (int64_t j = 0; j < n; j++) {
      o[j] = expf(xr[j] - m);
      s += o[j];
    }
    const float inv = 1.0f / s;
    for (int64_t j = 0; j < n; j++) o[j] *= inv;
  }
}

REF_CLONES void bench_ref_layernorm(float *out, const float *x, const float *gamma, const float *beta, int64_t r0, int64_t r1,
                         int64_t n, float eps) {
  for (int64_t r = r0; r < r1; r++) {
    const float *xr = x + r * n;
    float *o = out + r * n;
    float s = 0.0f;
    for (int64_t j = 0; j < n; j++) s += xr[j];
    const float mean = s / (float)n;
    float q = 0.0f;
    for (int64_t j = 0; j < n; j++) q += (xr[j] - mean) * (xr[j] - mean);
    const float rstd = 1.0f / sqrtf(q / (float)n + eps);
    for (int64_t j = 0; j < n; j++) o[j] = (xr[j] - mean) * rstd * gamma[j] + beta[j];
  }
}

REF_CLONES void bench_ref_sum_rows(float *out, const float *x, int64_t r0, int64_t r1, int64_t n) {
  for (int64_t r = r0; r < r1; r++) {
    const float *xr = x + r * n;
    float s = 0.0f;
    for (int64_t j = 0; j < n; j++) s += xr[j];
    out[r] = s;
  }
}

REF_CLONES float bench_ref_sum(const float *x, int64_t i0, int64_t i1) {
  float s = 0.0f;
  for (int64_t i = i0; i < i1; i++) s += x[i];
  return s;
}

REF_CLONES void bench_ref_sum_cols(float *out, const float *x, int64_t c0, int64_t c1, int64_t rows, int64_t n) {
  for (int64_t c = c0; c < c1; c++) out[c] = 0.0f;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    for (int64_t c = c0; c < c1; c++) out[c] += xr[c];
  }
}
