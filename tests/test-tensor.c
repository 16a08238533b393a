/* test-tensor - tensors and views: host round trips for every dtype (f16 bit-exact, including the device's
 * f32 -> f16 rounding against the host's round-to-nearest-even), shape and layout queries, scalars and
 * zero-size tensors, every kind of view (transpose, permute, slice, reshape, expand, explicit view), reads
 * and writes through non-contiguous views, sharing and lifetimes of the refcounted buffer, clai_copy between
 * all dtypes with broadcasting and strided destinations, and clai_fill. Every expectation is computed on the
 * host. */
#include <float.h>
#include <limits.h>

#include "internal.h" /* the device's cache size and whether its copies may store past the cache */
#include "testutil.h"

/* ---- helpers -------------------------------------------------------------------------------------------- */

static clai_tensor *mk1(clai_context *ctx, clai_dtype dt, int64_t n0) { return clait_tensor(ctx, dt, 1, &n0); }

static clai_tensor *mk2(clai_context *ctx, clai_dtype dt, int64_t n0, int64_t n1) {
  const int64_t s[2] = {n0, n1};
  return clait_tensor(ctx, dt, 2, s);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n > 0 ? n : 1);
  assert_non_null(p);
  return p;
}

static int64_t numel_of(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

/* Host reference: the dense row-major elements (element size es) of a strided view of host data. */
static void host_gather(const void *base, size_t es, int ndim, const int64_t *shape, const int64_t *strides,
                        int64_t offset, void *out) {
  int64_t n = numel_of(ndim, shape), idx[CLAI_MAX_DIMS] = {0};
  for (int64_t k = 0; k < n; k++) {
    int64_t off = offset;
    for (int d = 0; d < ndim; d++) off += idx[d] * strides[d];
    memcpy((char *)out + (size_t)k * es, (const char *)base + (size_t)off * es, es);
    for (int d = ndim - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

/* Reads t (of any layout) and checks its layout-reported shape matches `shape`. */
static void expect_shape(const clai_tensor *t, int ndim, const int64_t *shape, const int64_t *strides,
                         int64_t offset) {
  assert_int_equal(clai_tensor_ndim(t), ndim);
  for (int d = 0; d < ndim; d++) {
    if (clai_tensor_dim(t, d) != shape[d])
      fail_msg("dim %d is %lld, expected %lld", d, (long long)clai_tensor_dim(t, d), (long long)shape[d]);
    if (strides != NULL && shape[d] > 1 && clai_tensor_stride(t, d) != strides[d])
      fail_msg("stride %d is %lld, expected %lld", d, (long long)clai_tensor_stride(t, d), (long long)strides[d]);
  }
  if (offset >= 0) assert_int_equal(clai_tensor_offset(t), offset);
  assert_int_equal(clai_tensor_numel(t), numel_of(ndim, shape));
}

static void expect_f32_exact(const char *what, const float *got, const float *want, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(&got[i], &want[i], 4) != 0)
      fail_msg("%s: element %zu is %.9g, expected %.9g", what, i, (double)got[i], (double)want[i]);
}

static void expect_i32_exact(const char *what, const int32_t *got, const int32_t *want, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (got[i] != want[i]) fail_msg("%s: element %zu is %d, expected %d", what, i, got[i], want[i]);
}

static int half_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

/* Bit-exact f16 comparison; any NaN matches any NaN. */
static void expect_f16_exact(const char *what, const uint16_t *got, const uint16_t *want, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (half_is_nan(want[i]) && half_is_nan(got[i])) continue;
    if (got[i] != want[i])
      fail_msg("%s: element %zu is 0x%04x (%.9g), expected 0x%04x (%.9g)", what, i, got[i],
               (double)clait_f16_to_f32(got[i]), want[i], (double)clait_f16_to_f32(want[i]));
  }
}

/* A base of values 0.5, 1.5, 2.5, ... so every element names its own position. */
static float *iota_f32(size_t n) {
  float *p = xmalloc(n * sizeof *p);
  for (size_t i = 0; i < n; i++) p[i] = (float)i + 0.5f;
  return p;
}

static clai_tensor *iota_tensor(clai_context *ctx, int ndim, const int64_t *shape, float **host) {
  int64_t n = numel_of(ndim, shape);
  float *h = iota_f32((size_t)n);
  clai_tensor *t = clait_tensor(ctx, CLAI_DTYPE_F32, ndim, shape);
  CLAIT_OK(ctx, clai_tensor_write(t, h, (size_t)n * 4));
  *host = h;
  return t;
}

/* Reads a view and compares it with the host gather of `base` at the view's expected layout. */
static void expect_view_f32(clai_context *ctx, const char *what, clai_tensor *v, const float *base, int ndim,
                            const int64_t *shape, const int64_t *strides, int64_t offset) {
  int64_t n = numel_of(ndim, shape);
  float *got = xmalloc((size_t)n * 4), *want = xmalloc((size_t)n * 4);
  host_gather(base, 4, ndim, shape, strides, offset, want);
  CLAIT_OK(ctx, clai_tensor_read(v, got, (size_t)n * 4));
  expect_f32_exact(what, got, want, (size_t)n);
  free(got);
  free(want);
}

static uint16_t random_finite_half(clait_rng *r) {
  for (;;) {
    uint16_t h = (uint16_t)(clait_next(r) >> 48);
    if ((h & 0x7c00u) != 0x7c00u) return h;
  }
}

/* ---- round trips ---------------------------------------------------------------------------------------- */

static void test_roundtrip_f32(void **state) {
  clai_context *ctx = *state;
  clait_rng rng = {0x1234567ULL};
  const int64_t shapes[][4] = {{1}, {7}, {129}, {31, 7}, {3, 1, 7}, {2, 3, 5, 7}, {1, 1, 1, 1}, {4097}};
  const int ndims[] = {1, 1, 1, 2, 3, 4, 4, 1};
  for (size_t s = 0; s < sizeof ndims / sizeof ndims[0]; s++) {
    int64_t n = numel_of(ndims[s], shapes[s]);
    float *src = xmalloc((size_t)n * 4), *dst = xmalloc((size_t)n * 4 + 8);
    clait_fill(&rng, src, (size_t)n, -1000.0f, 1000.0f);
    src[0] = -0.0f;
    clai_tensor *t = clait_tensor(ctx, CLAI_DTYPE_F32, ndims[s], shapes[s]);
    assert_int_equal(clai_tensor_dtype(t), CLAI_DTYPE_F32);
    assert_ptr_equal(clai_tensor_context(t), ctx);
    CLAIT_OK(ctx, clai_tensor_write(t, src, (size_t)n * 4));
    /* A larger destination is fine; the bytes past numel are left alone. */
    memset(dst, 0xa5, (size_t)n * 4 + 8);
    CLAIT_OK(ctx, clai_tensor_read(t, dst, (size_t)n * 4 + 8));
    expect_f32_exact("f32 round trip", dst, src, (size_t)n);
    for (size_t b = (size_t)n * 4; b < (size_t)n * 4 + 8; b++) assert_int_equal(((unsigned char *)dst)[b], 0xa5);
    /* Too small: CLAI_E_BUFFER_TOO_SMALL and nothing written. */
    memset(dst, 0x5a, (size_t)n * 4);
    CLAIT_FAILS(ctx, CLAI_E_BUFFER_TOO_SMALL, "clai_tensor_read", clai_tensor_read(t, dst, (size_t)n * 4 - 1));
    for (size_t b = 0; b < (size_t)n * 4; b++) assert_int_equal(((unsigned char *)dst)[b], 0x5a);
    /* A write of the wrong size fails and changes nothing. */
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_tensor_write", clai_tensor_write(t, dst, (size_t)n * 4 + 4));
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_tensor_write", clai_tensor_write(t, dst, (size_t)n * 4 - 4));
    CLAIT_OK(ctx, clai_tensor_read(t, dst, (size_t)n * 4));
    expect_f32_exact("f32 after failed writes", dst, src, (size_t)n);
    clai_tensor_free(t);
    free(src);
    free(dst);
  }
}

static void test_roundtrip_i32(void **state) {
  clai_context *ctx = *state;
  clait_rng rng = {0xabcdefULL};
  const int64_t sizes[] = {1, 7, 31, 129, 1000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    int64_t n = sizes[s];
    int32_t *src = xmalloc((size_t)n * 4), *dst = xmalloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) src[i] = (int32_t)(uint32_t)clait_next(&rng);
    src[0] = INT32_MIN;
    if (n > 1) src[n - 1] = INT32_MAX;
    clai_tensor *t = mk1(ctx, CLAI_DTYPE_I32, n);
    assert_int_equal(clai_tensor_dtype(t), CLAI_DTYPE_I32);
    CLAIT_OK(ctx, clai_tensor_write(t, src, (size_t)n * 4));
    CLAIT_OK(ctx, clai_tensor_read(t, dst, (size_t)n * 4));
    expect_i32_exact("i32 round trip", dst, src, (size_t)n);
    clai_tensor_free(t);
    free(src);
    free(dst);
  }
}

/* Every one of the 65536 half bit patterns survives a write/read, converts to f32 exactly as the host
 * does, and converts back to the same bits (NaNs stay NaNs). */
static void test_roundtrip_f16_all_patterns(void **state) {
  clai_context *ctx = *state;
  const int64_t n = 65536;
  uint16_t *bits = xmalloc((size_t)n * 2), *back = xmalloc((size_t)n * 2);
  float *f = xmalloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) bits[i] = (uint16_t)i;
  clai_tensor *h = mk1(ctx, CLAI_DTYPE_F16, n), *g = mk1(ctx, CLAI_DTYPE_F32, n), *h2 = mk1(ctx, CLAI_DTYPE_F16, n);
  assert_int_equal(clai_tensor_dtype(h), CLAI_DTYPE_F16);
  CLAIT_OK(ctx, clai_tensor_write(h, bits, (size_t)n * 2));
  CLAIT_OK(ctx, clai_tensor_read(h, back, (size_t)n * 2));
  assert_memory_equal(back, bits, (size_t)n * 2);

  CLAIT_OK(ctx, clai_copy(ctx, g, h));
  CLAIT_OK(ctx, clai_tensor_read(g, f, (size_t)n * 4));
  for (int64_t i = 0; i < n; i++) {
    float want = clait_f16_to_f32((uint16_t)i);
    if (half_is_nan((uint16_t)i)) {
      if (!isnan(f[i])) fail_msg("f16 0x%04x -> f32 gave %g, expected NaN", (unsigned)i, (double)f[i]);
    } else if (memcmp(&f[i], &want, 4) != 0) {
      fail_msg("f16 0x%04x -> f32 gave %.9g, expected %.9g", (unsigned)i, (double)f[i], (double)want);
    }
  }
  CLAIT_OK(ctx, clai_copy(ctx, h2, g));
  CLAIT_OK(ctx, clai_tensor_read(h2, back, (size_t)n * 2));
  expect_f16_exact("f16 -> f32 -> f16", back, bits, (size_t)n);
  clai_tensor_free(h);
  clai_tensor_free(g);
  clai_tensor_free(h2);
  free(bits);
  free(back);
  free(f);
}

/* f32 -> f16 on the device (clai_copy) matches the host's round-to-nearest-even bit for bit: every tie
 * between two adjacent halves (normal and subnormal) and its two f32 neighbours, the overflow threshold,
 * underflow, specials and random bit patterns. */
static void test_f32_to_f16_rounding(void **state) {
  clai_context *ctx = *state;
  clait_rng rng = {0x5eed5eedULL};
  const size_t cap = 0x7c00 * 6 + 40000 + 64;
  float *src = xmalloc(cap * 4);
  size_t n = 0;
  for (uint32_t h = 0; h < 0x7c00u; h++) {
    float a = clait_f16_to_f32((uint16_t)h);
    float b = h + 1 < 0x7c00u ? clait_f16_to_f32((uint16_t)(h + 1)) : 65536.0f;
    float mid = a + (b - a) * 0.5f; /* exact: a half has 11 significant bits */
    src[n++] = mid;
    src[n++] = nextafterf(mid, 0.0f);
    src[n++] = nextafterf(mid, INFINITY);
    src[n++] = -mid;
    src[n++] = -nextafterf(mid, 0.0f);
    src[n++] = -nextafterf(mid, INFINITY);
  }
  for (int i = 0; i < 40000; i++) {
    uint32_t x = (uint32_t)clait_next(&rng);
    /* Half of them with exponents near the half range, where the rounding matters. */
    if (i & 1) x = (x & 0x807fffffu) | ((uint32_t)(127 - 26 + (x >> 23) % 44) << 23);
    memcpy(&src[n++], &x, 4);
  }
  const float specials[] = {0.0f,       -0.0f,       INFINITY,    -INFINITY,    NAN,        65504.0f,
                            65519.99f,  65520.0f,    -65520.0f,   1e-8f,        -1e-8f,     5.9604645e-8f,
                            2.9802322e-8f, 2.9802326e-8f, FLT_MAX, -FLT_MAX, FLT_MIN,   1.0f / 3.0f,
                            0.1f,       -2.5f,       6.1035156e-5f, 6.1e-5f,    1e30f,      -1e-30f};
  for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) src[n++] = specials[i];
  assert_true(n <= cap);

  uint16_t *want = xmalloc(n * 2), *got = xmalloc(n * 2);
  for (size_t i = 0; i < n; i++) want[i] = clait_f32_to_f16(src[i]);
  /* The host reference itself: a few hand-checked values. */
  assert_int_equal(clait_f32_to_f16(1.0f), 0x3c00);
  assert_int_equal(clait_f32_to_f16(65520.0f), 0x7c00);          /* tie at the top rounds to inf */
  assert_int_equal(clait_f32_to_f16(65519.99f), 0x7bff);
  assert_int_equal(clait_f32_to_f16(2.9802322e-8f), 0x0000);      /* 2^-25: tie between 0 and 2^-24 -> even */
  assert_int_equal(clait_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie -> even (down) */
  assert_int_equal(clait_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02); /* tie -> even (up) */

  clai_tensor *a = mk1(ctx, CLAI_DTYPE_F32, (int64_t)n), *b = mk1(ctx, CLAI_DTYPE_F16, (int64_t)n);
  CLAIT_OK(ctx, clai_tensor_write(a, src, n * 4));
  CLAIT_OK(ctx, clai_copy(ctx, b, a));
  CLAIT_OK(ctx, clai_tensor_read(b, got, n * 2));
  expect_f16_exact("f32 -> f16 on the device", got, want, n);
  clai_tensor_free(a);
  clai_tensor_free(b);
  free(src);
  free(want);
  free(got);
}

/* ---- queries, scalars, zero-size ------------------------------------------------------------------------ */

static void test_queries(void **state) {
  clai_context *ctx = *state;
  assert_int_equal(clai_dtype_size(CLAI_DTYPE_F32), 4);
  assert_int_equal(clai_dtype_size(CLAI_DTYPE_F16), 2);
  assert_int_equal(clai_dtype_size(CLAI_DTYPE_I32), 4);
  assert_int_equal(clai_dtype_size((clai_dtype)8), 0);
  assert_string_equal(clai_dtype_name(CLAI_DTYPE_F32), "f32");
  assert_string_equal(clai_dtype_name(CLAI_DTYPE_F16), "f16");
  assert_string_equal(clai_dtype_name(CLAI_DTYPE_I32), "i32");
  assert_string_equal(clai_dtype_name((clai_dtype)-1), "?");

  const int64_t shape[4] = {2, 3, 5, 7};
  clai_tensor *t = clait_tensor(ctx, CLAI_DTYPE_F16, 4, shape);
  const int64_t strides[4] = {105, 35, 7, 1};
  expect_shape(t, 4, shape, strides, 0);
  assert_int_equal(clai_tensor_numel(t), 210);
  assert_int_equal(clai_tensor_is_contiguous(t), 1);
  assert_int_equal(clai_tensor_dtype(t), CLAI_DTYPE_F16);
  assert_int_equal(clai_tensor_dim(t, 4), -1);
  assert_int_equal(clai_tensor_dim(t, -1), -1);
  assert_int_equal(clai_tensor_stride(t, 4), -1);
  assert_int_equal(clai_tensor_stride(t, -1), -1);
  /* NULL-safe queries. */
  assert_int_equal(clai_tensor_ndim(NULL), -1);
  assert_int_equal(clai_tensor_numel(NULL), -1);
  assert_int_equal(clai_tensor_offset(NULL), -1);
  assert_int_equal(clai_tensor_dim(NULL, 0), -1);
  assert_null(clai_tensor_context(NULL));
  assert_int_equal(clai_tensor_is_contiguous(NULL), 0);
  clai_tensor_free(NULL);
  clai_tensor_free(t);

  /* Bad shapes: out is NULL afterwards. */
  clai_tensor *bad = (clai_tensor *)&bad;
  const int64_t neg[2] = {3, -1}, huge[3] = {INT64_C(1) << 31, INT64_C(1) << 31, INT64_C(1) << 31};
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "negative", clai_tensor_init(ctx, &bad, CLAI_DTYPE_F32, 2, neg));
  assert_null(bad);
  bad = (clai_tensor *)&bad;
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "overflow", clai_tensor_init(ctx, &bad, CLAI_DTYPE_F32, 3, huge));
  assert_null(bad);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "ndim", clai_tensor_init(ctx, &bad, CLAI_DTYPE_F32, CLAI_MAX_DIMS + 1, shape));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "dtype", clai_tensor_init(ctx, &bad, (clai_dtype)9, 1, shape));

  /* The largest rank works. */
  const int64_t eight[CLAI_MAX_DIMS] = {2, 1, 3, 1, 2, 1, 1, 3};
  clai_tensor *e = clait_tensor(ctx, CLAI_DTYPE_I32, CLAI_MAX_DIMS, eight);
  assert_int_equal(clai_tensor_numel(e), 36);
  assert_int_equal(clai_tensor_stride(e, 0), 18);
  assert_int_equal(clai_tensor_stride(e, 7), 1);
  int32_t in[36], out[36];
  for (int i = 0; i < 36; i++) in[i] = i * 7 - 100;
  CLAIT_OK(ctx, clai_tensor_write(e, in, sizeof in));
  CLAIT_OK(ctx, clai_tensor_read(e, out, sizeof out));
  expect_i32_exact("8-d round trip", out, in, 36);
  clai_tensor_free(e);
}

static void test_scalar(void **state) {
  clai_context *ctx = *state;
  clai_tensor *s = clait_tensor(ctx, CLAI_DTYPE_F32, 0, NULL);
  assert_int_equal(clai_tensor_ndim(s), 0);
  assert_int_equal(clai_tensor_numel(s), 1);
  assert_int_equal(clai_tensor_is_contiguous(s), 1);
  assert_int_equal(clai_tensor_dim(s, 0), -1);
  float v = 3.75f, r = 0;
  CLAIT_OK(ctx, clai_tensor_write(s, &v, 4));
  CLAIT_OK(ctx, clai_tensor_read(s, &r, 4));
  assert_true(r == 3.75f);
  CLAIT_OK(ctx, clai_fill(ctx, s, -1.25));
  CLAIT_OK(ctx, clai_tensor_read(s, &r, 4));
  assert_true(r == -1.25f);

  /* A scalar broadcasts into anything (here an f16 [7, 31]). */
  clai_tensor *d = mk2(ctx, CLAI_DTYPE_F16, 7, 31);
  CLAIT_OK(ctx, clai_copy(ctx, d, s));
  uint16_t h[217];
  CLAIT_OK(ctx, clai_tensor_read(d, h, sizeof h));
  for (int i = 0; i < 217; i++) assert_int_equal(h[i], clait_f32_to_f16(-1.25f));

  /* Scalar views: expand to [4, 4] (all strides 0), reshape to [1, 1, 1] and back to 0-d. */
  clai_tensor *e = NULL, *r3 = NULL, *r0 = NULL;
  const int64_t s44[2] = {4, 4}, s111[3] = {1, 1, 1};
  CLAIT_OK(ctx, clai_tensor_expand(s, &e, 2, s44));
  assert_int_equal(clai_tensor_stride(e, 0), 0);
  assert_int_equal(clai_tensor_stride(e, 1), 0);
  float g[16];
  CLAIT_OK(ctx, clai_tensor_read(e, g, sizeof g));
  for (int i = 0; i < 16; i++) assert_true(g[i] == -1.25f);
  CLAIT_OK(ctx, clai_tensor_reshape(s, &r3, 3, s111));
  expect_shape(r3, 3, s111, NULL, 0);
  CLAIT_OK(ctx, clai_tensor_reshape(r3, &r0, 0, NULL));
  assert_int_equal(clai_tensor_ndim(r0), 0);
  v = 42.0f;
  CLAIT_OK(ctx, clai_tensor_write(r0, &v, 4));
  CLAIT_OK(ctx, clai_tensor_read(s, &r, 4));
  assert_true(r == 42.0f);

  /* 0-d i32 and f16 scalars. */
  clai_tensor *si = clait_tensor(ctx, CLAI_DTYPE_I32, 0, NULL), *sh = clait_tensor(ctx, CLAI_DTYPE_F16, 0, NULL);
  CLAIT_OK(ctx, clai_copy(ctx, si, s));
  CLAIT_OK(ctx, clai_copy(ctx, sh, si));
  int32_t iv = 0;
  uint16_t hv = 0;
  CLAIT_OK(ctx, clai_tensor_read(si, &iv, 4));
  CLAIT_OK(ctx, clai_tensor_read(sh, &hv, 2));
  assert_int_equal(iv, 42);
  assert_int_equal(hv, clait_f32_to_f16(42.0f));
  clai_tensor_free(si);
  clai_tensor_free(sh);
  clai_tensor_free(e);
  clai_tensor_free(r3);
  clai_tensor_free(r0);
  clai_tensor_free(d);
  clai_tensor_free(s);
}

static void test_zero_size(void **state) {
  clai_context *ctx = *state;
  const int64_t s0[1] = {0}, s305[3] = {3, 0, 5};
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 1, s0), *b = clait_tensor(ctx, CLAI_DTYPE_I32, 3, s305);
  assert_int_equal(clai_tensor_numel(a), 0);
  assert_int_equal(clai_tensor_numel(b), 0);
  assert_int_equal(clai_tensor_dim(b, 1), 0);
  assert_int_equal(clai_tensor_is_contiguous(a), 1);
  assert_int_equal(clai_tensor_is_contiguous(b), 1);
  /* Transfers of nothing succeed, with or without a pointer. */
  float dummy = 7.0f;
  CLAIT_OK(ctx, clai_tensor_write(a, NULL, 0));
  CLAIT_OK(ctx, clai_tensor_write(b, &dummy, 0));
  CLAIT_OK(ctx, clai_tensor_read(a, NULL, 0));
  CLAIT_OK(ctx, clai_tensor_read(b, &dummy, sizeof dummy));
  assert_true(dummy == 7.0f);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_tensor_write", clai_tensor_write(a, &dummy, 4));
  /* Ops on nothing are no-ops that succeed. */
  CLAIT_OK(ctx, clai_fill(ctx, b, 1.0));
  clai_tensor *c = clait_tensor(ctx, CLAI_DTYPE_F16, 3, s305);
  CLAIT_OK(ctx, clai_copy(ctx, c, b));
  /* A [1] source broadcasts into a zero-size destination. */
  clai_tensor *one = mk1(ctx, CLAI_DTYPE_F32, 1);
  CLAIT_OK(ctx, clai_copy(ctx, b, one));
  /* Views of nothing. */
  clai_tensor *r = NULL, *t = NULL, *sl = NULL, *x = NULL;
  const int64_t s50[2] = {5, 0}, s15[2] = {15, 0};
  CLAIT_OK(ctx, clai_tensor_reshape(b, &r, 2, s50));
  expect_shape(r, 2, s50, NULL, -1);
  CLAIT_OK(ctx, clai_tensor_transpose(b, &t, 0, 2));
  assert_int_equal(clai_tensor_dim(t, 0), 5);
  assert_int_equal(clai_tensor_dim(t, 2), 3);
  assert_int_equal(clai_tensor_numel(t), 0);
  CLAIT_OK(ctx, clai_tensor_slice(b, &sl, 0, 1, 2, 1));
  assert_int_equal(clai_tensor_dim(sl, 0), 1);
  assert_int_equal(clai_tensor_numel(sl), 0);
  CLAIT_OK(ctx, clai_tensor_expand(a, &x, 2, s15));
  assert_int_equal(clai_tensor_numel(x), 0);
  /* -1 cannot be inferred from zero elements. */
  clai_tensor *bad = NULL;
  const int64_t sm1[2] = {-1, 0};
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "infer", clai_tensor_reshape(b, &bad, 2, sm1));
  assert_null(bad);
  clai_tensor_free(r);
  clai_tensor_free(t);
  clai_tensor_free(sl);
  clai_tensor_free(x);
  clai_tensor_free(one);
  clai_tensor_free(c);
  clai_tensor_free(a);
  clai_tensor_free(b);
}

/* Issue 10, defect 6: empty shapes whose other dims multiply past INT64_MAX are valid (0 elements), and
 * nothing may overflow on them: the dense strides (init, reshape's empty branch, clai_contiguous), the
 * extent behind every overlap check, views. Under --enable-sanitizers a signed overflow aborts the test. */
static void test_zero_size_huge_dims(void **state) {
  clai_context *ctx = *state;
  const int64_t G = (int64_t)1 << 30, T40 = (int64_t)1 << 40;
  const int64_t s1[3] = {G, 0, T40}, s2[3] = {0, T40, T40}, s3[4] = {T40, 0, T40, 3};
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 3, s1), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 3, s2);
  clai_tensor *c = clait_tensor(ctx, CLAI_DTYPE_F16, 4, s3);
  assert_int_equal(clai_tensor_numel(a), 0);
  assert_int_equal(clai_tensor_numel(b), 0);
  assert_int_equal(clai_tensor_numel(c), 0);
  /* row-major strides with size-0 dims counted as 1; those that would not fit an int64_t are 0 */
  const int64_t st1[3] = {T40, T40, 1}, st2[3] = {0, T40, 1}, st3[4] = {3 * T40, 3 * T40, 3, 1};
  for (int i = 0; i < 3; i++) assert_int_equal(clai_tensor_stride(a, i), st1[i]);
  for (int i = 0; i < 3; i++) assert_int_equal(clai_tensor_stride(b, i), st2[i]);
  for (int i = 0; i < 4; i++) assert_int_equal(clai_tensor_stride(c, i), st3[i]);
  assert_int_equal(clai_tensor_is_contiguous(b), 1);
  /* views and ops of nothing */
  clai_tensor *r = NULL, *r2 = NULL, *t = NULL, *d = NULL, *v = NULL;
  const int64_t one = 1;
  CLAIT_OK(ctx, clai_tensor_reshape(a, &r, 3, s2));
  for (int i = 0; i < 3; i++) assert_int_equal(clai_tensor_stride(r, i), st2[i]);
  CLAIT_OK(ctx, clai_tensor_reshape(b, &r2, 3, s1));
  for (int i = 0; i < 3; i++) assert_int_equal(clai_tensor_stride(r2, i), st1[i]);
  CLAIT_OK(ctx, clai_tensor_transpose(a, &t, 0, 2));
  CLAIT_OK(ctx, clai_contiguous(ctx, &d, b));
  assert_int_equal(clai_tensor_numel(d), 0);
  CLAIT_OK(ctx, clai_tensor_view(a, &v, 3, s2, st1, 0)); /* an empty view's strides span nothing */
  CLAIT_OK(ctx, clai_copy(ctx, t, t));
  CLAIT_OK(ctx, clai_copy(ctx, r, b));
  CLAIT_OK(ctx, clai_fill(ctx, c, 1.0));
  CLAIT_OK(ctx, clai_binary(ctx, CLAI_ADD, a, a, a));
  CLAIT_OK(ctx, clai_tensor_write(b, NULL, 0));
  /* a shape whose count overflows before any size-0 dim is reached still fails cleanly */
  clai_tensor *bad = NULL;
  const int64_t big[3] = {T40, T40, 0};
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "overflows", clai_tensor_init(ctx, &bad, CLAI_DTYPE_F32, 3, big));
  assert_null(bad);
  clai_tensor *ok = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &one); /* the context is still usable */
  clai_tensor_free(ok);
  clai_tensor_free(v);
  clai_tensor_free(d);
  clai_tensor_free(t);
  clai_tensor_free(r2);
  clai_tensor_free(r);
  clai_tensor_free(c);
  clai_tensor_free(b);
  clai_tensor_free(a);
}

/* ---- views ---------------------------------------------------------------------------------------------- */

static void test_transpose(void **state) {
  clai_context *ctx = *state;
  const int64_t R = 31, C = 7;
  const int64_t shape[2] = {R, C};
  float *h;
  clai_tensor *a = iota_tensor(ctx, 2, shape, &h);
  clai_tensor *t = NULL, *t2 = NULL, *tt = NULL, *same = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(a, &t, 0, 1));
  CLAIT_OK(ctx, clai_tensor_transpose(a, &t2, -1, -2));
  const int64_t tshape[2] = {C, R}, tstr[2] = {1, C};
  expect_shape(t, 2, tshape, tstr, 0);
  expect_shape(t2, 2, tshape, tstr, 0);
  assert_int_equal(clai_tensor_is_contiguous(t), 0);
  float got[31 * 7];
  CLAIT_OK(ctx, clai_tensor_read(t, got, sizeof got));
  for (int64_t i = 0; i < C; i++)
    for (int64_t j = 0; j < R; j++)
      if (got[i * R + j] != h[j * C + i]) fail_msg("transpose [%lld][%lld]", (long long)i, (long long)j);
  /* Transposing back gives a contiguous view equal to the base. */
  CLAIT_OK(ctx, clai_tensor_transpose(t, &tt, 1, 0));
  assert_int_equal(clai_tensor_is_contiguous(tt), 1);
  expect_view_f32(ctx, "transpose twice", tt, h, 2, shape, (const int64_t[]){C, 1}, 0);
  CLAIT_OK(ctx, clai_tensor_transpose(a, &same, 1, 1));
  assert_int_equal(clai_tensor_is_contiguous(same), 1);

  /* 3-D: swap the outer and inner dims of [3, 4, 5]. */
  const int64_t s3[3] = {3, 4, 5};
  float *h3;
  clai_tensor *b = iota_tensor(ctx, 3, s3, &h3), *bt = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(b, &bt, 0, -1));
  const int64_t bts[3] = {5, 4, 3}, btst[3] = {1, 5, 20};
  expect_shape(bt, 3, bts, btst, 0);
  float g3[60];
  CLAIT_OK(ctx, clai_tensor_read(bt, g3, sizeof g3));
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 3; k++) assert_true(g3[(i * 4 + j) * 3 + k] == h3[(k * 4 + j) * 5 + i]);

  clai_tensor *bad = (clai_tensor *)&bad;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out of range", clai_tensor_transpose(a, &bad, 0, 2));
  assert_null(bad);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out of range", clai_tensor_transpose(a, &bad, -3, 0));
  clai_tensor_free(bt);
  clai_tensor_free(b);
  clai_tensor_free(same);
  clai_tensor_free(tt);
  clai_tensor_free(t2);
  clai_tensor_free(t);
  clai_tensor_free(a);
  free(h);
  free(h3);
}

static void test_permute(void **state) {
  clai_context *ctx = *state;
  const int64_t s[4] = {2, 3, 4, 5};
  float *h;
  clai_tensor *a = iota_tensor(ctx, 4, s, &h), *p = NULL, *id = NULL;
  const int perm[4] = {2, 0, 3, 1};
  CLAIT_OK(ctx, clai_tensor_permute(a, &p, perm));
  const int64_t ps[4] = {4, 2, 5, 3}, pst[4] = {5, 60, 1, 20};
  expect_shape(p, 4, ps, pst, 0);
  assert_int_equal(clai_tensor_is_contiguous(p), 0);
  float got[120];
  CLAIT_OK(ctx, clai_tensor_read(p, got, sizeof got));
  int k = 0;
  for (int i2 = 0; i2 < 4; i2++)
    for (int i0 = 0; i0 < 2; i0++)
      for (int i3 = 0; i3 < 5; i3++)
        for (int i1 = 0; i1 < 3; i1++, k++)
          if (got[k] != h[((i0 * 3 + i1) * 4 + i2) * 5 + i3]) fail_msg("permute element %d", k);
  const int ident[4] = {0, 1, 2, 3};
  CLAIT_OK(ctx, clai_tensor_permute(a, &id, ident));
  assert_int_equal(clai_tensor_is_contiguous(id), 1);

  clai_tensor *bad = NULL;
  const int dup[4] = {0, 1, 1, 3}, oob[4] = {0, 1, 2, 4};
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "permutation", clai_tensor_permute(a, &bad, dup));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "permutation", clai_tensor_permute(a, &bad, oob));
  assert_null(bad);
  clai_tensor_free(id);
  clai_tensor_free(p);
  clai_tensor_free(a);
  free(h);
}

/* Python slice semantics for step >= 1, the host reference for clai_tensor_slice. */
static void py_slice(int64_t n, int64_t start, int64_t stop, int64_t step, int64_t *first, int64_t *count) {
  if (start < 0) start += n;
  if (stop < 0) stop += n;
  if (start < 0) start = 0;
  if (start > n) start = n;
  if (stop < 0) stop = 0;
  if (stop > n) stop = n;
  int64_t c = 0;
  for (int64_t i = start; i < stop; i += step) c++;
  *first = start;
  *count = c;
}

static void test_slice(void **state) {
  clai_context *ctx = *state;
  const int64_t N = 129;
  float *h;
  clai_tensor *a = iota_tensor(ctx, 1, &N, &h);
  const int64_t cases[][3] = {
      {10, 100, 7},  {0, 129, 1},    {-20, -3, 2},   {-1000, 1000, 1}, {-1000, 1000, 5}, {50, 10, 1},
      {129, 200, 1}, {128, 129, 1},  {-1, 129, 1},   {0, 129, 128},    {0, 129, 129},    {5, 6, 1000},
      {3, -3, 31},   {-129, -128, 1}, {-130, 2, 1},  {200, 300, 2},    {0, 0, 1},        {1, 129, 2},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t first, count;
    py_slice(N, cases[c][0], cases[c][1], cases[c][2], &first, &count);
    clai_tensor *v = NULL;
    CLAIT_OK(ctx, clai_tensor_slice(a, &v, 0, cases[c][0], cases[c][1], cases[c][2]));
    if (clai_tensor_dim(v, 0) != count)
      fail_msg("slice(%lld, %lld, %lld) has %lld elements, expected %lld", (long long)cases[c][0],
               (long long)cases[c][1], (long long)cases[c][2], (long long)clai_tensor_dim(v, 0), (long long)count);
    if (count > 0) {
      assert_int_equal(clai_tensor_offset(v), first);
      if (count > 1) assert_int_equal(clai_tensor_stride(v, 0), cases[c][2]);
    }
    char what[96];
    snprintf(what, sizeof what, "slice(%lld, %lld, %lld)", (long long)cases[c][0], (long long)cases[c][1],
             (long long)cases[c][2]);
    expect_view_f32(ctx, what, v, h, 1, &count, &cases[c][2], first);
    clai_tensor_free(v);
  }
  /* A step far beyond the size still gives the first element. */
  clai_tensor *big = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(a, &big, 0, 4, INT64_MAX, INT64_MAX));
  assert_int_equal(clai_tensor_dim(big, 0), 1);
  float one = 0;
  CLAIT_OK(ctx, clai_tensor_read(big, &one, 4));
  assert_true(one == h[4]);
  clai_tensor_free(big);

  clai_tensor *bad = NULL;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "step", clai_tensor_slice(a, &bad, 0, 0, 10, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "step", clai_tensor_slice(a, &bad, 0, 0, 10, -1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dim", clai_tensor_slice(a, &bad, 1, 0, 10, 1));
  assert_null(bad);

  /* 2-D: slice columns of [31, 129] with a step, then rows of that view (negative dim), then slice again. */
  const int64_t s2[2] = {31, 129};
  float *h2;
  clai_tensor *m = iota_tensor(ctx, 2, s2, &h2), *c1 = NULL, *c2 = NULL, *c3 = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(m, &c1, 1, -100, 120, 3)); /* cols 29, 32, ..., 119: 31 of them */
  const int64_t c1s[2] = {31, 31}, c1st[2] = {129, 3};
  expect_shape(c1, 2, c1s, c1st, 29);
  assert_int_equal(clai_tensor_is_contiguous(c1), 0);
  expect_view_f32(ctx, "column slice", c1, h2, 2, c1s, c1st, 29);
  CLAIT_OK(ctx, clai_tensor_slice(c1, &c2, -2, 1, -1, 4)); /* rows 1, 5, ..., 29: 8 of them */
  const int64_t c2s[2] = {8, 31}, c2st[2] = {129 * 4, 3};
  expect_shape(c2, 2, c2s, c2st, 29 + 129);
  expect_view_f32(ctx, "row slice of a column slice", c2, h2, 2, c2s, c2st, 29 + 129);
  CLAIT_OK(ctx, clai_tensor_slice(c2, &c3, 1, 30, 31, 1)); /* the last column of the view */
  const int64_t c3s[2] = {8, 1};
  expect_shape(c3, 2, c3s, NULL, 29 + 129 + 90);
  expect_view_f32(ctx, "single column", c3, h2, 2, c3s, c2st, 29 + 129 + 90);
  clai_tensor_free(c3);
  clai_tensor_free(c2);
  clai_tensor_free(c1);
  clai_tensor_free(m);
  clai_tensor_free(a);
  free(h);
  free(h2);
}

static void test_reshape(void **state) {
  clai_context *ctx = *state;
  /* Views of contiguous data, with and without -1. */
  const int64_t s[2] = {6, 35};
  float *h;
  clai_tensor *a = iota_tensor(ctx, 2, s, &h);
  const int64_t targets[][4] = {{210}, {5, 42}, {-1, 7}, {2, 3, 5, 7}, {2, -1, 1, 7}, {210, 1}, {1, 1, 210}};
  const int tn[] = {1, 2, 2, 4, 4, 2, 3};
  for (size_t c = 0; c < sizeof tn / sizeof tn[0]; c++) {
    int64_t want[4], wst[4], known = 1;
    for (int d = 0; d < tn[c]; d++)
      if (targets[c][d] > 0) known *= targets[c][d];
    for (int d = 0; d < tn[c]; d++) want[d] = targets[c][d] < 0 ? 210 / known : targets[c][d];
    int64_t st = 1;
    for (int d = tn[c] - 1; d >= 0; d--) {
      wst[d] = st;
      st *= want[d];
    }
    clai_tensor *r = NULL;
    CLAIT_OK(ctx, clai_tensor_reshape(a, &r, tn[c], targets[c]));
    expect_shape(r, tn[c], want, wst, 0);
    assert_int_equal(clai_tensor_is_contiguous(r), 1);
    expect_view_f32(ctx, "reshape", r, h, tn[c], want, wst, 0);
    clai_tensor_free(r);
  }
  /* The reshape is a view: a write through it changes the base. */
  clai_tensor *flat = NULL;
  const int64_t m1 = -1;
  CLAIT_OK(ctx, clai_tensor_reshape(a, &flat, 1, &m1));
  assert_int_equal(clai_tensor_dim(flat, 0), 210);
  CLAIT_OK(ctx, clai_fill(ctx, flat, 2.0));
  float g[210];
  CLAIT_OK(ctx, clai_tensor_read(a, g, sizeof g));
  for (int i = 0; i < 210; i++) assert_true(g[i] == 2.0f);
  CLAIT_OK(ctx, clai_tensor_write(a, h, 210 * 4));

  /* A compatible non-contiguous view: every other row of [8, 6, 5] is [4, 6, 5] with strides [60, 5, 1]. */
  const int64_t s3[3] = {8, 6, 5};
  float *h3;
  clai_tensor *b = iota_tensor(ctx, 3, s3, &h3), *rows = NULL, *r1 = NULL, *r2 = NULL, *r3 = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(b, &rows, 0, 1, 8, 2));
  assert_int_equal(clai_tensor_is_contiguous(rows), 0);
  const int64_t t1[2] = {4, 30}, t1st[2] = {60, 1};
  CLAIT_OK(ctx, clai_tensor_reshape(rows, &r1, 2, t1));
  expect_shape(r1, 2, t1, t1st, 30);
  expect_view_f32(ctx, "reshape of row slice", r1, h3, 2, t1, t1st, 30);
  const int64_t t2[4] = {2, 2, 3, 10}, t2st[4] = {120, 60, 10, 1};
  CLAIT_OK(ctx, clai_tensor_reshape(rows, &r2, 4, t2));
  expect_shape(r2, 4, t2, t2st, 30);
  expect_view_f32(ctx, "split reshape of row slice", r2, h3, 4, t2, t2st, 30);
  /* Transposed [8, 6, 5] -> [8, 5, 6]; splitting the 6 into 2 x 3 keeps stride 5 inside. */
  clai_tensor *bt = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(b, &bt, 1, 2));
  const int64_t t3[4] = {8, 5, 2, 3}, t3st[4] = {30, 1, 15, 5};
  CLAIT_OK(ctx, clai_tensor_reshape(bt, &r3, 4, t3));
  expect_shape(r3, 4, t3, t3st, 0);
  expect_view_f32(ctx, "split of a transposed dim", r3, h3, 4, t3, t3st, 0);

  /* Not expressible: a transposed matrix to 1-D, merging non-adjacent dims. */
  clai_tensor *t = NULL, *bad = (clai_tensor *)&bad;
  CLAIT_OK(ctx, clai_tensor_transpose(a, &t, 0, 1));
  const int64_t n210 = 210;
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "clai_copy", clai_tensor_reshape(t, &bad, 1, &n210));
  assert_null(bad);
  const int64_t t4[2] = {40, 6};
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "clai_tensor_reshape", clai_tensor_reshape(bt, &bad, 2, t4));
  const int64_t t5[2] = {2, 60}; /* merges the row dim (stride 60) with the 6 (stride 5) */
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "clai_tensor_reshape", clai_tensor_reshape(rows, &bad, 2, t5));
  /* ...but adding a size-1 dim to it is fine. */
  clai_tensor *t1d = NULL;
  const int64_t t6[3] = {35, 6, 1};
  CLAIT_OK(ctx, clai_tensor_reshape(t, &t1d, 3, t6));
  expect_view_f32(ctx, "transposed plus a 1", t1d, h, 3, t6, (const int64_t[]){1, 35, 1}, 0);
  /* Wrong element counts and bad -1 use. */
  const int64_t w1[2] = {7, 31}, w2[2] = {-1, -1}, w3[2] = {-1, 11};
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "cannot reshape", clai_tensor_reshape(a, &bad, 2, w1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dimension 1", clai_tensor_reshape(a, &bad, 2, w2));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "infer", clai_tensor_reshape(a, &bad, 2, w3));
  assert_null(bad);
  clai_tensor_free(t1d);
  clai_tensor_free(t);
  clai_tensor_free(r3);
  clai_tensor_free(bt);
  clai_tensor_free(r2);
  clai_tensor_free(r1);
  clai_tensor_free(rows);
  clai_tensor_free(b);
  clai_tensor_free(flat);
  clai_tensor_free(a);
  free(h);
  free(h3);
}

static void test_expand(void **state) {
  clai_context *ctx = *state;
  const int64_t row[2] = {1, 7}, col[2] = {31, 1};
  float *hr, *hc;
  clai_tensor *r = iota_tensor(ctx, 2, row, &hr), *c = iota_tensor(ctx, 2, col, &hc);
  clai_tensor *er = NULL, *ec = NULL, *e3 = NULL, *e1 = NULL;
  const int64_t to[2] = {5, 7};
  CLAIT_OK(ctx, clai_tensor_expand(r, &er, 2, to));
  const int64_t erst[2] = {0, 1};
  expect_shape(er, 2, to, erst, 0);
  assert_int_equal(clai_tensor_is_contiguous(er), 0);
  expect_view_f32(ctx, "expand rows", er, hr, 2, to, erst, 0);

  const int64_t to2[2] = {31, 9}, ecst[2] = {1, 0};
  CLAIT_OK(ctx, clai_tensor_expand(c, &ec, 2, to2));
  expect_shape(ec, 2, to2, ecst, 0);
  float g[31 * 9];
  CLAIT_OK(ctx, clai_tensor_read(ec, g, sizeof g));
  for (int i = 0; i < 31; i++)
    for (int j = 0; j < 9; j++) assert_true(g[i * 9 + j] == (float)i + 0.5f);

  /* Missing leading dims are added with stride 0: [1, 7] -> [3, 4, 7]. */
  const int64_t to3[3] = {3, 4, 7}, e3st[3] = {0, 0, 1};
  CLAIT_OK(ctx, clai_tensor_expand(r, &e3, 3, to3));
  expect_shape(e3, 3, to3, e3st, 0);
  expect_view_f32(ctx, "expand adds dims", e3, hr, 3, to3, e3st, 0);
  /* Leading 1s may be dropped: [1, 7] -> [7]. */
  const int64_t seven = 7;
  CLAIT_OK(ctx, clai_tensor_expand(r, &e1, 1, &seven));
  expect_view_f32(ctx, "expand drops a 1", e1, hr, 1, &seven, (const int64_t[]){1}, 0);

  /* Writing through the base shows through every broadcast element. */
  float nr[7] = {-1, -2, -3, -4, -5, -6, -7};
  CLAIT_OK(ctx, clai_tensor_write(r, nr, sizeof nr));
  float g2[35];
  CLAIT_OK(ctx, clai_tensor_read(er, g2, sizeof g2));
  for (int i = 0; i < 35; i++) assert_true(g2[i] == nr[i % 7]);

  clai_tensor *bad = NULL;
  const int64_t no[2] = {5, 8}, no2[2] = {2, 31};
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "broadcast", clai_tensor_expand(r, &bad, 2, no));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "broadcast", clai_tensor_expand(c, &bad, 2, no2));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "broadcast", clai_tensor_expand(c, &bad, 1, &seven));
  assert_null(bad);
  clai_tensor_free(e1);
  clai_tensor_free(e3);
  clai_tensor_free(ec);
  clai_tensor_free(er);
  clai_tensor_free(c);
  clai_tensor_free(r);
  free(hr);
  free(hc);
}

static void test_view_explicit(void **state) {
  clai_context *ctx = *state;
  const int64_t N = 100;
  float *h;
  clai_tensor *a = iota_tensor(ctx, 1, &N, &h), *v = NULL, *vv = NULL, *z = NULL, *last = NULL;
  const int64_t vs[2] = {3, 4}, vst[2] = {10, 2};
  CLAIT_OK(ctx, clai_tensor_view(a, &v, 2, vs, vst, 5));
  expect_shape(v, 2, vs, vst, 5);
  float g[12];
  CLAIT_OK(ctx, clai_tensor_read(v, g, sizeof g));
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) assert_true(g[i * 4 + j] == h[5 + 10 * i + 2 * j]);
  /* The offset of a view of a view is relative to the view. */
  const int64_t vvs[1] = {3}, vvst[1] = {11};
  CLAIT_OK(ctx, clai_tensor_view(v, &vv, 1, vvs, vvst, 7));
  assert_int_equal(clai_tensor_offset(vv), 12);
  expect_view_f32(ctx, "view of a view", vv, h, 1, vvs, vvst, 12);
  /* Stride 0 repeats an element. */
  const int64_t zs[2] = {4, 3}, zst[2] = {0, 33};
  CLAIT_OK(ctx, clai_tensor_view(a, &z, 2, zs, zst, 1));
  expect_view_f32(ctx, "stride-0 view", z, h, 2, zs, zst, 1);
  /* The very last element is addressable. */
  const int64_t one = 1, unit = 1;
  CLAIT_OK(ctx, clai_tensor_view(a, &last, 1, &one, &unit, 99));
  expect_view_f32(ctx, "last element", last, h, 1, &one, &unit, 99);

  /* Everything else is refused: one element past the end, negative strides or offsets. */
  clai_tensor *bad = NULL;
  const int64_t s10[1] = {10}, st10[1] = {10}, stneg[1] = {-1};
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside", clai_tensor_view(a, &bad, 1, &one, &unit, 100));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside", clai_tensor_view(a, &bad, 1, &one, &unit, 200));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside", clai_tensor_view(a, &bad, 1, s10, st10, 10));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside", clai_tensor_view(a, &bad, 1, &N, &unit, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside", clai_tensor_view(v, &bad, 1, vvs, vvst, 80));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "negative", clai_tensor_view(a, &bad, 1, s10, stneg, 50));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "offset", clai_tensor_view(a, &bad, 1, &one, &unit, -1));
  assert_null(bad);

  /* The bound is the tensor's own size, not whatever the allocator rounded it up to. */
  clai_tensor *small = mk1(ctx, CLAI_DTYPE_F32, 7);
  const int64_t seven = 7;
  CLAIT_OK(ctx, clai_tensor_view(small, &bad, 1, &seven, &unit, 0));
  clai_tensor_free(bad);
  bad = NULL;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside", clai_tensor_view(small, &bad, 1, &seven, &unit, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside", clai_tensor_view(small, &bad, 1, &one, &unit, 7));
  assert_null(bad);
  clai_tensor_free(small);

  clai_tensor_free(last);
  clai_tensor_free(z);
  clai_tensor_free(vv);
  clai_tensor_free(v);
  clai_tensor_free(a);
  free(h);
}

/* ---- reading and writing through views, sharing, lifetimes ---------------------------------------------- */

static void test_write_views(void **state) {
  clai_context *ctx = *state;
  clait_rng rng = {77};
  const int64_t R = 31, C = 129, n = R * C;
  float *h = xmalloc((size_t)n * 4), *got = xmalloc((size_t)n * 4);
  clait_fill(&rng, h, (size_t)n, -10.0f, 10.0f);
  clai_tensor *a = mk2(ctx, CLAI_DTYPE_F32, R, C), *rs = NULL, *sl = NULL;
  CLAIT_OK(ctx, clai_tensor_write(a, h, (size_t)n * 4));

  /* Rows 3, 7, ..., 19 and columns -50, -47, ..., -2 (79, 82, ..., 127). */
  CLAIT_OK(ctx, clai_tensor_slice(a, &rs, 0, 3, 20, 4));
  CLAIT_OK(ctx, clai_tensor_slice(rs, &sl, 1, -50, -1, 3));
  assert_int_equal(clai_tensor_dim(sl, 0), 5);
  assert_int_equal(clai_tensor_dim(sl, 1), 17);
  float patch[5 * 17];
  for (int i = 0; i < 5 * 17; i++) patch[i] = 1000.0f + (float)i;
  CLAIT_OK(ctx, clai_tensor_write(sl, patch, sizeof patch));
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 17; j++) h[(3 + 4 * i) * C + 79 + 3 * j] = patch[i * 17 + j];
  CLAIT_OK(ctx, clai_tensor_read(a, got, (size_t)n * 4));
  expect_f32_exact("base after a write into a slice", got, h, (size_t)n);
  float back[5 * 17];
  CLAIT_OK(ctx, clai_tensor_read(sl, back, sizeof back));
  expect_f32_exact("slice read back", back, patch, 5 * 17);

  /* Writing a transposed view with dense data transposes it into the base. */
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(a, &t, 0, 1));
  float *tw = xmalloc((size_t)n * 4);
  clait_fill(&rng, tw, (size_t)n, -1.0f, 1.0f);
  CLAIT_OK(ctx, clai_tensor_write(t, tw, (size_t)n * 4));
  for (int64_t i = 0; i < C; i++)
    for (int64_t j = 0; j < R; j++) h[j * C + i] = tw[i * R + j];
  CLAIT_OK(ctx, clai_tensor_read(a, got, (size_t)n * 4));
  expect_f32_exact("base after a transposed write", got, h, (size_t)n);

  /* f16 and i32 through a sliced, transposed view. */
  clai_tensor *hb = mk2(ctx, CLAI_DTYPE_F16, 7, 31), *hs = NULL, *ht = NULL;
  uint16_t hh[217], hg[217], hp[7 * 10];
  for (int i = 0; i < 217; i++) hh[i] = random_finite_half(&rng);
  CLAIT_OK(ctx, clai_tensor_write(hb, hh, sizeof hh));
  CLAIT_OK(ctx, clai_tensor_slice(hb, &hs, 1, 1, 31, 3)); /* [7, 10] */
  CLAIT_OK(ctx, clai_tensor_transpose(hs, &ht, 0, 1));    /* [10, 7] */
  for (int i = 0; i < 70; i++) hp[i] = random_finite_half(&rng);
  CLAIT_OK(ctx, clai_tensor_write(ht, hp, sizeof hp));
  for (int i = 0; i < 10; i++)
    for (int j = 0; j < 7; j++) hh[j * 31 + 1 + 3 * i] = hp[i * 7 + j];
  CLAIT_OK(ctx, clai_tensor_read(hb, hg, sizeof hg));
  expect_f16_exact("f16 base after a strided write", hg, hh, 217);

  clai_tensor *ib = mk1(ctx, CLAI_DTYPE_I32, 129), *is = NULL;
  int32_t ih[129], ig[129], ip[43];
  for (int i = 0; i < 129; i++) ih[i] = -i;
  for (int i = 0; i < 43; i++) ip[i] = 100000 + i;
  CLAIT_OK(ctx, clai_tensor_write(ib, ih, sizeof ih));
  CLAIT_OK(ctx, clai_tensor_slice(ib, &is, 0, 2, 129, 3));
  assert_int_equal(clai_tensor_dim(is, 0), 43);
  CLAIT_OK(ctx, clai_tensor_write(is, ip, sizeof ip));
  for (int i = 0; i < 43; i++) ih[2 + 3 * i] = ip[i];
  CLAIT_OK(ctx, clai_tensor_read(ib, ig, sizeof ig));
  expect_i32_exact("i32 base after a strided write", ig, ih, 129);

  clai_tensor_free(is);
  clai_tensor_free(ib);
  clai_tensor_free(ht);
  clai_tensor_free(hs);
  clai_tensor_free(hb);
  clai_tensor_free(t);
  clai_tensor_free(sl);
  clai_tensor_free(rs);
  clai_tensor_free(a);
  free(tw);
  free(h);
  free(got);
}

static void test_views_share(void **state) {
  clai_context *ctx = *state;
  clai_context_stats s0, s1;
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s0));
  clai_tensor *a = mk2(ctx, CLAI_DTYPE_F32, 7, 31);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s1));
  uint64_t one_buffer = s1.bytes_in_use - s0.bytes_in_use;
  assert_true(one_buffer >= 7 * 31 * 4);
  clai_tensor *t = NULL, *s = NULL, *r = NULL, *e = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(a, &t, 0, 1));
  CLAIT_OK(ctx, clai_tensor_slice(a, &s, 1, 5, 12, 1));
  CLAIT_OK(ctx, clai_tensor_reshape(a, &r, 1, (const int64_t[]){217}));
  CLAIT_OK(ctx, clai_tensor_expand(s, &e, 3, (const int64_t[]){2, 7, 7}));
  /* Views allocate nothing. */
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s1));
  assert_int_equal(s1.bytes_in_use - s0.bytes_in_use, one_buffer);

  float h[217], g[217];
  for (int i = 0; i < 217; i++) h[i] = (float)(i * 3) - 100.0f;
  CLAIT_OK(ctx, clai_tensor_write(a, h, sizeof h));
  CLAIT_OK(ctx, clai_tensor_read(r, g, sizeof g));
  expect_f32_exact("reshape sees the base's write", g, h, 217);
  CLAIT_OK(ctx, clai_tensor_read(t, g, sizeof g));
  for (int i = 0; i < 31; i++)
    for (int j = 0; j < 7; j++) assert_true(g[i * 7 + j] == h[j * 31 + i]);
  /* An op on the base (asynchronous) is seen by a later read of the view. */
  CLAIT_OK(ctx, clai_fill(ctx, a, 0.25));
  float gs[49];
  CLAIT_OK(ctx, clai_tensor_read(s, gs, 7 * 7 * 4));
  for (int i = 0; i < 49; i++) assert_true(gs[i] == 0.25f);
  /* A write through one view is seen by the base and by the other views. */
  float w[49];
  for (int i = 0; i < 49; i++) w[i] = (float)i;
  CLAIT_OK(ctx, clai_tensor_write(s, w, sizeof w));
  CLAIT_OK(ctx, clai_tensor_read(a, g, sizeof g));
  for (int i = 0; i < 7; i++)
    for (int j = 0; j < 31; j++) assert_true(g[i * 31 + j] == (j >= 5 && j < 12 ? w[i * 7 + j - 5] : 0.25f));
  float ge[98];
  CLAIT_OK(ctx, clai_tensor_read(e, ge, sizeof ge));
  for (int i = 0; i < 98; i++) assert_true(ge[i] == w[i % 49]);
  clai_tensor_free(e);
  clai_tensor_free(r);
  clai_tensor_free(s);
  clai_tensor_free(t);
  clai_tensor_free(a);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s1));
  assert_int_equal(s1.bytes_in_use, s0.bytes_in_use);
}

static void test_lifetimes(void **state) {
  clai_context *ctx = *state;
  clai_context_stats s0, s1;
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s0));
  float *h;
  const int64_t shape[2] = {31, 7};
  clai_tensor *a = iota_tensor(ctx, 2, shape, &h), *v = NULL;
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s1));
  uint64_t in_use = s1.bytes_in_use;
  assert_true(in_use > s0.bytes_in_use);

  /* Freeing a view leaves the base usable. */
  CLAIT_OK(ctx, clai_tensor_slice(a, &v, 0, 2, 9, 1));
  clai_tensor_free(v);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s1));
  assert_int_equal(s1.bytes_in_use, in_use);
  float g[217];
  CLAIT_OK(ctx, clai_tensor_read(a, g, sizeof g));
  expect_f32_exact("base after its view was freed", g, h, 217);
  h[0] = -5.0f;
  CLAIT_OK(ctx, clai_tensor_write(a, h, 217 * 4));
  CLAIT_OK(ctx, clai_fill(ctx, a, 1.0)); /* and ops still run on it */
  CLAIT_OK(ctx, clai_tensor_read(a, g, sizeof g));
  for (int i = 0; i < 217; i++) assert_true(g[i] == 1.0f);
  CLAIT_OK(ctx, clai_tensor_write(a, h, 217 * 4));

  /* Freeing the base first leaves the view usable; the buffer stays in use until the view goes. */
  clai_tensor *t = NULL, *tv = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(a, &t, 0, 1));
  clai_tensor_free(a);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s1));
  assert_int_equal(s1.bytes_in_use, in_use);
  /* Allocate and fill another tensor of the same size: it must not get the view's buffer. */
  clai_tensor *other = mk2(ctx, CLAI_DTYPE_F32, 31, 7);
  CLAIT_OK(ctx, clai_fill(ctx, other, -9.0));
  CLAIT_OK(ctx, clai_tensor_read(t, g, sizeof g));
  for (int i = 0; i < 7; i++)
    for (int j = 0; j < 31; j++) assert_true(g[i * 31 + j] == h[j * 7 + i]);
  /* A view of the orphaned view, and writes through it. */
  CLAIT_OK(ctx, clai_tensor_slice(t, &tv, 1, 0, 31, 5));
  float w[7 * 7];
  for (int i = 0; i < 49; i++) w[i] = 50.0f + (float)i;
  CLAIT_OK(ctx, clai_tensor_write(tv, w, sizeof w));
  clai_tensor_free(t);
  float gw[49];
  CLAIT_OK(ctx, clai_tensor_read(tv, gw, sizeof gw));
  expect_f32_exact("view of a view after both parents were freed", gw, w, 49);
  clai_tensor_free(tv);
  clai_tensor_free(other);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s1));
  assert_int_equal(s1.bytes_in_use, s0.bytes_in_use);
  free(h);
}

/* ---- clai_copy and clai_fill ---------------------------------------------------------------------------- */

/* Host data of n elements of dtype dt, chosen so every conversion is interesting but in range. */
static void *make_src(clai_dtype dt, size_t n, clait_rng *r) {
  if (dt == CLAI_DTYPE_F32) {
    float *p = xmalloc(n * 4);
    clait_fill(r, p, n, -300.0f, 300.0f);
    const float sp[] = {-2.9f, 2.9f, -0.5f, 0.5f, 0.0f, -0.0f, 65519.0f, -70000.0f, 1e9f, 1.0f / 3.0f, 2.5f, -3.5f};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0] && i < n; i++) p[i] = sp[i];
    return p;
  }
  if (dt == CLAI_DTYPE_F16) {
    uint16_t *p = xmalloc(n * 2);
    for (size_t i = 0; i < n; i++) p[i] = random_finite_half(r);
    const uint16_t sp[] = {0x7bff, 0xfbff, 0x0001, 0x8000, 0x3e00 /* 1.5 */, 0xbe00 /* -1.5 */, 0x3bff};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0] && i < n; i++) p[i] = sp[i];
    return p;
  }
  int32_t *p = xmalloc(n * 4);
  for (size_t i = 0; i < n; i++) p[i] = (int32_t)(clait_next(r) % 200001) - 100000;
  const int32_t sp[] = {0, -1, 65504, 65520, -65519, 16777217, INT32_MAX, INT32_MIN, 2049};
  for (size_t i = 0; i < sizeof sp / sizeof sp[0] && i < n; i++) p[i] = sp[i];
  return p;
}

/* The host reference of one converted element, as raw bits of the destination dtype. */
static void host_convert(clai_dtype sd, const void *src, size_t i, clai_dtype dd, void *dst, size_t j) {
  float f = 0;
  int32_t v = 0;
  int is_int = sd == CLAI_DTYPE_I32;
  if (sd == CLAI_DTYPE_F32) f = ((const float *)src)[i];
  else if (sd == CLAI_DTYPE_F16) f = clait_f16_to_f32(((const uint16_t *)src)[i]);
  else v = ((const int32_t *)src)[i];
  if (dd == CLAI_DTYPE_F32) ((float *)dst)[j] = is_int ? (float)v : f;
  else if (dd == CLAI_DTYPE_F16) ((uint16_t *)dst)[j] = clait_f32_to_f16(is_int ? (float)v : f);
  else ((int32_t *)dst)[j] = is_int ? v : (int32_t)f; /* C's cast truncates toward zero */
}

static void expect_dtype_exact(const char *what, clai_dtype dt, const void *got, const void *want, size_t n) {
  if (dt == CLAI_DTYPE_F32) expect_f32_exact(what, got, want, n);
  else if (dt == CLAI_DTYPE_F16) expect_f16_exact(what, got, want, n);
  else expect_i32_exact(what, got, want, n);
}

static void test_copy_dtypes(void **state) {
  clai_context *ctx = *state;
  clait_rng rng = {2024};
  const clai_dtype dts[3] = {CLAI_DTYPE_F32, CLAI_DTYPE_F16, CLAI_DTYPE_I32};
  const int64_t R = 7, C = 31;
  const size_t n = (size_t)(R * C);
  /* The reference conversions themselves, by hand. */
  int32_t iv;
  float fv = -2.9f;
  host_convert(CLAI_DTYPE_F32, &fv, 0, CLAI_DTYPE_I32, &iv, 0);
  assert_int_equal(iv, -2);
  for (int si = 0; si < 3; si++) {
    for (int di = 0; di < 3; di++) {
      clai_dtype sd = dts[si], dd = dts[di];
      size_t ses = clai_dtype_size(sd), des = clai_dtype_size(dd);
      void *src = make_src(sd, n, &rng), *want = xmalloc(n * des), *got = xmalloc(n * des);
      char what[64];
      /* Dense to dense. */
      clai_tensor *a = mk2(ctx, sd, R, C), *b = mk2(ctx, dd, R, C);
      CLAIT_OK(ctx, clai_tensor_write(a, src, n * ses));
      CLAIT_OK(ctx, clai_copy(ctx, b, a));
      for (size_t i = 0; i < n; i++) host_convert(sd, src, i, dd, want, i);
      CLAIT_OK(ctx, clai_tensor_read(b, got, n * des));
      snprintf(what, sizeof what, "copy %s -> %s", clai_dtype_name(sd), clai_dtype_name(dd));
      expect_dtype_exact(what, dd, got, want, n);
      /* Into a transposed destination: base [C, R] seen as [R, C]. */
      clai_tensor *bb = mk2(ctx, dd, C, R), *bt = NULL;
      CLAIT_OK(ctx, clai_tensor_transpose(bb, &bt, 0, 1));
      CLAIT_OK(ctx, clai_copy(ctx, bt, a));
      for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++) host_convert(sd, src, (size_t)(i * C + j), dd, want, (size_t)(j * R + i));
      CLAIT_OK(ctx, clai_tensor_read(bb, got, n * des));
      snprintf(what, sizeof what, "copy %s -> transposed %s", clai_dtype_name(sd), clai_dtype_name(dd));
      expect_dtype_exact(what, dd, got, want, n);
      clai_tensor_free(bt);
      clai_tensor_free(bb);
      clai_tensor_free(a);
      clai_tensor_free(b);
      free(src);
      free(want);
      free(got);
    }
  }
  /* f32 -> i32 truncates toward zero, explicitly. */
  const float tf[8] = {-2.9f, 2.9f, -0.5f, 0.99f, -1.0f, 7.0f, -123456.7f, 1e9f};
  const int32_t ti[8] = {-2, 2, 0, 0, -1, 7, -123456, 1000000000};
  clai_tensor *f = mk1(ctx, CLAI_DTYPE_F32, 8), *i = mk1(ctx, CLAI_DTYPE_I32, 8);
  int32_t gi[8];
  CLAIT_OK(ctx, clai_tensor_write(f, tf, sizeof tf));
  CLAIT_OK(ctx, clai_copy(ctx, i, f));
  CLAIT_OK(ctx, clai_tensor_read(i, gi, sizeof gi));
  expect_i32_exact("f32 -> i32 truncation", gi, ti, 8);
  clai_tensor_free(f);
  clai_tensor_free(i);
}

/* Dense copies of f32 and i32 too large for the cache take non-temporal stores on POCL's CPU devices (source
 * and destination together over a quarter of the cache the device reports: lib/op-copy.c), with scalar
 * stores up to the destination's first 32-byte boundary. Such a copy, at a destination offset of 0 and of
 * 3 elements and a source offset of 5, n not a multiple of 8 or of a work-item's run: every element, and
 * nothing written around the destination view. Elsewhere (and in small mode, a simulator, where the stores
 * are never non-temporal) the same checks on 100003 elements. */
static void test_copy_large(void **state) {
  clai_context *ctx = *state;
  const uint64_t cache = ctx->caps.cache_bytes;
  int64_t n = 100003;
  if (ctx->caps.nt_store && cache > 0 && !clait_small()) {
    n = (int64_t)(cache / 32) + 1237; /* n * 8 bytes > cache / 4 */
    if (n > ((int64_t)1 << 26)) n = ((int64_t)1 << 26) + 1237; /* a device reporting over 2 GB: 256 MB */
  }
  print_message("# copies of %lld elements (device cache %llu bytes, non-temporal stores %s)\n", (long long)n,
                (unsigned long long)cache, ctx->caps.nt_store && (double)n * 8.0 > (double)cache / 4.0 ? "on" : "off");
  const int64_t pad = 16, nb = n + pad;
  uint32_t *src = xmalloc((size_t)nb * 4), *got = xmalloc((size_t)nb * 4), *want = xmalloc((size_t)nb * 4);
  for (int d = 0; d < 2; d++) {
    const clai_dtype dt = d ? CLAI_DTYPE_I32 : CLAI_DTYPE_F32;
    for (int64_t i = 0; i < nb; i++) { /* f32: finite values, so that no NaN pattern could be quieted */
      const float f = (float)(i % 1000003) * 0.5f - 7.25f;
      if (d) src[i] = (uint32_t)i * 2654435761u;
      else memcpy(&src[i], &f, 4);
    }
    for (int64_t doff = 0; doff <= 3; doff += 3) {
      clai_tensor *sb = mk1(ctx, dt, nb), *db = mk1(ctx, dt, nb), *sv = NULL, *dv = NULL;
      const int64_t one = 1;
      CLAIT_OK(ctx, clai_tensor_write(sb, src, (size_t)nb * 4));
      CLAIT_OK(ctx, clai_fill(ctx, db, -777.0));
      CLAIT_OK(ctx, clai_tensor_view(sb, &sv, 1, &n, &one, 5));
      CLAIT_OK(ctx, clai_tensor_view(db, &dv, 1, &n, &one, doff));
      CLAIT_OK(ctx, clai_copy(ctx, dv, sv));
      CLAIT_OK(ctx, clai_tensor_read(db, got, (size_t)nb * 4));
      const float fs = -777.0f;
      uint32_t sentinel;
      if (d == 0) memcpy(&sentinel, &fs, 4);
      else sentinel = (uint32_t)-777;
      for (int64_t i = 0; i < nb; i++) want[i] = i >= doff && i < doff + n ? src[i - doff + 5] : sentinel;
      int64_t bad = -1;
      for (int64_t i = 0; i < nb && bad < 0; i++)
        if (got[i] != want[i]) bad = i;
      if (bad >= 0)
        fail_msg("copy of %lld %s, destination offset %lld: element %lld of the buffer is 0x%08x, expected 0x%08x",
                 (long long)n, clai_dtype_name(dt), (long long)doff, (long long)bad, got[bad], want[bad]);
      clai_tensor_free(sv), clai_tensor_free(dv), clai_tensor_free(sb), clai_tensor_free(db);
    }
  }
  free(src), free(got), free(want);
}

static void test_copy_broadcast_strided(void **state) {
  clai_context *ctx = *state;
  clait_rng rng = {99};
  /* Destination: f16 base [9, 31] seen transposed as [31, 9]. */
  clai_tensor *base = mk2(ctx, CLAI_DTYPE_F16, 9, 31), *dt = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(base, &dt, 0, 1));
  uint16_t got[279], want[279];
  /* A column [31, 1] of f32 broadcast along the rows. */
  float col[31], row[9];
  clait_fill(&rng, col, 31, -50.0f, 50.0f);
  clait_fill(&rng, row, 9, -50.0f, 50.0f);
  clai_tensor *c = mk2(ctx, CLAI_DTYPE_F32, 31, 1), *r = mk1(ctx, CLAI_DTYPE_F32, 9);
  CLAIT_OK(ctx, clai_tensor_write(c, col, sizeof col));
  CLAIT_OK(ctx, clai_tensor_write(r, row, sizeof row));
  CLAIT_OK(ctx, clai_copy(ctx, dt, c));
  for (int j = 0; j < 9; j++)
    for (int i = 0; i < 31; i++) want[j * 31 + i] = clait_f32_to_f16(col[i]);
  CLAIT_OK(ctx, clai_tensor_read(base, got, sizeof got));
  expect_f16_exact("column broadcast into a transposed f16 destination", got, want, 279);
  /* A row [9] broadcast along the columns (missing leading dim). */
  CLAIT_OK(ctx, clai_copy(ctx, dt, r));
  for (int j = 0; j < 9; j++)
    for (int i = 0; i < 31; i++) want[j * 31 + i] = clait_f32_to_f16(row[j]);
  CLAIT_OK(ctx, clai_tensor_read(base, got, sizeof got));
  expect_f16_exact("row broadcast into a transposed f16 destination", got, want, 279);
  /* An already expanded (stride-0) source behaves the same. */
  clai_tensor *ce = NULL;
  CLAIT_OK(ctx, clai_tensor_expand(c, &ce, 2, (const int64_t[]){31, 9}));
  CLAIT_OK(ctx, clai_copy(ctx, dt, ce));
  for (int j = 0; j < 9; j++)
    for (int i = 0; i < 31; i++) want[j * 31 + i] = clait_f32_to_f16(col[i]);
  CLAIT_OK(ctx, clai_tensor_read(base, got, sizeof got));
  expect_f16_exact("expanded source", got, want, 279);

  /* A 0-d i32 scalar into a doubly sliced f32 view: only those elements change. */
  const int64_t R = 31, C = 129, n = R * C;
  float *h = xmalloc((size_t)n * 4), *g = xmalloc((size_t)n * 4);
  clait_fill(&rng, h, (size_t)n, -1.0f, 1.0f);
  clai_tensor *m = mk2(ctx, CLAI_DTYPE_F32, R, C), *s1 = NULL, *s2 = NULL, *sc = clait_tensor(ctx, CLAI_DTYPE_I32, 0, NULL);
  CLAIT_OK(ctx, clai_tensor_write(m, h, (size_t)n * 4));
  CLAIT_OK(ctx, clai_tensor_slice(m, &s1, 1, 3, -5, 4));   /* cols 3, 7, ..., 123 */
  CLAIT_OK(ctx, clai_tensor_slice(s1, &s2, 0, -20, 1000, 3)); /* rows 11, 14, ..., 29 */
  const int32_t k = 42;
  CLAIT_OK(ctx, clai_tensor_write(sc, &k, 4));
  CLAIT_OK(ctx, clai_copy(ctx, s2, sc));
  for (int64_t i = 11; i < R; i += 3)
    for (int64_t j = 3; j < C - 5; j += 4) h[i * C + j] = 42.0f;
  CLAIT_OK(ctx, clai_tensor_read(m, g, (size_t)n * 4));
  expect_f32_exact("scalar into a strided slice", g, h, (size_t)n);

  /* A permuted (non-contiguous) i32 source into a dense f32 destination. */
  const int64_t s3[3] = {3, 5, 7};
  int32_t ih[105];
  for (int i = 0; i < 105; i++) ih[i] = i * 1000 - 50000;
  clai_tensor *i3 = clait_tensor(ctx, CLAI_DTYPE_I32, 3, s3), *ip = NULL;
  CLAIT_OK(ctx, clai_tensor_write(i3, ih, sizeof ih));
  const int perm[3] = {2, 0, 1};
  CLAIT_OK(ctx, clai_tensor_permute(i3, &ip, perm)); /* [7, 3, 5] */
  clai_tensor *fd = clait_tensor(ctx, CLAI_DTYPE_F32, 3, (const int64_t[]){7, 3, 5});
  CLAIT_OK(ctx, clai_copy(ctx, fd, ip));
  float fg[105];
  CLAIT_OK(ctx, clai_tensor_read(fd, fg, sizeof fg));
  for (int a = 0; a < 7; a++)
    for (int b = 0; b < 3; b++)
      for (int cc = 0; cc < 5; cc++) assert_true(fg[(a * 3 + b) * 5 + cc] == (float)ih[(b * 5 + cc) * 7 + a]);

  /* Shapes that do not broadcast, and overlapping operands, are refused and change nothing. */
  clai_tensor *five = mk1(ctx, CLAI_DTYPE_F32, 5);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "broadcast", clai_copy(ctx, dt, five));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "broadcast", clai_copy(ctx, r, dt));
  clai_tensor *lo = NULL, *hi = NULL, *lo2 = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(m, &lo, 1, 0, 10, 1));
  CLAIT_OK(ctx, clai_tensor_slice(m, &hi, 1, 5, 15, 1));
  CLAIT_OK(ctx, clai_tensor_slice(m, &lo2, 1, 0, 10, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlap", clai_copy(ctx, hi, lo));
  /* Exactly the same elements is allowed (a no-op). */
  CLAIT_OK(ctx, clai_copy(ctx, lo2, lo));
  CLAIT_OK(ctx, clai_tensor_read(m, g, (size_t)n * 4));
  expect_f32_exact("after a refused and an exact-alias copy", g, h, (size_t)n);

  clai_tensor_free(lo);
  clai_tensor_free(hi);
  clai_tensor_free(lo2);
  clai_tensor_free(five);
  clai_tensor_free(fd);
  clai_tensor_free(ip);
  clai_tensor_free(i3);
  clai_tensor_free(sc);
  clai_tensor_free(s2);
  clai_tensor_free(s1);
  clai_tensor_free(m);
  clai_tensor_free(ce);
  clai_tensor_free(c);
  clai_tensor_free(r);
  clai_tensor_free(dt);
  clai_tensor_free(base);
  free(h);
  free(g);
}

static void test_fill(void **state) {
  clai_context *ctx = *state;
  /* f32 */
  clai_tensor *f = mk2(ctx, CLAI_DTYPE_F32, 129, 7);
  float fg[129 * 7];
  const double fv[3] = {3.25, -0.1, 1e30};
  for (int k = 0; k < 3; k++) {
    CLAIT_OK(ctx, clai_fill(ctx, f, fv[k]));
    CLAIT_OK(ctx, clai_tensor_read(f, fg, sizeof fg));
    const float w = (float)fv[k];
    for (int i = 0; i < 129 * 7; i++)
      if (memcmp(&fg[i], &w, 4) != 0) fail_msg("fill f32 %g: element %d is %.9g", fv[k], i, (double)fg[i]);
  }
  /* f16: rounded to nearest even, overflowing to inf. */
  clai_tensor *h = mk2(ctx, CLAI_DTYPE_F16, 31, 7);
  uint16_t hg[217];
  const double hv[6] = {0.1, -65519.0, 70000.0, 1.0 + 1.0 / 2048, 1e-8, -3.0};
  const uint16_t hw[6] = {0x2e66, 0xfbff, 0x7c00, 0x3c00, 0x0000, 0xc200};
  for (int k = 0; k < 6; k++) {
    assert_int_equal(clait_f32_to_f16((float)hv[k]), hw[k]);
    CLAIT_OK(ctx, clai_fill(ctx, h, hv[k]));
    CLAIT_OK(ctx, clai_tensor_read(h, hg, sizeof hg));
    for (int i = 0; i < 217; i++)
      if (hg[i] != hw[k]) fail_msg("fill f16 %g: element %d is 0x%04x, expected 0x%04x", hv[k], i, hg[i], hw[k]);
  }
  /* i32: truncated toward zero; values that do not fit are refused and change nothing. */
  clai_tensor *i = mk1(ctx, CLAI_DTYPE_I32, 31);
  int32_t ig[31];
  const double iv[6] = {-7, 2.9, -2.9, 2147483647.0, -2147483648.0, 0.5};
  const int32_t iw[6] = {-7, 2, -2, INT32_MAX, INT32_MIN, 0};
  for (int k = 0; k < 6; k++) {
    CLAIT_OK(ctx, clai_fill(ctx, i, iv[k]));
    CLAIT_OK(ctx, clai_tensor_read(i, ig, sizeof ig));
    for (int j = 0; j < 31; j++)
      if (ig[j] != iw[k]) fail_msg("fill i32 %g: element %d is %d, expected %d", iv[k], j, ig[j], iw[k]);
  }
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "does not fit", clai_fill(ctx, i, 3e9));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "does not fit", clai_fill(ctx, i, -2147483649.0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "does not fit", clai_fill(ctx, i, NAN));
  CLAIT_OK(ctx, clai_tensor_read(i, ig, sizeof ig));
  for (int j = 0; j < 31; j++) assert_int_equal(ig[j], 0);

  /* A strided view (columns 1, 8, ..., 99 of [31, 129], transposed): only those elements change. */
  clait_rng rng = {5};
  const int64_t R = 31, C = 129, n = R * C;
  float *b = xmalloc((size_t)n * 4), *g = xmalloc((size_t)n * 4);
  clait_fill(&rng, b, (size_t)n, -1.0f, 1.0f);
  clai_tensor *m = mk2(ctx, CLAI_DTYPE_F32, R, C), *s = NULL, *st = NULL;
  CLAIT_OK(ctx, clai_tensor_write(m, b, (size_t)n * 4));
  CLAIT_OK(ctx, clai_tensor_slice(m, &s, 1, 1, 100, 7));
  CLAIT_OK(ctx, clai_tensor_transpose(s, &st, 0, 1));
  CLAIT_OK(ctx, clai_fill(ctx, st, 9.5));
  for (int64_t r = 0; r < R; r++)
    for (int64_t c = 1; c < 100; c += 7) b[r * C + c] = 9.5f;
  CLAIT_OK(ctx, clai_tensor_read(m, g, (size_t)n * 4));
  expect_f32_exact("fill of a strided view", g, b, (size_t)n);
  /* The same for f16 and i32 views. */
  clai_tensor *hs = NULL, *is = NULL;
  CLAIT_OK(ctx, clai_fill(ctx, h, 0.0));
  CLAIT_OK(ctx, clai_tensor_slice(h, &hs, 0, -10, 31, 2)); /* rows 21, 23, ..., 29 */
  CLAIT_OK(ctx, clai_fill(ctx, hs, -0.5));
  CLAIT_OK(ctx, clai_tensor_read(h, hg, sizeof hg));
  for (int r = 0; r < 31; r++)
    for (int c = 0; c < 7; c++) assert_int_equal(hg[r * 7 + c], r >= 21 && (r - 21) % 2 == 0 ? 0xb800 : 0x0000);
  CLAIT_OK(ctx, clai_tensor_slice(i, &is, 0, 0, 31, 10)); /* 0, 10, 20, 30 */
  CLAIT_OK(ctx, clai_fill(ctx, is, 123));
  CLAIT_OK(ctx, clai_tensor_read(i, ig, sizeof ig));
  for (int j = 0; j < 31; j++) assert_int_equal(ig[j], j % 10 == 0 ? 123 : 0);

  clai_tensor_free(is);
  clai_tensor_free(hs);
  clai_tensor_free(st);
  clai_tensor_free(s);
  clai_tensor_free(m);
  clai_tensor_free(i);
  clai_tensor_free(h);
  clai_tensor_free(f);
  free(b);
  free(g);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clait_setup, clait_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_roundtrip_f32),
      T(test_roundtrip_i32),
      T(test_roundtrip_f16_all_patterns),
      T(test_f32_to_f16_rounding),
      T(test_queries),
      T(test_scalar),
      T(test_zero_size),
      T(test_zero_size_huge_dims),
      T(test_transpose),
      T(test_permute),
      T(test_slice),
      T(test_reshape),
      T(test_expand),
      T(test_view_explicit),
      T(test_write_views),
      T(test_views_share),
      T(test_lifetimes),
      T(test_copy_dtypes),
      T(test_copy_broadcast_strided),
      T(test_copy_large),
      T(test_fill),
  };
  return CLAIT_MAIN("tensor", tests, 1);
}
