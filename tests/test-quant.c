/* test-quant.c - quantized tensors (Q8_0, Q4_0, Q4_1, and the K-quants Q4_K, Q6_K): layout rules of views, raw block transfers, the
 * dequantizing copy, clai_matmul with a quantized operand (the one-pass kernel for M <= 16 and the chunked
 * dequantize-then-GEMM path above it, in the family the device runs; tests/quant-gemm-*.sh run the other
 * families) and clai_gather_rows from a quantized table, each against a double-precision reference of the
 * block formats written here from clai.h's description. */
#include "testutil.h"

static const clai_dtype fmts[] = {CLAI_DTYPE_Q8_0, CLAI_DTYPE_Q4_0, CLAI_DTYPE_Q4_1, CLAI_DTYPE_Q4_K, CLAI_DTYPE_Q6_K};
#define NFMTS (sizeof fmts / sizeof fmts[0])

/* CLAI_TEST_GEMM_FAMILY_ONLY (tests/quant-gemm-*.sh, which run this program with another GEMM family): only
 * the products that family computes, those with M above 16 (dequantized into it); the one-pass kernels
 * below and everything else are the same in every family and checked by the default run. */
static int family_only(void) {
  const char *v = getenv("CLAI_TEST_GEMM_FAMILY_ONLY");
  return v != NULL && strcmp(v, "1") == 0;
}

/* Values per block (per super-block for the K-quants): shapes below are multiples of it. */
static int64_t qb(clai_dtype fmt) { return clai_dtype_block(fmt); }
static int is_k(clai_dtype fmt) { return fmt == CLAI_DTYPE_Q4_K || fmt == CLAI_DTYPE_Q6_K; }

static double half_bits(const uint8_t *p) { return clait_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* The 256 values of a Q4_K or Q6_K super-block, from clai.h's description (value by value, not by the
 * sub-blocks the kernels walk). */
static void ref_kblock(clai_dtype fmt, const uint8_t *b, double *v) {
  if (fmt == CLAI_DTYPE_Q4_K) {
    const double d = half_bits(b), dmin = half_bits(b + 2);
    const uint8_t *s = b + 4;
    for (int e = 0; e < 256; e++) {
      const int j = e / 32, i = e % 32;
      const int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
      const int m = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | (s[j] >> 6) << 4;
      const uint8_t byte = b[16 + 32 * (j / 2) + i];
      const int q = j % 2 ? byte >> 4 : byte & 15;
      v[e] = d * sc * q - dmin * m;
    }
  } else {
    const double d = half_bits(b + 208);
    for (int e = 0; e < 256; e++) {
      const int h = e / 128, r = e % 128 / 32, i = e % 32;
      const uint8_t l = b[64 * h + 32 * (r % 2) + i];
      const int q = (r < 2 ? l & 15 : l >> 4) | (b[128 + 32 * h + i] >> (2 * r) & 3) << 4;
      v[e] = d * (int8_t)b[192 + e / 16] * (q - 32);
    }
  }
}

/* The qb(fmt) values of one block (super-block), as clai.h defines them. */
static void ref_block(clai_dtype fmt, const uint8_t *b, double *v) {
  if (is_k(fmt)) {
    ref_kblock(fmt, b, v);
    return;
  }
  const double d = half_bits(b);
  for (int j = 0; j < 32; j++) {
    if (fmt == CLAI_DTYPE_Q8_0) {
      v[j] = d * (int8_t)b[2 + j];
    } else {
      const uint8_t byte = b[(fmt == CLAI_DTYPE_Q4_0 ? 2 : 4) + (j & 15)];
      const int q = j < 16 ? byte & 15 : byte >> 4;
      v[j] = fmt == CLAI_DTYPE_Q4_0 ? d * (q - 8) : d * q + half_bits(b + 2);
    }
  }
}

/* n random blocks: scales of either sign between 1e-3 and 5e-2 (a minimum within +-0.1 for Q4_1), random
 * quants; one block in 7 has a zero scale, one in 11 a subnormal half as its scale (and its minimum).
 * K-quants: d (and Q4_K's dmin) 32 times smaller, as their sub-block scales multiply it by up to 63 (Q6_K:
 * by -128..127); random bytes for those scales and the quants, and one super-block in 5 has every scale
 * byte 0xff (Q4_K: every 6-bit scale and minimum 63; Q6_K: every scale -1). */
static void rand_blocks(clait_rng *r, clai_dtype fmt, size_t n, uint8_t *out) {
  const size_t bs = clai_dtype_size(fmt);
  for (size_t i = 0; i < n; i++) {
    uint8_t *b = out + i * bs;
    const float k = is_k(fmt) ? 1.0f / 32 : 1.0f;
    float d = clait_uniform(r, 1e-3f, 5e-2f) * k * (clait_next(r) & 1 ? -1.0f : 1.0f);
    float m = clait_uniform(r, -0.1f, 0.1f) * k;
    if (clait_next(r) % 7 == 0) d = 0.0f;
    if (clait_next(r) % 11 == 0) d = clait_uniform(r, -6e-5f, 6e-5f), m = clait_uniform(r, -6e-5f, 6e-5f);
    const uint16_t hd = clait_f32_to_f16(d), hm = clait_f32_to_f16(m);
    if (is_k(fmt)) {
      for (size_t j = 0; j < bs; j++) b[j] = (uint8_t)clait_next(r);
      const int all = clait_next(r) % 5 == 0;
      if (fmt == CLAI_DTYPE_Q4_K) {
        b[0] = (uint8_t)hd, b[1] = (uint8_t)(hd >> 8), b[2] = (uint8_t)hm, b[3] = (uint8_t)(hm >> 8);
        if (all) memset(b + 4, 0xff, 12);
      } else {
        b[208] = (uint8_t)hd, b[209] = (uint8_t)(hd >> 8);
        if (all) memset(b + 192, 0xff, 16);
      }
      continue;
    }
    b[0] = (uint8_t)hd, b[1] = (uint8_t)(hd >> 8);
    size_t q0 = 2;
    if (fmt == CLAI_DTYPE_Q4_1) b[2] = (uint8_t)hm, b[3] = (uint8_t)(hm >> 8), q0 = 4;
    for (size_t j = q0; j < bs; j++) b[j] = (uint8_t)clait_next(r);
  }
}

/* A dense quantized tensor with random blocks; *raw (malloc'd) receives them, *ref their values. */
static clai_tensor *qtensor(clai_context *ctx, clait_rng *r, clai_dtype fmt, int ndim, const int64_t *shape,
                            uint8_t **raw, double **ref) {
  clai_tensor *t = clait_tensor(ctx, fmt, ndim, shape);
  const size_t vb = (size_t)qb(fmt), nb = (size_t)clai_tensor_numel(t) / vb, bs = clai_dtype_size(fmt);
  uint8_t *b = malloc(nb * bs + 1);
  double *v = malloc(nb * vb * sizeof *v + 8);
  assert_non_null(b);
  assert_non_null(v);
  rand_blocks(r, fmt, nb, b);
  for (size_t i = 0; i < nb; i++) ref_block(fmt, b + i * bs, v + i * vb);
  CLAIT_OK(ctx, clai_tensor_write(t, b, nb * bs));
  if (raw != NULL) *raw = b;
  else free(b);
  if (ref != NULL) *ref = v;
  else free(v);
  return t;
}

static void test_dtype_queries(void **state) {
  (void)state;
  assert_int_equal(clai_dtype_size(CLAI_DTYPE_Q8_0), 34);
  assert_int_equal(clai_dtype_size(CLAI_DTYPE_Q4_0), 18);
  assert_int_equal(clai_dtype_size(CLAI_DTYPE_Q4_1), 20);
  assert_int_equal(clai_dtype_size(CLAI_DTYPE_Q4_K), 144);
  assert_int_equal(clai_dtype_size(CLAI_DTYPE_Q6_K), 210);
  assert_int_equal(clai_dtype_block(CLAI_DTYPE_Q4_1), 32);
  assert_int_equal(clai_dtype_block(CLAI_DTYPE_Q4_K), 256);
  assert_int_equal(clai_dtype_block(CLAI_DTYPE_Q6_K), 256);
  assert_int_equal(clai_dtype_block(CLAI_DTYPE_F16), 1);
  assert_int_equal(clai_dtype_block((clai_dtype)99), 0);
  assert_string_equal(clai_dtype_name(CLAI_DTYPE_Q8_0), "q8_0");
  assert_string_equal(clai_dtype_name(CLAI_DTYPE_Q4_0), "q4_0");
  assert_string_equal(clai_dtype_name(CLAI_DTYPE_Q4_1), "q4_1");
  assert_string_equal(clai_dtype_name(CLAI_DTYPE_Q4_K), "q4_k");
  assert_string_equal(clai_dtype_name(CLAI_DTYPE_Q6_K), "q6_k");
}

/* Shapes and views: the last dim holds whole blocks; views select whole blocks. */
static void test_layout_rules(void **state) {
  clai_context *ctx = *state;
  clai_tensor *t = NULL, *v = NULL;
  const int64_t bad[2] = {3, 40}, zero_d[1] = {0};
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "multiple of 32", clai_tensor_init(ctx, &t, CLAI_DTYPE_Q4_0, 2, bad));
  assert_null(t);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "multiple of 32", clai_tensor_init(ctx, &t, CLAI_DTYPE_Q8_0, 0, NULL));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_Q8_0, 1, zero_d));
  clai_tensor_free(t);
  const int64_t shape[3] = {2, 3, 96};
  t = clait_tensor(ctx, CLAI_DTYPE_Q4_1, 3, shape);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "multiple of 32", clai_tensor_transpose(t, &v, 1, 2));
  const int64_t vsh[3] = {2, 3, 32}, vst[3] = {288, 96, 2};
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "stride 1", clai_tensor_view(t, &v, 3, vsh, vst, 0));
  const int64_t vst2[3] = {288, 80, 1};
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "whole blocks", clai_tensor_view(t, &v, 3, vsh, vst2, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "whole blocks", clai_tensor_slice(t, &v, 2, 16, 80, 1));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "multiple of 32", clai_tensor_slice(t, &v, 2, 32, 80, 1));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "multiple of 32", clai_tensor_slice(t, &v, 2, 0, 96, 2));
  assert_null(v);
  CLAIT_OK(ctx, clai_tensor_slice(t, &v, 2, 32, 96, 1)); /* two of three blocks per row */
  assert_int_equal(clai_tensor_dim(v, 2), 64);
  clai_tensor_free(v);
  CLAIT_OK(ctx, clai_tensor_transpose(t, &v, 0, 1));
  clai_tensor_free(v);
  const int64_t flat[2] = {18, 32};
  CLAIT_OK(ctx, clai_tensor_reshape(t, &v, 2, flat));
  clai_tensor_free(v);
  uint8_t small[4];
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "holds 360", clai_tensor_write(t, small, sizeof small));
  CLAIT_FAILS(ctx, CLAI_E_BUFFER_TOO_SMALL, "needs 360", clai_tensor_read(t, small, sizeof small));
  clai_tensor_free(t);
  /* the K-quants: the same rules with 256 in place of 32 */
  const int64_t kbad[2] = {3, 288}, kshape[3] = {2, 3, 768};
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "q4_k tensor's last dim must be a multiple of 256",
              clai_tensor_init(ctx, &t, CLAI_DTYPE_Q4_K, 2, kbad));
  assert_null(t);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "q6_k tensor's last dim must be a multiple of 256",
              clai_tensor_init(ctx, &t, CLAI_DTYPE_Q6_K, 1, kbad + 1));
  for (int f = 0; f < 2; f++) {
    t = clait_tensor(ctx, f ? CLAI_DTYPE_Q6_K : CLAI_DTYPE_Q4_K, 3, kshape);
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "whole blocks", clai_tensor_slice(t, &v, 2, 32, 288, 1));
    CLAIT_FAILS(ctx, CLAI_E_SHAPE, "multiple of 256", clai_tensor_slice(t, &v, 2, 256, 288, 1));
    const int64_t ksh[3] = {2, 3, 256}, kst[3] = {2304, 736, 1};
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "multiple of 256", clai_tensor_view(t, &v, 3, ksh, kst, 0));
    const int64_t kst2[3] = {2304, 768, 1};
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "whole blocks", clai_tensor_view(t, &v, 3, ksh, kst2, 64));
    const int64_t kflat[2] = {36, 128};
    CLAIT_FAILS(ctx, CLAI_E_SHAPE, "multiple of 256", clai_tensor_reshape(t, &v, 2, kflat));
    assert_null(v);
    CLAIT_OK(ctx, clai_tensor_view(t, &v, 3, ksh, kst2, 512)); /* the third super-block of each row */
    clai_tensor_free(v);
    const size_t kb = 2 * 3 * 3 * clai_dtype_size(clai_tensor_dtype(t));
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, f ? "holds 3780" : "holds 2592", clai_tensor_write(t, small, sizeof small));
    assert_int_equal(kb, f ? 3780 : 2592);
    clai_tensor_free(t);
  }
}

/* Raw blocks go in and come back unchanged, whole and through strided views (a row slice with a step, a
 * block range of each row, a permuted batch). */
static void test_raw_roundtrip(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0x51a7};
  for (size_t f = 0; f < NFMTS; f++) {
    const clai_dtype fmt = fmts[f];
    const size_t bs = clai_dtype_size(fmt);
    const int64_t u = qb(fmt), shape[3] = {3, 5, 4 * u};
    uint8_t *raw = NULL;
    clai_tensor *t = qtensor(ctx, &r, fmt, 3, shape, &raw, NULL);
    const size_t nb = 3 * 5 * 4, rowb = 4 * bs;
    uint8_t *back = malloc(nb * bs);
    assert_non_null(back);
    CLAIT_OK(ctx, clai_tensor_read(t, back, nb * bs));
    assert_memory_equal(back, raw, nb * bs);
    clai_tensor *v = NULL, *w = NULL;
    CLAIT_OK(ctx, clai_tensor_slice(t, &v, 1, 1, 5, 2)); /* rows 1 and 3 of each batch */
    CLAIT_OK(ctx, clai_tensor_slice(v, &w, 2, u, 3 * u, 1)); /* blocks 1 and 2 */
    CLAIT_OK(ctx, clai_tensor_read(w, back, 3 * 2 * 2 * bs));
    for (int b = 0; b < 3; b++)
      for (int i = 0; i < 2; i++)
        assert_memory_equal(back + (size_t)(b * 2 + i) * 2 * bs, raw + (size_t)(b * 5 + 1 + 2 * i) * rowb + bs, 2 * bs);
    /* write through the view, read the whole */
    uint8_t *fresh = malloc(12 * bs);
    assert_non_null(fresh);
    rand_blocks(&r, fmt, 12, fresh);
    CLAIT_OK(ctx, clai_tensor_write(w, fresh, 12 * bs));
    for (int b = 0; b < 3; b++)
      for (int i = 0; i < 2; i++)
        memcpy(raw + (size_t)(b * 5 + 1 + 2 * i) * rowb + bs, fresh + (size_t)(b * 2 + i) * 2 * bs, 2 * bs);
    CLAIT_OK(ctx, clai_tensor_read(t, back, nb * bs));
    assert_memory_equal(back, raw, nb * bs);
    clai_tensor_free(w);
    clai_tensor_free(v);
    free(fresh);
    free(back);
    free(raw);
    clai_tensor_free(t);
  }
}

/* clai_copy dequantizes into f32 and f16 (dense, transposed, at an offset, broadcast over a batch dim),
 * copies blocks into the same dtype, and refuses to quantize. */
/* Blocks whose scale (and Q4_1 minimum) is +-infinity or NaN, every quant value: the dequantizing copy gives
 * what clai.h's formula gives in double (0 * inf is NaN, (q - 8) * inf is an infinity), bit class for bit
 * class; so does the decode step's product of such a block with ones (a NaN or an infinity of the right sign). */
/* The K-quants: d (Q4_K: and, in three more super-blocks, dmin) special, the other scales finite. */
static void test_special_scales(void **state) {
  clai_context *ctx = *state;
  static const uint16_t specials[3] = {0x7c00, 0xfc00, 0x7e00}; /* +inf, -inf, NaN */
  for (size_t f = 0; f < NFMTS; f++) {
    const clai_dtype fmt = fmts[f];
    const size_t bs = clai_dtype_size(fmt);
    const int64_t u = qb(fmt);
    const int nblk = fmt == CLAI_DTYPE_Q4_K ? 6 : 3;
    uint8_t raw[6 * 210];
    for (int i = 0; i < nblk; i++) {
      uint8_t *b = raw + i * bs;
      const uint16_t sp = specials[i % 3];
      for (size_t j = 0; j < bs; j++) b[j] = (uint8_t)(j * 17 + (size_t)i); /* quants 0 and 8 among them */
      if (fmt == CLAI_DTYPE_Q4_K) { /* the other of d and dmin 1 */
        const int at = i < 3 ? 0 : 2;
        b[at] = (uint8_t)sp, b[at + 1] = (uint8_t)(sp >> 8);
        b[2 - at] = 0, b[3 - at] = 0x3c;
      } else if (fmt == CLAI_DTYPE_Q6_K) {
        b[208] = (uint8_t)sp, b[209] = (uint8_t)(sp >> 8);
      } else {
        b[0] = (uint8_t)sp, b[1] = (uint8_t)(sp >> 8);
        if (fmt == CLAI_DTYPE_Q4_1) b[2] = 0, b[3] = 0x3c; /* minimum 1 */
      }
    }
    const int64_t sh[2] = {nblk, u}, xsh[2] = {1, u}, csh[2] = {1, nblk};
    clai_tensor *q = clait_tensor(ctx, fmts[f], 2, sh), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sh);
    CLAIT_OK(ctx, clai_tensor_write(q, raw, (size_t)nblk * bs));
    CLAIT_OK(ctx, clai_copy(ctx, out, q));
    float got[6 * 256], c[6];
    clait_read_floats(ctx, out, got);
    clai_tensor *x = clait_tensor(ctx, CLAI_DTYPE_F32, 2, xsh), *cm = clait_tensor(ctx, CLAI_DTYPE_F32, 2, csh);
    CLAIT_OK(ctx, clai_fill(ctx, x, 1.0));
    CLAIT_OK(ctx, clai_matmul(ctx, cm, x, 0, q, 1, 1.0f, 0.0f));
    clait_read_floats(ctx, cm, c);
    for (int i = 0; i < nblk; i++) {
      double v[256], sum = 0;
      ref_block(fmt, raw + i * bs, v);
      for (int j = 0; j < u; j++) {
        const double want = v[j], g = got[i * u + j];
        sum += want;
        if (isnan(want) ? !isnan(g) : g != want)
          fail_msg("%s block %d with scale 0x%04x, value %d: %g, expected %g", clai_dtype_name(fmt), i,
                   specials[i % 3], j, g, want);
      }
      if (isnan(sum) ? !isnan(c[i]) : (double)c[i] != sum)
        fail_msg("%s product with block %d of scale 0x%04x: %g, expected %g", clai_dtype_name(fmt), i,
                 specials[i % 3], (double)c[i], sum);
    }
    clai_tensor_free(cm);
    clai_tensor_free(x);
    clai_tensor_free(out);
    clai_tensor_free(q);
  }
}

static void test_dequant_copy(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0xd0d0};
  for (size_t f = 0; f < NFMTS; f++) {
    const clai_dtype fmt = fmts[f];
    const int64_t C = 3 * qb(fmt), shape[2] = {7, C}; /* three blocks (super-blocks) a row */
    double *ref = NULL;
    clai_tensor *q = qtensor(ctx, &r, fmt, 2, shape, NULL, &ref);
    const size_t n = (size_t)(7 * C);
    double *want = malloc(n * sizeof *want);
    float *got = malloc(n * 4);
    assert_non_null(want);
    assert_non_null(got);
    for (int half = 0; half < 2; half++) {
      const clai_dtype dt = half ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
      for (size_t i = 0; i < n; i++) want[i] = clait_as_dtype(dt, ref[i]);
      clai_tensor *d = clait_tensor(ctx, dt, 2, shape);
      CLAIT_OK(ctx, clai_copy(ctx, d, q));
      clait_read_floats(ctx, d, got);
      /* Q8_0, Q4_0 and Q6_K products are exact in f32; Q4_1 and Q4_K add the minimum (one rounding) */
      clait_expect_close(half ? "dequant f16" : "dequant f32", got, want, n, 1e-9, half ? 1e-3 : 1.2e-7);
      clai_tensor_free(d);
      /* into a transposed view at an offset inside a larger buffer */
      const int64_t big[1] = {C * 7 + 13}, tsh[2] = {7, C}, tst[2] = {1, 7};
      clai_tensor *base = clait_tensor(ctx, dt, 1, big), *tv = NULL;
      CLAIT_OK(ctx, clai_fill(ctx, base, -7.0));
      CLAIT_OK(ctx, clai_tensor_view(base, &tv, 2, tsh, tst, 13));
      CLAIT_OK(ctx, clai_copy(ctx, tv, q));
      clait_read_floats(ctx, tv, got);
      clait_expect_close("dequant into a transposed view", got, want, n, 1e-9, half ? 1e-3 : 1.2e-7);
      float head[13];
      const int64_t hs[1] = {13}, one[1] = {1};
      clai_tensor *hv = NULL;
      CLAIT_OK(ctx, clai_tensor_view(base, &hv, 1, hs, one, 0));
      clait_read_floats(ctx, hv, head);
      for (int i = 0; i < 13; i++) assert_true(head[i] == -7.0f);
      clai_tensor_free(hv);
      clai_tensor_free(tv);
      clai_tensor_free(base);
    }
    /* broadcast over a new leading dim */
    const int64_t b3[3] = {2, 7, C};
    clai_tensor *d3 = clait_tensor(ctx, CLAI_DTYPE_F32, 3, b3);
    CLAIT_OK(ctx, clai_copy(ctx, d3, q));
    float *g3 = clait_get(ctx, d3);
    for (size_t i = 0; i < 2 * n; i++) want[i % n] = (float)ref[i % n];
    clait_expect_close("broadcast batch 0", g3, want, n, 1e-9, 1.2e-7);
    clait_expect_close("broadcast batch 1", g3 + n, want, n, 1e-9, 1.2e-7);
    free(g3);
    clai_tensor_free(d3);
    /* blocks into the same dtype (a row slice of q into a fresh tensor) */
    clai_tensor *rows = NULL, *q2 = NULL;
    CLAIT_OK(ctx, clai_tensor_slice(q, &rows, 0, 1, 7, 3));
    const int64_t s2[2] = {2, C};
    q2 = clait_tensor(ctx, fmt, 2, s2);
    CLAIT_OK(ctx, clai_copy(ctx, q2, rows));
    clai_tensor *d2 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s2);
    CLAIT_OK(ctx, clai_copy(ctx, d2, q2));
    clait_read_floats(ctx, d2, got);
    for (int64_t i = 0; i < C; i++) want[i] = (float)ref[C + i], want[C + i] = (float)ref[4 * C + i];
    clait_expect_close("block copy", got, want, (size_t)(2 * C), 1e-9, 1.2e-7);
    /* what clai_copy refuses */
    if (fmt != CLAI_DTYPE_Q8_0) CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "q8_0 only", clai_copy(ctx, q2, d2));
    clai_tensor *i32 = clait_tensor(ctx, CLAI_DTYPE_I32, 2, s2);
    CLAIT_FAILS(ctx, CLAI_E_DTYPE, "not i32", clai_copy(ctx, i32, q2));
    const int64_t other[2] = {2, C - qb(fmt)};
    clai_tensor *o = clait_tensor(ctx, CLAI_DTYPE_F32, 2, other);
    CLAIT_FAILS(ctx, CLAI_E_SHAPE, "last dim", clai_copy(ctx, o, q2));
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlap", clai_copy(ctx, q, q));
    clai_tensor_free(o);
    clai_tensor_free(i32);
    clai_tensor_free(d2);
    clai_tensor_free(q2);
    clai_tensor_free(rows);
    free(want);
    free(got);
    free(ref);
    clai_tensor_free(q);
  }
}

/* clai_copy quantizes f32 and f16 (dense or strided) into q8_0: d = max|x| / 127 as half, q = round(x / d). */
static void test_quantize_q8_0(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0x88};
  const int64_t shape[2] = {5, 128};
  const size_t n = 5 * 128, nb = n / 32;
  float *x = malloc(n * 4);
  uint8_t *got = malloc(nb * 34);
  assert_non_null(x);
  assert_non_null(got);
  for (int half = 0; half < 2; half++)
    for (int strided = 0; strided < 2; strided++) {
      clait_fill(&r, x, n, -3.0f, 3.0f);
      for (int j = 0; j < 32; j++) x[64 + j] = 0.0f;    /* a zero block */
      x[200] = 1e-3f, x[300] = -250.0f;                   /* a tiny and a large value */
      if (half) clait_round_f16(x, n);
      clai_tensor *src;
      if (strided) { /* x stored transposed: [128, 5], viewed as [5, 128] */
        const int64_t ts[2] = {128, 5};
        float *xt = malloc(n * 4);
        assert_non_null(xt);
        for (int i = 0; i < 5; i++)
          for (int j = 0; j < 128; j++) xt[j * 5 + i] = x[i * 128 + j];
        clai_tensor *base = clait_upload_floats(ctx, half ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, 2, ts, xt);
        free(xt);
        CLAIT_OK(ctx, clai_tensor_transpose(base, &src, 0, 1));
        clai_tensor_free(base);
      } else {
        src = clait_upload_floats(ctx, half ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, 2, shape, x);
      }
      clai_tensor *q = clait_tensor(ctx, CLAI_DTYPE_Q8_0, 2, shape);
      CLAIT_OK(ctx, clai_copy(ctx, q, src));
      CLAIT_OK(ctx, clai_tensor_read(q, got, nb * 34));
      for (size_t b = 0; b < nb; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t hd = clait_f32_to_f16(d);
        if ((uint16_t)(got[b * 34] | got[b * 34 + 1] << 8) != hd)
          fail_msg("block %zu: scale bits %04x, expected %04x", b, got[b * 34] | got[b * 34 + 1] << 8, hd);
        for (int j = 0; j < 32; j++) {
          const float t = x[b * 32 + j] * id;
          const int want = (int)roundf(t), q8 = (int8_t)got[b * 34 + 2 + j];
          /* a product within float rounding of a tie may round either way */
          if (q8 != want && !(abs(q8 - want) == 1 && fabsf(fabsf(t - truncf(t)) - 0.5f) < 1e-4f))
            fail_msg("block %zu value %d (%g): q = %d, expected %d", b, j, x[b * 32 + j], q8, want);
        }
      }
      clai_tensor_free(q);
      clai_tensor_free(src);
    }
  const int64_t q4s[2] = {5, 128};
  clai_tensor *q4 = clait_tensor(ctx, CLAI_DTYPE_Q4_1, 2, q4s), *f = clait_tensor(ctx, CLAI_DTYPE_F32, 2, q4s);
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "q8_0 only", clai_copy(ctx, q4, f));
  clai_tensor_free(f);
  clai_tensor_free(q4);
  free(x);
  free(got);
}

/* Every other op refuses a quantized tensor with CLAI_E_DTYPE, and the context stays usable. */
static void test_other_ops_refuse(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0xbad};
  const int64_t shape[2] = {4, 64}, rows[1] = {4};
  clai_tensor *q = qtensor(ctx, &r, CLAI_DTYPE_Q4_0, 2, shape, NULL, NULL);
  clai_tensor *f = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape), *s = clait_tensor(ctx, CLAI_DTYPE_F32, 1, rows);
  clai_tensor *c = NULL;
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "quantized", clai_unary(ctx, CLAI_RELU, f, q));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "quantized", clai_unary(ctx, CLAI_RELU, q, f));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "quantized", clai_binary(ctx, CLAI_ADD, f, q, f));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "quantized", clai_fill(ctx, q, 1.0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "quantized", clai_reduce(ctx, CLAI_REDUCE_SUM, s, q, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "quantized", clai_softmax(ctx, f, q, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "quantized", clai_rmsnorm(ctx, f, q, NULL, 1e-5f, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "quantized", clai_contiguous(ctx, &c, q));
  assert_null(c);
  /* the context still works */
  CLAIT_OK(ctx, clai_fill(ctx, f, 2.0));
  float got[4 * 64];
  clait_read_floats(ctx, f, got);
  assert_true(got[255] == 2.0f);
  clai_tensor_free(s);
  clai_tensor_free(f);
  clai_tensor_free(q);
}

/* One product case: C[bc.., M, N] = alpha X W^T + beta C0 (+ bias, act) with W [wb.., N, K] quantized. */
typedef struct qcase {
  int64_t batch;   /* C's batch (one leading dim), 0 for none */
  int wbatch;      /* W has the batch dim too (else broadcast) */
  int64_t M, N, K;
  int xt;          /* X given as [K, M] transposed (trans_a = 1) */
  clai_dtype xdt, cdt;
  float alpha, beta;
  int bias;        /* 0 none, 1 [N], 2 [M, 1] */
  clai_activation act;
  int qa;          /* the quantized operand is A: C^T products, C [.., N, M] = W X^T */
  int xq8;         /* X is quantized to q8_0 first (clai_copy) and passed as q8_0 activations */
} qcase;

static void run_case(clai_context *ctx, clait_rng *r, clai_dtype fmt, const qcase *k) {
  const int64_t B = k->batch > 0 ? k->batch : 1, M = k->M, N = k->N, K = k->K;
  const int nd = k->batch > 0 ? 3 : 2;
  int64_t wsh[3], xsh[3], csh[3];
  int o = 0;
  if (k->batch > 0) wsh[0] = xsh[0] = csh[0] = k->batch, o = 1;
  wsh[o] = N, wsh[o + 1] = K;
  if (k->xt) xsh[o] = K, xsh[o + 1] = M;
  else xsh[o] = M, xsh[o + 1] = K;
  /* qa: C [.., N, M] = W [.., N, K] * X^T, with X passed as b */
  if (k->qa) csh[o] = N, csh[o + 1] = M;
  else csh[o] = M, csh[o + 1] = N;
  const int wnd = k->wbatch ? nd : 2;
  double *wref = NULL;
  clai_tensor *w = qtensor(ctx, r, fmt, wnd, k->wbatch ? wsh : wsh + o, NULL, &wref);
  const size_t nx = (size_t)(B * M * K), nc = (size_t)(B * M * N);
  float *xv = malloc(nx * 4), *c0 = malloc(nc * 4), *got = malloc(nc * 4), *bv = malloc((size_t)(M + N) * 4);
  assert_non_null(xv);
  assert_non_null(c0);
  assert_non_null(got);
  assert_non_null(bv);
  clait_fill(r, xv, nx, -1.0f, 1.0f);
  clait_fill(r, c0, nc, -1.0f, 1.0f);
  clait_fill(r, bv, (size_t)(M + N), -0.5f, 0.5f);
  if (k->xdt == CLAI_DTYPE_F16) clait_round_f16(xv, nx);
  if (k->cdt == CLAI_DTYPE_F16) clait_round_f16(c0, nc);
  clai_tensor *x = clait_upload_floats(ctx, k->xdt, nd, xsh, xv), *c = clait_upload_floats(ctx, k->cdt, nd, csh, c0);
  if (k->xq8) { /* the reference uses the q8_0 values the device made */
    clai_tensor *xq = clait_tensor(ctx, CLAI_DTYPE_Q8_0, nd, xsh);
    CLAIT_OK(ctx, clai_copy(ctx, xq, x));
    uint8_t *raw = malloc(nx / 32 * 34 + 1);
    assert_non_null(raw);
    CLAIT_OK(ctx, clai_tensor_read(xq, raw, nx / 32 * 34));
    double v[32];
    for (size_t i = 0; i < nx / 32; i++) {
      ref_block(CLAI_DTYPE_Q8_0, raw + i * 34, v);
      for (int j = 0; j < 32; j++) xv[i * 32 + j] = (float)v[j];
    }
    free(raw);
    clai_tensor_free(x);
    x = xq;
  }
  const int64_t bsh_n[1] = {N}, bsh_m[2] = {M, 1}, bsh_qn[2] = {N, 1}, bsh_qm[1] = {M};
  clai_tensor *bias = NULL;
  if (k->bias == 1) bias = clait_upload_floats(ctx, CLAI_DTYPE_F32, k->qa ? 2 : 1, k->qa ? bsh_qn : bsh_n, bv);
  if (k->bias == 2) bias = clait_upload_floats(ctx, CLAI_DTYPE_F32, k->qa ? 1 : 2, k->qa ? bsh_qm : bsh_m, bv);
  clai_matmul_epilogue ep = {bias, k->act};
  clai_status st = k->qa ? clai_matmul_ex(ctx, c, w, 0, x, k->xt ? 0 : 1, k->alpha, k->beta, &ep)
                         : clai_matmul_ex(ctx, c, x, k->xt, w, 1, k->alpha, k->beta, &ep);
  if (st != CLAI_OK) fail_msg("matmul %s M=%lld N=%lld K=%lld: %s", clai_dtype_name(fmt), (long long)M, (long long)N,
                              (long long)K, clai_errmsg(ctx));
  clait_read_floats(ctx, c, got);
  for (int64_t b = 0; b < B; b++)
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double s = 0, mag = 0;
        const double *wr = wref + ((k->wbatch ? b : 0) * N + n) * K;
        for (int64_t kk = 0; kk < K; kk++) {
          const double xe = k->xt ? xv[(b * K + kk) * M + m] : xv[(b * M + m) * K + kk];
          s += xe * wr[kk];
          mag += fabs(xe * wr[kk]);
        }
        const size_t ci = k->qa ? (size_t)((b * N + n) * M + m) : (size_t)((b * M + m) * N + n);
        double v = k->alpha * s + (k->beta != 0.0f ? k->beta * c0[ci] : 0.0);
        if (k->bias == 1) v += bv[n];
        if (k->bias == 2) v += bv[m];
        static const clai_unary_op un[] = {CLAI_NEG, CLAI_RELU, CLAI_GELU, CLAI_SILU};
        if (k->act != CLAI_ACT_NONE) v = clait_ref_unary(un[k->act], v);
        /* f32 accumulation over K terms (f16 inputs are exact in f32); f16 C rounds the result */
        const double tol = 2e-6 * (fabs(k->alpha) * mag + fabs(k->beta * c0[ci]) + 1.0) * sqrt((double)K) +
                           (k->cdt == CLAI_DTYPE_F16 ? 1e-3 * fabs(v) + 1e-4 : 0.0);
        const double err = fabs(got[ci] - v);
        if (!(err <= tol))
          fail_msg("%s%s M=%lld N=%lld K=%lld batch=%lld: C[%lld][%lld][%lld] = %.9g, expected %.9g (tol %.3g)",
                   clai_dtype_name(fmt), k->qa ? " (quantized a)" : "", (long long)M, (long long)N, (long long)K,
                   (long long)k->batch, (long long)b, (long long)m, (long long)n, got[ci], v, tol);
      }
  clai_tensor_free(bias);
  clai_tensor_free(c);
  clai_tensor_free(x);
  clai_tensor_free(w);
  free(xv);
  free(c0);
  free(got);
  free(bv);
  free(wref);
}

/* K long enough for llvmpipe's loop budget (65535 iterations a work-item), there only: the one-pass kernels
 * run about one iteration per block per 4 rows of A, and were wrong from K = 524288 at M = 16 and at
 * K = 4194304 at M = 1; q8_0 activations (widened to f32 first) at K = 2097152. libclai takes K in slices
 * there (op-matmul.c, CLAI__LOOP_K_QUANT). Each format. */
static void test_matmul_long_k(void **state) {
  clai_context *ctx = *state;
  if (!clait_loop_limited(ctx) || family_only()) {
    print_message("# test_matmul_long_k: K past llvmpipe's loop budget, for llvmpipe; not run\n");
    return;
  }
  clait_rng r = {0x10c4};
  for (size_t f = 0; f < NFMTS; f++) {
    qcase k16 = {0, 0, 16, 2, 524288, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1.0f, 0.5f, 1, CLAI_ACT_NONE, 0, 0};
    run_case(ctx, &r, fmts[f], &k16);
    qcase k1 = {0, 0, 1, 2, 4194304, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1.0f, 0.0f, 0, CLAI_ACT_NONE, 0, 0};
    run_case(ctx, &r, fmts[f], &k1);
  }
  qcase q8 = {0, 0, 2, 2, 2097152, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1.0f, 0.0f, 0, CLAI_ACT_NONE, 0, 1};
  run_case(ctx, &r, CLAI_DTYPE_Q8_0, &q8);
}

/* Small M (the one-pass kernel) and large M (dequantized chunks through the GEMM family), every format. */
static void test_matmul_shapes(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0x9e37};
  static const int64_t Ms[] = {1, 2, 3, 4, 5, 7, 16, 17, 33, 70};
  static const int64_t Ns[] = {1, 7, 33, 129};
  static const int64_t Ks[] = {32, 96, 256, 576}; /* the decode kernel takes 8 blocks at a time, then the rest */
  /* the K-quants: 1, 3 and 9 super-blocks (small mode, for the simulator: not 9, which took most of its time) */
  static const int64_t KKs[] = {256, 768, 2304, 0};
  const int small = clait_small();
  for (size_t f = 0; f < NFMTS; f++)
    for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++)
      for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
          if (small && (mi + ni + ki + f) % 5 != 0) continue;
          if (family_only() && Ms[mi] <= 16) continue;
          const int64_t K = is_k(fmts[f]) ? KKs[ki] : Ks[ki];
          if (K == 0 || (small && K > 768)) continue;
          /* small mode: past M = 16 the product is the f32 GEMM of the dequantized weight (test-matmul's), whose
           * cost on the simulator grows with its tiles and K; clai_dequant takes one block per work-item whatever
           * the shape. So there only K of one to three blocks (one super-block) and N up to 33 (one tile of
           * columns) run: still M = 17, 33 and 70 with N from 1 to 33, 15 cases, each format among them (the
           * others took three quarters of the simulator's time in this test and in tests/quant-gemm-*.sh) */
          if (small && Ms[mi] > 16 && (K > (is_k(fmts[f]) ? 256 : 96) || Ns[ni] > 33)) continue;
          qcase k = {0, 0, Ms[mi], Ns[ni], K, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1.0f, 0.0f, 0, CLAI_ACT_NONE, 0, 0};
          run_case(ctx, &r, fmts[f], &k);
        }
}

/* Batches (W batched or broadcast), transposed and f16 X, f16 C, alpha/beta, bias and activation, and the
 * quantized operand as A; each at a small M and a large one (small mode: the large M for one format each). */
static void test_matmul_variants(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0x7777};
  static const int64_t Ms[] = {3, 37};
  for (size_t f = 0; f < NFMTS; f++)
    for (size_t mi = 0; mi < 2; mi++) {
      const int64_t M = Ms[mi];
      if (family_only() && M <= 16) continue;
      qcase cases[] = {
          {2, 1, M, 33, 64, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1.0f, 0.0f, 0, CLAI_ACT_NONE, 0, 0},
          {3, 0, M, 20, 96, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1.0f, 0.0f, 0, CLAI_ACT_NONE, 0, 0},
          {0, 0, M, 45, 64, 1, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0.5f, 0.0f, 0, CLAI_ACT_NONE, 0, 0},
          {0, 0, M, 31, 128, 0, CLAI_DTYPE_F16, CLAI_DTYPE_F16, 1.0f, 0.0f, 0, CLAI_ACT_NONE, 0, 0},
          {0, 0, M, 17, 64, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, -1.5f, 0.75f, 1, CLAI_ACT_SILU, 0, 0},
          {0, 0, M, 19, 32, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1.0f, 1.0f, 2, CLAI_ACT_RELU, 0, 0},
          {0, 0, M, 21, 64, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1.0f, 0.0f, 0, CLAI_ACT_NONE, 1, 0},
          {2, 1, M, 9, 96, 1, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 2.0f, 0.5f, 1, CLAI_ACT_GELU, 1, 0},
          {0, 0, M, 33, 96, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1.0f, 0.0f, 0, CLAI_ACT_NONE, 0, 1},
          {2, 1, M, 17, 64, 0, CLAI_DTYPE_F16, CLAI_DTYPE_F16, 0.5f, 1.0f, 1, CLAI_ACT_SILU, 0, 1},
          {3, 0, M, 40, 576, 0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1.0f, 0.0f, 2, CLAI_ACT_NONE, 0, 1},
      };
      for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* the K-quants: as many super-blocks as the others have blocks (1 to 4), but 9 in place of 18; in small
         * mode (the simulator) one super-block */
        cases[i].K = cases[i].K / 32 * qb(fmts[f]);
        if (cases[i].K > (clait_small() ? 256 : 2304)) cases[i].K = clait_small() ? 256 : 2304;
        /* small mode, at the large M: each case for one format, by turns (each format takes two or three), and K
         * at most three blocks (one super-block), as there the product is test-matmul's GEMM of the dequantized
         * weight, which took four fifths of this test's time on the simulator; each case still runs for every
         * format at the small M (the one-pass kernels), with its K */
        if (clait_small() && M > 16 && (i + f) % NFMTS != 0) continue;
        if (clait_small() && M > 16 && cases[i].K > 3 * 32 && !is_k(fmts[f])) cases[i].K = 3 * 32;
        run_case(ctx, &r, fmts[f], &cases[i]);
      }
    }
}

/* Q8_0 activations for the decode step's few rows (M <= 4), dequantized by the product kernel itself when
 * they fit its local memory (M * K <= 4096), else widened to f32 first: the same bits as the product with the
 * dequantized activations in f32, and the double reference. M * K on both sides of the limit and at it; A a
 * view at a block offset with a wider row stride; a batch with broadcast weights; N not a multiple of the
 * work-group size. */
static void test_matmul_q8_activations(void **state) {
  clai_context *ctx = *state;
  if (family_only()) return; /* M <= 4: the one-pass kernels only */
  clait_rng r = {0x5151};
  static const int64_t NK[][2] = {{33, 64}, {17, 1120}, {40, 2080}, {5, 4096}};
  static const int64_t KK[] = {256, 1280, 2304, 4096}; /* the K-quants' K, in super-blocks */
  const int small = clait_small();
  for (size_t f = 0; f < NFMTS; f++)
    for (int64_t M = 1; M <= 4; M++)
      for (size_t s = 0; s < 4; s++) {
        const int64_t K = is_k(fmts[f]) ? KK[s] : NK[s][1], N = K > 1024 && small ? 9 : NK[s][0], B = 2;
        if (small && ((f + (size_t)M + s) % 3 != 0 || (K > 1120 && M > 1))) continue; /* small: the limit at M = 1 */
        const int64_t wsh[2] = {N, K}, fsh[3] = {B, M + 1, K + 64}, csh[3] = {B, M, N};
        double *wref = NULL;
        clai_tensor *w = qtensor(ctx, &r, fmts[f], 2, wsh, NULL, &wref);
        const size_t nf = (size_t)(B * (M + 1) * (K + 64));
        float *xv = malloc(nf * 4), *got = malloc((size_t)(B * M * N) * 4), *want = malloc((size_t)(B * M * N) * 4);
        assert_non_null(xv);
        assert_non_null(got);
        assert_non_null(want);
        clait_fill(&r, xv, nf, -2.0f, 2.0f);
        /* the activations: rows 1..M, values 32..32+K of a wider Q8_0 tensor */
        clai_tensor *xf = clait_upload_floats(ctx, CLAI_DTYPE_F32, 3, fsh, xv), *xq = clait_tensor(ctx, CLAI_DTYPE_Q8_0, 3, fsh);
        CLAIT_OK(ctx, clai_copy(ctx, xq, xf));
        const int64_t vsh[3] = {B, M, K}, vst[3] = {(M + 1) * (K + 64), K + 64, 1};
        clai_tensor *xv8 = NULL, *c = clait_tensor(ctx, CLAI_DTYPE_F32, 3, csh);
        CLAIT_OK(ctx, clai_tensor_view(xq, &xv8, 3, vsh, vst, K + 64 + 32));
        char desc[200];
        CLAIT_OK(ctx, clai_matmul_describe(ctx, c, xv8, 0, w, 1, desc, sizeof desc));
        const char *want_path = M * K <= 4096 ? "q8_0 activations dequantized" : "activations widened";
        if (strstr(desc, want_path) == NULL) fail_msg("M=%lld K=%lld: %s", (long long)M, (long long)K, desc);
        CLAIT_OK(ctx, clai_matmul(ctx, c, xv8, 0, w, 1, 1.0f, 0.0f));
        clait_read_floats(ctx, c, got);
        /* the f32 route: the same activations dequantized, then the product */
        clai_tensor *af = clait_tensor(ctx, CLAI_DTYPE_F32, 3, vsh);
        CLAIT_OK(ctx, clai_copy(ctx, af, xv8));
        CLAIT_OK(ctx, clai_matmul(ctx, c, af, 0, w, 1, 1.0f, 0.0f));
        clait_read_floats(ctx, c, want);
        float *av = malloc((size_t)(B * M * K) * 4);
        assert_non_null(av);
        clait_read_floats(ctx, af, av);
        for (int64_t i = 0; i < B * M * N; i++) {
          const int64_t b = i / (M * N), m = i / N % M, n = i % N;
          if (memcmp(&got[i], &want[i], 4) != 0)
            fail_msg("%s M=%lld N=%lld K=%lld: C[%lld][%lld][%lld] = %.9g with q8_0 activations, %.9g with their f32 "
                     "values", clai_dtype_name(fmts[f]), (long long)M, (long long)N, (long long)K, (long long)b,
                     (long long)m, (long long)n, got[i], want[i]);
          double s = 0, mag = 0;
          for (int64_t k = 0; k < K; k++) {
            const double t = (double)av[(b * M + m) * K + k] * wref[n * K + k];
            s += t;
            mag += fabs(t);
          }
          const double tol = 2e-6 * (mag + 1.0) * sqrt((double)K);
          if (!(fabs(got[i] - s) <= tol))
            fail_msg("%s M=%lld N=%lld K=%lld: C[%lld][%lld][%lld] = %.9g, expected %.9g", clai_dtype_name(fmts[f]),
                     (long long)M, (long long)N, (long long)K, (long long)b, (long long)m, (long long)n, got[i], s);
        }
        free(av);
        clai_tensor_free(af);
        clai_tensor_free(c);
        clai_tensor_free(xv8);
        clai_tensor_free(xq);
        clai_tensor_free(xf);
        clai_tensor_free(w);
        free(xv);
        free(got);
        free(want);
        free(wref);
      }
}

/* Q8_K rounding in place, as clai_rounding defines it (blocks of 256; f32 arithmetic, as llama.cpp does it). */
static void ref_round_q8k(float *v, size_t n) {
  for (size_t b0 = 0; b0 + 256 <= n; b0 += 256) {
    float amax = 0.0f, m = 0.0f;
    for (size_t j = b0; j < b0 + 256; j++)
      if (fabsf(v[j]) > amax) amax = fabsf(v[j]), m = v[j];
    if (amax == 0.0f) continue;
    const float s = -127.0f / m, d = 1.0f / s;
    for (size_t j = b0; j < b0 + 256; j++) {
      const float q = rintf(v[j] * s);
      if (isinf(s)) v[j] = isnan(v[j]) ? v[j] : 0.0f; /* m below 127 / FLT_MAX: zeros */
      else v[j] = (q > 127.0f ? 127.0f : q) * d;
    }
  }
}

/* clai_matmul_pro: A's rows through a GLU, an RMS normalisation and rounding (Q8_0, or Q8_K where K is a
 * multiple of 256), then times a quantized weight. The fused kernel (M <= 4, M * K <= 4096) against the same
 * steps done separately (clai_glu, clai_rmsnorm, clai_copy into Q8_0 on the device; Q8_K rounding here, from
 * clai.h's definition; clai_matmul): the same bits for the rounding alone;
 * without rounding both within float rounding of a double reference of the whole prologue; with rounding after
 * a GLU or a normalisation, values one float rounding apart may round to neighbouring quants, so the two
 * routes agree within one quant step per block (and the separate route's rounded activations, read back or
 * rounded here, are the double reference of its own result). M = 5 and M * K above 4096 take the separate route inside
 * clai_matmul_pro. CLAI_PROLOGUE=fused makes the fused kernel run on every device (CPUs take the separate ops by
 * default; test_matmul_prologue_errors ends with the default). A rows are a view (offset, padded rows) of a
 * batch of 2; the RMS weight f32 with stride 2, or f16. */
static void test_matmul_prologue(void **state) {
  (void)state;
  if (family_only()) return; /* the decode kernels, and separate ops that are the default run's */
  const char *was = getenv("CLAI_PROLOGUE");
  setenv("CLAI_PROLOGUE", "fused", 1); /* the fused kernel on every device (CPUs default to the separate ops) */
  clai_context *ctx = clait_profiled_ctx();
  if (was != NULL) setenv("CLAI_PROLOGUE", was, 1);
  else unsetenv("CLAI_PROLOGUE");
  clait_rng r = {0x9e11};
  static const int64_t NK[][2] = {{33, 64}, {19, 576}, {7, 1536}}, NKK[][2] = {{33, 256}, {19, 768}, {7, 1536}};
  const int small = clait_small();
  int variant = 0;
  for (size_t f = 0; f < NFMTS; f++)
    for (int64_t M = 1; M <= 5; M++)
      for (size_t s = 0; s < 3; s++)
        for (int pf = 1; pf < 8; pf++, variant++) {
          const int glu = pf & 1, rms = (pf & 2) != 0, rnd = (pf & 4) != 0;
          if (small ? variant % 11 != 0 : variant % 3 != 0) continue; /* a third of the combinations (small: 1/11) */
          const int kq = clai_dtype_block(fmts[f]) == 256; /* K-quants: K a multiple of 256 */
          const int64_t N = kq ? NKK[s][0] : NK[s][0], K = kq ? NKK[s][1] : NK[s][1], B = 2, W = glu ? 2 * K : K,
                        Wp = W + 32;
          const int fused = M <= 4 && M * K <= 4096;
          double *wref = NULL;
          const int64_t wsh[2] = {N, K};
          clai_tensor *w = qtensor(ctx, &r, fmts[f], 2, wsh, NULL, &wref);
          /* A: rows 1..M of [B, M + 1, W + 32], from column 0 */
          const size_t na = (size_t)(B * (M + 1) * Wp);
          float *av = malloc(na * 4), *gv = malloc((size_t)(2 * K) * 4);
          float *got = malloc((size_t)(B * M * N) * 4), *want = malloc((size_t)(B * M * N) * 4);
          assert_true(av && gv && got && want);
          clait_fill(&r, av, na, -2.0f, 2.0f);
          clait_fill(&r, gv, (size_t)(2 * K), 0.5f, 1.5f);
          const int ghalf = variant % 2;
          if (ghalf) clait_round_f16(gv, (size_t)(2 * K));
          const int64_t ash[3] = {B, M + 1, Wp}, vsh[3] = {B, M, W}, vst[3] = {(M + 1) * Wp, Wp, 1};
          clai_tensor *abase = clait_upload_floats(ctx, CLAI_DTYPE_F32, 3, ash, av), *a = NULL;
          CLAIT_OK(ctx, clai_tensor_view(abase, &a, 3, vsh, vst, Wp));
          /* the weight: every other value of [2K] (f32), or [K] f16 */
          clai_tensor *gbase = NULL, *g = NULL;
          if (ghalf) {
            const int64_t gs[1] = {K};
            g = clait_upload_floats(ctx, CLAI_DTYPE_F16, 1, gs, gv);
          } else {
            const int64_t gs[1] = {2 * K}, gvs[1] = {K}, gst[1] = {2};
            gbase = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, gs, gv);
            CLAIT_OK(ctx, clai_tensor_view(gbase, &g, 1, gvs, gst, 0));
          }
          clai_matmul_prologue pro;
          memset(&pro, 0, sizeof pro);
          pro.glu = glu;
          pro.glu_op = variant % 4 == 1 ? CLAI_GELU : CLAI_SILU;
          pro.rms_weight = rms ? g : NULL;
          pro.rms_eps = 1e-5f;
          /* Q8_K where K allows it, on every other case of the 32-value formats and always for the K-quants */
          const int q8k = rnd && K % 256 == 0 && (kq || variant % 2 == 0);
          pro.round = !rnd ? CLAI_ROUND_NONE : q8k ? CLAI_ROUND_Q8_K : CLAI_ROUND_Q8_0;
          const int64_t csh[3] = {B, M, N}, ksh[3] = {B, M, K};
          clai_tensor *c = clait_tensor(ctx, CLAI_DTYPE_F32, 3, csh);
          clai_profile_reset(ctx);
          CLAIT_OK(ctx, clai_matmul_pro(ctx, c, a, w, 1, 1.0f, 0.0f, &pro, NULL));
          char kname[32];
          snprintf(kname, sizeof kname, "clai_qgemvp_%s", clai_dtype_name(fmts[f]));
          clait_expect_kernel(ctx, kname, fused);
          clait_read_floats(ctx, c, got);
          /* the separate ops */
          clai_tensor *t1 = clait_tensor(ctx, CLAI_DTYPE_F32, 3, ksh), *t2 = clait_tensor(ctx, CLAI_DTYPE_F32, 3, ksh);
          clai_tensor *tq = clait_tensor(ctx, CLAI_DTYPE_Q8_0, 3, ksh);
          const clai_tensor *cur = a;
          if (glu) {
            CLAIT_OK(ctx, clai_glu(ctx, pro.glu_op, t1, cur));
            cur = t1;
          }
          if (rms) {
            CLAIT_OK(ctx, clai_rmsnorm(ctx, t2, cur, g, pro.rms_eps, NULL));
            cur = t2;
          }
          float *rv = NULL; /* Q8_K: the activations rounded here, from clai_rounding's definition */
          clai_tensor *tr = NULL;
          if (rnd && !q8k) {
            CLAIT_OK(ctx, clai_copy(ctx, tq, cur));
            cur = tq;
          } else if (rnd) {
            rv = malloc((size_t)(B * M * K) * 4);
            assert_non_null(rv);
            if (cur == a)
              for (int64_t row = 0; row < B * M; row++)
                memcpy(rv + row * K, av + (row / M * (M + 1) + row % M + 1) * Wp, (size_t)K * 4);
            else
              clait_read_floats(ctx, (clai_tensor *)cur, rv);
            ref_round_q8k(rv, (size_t)(B * M * K));
            tr = clait_upload_floats(ctx, CLAI_DTYPE_F32, 3, ksh, rv);
            cur = tr;
          }
          CLAIT_OK(ctx, clai_matmul(ctx, c, cur, 0, w, 1, 1.0f, 0.0f));
          clait_read_floats(ctx, c, want);
          /* the activations the separate route multiplied, in double */
          double *act = malloc((size_t)(B * M * K) * sizeof *act);
          assert_non_null(act);
          if (q8k) {
            for (int64_t i = 0; i < B * M * K; i++) act[i] = rv[i];
          } else if (rnd) {
            const size_t nb = (size_t)(B * M * K / 32);
            uint8_t *qb = malloc(nb * 34);
            assert_non_null(qb);
            CLAIT_OK(ctx, clai_tensor_read(tq, qb, nb * 34));
            for (size_t i = 0; i < nb; i++) ref_block(CLAI_DTYPE_Q8_0, qb + i * 34, act + i * 32);
            free(qb);
          } else { /* the prologue in double */
            for (int64_t row = 0; row < B * M; row++) {
              const float *x = av + (row / M * (M + 1) + row % M + 1) * Wp;
              double *v = act + row * K, ss = 0;
              for (int64_t k = 0; k < K; k++) {
                v[k] = glu ? clait_ref_unary((clai_unary_op)pro.glu_op, x[k]) * x[K + k] : x[k];
                ss += v[k] * v[k];
              }
              const double rstd = 1.0 / sqrt(ss / (double)K + 1e-5);
              if (rms)
                for (int64_t k = 0; k < K; k++) v[k] = v[k] * rstd * gv[ghalf ? k : 2 * k];
            }
          }
          for (int64_t i = 0; i < B * M * N; i++) {
            const int64_t row = i / N, n = i % N;
            double sum = 0, mag = 0, step = 0;
            for (int64_t k = 0; k < K; k++) {
              const double t = act[row * K + k] * wref[n * K + k];
              sum += t;
              mag += fabs(t);
            }
            if (rnd) /* one quant step per block of 32, times the block's largest weight */
              for (int64_t k0 = 0; k0 < K; k0 += 32) {
                const int64_t r0 = q8k ? k0 / 256 * 256 : k0, r1 = r0 + (q8k ? 256 : 32); /* the rounding block */
                double amax = 0, wmax = 0;
                for (int64_t k = r0; k < r1; k++) amax = fmax(amax, fabs(act[row * K + k]));
                for (int64_t k = k0; k < k0 + 32; k++) wmax = fmax(wmax, fabs(wref[n * K + k]));
                step += amax / 127.0 * wmax;
              }
            const double tol = 3e-6 * (mag + 1.0) * sqrt((double)K);
            const char *fmt = clai_dtype_name(fmts[f]);
            if (pf == 4 && memcmp(&got[i], &want[i], 4) != 0)
              fail_msg("%s M=%lld K=%lld pf=%d: C[%lld][%lld] = %.9g fused, %.9g from the separate ops", fmt,
                       (long long)M, (long long)K, pf, (long long)row, (long long)n, got[i], want[i]);
            if (!(fabs(want[i] - sum) <= tol))
              fail_msg("%s M=%lld K=%lld pf=%d: separate ops C[%lld][%lld] = %.9g, expected %.9g", fmt, (long long)M,
                       (long long)K, pf, (long long)row, (long long)n, want[i], sum);
            if (!rnd && !(fabs(got[i] - sum) <= tol))
              fail_msg("%s M=%lld K=%lld pf=%d: fused C[%lld][%lld] = %.9g, expected %.9g", fmt, (long long)M,
                       (long long)K, pf, (long long)row, (long long)n, got[i], sum);
            if (!(fabs(got[i] - want[i]) <= tol + step))
              fail_msg("%s M=%lld K=%lld pf=%d: C[%lld][%lld] = %.9g fused, %.9g from the separate ops (allowed %.3g)",
                       fmt, (long long)M, (long long)K, pf, (long long)row, (long long)n, got[i], want[i], tol + step);
          }
          free(act);
          free(rv);
          clai_tensor_free(tr);
          clai_tensor_free(tq);
          clai_tensor_free(t2);
          clai_tensor_free(t1);
          clai_tensor_free(c);
          clai_tensor_free(g);
          clai_tensor_free(gbase);
          clai_tensor_free(a);
          clai_tensor_free(abase);
          clai_tensor_free(w);
          free(av), free(gv), free(got), free(want), free(wref);
        }
  clai_context_free(ctx);
}

/* Q8_K rounding of special values, every rounded value seen through an identity weight (Q8_0 rows with a
 * single quant 1 and scale 1, so C = x' exactly), fused and separate: a block of zeros, one with ties of
 * largest magnitude (the first is m), one whose largest magnitude is negative and repeated, one of
 * subnormals, random ones; compared bit for bit with the rounding done here. Then a NaN: were it rounded to a
 * number (fmin(NaN, 127) is 127), the products with zero weights would stay finite; every one must be NaN. */
static void test_prologue_q8k_special(void **state) {
  (void)state;
  const int64_t K = 1280, wsh[2] = {K, K}, ash[2] = {1, K}, csh[2] = {1, K};
  const size_t nbk = (size_t)(K * K / 32);
  uint8_t *raw = calloc(nbk, 34);
  float x[1280], want[1280], got[1280];
  assert_non_null(raw);
  for (int64_t n = 0; n < K; n++) { /* row n: q = 1 at column n, d = 1.0 (half 0x3c00) */
    uint8_t *b = raw + (size_t)(n * K + n) / 32 * 34;
    b[0] = 0x00, b[1] = 0x3c, b[2 + n % 32] = 1;
  }
  clait_rng r = {0x9e13};
  clait_fill(&r, x, (size_t)K, -3.0f, 3.0f);
  for (int j = 0; j < 256; j++) x[j] = 0.0f;                     /* block 0: zeros */
  x[256 + 9] = 1e30f, x[256 + 200] = -1e30f;                     /* block 1: ties of magnitude */
  x[768 + 3] = -7.0f, x[768 + 100] = -7.0f, x[768 + 101] = 7.0f; /* block 3: the first -7 is m */
  for (int j = 1024; j < 1280; j++) x[j] = (float)(j - 1150) * 1e-40f; /* block 4: subnormals */
  memcpy(want, x, sizeof want);
  ref_round_q8k(want, (size_t)K);
  for (int fused = 0; fused < 2; fused++) {
    const char *was = getenv("CLAI_PROLOGUE");
    setenv("CLAI_PROLOGUE", fused ? "fused" : "separate", 1);
    clai_context *ctx = clait_ctx();
    if (was != NULL) setenv("CLAI_PROLOGUE", was, 1);
    else unsetenv("CLAI_PROLOGUE");
    clai_tensor *w = clait_tensor(ctx, CLAI_DTYPE_Q8_0, 2, wsh), *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, csh);
    clai_tensor *a = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, ash, x);
    CLAIT_OK(ctx, clai_tensor_write(w, raw, nbk * 34));
    clai_matmul_prologue pro;
    memset(&pro, 0, sizeof pro);
    pro.round = CLAI_ROUND_Q8_K;
    CLAIT_OK(ctx, clai_matmul_pro(ctx, c, a, w, 1, 1.0f, 0.0f, &pro, NULL));
    clait_read_floats(ctx, c, got);
    for (int64_t k = 0; k < K; k++) /* products with 1 and sums with zeros: the bits, but for the sign of 0 */
      if (got[k] != want[k])
        fail_msg("%s: value %lld (%g) rounded to %.9g, expected %.9g", fused ? "fused" : "separate", (long long)k,
                 x[k], got[k], want[k]);
    float xn[1280];
    memcpy(xn, x, sizeof xn);
    xn[512 + 77] = NAN;
    clai_tensor *an = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, ash, xn);
    CLAIT_OK(ctx, clai_matmul_pro(ctx, c, an, w, 1, 1.0f, 0.0f, &pro, NULL));
    clait_read_floats(ctx, c, got);
    for (int64_t k = 0; k < K; k++)
      if (!isnan(got[k])) fail_msg("%s: with a NaN in the row, C[%lld] = %g", fused ? "fused" : "separate", (long long)k, got[k]);
    clai_tensor_free(an), clai_tensor_free(a), clai_tensor_free(c), clai_tensor_free(w);
    clai_context_free(ctx);
  }
  free(raw);
}

/* clai_matmul_pro's argument checks: each names the field, and the context stays usable. */
static void test_matmul_prologue_errors(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0x9e12};
  const int64_t wsh[2] = {8, 64}, ash[2] = {2, 64}, a2sh[2] = {2, 128}, odd[2] = {2, 63}, csh[2] = {2, 8},
                gsh[1] = {64}, g2sh[1] = {32}, f40[2] = {2, 40}, b40[2] = {40, 8};
  clai_tensor *w = qtensor(ctx, &r, CLAI_DTYPE_Q4_1, 2, wsh, NULL, NULL);
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 2, ash), *a2 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, a2sh);
  clai_tensor *ao = clait_tensor(ctx, CLAI_DTYPE_F32, 2, odd), *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, csh);
  clai_tensor *g = clait_tensor(ctx, CLAI_DTYPE_F32, 1, gsh), *g2 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, g2sh);
  clai_tensor *gi = clait_tensor(ctx, CLAI_DTYPE_I32, 1, gsh), *aq = clait_tensor(ctx, CLAI_DTYPE_Q8_0, 2, ash);
  clai_tensor *a40 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, f40), *b40t = clait_tensor(ctx, CLAI_DTYPE_F32, 2, b40);
  CLAIT_OK(ctx, clai_fill(ctx, a, 0.5));
  CLAIT_OK(ctx, clai_fill(ctx, a2, 0.5));
  CLAIT_OK(ctx, clai_fill(ctx, g, 1.0));
  clai_matmul_prologue pro;
  memset(&pro, 0, sizeof pro);
  pro.glu = 1, pro.glu_op = CLAI_SILU;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "pro->glu", clai_matmul_pro(ctx, c, ao, w, 1, 1.0f, 0.0f, &pro, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "[.., M, K]", clai_matmul_pro(ctx, c, a, w, 1, 1.0f, 0.0f, &pro, NULL));
  pro.glu_op = (clai_unary_op)99;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "pro->glu_op", clai_matmul_pro(ctx, c, a2, w, 1, 1.0f, 0.0f, &pro, NULL));
  memset(&pro, 0, sizeof pro);
  pro.rms_weight = g2;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "pro->rms_weight", clai_matmul_pro(ctx, c, a, w, 1, 1.0f, 0.0f, &pro, NULL));
  pro.rms_weight = gi;
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "pro->rms_weight", clai_matmul_pro(ctx, c, a, w, 1, 1.0f, 0.0f, &pro, NULL));
  pro.rms_weight = g, pro.rms_eps = -1.0f;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "pro->rms_eps", clai_matmul_pro(ctx, c, a, w, 1, 1.0f, 0.0f, &pro, NULL));
  pro.rms_eps = INFINITY;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "pro->rms_eps", clai_matmul_pro(ctx, c, a, w, 1, 1.0f, 0.0f, &pro, NULL));
  memset(&pro, 0, sizeof pro);
  pro.round = (clai_rounding)3;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "pro->round", clai_matmul_pro(ctx, c, a, w, 1, 1.0f, 0.0f, &pro, NULL));
  pro.round = CLAI_ROUND_Q8_K; /* K = 64: not a multiple of 256 */
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "multiple of 256", clai_matmul_pro(ctx, c, a, w, 1, 1.0f, 0.0f, &pro, NULL));
  pro.round = CLAI_ROUND_Q8_0;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "multiple of 32", clai_matmul_pro(ctx, c, a40, b40t, 0, 1.0f, 0.0f, &pro, NULL));
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "f32 or f16", clai_matmul_pro(ctx, c, aq, w, 1, 1.0f, 0.0f, &pro, NULL));
  /* c inside a */
  clai_tensor *cv = NULL;
  CLAIT_OK(ctx, clai_tensor_view(a2, &cv, 2, csh, (const int64_t[]){128, 1}, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_matmul_pro(ctx, cv, a2, w, 1, 1.0f, 0.0f, &pro, NULL));
  /* c inside the RMS weight (a [2, 8] view of its 64 values) */
  clai_tensor *gv = NULL;
  CLAIT_OK(ctx, clai_tensor_view(g, &gv, 2, csh, (const int64_t[]){8, 1}, 0));
  pro.rms_weight = g;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "pro->rms_weight in memory", clai_matmul_pro(ctx, gv, a, w, 1, 1.0f, 0.0f, &pro, NULL));
  clai_tensor_free(gv);
  /* an f16 A is widened first: the bits of an f32 A holding the same values (both take the separate route) */
  const int64_t a3sh[2] = {5, 64}, c3sh[2] = {5, 8};
  float av[5 * 64], g16[5 * 8], g32[5 * 8];
  for (int i = 0; i < 5 * 64; i++) av[i] = (float)((i * 37) % 101 - 50) / 16.0f; /* exact in f16 */
  clai_tensor *ah = clait_upload_floats(ctx, CLAI_DTYPE_F16, 2, a3sh, av), *af = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, a3sh, av);
  clai_tensor *c3 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, c3sh);
  CLAIT_OK(ctx, clai_matmul_pro(ctx, c3, ah, w, 1, 1.0f, 0.0f, &pro, NULL));
  clait_read_floats(ctx, c3, g16);
  CLAIT_OK(ctx, clai_matmul_pro(ctx, c3, af, w, 1, 1.0f, 0.0f, &pro, NULL));
  clait_read_floats(ctx, c3, g32);
  assert_memory_equal(g16, g32, sizeof g16);
  clai_tensor_free(c3), clai_tensor_free(af), clai_tensor_free(ah);
  pro.rms_weight = NULL;
  /* still usable: the fused rounding gives the bits of a rounding copy and the product */
  float got[16], want[16];
  CLAIT_OK(ctx, clai_matmul_pro(ctx, c, a, w, 1, 1.0f, 0.0f, &pro, NULL));
  clait_read_floats(ctx, c, got);
  CLAIT_OK(ctx, clai_copy(ctx, aq, a));
  CLAIT_OK(ctx, clai_matmul(ctx, c, aq, 0, w, 1, 1.0f, 0.0f));
  clait_read_floats(ctx, c, want);
  assert_memory_equal(got, want, sizeof got);
  clai_tensor_free(cv);
  clai_tensor_free(b40t), clai_tensor_free(a40), clai_tensor_free(aq), clai_tensor_free(gi), clai_tensor_free(g2);
  clai_tensor_free(g), clai_tensor_free(c), clai_tensor_free(ao), clai_tensor_free(a2), clai_tensor_free(a);
  clai_tensor_free(w);
}

/* C written into a column slice of a wider, sentinel-filled buffer: nothing outside it changes. */
static void test_matmul_into_view(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0x4242};
  for (int big = 0; big < 2; big++) {
    const int64_t M = big ? 40 : 5, N = 24, K = 64, W = 40;
    const int64_t wsh[2] = {N, K}, xsh[2] = {M, K}, bsh[2] = {M, W};
    double *wref = NULL;
    clai_tensor *w = qtensor(ctx, &r, CLAI_DTYPE_Q4_1, 2, wsh, NULL, &wref);
    float *xv = malloc((size_t)(M * K) * 4), *got = malloc((size_t)(M * W) * 4);
    assert_non_null(xv);
    assert_non_null(got);
    clait_fill(&r, xv, (size_t)(M * K), -1, 1);
    clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, xsh, xv), *base = clait_tensor(ctx, CLAI_DTYPE_F32, 2, bsh);
    CLAIT_OK(ctx, clai_fill(ctx, base, 99.0));
    clai_tensor *cv = NULL;
    CLAIT_OK(ctx, clai_tensor_slice(base, &cv, 1, 7, 7 + N, 1));
    CLAIT_OK(ctx, clai_matmul(ctx, cv, x, 0, w, 1, 1.0f, 0.0f));
    clait_read_floats(ctx, base, got);
    for (int64_t m = 0; m < M; m++)
      for (int64_t j = 0; j < W; j++) {
        if (j < 7 || j >= 7 + N) {
          assert_true(got[m * W + j] == 99.0f);
          continue;
        }
        double s = 0, mag = 0;
        for (int64_t k = 0; k < K; k++) s += xv[m * K + k] * wref[(j - 7) * K + k], mag += fabs(xv[m * K + k] * wref[(j - 7) * K + k]);
        if (!(fabs(got[m * W + j] - s) <= 2e-6 * (mag + 1) * 8)) fail_msg("C[%lld][%lld] = %g, expected %g", (long long)m, (long long)j, got[m * W + j], s);
      }
    clai_tensor_free(cv);
    clai_tensor_free(base);
    clai_tensor_free(x);
    clai_tensor_free(w);
    free(xv);
    free(got);
    free(wref);
  }
}

/* The weights as a view at a block (super-block) offset: rows 2..N+1 and blocks 1..3 of each row of a wider
 * tensor, at M for the decode kernel, the general one and the dequantized chunks; then the same weights as
 * the quantized A. */
static void test_matmul_weight_view(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0x3f3f};
  static const int64_t Ms[] = {1, 3, 5, 20};
  for (size_t f = 0; f < NFMTS; f++) {
    const int64_t u = qb(fmts[f]), N = 19, K = 3 * u, KW = K + 2 * u;
    const int64_t bsh[2] = {N + 3, KW};
    double *wref = NULL;
    clai_tensor *base = qtensor(ctx, &r, fmts[f], 2, bsh, NULL, &wref), *rows = NULL, *w = NULL;
    CLAIT_OK(ctx, clai_tensor_slice(base, &rows, 0, 2, N + 2, 1));
    CLAIT_OK(ctx, clai_tensor_slice(rows, &w, 1, u, u + K, 1));
    for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++)
      for (int qa = 0; qa < 2; qa++) {
        /* small mode: at M = 20 (dequantized chunks through the GEMM family) one of the two ways per format, by
         * turns, so that each format's view is dequantized and each way runs */
        if (clait_small() && Ms[mi] > 16 && (f + (size_t)qa) % 2 != 0) continue;
        const int64_t M = Ms[mi], xsh[2] = {M, K}, csh[2] = {qa ? N : M, qa ? M : N};
        float *xv = malloc((size_t)(M * K) * 4), *got = malloc((size_t)(M * N) * 4);
        assert_non_null(xv);
        assert_non_null(got);
        clait_fill(&r, xv, (size_t)(M * K), -1.0f, 1.0f);
        clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, xsh, xv), *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, csh);
        CLAIT_OK(ctx, qa ? clai_matmul(ctx, c, w, 0, x, 1, 1.0f, 0.0f) : clai_matmul(ctx, c, x, 0, w, 1, 1.0f, 0.0f));
        clait_read_floats(ctx, c, got);
        for (int64_t m = 0; m < M; m++)
          for (int64_t n = 0; n < N; n++) {
            double sum = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
              const double t = (double)xv[m * K + k] * wref[(n + 2) * KW + u + k];
              sum += t;
              mag += fabs(t);
            }
            const double g = got[qa ? n * M + m : m * N + n];
            if (!(fabs(g - sum) <= 2e-6 * (mag + 1.0) * sqrt((double)K)))
              fail_msg("%s weight view%s M=%lld: C[%lld][%lld] = %.9g, expected %.9g", clai_dtype_name(fmts[f]),
                       qa ? " as a" : "", (long long)M, (long long)m, (long long)n, g, sum);
          }
        clai_tensor_free(c);
        clai_tensor_free(x);
        free(xv);
        free(got);
      }
    clai_tensor_free(w);
    clai_tensor_free(rows);
    clai_tensor_free(base);
    free(wref);
  }
}

/* What the K-quants refuse: quantizing into them, copies into another quantized dtype, a K-quant as the
 * activations, the wrong transposition, a K that differs; the context stays usable. */
static void test_kquant_errors(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0xe2};
  const int64_t wsh[2] = {8, 512}, xsh[2] = {3, 512}, csh[2] = {3, 8}, x2[2] = {3, 256};
  clai_tensor *w4 = qtensor(ctx, &r, CLAI_DTYPE_Q4_K, 2, wsh, NULL, NULL);
  clai_tensor *w6 = qtensor(ctx, &r, CLAI_DTYPE_Q6_K, 2, wsh, NULL, NULL);
  clai_tensor *x = clait_tensor(ctx, CLAI_DTYPE_F32, 2, xsh), *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, csh);
  clai_tensor *xs = clait_tensor(ctx, CLAI_DTYPE_F32, 2, x2), *f = clait_tensor(ctx, CLAI_DTYPE_F32, 2, wsh);
  CLAIT_OK(ctx, clai_fill(ctx, x, 1.0));
  CLAIT_OK(ctx, clai_fill(ctx, f, 1.0));
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "q8_0 only", clai_copy(ctx, w4, f));
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "q8_0 only", clai_copy(ctx, w6, f));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "q4_k into q6_k", clai_copy(ctx, w6, w4));
  clai_tensor *xk = qtensor(ctx, &r, CLAI_DTYPE_Q4_K, 2, xsh, NULL, NULL);
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "q8_0 activations", clai_matmul(ctx, c, xk, 0, w6, 1, 1, 0));
  clai_tensor_free(xk);
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "trans_b = 1", clai_matmul(ctx, c, x, 0, w4, 0, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "trans_a = 0", clai_matmul(ctx, c, w6, 1, x, 1, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "op(a)", clai_matmul(ctx, c, xs, 0, w4, 1, 1, 0));
  char desc[200];
  CLAIT_OK(ctx, clai_matmul_describe(ctx, c, x, 0, w6, 1, desc, sizeof desc));
  if (strstr(desc, "q6_k: one pass") == NULL) fail_msg("%s", desc);
  /* still usable: 512 ones times the values of each row */
  double *ref = NULL;
  clai_tensor *w = qtensor(ctx, &r, CLAI_DTYPE_Q4_K, 2, wsh, NULL, &ref);
  CLAIT_OK(ctx, clai_matmul(ctx, c, x, 0, w, 1, 1, 0));
  float got[24];
  clait_read_floats(ctx, c, got);
  for (int n = 0; n < 8; n++) {
    double sum = 0, mag = 0;
    for (int k = 0; k < 512; k++) sum += ref[n * 512 + k], mag += fabs(ref[n * 512 + k]);
    for (int m = 0; m < 3; m++)
      if (!(fabs(got[m * 8 + n] - sum) <= 2e-6 * (mag + 1) * 23)) fail_msg("C[%d][%d] = %g, expected %g", m, n, got[m * 8 + n], sum);
  }
  free(ref);
  clai_tensor_free(w);
  clai_tensor_free(f);
  clai_tensor_free(xs);
  clai_tensor_free(c);
  clai_tensor_free(x);
  clai_tensor_free(w6);
  clai_tensor_free(w4);
}

static void test_matmul_errors(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0xe1};
  const int64_t wsh[2] = {8, 64}, xsh[2] = {3, 64}, csh[2] = {3, 8}, x2[2] = {3, 32};
  clai_tensor *w = qtensor(ctx, &r, CLAI_DTYPE_Q8_0, 2, wsh, NULL, NULL), *w2 = qtensor(ctx, &r, CLAI_DTYPE_Q8_0, 2, wsh, NULL, NULL);
  clai_tensor *x = clait_tensor(ctx, CLAI_DTYPE_F32, 2, xsh), *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, csh);
  clai_tensor *xs = clait_tensor(ctx, CLAI_DTYPE_F32, 2, x2), *ci = clait_tensor(ctx, CLAI_DTYPE_I32, 2, csh);
  CLAIT_OK(ctx, clai_fill(ctx, x, 1.0));
  clai_tensor *x4 = qtensor(ctx, &r, CLAI_DTYPE_Q4_0, 2, xsh, NULL, NULL);
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "q8_0 activations", clai_matmul(ctx, c, x4, 0, w, 1, 1, 0));
  clai_tensor_free(x4);
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "trans_b = 1", clai_matmul(ctx, c, x, 0, w, 0, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "trans_a = 0", clai_matmul(ctx, c, w, 1, x, 1, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "op(a)", clai_matmul(ctx, c, xs, 0, w, 1, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "f32 or f16", clai_matmul(ctx, ci, x, 0, w, 1, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "quantized", clai_matmul(ctx, w2, x, 0, w, 1, 1, 0));
  char desc[160];
  CLAIT_OK(ctx, clai_matmul_describe(ctx, c, x, 0, w, 1, desc, sizeof desc));
  assert_non_null(strstr(desc, "q8_0"));
  const int64_t cb[2] = {8, 3};
  clai_tensor *cq = clait_tensor(ctx, CLAI_DTYPE_F32, 2, cb);
  CLAIT_OK(ctx, clai_matmul_describe(ctx, cq, w, 0, x, 1, desc, sizeof desc));
  assert_non_null(strstr(desc, "quantized"));
  /* still usable */
  CLAIT_OK(ctx, clai_matmul(ctx, c, x, 0, w, 1, 1, 0));
  clai_tensor_free(cq);
  clai_tensor_free(ci);
  clai_tensor_free(xs);
  clai_tensor_free(c);
  clai_tensor_free(x);
  clai_tensor_free(w2);
  clai_tensor_free(w);
}

/* Rows of a quantized table (a row-slice view at a block offset) into f32 and f16 outputs, a bad index. */
static void test_gather_rows(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0x6a7};
  for (size_t f = 0; f < NFMTS; f++) {
    const int64_t C = 3 * qb(fmts[f]), tsh[2] = {50, C}, ish[2] = {2, 3};
    double *ref = NULL;
    clai_tensor *table = qtensor(ctx, &r, fmts[f], 2, tsh, NULL, &ref), *tv = NULL;
    CLAIT_OK(ctx, clai_tensor_slice(table, &tv, 0, 10, 40, 1)); /* rows 10..39 */
    const int32_t idx[6] = {0, 29, 5, 5, 17, 1};
    clai_tensor *index = clait_tensor(ctx, CLAI_DTYPE_I32, 2, ish);
    CLAIT_OK(ctx, clai_tensor_write(index, idx, sizeof idx));
    for (int half = 0; half < 2; half++) {
      const clai_dtype dt = half ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
      const int64_t osh[3] = {2, 3, C};
      clai_tensor *out = clait_tensor(ctx, dt, 3, osh);
      CLAIT_OK(ctx, clai_gather_rows(ctx, out, tv, index));
      float got[6 * 768];
      double want[6 * 768];
      clait_read_floats(ctx, out, got);
      for (int p = 0; p < 6; p++)
        for (int64_t j = 0; j < C; j++) want[p * C + j] = clait_as_dtype(dt, ref[(10 + idx[p]) * C + j]);
      clait_expect_close("gather", got, want, (size_t)(6 * C), 1e-9, half ? 1e-3 : 1.2e-7);
      clai_tensor_free(out);
    }
    const int32_t badidx[6] = {0, 30, 5, -1, 17, 1};
    CLAIT_OK(ctx, clai_tensor_write(index, badidx, sizeof badidx));
    const int64_t osh[3] = {2, 3, C};
    clai_tensor *out = clait_tensor(ctx, CLAI_DTYPE_F32, 3, osh);
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "index[1] = 30", clai_gather_rows(ctx, out, tv, index));
    float got[6 * 768];
    clait_read_floats(ctx, out, got);
    for (int64_t j = 0; j < C; j++) assert_true(got[C + j] == 0.0f && got[3 * C + j] == 0.0f);
    clai_tensor *oi = clait_tensor(ctx, CLAI_DTYPE_I32, 3, osh);
    CLAIT_FAILS(ctx, CLAI_E_DTYPE, "f32 or f16", clai_gather_rows(ctx, oi, tv, index));
    clai_tensor_free(oi);
    clai_tensor_free(out);
    clai_tensor_free(index);
    clai_tensor_free(tv);
    clai_tensor_free(table);
    free(ref);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(test_dtype_queries),
      cmocka_unit_test_setup_teardown(test_layout_rules, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_raw_roundtrip, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_dequant_copy, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_special_scales, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_quantize_q8_0, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_other_ops_refuse, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_matmul_shapes, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_matmul_long_k, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_matmul_variants, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_matmul_q8_activations, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_matmul_into_view, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_matmul_weight_view, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_matmul_prologue, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_matmul_prologue_errors, clait_setup, clait_teardown),
      CLAIT_TIMED(test_prologue_q8k_special),
      cmocka_unit_test_setup_teardown(test_matmul_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_kquant_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather_rows, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("quant", tests, 1);
}
