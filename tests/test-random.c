/* test-random.c - Philox4x32-10 random numbers (clai_rand_uniform, clai_rand_normal), weight
 * initialisation (Kaiming, Xavier) and dropout against a host implementation of the same generator:
 * known-answer vectors of Philox4x32-10, the exact mapping element -> (seed, offset, index), statistics of
 * 10^6 samples, identical results run after run, strided views, f16 storage and bad arguments. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

/* ---- the host reference of the generator --------------------------------------------------------------- */

static void philox(const uint32_t in[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c[4] = {in[0], in[1], in[2], in[3]}, k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n1 = (uint32_t)p1, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1,
             n3 = (uint32_t)p0;
    c[0] = n0;
    c[1] = n1;
    c[2] = n2;
    c[3] = n3;
  }
  memcpy(out, c, sizeof c);
}

/* The four words of the block of element i (see cl/random.cl). */
static void block_words(uint64_t seed, uint64_t offset, uint64_t g, uint32_t w[4]) {
  uint32_t c[4] = {(uint32_t)g, (uint32_t)(g >> 32), (uint32_t)offset, (uint32_t)(offset >> 32)};
  uint32_t k[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  philox(c, k, w);
}

static double u01(uint32_t w) { return (double)(w >> 8) * (1.0 / 16777216.0); }

/* Reference values of n elements: dist 0 uniform [a, b), 1 normal (a, b). Uniform in float exactly as the
 * kernel computes it (a + (b - a) * u with each operation rounded, no fma), so it must match bit for bit;
 * normal in double. */
static void ref_values(uint64_t seed, uint64_t offset, int dist, float a, float b, double *v, size_t n) {
  for (size_t base = 0; base < n; base += 4) {
    uint32_t w[4];
    block_words(seed, offset, base / 4, w);
    double r4[4];
    if (dist == 0) {
      for (int j = 0; j < 4; j++) {
        volatile float d = b - a, t = d * (float)u01(w[j]); /* volatile: round each step, as the device */
        r4[j] = (float)(a + t);
      }
    } else {
      for (int p = 0; p < 2; p++) {
        double u1 = (double)((w[2 * p] >> 8) + 1u) * (1.0 / 16777216.0), t = 2.0 * M_PI * u01(w[2 * p + 1]);
        double r = sqrt(-2.0 * log(u1));
        r4[2 * p] = a + b * r * cos(t);
        r4[2 * p + 1] = a + b * r * sin(t);
      }
    }
    for (size_t j = 0; j < 4 && base + j < n; j++) v[base + j] = r4[j];
  }
}

/* Reads any f32/f16 tensor as floats (dense, row-major). */
static void write_floats(clai_context *ctx, clai_tensor *t, const float *f) {
  size_t n = (size_t)clai_tensor_numel(t);
  if (clai_tensor_dtype(t) == CLAI_DTYPE_F32) {
    CLAIT_OK(ctx, clai_tensor_write(t, f, n * 4));
    return;
  }
  uint16_t *h = malloc(n * 2 + 2);
  assert_non_null(h);
  for (size_t i = 0; i < n; i++) h[i] = clait_f32_to_f16(f[i]);
  CLAIT_OK(ctx, clai_tensor_write(t, h, n * 2));
  free(h);
}

/* got vs want; for f16 the reference is rounded to half first. */
static void expect_vals(const char *what, clai_dtype dt, const float *got, const double *want, size_t n, double atol,
                        double rtol) {
  double *w = malloc(n * sizeof *w + 8);
  assert_non_null(w);
  for (size_t i = 0; i < n; i++)
    w[i] = dt == CLAI_DTYPE_F16 ? clait_f16_to_f32(clait_f32_to_f16((float)want[i])) : want[i];
  clait_expect_close(what, got, w, n, atol, dt == CLAI_DTYPE_F16 ? 1e-3 : rtol);
  free(w);
}

/* ---- tests ------------------------------------------------------------------------------------------- */

/* Known answers of Philox4x32-10 (the kat_vectors of Random123, from Salmon et al., SC'11). */
static void philox_known_answers(void **state) {
  static const struct {
    uint32_t ctr[4], key[2], out[4];
  } kat[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  (void)state;
  for (size_t t = 0; t < sizeof kat / sizeof kat[0]; t++) {
    uint32_t out[4];
    philox(kat[t].ctr, kat[t].key, out);
    for (int j = 0; j < 4; j++)
      if (out[j] != kat[t].out[j]) fail_msg("vector %zu word %d: %08x, expected %08x", t, j, out[j], kat[t].out[j]);
  }
}

/* The device draws exactly the host generator's values, element for element, f32 and f16. */
static void values_match_host(void **state) {
  clai_context *ctx = CTX(state);
  static const int64_t sizes[] = {1, 3, 4, 7, 31, 129, 1000, 4099};
  static const clai_dtype dts[] = {CLAI_DTYPE_F32, CLAI_DTYPE_F16};
  for (size_t d = 0; d < 2; d++)
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (int dist = 0; dist < 2; dist++) {
        size_t n = (size_t)sizes[s];
        uint64_t seed = 0x0123456789abcdefULL + s, offset = (uint64_t)dist << 33 | 5;
        clai_tensor *t = clait_tensor(ctx, dts[d], 1, &sizes[s]);
        if (dist == 0)
          CLAIT_OK(ctx, clai_rand_uniform(ctx, t, seed, offset, -2.0f, 3.0f));
        else
          CLAIT_OK(ctx, clai_rand_normal(ctx, t, seed, offset, 0.5f, 2.0f));
        float *got = clait_get(ctx, t);
        double *want = malloc(n * sizeof *want);
        assert_non_null(want);
        ref_values(seed, offset, dist, dist ? 0.5f : -2.0f, dist ? 2.0f : 3.0f, want, n);
        char what[96];
        snprintf(what, sizeof what, "%s %s n=%zu", dist ? "normal" : "uniform", clai_dtype_name(dts[d]), n);
        /* uniform: bit for bit (f16: the same float rounded to half); normal: the device's float
         * log/cos/sin (a few ulp) */
        if (dist == 0) {
          for (size_t i = 0; i < n; i++) {
            float w = dts[d] == CLAI_DTYPE_F16 ? clait_f16_to_f32(clait_f32_to_f16((float)want[i])) : (float)want[i];
            if (memcmp(&got[i], &w, 4) != 0) fail_msg("%s: element %zu is %.9g, expected exactly %.9g", what, i, got[i], w);
          }
        } else {
          expect_vals(what, dts[d], got, want, n, 2e-5, 2e-5);
        }
        if (dist == 0)
          for (size_t i = 0; i < n; i++)
            if (got[i] < -2.0f || got[i] > 3.0f) fail_msg("%s: element %zu = %g outside [lo, hi]", what, i, got[i]);
        free(got);
        free(want);
        clai_tensor_free(t);
      }
}

static void moments(const float *v, size_t n, double *mean, double *var) {
  double s = 0, q = 0;
  for (size_t i = 0; i < n; i++) s += v[i];
  *mean = s / (double)n;
  for (size_t i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
  *var = q / (double)n;
}

/* 10^6 samples: mean and variance within a few standard errors of the distribution's. */
static void statistics(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t n = CLAIT_SIZE(1000000, 40000);
  const double k = sqrt(1e6 / (double)n); /* small: the tolerances grow with the standard errors (x5) */
  clai_tensor *t = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  double mean, var;
  CLAIT_OK(ctx, clai_rand_uniform(ctx, t, 42, 0, -1.0f, 2.0f));
  float *v = clait_get(ctx, t);
  moments(v, (size_t)n, &mean, &var);
  /* U[-1, 2): mean 0.5, variance 0.75; standard error of the mean ~ 0.00087 */
  if (fabs(mean - 0.5) > 0.005 * k || fabs(var - 0.75) > 0.0075 * k)
    fail_msg("uniform: mean %g (0.5), variance %g (0.75)", mean, var);
  size_t below = 0;
  for (size_t i = 0; i < (size_t)n; i++) below += v[i] < 0.5f;
  if (fabs((double)below / (double)n - 0.5) > 0.003 * k) fail_msg("uniform: %zu of %lld below the median", below, (long long)n);
  free(v);
  CLAIT_OK(ctx, clai_rand_normal(ctx, t, 42, 1, 1.0f, 2.0f));
  v = clait_get(ctx, t);
  moments(v, (size_t)n, &mean, &var);
  if (fabs(mean - 1.0) > 0.01 * k || fabs(var - 4.0) > 0.04 * k) fail_msg("normal: mean %g (1), variance %g (4)", mean, var);
  size_t within = 0;
  for (size_t i = 0; i < (size_t)n; i++) within += fabs(v[i] - 1.0f) < 2.0f;
  if (fabs((double)within / (double)n - 0.682689) > 0.003 * k) fail_msg("normal: %zu within one std", within);
  free(v);
  clai_tensor_free(t);
}

/* Same (seed, offset): the same bits, also in a second context; another offset or seed: other numbers. */
static void deterministic(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t n = CLAIT_SIZE(100003, 10007);
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  CLAIT_OK(ctx, clai_rand_normal(ctx, a, 7, 9, 0.0f, 1.0f));
  CLAIT_OK(ctx, clai_rand_normal(ctx, b, 7, 9, 0.0f, 1.0f));
  float *x = clait_get(ctx, a), *y = clait_get(ctx, b);
  assert_memory_equal(x, y, (size_t)n * 4);
  clai_context *ctx2 = clait_ctx();
  clai_tensor *c = clait_tensor(ctx2, CLAI_DTYPE_F32, 1, &n);
  CLAIT_OK(ctx2, clai_rand_normal(ctx2, c, 7, 9, 0.0f, 1.0f));
  float *z = clait_get(ctx2, c);
  assert_memory_equal(x, z, (size_t)n * 4);
  clai_tensor_free(c);
  clai_context_free(ctx2);
  free(y);
  CLAIT_OK(ctx, clai_rand_normal(ctx, b, 7, 10, 0.0f, 1.0f));
  y = clait_get(ctx, b);
  size_t same = 0;
  for (size_t i = 0; i < (size_t)n; i++) same += x[i] == y[i];
  if (same > 10) fail_msg("offsets 9 and 10 share %zu of %lld values", same, (long long)n);
  free(y);
  CLAIT_OK(ctx, clai_rand_normal(ctx, b, 8, 9, 0.0f, 1.0f));
  y = clait_get(ctx, b);
  same = 0;
  for (size_t i = 0; i < (size_t)n; i++) same += x[i] == y[i];
  if (same > 10) fail_msg("seeds 7 and 8 share %zu of %lld values", same, (long long)n);
  free(x);
  free(y);
  free(z);
  clai_tensor_free(a);
  clai_tensor_free(b);
}

/* A strided view gets, in its logical order, the values a dense tensor of its shape gets. */
static void strided_views(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t shape[2] = {37, 29}, tshape[2] = {29, 37};
  clai_tensor *dense = clait_tensor(ctx, CLAI_DTYPE_F32, 2, tshape);
  CLAIT_OK(ctx, clai_rand_uniform(ctx, dense, 3, 4, 0.0f, 1.0f));
  float *want = clait_get(ctx, dense);
  clai_tensor *base = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape), *tv = NULL;
  CLAIT_OK(ctx, clai_fill(ctx, base, -1.0));
  CLAIT_OK(ctx, clai_tensor_transpose(base, &tv, 0, 1));
  CLAIT_OK(ctx, clai_rand_uniform(ctx, tv, 3, 4, 0.0f, 1.0f));
  float *got = clait_get(ctx, tv);
  assert_memory_equal(got, want, 29 * 37 * 4);
  free(got);
  free(want);
  /* a slice: every other row, and the rows between stay untouched */
  clai_tensor *sl = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(base, &sl, 0, 1, 37, 2));
  CLAIT_OK(ctx, clai_rand_normal(ctx, sl, 11, 0, 0.0f, 1.0f));
  float *all = clait_get(ctx, base);
  double *ref = malloc(18 * 29 * sizeof *ref);
  assert_non_null(ref);
  ref_values(11, 0, 1, 0.0f, 1.0f, ref, 18 * 29);
  for (int r = 0; r < 37; r++)
    for (int c = 0; c < 29; c++) {
      double w = r % 2 ? ref[(r / 2) * 29 + c] : all[r * 29 + c];
      if (fabs(all[r * 29 + c] - w) > 2e-5 * (1 + fabs(w))) fail_msg("slice: [%d, %d] = %g, expected %g", r, c, all[r * 29 + c], w);
    }
  free(ref);
  free(all);
  clai_tensor_free(sl);
  clai_tensor_free(tv);
  clai_tensor_free(base);
  clai_tensor_free(dense);
}

/* Fans as PyTorch computes them; Kaiming and Xavier draw the documented distribution. */
static void initialisation(void **state) {
  clai_context *ctx = CTX(state);
  int64_t fi, fo;
  const int64_t lin[2] = {300, 500}, conv[4] = {64, 32, 3, 5};
  clai_tensor *w = clait_tensor(ctx, CLAI_DTYPE_F32, 2, lin), *cw = clait_tensor(ctx, CLAI_DTYPE_F16, 4, conv);
  CLAIT_OK(ctx, clai_init_fans(w, &fi, &fo));
  assert_int_equal(fi, 500);
  assert_int_equal(fo, 300);
  CLAIT_OK(ctx, clai_init_fans(cw, &fi, &fo));
  assert_int_equal(fi, 32 * 15);
  assert_int_equal(fo, 64 * 15);
  size_t n = 300 * 500;
  double *want = malloc(n * sizeof *want);
  assert_non_null(want);
  /* kaiming uniform, gain 0 = sqrt(2), fan_in 500: bound sqrt(6 / 500) */
  CLAIT_OK(ctx, clai_init_kaiming_uniform(ctx, w, 5, 6, 0.0f, 0));
  float bound = (float)(sqrt(3.0) * sqrt(2.0) / sqrt(500.0));
  ref_values(5, 6, 0, -bound, bound, want, n);
  float *got = clait_get(ctx, w);
  clait_expect_close("kaiming_uniform", got, want, n, 0, 0);
  free(got);
  /* kaiming normal on fan_out with gain 1: std 1/sqrt(300) */
  CLAIT_OK(ctx, clai_init_kaiming_normal(ctx, w, 5, 7, 1.0f, 1));
  ref_values(5, 7, 1, 0.0f, (float)(1.0 / sqrt(300.0)), want, n);
  got = clait_get(ctx, w);
  clait_expect_close("kaiming_normal", got, want, n, 2e-6, 2e-5);
  free(got);
  /* xavier uniform, gain 2: bound 2 sqrt(6 / 800) */
  CLAIT_OK(ctx, clai_init_xavier_uniform(ctx, w, 5, 8, 2.0f));
  bound = (float)(sqrt(3.0) * 2.0 * sqrt(2.0 / 800.0));
  ref_values(5, 8, 0, -bound, bound, want, n);
  got = clait_get(ctx, w);
  clait_expect_close("xavier_uniform", got, want, n, 0, 0);
  free(got);
  /* xavier normal on the f16 conv weight: its variance is 2 / (fan_in + fan_out) */
  CLAIT_OK(ctx, clai_init_xavier_normal(ctx, cw, 5, 9, 0.0f));
  got = clait_get(ctx, cw);
  double mean, var, want_var = 2.0 / (32 * 15 + 64 * 15);
  moments(got, 64 * 32 * 15, &mean, &var);
  if (fabs(var / want_var - 1) > 0.03 || fabs(mean) > 0.01 * sqrt(want_var) * 10)
    fail_msg("xavier_normal f16: mean %g, variance %g, expected 0 and %g", mean, var, want_var);
  free(got);
  CLAIT_OK(ctx, clai_init_kaiming_uniform(ctx, cw, 5, 10, 0.0f, 0));
  got = clait_get(ctx, cw);
  bound = (float)sqrt(6.0 / (32 * 15));
  for (size_t i = 0; i < 64 * 32 * 15; i++)
    if (fabs(got[i]) > bound * (1 + 1e-3)) fail_msg("kaiming_uniform f16: %g outside +-%g", got[i], bound);
  free(got);
  free(want);
  clai_tensor_free(w);
  clai_tensor_free(cw);
}

/* Dropout against the host generator: kept where u < 1 - p, scaled by 1 / (1 - p); the mask holds the
 * factor; recomputing with the same (seed, offset) is the backward; p = 0 and p = 1. */
static void dropout(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t sizes[] = {1, 7, 129, 1000, CLAIT_SIZE(100003, 10007)};
  static const clai_dtype dts[] = {CLAI_DTYPE_F32, CLAI_DTYPE_F16};
  static const float ps[] = {0.0f, 0.1f, 0.5f, 1.0f};
  clait_rng rng = {0x5eed};
  for (size_t d = 0; d < 2; d++)
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (size_t pi = 0; pi < 4; pi++) {
        clai_dtype dt = dts[d];
        size_t n = (size_t)sizes[s];
        float p = ps[pi];
        float *x = malloc(n * 4);
        assert_non_null(x);
        clait_fill(&rng, x, n, -3.0f, 3.0f);
        if (dt == CLAI_DTYPE_F16) clait_round_f16(x, n);
        clai_tensor *tx = clait_tensor(ctx, dt, 1, &sizes[s]), *out = clait_tensor(ctx, dt, 1, &sizes[s]),
                    *mask = clait_tensor(ctx, dt, 1, &sizes[s]);
        write_floats(ctx, tx, x);
        CLAIT_OK(ctx, clai_dropout(ctx, out, mask, tx, p, 99, s));
        float *got = clait_get(ctx, out), *gm = clait_get(ctx, mask);
        double *want = malloc(n * sizeof *want), *wm = malloc(n * sizeof *wm);
        assert_non_null(want);
        assert_non_null(wm);
        float q = 1.0f - p, scale = p < 1.0f ? (float)(1.0 / (1.0 - p)) : 0.0f;
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
          uint32_t w[4];
          block_words(99, s, i / 4, w);
          int keep = (float)u01(w[i % 4]) < q;
          kept += keep;
          wm[i] = keep ? scale : 0.0;
          want[i] = (double)x[i] * (dt == CLAI_DTYPE_F16 ? clait_f16_to_f32(clait_f32_to_f16((float)wm[i])) : wm[i]);
        }
        char what[96];
        snprintf(what, sizeof what, "dropout %s n=%zu p=%g", clai_dtype_name(dt), n, p);
        expect_vals(what, dt, got, want, n, 1e-6, 1e-6);
        expect_vals(what, dt, gm, wm, n, 0, 1e-6);
        if (n == (size_t)sizes[4] && fabs((double)kept / (double)n - q) > 0.01 * sqrt(100003.0 / (double)n))
          fail_msg("%s: kept %zu", what, kept);
        /* backward by recomputation equals grad * mask */
        clai_tensor *gx = clait_tensor(ctx, dt, 1, &sizes[s]);
        CLAIT_OK(ctx, clai_dropout(ctx, gx, NULL, tx, p, 99, s));
        float *again = clait_get(ctx, gx);
        assert_memory_equal(again, got, n * 4);
        /* in place: out aliases x */
        CLAIT_OK(ctx, clai_dropout(ctx, tx, NULL, tx, p, 99, s));
        free(again);
        again = clait_get(ctx, tx);
        assert_memory_equal(again, got, n * 4);
        free(again);
        free(got);
        free(gm);
        free(want);
        free(wm);
        free(x);
        clai_tensor_free(gx);
        clai_tensor_free(tx);
        clai_tensor_free(out);
        clai_tensor_free(mask);
      }
}

static void bad_arguments(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t s7 = 7, s8 = 8, s1 = 1, s2[2] = {4, 7};
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s7), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s8),
              *i = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &s7), *h = clait_tensor(ctx, CLAI_DTYPE_F16, 1, &s7),
              *one = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s1), *ex = NULL;
  CLAIT_OK(ctx, clai_tensor_expand(one, &ex, 2, s2));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "f32 or f16", clai_rand_uniform(ctx, i, 1, 0, 0, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "greater than hi", clai_rand_uniform(ctx, a, 1, 0, 2, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not finite", clai_rand_uniform(ctx, a, 1, 0, 0, INFINITY));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "negative", clai_rand_normal(ctx, a, 1, 0, 0, -1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "broadcast", clai_rand_normal(ctx, ex, 1, 0, 0, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "is NULL", clai_rand_normal(ctx, NULL, 1, 0, 0, 1));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "at least 2 dims", clai_init_kaiming_uniform(ctx, a, 1, 0, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "at least 2 dims", clai_init_fans(a, (int64_t[1]){0}, (int64_t[1]){0}));
  clai_tensor *w2 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s2);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "gain", clai_init_xavier_normal(ctx, w2, 1, 0, -1.0f));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "w is a broadcast view", clai_init_xavier_normal(ctx, ex, 1, 0, 1.0f));
  clai_tensor_free(w2);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside [0, 1]", clai_dropout(ctx, a, NULL, a, 1.5f, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside [0, 1]", clai_dropout(ctx, a, NULL, a, NAN, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "differ in shape", clai_dropout(ctx, b, NULL, a, 0.5f, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "dtypes differ", clai_dropout(ctx, h, NULL, a, 0.5f, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "mask overlaps", clai_dropout(ctx, a, a, a, 0.5f, 1, 0));
  clai_tensor *sl = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(b, &sl, 0, 1, 8, 1));
  clai_tensor *head = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(b, &head, 0, 0, 7, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps x", clai_dropout(ctx, sl, NULL, head, 0.5f, 1, 0));
  /* no context */
  assert_int_equal(clai_rand_uniform(NULL, a, 1, 0, 0, 1), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_rand_normal(NULL, a, 1, 0, 0, 1), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_dropout(NULL, a, NULL, a, 0.5f, 1, 0), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_init_kaiming_normal(NULL, a, 1, 0, 0, 0), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_init_xavier_uniform(NULL, a, 1, 0, 0), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_init_fans(NULL, (int64_t[1]){0}, (int64_t[1]){0}), CLAI_E_INVALID_ARG);
  /* the context still works */
  CLAIT_OK(ctx, clai_rand_uniform(ctx, a, 1, 0, 0, 1));
  float v[7];
  CLAIT_OK(ctx, clai_tensor_read(a, v, sizeof v));
  double want[7];
  ref_values(1, 0, 0, 0.0f, 1.0f, want, 7);
  clait_expect_close("after errors", v, want, 7, 1e-6, 1e-6);
  clai_tensor_free(head);
  clai_tensor_free(sl);
  clai_tensor_free(ex);
  clai_tensor_free(one);
  clai_tensor_free(a);
  clai_tensor_free(b);
  clai_tensor_free(i);
  clai_tensor_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(philox_known_answers),
      cmocka_unit_test_setup_teardown(values_match_host, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(statistics, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(deterministic, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(strided_views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(initialisation, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(dropout, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(bad_arguments, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("random", tests, 1);
}
