/* test-errors.c - every bad input gets a negative status, a message in clai_errmsg() that names the
 * problem, changes nothing, and leaves the context usable. */
#include <limits.h>

#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------------------------------- */

/* A dense f32 tensor holding 0, 1, 2, ... (times `scale`). */
static clai_tensor *mk_iota(clai_context *ctx, int ndim, const int64_t *shape, float scale) {
  clai_tensor *t = clait_tensor(ctx, CLAI_DTYPE_F32, ndim, shape);
  size_t n = (size_t)clai_tensor_numel(t);
  float *p = malloc((n > 0 ? n : 1) * sizeof *p);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) p[i] = scale * (float)i;
  CLAIT_OK(ctx, clai_tensor_write(t, p, n * sizeof *p));
  free(p);
  return t;
}

/* Reads an f32 tensor and checks it still holds scale * (0, 1, 2, ...). */
static void expect_iota(clai_context *ctx, clai_tensor *t, float scale) {
  size_t n = (size_t)clai_tensor_numel(t);
  float *p = malloc((n > 0 ? n : 1) * sizeof *p);
  assert_non_null(p);
  CLAIT_OK(ctx, clai_tensor_read(t, p, n * sizeof *p));
  for (size_t i = 0; i < n; i++)
    if (p[i] != scale * (float)i) fail_msg("element %zu is %g, expected %g (changed by a failed call?)", i, p[i], scale * (float)i);
  free(p);
}

/* After the error cases: a small add and a small matmul on ctx must still give the right answer. */
static void expect_usable(clai_context *ctx) {
  const int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s22[2] = {2, 2};
  const float av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {7, 8, 9, 10, 11, 12};
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s23), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s23);
  clai_tensor *sum = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s23);
  clai_tensor *bt = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s32), *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s22);
  CLAIT_OK(ctx, clai_tensor_write(a, av, sizeof av));
  CLAIT_OK(ctx, clai_tensor_write(b, bv, sizeof bv));
  CLAIT_OK(ctx, clai_tensor_write(bt, bv, sizeof bv));
  CLAIT_OK(ctx, clai_binary(ctx, CLAI_ADD, sum, a, b));
  CLAIT_OK(ctx, clai_matmul(ctx, c, a, 0, bt, 0, 1.0f, 0.0f));
  float got[6];
  CLAIT_OK(ctx, clai_tensor_read(sum, got, sizeof got));
  for (int i = 0; i < 6; i++) assert_float_equal(got[i], av[i] + bv[i], 0.0f);
  /* [1 2 3; 4 5 6] x [7 8; 9 10; 11 12] = [58 64; 139 154] */
  const float want[4] = {58, 64, 139, 154};
  CLAIT_OK(ctx, clai_tensor_read(c, got, 4 * sizeof got[0]));
  for (int i = 0; i < 4; i++) assert_float_equal(got[i], want[i], 1e-4f);
  CLAIT_OK(ctx, clai_sync(ctx));
  clai_tensor_free(a);
  clai_tensor_free(b);
  clai_tensor_free(sum);
  clai_tensor_free(bt);
  clai_tensor_free(c);
}

/* ---- status table -------------------------------------------------------------------------------------- */

static void test_status_names(void **state) {
  (void)state;
  static const clai_status all[] = {
#define X_(name, value, text) CLAI_##name,
      CLAI_STATUS_MAP(X_)
#undef X_
  };
  static const int values[] = {
#define X_(name, value, text) value,
      CLAI_STATUS_MAP(X_)
#undef X_
  };
  static const char *const names[] = {
#define X_(name, value, text) "CLAI_" #name,
      CLAI_STATUS_MAP(X_)
#undef X_
  };
  static const char *const texts[] = {
#define X_(name, value, text) text,
      CLAI_STATUS_MAP(X_)
#undef X_
  };
  const size_t n = sizeof all / sizeof all[0];
  assert_true(n >= 14);
  int min = 0;
  for (size_t i = 0; i < n; i++) {
    assert_int_equal((int)all[i], values[i]);
    if (values[i] < min) min = values[i];
    const char *name = clai_status_name(all[i]), *text = clai_strerror(all[i]);
    assert_non_null(name);
    assert_non_null(text);
    assert_string_equal(name, names[i]);
    assert_string_equal(text, texts[i]);
    assert_true(strncmp(name, "CLAI_", 5) == 0);
    assert_true(strlen(name) > 5);
    assert_true(text[0] != '\0');
    assert_string_not_equal(name, "CLAI_UNKNOWN");
    if (all[i] != CLAI_OK) assert_true((int)all[i] < 0);
    for (size_t j = 0; j < i; j++) {
      assert_int_not_equal(values[i], values[j]);
      assert_string_not_equal(name, clai_status_name(all[j]));
      assert_string_not_equal(text, clai_strerror(all[j]));
    }
  }
  assert_string_equal(clai_status_name(CLAI_OK), "CLAI_OK");
  assert_string_equal(clai_status_name(CLAI_E_SHAPE), "CLAI_E_SHAPE");
  /* Values that are no status. */
  const int unknown[] = {1, 7, min - 1, -1000, INT_MAX, INT_MIN};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    assert_string_equal(clai_status_name((clai_status)unknown[i]), "CLAI_UNKNOWN");
    const char *text = clai_strerror((clai_status)unknown[i]);
    assert_non_null(text);
    assert_true(text[0] != '\0');
    for (size_t j = 0; j < n; j++) assert_string_not_equal(text, texts[j]);
  }
  /* dtype helpers on a value that is no dtype. */
  assert_int_equal(clai_dtype_size((clai_dtype)8), 0);
  assert_int_equal(clai_dtype_size((clai_dtype)-1), 0);
  assert_string_equal(clai_dtype_name((clai_dtype)8), "?");
  assert_string_equal(clai_dtype_name(CLAI_DTYPE_F16), "f16");
}

/* ---- NULL pointers ------------------------------------------------------------------------------------- */

static void test_null_context(void **state) {
  (void)state;
  const int64_t s[1] = {4};
  clai_tensor *t = (clai_tensor *)&t; /* not NULL: a failure must set it to NULL */
  assert_int_equal(clai_tensor_init(NULL, &t, CLAI_DTYPE_F32, 1, s), CLAI_E_INVALID_ARG);
  assert_null(t);
  assert_int_equal(clai_binary(NULL, CLAI_ADD, NULL, NULL, NULL), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_unary(NULL, CLAI_EXP, NULL, NULL), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_unary(NULL, (clai_unary_op)99, NULL, NULL), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_binary(NULL, (clai_binary_op)99, NULL, NULL, NULL), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_affine(NULL, NULL, NULL, 1.0f, 0.0f), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_scale(NULL, NULL, NULL, 2.0f), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_add_scalar(NULL, NULL, NULL, 2.0f), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_matmul(NULL, NULL, NULL, 0, NULL, 0, 1.0f, 0.0f), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_copy(NULL, NULL, NULL), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_fill(NULL, NULL, 1.0), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_sync(NULL), CLAI_E_INVALID_ARG);
  clai_device_info info;
  clai_context_stats stats;
  assert_int_equal(clai_context_device_info(NULL, -1, &info), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_context_stats_get(NULL, &stats), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_context_device_count(NULL), 0);
  assert_null(clai_context_cache_dir(NULL));
  clai_context_trim(NULL);
  /* The message of no context is a string, not a crash. */
  assert_non_null(clai_errmsg(NULL));
  /* Freeing NULL is a no-op. */
  clai_context_free(NULL);
  clai_tensor_free(NULL);
  /* Tensor functions without a tensor (the out pointer of a view is set to NULL). */
  clai_tensor *v;
  const int64_t st[1] = {1};
  const int perm[1] = {0};
  assert_int_equal(clai_tensor_write(NULL, s, sizeof s), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_tensor_read(NULL, &info, sizeof info), CLAI_E_INVALID_ARG);
  v = (clai_tensor *)&v;
  assert_int_equal(clai_tensor_view(NULL, &v, 1, s, st, 0), CLAI_E_INVALID_ARG);
  assert_null(v);
  v = (clai_tensor *)&v;
  assert_int_equal(clai_tensor_transpose(NULL, &v, 0, 1), CLAI_E_INVALID_ARG);
  assert_null(v);
  v = (clai_tensor *)&v;
  assert_int_equal(clai_tensor_permute(NULL, &v, perm), CLAI_E_INVALID_ARG);
  assert_null(v);
  v = (clai_tensor *)&v;
  assert_int_equal(clai_tensor_slice(NULL, &v, 0, 0, 1, 1), CLAI_E_INVALID_ARG);
  assert_null(v);
  v = (clai_tensor *)&v;
  assert_int_equal(clai_tensor_reshape(NULL, &v, 1, s), CLAI_E_INVALID_ARG);
  assert_null(v);
  v = (clai_tensor *)&v;
  assert_int_equal(clai_tensor_expand(NULL, &v, 1, s), CLAI_E_INVALID_ARG);
  assert_null(v);
  assert_int_equal(clai_tensor_transpose(NULL, NULL, 0, 1), CLAI_E_INVALID_ARG);
  assert_null(clai_tensor_context(NULL));
  assert_int_equal(clai_tensor_ndim(NULL), -1);
  assert_int_equal(clai_tensor_dim(NULL, 0), -1);
  assert_int_equal(clai_tensor_stride(NULL, 0), -1);
  assert_int_equal(clai_tensor_numel(NULL), -1);
  assert_int_equal(clai_tensor_is_contiguous(NULL), 0);
  /* clai_context_init_ex without out. */
  char err[256];
  assert_int_equal(clai_context_init_ex(NULL, NULL, err, sizeof err), CLAI_E_INVALID_ARG);
  assert_non_null(strstr(err, "out is NULL"));
  assert_int_equal(clai_context_init(NULL, NULL), CLAI_E_INVALID_ARG);
}

static void test_null_args(void **state) {
  clai_context *ctx = *state;
  const int64_t s[2] = {2, 3};
  clai_tensor *x = mk_iota(ctx, 2, s, 1.0f), *y = mk_iota(ctx, 2, s, 2.0f);
  clai_tensor *sq = mk_iota(ctx, 2, (const int64_t[]){3, 3}, 1.0f);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_tensor_init(ctx, NULL, CLAI_DTYPE_F32, 2, s));
  clai_tensor *t = (clai_tensor *)&t;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "shape is NULL", clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 2, NULL));
  assert_null(t);
  /* A 0-d tensor needs no shape. */
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 0, NULL));
  assert_int_equal(clai_tensor_numel(t), 1);
  clai_tensor_free(t);

  /* Host pointers. */
  float buf[6] = {0};
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "host pointer is NULL", clai_tensor_write(x, NULL, sizeof buf));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "host pointer is NULL", clai_tensor_read(x, NULL, sizeof buf));

  /* Tensors passed to ops: the message names the argument. */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_binary(ctx, CLAI_ADD, NULL, x, y));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "a is NULL", clai_binary(ctx, CLAI_ADD, x, NULL, y));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "b is NULL", clai_binary(ctx, CLAI_ADD, x, y, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_unary(ctx, CLAI_EXP, NULL, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "x is NULL", clai_unary(ctx, CLAI_EXP, x, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "x is NULL", clai_affine(ctx, x, NULL, 2.0f, 1.0f));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_scale(ctx, NULL, x, 2.0f));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "x is NULL", clai_add_scalar(ctx, x, NULL, 2.0f));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "c is NULL", clai_matmul(ctx, NULL, sq, 0, sq, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "a is NULL", clai_matmul(ctx, sq, NULL, 0, sq, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "b is NULL", clai_matmul(ctx, sq, x, 0, NULL, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dst is NULL", clai_copy(ctx, NULL, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "src is NULL", clai_copy(ctx, x, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dst is NULL", clai_fill(ctx, NULL, 1.0));

  /* Out pointers of views, and their shape / strides / perm arrays. */
  clai_tensor *v = (clai_tensor *)&v;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_tensor_transpose(x, NULL, 0, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_tensor_slice(x, NULL, 0, 0, 1, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_tensor_reshape(x, NULL, 1, (const int64_t[]){6}));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_tensor_permute(x, NULL, (const int[]){1, 0}));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_tensor_expand(x, NULL, 2, s));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_tensor_view(x, NULL, 2, s, (const int64_t[]){3, 1}, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "perm is NULL", clai_tensor_permute(x, &v, NULL));
  assert_null(v);
  v = (clai_tensor *)&v;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "shape is NULL", clai_tensor_reshape(x, &v, 2, NULL));
  assert_null(v);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "shape is NULL", clai_tensor_expand(x, &v, 2, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "shape is NULL", clai_tensor_view(x, &v, 2, NULL, (const int64_t[]){3, 1}, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "strides is NULL", clai_tensor_view(x, &v, 2, s, NULL, 0));
  assert_null(v);

  /* Context reports. */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "info is NULL", clai_context_device_info(ctx, 0, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "stats is NULL", clai_context_stats_get(ctx, NULL));

  /* Nothing was changed by the failed calls. */
  expect_iota(ctx, x, 1.0f);
  expect_iota(ctx, y, 2.0f);
  expect_iota(ctx, sq, 1.0f);
  clai_tensor_free(x);
  clai_tensor_free(y);
  clai_tensor_free(sq);
  expect_usable(ctx);
}

/* ---- tensor creation ------------------------------------------------------------------------------------ */

static void test_tensor_init_errors(void **state) {
  clai_context *ctx = *state;
  const int64_t s[CLAI_MAX_DIMS + 1] = {2, 2, 2, 2, 2, 2, 2, 2, 2};
  clai_tensor *t = (clai_tensor *)&t;

  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "not a dtype", clai_tensor_init(ctx, &t, (clai_dtype)8, 1, s));
  assert_null(t);
  t = (clai_tensor *)&t;
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "not a dtype", clai_tensor_init(ctx, &t, (clai_dtype)-1, 1, s));
  assert_null(t);

  t = (clai_tensor *)&t;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "ndim -1", clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, -1, s));
  assert_null(t);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "ndim 9", clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, CLAI_MAX_DIMS + 1, s));
  assert_null(t);
  /* The limits themselves are fine. */
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, CLAI_MAX_DIMS, s));
  assert_int_equal(clai_tensor_numel(t), 256);
  clai_tensor_free(t);

  t = (clai_tensor *)&t;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dimension 1 is negative", clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 3, (const int64_t[]){2, -3, 4}));
  assert_null(t);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "negative", clai_tensor_init(ctx, &t, CLAI_DTYPE_I32, 1, (const int64_t[]){INT64_MIN}));
  assert_null(t);

  /* Element counts and byte sizes that do not fit 64 bits. */
  t = (clai_tensor *)&t;
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "overflows",
              clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 2, (const int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40}));
  assert_null(t);
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "overflows",
              clai_tensor_init(ctx, &t, CLAI_DTYPE_I32, 2, (const int64_t[]){INT64_MAX, 2}));
  assert_null(t);
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "overflows",
              clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 2, (const int64_t[]){(int64_t)1 << 31, (int64_t)1 << 31}));
  assert_null(t);
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "overflows",
              clai_tensor_init(ctx, &t, CLAI_DTYPE_F16, 3, (const int64_t[]){(int64_t)1 << 21, (int64_t)1 << 21, (int64_t)1 << 21}));
  assert_null(t);

  /* More than the device can hold in one allocation. */
  clai_device_info info;
  CLAIT_OK(ctx, clai_context_device_info(ctx, -1, &info));
  assert_true(info.max_alloc_bytes > 0);
  const int64_t big[1] = {(int64_t)(info.max_alloc_bytes / 4) + 1};
  t = (clai_tensor *)&t;
  CLAIT_FAILS(ctx, CLAI_E_OUT_OF_MEMORY, "largest allocation", clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 1, big));
  assert_null(t);
  /* ... the message also names the tensor. */
  assert_non_null(strstr(clai_errmsg(ctx), "clai_tensor_init"));
  const int64_t huge[2] = {(int64_t)1 << 30, (int64_t)1 << 30}; /* 4 EiB: no device has it */
  CLAIT_FAILS(ctx, CLAI_E_OUT_OF_MEMORY, "clai_tensor_init", clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 2, huge));
  assert_null(t);
  clai_context_stats stats;
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &stats));
  assert_true(stats.bytes_in_use == 0);

  expect_usable(ctx);
}

/* ---- host transfers ------------------------------------------------------------------------------------- */

static void test_transfer_errors(void **state) {
  clai_context *ctx = *state;
  const int64_t s[2] = {3, 5};
  clai_tensor *t = mk_iota(ctx, 2, s, 1.0f);
  const size_t bytes = 15 * sizeof(float);

  /* A read into a buffer one byte too small fails and writes nothing. */
  unsigned char buf[15 * sizeof(float) + 8];
  memset(buf, 0xab, sizeof buf);
  CLAIT_FAILS(ctx, CLAI_E_BUFFER_TOO_SMALL, "buffer of 59 bytes", clai_tensor_read(t, buf, bytes - 1));
  for (size_t i = 0; i < sizeof buf; i++) assert_int_equal(buf[i], 0xab);
  CLAIT_FAILS(ctx, CLAI_E_BUFFER_TOO_SMALL, "needs 60", clai_tensor_read(t, buf, 0));
  for (size_t i = 0; i < sizeof buf; i++) assert_int_equal(buf[i], 0xab);
  /* The same for a non-contiguous view (which reads through a temporary). */
  clai_tensor *tr = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(t, &tr, 0, 1));
  assert_int_equal(clai_tensor_is_contiguous(tr), 0);
  CLAIT_FAILS(ctx, CLAI_E_BUFFER_TOO_SMALL, "clai_tensor_read", clai_tensor_read(tr, buf, bytes - 4));
  for (size_t i = 0; i < sizeof buf; i++) assert_int_equal(buf[i], 0xab);
  /* A larger buffer is fine; the bytes past the tensor stay untouched. */
  CLAIT_OK(ctx, clai_tensor_read(t, buf, sizeof buf));
  for (size_t i = bytes; i < sizeof buf; i++) assert_int_equal(buf[i], 0xab);
  float first;
  memcpy(&first, buf + 4, sizeof first);
  assert_float_equal(first, 1.0f, 0.0f);

  /* A write must give exactly numel * dtype size bytes. */
  float src[16];
  for (int i = 0; i < 16; i++) src[i] = -1.0f;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "56 bytes given", clai_tensor_write(t, src, bytes - 4));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "holds 60", clai_tensor_write(t, src, bytes + 4));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "bytes given", clai_tensor_write(t, src, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "bytes given", clai_tensor_write(tr, src, bytes + 1));
  expect_iota(ctx, t, 1.0f);

  /* Zero-element tensors: NULL pointers and 0 bytes are fine. */
  clai_tensor *z = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (const int64_t[]){0, 4});
  CLAIT_OK(ctx, clai_tensor_write(z, NULL, 0));
  CLAIT_OK(ctx, clai_tensor_read(z, NULL, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "bytes given", clai_tensor_write(z, src, 4));

  /* A broadcast view of 2^62 elements: its byte size (2^64) does not fit, so no transfer may pretend to
   * succeed. */
  clai_tensor *one = mk_iota(ctx, 1, (const int64_t[]){1}, 1.0f), *wide = NULL;
  const int64_t ws[2] = {(int64_t)1 << 31, (int64_t)1 << 31};
  CLAIT_OK(ctx, clai_tensor_expand(one, &wide, 2, ws));
  assert_int_equal(clai_tensor_numel(wide), (int64_t)1 << 62);
  memset(buf, 0xab, sizeof buf);
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "clai_tensor_read: the byte size", clai_tensor_read(wide, buf, sizeof buf));
  for (size_t i = 0; i < sizeof buf; i++) assert_int_equal(buf[i], 0xab);
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "clai_tensor_write: the byte size", clai_tensor_write(wide, src, 0));
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "overflows", clai_tensor_write(wide, NULL, 0));
  expect_iota(ctx, one, 1.0f);

  clai_tensor_free(wide);
  clai_tensor_free(one);
  clai_tensor_free(z);
  clai_tensor_free(tr);
  clai_tensor_free(t);
  expect_usable(ctx);
}

/* ---- views --------------------------------------------------------------------------------------------- */

static void test_view_errors(void **state) {
  clai_context *ctx = *state;
  const int64_t s[3] = {2, 3, 4};
  clai_tensor *t = mk_iota(ctx, 3, s, 1.0f);
  clai_tensor *v = (clai_tensor *)&v;

  /* transpose: dims out of range, negative ones counting from the end. */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out of range", clai_tensor_transpose(t, &v, 0, 3));
  assert_null(v);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out of range", clai_tensor_transpose(t, &v, -4, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "(7, 1)", clai_tensor_transpose(t, &v, 7, 1));
  CLAIT_OK(ctx, clai_tensor_transpose(t, &v, -1, 0));
  assert_int_equal(clai_tensor_dim(v, 0), 4);
  clai_tensor_free(v);

  /* permute: not a permutation. */
  v = (clai_tensor *)&v;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not a permutation", clai_tensor_permute(t, &v, (const int[]){0, 0, 1}));
  assert_null(v);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not a permutation", clai_tensor_permute(t, &v, (const int[]){0, 1, 3}));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not a permutation", clai_tensor_permute(t, &v, (const int[]){-1, 1, 2}));

  /* slice: step 0 or negative, dim out of range. */
  v = (clai_tensor *)&v;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "step 0", clai_tensor_slice(t, &v, 1, 0, 3, 0));
  assert_null(v);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "step -1", clai_tensor_slice(t, &v, 1, 0, 3, -1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dim 3 out of range", clai_tensor_slice(t, &v, 3, 0, 1, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out of range", clai_tensor_slice(t, &v, -4, 0, 1, 1));
  /* A huge step is valid and takes the first element only (Python: range(1, 4, huge) == [1]). */
  CLAIT_OK(ctx, clai_tensor_slice(t, &v, 2, 1, 4, INT64_MAX));
  assert_int_equal(clai_tensor_dim(v, 2), 1);
  float got[6];
  CLAIT_OK(ctx, clai_tensor_read(v, got, sizeof got));
  for (int i = 0; i < 6; i++) assert_float_equal(got[i], (float)(i * 4 + 1), 0.0f);
  clai_tensor_free(v);
  /* Start and stop far out of range clamp; a huge start gives an empty view. */
  CLAIT_OK(ctx, clai_tensor_slice(t, &v, 0, INT64_MAX, INT64_MAX, 1));
  assert_int_equal(clai_tensor_dim(v, 0), 0);
  clai_tensor_free(v);
  CLAIT_OK(ctx, clai_tensor_slice(t, &v, 0, INT64_MIN, INT64_MAX, INT64_MAX));
  assert_int_equal(clai_tensor_dim(v, 0), 1);
  clai_tensor_free(v);

  /* view: negative strides, strides or offset that address outside the buffer, bad shapes. */
  v = (clai_tensor *)&v;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "stride 0 is negative", clai_tensor_view(t, &v, 1, (const int64_t[]){2}, (const int64_t[]){-1}, 5));
  assert_null(v);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside its buffer",
              clai_tensor_view(t, &v, 2, (const int64_t[]){24, 24}, (const int64_t[]){24, 1}, 0));
  assert_null(v);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside its buffer",
              clai_tensor_view(t, &v, 1, (const int64_t[]){2}, (const int64_t[]){1}, 1 << 20));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside its buffer",
              clai_tensor_view(t, &v, 1, (const int64_t[]){2}, (const int64_t[]){(int64_t)1 << 40}, 0));
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "spans too many elements",
              clai_tensor_view(t, &v, 1, (const int64_t[]){3}, (const int64_t[]){INT64_MAX}, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "offset -1", clai_tensor_view(t, &v, 1, (const int64_t[]){1}, (const int64_t[]){1}, -1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out of range",
              clai_tensor_view(t, &v, 1, (const int64_t[]){1}, (const int64_t[]){1}, INT64_MAX));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "ndim 9", clai_tensor_view(t, &v, 9, s, s, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "negative", clai_tensor_view(t, &v, 1, (const int64_t[]){-2}, (const int64_t[]){1}, 0));
  assert_null(v);
  /* The last element of the tensor is addressable; one past it is not (relative to a view's offset too). */
  CLAIT_OK(ctx, clai_tensor_view(t, &v, 1, (const int64_t[]){1}, (const int64_t[]){1}, 23));
  CLAIT_OK(ctx, clai_tensor_read(v, got, sizeof(float)));
  assert_float_equal(got[0], 23.0f, 0.0f);
  clai_tensor_free(v);
  clai_tensor *tail = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(t, &tail, 0, 1, 2, 1)); /* elements 12..23 */
  assert_int_equal(clai_tensor_offset(tail), 12);
  v = (clai_tensor *)&v;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "outside its buffer",
              clai_tensor_view(tail, &v, 1, (const int64_t[]){4}, (const int64_t[]){4}, 0));
  assert_null(v);
  CLAIT_OK(ctx, clai_tensor_view(tail, &v, 1, (const int64_t[]){3}, (const int64_t[]){4}, 3));
  CLAIT_OK(ctx, clai_tensor_read(v, got, 3 * sizeof(float)));
  assert_float_equal(got[0], 15.0f, 0.0f);
  assert_float_equal(got[2], 23.0f, 0.0f);
  clai_tensor_free(v);
  clai_tensor_free(tail);

  /* reshape: a different element count, two inferred dims, an impossible inference. */
  v = (clai_tensor *)&v;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "24 elements", clai_tensor_reshape(t, &v, 2, (const int64_t[]){5, 5}));
  assert_null(v);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "cannot reshape", clai_tensor_reshape(t, &v, 1, (const int64_t[]){23}));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "cannot infer", clai_tensor_reshape(t, &v, 2, (const int64_t[]){5, -1}));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "cannot infer", clai_tensor_reshape(t, &v, 2, (const int64_t[]){0, -1}));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dimension 1 is -1", clai_tensor_reshape(t, &v, 2, (const int64_t[]){-1, -1}));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dimension 0 is -2", clai_tensor_reshape(t, &v, 2, (const int64_t[]){-2, 12}));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "ndim -1", clai_tensor_reshape(t, &v, -1, (const int64_t[]){24}));
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "overflows",
              clai_tensor_reshape(t, &v, 2, (const int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40}));
  assert_null(v);
  /* A transposed view cannot be flattened without a copy. */
  clai_tensor *tt = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(t, &tt, 1, 2));
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "copy it first", clai_tensor_reshape(tt, &v, 1, (const int64_t[]){24}));
  assert_null(v);
  clai_tensor_free(tt);

  /* expand: not broadcastable. */
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "does not broadcast", clai_tensor_expand(t, &v, 3, (const int64_t[]){2, 3, 5}));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "does not broadcast", clai_tensor_expand(t, &v, 2, (const int64_t[]){3, 4}));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "ndim 9", clai_tensor_expand(t, &v, 9, s));
  assert_null(v);

  /* None of it changed the tensor or leaked a view. */
  expect_iota(ctx, t, 1.0f);
  clai_tensor_free(t);
  clai_context_stats stats;
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &stats));
  assert_true(stats.bytes_in_use == 0);
  expect_usable(ctx);
}

/* ---- elementwise ops ---------------------------------------------------------------------------------- */

static void test_binary_errors(void **state) {
  clai_context *ctx = *state;
  clai_tensor *a = mk_iota(ctx, 2, (const int64_t[]){2, 3}, 1.0f);
  clai_tensor *b = mk_iota(ctx, 2, (const int64_t[]){2, 3}, 2.0f);
  clai_tensor *out = mk_iota(ctx, 2, (const int64_t[]){2, 3}, 3.0f);
  clai_tensor *b4 = mk_iota(ctx, 2, (const int64_t[]){2, 4}, 1.0f);
  clai_tensor *o33 = mk_iota(ctx, 2, (const int64_t[]){3, 3}, 3.0f);
  clai_tensor *h = clait_tensor(ctx, CLAI_DTYPE_F16, 2, (const int64_t[]){2, 3});
  clai_tensor *i = clait_tensor(ctx, CLAI_DTYPE_I32, 2, (const int64_t[]){2, 3});

  /* Invalid op values. */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not a clai_binary_op", clai_binary(ctx, (clai_binary_op)6, out, a, b));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "-1 is not a clai_binary_op", clai_binary(ctx, (clai_binary_op)-1, out, a, b));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not a clai_binary_op", clai_binary(ctx, (clai_binary_op)INT_MAX, out, a, b));

  /* Shapes that do not broadcast, or an out that is not the broadcast shape. */
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "do not broadcast", clai_binary(ctx, CLAI_ADD, out, a, b4));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "[2, 4]", clai_binary(ctx, CLAI_MUL, out, b4, a));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "out [3, 3]", clai_binary(ctx, CLAI_ADD, o33, a, b));
  clai_tensor *a1 = mk_iota(ctx, 1, (const int64_t[]){3}, 1.0f);
  clai_tensor *small = mk_iota(ctx, 1, (const int64_t[]){3}, 1.0f);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "do not broadcast", clai_binary(ctx, CLAI_ADD, small, a1, a)); /* out too small */

  /* dtype mismatches. */
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "dtypes differ", clai_binary(ctx, CLAI_ADD, out, a, h));
  assert_non_null(strstr(clai_errmsg(ctx), "f16"));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "dtypes differ", clai_binary(ctx, CLAI_SUB, h, a, b));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "i32", clai_binary(ctx, CLAI_ADD, out, i, b));

  /* out overlapping an input other than element for element. */
  clai_tensor *big = mk_iota(ctx, 1, (const int64_t[]){8}, 1.0f), *lo = NULL, *hi = NULL, *rev = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(big, &lo, 0, 0, 6, 1));
  CLAIT_OK(ctx, clai_tensor_slice(big, &hi, 0, 2, 8, 1));
  clai_tensor *other = mk_iota(ctx, 1, (const int64_t[]){6}, 1.0f);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_binary(ctx, CLAI_ADD, hi, lo, other));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_binary(ctx, CLAI_ADD, lo, other, hi));
  /* out = a transposed view of itself. */
  clai_tensor *sq = mk_iota(ctx, 2, (const int64_t[]){3, 3}, 1.0f);
  CLAIT_OK(ctx, clai_tensor_transpose(sq, &rev, 0, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_binary(ctx, CLAI_ADD, sq, rev, o33));
  expect_iota(ctx, big, 1.0f);
  expect_iota(ctx, sq, 1.0f);
  /* Exact aliasing is allowed: big[2:8] += other. */
  CLAIT_OK(ctx, clai_binary(ctx, CLAI_ADD, hi, hi, other));
  float got[8];
  CLAIT_OK(ctx, clai_tensor_read(big, got, sizeof got));
  for (int k = 0; k < 8; k++) assert_float_equal(got[k], k < 2 ? (float)k : (float)k + (float)(k - 2), 0.0f);

  /* None of the failed calls wrote its output. */
  expect_iota(ctx, out, 3.0f);
  expect_iota(ctx, o33, 3.0f);
  expect_iota(ctx, small, 1.0f);
  clai_tensor *all[] = {a, b, out, b4, o33, h, i, a1, small, big, lo, hi, rev, other, sq};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) clai_tensor_free(all[k]);
  expect_usable(ctx);
}

static void test_unary_errors(void **state) {
  clai_context *ctx = *state;
  clai_tensor *x = mk_iota(ctx, 2, (const int64_t[]){2, 3}, 1.0f);
  clai_tensor *out = mk_iota(ctx, 2, (const int64_t[]){2, 3}, 3.0f);
  clai_tensor *o32 = mk_iota(ctx, 2, (const int64_t[]){3, 2}, 3.0f);
  clai_tensor *o6 = mk_iota(ctx, 1, (const int64_t[]){6}, 3.0f);
  clai_tensor *h = clait_tensor(ctx, CLAI_DTYPE_F16, 2, (const int64_t[]){2, 3});
  clai_tensor *i = clait_tensor(ctx, CLAI_DTYPE_I32, 2, (const int64_t[]){2, 3}), *i2 = clait_tensor(ctx, CLAI_DTYPE_I32, 2, (const int64_t[]){2, 3});

  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "10 is not a clai_unary_op", clai_unary(ctx, (clai_unary_op)10, out, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not a clai_unary_op", clai_unary(ctx, (clai_unary_op)-3, out, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not a clai_unary_op", clai_unary(ctx, (clai_unary_op)INT_MIN, out, x));

  /* Shapes differ (unary ops do not broadcast, and the same numel is not enough). */
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "differ in shape", clai_unary(ctx, CLAI_RELU, o32, x));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "[6]", clai_unary(ctx, CLAI_EXP, o6, x));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "differ in shape", clai_scale(ctx, o32, x, 2.0f));

  /* dtypes. */
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "dtypes differ", clai_unary(ctx, CLAI_NEG, h, x));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "exp", clai_unary(ctx, CLAI_EXP, i2, i));
  assert_non_null(strstr(clai_errmsg(ctx), "i32"));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "not defined for i32", clai_unary(ctx, CLAI_SQRT, i, i));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "not defined for i32", clai_affine(ctx, i2, i, 2.0f, 1.0f));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "dtypes differ", clai_add_scalar(ctx, i, x, 1.0f));
  /* ... while neg, abs and relu are defined for i32. */
  const int32_t iv[6] = {-3, -1, 0, 1, 2, -7};
  int32_t ig[6];
  CLAIT_OK(ctx, clai_tensor_write(i, iv, sizeof iv));
  CLAIT_OK(ctx, clai_unary(ctx, CLAI_ABS, i2, i));
  CLAIT_OK(ctx, clai_tensor_read(i2, ig, sizeof ig));
  for (int k = 0; k < 6; k++) assert_int_equal(ig[k], iv[k] < 0 ? -iv[k] : iv[k]);

  /* Partial overlap of out and x. */
  clai_tensor *big = mk_iota(ctx, 1, (const int64_t[]){8}, 1.0f), *lo = NULL, *hi = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(big, &lo, 0, 0, 7, 1));
  CLAIT_OK(ctx, clai_tensor_slice(big, &hi, 0, 1, 8, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_unary(ctx, CLAI_NEG, hi, lo));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_scale(ctx, lo, hi, 2.0f));
  expect_iota(ctx, big, 1.0f);

  expect_iota(ctx, out, 3.0f);
  expect_iota(ctx, o32, 3.0f);
  expect_iota(ctx, o6, 3.0f);
  clai_tensor *all[] = {x, out, o32, o6, h, i, i2, big, lo, hi};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) clai_tensor_free(all[k]);
  expect_usable(ctx);
}

static void test_copy_fill_errors(void **state) {
  clai_context *ctx = *state;
  clai_tensor *x = mk_iota(ctx, 2, (const int64_t[]){2, 3}, 1.0f);
  clai_tensor *y = mk_iota(ctx, 2, (const int64_t[]){3, 2}, 1.0f);
  clai_tensor *i = clait_tensor(ctx, CLAI_DTYPE_I32, 1, (const int64_t[]){4});
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "does not broadcast", clai_copy(ctx, y, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "does not fit an i32", clai_fill(ctx, i, 3e9));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "does not fit an i32", clai_fill(ctx, i, NAN));
  /* Nothing was written by the failed fills. */
  const int32_t iv[4] = {7, -7, 70, -70};
  int32_t ig[4];
  CLAIT_OK(ctx, clai_tensor_write(i, iv, sizeof iv));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "does not fit an i32", clai_fill(ctx, i, -3e9));
  CLAIT_OK(ctx, clai_tensor_read(i, ig, sizeof ig));
  for (int k = 0; k < 4; k++) assert_int_equal(ig[k], iv[k]);
  clai_tensor *xt = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(x, &xt, 0, 1));
  /* dst and src the same memory in another order. */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlap", clai_copy(ctx, x, xt));
  expect_iota(ctx, x, 1.0f);
  /* A copy into the transposed view is fine: x then holds y transposed. */
  CLAIT_OK(ctx, clai_copy(ctx, xt, y));
  float got[6];
  CLAIT_OK(ctx, clai_tensor_read(x, got, sizeof got));
  const float want[6] = {0, 2, 4, 1, 3, 5};
  for (int k = 0; k < 6; k++) assert_float_equal(got[k], want[k], 0.0f);
  expect_iota(ctx, y, 1.0f);
  clai_tensor_free(xt);
  clai_tensor_free(x);
  clai_tensor_free(y);
  clai_tensor_free(i);
  expect_usable(ctx);
}

/* ---- outputs whose elements share addresses, and the statuses issue 10 found undocumented ------------ */

/* An output with a stride of 0 on a dim above 1 (clai_tensor_expand's broadcast) would have its elements
 * written several times at once: every op rejects it, naming the argument, and writes nothing. */
static void test_broadcast_outputs(void **state) {
  clai_context *ctx = *state;
  const int64_t s34[2] = {3, 4}, s14[2] = {1, 4}, s4[1] = {4}, s3[1] = {3}, s0[2] = {0, 4};
  clai_tensor *row = mk_iota(ctx, 2, s14, 1.0f), *x = mk_iota(ctx, 2, s34, 0.5f), *v4 = mk_iota(ctx, 1, s4, 1.0f);
  clai_tensor *bc = NULL, *bc1 = NULL, *empty = NULL, *col = mk_iota(ctx, 1, s3, 1.0f), *bcol = NULL;
  CLAIT_OK(ctx, clai_tensor_expand(row, &bc, 2, s34));  /* [3, 4], stride 0 on dim 0 */
  CLAIT_OK(ctx, clai_tensor_expand(v4, &bc1, 2, s34));  /* the same from a 1-d tensor */
  CLAIT_OK(ctx, clai_tensor_expand(col, &bcol, 1, s3)); /* no stride 0: an ordinary view */
  CLAIT_OK(ctx, clai_tensor_expand(row, &empty, 2, s0)); /* [0, 4]: nothing is written, so it is fine */
  const int64_t s134[3] = {1, 3, 4}, s43[2] = {4, 3};
  clai_tensor *w43 = mk_iota(ctx, 2, s43, 0.25f), *bc3 = NULL;
  CLAIT_OK(ctx, clai_tensor_expand(row, &bc3, 3, s134));
  const char *want = "out is a broadcast view";
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_binary(ctx, CLAI_ADD, bc, x, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_binary(ctx, CLAI_MUL, bc, bc, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_unary(ctx, CLAI_RELU, bc, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_scale(ctx, bc, bc, 2.0f));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dst is a broadcast view", clai_copy(ctx, bc1, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dst is a broadcast view", clai_fill(ctx, bc, 1.0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "c is a broadcast view", clai_matmul(ctx, bc, x, 0, w43, 1, 1.0f, 0.0f));
  float host[12] = {0};
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_tensor_write: the tensor is a broadcast view",
              clai_tensor_write(bc, host, sizeof host));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_softmax(ctx, bc, x, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_layernorm(ctx, bc, x, NULL, NULL, 1e-5f, NULL, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_reduce(ctx, CLAI_REDUCE_SUM, bc1, bc3, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_sum_to(ctx, bc, bc3));
  const clai_tensor *parts[2] = {x, x};
  const int64_t s64[2] = {6, 4};
  clai_tensor *tall = clait_tensor(ctx, CLAI_DTYPE_F32, 1, s14 + 1), *btall = NULL;
  CLAIT_OK(ctx, clai_tensor_expand(tall, &btall, 2, s64));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_concat(ctx, btall, 2, parts, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_where(ctx, bc, x, x, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_rand_uniform(ctx, bc, 1, 0, 0.0f, 1.0f));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grad_x is a broadcast view", clai_unary_backward(ctx, CLAI_TANH, bc, x, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grad_a is a broadcast view",
              clai_binary_backward(ctx, CLAI_ADD, bc, NULL, x, x, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grad_x is a broadcast view", clai_softmax_backward(ctx, bc, x, x, NULL));
  const int64_t s4d[4] = {1, 1, 3, 4};
  clai_tensor *x4 = mk_iota(ctx, 4, s4d, 1.0f), *bc4 = NULL, *w1 = mk_iota(ctx, 4, (const int64_t[]){1, 1, 1, 1}, 1.0f);
  CLAIT_OK(ctx, clai_tensor_expand(row, &bc4, 4, s4d));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, want, clai_conv2d(ctx, bc4, x4, w1, NULL, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grad_x is a broadcast view", clai_conv2d_backward_data(ctx, bc4, x4, w1, NULL));
  /* the rejected calls wrote nothing: the storage of every broadcast view still holds its values */
  expect_iota(ctx, row, 1.0f);
  expect_iota(ctx, v4, 1.0f);
  expect_iota(ctx, x, 0.5f);
  /* empty broadcast outputs and views without a stride 0 are accepted */
  CLAIT_OK(ctx, clai_fill(ctx, empty, 3.0));
  CLAIT_OK(ctx, clai_fill(ctx, bcol, 3.0));
  clai_tensor_free(w1);
  clai_tensor_free(bc4);
  clai_tensor_free(x4);
  clai_tensor_free(btall);
  clai_tensor_free(tall);
  clai_tensor_free(bc3);
  clai_tensor_free(w43);
  clai_tensor_free(empty);
  clai_tensor_free(bcol);
  clai_tensor_free(col);
  clai_tensor_free(bc1);
  clai_tensor_free(bc);
  clai_tensor_free(v4);
  clai_tensor_free(x);
  clai_tensor_free(row);
  expect_usable(ctx);
}

/* clip_grad_norm's norm_out must not overlap a gradient (the norm would be scaled, or a gradient element
 * replaced by the norm); a norm_out or a loss of the wrong dtype is CLAI_E_DTYPE, of the wrong size
 * CLAI_E_SHAPE; an odd or negative rot_dims is a bad argument whatever x is (CLAI_E_INVALID_ARG). */
static void test_contract_statuses(void **state) {
  clai_context *ctx = *state;
  const int64_t s8[1] = {8}, s6[1] = {6}, s23[2] = {2, 3}, s2[1] = {2}, one[1] = {1};
  clai_tensor *flat = mk_iota(ctx, 1, s8, 1.0f), *g1 = NULL, *inside = NULL, *g2 = mk_iota(ctx, 1, s6, 0.5f);
  CLAIT_OK(ctx, clai_tensor_view(flat, &g1, 1, s6, (const int64_t[]){1}, 0));
  CLAIT_OK(ctx, clai_tensor_view(flat, &inside, 1, one, (const int64_t[]){1}, 7)); /* past g1 */
  clai_tensor *grads[2] = {g2, g1};
  clai_tensor *at5 = NULL;
  CLAIT_OK(ctx, clai_tensor_view(flat, &at5, 1, one, (const int64_t[]){1}, 5));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "norm_out overlaps grads[1]", clai_clip_grad_norm(ctx, grads, 2, 1.0f, at5));
  expect_iota(ctx, flat, 1.0f);
  expect_iota(ctx, g2, 0.5f);
  CLAIT_OK(ctx, clai_clip_grad_norm(ctx, grads, 2, 1e9f, inside)); /* beside the gradients: fine */
  clai_tensor *n16 = clait_tensor(ctx, CLAI_DTYPE_F16, 1, one), *n2 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, s2);
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "norm_out is f16", clai_clip_grad_norm(ctx, grads, 2, 1.0f, n16));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "norm_out must be one f32 element", clai_clip_grad_norm(ctx, grads, 2, 1.0f, n2));
  /* losses: an f16 loss tensor is a dtype error, not a shape error */
  clai_tensor *logits = mk_iota(ctx, 2, s23, 0.1f), *labels = clait_tensor(ctx, CLAI_DTYPE_I32, 1, s2);
  CLAIT_OK(ctx, clai_fill(ctx, labels, 1.0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "loss is f16", clai_loss_cross_entropy(ctx, n16, NULL, logits, labels, -100));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "loss is f16", clai_loss_mse(ctx, n16, NULL, logits, logits));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "one f32 element", clai_loss_mse(ctx, n2, NULL, logits, logits));
  /* rope */
  const int64_t sx[3] = {2, 3, 8};
  clai_tensor *rx = mk_iota(ctx, 3, sx, 1.0f), *ro = mk_iota(ctx, 3, sx, 2.0f);
  clai_rope_params p = {0};
  p.rot_dims = 5;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "rot_dims 5 must be even", clai_rope(ctx, ro, rx, &p));
  p.rot_dims = -4;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "rot_dims -4", clai_rope(ctx, ro, rx, &p));
  p.rot_dims = 10;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "rotating 10 of D = 8", clai_rope(ctx, ro, rx, &p));
  expect_iota(ctx, ro, 2.0f);
  clai_tensor_free(ro);
  clai_tensor_free(rx);
  clai_tensor_free(labels);
  clai_tensor_free(logits);
  clai_tensor_free(n2);
  clai_tensor_free(n16);
  clai_tensor_free(at5);
  clai_tensor_free(inside);
  clai_tensor_free(g2);
  clai_tensor_free(g1);
  clai_tensor_free(flat);
  expect_usable(ctx);
}

/* ---- matmul --------------------------------------------------------------------------------------------- */

static void test_matmul_errors(void **state) {
  clai_context *ctx = *state;
  clai_tensor *a = mk_iota(ctx, 2, (const int64_t[]){2, 3}, 1.0f);
  clai_tensor *b = mk_iota(ctx, 2, (const int64_t[]){3, 4}, 1.0f);
  clai_tensor *b44 = mk_iota(ctx, 2, (const int64_t[]){4, 4}, 1.0f);
  clai_tensor *c = mk_iota(ctx, 2, (const int64_t[]){2, 4}, 5.0f);
  clai_tensor *c33 = mk_iota(ctx, 2, (const int64_t[]){3, 3}, 5.0f);
  clai_tensor *v1 = mk_iota(ctx, 1, (const int64_t[]){3}, 1.0f);

  /* Inner dims differ; c of the wrong shape; too few dims. */
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "op(a) is 2x3 and op(b) 4x4", clai_matmul(ctx, c, a, 0, b44, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "op(a) is 3x2", clai_matmul(ctx, c, a, 1, b, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "op(b) 4x3", clai_matmul(ctx, c, a, 0, b, 1, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "c is [3, 3]", clai_matmul(ctx, c33, a, 0, b, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "at least 2 dims", clai_matmul(ctx, c, v1, 0, b, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "at least 2 dims", clai_matmul(ctx, v1, a, 0, b, 0, 1.0f, 0.0f));

  /* Batch dims that do not broadcast. */
  clai_tensor *a3 = mk_iota(ctx, 3, (const int64_t[]){3, 2, 3}, 1.0f);
  clai_tensor *b2 = mk_iota(ctx, 3, (const int64_t[]){2, 3, 4}, 1.0f);
  clai_tensor *c3 = mk_iota(ctx, 3, (const int64_t[]){3, 2, 4}, 1.0f);
  clai_tensor *c2 = mk_iota(ctx, 3, (const int64_t[]){2, 2, 4}, 1.0f);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "batch dims", clai_matmul(ctx, c3, a3, 0, b2, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "do not broadcast", clai_matmul(ctx, c2, a3, 0, b, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "batch dims", clai_matmul(ctx, c, a3, 0, b, 0, 1.0f, 0.0f)); /* c lacks the batch */

  /* dtypes: i32 anywhere, f32 with f16. */
  clai_tensor *ai = clait_tensor(ctx, CLAI_DTYPE_I32, 2, (const int64_t[]){2, 3});
  clai_tensor *bi = clait_tensor(ctx, CLAI_DTYPE_I32, 2, (const int64_t[]){3, 4});
  clai_tensor *ci = clait_tensor(ctx, CLAI_DTYPE_I32, 2, (const int64_t[]){2, 4});
  clai_tensor *bh = clait_tensor(ctx, CLAI_DTYPE_F16, 2, (const int64_t[]){3, 4});
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "i32", clai_matmul(ctx, c, ai, 0, bi, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "i32", clai_matmul(ctx, ci, a, 0, b, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "f16", clai_matmul(ctx, c, a, 0, bh, 0, 1.0f, 0.0f));

  /* c overlapping a or b. */
  clai_tensor *sq = mk_iota(ctx, 2, (const int64_t[]){3, 3}, 1.0f), *sq2 = mk_iota(ctx, 2, (const int64_t[]){3, 3}, 1.0f);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "c overlaps a or b", clai_matmul(ctx, sq, sq, 0, sq2, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "c overlaps a or b", clai_matmul(ctx, sq, sq2, 0, sq, 1, 1.0f, 0.0f));
  clai_tensor *whole = mk_iota(ctx, 2, (const int64_t[]){4, 3}, 1.0f), *top = NULL, *bot = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(whole, &top, 0, 0, 3, 1)); /* rows 0..2: 3x3 */
  CLAIT_OK(ctx, clai_tensor_slice(whole, &bot, 0, 1, 4, 1)); /* rows 1..3: 3x3, overlaps top */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_matmul(ctx, bot, top, 0, sq2, 0, 1.0f, 0.0f));
  expect_iota(ctx, sq, 1.0f);
  expect_iota(ctx, whole, 1.0f);

  /* Sizes beyond what the kernel indexes (broadcast views: no memory needed). */
  clai_tensor *s11 = mk_iota(ctx, 2, (const int64_t[]){1, 1}, 1.0f), *s11c = mk_iota(ctx, 2, (const int64_t[]){1, 1}, 1.0f);
  clai_tensor *s11b = mk_iota(ctx, 2, (const int64_t[]){1, 1}, 1.0f);
  clai_tensor *tallA = NULL, *tallC = NULL;
  const int64_t tall[2] = {(int64_t)1 << 31, 1};
  CLAIT_OK(ctx, clai_tensor_expand(s11, &tallA, 2, tall));
  CLAIT_OK(ctx, clai_tensor_expand(s11c, &tallC, 2, tall));
  /* a broadcast c is refused before its size matters (its rows would share one address) */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "c is a broadcast view", clai_matmul(ctx, tallC, tallA, 0, s11b, 0, 1.0f, 0.0f));
  clai_tensor *wideA = NULL;
  CLAIT_OK(ctx, clai_tensor_expand(s11b, &wideA, 2, (const int64_t[]){1, (int64_t)1 << 31}));
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "below 2^31", clai_matmul(ctx, s11c, wideA, 0, tallA, 0, 1.0f, 0.0f));
  clai_tensor_free(wideA);

  /* None of the failed calls wrote c. */
  expect_iota(ctx, c, 5.0f);
  expect_iota(ctx, c33, 5.0f);
  expect_iota(ctx, c3, 1.0f);
  /* The valid product still works: [2,3] x [3,4]. */
  CLAIT_OK(ctx, clai_matmul(ctx, c, a, 0, b, 0, 1.0f, 0.0f));
  float got[8];
  CLAIT_OK(ctx, clai_tensor_read(c, got, sizeof got));
  for (int r = 0; r < 2; r++)
    for (int col = 0; col < 4; col++) {
      float w = 0;
      for (int k = 0; k < 3; k++) w += (float)(r * 3 + k) * (float)(k * 4 + col);
      assert_float_equal(got[r * 4 + col], w, 1e-4f);
    }
  clai_tensor *all[] = {a, b, b44, c, c33, v1, a3, b2, c3, c2, ai, bi, ci, bh, sq, sq2, whole, top, bot, s11, s11c, s11b, tallA, tallC};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) clai_tensor_free(all[k]);
  expect_usable(ctx);
}

/* ---- tensors of another context ------------------------------------------------------------------------ */

static void test_other_context(void **state) {
  clai_context *ctx = *state;
  clai_context *other = clait_ctx();
  assert_non_null(other);
  assert_ptr_not_equal(other, ctx);
  const int64_t s[2] = {2, 2};
  clai_tensor *a = mk_iota(ctx, 2, s, 1.0f), *b = mk_iota(ctx, 2, s, 2.0f), *c = mk_iota(ctx, 2, s, 3.0f);
  clai_tensor *f = NULL;
  CLAIT_OK(other, clai_tensor_init(other, &f, CLAI_DTYPE_F32, 2, s));
  const float fv[4] = {9, 9, 9, 9};
  CLAIT_OK(other, clai_tensor_write(f, fv, sizeof fv));
  assert_ptr_equal(clai_tensor_context(f), other);
  assert_ptr_equal(clai_tensor_context(a), ctx);

  CLAIT_FAILS(ctx, CLAI_E_CONTEXT, "b belongs to another context", clai_binary(ctx, CLAI_ADD, c, a, f));
  CLAIT_FAILS(ctx, CLAI_E_CONTEXT, "out belongs to another context", clai_binary(ctx, CLAI_ADD, f, a, b));
  CLAIT_FAILS(ctx, CLAI_E_CONTEXT, "x belongs to another context", clai_unary(ctx, CLAI_NEG, c, f));
  CLAIT_FAILS(ctx, CLAI_E_CONTEXT, "another context", clai_scale(ctx, f, a, 2.0f));
  CLAIT_FAILS(ctx, CLAI_E_CONTEXT, "a belongs to another context", clai_matmul(ctx, c, f, 0, b, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_CONTEXT, "c belongs to another context", clai_matmul(ctx, f, a, 0, b, 0, 1.0f, 0.0f));
  CLAIT_FAILS(ctx, CLAI_E_CONTEXT, "src belongs to another context", clai_copy(ctx, c, f));
  CLAIT_FAILS(ctx, CLAI_E_CONTEXT, "dst belongs to another context", clai_fill(ctx, f, 0.0));
  /* ... and all of them named from the other side too. */
  CLAIT_FAILS(other, CLAI_E_CONTEXT, "a belongs to another context", clai_binary(other, CLAI_ADD, f, a, f));
  /* Neither context's tensors changed; both contexts still work. */
  expect_iota(ctx, c, 3.0f);
  float got[4];
  CLAIT_OK(other, clai_tensor_read(f, got, sizeof got));
  for (int i = 0; i < 4; i++) assert_float_equal(got[i], 9.0f, 0.0f);
  expect_usable(other);
  clai_tensor_free(a);
  clai_tensor_free(b);
  clai_tensor_free(c);
  clai_context_free(other); /* frees f with it */
  expect_usable(ctx);
}

/* ---- device choice --------------------------------------------------------------------------------------- */

static void test_device_errors(void **state) {
  clai_context *ctx = *state;
  const int n = clai_context_device_count(ctx);
  assert_true(n >= 1);
  clai_device_info info;
  memset(&info, 0x5a, sizeof info);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out of range", clai_context_device_info(ctx, n, &info));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "index -2 out of range", clai_context_device_info(ctx, -2, &info));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out of range", clai_context_device_info(ctx, INT_MAX, &info));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out of range", clai_context_device_info(ctx, INT_MIN, &info));
  assert_int_equal(info.index, 0x5a5a5a5a); /* untouched */
  /* has_pocl: a POCL device named after its pthread driver ("pthread-<cpu>"; newer POCL says "cpu-<cpu>"). */
  int has_gpu = 0, has_pocl = 0;
  for (int i = 0; i < n; i++) {
    CLAIT_OK(ctx, clai_context_device_info(ctx, i, &info));
    assert_int_equal(info.index, i);
    if (info.type == CLAI_DEVICE_DISCRETE_GPU || info.type == CLAI_DEVICE_INTEGRATED_GPU) has_gpu = 1;
    if (strstr(info.platform, "Portable Computing Language") != NULL && strstr(info.name, "pthread") != NULL)
      has_pocl = 1;
  }

  /* A device name that matches nothing: the message lists the devices, *out is NULL. */
  char err[4096];
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.device = "no-such-device-xyz";
  clai_context *bad = (clai_context *)&bad;
  memset(err, 0, sizeof err);
  assert_int_equal(clai_context_init_ex(&bad, &p, err, sizeof err), CLAI_E_DEVICE_NOT_FOUND);
  assert_null(bad);
  assert_non_null(strstr(err, "no-such-device-xyz"));
  assert_non_null(strstr(err, "params.device"));
  assert_non_null(strstr(err, "matches no device"));
  for (int i = 0; i < n; i++) { /* every device is listed */
    CLAIT_OK(ctx, clai_context_device_info(ctx, i, &info));
    if (strstr(err, info.name) == NULL) fail_msg("device %d (%s) missing from \"%s\"", i, info.name, err);
  }
  CLAIT_OK(ctx, clai_context_device_info(ctx, 0, &info));
  if (has_pocl) assert_non_null(strstr(err, "pthread"));
  /* A tiny error buffer is truncated, still NUL-terminated. */
  char tiny[8];
  memset(tiny, 'x', sizeof tiny);
  bad = (clai_context *)&bad;
  assert_int_equal(clai_context_init_ex(&bad, &p, tiny, sizeof tiny), CLAI_E_DEVICE_NOT_FOUND);
  assert_null(bad);
  assert_true(memchr(tiny, '\0', sizeof tiny) != NULL);
  assert_int_equal(strlen(tiny), sizeof tiny - 1);
  /* No buffer at all. */
  bad = (clai_context *)&bad;
  assert_int_equal(clai_context_init_ex(&bad, &p, NULL, 0), CLAI_E_DEVICE_NOT_FOUND);
  assert_null(bad);
  bad = (clai_context *)&bad;
  assert_int_equal(clai_context_init(&bad, &p), CLAI_E_DEVICE_NOT_FOUND);
  assert_null(bad);
  /* An index past the list. */
  p.device = "999";
  bad = (clai_context *)&bad;
  assert_int_equal(clai_context_init_ex(&bad, &p, err, sizeof err), CLAI_E_DEVICE_NOT_FOUND);
  assert_null(bad);
  assert_non_null(strstr(err, "\"999\""));

  /* "gpu" where there is none. */
  if (!has_gpu) {
    p.device = "gpu";
    bad = (clai_context *)&bad;
    assert_int_equal(clai_context_init_ex(&bad, &p, err, sizeof err), CLAI_E_DEVICE_NOT_FOUND);
    assert_null(bad);
    assert_non_null(strstr(err, "\"gpu\""));
    if (has_pocl) assert_non_null(strstr(err, "pthread"));
  }

  /* The same through $CLAI_DEVICE (restored before any assertion can end the test). */
  const char *old = getenv("CLAI_DEVICE");
  char *saved = old != NULL ? strdup(old) : NULL;
  setenv("CLAI_DEVICE", "no-such-device-xyz", 1);
  bad = (clai_context *)&bad;
  memset(err, 0, sizeof err);
  clai_status st_env = clai_context_init_ex(&bad, NULL, err, sizeof err);
  clai_context *bad_env = bad;
  if (bad != NULL && bad != (clai_context *)&bad) clai_context_free(bad);
  /* params.device wins over the variable. */
  memset(&p, 0, sizeof p);
  p.device = "0";
  clai_context *good = NULL;
  char err2[4096] = "";
  clai_status st_override = clai_context_init_ex(&good, &p, err2, sizeof err2);
  if (saved != NULL) setenv("CLAI_DEVICE", saved, 1);
  else unsetenv("CLAI_DEVICE");
  free(saved);
  assert_int_equal(st_env, CLAI_E_DEVICE_NOT_FOUND);
  assert_null(bad_env);
  assert_non_null(strstr(err, "CLAI_DEVICE=\"no-such-device-xyz\""));
  assert_non_null(strstr(err, info.name));
  if (has_pocl) assert_non_null(strstr(err, "pthread"));
  if (st_override != CLAI_OK) fail_msg("params.device=\"0\" with a bad CLAI_DEVICE: %s: %s", clai_status_name(st_override), err2);
  assert_non_null(good);
  expect_usable(good);
  clai_context_free(good);

  expect_usable(ctx);
}

/* ---- messages and "changes nothing" in one place ------------------------------------------------------- */

static void test_errmsg_follows_calls(void **state) {
  clai_context *ctx = *state;
  clai_tensor *x = mk_iota(ctx, 1, (const int64_t[]){4}, 1.0f), *y = mk_iota(ctx, 1, (const int64_t[]){5}, 1.0f);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "clai_binary(add)", clai_binary(ctx, CLAI_ADD, x, x, y));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "clai_binary(maximum)", clai_binary(ctx, CLAI_MAXIMUM, x, x, y));
  /* Each failure replaces the message of the one before. */
  assert_null(strstr(clai_errmsg(ctx), "(add)"));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "clai_unary(gelu)", clai_unary(ctx, CLAI_GELU, x, y));
  assert_null(strstr(clai_errmsg(ctx), "clai_binary"));
  /* A long message (a shape of 8 large dims) is whole. */
  clai_tensor *w = NULL;
  const int64_t big8[8] = {1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 1000000};
  CLAIT_FAILS(ctx, CLAI_E_OVERFLOW, "clai_tensor_init", clai_tensor_init(ctx, &w, CLAI_DTYPE_F32, 8, big8));
  assert_null(w);
  clai_tensor_free(x);
  clai_tensor_free(y);
  expect_usable(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(test_status_names),
      CLAIT_TIMED(test_null_context),
      cmocka_unit_test_setup_teardown(test_null_args, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_tensor_init_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_transfer_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_view_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_binary_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_unary_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_copy_fill_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_broadcast_outputs, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_contract_statuses, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_matmul_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_other_context, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_device_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_errmsg_follows_calls, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("errors", tests, 1);
}
