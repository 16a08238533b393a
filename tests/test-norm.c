/* test-norm.c - clai_softmax, clai_log_softmax, clai_layernorm and clai_rmsnorm against a double-precision
 * reference on the host: awkward and round row lengths, f32 and f16 storage in and out, scale, the causal
 * mask with Lq = Lk, Lq < Lk and Lq > Lk (fully masked rows), rows of -inf, large values (stability), rows
 * with a large offset (the variance must not cancel), strided views as input and output, in-place calls,
 * the optional gamma / beta / mean / rstd tensors, and every bad argument. The reference reads the input
 * back with clai_tensor_read, so it sees exactly the values the device normalises. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

/* ---- softmax ---------------------------------------------------------------------------------------- */

/* The reference softmax / log_softmax of x (dense doubles, rows of n, lq queries per group) into want. */
static void ref_softmax(const double *x, double *want, int64_t rows, int64_t n, int64_t lq, double scale, int causal,
                        int lg) {
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = x + r * n;
    double *w = want + r * n;
    int64_t m = n;
    if (causal) {
      int64_t lim = r % lq + (n - lq) + 1;
      m = lim < 0 ? 0 : lim > n ? n : lim;
    }
    double mx = -INFINITY, s = 0;
    for (int64_t j = 0; j < m; j++) mx = fmax(mx, scale * xr[j]);
    if (mx == -INFINITY) m = 0;
    for (int64_t j = 0; j < m; j++) s += exp(scale * xr[j] - mx);
    for (int64_t j = 0; j < n; j++) {
      if (j >= m) w[j] = lg ? -INFINITY : 0.0;
      else w[j] = lg ? scale * xr[j] - mx - log(s) : exp(scale * xr[j] - mx) / s;
    }
  }
}

static void expect_softmax(clai_context *ctx, clai_tensor *out, clai_tensor *x, const double *xv, float scale,
                           int causal, int lg) {
  int nd = clai_tensor_ndim(x);
  int64_t n = clai_tensor_dim(x, nd - 1), rows = clai_tensor_numel(x) / (n > 0 ? n : 1);
  int64_t lq = nd >= 2 ? clai_tensor_dim(x, nd - 2) : 1;
  double *want = malloc((size_t)(rows * n) * sizeof *want + 8), *got = clait_fetch(ctx, out);
  assert_non_null(want);
  ref_softmax(xv, want, rows, n, lq, scale == 0.0f ? 1.0 : scale, causal, lg);
  int h = clai_tensor_dtype(out) == CLAI_DTYPE_F16;
  for (int64_t i = 0; i < rows * n; i++) {
    double w = want[i], g = got[i];
    if (isinf(w) && g == w) continue;
    double tol = lg ? 2e-5 * (1 + fabs(w)) : 1e-6 + 1e-5 * fabs(w);
    if (h) tol += 1e-3 * fabs(w) + 1e-6;
    if (!(fabs(g - w) <= tol))
      fail_msg("%s of %lld rows of %lld (scale %g, causal %d, out %s): element %lld is %.9g, expected %.9g",
               lg ? "log_softmax" : "softmax", (long long)rows, (long long)n, (double)scale, causal,
               clai_dtype_name(clai_tensor_dtype(out)), (long long)i, g, w);
  }
  free(want);
  free(got);
}

/* Runs softmax / log_softmax of x into a new out of dtype odt and checks it. */
static void check_softmax(clai_context *ctx, clai_tensor *x, clai_dtype odt, float scale, int causal, int lg) {
  int nd = clai_tensor_ndim(x);
  int64_t shape[CLAI_MAX_DIMS];
  for (int i = 0; i < nd; i++) shape[i] = clai_tensor_dim(x, i);
  clai_tensor *out = clait_tensor(ctx, odt, nd, shape);
  clai_softmax_opts o = {scale, causal};
  CLAIT_OK(ctx, lg ? clai_log_softmax(ctx, out, x, &o) : clai_softmax(ctx, out, x, scale == 0 && !causal ? NULL : &o));
  double *xv = clait_fetch(ctx, x);
  expect_softmax(ctx, out, x, xv, scale, causal, lg);
  free(xv);
  clai_tensor_free(out);
}

static void test_softmax(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {11};
  static const struct {
    int nd;
    int64_t shape[3];
  } shapes[] = {{2, {1, 1}}, {2, {7, 31}}, {2, {3, 129}}, {2, {4, 1000}}, {3, {2, 3, 7}}, {3, {2, 7, 3}},
                {2, {5, 8}},  {1, {33}},    {3, {2, 16, 16}}, {2, {300, 7}}, {2, {1, 3999}}, {3, {3, 37, 31}},
                {2, {600, 1}}};
  float v[4000];
  clait_fill(&r, v, 4000, -8.0f, 8.0f);
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (int d = 0; d < 2; d++) {
      clai_dtype dt = d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
      clai_tensor *x = clait_upload_floats(ctx, dt, shapes[si].nd, shapes[si].shape, v);
      for (int lg = 0; lg < 2; lg++) {
        /* small mode: softmax in one of the dtypes and log_softmax in the other on each shape, by turns (each
         * with both dtypes across the shapes), each with all four outputs below */
        if (clait_small() && (si + (size_t)d + (size_t)lg) % 2) continue;
        check_softmax(ctx, x, CLAI_DTYPE_F32, 0.0f, 0, lg);
        check_softmax(ctx, x, dt, 0.125f, 0, lg);
        if (shapes[si].nd >= 2) {
          check_softmax(ctx, x, CLAI_DTYPE_F32, 0.0f, 1, lg);
          check_softmax(ctx, x, CLAI_DTYPE_F16, 0.5f, 1, lg);
        }
      }
      clai_tensor_free(x);
    }
}

/* Large scores (a naive exp overflows), rows of -inf, a row with one finite element, NaN. */
static void test_softmax_extremes(void **state) {
  clai_context *ctx = CTX(state);
  float v[4 * 20];
  for (int i = 0; i < 80; i++) v[i] = (float)((i * 37) % 200) - 100.0f + 0.25f * (float)i;
  for (int j = 0; j < 20; j++) v[20 + j] = -INFINITY; /* row 1: nothing to weigh */
  for (int j = 0; j < 20; j++) v[40 + j] = j == 13 ? 3.0f : -INFINITY;
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){4, 20}, v);
  for (int lg = 0; lg < 2; lg++) {
    check_softmax(ctx, x, CLAI_DTYPE_F32, 0.0f, 0, lg);
    check_softmax(ctx, x, CLAI_DTYPE_F32, 4.0f, 0, lg);
  }
  /* the -inf row is exactly 0 / -inf, not NaN */
  clai_tensor *o = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){4, 20});
  CLAIT_OK(ctx, clai_softmax(ctx, o, x, NULL));
  double *g = clait_fetch(ctx, o);
  for (int j = 0; j < 20; j++) assert_true(g[20 + j] == 0.0);
  assert_true(g[40 + 13] == 1.0);
  free(g);
  clai_tensor_free(o);
  clai_tensor_free(x);
  /* a NaN makes its row NaN and leaves the others alone */
  v[65] = NAN;
  x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){4, 20}, v);
  o = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){4, 20});
  CLAIT_OK(ctx, clai_softmax(ctx, o, x, NULL));
  g = clait_fetch(ctx, o);
  for (int j = 0; j < 20; j++)
    if (!isnan(g[60 + j]) || isnan(g[j])) fail_msg("NaN row: element %d is %g (row 0: %g)", j, g[60 + j], g[j]);
  free(g);
  /* a row of NaN only is NaN too (not a row with nothing to weigh), in the vector and the scalar path */
  clai_tensor_free(x);
  for (int j = 0; j < 20; j++) v[40 + j] = NAN;
  x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){4, 20}, v);
  for (int h = 0; h < 2; h++) {
    clai_tensor *oh = clait_tensor(ctx, h ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, 2, (int64_t[]){4, 20});
    CLAIT_OK(ctx, clai_log_softmax(ctx, oh, x, NULL));
    g = clait_fetch(ctx, oh);
    for (int j = 0; j < 20; j++)
      if (!isnan(g[40 + j])) fail_msg("all-NaN row (out %d): element %d is %g", h, j, g[40 + j]);
    free(g);
    clai_tensor_free(oh);
  }
  clai_tensor_free(o);
  clai_tensor_free(x);
}

/* A transposed input, a transposed output, an expanded (stride-0) input and an in-place call. */
static void test_softmax_views(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {3};
  float v[31 * 7];
  clait_fill(&r, v, 31 * 7, -4.0f, 4.0f);
  for (int d = 0; d < 2; d++) {
    clai_dtype dt = d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
    clai_tensor *base = clait_upload_floats(ctx, dt, 2, (int64_t[]){31, 7}, v), *xt = NULL, *row = NULL, *xe = NULL;
    CLAIT_OK(ctx, clai_tensor_transpose(base, &xt, 0, 1)); /* [7, 31], last-axis stride 7 */
    CLAIT_OK(ctx, clai_tensor_slice(base, &row, 0, 2, 3, 1));
    CLAIT_OK(ctx, clai_tensor_expand(row, &xe, 3, (int64_t[]){2, 3, 7}));
    for (int lg = 0; lg < 2; lg++) {
      check_softmax(ctx, xt, CLAI_DTYPE_F32, 0.0f, 1, lg);
      check_softmax(ctx, xe, dt, 0.25f, 1, lg);
      /* strided output: softmax of base written through a transposed view of a [7, 31] tensor */
      clai_tensor *o = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){7, 31}), *ot = NULL;
      CLAIT_OK(ctx, clai_tensor_transpose(o, &ot, 0, 1));
      CLAIT_OK(ctx, lg ? clai_log_softmax(ctx, ot, base, NULL) : clai_softmax(ctx, ot, base, NULL));
      double *xv = clait_fetch(ctx, base);
      expect_softmax(ctx, ot, base, xv, 0.0f, 0, lg);
      /* in place */
      clai_tensor *c = clait_upload_floats(ctx, dt, 2, (int64_t[]){31, 7}, v);
      CLAIT_OK(ctx, lg ? clai_log_softmax(ctx, c, c, NULL) : clai_softmax(ctx, c, c, NULL));
      expect_softmax(ctx, c, base, xv, 0.0f, 0, lg);
      free(xv);
      clai_tensor_free(c);
      clai_tensor_free(ot);
      clai_tensor_free(o);
    }
    clai_tensor_free(xe);
    clai_tensor_free(row);
    clai_tensor_free(xt);
    clai_tensor_free(base);
  }
}

/* ---- layernorm / rmsnorm -------------------------------------------------------------------------------- */

/* Runs layernorm (rms = 0) or rmsnorm on x with the optional parameters and checks out, mean and rstd. */
static void check_norm(clai_context *ctx, int rms, clai_tensor *x, clai_tensor *gamma, clai_tensor *beta, float eps,
                       clai_dtype odt, int stats) {
  int nd = clai_tensor_ndim(x);
  int64_t shape[CLAI_MAX_DIMS];
  for (int i = 0; i < nd; i++) shape[i] = clai_tensor_dim(x, i);
  int64_t n = shape[nd - 1], rows = clai_tensor_numel(x) / n;
  clai_tensor *out = clait_tensor(ctx, odt, nd, shape), *mean = NULL, *rstd = NULL;
  if (stats) {
    if (!rms) mean = clait_tensor(ctx, CLAI_DTYPE_F32, nd - 1, shape);
    shape[nd - 1] = 1;
    rstd = clait_tensor(ctx, CLAI_DTYPE_F32, nd, shape); /* keepdim form */
  }
  if (rms)
    CLAIT_OK(ctx, clai_rmsnorm(ctx, out, x, gamma, eps, rstd));
  else
    CLAIT_OK(ctx, clai_layernorm(ctx, out, x, gamma, beta, eps, mean, rstd));
  double *xv = clait_fetch(ctx, x), *got = clait_fetch(ctx, out), *gv = gamma ? clait_fetch(ctx, gamma) : NULL;
  double *bv = beta ? clait_fetch(ctx, beta) : NULL, *mg = mean ? clait_fetch(ctx, mean) : NULL, *rg = rstd ? clait_fetch(ctx, rstd) : NULL;
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = xv + r * n;
    double m = 0, q = 0, big = 0;
    for (int64_t j = 0; j < n; j++) {
      m += xr[j];
      big = fmax(big, fabs(xr[j]));
    }
    m = rms ? 0 : m / (double)n;
    for (int64_t j = 0; j < n; j++) q += (xr[j] - m) * (xr[j] - m);
    double rs = 1.0 / sqrt(q / (double)n + eps);
    /* f32 rounding of x - mean is about 6e-8 * max|x|; scaled by rstd */
    double atol = 1e-5 + 3e-7 * big * rs, rtol = odt == CLAI_DTYPE_F16 ? 1e-3 : 2e-5;
    for (int64_t j = 0; j < n; j++) {
      double w = (xr[j] - m) * rs * (gv ? gv[j] : 1.0) + (bv ? bv[j] : 0.0), g = got[r * n + j];
      if (!(fabs(g - w) <= atol * (gv ? fabs(gv[j]) + 1 : 1) + rtol * fabs(w)))
        fail_msg("%s row %lld of %lld x %lld: element %lld is %.9g, expected %.9g", rms ? "rmsnorm" : "layernorm",
                 (long long)r, (long long)rows, (long long)n, (long long)j, g, w);
    }
    if (mg && !(fabs(mg[r] - m) <= 1e-6 * fabs(m) + 1e-7 * big + 1e-7))
      fail_msg("layernorm mean of row %lld is %.9g, expected %.9g", (long long)r, mg[r], m);
    if (rg && !(fabs(rg[r] - rs) <= (1e-5 + 1e-7 * big * big * rs * rs) * rs))
      fail_msg("%s rstd of row %lld is %.9g, expected %.9g", rms ? "rmsnorm" : "layernorm", (long long)r, rg[r], rs);
  }
  free(xv);
  free(got);
  free(gv);
  free(bv);
  free(mg);
  free(rg);
  clai_tensor_free(rstd);
  clai_tensor_free(mean);
  clai_tensor_free(out);
}

static void test_norms(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {21};
  static const int64_t lens[] = {1, 7, 31, 129, 1000, 64};
  float v[5 * 1000], p[2000];
  clait_fill(&r, v, 5000, -3.0f, 5.0f);
  clait_fill(&r, p, 2000, -2.0f, 2.0f);
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
    for (int d = 0; d < 2; d++) {
      clai_dtype dt = d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
      int64_t n = lens[li];
      clai_tensor *x = clait_upload_floats(ctx, dt, 2, (int64_t[]){5, n}, v);
      clai_tensor *g = clait_upload_floats(ctx, dt, 1, (int64_t[]){n}, p), *b = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){n}, p + 1000);
      for (int rms = 0; rms < 2; rms++) {
        check_norm(ctx, rms, x, NULL, NULL, 1e-5f, CLAI_DTYPE_F32, 0);
        check_norm(ctx, rms, x, g, rms ? NULL : b, 1e-5f, CLAI_DTYPE_F32, 1);
        check_norm(ctx, rms, x, g, NULL, 0.1f, dt, 1);
      }
      clai_tensor_free(b);
      clai_tensor_free(g);
      clai_tensor_free(x);
    }
  /* many short rows (several per work-group in the wg kernels, the last group part-full) and one long row */
  static const int64_t many[][2] = {{300, 7}, {37, 129}, {1000, 1}, {1, 4097}};
  for (size_t si = 0; si < sizeof many / sizeof many[0]; si++) {
    clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, many[si], v);
    clai_tensor *g = clait_upload_floats(ctx, CLAI_DTYPE_F16, 1, (int64_t[]){many[si][1]}, v + 1);
    for (int rms = 0; rms < 2; rms++) {
      check_norm(ctx, rms, x, NULL, NULL, 1e-5f, CLAI_DTYPE_F32, 1);
      check_norm(ctx, rms, x, g, NULL, 1e-5f, CLAI_DTYPE_F16, 1);
    }
    clai_tensor_free(g);
    clai_tensor_free(x);
  }
}

/* Issue 10, defect 7: rows of an empty last dim have no mean and no spread. Their statistics are NaN (as
 * clai_reduce's mean over an empty axis), written into every row of mean_out and rstd_out, never left as
 * they were; out (empty) is untouched. */
static void test_norm_empty_rows(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t xs[3] = {2, 3, 0}, ss[2] = {2, 3}, sk[3] = {2, 3, 1};
  clai_tensor *x = clait_tensor(ctx, CLAI_DTYPE_F32, 3, xs), *out = clait_tensor(ctx, CLAI_DTYPE_F16, 3, xs);
  clai_tensor *mean = clait_tensor(ctx, CLAI_DTYPE_F32, 2, ss), *rstd = clait_tensor(ctx, CLAI_DTYPE_F32, 3, sk);
  float got[6];
  for (int rms = 0; rms < 2; rms++) {
    CLAIT_OK(ctx, clai_fill(ctx, mean, 5.0));
    CLAIT_OK(ctx, clai_fill(ctx, rstd, 5.0));
    if (rms)
      CLAIT_OK(ctx, clai_rmsnorm(ctx, out, x, NULL, 1e-5f, rstd));
    else
      CLAIT_OK(ctx, clai_layernorm(ctx, out, x, NULL, NULL, 1e-5f, mean, rstd));
    CLAIT_OK(ctx, clai_tensor_read(rstd, got, sizeof got));
    for (int i = 0; i < 6; i++)
      if (!isnan(got[i])) fail_msg("%s: rstd[%d] of an empty row is %g, expected NaN", rms ? "rmsnorm" : "layernorm", i, got[i]);
    CLAIT_OK(ctx, clai_tensor_read(mean, got, sizeof got));
    for (int i = 0; i < 6; i++) {
      const int want_nan = !rms; /* rmsnorm has no mean_out: it keeps the 5 written above */
      if (want_nan ? !isnan(got[i]) : got[i] != 5.0f)
        fail_msg("%s: mean[%d] is %g, expected %s", rms ? "rmsnorm" : "layernorm", i, got[i], want_nan ? "NaN" : "5");
    }
  }
  /* no rows at all: nothing to write, and nothing fails */
  const int64_t x0[2] = {0, 4}, s0[1] = {0};
  clai_tensor *e = clait_tensor(ctx, CLAI_DTYPE_F32, 2, x0), *eo = clait_tensor(ctx, CLAI_DTYPE_F32, 2, x0);
  clai_tensor *em = clait_tensor(ctx, CLAI_DTYPE_F32, 1, s0);
  CLAIT_OK(ctx, clai_layernorm(ctx, eo, e, NULL, NULL, 1e-5f, em, NULL));
  clai_tensor_free(em);
  clai_tensor_free(eo);
  clai_tensor_free(e);
  clai_tensor_free(rstd);
  clai_tensor_free(mean);
  clai_tensor_free(out);
  clai_tensor_free(x);
}

/* Rows around 1000 with unit spread: the variance must come from two passes, not E[x^2] - E[x]^2. */
static void test_norm_offset(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {8};
  float v[3 * 4096];
  for (int i = 0; i < 3 * 4096; i++) v[i] = 1000.0f + clait_uniform(&r, -1.0f, 1.0f);
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){3, 4096}, v);
  check_norm(ctx, 0, x, NULL, NULL, 1e-6f, CLAI_DTYPE_F32, 1);
  check_norm(ctx, 1, x, NULL, NULL, 1e-6f, CLAI_DTYPE_F32, 1);
  clai_tensor_free(x);
}

/* Strided x, out, gamma and beta; an in-place call. */
static void test_norm_views(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {4};
  float v[129 * 7], p[2 * 129];
  clait_fill(&r, v, 129 * 7, -2.0f, 2.0f);
  clait_fill(&r, p, 2 * 129, -1.0f, 1.0f);
  for (int d = 0; d < 2; d++) {
    clai_dtype dt = d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
    clai_tensor *base = clait_upload_floats(ctx, dt, 2, (int64_t[]){129, 7}, v), *xt = NULL;
    CLAIT_OK(ctx, clai_tensor_transpose(base, &xt, 0, 1)); /* [7, 129], last-axis stride 7 */
    clai_tensor *pp = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){2 * 129}, p), *g = NULL, *b = NULL;
    CLAIT_OK(ctx, clai_tensor_slice(pp, &g, 0, 0, 258, 2)); /* stride 2 */
    CLAIT_OK(ctx, clai_tensor_slice(pp, &b, 0, 1, 258, 2));
    for (int rms = 0; rms < 2; rms++) {
      check_norm(ctx, rms, xt, g, rms ? NULL : b, 1e-5f, CLAI_DTYPE_F32, 1);
      check_norm(ctx, rms, xt, NULL, NULL, 1e-5f, dt, 0);
    }
    /* in place, on a dense copy */
    clai_tensor *c = clait_upload_floats(ctx, dt, 2, (int64_t[]){129, 7}, v), *o = clait_tensor(ctx, dt, 2, (int64_t[]){129, 7});
    CLAIT_OK(ctx, clai_layernorm(ctx, o, c, NULL, NULL, 1e-5f, NULL, NULL));
    CLAIT_OK(ctx, clai_layernorm(ctx, c, c, NULL, NULL, 1e-5f, NULL, NULL));
    double *want = clait_fetch(ctx, o), *got = clait_fetch(ctx, c);
    for (int i = 0; i < 129 * 7; i++) assert_true(want[i] == got[i]);
    free(want);
    free(got);
    clai_tensor_free(o);
    clai_tensor_free(c);
    clai_tensor_free(b);
    clai_tensor_free(g);
    clai_tensor_free(pp);
    clai_tensor_free(xt);
    clai_tensor_free(base);
  }
}

/* Rows too many for the cache: where x and out together exceed the device's cache, POCL writes out with
 * non-temporal stores (from each row's first 32-byte boundary on: rows of 1030 start at every alignment),
 * with and without gamma and beta, in place too. Full size only. */
static void test_norm_large(void **state) {
  clai_context *ctx = CTX(state);
  if (clait_small()) return;
  clait_rng r = {31};
  const int64_t R = 4500, C = 1030;
  float *v = malloc((size_t)(R * C) * sizeof *v), p[2 * 1030];
  assert_non_null(v);
  clait_fill(&r, v, (size_t)(R * C), -3.0f, 5.0f);
  clait_fill(&r, p, 2 * 1030, -2.0f, 2.0f);
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){R, C}, v);
  clai_tensor *g = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){C}, p);
  clai_tensor *b = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){C}, p + C);
  check_norm(ctx, 0, x, g, b, 1e-5f, CLAI_DTYPE_F32, 1);
  check_norm(ctx, 0, x, NULL, NULL, 1e-5f, CLAI_DTYPE_F32, 0);
  check_norm(ctx, 1, x, g, NULL, 1e-5f, CLAI_DTYPE_F32, 1);
  clai_tensor *o = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){R, C});
  CLAIT_OK(ctx, clai_layernorm(ctx, o, x, g, b, 1e-5f, NULL, NULL));
  CLAIT_OK(ctx, clai_layernorm(ctx, x, x, g, b, 1e-5f, NULL, NULL));
  double *want = clait_fetch(ctx, o), *got = clait_fetch(ctx, x);
  for (int64_t i = 0; i < R * C; i++)
    if (want[i] != got[i]) fail_msg("layernorm in place: element %lld is %.9g, out of place %.9g", (long long)i, got[i], want[i]);
  free(want);
  free(got);
  clai_tensor_free(o);
  clai_tensor_free(b);
  clai_tensor_free(g);
  clai_tensor_free(x);
  free(v);
}

/* One row of 600000 elements. llvmpipe stops all of a work-item's loops after 65535 iterations in all, and
 * the row kernels there walk a row in 32 lanes, three passes: such a row is refused (CLAI_E_UNSUPPORTED,
 * where it used to come out wrong: softmax's last elements 0) and the context goes on; elsewhere it is
 * computed. A column sum over 300000 rows (op-reduce.c's chunks of the axis) is right everywhere. */
static void test_long_rows(void **state) {
  clai_context *ctx = CTX(state);
  const int limited = clait_llvmpipe(ctx); /* (its row kernels' lanes; POCL's groups are wider) */
  /* (a simulator, in small mode, gets shorter ones) */
  const int64_t n = limited ? 600000 : CLAIT_SIZE(600000, 100000), rows = limited ? 300000 : CLAIT_SIZE(300000, 70000);
  float *v = malloc((size_t)n * sizeof *v);
  assert_non_null(v);
  for (int64_t i = 0; i < n; i++) v[i] = (float)(i % 7) - 3.0f;
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){1, n}, v);
  clai_tensor *o = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){1, n});
  if (limited) {
    CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "llvmpipe", clai_softmax(ctx, o, x, NULL));
    CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "llvmpipe", clai_layernorm(ctx, o, x, NULL, NULL, 1e-5f, NULL, NULL));
  } else {
    double z = 0;
    for (int k = 0; k < 7; k++) z += (double)(n / 7 + (k < n % 7)) * exp(k - 6.0);
    CLAIT_OK(ctx, clai_softmax(ctx, o, x, NULL));
    double *got = clait_fetch(ctx, o);
    for (int64_t i = 0; i < n; i++) {
      const double want = exp((double)(i % 7) - 6.0) / z;
      if (!(fabs(got[i] - want) <= 1e-4 * want))
        fail_msg("softmax of a long row: %lld is %.9g, want %.9g", (long long)i, got[i], want);
    }
    free(got);
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += v[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += (v[i] - mean) * (v[i] - mean);
    const double rstd = 1 / sqrt(var / (double)n + 1e-5);
    CLAIT_OK(ctx, clai_layernorm(ctx, o, x, NULL, NULL, 1e-5f, NULL, NULL));
    got = clait_fetch(ctx, o);
    for (int64_t i = 0; i < n; i++) {
      const double want = (v[i] - mean) * rstd;
      if (!(fabs(got[i] - want) <= 1e-4 * (1 + fabs(want))))
        fail_msg("layernorm of a long row: %lld is %.9g, want %.9g", (long long)i, got[i], want);
    }
    free(got);
  }
  /* a short row still works (on llvmpipe: after the refusals) */
  clai_tensor *x3 = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){1, 3}, v),
              *o3 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){1, 3});
  CLAIT_OK(ctx, clai_softmax(ctx, o3, x3, NULL));
  double *g3 = clait_fetch(ctx, o3);
  const double z3 = exp(-3.0) + exp(-2.0) + exp(-1.0);
  for (int i = 0; i < 3; i++) assert_true(fabs(g3[i] - exp(i - 3.0) / z3) <= 1e-6);
  free(g3);
  /* the column sums of [rows, 3]: (i % 7) - 3, 1 and 0.5 */
  float *c = malloc((size_t)rows * 3 * sizeof *c);
  assert_non_null(c);
  double want[3] = {0, (double)rows, 0.5 * (double)rows};
  for (int64_t i = 0; i < rows; i++) {
    c[3 * i] = (float)(i % 7) - 3.0f, c[3 * i + 1] = 1.0f, c[3 * i + 2] = 0.5f;
    want[0] += (double)(i % 7) - 3.0;
  }
  clai_tensor *xc = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){rows, 3}, c);
  clai_tensor *sc = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){3});
  CLAIT_OK(ctx, clai_reduce(ctx, CLAI_REDUCE_SUM, sc, xc, 0, 0));
  double *gs = clait_fetch(ctx, sc);
  for (int k = 0; k < 3; k++)
    if (!(fabs(gs[k] - want[k]) <= 1e-3 * (1 + fabs(want[k]))))
      fail_msg("column %d of %lld rows sums to %.9g, want %.9g", k, (long long)rows, gs[k], want[k]);
  free(gs);
  clai_tensor *all[] = {x, o, x3, o3, xc, sc};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clai_tensor_free(all[i]);
  free(v);
  free(c);
}

/* ---- the row-kernel variant ------------------------------------------------------------------------ */

/* The variant CLAI_ROWS forces (else the device's default) is the one that runs. */
static void test_rows_variant(void **state) {
  (void)state;
  clai_context *ctx = clait_profiled_ctx();
  const int wg = clait_rows_wg(ctx);
  clait_rng r = {12};
  float v[37 * 129];
  clait_fill(&r, v, 37 * 129, -3.0f, 3.0f);
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){37, 129}, v);
  clai_tensor *o = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){37, 129});
  clai_profile_reset(ctx);
  CLAIT_OK(ctx, clai_softmax(ctx, o, x, NULL));
  clait_expect_kernel(ctx, "clai_softmax_wg", wg);
  clait_expect_kernel(ctx, "clai_softmax", !wg);
  clai_profile_reset(ctx);
  CLAIT_OK(ctx, clai_rmsnorm(ctx, o, x, NULL, 1e-5f, NULL));
  clait_expect_kernel(ctx, "clai_layernorm_wg", wg);
  clait_expect_kernel(ctx, "clai_layernorm", !wg);
  clai_tensor_free(o);
  clai_tensor_free(x);
  clai_context_free(ctx);
}

/* ---- errors ------------------------------------------------------------------------------------------ */

static void test_errors(void **state) {
  clai_context *ctx = CTX(state);
  float v[12] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){3, 4}, v);
  clai_tensor *o = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){3, 4}), *o43 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){4, 3});
  clai_tensor *xi = clait_tensor(ctx, CLAI_DTYPE_I32, 2, (int64_t[]){3, 4}), *v1 = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){4}, v);
  clai_tensor *g3 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){3}), *gi = clait_tensor(ctx, CLAI_DTYPE_I32, 1, (int64_t[]){4});
  clai_tensor *m3 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){3}), *m4 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){4});
  clai_tensor *mh = clait_tensor(ctx, CLAI_DTYPE_F16, 1, (int64_t[]){3}), *s0 = clait_tensor(ctx, CLAI_DTYPE_F32, 0, NULL);
  clai_tensor *m6 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){6}), *mstep = NULL, *shift = NULL, *big = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(m6, &mstep, 0, 0, 6, 2));
  clai_tensor *bigb = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){13});
  CLAIT_OK(ctx, clai_tensor_reshape(bigb, &big, 1, (int64_t[]){13}));
  clai_tensor *xb = NULL, *ob = NULL;
  CLAIT_OK(ctx, clai_tensor_view(big, &xb, 2, (int64_t[]){3, 4}, (int64_t[]){4, 1}, 0));
  CLAIT_OK(ctx, clai_tensor_view(big, &shift, 2, (int64_t[]){3, 4}, (int64_t[]){4, 1}, 1));
  (void)ob;
  clai_softmax_opts causal = {0, 1}, inf = {INFINITY, 0};
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "differ in shape", clai_softmax(ctx, o43, x, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "i32", clai_softmax(ctx, o, xi, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "0-d", clai_log_softmax(ctx, s0, s0, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "causal", clai_softmax(ctx, m4, v1, &causal));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "scale", clai_softmax(ctx, o, x, &inf));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_softmax(ctx, shift, xb, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "NULL", clai_softmax(ctx, o, NULL, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "gamma", clai_layernorm(ctx, o, x, g3, NULL, 1e-5f, NULL, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "gamma", clai_rmsnorm(ctx, o, x, gi, 1e-5f, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "beta", clai_layernorm(ctx, o, x, NULL, x, 1e-5f, NULL, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "mean_out", clai_layernorm(ctx, o, x, NULL, NULL, 1e-5f, m4, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "rstd_out", clai_layernorm(ctx, o, x, NULL, NULL, 1e-5f, NULL, mh));
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "rstd_out", clai_rmsnorm(ctx, o, x, NULL, 1e-5f, mstep));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_layernorm(ctx, o, x, NULL, NULL, 1e-5f, m3, m3));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "eps", clai_layernorm(ctx, o, x, NULL, NULL, -1.0f, NULL, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "eps", clai_rmsnorm(ctx, o, x, NULL, NAN, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_rmsnorm(ctx, shift, xb, NULL, 1e-5f, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "f32 or f16", clai_layernorm(ctx, xi, x, NULL, NULL, 1e-5f, NULL, NULL));
  /* x is unchanged and the context still works */
  double *xv = clait_fetch(ctx, x);
  for (int i = 0; i < 12; i++) assert_true(xv[i] == v[i]);
  CLAIT_OK(ctx, clai_softmax(ctx, o, x, NULL));
  expect_softmax(ctx, o, x, xv, 0.0f, 0, 0);
  free(xv);
  clai_tensor *all[] = {x, o, o43, xi, v1, g3, gi, m3, m4, mh, s0, mstep, m6, shift, xb, big, bigb};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clai_tensor_free(all[i]);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clait_setup, clait_teardown)
int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_softmax), T(test_softmax_extremes), T(test_softmax_views), T(test_norms),
      T(test_norm_offset), T(test_norm_views), T(test_norm_large), T(test_long_rows), T(test_rows_variant),
      T(test_errors), T(test_norm_empty_rows),
  };
  return CLAIT_MAIN("norm", tests, 1);
}
