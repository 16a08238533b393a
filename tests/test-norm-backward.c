/* test-norm-backward.c - clai_softmax_backward, clai_log_softmax_backward, clai_layernorm_backward and
 * clai_rmsnorm_backward against double-precision references on the host: the analytic gradient (computed
 * from exactly the values the device reads) on awkward and round row lengths, f32 and f16 storage,
 * transposed / sliced / expanded views, in-place grad_x = grad_y, rows of length 1 and 10^5, with and
 * without gamma / beta, scale and the causal mask; central finite differences of a double forward on tiny
 * shapes (which checks the formulas themselves); bit-identical repeated runs; the forward's saved mean /
 * rstd fed straight in; and every bad argument, with the context used again afterwards. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

enum { DENSE = 0, TRANSPOSED = 1, SLICED = 2, EXPANDED = 3 };

/* v rounded to what a tensor of dtype dt holds. */
static double rnd(clai_dtype dt, double v) {
  float f = (float)v;
  return dt == CLAI_DTYPE_F32 ? f : clait_f16_to_f32(clait_f32_to_f16(f));
}

/* A [B, L, n] tensor of layout `kind` (its base in *base, to free) holding v (dense, B*L*n doubles), which is
 * first rounded to dt and, for EXPANDED, made equal across B. */
static clai_tensor *put3(clai_context *ctx, clai_dtype dt, int64_t B, int64_t L, int64_t n, double *v, int kind,
                         clai_tensor **base) {
  const int64_t shape[3] = {B, L, n};
  size_t cnt = (size_t)(B * L * n);
  if (kind == EXPANDED)
    for (size_t i = (size_t)(L * n); i < cnt; i++) v[i] = v[i % (size_t)(L * n)];
  for (size_t i = 0; i < cnt; i++) v[i] = rnd(dt, v[i]);
  clai_tensor *t = NULL;
  if (kind == DENSE) {
    *base = NULL;
    t = clait_tensor(ctx, dt, 3, shape);
    clait_put(ctx, t, v);
    return t;
  }
  if (kind == TRANSPOSED) {
    const int64_t bs[3] = {B, n, L};
    *base = clait_tensor(ctx, dt, 3, bs);
    CLAIT_OK(ctx, clai_tensor_transpose(*base, &t, 1, 2));
  } else if (kind == SLICED) {
    const int64_t bs[3] = {B, L, 2 * n + 1};
    *base = clait_tensor(ctx, dt, 3, bs);
    CLAIT_OK(ctx, clai_tensor_slice(*base, &t, 2, 1, 2 * n + 1, 2));
  } else {
    const int64_t bs[3] = {1, L, n};
    *base = clait_tensor(ctx, dt, 3, bs);
    clait_put(ctx, *base, v);
    CLAIT_OK(ctx, clai_tensor_expand(*base, &t, 3, shape));
    return t;
  }
  clait_put(ctx, t, v);
  return t;
}

static void free2(clai_tensor *t, clai_tensor *base) {
  clai_tensor_free(t);
  clai_tensor_free(base);
}

static double *randv(clait_rng *r, size_t n, double lo, double hi) {
  double *v = malloc(n * sizeof *v + 8);
  assert_non_null(v);
  for (size_t i = 0; i < n; i++) v[i] = clait_uniform(r, (float)lo, (float)hi);
  return v;
}

static int64_t unmasked(int64_t r, int64_t lq, int64_t n, int causal) {
  if (!causal) return n;
  int64_t m = r % lq + (n - lq) + 1;
  return m < 0 ? 0 : m > n ? n : m;
}

/* double forward: y = softmax / log_softmax(scale * x) over the first m of each row's n (masked: 0 / -inf) */
static void fwd_softmax(const double *x, double *y, int64_t rows, int64_t lq, int64_t n, double scale, int causal,
                        int lg) {
  for (int64_t r = 0; r < rows; r++) {
    const int64_t m = unmasked(r, lq, n, causal);
    const double *xr = x + r * n;
    double *yr = y + r * n, mx = -INFINITY, s = 0;
    for (int64_t j = 0; j < m; j++) mx = fmax(mx, scale * xr[j]);
    for (int64_t j = 0; j < m; j++) s += exp(scale * xr[j] - mx);
    for (int64_t j = 0; j < n; j++)
      yr[j] = j >= m ? (lg ? -INFINITY : 0.0) : lg ? scale * xr[j] - mx - log(s) : exp(scale * xr[j] - mx) / s;
  }
}

/* the analytic gradient from y (the forward output) and gy */
static void ref_softmax_bwd(const double *y, const double *gy, double *gx, int64_t rows, int64_t lq, int64_t n,
                            double scale, int causal, int lg) {
  for (int64_t r = 0; r < rows; r++) {
    const int64_t m = unmasked(r, lq, n, causal);
    const double *yr = y + r * n, *gr = gy + r * n;
    double s = 0;
    for (int64_t j = 0; j < m; j++) s += lg ? gr[j] : gr[j] * yr[j];
    for (int64_t j = 0; j < n; j++)
      gx[r * n + j] = j >= m ? 0.0 : lg ? scale * (gr[j] - exp(yr[j]) * s) : scale * yr[j] * (gr[j] - s);
  }
}

/* sum over unmasked positions of gy * y(x): the scalar whose x-gradient the backward computes */
static double loss_softmax(const double *x, const double *gy, double *tmp, int64_t rows, int64_t lq, int64_t n,
                           double scale, int causal, int lg) {
  fwd_softmax(x, tmp, rows, lq, n, scale, causal, lg);
  double l = 0;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < unmasked(r, lq, n, causal); j++) l += gy[r * n + j] * tmp[r * n + j];
  return l;
}

static void expect_close(const char *what, const float *got, const double *want, size_t n, double atol, double rtol) {
  clait_expect_close(what, got, want, n, atol, rtol);
}

/* One softmax-backward case: [B, L, n], dtype dt for all three tensors, layouts ky (y), kg (grad_y) and kx
 * (grad_x; -1: in place into grad_y), finite differences when fd. */
static void sm_case(clai_context *ctx, int lg, int64_t B, int64_t L, int64_t n, float scale, int causal, clai_dtype dt,
                    int ky, int kg, int kx, int fd) {
  clait_rng rng = {0x1234u + (uint64_t)(B * 131 + L * 17 + n + lg + kx * 7)};
  const int64_t rows = B * L;
  const size_t cnt = (size_t)(rows * n);
  double *x = randv(&rng, cnt, -2, 2), *gy = randv(&rng, cnt, -1, 1), *y = malloc(cnt * 8 + 8),
         *want = malloc(cnt * 8 + 8);
  const double sc = scale == 0.0f ? 1.0 : scale;
  if (ky == EXPANDED)
    for (size_t i = (size_t)(L * n); i < cnt; i++) x[i] = x[i % (size_t)(L * n)];
  fwd_softmax(x, y, rows, L, n, sc, causal, lg);
  clai_tensor *by, *bg, *bx = NULL, *tx = NULL;
  clai_tensor *ty = put3(ctx, dt, B, L, n, y, ky, &by), *tg = put3(ctx, dt, B, L, n, gy, kg, &bg);
  if (kx >= 0) {
    double *z = calloc(cnt + 1, 8);
    tx = put3(ctx, dt, B, L, n, z, kx, &bx);
    free(z);
  }
  clai_softmax_opts o = {scale, causal};
  clai_tensor *out = kx >= 0 ? tx : tg;
  CLAIT_OK(ctx, (lg ? clai_log_softmax_backward : clai_softmax_backward)(ctx, out, tg, ty, &o));
  float *got = clait_get(ctx, out);
  ref_softmax_bwd(y, gy, want, rows, L, n, sc, causal, lg);
  const double atol = dt == CLAI_DTYPE_F32 ? 2e-6 * sc * (lg ? sqrt((double)n) + 1 : 1) : 2e-3 * sc * (lg ? sqrt((double)n) + 1 : 1);
  expect_close(lg ? "log_softmax_backward" : "softmax_backward", got, want, cnt, atol, dt == CLAI_DTYPE_F32 ? 1e-4 : 1e-2);
  if (fd) { /* central differences of the double forward on the unrounded-as-uploaded gy */
    double *tmp = malloc(cnt * 8 + 8), h = 1e-6;
    for (size_t i = 0; i < cnt; i++) {
      const double x0 = x[i];
      x[i] = x0 + h;
      double lp = loss_softmax(x, gy, tmp, rows, L, n, sc, causal, lg);
      x[i] = x0 - h;
      double lm = loss_softmax(x, gy, tmp, rows, L, n, sc, causal, lg);
      x[i] = x0;
      want[i] = (lp - lm) / (2 * h);
    }
    expect_close("softmax_backward vs finite differences", got, want, cnt, 1e-4, 1e-3);
    free(tmp);
  }
  free(got);
  free(x), free(gy), free(y), free(want);
  free2(ty, by), free2(tg, bg), free2(tx, bx);
}

static void test_softmax_fd(void **state) {
  clai_context *ctx = CTX(state);
  for (int lg = 0; lg < 2; lg++) {
    sm_case(ctx, lg, 1, 1, 1, 0, 0, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 1);
    sm_case(ctx, lg, 2, 3, 5, 0, 0, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 1);
    sm_case(ctx, lg, 1, 4, 7, 0.37f, 0, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 1);
    sm_case(ctx, lg, 2, 5, 5, 1.3f, 1, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 1);  /* Lq = Lk */
    sm_case(ctx, lg, 1, 3, 9, 0.5f, 1, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 1);  /* Lq < Lk */
    sm_case(ctx, lg, 1, 6, 3, 2.0f, 1, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 1);  /* Lq > Lk: empty rows */
    sm_case(ctx, lg, 1, 2, 11, 0.7f, 1, CLAI_DTYPE_F32, TRANSPOSED, SLICED, SLICED, 1);
  }
}

static void test_softmax_shapes(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t ns[] = {1, 7, 31, 129, 1000, 64};
  for (int lg = 0; lg < 2; lg++) {
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
      sm_case(ctx, lg, 3, 5, ns[i], 0, 0, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 0);
      sm_case(ctx, lg, 2, 7, ns[i], 0.125f, 1, CLAI_DTYPE_F16, DENSE, DENSE, DENSE, 0);
    }
    sm_case(ctx, lg, 2, 33, 129, 0.25f, 1, CLAI_DTYPE_F32, DENSE, DENSE, -1, 0); /* in place */
    sm_case(ctx, lg, 3, 17, 40, 0, 0, CLAI_DTYPE_F32, TRANSPOSED, EXPANDED, SLICED, 0);
    sm_case(ctx, lg, 3, 9, 23, 1.5f, 1, CLAI_DTYPE_F16, SLICED, TRANSPOSED, TRANSPOSED, 0);
    sm_case(ctx, lg, 4, 75, 7, 0.5f, 1, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 0); /* many short rows, Lq > Lk */
    sm_case(ctx, lg, 3, 100, 1, 0, 0, CLAI_DTYPE_F16, DENSE, SLICED, DENSE, 0);
    sm_case(ctx, lg, 1, 2, CLAIT_SIZE(100000, 5000), 0, 0, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 0); /* long rows */
    sm_case(ctx, lg, 1, 2, CLAIT_SIZE(100000, 5000), 0, 0, CLAI_DTYPE_F16, DENSE, SLICED, DENSE, 0);
    /* past llvmpipe's loop limit (65535 iterations) in small mode too: a per-item walk of this row fails there */
    if (clait_small()) sm_case(ctx, lg, 1, 1, 70000, 0, 0, CLAI_DTYPE_F16, DENSE, SLICED, DENSE, 0);
  }
}

/* ---- layernorm / rmsnorm ------------------------------------------------------------------------------ */

/* double forward: out = (x - mean) * rstd * gamma + beta (rms: mean 0), per row; mean / rstd saved */
static void fwd_norm(const double *x, const double *gamma, const double *beta, double *out, double *mean,
                     double *rstd, int64_t rows, int64_t n, double eps, int rms) {
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = x + r * n;
    double mu = 0, v = 0;
    if (!rms) {
      for (int64_t j = 0; j < n; j++) mu += xr[j];
      mu /= (double)n;
    }
    for (int64_t j = 0; j < n; j++) v += (xr[j] - mu) * (xr[j] - mu);
    const double rs = 1.0 / sqrt(v / (double)n + eps);
    if (mean) mean[r] = mu;
    if (rstd) rstd[r] = rs;
    if (out)
      for (int64_t j = 0; j < n; j++)
        out[r * n + j] = (xr[j] - mu) * rs * (gamma ? gamma[j] : 1) + (beta ? beta[j] : 0);
  }
}

static void ref_norm_bwd(const double *x, const double *gy, const double *gamma, const double *mean, const double *rstd,
                         double *gx, double *gg, double *gb, int64_t rows, int64_t n, int rms) {
  for (int64_t j = 0; j < n; j++) gg[j] = gb[j] = 0;
  for (int64_t r = 0; r < rows; r++) {
    const double mu = rms ? 0 : mean[r], rs = rstd[r];
    double sa = 0, sb = 0;
    for (int64_t j = 0; j < n; j++) {
      const double g = gy[r * n + j] * (gamma ? gamma[j] : 1), xh = (x[r * n + j] - mu) * rs;
      sa += g, sb += g * xh;
      gg[j] += gy[r * n + j] * xh;
      gb[j] += gy[r * n + j];
    }
    const double ma = rms ? 0 : sa / (double)n, mb = sb / (double)n;
    for (int64_t j = 0; j < n; j++) {
      const double g = gy[r * n + j] * (gamma ? gamma[j] : 1), xh = (x[r * n + j] - mu) * rs;
      gx[r * n + j] = rs * (g - ma - xh * mb);
    }
  }
}

static double loss_norm(const double *x, const double *gy, const double *gamma, const double *beta, double *tmp,
                        int64_t rows, int64_t n, double eps, int rms) {
  fwd_norm(x, gamma, beta, tmp, NULL, NULL, rows, n, eps, rms);
  double l = 0;
  for (int64_t i = 0; i < rows * n; i++) l += gy[i] * tmp[i];
  return l;
}

/* a 1-D tensor of n values (rounded to dt in place), stride 1 or (strided) 3 */
static clai_tensor *put1(clai_context *ctx, clai_dtype dt, int64_t n, double *v, int strided, clai_tensor **base) {
  for (int64_t i = 0; i < n; i++) v[i] = rnd(dt, v[i]);
  const int64_t bs = strided ? 3 * n : n;
  *base = clait_tensor(ctx, dt, 1, &bs);
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(*base, &t, 0, 0, 3 * n, strided ? 3 : 1));
  clait_put(ctx, t, v);
  return t;
}

/* One norm-backward case on [B, L, n]: dtype dt for x, grad_y, grad_x, gamma and the parameter gradients;
 * layouts kxl (x), kg (grad_y), kx (grad_x; -1 in place into grad_y); hg / hb: gamma / grad_gamma and
 * grad_beta present; fd: finite differences too. */
static void norm_case(clai_context *ctx, int rms, int64_t B, int64_t L, int64_t n, int hg, int hb, clai_dtype dt,
                      int kxl, int kg, int kx, int fd) {
  clait_rng rng = {0x9876u + (uint64_t)(B * 7 + L * 131 + n * 3 + rms + hg * 2 + hb * 4)};
  const int64_t rows = B * L;
  const size_t cnt = (size_t)(rows * n);
  const double eps = 1e-5;
  double *x = randv(&rng, cnt, -2, 3), *gy = randv(&rng, cnt, -1, 1), *gamma = randv(&rng, (size_t)n, 0.5, 1.5),
         *beta = randv(&rng, (size_t)n, -1, 1);
  double *mean = malloc((size_t)rows * 8 + 8), *rstd = malloc((size_t)rows * 8 + 8), *want = malloc(cnt * 8 + 8);
  double *wg = malloc((size_t)n * 8 + 8), *wb = malloc((size_t)n * 8 + 8);
  clai_tensor *bxl, *bg, *bx = NULL, *tx = NULL, *bgam = NULL, *tgam = NULL, *bgg = NULL, *tgg = NULL, *bgb = NULL,
                       *tgb = NULL;
  clai_tensor *txl = put3(ctx, dt, B, L, n, x, kxl, &bxl), *tg = put3(ctx, dt, B, L, n, gy, kg, &bg);
  if (kx >= 0) {
    double *z = calloc(cnt + 1, 8);
    tx = put3(ctx, dt, B, L, n, z, kx, &bx);
    free(z);
  }
  if (hg) tgam = put1(ctx, dt, n, gamma, kxl != DENSE, &bgam);
  fwd_norm(x, hg ? gamma : NULL, NULL, NULL, mean, rstd, rows, n, eps, rms);
  /* the saved statistics as f32 tensors [B, L] */
  const int64_t ss[2] = {B, L};
  clai_tensor *tmean = clait_tensor(ctx, CLAI_DTYPE_F32, 2, ss), *trstd = clait_tensor(ctx, CLAI_DTYPE_F32, 2, ss);
  for (int64_t r = 0; r < rows; r++) mean[r] = (float)mean[r], rstd[r] = (float)rstd[r];
  clait_put(ctx, tmean, mean);
  clait_put(ctx, trstd, rstd);
  if (hg) {
    double *z = calloc((size_t)n + 1, 8);
    tgg = put1(ctx, dt, n, z, kx == SLICED, &bgg);
    if (hb && !rms) tgb = put1(ctx, dt, n, z, 0, &bgb);
    free(z);
  }
  clai_tensor *out = kx >= 0 ? tx : tg;
  if (rms)
    CLAIT_OK(ctx, clai_rmsnorm_backward(ctx, out, tgg, tg, txl, tgam, trstd));
  else
    CLAIT_OK(ctx, clai_layernorm_backward(ctx, out, tgg, tgb, tg, txl, tgam, tmean, trstd));
  ref_norm_bwd(x, gy, hg ? gamma : NULL, mean, rstd, want, wg, wb, rows, n, rms);
  float *got = clait_get(ctx, out);
  const int f32 = dt == CLAI_DTYPE_F32;
  expect_close(rms ? "rmsnorm_backward grad_x" : "layernorm_backward grad_x", got, want, cnt, f32 ? 2e-5 : 4e-3,
               f32 ? 1e-4 : 1e-2);
  float *gg = tgg ? clait_get(ctx, tgg) : NULL, *gb = tgb ? clait_get(ctx, tgb) : NULL;
  const double pt = (f32 ? 1e-5 : 3e-3) * sqrt((double)rows) * 2;
  if (gg) expect_close("grad_gamma", gg, wg, (size_t)n, pt, f32 ? 1e-4 : 1e-2);
  if (gb) expect_close("grad_beta", gb, wb, (size_t)n, pt, f32 ? 1e-4 : 1e-2);
  if (fd) {
    double *tmp = malloc(cnt * 8 + 8), h = 1e-6;
    const double *gm = hg ? gamma : NULL, *bt = hb && !rms ? beta : NULL;
#define CD(p, i) \
  do { \
    const double v0_ = (p)[i]; \
    (p)[i] = v0_ + h; \
    const double lp_ = loss_norm(x, gy, gm, bt, tmp, rows, n, eps, rms); \
    (p)[i] = v0_ - h; \
    const double lm_ = loss_norm(x, gy, gm, bt, tmp, rows, n, eps, rms); \
    (p)[i] = v0_; \
    d_ = (lp_ - lm_) / (2 * h); \
  } while (0)
    double d_;
    for (size_t i = 0; i < cnt; i++) {
      CD(x, i);
      want[i] = d_;
    }
    expect_close("norm grad_x vs finite differences", got, want, cnt, 2e-4, 1e-3);
    if (gg) {
      for (int64_t j = 0; j < n; j++) {
        CD(gamma, j);
        wg[j] = d_;
      }
      expect_close("grad_gamma vs finite differences", gg, wg, (size_t)n, 2e-4, 1e-3);
    }
    if (gb) {
      for (int64_t j = 0; j < n; j++) {
        CD(beta, j);
        wb[j] = d_;
      }
      expect_close("grad_beta vs finite differences", gb, wb, (size_t)n, 2e-4, 1e-3);
    }
#undef CD
    free(tmp);
  }
  free(got), free(gg), free(gb);
  free(x), free(gy), free(gamma), free(beta), free(mean), free(rstd), free(want), free(wg), free(wb);
  free2(txl, bxl), free2(tg, bg), free2(tx, bx), free2(tgam, bgam), free2(tgg, bgg), free2(tgb, bgb);
  clai_tensor_free(tmean), clai_tensor_free(trstd);
}

static void test_norm_fd(void **state) {
  clai_context *ctx = CTX(state);
  for (int rms = 0; rms < 2; rms++) {
    norm_case(ctx, rms, 1, 1, 1, 1, 1, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 1);
    norm_case(ctx, rms, 1, 3, 5, 0, 0, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 1);
    norm_case(ctx, rms, 2, 3, 7, 1, 0, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 1);
    norm_case(ctx, rms, 2, 3, 9, 1, 1, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 1);
    norm_case(ctx, rms, 1, 5, 6, 1, 1, CLAI_DTYPE_F32, TRANSPOSED, SLICED, SLICED, 1);
  }
}

static void test_norm_shapes(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t ns[] = {1, 7, 31, 129, 1000, 64};
  for (int rms = 0; rms < 2; rms++) {
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
      norm_case(ctx, rms, 3, 5, ns[i], 1, 1, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 0);
      norm_case(ctx, rms, 2, 7, ns[i], 1, 1, CLAI_DTYPE_F16, DENSE, DENSE, DENSE, 0);
      norm_case(ctx, rms, 2, 3, ns[i], 0, 0, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 0);
    }
    norm_case(ctx, rms, 2, 33, 129, 1, 1, CLAI_DTYPE_F32, DENSE, DENSE, -1, 0); /* in place */
    norm_case(ctx, rms, 3, 17, 40, 1, 1, CLAI_DTYPE_F32, TRANSPOSED, EXPANDED, SLICED, 0);
    norm_case(ctx, rms, 3, 9, 23, 1, 1, CLAI_DTYPE_F16, SLICED, TRANSPOSED, TRANSPOSED, 0);
    norm_case(ctx, rms, 1, 2, CLAIT_SIZE(100000, 5000), 1, 1, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 0); /* long rows */
    norm_case(ctx, rms, 1, 2, CLAIT_SIZE(100000, 5000), 1, 0, CLAI_DTYPE_F16, DENSE, SLICED, DENSE, 0);
    norm_case(ctx, rms, 4, 1000, 3, 1, 1, CLAI_DTYPE_F32, DENSE, DENSE, DENSE, 0); /* many row chunks */
    norm_case(ctx, rms, 3, 100, 7, 1, 1, CLAI_DTYPE_F16, TRANSPOSED, DENSE, SLICED, 0);
    norm_case(ctx, rms, 1, 3, 4097, 1, 1, CLAI_DTYPE_F32, DENSE, SLICED, DENSE, 0);
  }
}

/* The forward's own mean_out / rstd_out feed the backward. */
static void test_norm_saved(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t R = 37, N = 45, shape[2] = {R, N};
  clait_rng rng = {77};
  double *x = randv(&rng, (size_t)(R * N), -1, 2), *gy = randv(&rng, (size_t)(R * N), -1, 1),
         *gamma = randv(&rng, (size_t)N, 0.5, 2);
  clai_tensor *tx = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape), *tg = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape),
              *to = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape), *tgx = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape),
              *tm = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &R), *tr = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &R),
              *tgam = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &N), *tgg = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &N);
  for (int64_t i = 0; i < R * N; i++) x[i] = (float)x[i], gy[i] = (float)gy[i];
  for (int64_t i = 0; i < N; i++) gamma[i] = (float)gamma[i];
  clait_put(ctx, tx, x), clait_put(ctx, tg, gy), clait_put(ctx, tgam, gamma);
  double *mean = malloc(R * 8), *rstd = malloc(R * 8), *want = malloc(R * N * 8), *wg = malloc(N * 8),
         *wb = malloc(N * 8);
  for (int rms = 0; rms < 2; rms++) {
    if (rms) {
      CLAIT_OK(ctx, clai_rmsnorm(ctx, to, tx, tgam, 1e-5f, tr));
      CLAIT_OK(ctx, clai_rmsnorm_backward(ctx, tgx, tgg, tg, tx, tgam, tr));
    } else {
      CLAIT_OK(ctx, clai_layernorm(ctx, to, tx, tgam, NULL, 1e-5f, tm, tr));
      CLAIT_OK(ctx, clai_layernorm_backward(ctx, tgx, tgg, NULL, tg, tx, tgam, tm, tr));
    }
    fwd_norm(x, gamma, NULL, NULL, mean, rstd, R, N, 1e-5, rms);
    ref_norm_bwd(x, gy, gamma, mean, rstd, want, wg, wb, R, N, rms);
    float *got = clait_get(ctx, tgx), *gg = clait_get(ctx, tgg);
    expect_close("grad_x from the forward's saved statistics", got, want, (size_t)(R * N), 3e-5, 2e-4);
    expect_close("grad_gamma from the forward's saved statistics", gg, wg, (size_t)N, 3e-5, 2e-4);
    free(got), free(gg);
  }
  free(x), free(gy), free(gamma), free(mean), free(rstd), free(want), free(wg), free(wb);
  clai_tensor *all[] = {tx, tg, to, tgx, tm, tr, tgam, tgg};
  for (size_t i = 0; i < 8; i++) clai_tensor_free(all[i]);
}

/* Two runs give the same bits: grad_x of every op and the column sums over many chunks. */
static void test_determinism(void **state) {
  clai_context *ctx = CTX(state);
  /* Oclgrind: the kernels of both repeats run in test_norm_shapes (layernorm with gamma and beta, 4000 rows of
   * 3 in row chunks) and test_softmax_shapes (scale and the causal mask), where the simulator checks every access
   * and reports any data race; a kernel without races or atomics gives the same bits on every run. The repeats
   * took a fifth of this test's time there. They run on every other device. */
  if (clait_oclgrind(ctx)) {
    print_message("# test_determinism: not repeated on Oclgrind (its kernels run in test_norm_shapes and "
                  "test_softmax_shapes, checked for data races)\n");
    return;
  }
  const int64_t R = CLAIT_SIZE(1500, 300), N = 97, shape[2] = {R, N}; /* small: still 5 row chunks */
  clait_rng rng = {5};
  double *x = randv(&rng, (size_t)(R * N), -1, 1), *gy = randv(&rng, (size_t)(R * N), -1, 1),
         *st = randv(&rng, (size_t)R, 0.5, 2), *gam = randv(&rng, (size_t)N, 0.5, 2);
  clai_tensor *tx = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape), *tg = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape),
              *tgx = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape), *tm = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &R),
              *tr = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &R), *tgam = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &N),
              *tgg = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &N), *tgb = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &N);
  clait_put(ctx, tx, x), clait_put(ctx, tg, gy), clait_put(ctx, tr, st), clait_put(ctx, tm, st),
      clait_put(ctx, tgam, gam);
  const size_t bytes = (size_t)(R * N) * 4;
  float *a[3][2] = {{0}};
  for (int run = 0; run < 2; run++) {
    CLAIT_OK(ctx, clai_layernorm_backward(ctx, tgx, tgg, tgb, tg, tx, tgam, tm, tr));
    float *g1 = clait_get(ctx, tgx), *g2 = clait_get(ctx, tgg), *g3 = clait_get(ctx, tgb);
    a[0][run] = g1, a[1][run] = g2, a[2][run] = g3;
  }
  assert_memory_equal(a[0][0], a[0][1], bytes);
  assert_memory_equal(a[1][0], a[1][1], (size_t)N * 4);
  assert_memory_equal(a[2][0], a[2][1], (size_t)N * 4);
  for (int i = 0; i < 3; i++) free(a[i][0]), free(a[i][1]);
  clai_softmax_opts o = {0.3f, 1};
  for (int run = 0; run < 2; run++) {
    CLAIT_OK(ctx, clai_softmax_backward(ctx, tgx, tg, tx, &o));
    a[0][run] = clait_get(ctx, tgx);
  }
  assert_memory_equal(a[0][0], a[0][1], bytes);
  free(a[0][0]), free(a[0][1]);
  free(x), free(gy), free(st), free(gam);
  clai_tensor *all[] = {tx, tg, tgx, tm, tr, tgam, tgg, tgb};
  for (size_t i = 0; i < 8; i++) clai_tensor_free(all[i]);
}

/* The variant CLAI_ROWS forces (else the device's default) is the one that runs. */
static void test_rows_variant(void **state) {
  (void)state;
  clai_context *ctx = clait_profiled_ctx();
  const int wg = clait_rows_wg(ctx);
  const int64_t R = 37, N = 129, shape[2] = {R, N};
  clait_rng rng = {13};
  double *x = randv(&rng, (size_t)(R * N), -1, 1), *st = randv(&rng, (size_t)R, 0.5, 2);
  clai_tensor *tx = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape), *tg = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape),
              *tgx = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape), *tr = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &R);
  clait_put(ctx, tx, x), clait_put(ctx, tg, x), clait_put(ctx, tr, st);
  clai_profile_reset(ctx);
  CLAIT_OK(ctx, clai_softmax_backward(ctx, tgx, tg, tx, NULL));
  clait_expect_kernel(ctx, "clai_softmax_bwd_wg", wg);
  clait_expect_kernel(ctx, "clai_softmax_bwd", !wg);
  clai_profile_reset(ctx);
  CLAIT_OK(ctx, clai_rmsnorm_backward(ctx, tgx, NULL, tg, tx, NULL, tr));
  clait_expect_kernel(ctx, "clai_layernorm_bwd_wg", wg);
  clait_expect_kernel(ctx, "clai_layernorm_bwd", !wg);
  free(x), free(st);
  clai_tensor *all[] = {tx, tg, tgx, tr};
  for (size_t i = 0; i < 4; i++) clai_tensor_free(all[i]);
  clai_context_free(ctx);
}

static void test_errors(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t s34[2] = {3, 4}, s35[2] = {3, 5}, s3 = 3, s4 = 4, s5 = 5, s2[2] = {3, 2};
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s34), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s34),
              *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s34), *w = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s35),
              *i32 = clait_tensor(ctx, CLAI_DTYPE_I32, 2, s34), *m = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s3),
              *r = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s3), *rh = clait_tensor(ctx, CLAI_DTYPE_F16, 1, &s3),
              *g4 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s4), *g5 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s5),
              *gg = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s4), *m2 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s2),
              *a1 = NULL, *rt = NULL, *w0 = NULL, *w1 = NULL;
  double v[12];
  for (int i = 0; i < 12; i++) v[i] = 0.1 * i;
  clait_put(ctx, a, v), clait_put(ctx, b, v), clait_put(ctx, c, v);
  double ones[4] = {1, 1, 1, 1};
  clait_put(ctx, m, ones), clait_put(ctx, r, ones), clait_put(ctx, g4, ones);
  CLAIT_OK(ctx, clai_tensor_slice(a, &a1, 1, 1, 4, 1));
  CLAIT_OK(ctx, clai_tensor_slice(m2, &rt, 1, 0, 1, 1));
  clai_softmax_opts causal = {0, 1}, bad_scale = {INFINITY, 0};
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "differ in shape", clai_softmax_backward(ctx, a, w, c, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "grad_x", clai_log_softmax_backward(ctx, w, b, c, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "f32 or f16", clai_softmax_backward(ctx, a, i32, c, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps y", clai_softmax_backward(ctx, c, b, c, NULL));
  CLAIT_OK(ctx, clai_tensor_slice(w, &w0, 1, 0, 4, 1));
  CLAIT_OK(ctx, clai_tensor_slice(w, &w1, 1, 1, 5, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "very same view", clai_softmax_backward(ctx, w0, w1, c, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "scale", clai_log_softmax_backward(ctx, a, b, c, &bad_scale));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "causal", clai_softmax_backward(ctx, gg, g4, g4, &causal));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "mean", clai_layernorm_backward(ctx, a, NULL, NULL, b, c, NULL, NULL, r));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "rstd", clai_rmsnorm_backward(ctx, a, NULL, b, c, NULL, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "rstd", clai_rmsnorm_backward(ctx, a, NULL, b, c, NULL, rh));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "mean", clai_layernorm_backward(ctx, a, NULL, NULL, b, c, NULL, g4, r));
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "contiguous", clai_rmsnorm_backward(ctx, a, NULL, b, c, NULL, rt));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "gamma", clai_rmsnorm_backward(ctx, a, NULL, b, c, g5, r));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "grad_gamma", clai_rmsnorm_backward(ctx, a, g5, b, c, NULL, r));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_layernorm_backward(ctx, a, gg, gg, b, c, NULL, m, r));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grad_gamma overlaps gamma",
              clai_layernorm_backward(ctx, a, g4, NULL, b, c, g4, m, r));
  /* still usable: an in-place call and a valid layernorm backward */
  CLAIT_OK(ctx, clai_softmax_backward(ctx, b, b, c, NULL));
  CLAIT_OK(ctx, clai_layernorm_backward(ctx, a, gg, NULL, b, c, g4, m, r));
  float *got = clait_get(ctx, gg);
  for (int j = 0; j < 4; j++) assert_true(isfinite(got[j]));
  free(got);
  clai_tensor *all[] = {a, b, c, w, i32, m, r, rh, g4, g5, gg, m2, a1, rt, w0, w1};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clai_tensor_free(all[i]);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clait_setup, clait_teardown)
int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_softmax_fd), T(test_softmax_shapes), T(test_norm_fd), T(test_norm_shapes),
      T(test_norm_saved), T(test_determinism), T(test_rows_variant), T(test_errors),
  };
  return CLAIT_MAIN("norm-backward", tests, 1);
}
