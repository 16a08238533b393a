/* test-pool2d.c - clai_max_pool2d (with and without argmax indices), clai_avg_pool2d (both divisors) and
 * clai_global_avg_pool2d against a double-precision reference: windows that hang over the padding, kernels
 * larger than the stride and strides larger than the kernel, odd sizes, f32 and f16, input and output
 * views; then the bad arguments.
 *
 * Inputs are exactly representable in the dtype; max pooling is exact, so its values and indices must
 * match exactly (the first maximum in row-major order on ties, which f16 rounding makes likely). */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

typedef struct pool_case {
  int64_t N, C, H, W, KH, KW, sh, sw, pt, pb, pl, pr;
} pool_case;

/* A [a, b, c, d] tensor: dense, or a view with padded rows and the channel dim outermost in memory. */
static clai_tensor *make4(clai_context *ctx, clai_dtype dt, const int64_t *shape, int strided, clai_tensor **base) {
  clai_tensor *t = NULL;
  if (!strided) {
    CLAIT_OK(ctx, clai_tensor_init(ctx, base, dt, 4, shape));
    return *base;
  }
  const int64_t s[4] = {shape[1], shape[0], shape[2], shape[3] + 2};
  CLAIT_OK(ctx, clai_tensor_init(ctx, base, dt, 4, s));
  const int64_t st[4] = {shape[2] * (shape[3] + 2), shape[0] * shape[2] * (shape[3] + 2), shape[3] + 2, 1};
  CLAIT_OK(ctx, clai_tensor_view(*base, &t, 4, shape, st, 1));
  return t;
}

/* mode 0 max, 1 avg counting the padding, 2 avg over the input elements only */
static void pool_ref(const pool_case *c, int mode, const double *x, double *out, double *idx) {
  const int64_t OH = (c->H + c->pt + c->pb - c->KH) / c->sh + 1, OW = (c->W + c->pl + c->pr - c->KW) / c->sw + 1;
  for (int64_t nc = 0; nc < c->N * c->C; nc++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        double best = -INFINITY, sum = 0;
        int64_t arg = -1, cnt = 0;
        for (int64_t kh = 0; kh < c->KH; kh++)
          for (int64_t kw = 0; kw < c->KW; kw++) {
            int64_t ih = oh * c->sh - c->pt + kh, iw = ow * c->sw - c->pl + kw;
            if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
            double v = x[(nc * c->H + ih) * c->W + iw];
            sum += v;
            cnt++;
            if (arg < 0 || v > best) best = v, arg = ih * c->W + iw;
          }
        size_t o = (size_t)((nc * OH + oh) * OW + ow);
        out[o] = mode == 0 ? best : mode == 1 ? sum / (double)(c->KH * c->KW) : sum / (double)cnt;
        if (idx != NULL) idx[o] = (double)arg;
      }
}

static void run_pool(clai_context *ctx, const pool_case *c, clai_dtype dt, int strided, uint64_t seed) {
  clait_rng rng = {seed};
  const int64_t OH = (c->H + c->pt + c->pb - c->KH) / c->sh + 1, OW = (c->W + c->pl + c->pr - c->KW) / c->sw + 1;
  const int64_t xs[4] = {c->N, c->C, c->H, c->W}, os[4] = {c->N, c->C, OH, OW};
  const size_t nx = (size_t)(c->N * c->C * c->H * c->W), no = (size_t)(c->N * c->C * OH * OW);
  double *x = malloc(nx * sizeof *x), *want = malloc(no * sizeof *want), *wi = malloc(no * sizeof *wi),
         *got = malloc(no * sizeof *got), *gi = malloc(no * sizeof *gi);
  assert_true(x && want && wi && got && gi);
  for (size_t i = 0; i < nx; i++) x[i] = clait_as_dtype(dt, clait_uniform(&rng, -4.0f, 4.0f));
  clai_tensor *xb, *ob, *ib;
  clai_tensor *xt = make4(ctx, dt, xs, strided, &xb), *ot = make4(ctx, dt, os, strided, &ob);
  clai_tensor *it = make4(ctx, CLAI_DTYPE_I32, os, strided, &ib);
  clait_put(ctx, xt, x);
  clai_pool2d_params p = {c->KH, c->KW, c->sh, c->sw, c->pt, c->pb, c->pl, c->pr, 0};
  const double tol = dt == CLAI_DTYPE_F16 ? 1e-3 : 1e-6;
  char what[160];
  snprintf(what, sizeof what, "N%lld C%lld %lldx%lld k%lldx%lld s%lldx%lld pad %lld/%lld/%lld/%lld %s strided %d",
           (long long)c->N, (long long)c->C, (long long)c->H, (long long)c->W, (long long)c->KH, (long long)c->KW,
           (long long)c->sh, (long long)c->sw, (long long)c->pt, (long long)c->pb, (long long)c->pl, (long long)c->pr,
           clai_dtype_name(dt), strided);

  /* max with indices, then max without (indices untouched: still the first call's) */
  pool_ref(c, 0, x, want, wi);
  CLAIT_OK(ctx, clai_max_pool2d(ctx, ot, it, xt, &p));
  clait_read(ctx, ot, got);
  clait_read(ctx, it, gi);
  for (size_t i = 0; i < no; i++)
    if (got[i] != want[i] || gi[i] != wi[i])
      fail_msg("max %s: element %zu is %g at %g, expected %g at %g", what, i, got[i], gi[i], want[i], wi[i]);
  CLAIT_OK(ctx, clai_fill(ctx, ot, 0.0));
  CLAIT_OK(ctx, clai_max_pool2d(ctx, ot, NULL, xt, &p));
  clait_read(ctx, ot, got);
  for (size_t i = 0; i < no; i++)
    if (got[i] != want[i]) fail_msg("max %s (no indices): element %zu is %g, expected %g", what, i, got[i], want[i]);

  for (int inc = 0; inc <= 1; inc++) {
    p.count_include_pad = inc;
    pool_ref(c, inc ? 1 : 2, x, want, NULL);
    CLAIT_OK(ctx, clai_avg_pool2d(ctx, ot, xt, &p));
    clait_read(ctx, ot, got);
    for (size_t i = 0; i < no; i++)
      if (!(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i]))))
        fail_msg("avg %s count_include_pad %d: element %zu is %.8g, expected %.8g", what, inc, i, got[i], want[i]);
  }
  clait_free4(xt, xb);
  clait_free4(ot, ob);
  clait_free4(it, ib);
  free(x), free(want), free(wi), free(got), free(gi);
}

/* N C H W | KH KW sh sw | pt pb pl pr */
static const pool_case cases[] = {
    {128, 32, 28, 28, 2, 2, 2, 2, 0, 0, 0, 0}, /* the CNN's first pooling (2x2 stride 2: the vector path) */
    {2, 3, 9, 21, 2, 2, 2, 2, 0, 1, 0, 1},     /* 2x2 stride 2, odd sizes: last row and column over the padding */
    {2, 3, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1},      /* overlapping windows over the padding */
    {1, 7, 13, 11, 3, 3, 1, 1, 1, 1, 1, 1},    /* kernel larger than the stride, same size out */
    {3, 1, 10, 11, 2, 2, 3, 3, 0, 0, 0, 0},    /* stride larger than the kernel: gaps */
    {2, 5, 9, 8, 2, 3, 1, 2, 1, 0, 0, 2},      /* 2x3, asymmetric padding */
    {1, 2, 5, 5, 5, 5, 1, 1, 4, 4, 4, 4},      /* windows mostly padding */
    {2, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},      /* 1x1 planes */
};
#define NCASES (sizeof cases / sizeof cases[0])

/* cases[i]; in small mode (CLAI_TEST_SIZE=small) a batch of 128 becomes 2 (the same kernels and paths). */
static const pool_case *sized(size_t i) {
  static pool_case c;
  c = cases[i];
  if (c.N == 128) c.N = CLAIT_SIZE(128, 2);
  return &c;
}

static void test_pool_f32(void **state) {
  for (size_t i = 0; i < NCASES; i++) run_pool(CTX(state), sized(i), CLAI_DTYPE_F32, 0, 10 + i);
}

static void test_pool_f16(void **state) {
  for (size_t i = 0; i < NCASES; i++) run_pool(CTX(state), sized(i), CLAI_DTYPE_F16, 0, 20 + i);
}

static void test_pool_views(void **state) {
  for (size_t i = 1; i < NCASES; i++) run_pool(CTX(state), sized(i), CLAI_DTYPE_F32, 1, 30 + i);
  run_pool(CTX(state), &cases[1], CLAI_DTYPE_F16, 1, 40);
}

/* Stride 0 means the kernel size. */
static void test_pool_default_stride(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t xs[4] = {1, 1, 4, 6}, os[4] = {1, 1, 2, 3};
  clai_tensor *x, *o;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &x, CLAI_DTYPE_F32, 4, xs));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &o, CLAI_DTYPE_F32, 4, os));
  double v[24], got[6];
  for (int i = 0; i < 24; i++) v[i] = i;
  clait_put(ctx, x, v);
  clai_pool2d_params p = {0};
  p.kernel_h = p.kernel_w = 2;
  CLAIT_OK(ctx, clai_avg_pool2d(ctx, o, x, &p));
  clait_read(ctx, o, got);
  const double want[6] = {3.5, 5.5, 7.5, 15.5, 17.5, 19.5};
  for (int i = 0; i < 6; i++) assert_true(got[i] == want[i]);
  clai_tensor_free(x);
  clai_tensor_free(o);
}

/* A NaN in a window wins (and its index is reported); ties go to the first element; other windows are
 * unaffected. Width 10: outputs 0-3 take the 2x2 vector path, output 4 the general loop. */
static void test_pool_nan(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t xs[4] = {1, 1, 2, 10}, os[4] = {1, 1, 1, 5};
  clai_tensor *x, *o, *ix;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &x, CLAI_DTYPE_F32, 4, xs));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &o, CLAI_DTYPE_F32, 4, os));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &ix, CLAI_DTYPE_I32, 4, os));
  const double v[20] = {1, 5, 2, 3, 7, 7, 0, 0, NAN, 1, NAN, 0, 9, 4, 7, 6, -1, NAN, 2, 3};
  clait_put(ctx, x, v);
  clai_pool2d_params p = {0};
  p.kernel_h = p.kernel_w = 2;
  CLAIT_OK(ctx, clai_max_pool2d(ctx, o, ix, x, &p));
  double got[5], gi[5];
  clait_read(ctx, o, got);
  clait_read(ctx, ix, gi);
  const double want[5] = {NAN, 9, 7, NAN, NAN}, wi[5] = {10, 12, 4, 17, 8};
  for (int i = 0; i < 5; i++) {
    if (isnan(want[i]) ? !isnan(got[i]) : got[i] != want[i]) fail_msg("window %d: %g, expected %g", i, got[i], want[i]);
    if (gi[i] != wi[i]) fail_msg("window %d: index %g, expected %g", i, gi[i], wi[i]);
  }
  clai_tensor_free(x);
  clai_tensor_free(o);
  clai_tensor_free(ix);
}

static void run_gap(clai_context *ctx, clai_dtype dt, int64_t N, int64_t C, int64_t H, int64_t W, int out4,
                    int strided) {
  clait_rng rng = {(uint64_t)(N * 1000 + C * 100 + H * 10 + W)};
  const int64_t xs[4] = {N, C, H, W}, os[4] = {N, C, 1, 1};
  size_t nx = (size_t)(N * C * H * W), no = (size_t)(N * C);
  double *x = malloc(nx * sizeof *x), *got = malloc(no * sizeof *got);
  assert_true(x && got);
  for (size_t i = 0; i < nx; i++) x[i] = clait_as_dtype(dt, clait_uniform(&rng, -2.0f, 2.0f));
  clai_tensor *xb, *xt = make4(ctx, dt, xs, strided, &xb), *ot = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &ot, dt, out4 ? 4 : 2, os));
  clait_put(ctx, xt, x);
  CLAIT_OK(ctx, clai_global_avg_pool2d(ctx, ot, xt));
  clait_read(ctx, ot, got);
  for (size_t i = 0; i < no; i++) {
    double s = 0;
    for (int64_t j = 0; j < H * W; j++) s += x[i * (size_t)(H * W) + (size_t)j];
    s /= (double)(H * W);
    double tol = dt == CLAI_DTYPE_F16 ? 1e-3 * (1 + fabs(s)) : 1e-5;
    if (!(fabs(got[i] - s) <= tol))
      fail_msg("global avg %s [%lld,%lld,%lld,%lld]: element %zu is %.8g, expected %.8g", clai_dtype_name(dt),
               (long long)N, (long long)C, (long long)H, (long long)W, i, got[i], s);
  }
  clait_free4(xt, xb);
  clai_tensor_free(ot);
  free(x), free(got);
}

static void test_global_avg_pool(void **state) {
  clai_context *ctx = CTX(state);
  run_gap(ctx, CLAI_DTYPE_F32, 2, 3, 7, 7, 0, 0);
  run_gap(ctx, CLAI_DTYPE_F32, 3, 5, 1, 1, 1, 0);
  run_gap(ctx, CLAI_DTYPE_F32, 1, 7, 31, 33, 1, 1);
  run_gap(ctx, CLAI_DTYPE_F32, CLAIT_SIZE(128, 4), 64, 7, 7, 0, 0);
  run_gap(ctx, CLAI_DTYPE_F16, 2, 3, 9, 5, 1, 0);
  run_gap(ctx, CLAI_DTYPE_F16, 2, 3, 4, 6, 0, 1);
}

/* Planes of 300 x 300: on llvmpipe, whose kernels' loops stop after 65535 iterations a work-item, pooling
 * walks its planes in bands of rows and the global average goes through the reductions (lib/op-conv.c).
 * Elsewhere the same cases; not in small mode on a simulator. */
static void test_pool_loop_budget(void **state) {
  clai_context *ctx = CTX(state);
  if (!clait_budget_sizes(ctx, "test_pool_loop_budget")) return;
  const pool_case k3 = {1, 2, 300, 300, 3, 3, 1, 1, 1, 1, 1, 1}, k2 = {2, 1, 300, 301, 2, 2, 2, 2, 0, 0, 0, 0};
  run_pool(ctx, &k3, CLAI_DTYPE_F32, 0, 60);
  run_pool(ctx, &k2, CLAI_DTYPE_F32, 1, 61);
  run_pool(ctx, &k3, CLAI_DTYPE_F16, 0, 62);
  run_gap(ctx, CLAI_DTYPE_F32, 1, 3, 300, 301, 0, 1);
  run_gap(ctx, CLAI_DTYPE_F16, 2, 1, 300, 300, 1, 0);
}

static void test_pool_errors(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t xs[4] = {2, 3, 8, 8}, os[4] = {2, 3, 4, 4}, bad[4] = {2, 3, 4, 5}, s2[2] = {2, 3}, s3[3] = {2, 3, 1};
  clai_tensor *x, *o, *obad, *i32, *f32idx, *xi, *g2, *g3;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &x, CLAI_DTYPE_F32, 4, xs));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &o, CLAI_DTYPE_F32, 4, os));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &obad, CLAI_DTYPE_F32, 4, bad));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &i32, CLAI_DTYPE_I32, 4, os));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &f32idx, CLAI_DTYPE_F32, 4, os));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &xi, CLAI_DTYPE_I32, 4, xs));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &g2, CLAI_DTYPE_F32, 2, s2));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &g3, CLAI_DTYPE_F32, 3, s3));
  CLAIT_OK(ctx, clai_fill(ctx, x, 1.5));
  clai_pool2d_params p = {0};
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "at least 1x1", clai_max_pool2d(ctx, o, NULL, x, &p));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "params is NULL", clai_avg_pool2d(ctx, o, x, NULL));
  p.kernel_h = p.kernel_w = 2;
  p.pad_left = 2;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "padding", clai_max_pool2d(ctx, o, NULL, x, &p));
  p.pad_left = 0;
  p.stride_h = -1;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "stride", clai_avg_pool2d(ctx, o, x, &p));
  p.stride_h = 0;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "expected [2, 3, 4, 4]", clai_max_pool2d(ctx, obad, NULL, x, &p));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "indices is f32", clai_max_pool2d(ctx, o, f32idx, x, &p));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "x is i32", clai_avg_pool2d(ctx, o, xi, &p));
  clai_tensor *ibad, *xv;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &ibad, CLAI_DTYPE_I32, 4, bad));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "expected out's shape", clai_max_pool2d(ctx, o, ibad, x, &p));
  p.kernel_h = 9;
  p.kernel_w = 9;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "output size would be 0x0", clai_avg_pool2d(ctx, o, x, &p));
  p.kernel_h = p.kernel_w = 2;
  const int64_t xst[4] = {192, 64, 8, 1};
  CLAIT_OK(ctx, clai_tensor_view(x, &xv, 4, os, xst, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "must not overlap", clai_max_pool2d(ctx, xv, NULL, x, &p));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "expected [2, 3] or [2, 3, 1, 1]", clai_global_avg_pool2d(ctx, g3, x));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "must be 4-D", clai_global_avg_pool2d(ctx, g2, g3));
  /* still usable */
  CLAIT_OK(ctx, clai_global_avg_pool2d(ctx, g2, x));
  float got[6];
  CLAIT_OK(ctx, clai_tensor_read(g2, got, sizeof got));
  for (int i = 0; i < 6; i++) assert_true(got[i] == 1.5f);
  clai_tensor *all[] = {xv, ibad, x, o, obad, i32, f32idx, xi, g2, g3};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clai_tensor_free(all[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pool_f32, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_pool_f16, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_pool_views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_pool_default_stride, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_pool_nan, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_global_avg_pool, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_pool_loop_budget, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_pool_errors, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("pool2d", tests, 1);
}
