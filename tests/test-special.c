/* test-special.c - special values (NaN, +-inf, +-FLT_MAX, the -1e30 and -FLT_MAX entries of additive
 * attention masks, denormals) through the ops of clai.h that compute values: softmax and log_softmax,
 * cross-entropy and MSE, every unary op and its backward, the binary ops (and maximum's backward), affine,
 * where, matmul with its epilogue, conv2d with a fused ReLU, the reductions, layernorm and rmsnorm, max,
 * average and global pooling, attention with masked rows, and clip_grad_norm. Each case writes down the
 * expected result per element: PyTorch's behaviour, unless clai.h documents a different rule (then the
 * comment names it and the case tests the documented rule).
 *
 * Comparison rules (expect()): a NaN expected must come out NaN, an infinity the same infinity, anything
 * else within the tolerance given. Denormal results may come out flushed to zero on devices without
 * denormal support (clai.h's conventions say so), so those cases accept 0 as well. Row kernels that exist in
 * two forms (cross-entropy's one work-item per row and one work-group per row) are run in both; softmax
 * runs its contiguous (eight-wide and scalar tail), strided and f16 paths.
 *
 * Where libclai deliberately differs from PyTorch, clai.h says so and the case tests its rule: softmax of a
 * row with nothing to weigh is 0 (log_softmax -inf) rather than NaN, and its scale multiplies x - max, so a
 * scale * x beyond the float range is harmless; CLAI_MAXIMUM / CLAI_MINIMUM are fmax / fmin. */
#include <float.h>

#include "internal.h" /* clai__loss_cross_entropy: both row kernels on any device */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))
#define IGNORE (-100)

#define NaN ((double)NAN)
#define INF ((double)INFINITY)
#define FMAX ((double)FLT_MAX)
#define DEN ((double)1e-40f) /* an f32 denormal, as f32 holds it */

/* got must match want: NaN for NaN, the same infinity, else |got - want| <= atol + rtol * |want|. Where
 *  a 0 is accepted for a denormal expected value (flush to zero). */
static void expect(const char *what, const double *got, const double *want, size_t n, double atol, double rtol) {
  for (size_t i = 0; i < n; i++) {
    const double g = got[i], w = want[i];
    int ok;
    if (isnan(w))
      ok = isnan(g);
    else if (isinf(w))
      ok = g == w;
    else
      ok = fabs(g - w) <= atol + rtol * fabs(w) || (fabs(w) < FLT_MIN && g == 0.0);
    if (!ok) fail_msg("%s: element %zu is %.9g, expected %.9g (atol %g, rtol %g)", what, i, g, w, atol, rtol);
  }
}

static clai_tensor *up(clai_context *ctx, clai_dtype dt, int ndim, const int64_t *shape, const double *v) {
  clai_tensor *t = clait_tensor(ctx, dt, ndim, shape);
  clait_put(ctx, t, v);
  return t;
}

/* Reads t and compares it with want (numel(t) values). */
static void expect_t(clai_context *ctx, const char *what, clai_tensor *t, const double *want, double atol,
                     double rtol) {
  double *g = clait_fetch(ctx, t);
  expect(what, g, want, (size_t)clai_tensor_numel(t), atol, rtol);
  free(g);
}

/* ---- softmax / log_softmax ------------------------------------------------------------------------------ */

/* x as a tensor in layout `lay`: 0 dense f32, 1 every other element of a wider f32 row (the strided path),
 * 2 dense f16. *base owns the storage. */
static clai_tensor *rows_tensor(clai_context *ctx, int lay, int64_t rows, int64_t n, const double *v,
                                clai_tensor **base) {
  const int64_t shape[2] = {rows, n};
  if (lay == 1) {
    const int64_t wide[2] = {rows, 2 * n};
    clai_tensor *t = NULL;
    *base = clait_tensor(ctx, CLAI_DTYPE_F32, 2, wide);
    CLAIT_OK(ctx, clai_tensor_slice(*base, &t, 1, 1, 2 * n, 2));
    clait_put(ctx, t, v);
    return t;
  }
  *base = up(ctx, lay == 2 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, 2, shape, v);
  return *base;
}

/* Runs softmax and log_softmax of x (rows x n) with `scale` in all three layouts and compares with the
 * expected softmax sm (log_softmax: log(sm), except where lsm is given). */
static void softmax_case(clai_context *ctx, const char *name, int64_t rows, int64_t n, const double *x, float scale,
                         int causal, const double *sm, const double *lsm, double rtol) {
  const size_t cnt = (size_t)(rows * n);
  double *lwant = malloc(cnt * sizeof *lwant);
  assert_non_null(lwant);
  for (size_t i = 0; i < cnt; i++) lwant[i] = lsm != NULL ? lsm[i] : log(sm[i]);
  const clai_softmax_opts o = {scale, causal};
  for (int lay = 0; lay < 3; lay++) {
    clai_tensor *base, *t = rows_tensor(ctx, lay, rows, n, x, &base);
    const int64_t shape[2] = {rows, n};
    clai_tensor *out = clait_tensor(ctx, lay == 2 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, 2, shape);
    char what[160];
    const double tol = lay == 2 ? 2e-3 : rtol;
    snprintf(what, sizeof what, "softmax %s (layout %d)", name, lay);
    CLAIT_OK(ctx, clai_softmax(ctx, out, t, &o));
    expect_t(ctx, what, out, sm, 1e-7, tol);
    snprintf(what, sizeof what, "log_softmax %s (layout %d)", name, lay);
    CLAIT_OK(ctx, clai_log_softmax(ctx, out, t, &o));
    expect_t(ctx, what, out, lwant, 1e-6, tol);
    clai_tensor_free(out);
    if (t != base) clai_tensor_free(t);
    clai_tensor_free(base);
  }
  free(lwant);
}

/* Issue 10, defect 3: |scale * x| large and scale not a power of two. The maximum used to be taken over the
 * rounded products while each x * scale - max was contracted into an fma, so exponents shifted by the
 * products' rounding error: NaN rows from softmax, +inf from log_softmax. */
static void softmax_large_scaled(void **state) {
  clai_context *ctx = CTX(state);
  /* f16 cannot hold 1e10; its rows get the same shape of problem at 6e4 */
  {
    const double x[4] = {0, 1e10, 0, -1e10}, sm[4] = {0, 1, 0, 0};
    const double lsm[4] = {-1.5e10, 0, -1.5e10, -3e10};
    const double xh[4] = {0, 6e4, 0, -6e4}; /* times 2.5e5: the same products */
    /* contiguous f32 (layout 0), strided f32 (1), and f16 (2) with the f16 row */
    const int64_t shape[2] = {1, 4};
    for (int lay = 0; lay < 3; lay++) {
      const clai_softmax_opts o = {lay == 2 ? 2.5e5f : 1.5f, 0};
      clai_tensor *base, *t = rows_tensor(ctx, lay, 1, 4, lay == 2 ? xh : x, &base);
      clai_tensor *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape);
      char what[96];
      const char *row = lay == 2 ? "[0 6e4 0 -6e4] * 2.5e5" : "[0 1e10 0 -1e10] * 1.5";
      snprintf(what, sizeof what, "softmax %s (layout %d)", row, lay);
      CLAIT_OK(ctx, clai_softmax(ctx, out, t, &o));
      expect_t(ctx, what, out, sm, 1e-7, 1e-6);
      snprintf(what, sizeof what, "log_softmax %s (layout %d)", row, lay);
      CLAIT_OK(ctx, clai_log_softmax(ctx, out, t, &o));
      expect_t(ctx, what, out, lsm, 0, 1e-6);
      clai_tensor_free(out);
      if (t != base) clai_tensor_free(t);
      clai_tensor_free(base);
    }
  }
  /* Fully masked rows of an additive mask with an attention scale of 1/sqrt(80): PyTorch gives a uniform
   * row (every element equal). Lengths 4 (scalar loop) and 19 (eight-wide loop and tail). Row 1 is a
   * partly masked row: softmax over the unmasked part, 0 where masked. */
  const float s80 = (float)(1.0 / sqrt(80.0));
  for (int k = 0; k < 2; k++) {
    const int64_t n = k == 0 ? 4 : 19;
    const double fill[3] = {-1e30, -FMAX, -6e4}; /* the last also fits f16 */
    for (int f = 0; f < 3; f++) {
      double x[2 * 19], sm[2 * 19];
      for (int64_t j = 0; j < n; j++) {
        x[j] = fill[f];
        sm[j] = 1.0 / (double)n;
        x[n + j] = j < 2 ? (double)j : fill[f]; /* scores 0 and 1, the rest masked */
      }
      const double e1 = exp((double)s80);
      for (int64_t j = 0; j < n; j++) sm[n + j] = j == 0 ? 1 / (1 + e1) : j == 1 ? e1 / (1 + e1) : 0;
      double lsm[2 * 19];
      for (int64_t j = 0; j < 2 * n; j++) lsm[j] = log(sm[j]);
      /* masked elements of log_softmax: scale * (fill - max), huge and negative, as PyTorch gives */
      for (int64_t j = 2; j < n; j++) lsm[n + j] = (double)s80 * fill[f] - (double)s80 - log(1 + 1 / e1);
      char name[64];
      snprintf(name, sizeof name, "masked rows n=%lld fill %g", (long long)n, fill[f]);
      if (f < 2) {
        /* f16 cannot hold the fill: layouts 0 and 1 only */
        const clai_softmax_opts o = {s80, 0};
        const int64_t shape[2] = {2, n};
        for (int lay = 0; lay < 2; lay++) {
          clai_tensor *base, *t = rows_tensor(ctx, lay, 2, n, x, &base);
          clai_tensor *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape);
          char what[160];
          snprintf(what, sizeof what, "softmax %s (layout %d)", name, lay);
          CLAIT_OK(ctx, clai_softmax(ctx, out, t, &o));
          expect_t(ctx, what, out, sm, 1e-7, 1e-6);
          snprintf(what, sizeof what, "log_softmax %s (layout %d)", name, lay);
          CLAIT_OK(ctx, clai_log_softmax(ctx, out, t, &o));
          expect_t(ctx, what, out, lsm, 1e-6, 1e-6);
          clai_tensor_free(out);
          if (t != base) clai_tensor_free(t);
          clai_tensor_free(base);
        }
      } else {
        softmax_case(ctx, name, 2, n, x, s80, 0, sm, lsm, 1e-6);
      }
    }
  }
  /* a negative scale: the row's minimum is the reference; scale * x = [-1.5e10, 0, 1.5e10] */
  {
    const double x[3] = {1e10, 0, -1e10}, sm[3] = {0, 0, 1}, lsm[3] = {-3e10, -1.5e10, 0};
    const clai_softmax_opts o = {-1.5f, 0};
    const int64_t shape[2] = {1, 3};
    clai_tensor *t = up(ctx, CLAI_DTYPE_F32, 2, shape, x), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape);
    CLAIT_OK(ctx, clai_softmax(ctx, out, t, &o));
    expect_t(ctx, "softmax, scale -1.5", out, sm, 1e-7, 1e-6);
    CLAIT_OK(ctx, clai_log_softmax(ctx, out, t, &o));
    expect_t(ctx, "log_softmax, scale -1.5", out, lsm, 0, 1e-6);
    clai_tensor_free(t);
    clai_tensor_free(out);
  }
}

/* Rows of special values (clai.h, clai_softmax): NaN anywhere makes the row NaN; +inf makes it NaN (inf - inf,
 * as in PyTorch); -inf elements weigh 0; a row with nothing to weigh (every element -inf, or every element
 * masked) is all 0 for softmax and all -inf for log_softmax, where PyTorch gives NaN (documented). The
 * scale multiplies x - max, so a scale * x beyond the float range does no harm (PyTorch: NaN; documented). */
static void softmax_special(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t n = 3;
  const double x[] = {
      NaN, 1, 2,      /* NaN: row NaN */
      INF, 1, 2,      /* +inf: row NaN */
      -INF, 0, 0,     /* -inf weighs 0 */
      -INF, -INF, -INF, /* nothing to weigh */
      FMAX, -FMAX, 0, /* extremes: the difference overflows to -inf, weighs 0 */
      DEN, 0, -DEN,   /* denormals: a uniform row */
  };
  const double sm[] = {NaN, NaN, NaN, NaN, NaN, NaN, 0, 0.5, 0.5, 0, 0, 0, 1, 0, 0, 1. / 3, 1. / 3, 1. / 3};
  const double lsm[] = {NaN, NaN, NaN,  NaN,  NaN, NaN,   -INF,       -log(2.),   -log(2.),
                        -INF, -INF, -INF, 0, -INF, -FMAX, -log(3.), -log(3.), -log(3.)};
  const int64_t rows = (int64_t)(sizeof x / sizeof x[0]) / n;
  /* f16 cannot hold FLT_MAX: layouts 0 and 1 here, the f16 path below */
  const clai_softmax_opts o = {1.0f, 0};
  const int64_t shape[2] = {rows, n};
  for (int lay = 0; lay < 2; lay++) {
    clai_tensor *base, *t = rows_tensor(ctx, lay, rows, n, x, &base);
    clai_tensor *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape);
    char what[96];
    snprintf(what, sizeof what, "softmax of special rows (layout %d)", lay);
    CLAIT_OK(ctx, clai_softmax(ctx, out, t, &o));
    expect_t(ctx, what, out, sm, 1e-7, 1e-6);
    snprintf(what, sizeof what, "log_softmax of special rows (layout %d)", lay);
    CLAIT_OK(ctx, clai_log_softmax(ctx, out, t, &o));
    expect_t(ctx, what, out, lsm, 1e-6, 1e-6);
    clai_tensor_free(out);
    if (t != base) clai_tensor_free(t);
    clai_tensor_free(base);
  }
  /* the first four rows in f16, and the same rows eight-wide (the vector loop) in f32 */
  softmax_case(ctx, "special rows", 4, n, x, 1.0f, 0, sm, lsm, 1e-6);
  {
    double x8[4 * 9], sm8[4 * 9], l8[4 * 9];
    for (int r = 0; r < 4; r++)
      for (int j = 0; j < 9; j++) {
        const int src = r * 3 + (j < 3 ? j : 1); /* columns 3.. repeat column 1 */
        x8[r * 9 + j] = x[src];
        double v = sm[src], l = lsm[src];
        if (r == 2) v = j == 0 ? 0 : 1.0 / 8, l = j == 0 ? -INF : -log(8.);
        sm8[r * 9 + j] = v;
        l8[r * 9 + j] = l;
      }
    softmax_case(ctx, "special rows of 9", 4, 9, x8, 1.0f, 0, sm8, l8, 1e-6);
  }
  /* scale 2 on [FLT_MAX, 0]: the difference is scaled, not x (documented); causal rows with nothing to see */
  {
    const double xs[2] = {FMAX, 0}, ws[2] = {1, 0}, ls[2] = {0, -INF};
    const clai_softmax_opts o2 = {2.0f, 0};
    const int64_t s12[2] = {1, 2};
    clai_tensor *t = up(ctx, CLAI_DTYPE_F32, 2, s12, xs), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s12);
    CLAIT_OK(ctx, clai_softmax(ctx, out, t, &o2));
    expect_t(ctx, "softmax [FLT_MAX 0] * 2", out, ws, 1e-7, 1e-6);
    CLAIT_OK(ctx, clai_log_softmax(ctx, out, t, &o2));
    expect_t(ctx, "log_softmax [FLT_MAX 0] * 2", out, ls, 1e-7, 1e-6);
    clai_tensor_free(t);
    clai_tensor_free(out);
    /* causal with Lq = 3 > Lk = 2: query 0 sees nothing (0 / -inf), query 1 sees key 0, query 2 both */
    const double xc[6] = {5, 7, 5, 7, 0, 0}, wc[6] = {0, 0, 1, 0, 0.5, 0.5};
    const double lc[6] = {-INF, -INF, 0, -INF, -log(2.), -log(2.)};
    const int64_t s32[2] = {3, 2};
    const clai_softmax_opts oc = {1.0f, 1};
    t = up(ctx, CLAI_DTYPE_F32, 2, s32, xc);
    out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s32);
    CLAIT_OK(ctx, clai_softmax(ctx, out, t, &oc));
    expect_t(ctx, "causal softmax, a query that sees nothing", out, wc, 1e-7, 1e-6);
    CLAIT_OK(ctx, clai_log_softmax(ctx, out, t, &oc));
    expect_t(ctx, "causal log_softmax, a query that sees nothing", out, lc, 1e-7, 1e-6);
    clai_tensor_free(t);
    clai_tensor_free(out);
  }
}

/* Issue 10, defect 8: log_softmax of large logits is (x - max) - log(sum), not x - (max + log(sum)), whose
 * rounding at |max| ~ 1e4 cost 2.4e-4. Contiguous (vector loop and scalar tail), strided and f16 paths. */
static void log_softmax_precision(void **state) {
  clai_context *ctx = CTX(state);
  const double bases[2] = {1e4, 1e6};
  for (int b = 0; b < 2; b++)
    for (int k = 0; k < 2; k++) {
      const int64_t n = k == 0 ? 4 : 19;
      double x[19], sm[19], lsm[19], s = 0;
      for (int64_t j = 0; j < n; j++) s += exp((double)(j - (n - 1)));
      for (int64_t j = 0; j < n; j++) {
        x[j] = bases[b] + (double)j; /* exact in f32 */
        lsm[j] = (double)(j - (n - 1)) - log(s);
        sm[j] = exp(lsm[j]);
      }
      if (n == 4 && b == 0 && fabs(lsm[3] - -0.4401897) > 1e-7) fail_msg("reference %.9g", lsm[3]);
      const int64_t shape[2] = {1, n};
      for (int lay = 0; lay < 2; lay++) { /* f16 holds neither 10001 nor 1e6 + 1 */
        clai_tensor *base, *t = rows_tensor(ctx, lay, 1, n, x, &base);
        clai_tensor *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape);
        char what[96];
        snprintf(what, sizeof what, "log_softmax of %g + [0, %lld) (layout %d)", bases[b], (long long)n, lay);
        CLAIT_OK(ctx, clai_log_softmax(ctx, out, t, NULL));
        expect_t(ctx, what, out, lsm, 3e-7, 1e-6);
        snprintf(what, sizeof what, "softmax of %g + [0, %lld) (layout %d)", bases[b], (long long)n, lay);
        CLAIT_OK(ctx, clai_softmax(ctx, out, t, NULL));
        expect_t(ctx, what, out, sm, 1e-7, 1e-5);
        clai_tensor_free(out);
        if (t != base) clai_tensor_free(t);
        clai_tensor_free(base);
      }
    }
  /* f16: 1000 + j is exact in half */
  const double xh[4] = {1000, 1001, 1002, 1003};
  double want[4], s = 0;
  for (int j = 0; j < 4; j++) s += exp((double)(j - 3));
  for (int j = 0; j < 4; j++) want[j] = (double)(j - 3) - log(s);
  const int64_t shape[2] = {1, 4};
  clai_tensor *t = up(ctx, CLAI_DTYPE_F16, 2, shape, xh), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape);
  CLAIT_OK(ctx, clai_log_softmax(ctx, out, t, NULL));
  expect_t(ctx, "log_softmax of f16 1000 + [0, 4)", out, want, 3e-7, 1e-6);
  clai_tensor_free(t);
  clai_tensor_free(out);
}

/* ---- cross-entropy -------------------------------------------------------------------------------------- */

/* One row per case, through both row kernels (1: a work-item per row, 2: a work-group per row) and the
 * public entry point: the loss of each row alone (N = 1, so the mean is the row's loss) and its gradient. */
static void xent_rows(clai_context *ctx, const char *name, int64_t C, const double *x, int32_t label, double want,
                      const double *gwant, double rtol) {
  const int64_t shape[2] = {1, C}, one = 1;
  for (int k = 0; k < 3; k++) {
    clai_tensor *tx = up(ctx, CLAI_DTYPE_F32, 2, shape, x), *tl = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &one);
    clai_tensor *g = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape), *loss = clait_tensor(ctx, CLAI_DTYPE_F32, 0, NULL);
    CLAIT_OK(ctx, clai_tensor_write(tl, &label, 4));
    if (k == 0)
      CLAIT_OK(ctx, clai_loss_cross_entropy(ctx, loss, g, tx, tl, IGNORE));
    else
      CLAIT_OK(ctx, clai__loss_cross_entropy(ctx, loss, g, tx, tl, IGNORE, k));
    char what[160];
    snprintf(what, sizeof what, "cross-entropy %s (kernel %d)", name, k);
    expect_t(ctx, what, loss, &want, 1e-7, rtol);
    if (gwant != NULL) {
      snprintf(what, sizeof what, "cross-entropy gradient %s (kernel %d)", name, k);
      expect_t(ctx, what, g, gwant, 1e-7, 1e-5);
    }
    clai_tensor_free(tx);
    clai_tensor_free(tl);
    clai_tensor_free(g);
    clai_tensor_free(loss);
  }
}

/* Issue 10, defect 8 in the loss: log(s) - (x[label] - m) rather than (m + log(s)) - x[label]. */
static void cross_entropy_precision(void **state) {
  clai_context *ctx = CTX(state);
  const double bases[2] = {1e4, 1e6};
  for (int b = 0; b < 2; b++)
    for (int k = 0; k < 2; k++) {
      const int64_t C = k == 0 ? 4 : 300; /* 300: several columns per work-item in the work-group kernel */
      double *x = malloc((size_t)C * 8), s = 0;
      assert_non_null(x);
      for (int64_t j = 0; j < C; j++) {
        x[j] = bases[b] + (double)(j % 4);
        s += exp((double)(j % 4) - 3);
      }
      char name[64];
      snprintf(name, sizeof name, "of %g + [0 1 2 3]... C=%lld", bases[b], (long long)C);
      xent_rows(ctx, name, C, x, 3, log(s), NULL, 1e-6);
      free(x);
    }
}

/* Special logits (PyTorch's F.cross_entropy): -inf logits weigh 0 (a finite loss unless the label's logit
 * is -inf, then +inf); a NaN or +inf logit, or a row of nothing but -inf, gives NaN. */
static void cross_entropy_special(void **state) {
  clai_context *ctx = CTX(state);
  const double l12 = log(exp(1.0) + exp(2.0));
  {
    const double x[3] = {-INF, 1, 2}, g[3] = {0, exp(1.0) / (exp(1.0) + exp(2.0)) - 1, exp(2.0) / (exp(1.0) + exp(2.0))};
    xent_rows(ctx, "[-inf 1 2] label 1", 3, x, 1, l12 - 1, g, 1e-6);
    const double g0[3] = {-1, g[1] + 1, g[2]};
    xent_rows(ctx, "[-inf 1 2] label 0", 3, x, 0, INF, g0, 1e-6);
  }
  {
    const double x[3] = {1, -INF, 2}, g[3] = {exp(1.0) / (exp(1.0) + exp(2.0)) - 1, 0, exp(2.0) / (exp(1.0) + exp(2.0))};
    xent_rows(ctx, "[1 -inf 2] label 0", 3, x, 0, l12 - 1, g, 1e-6);
  }
  const double nan3[3] = {NaN, NaN, NaN};
  {
    const double x[3] = {-INF, -INF, -INF};
    xent_rows(ctx, "[-inf -inf -inf]", 3, x, 1, NaN, nan3, 0);
  }
  {
    const double x[3] = {1, NaN, 2};
    xent_rows(ctx, "[1 NaN 2]", 3, x, 0, NaN, nan3, 0);
    const double y[3] = {NaN, 1, 2};
    xent_rows(ctx, "[NaN 1 2]", 3, y, 2, NaN, nan3, 0);
  }
  {
    const double x[3] = {1, INF, 2};
    xent_rows(ctx, "[1 inf 2] label 0", 3, x, 0, NaN, nan3, 0);
    xent_rows(ctx, "[1 inf 2] label 1", 3, x, 1, NaN, nan3, 0);
  }
  {
    /* the largest finite logits: exact differences, no overflow */
    const double x[3] = {FMAX, -FMAX, FMAX};
    const double g[3] = {0.5, 0, -0.5};
    xent_rows(ctx, "[FLT_MAX -FLT_MAX FLT_MAX] label 2", 3, x, 2, log(2.0), g, 1e-6);
  }
}

/* ---- ReLU and the other activations ---------------------------------------------------------------------- */

#define NSPEC 12
static const double spec[NSPEC] = {NaN, -INF, INF, -FMAX, FMAX, -1e30, -1, -0.0, 0, DEN, -DEN, 2.5};

/* Issue 10, defect 4: ReLU passes NaN through, like PyTorch's relu and like GELU, SiLU, sigmoid and tanh. */
static void relu_nan(void **state) {
  clai_context *ctx = CTX(state);
  const double want[NSPEC] = {NaN, 0, INF, 0, FMAX, 0, 0, 0, 0, DEN, 0, 2.5};
  const int64_t n = NSPEC;
  /* dense f32 (the vector rows kernel: 3 copies, so the eight-wide loop runs), strided f32, f16 */
  double x3[3 * NSPEC], w3[3 * NSPEC];
  for (int i = 0; i < 3 * NSPEC; i++) x3[i] = spec[i % NSPEC], w3[i] = want[i % NSPEC];
  const int64_t n3 = 3 * NSPEC;
  clai_tensor *x = up(ctx, CLAI_DTYPE_F32, 1, &n3, x3), *y = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n3);
  CLAIT_OK(ctx, clai_unary(ctx, CLAI_RELU, y, x));
  expect_t(ctx, "relu, dense f32", y, w3, 0, 0);
  const int64_t wide = 2 * NSPEC;
  clai_tensor *xb = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &wide), *xs = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(xb, &xs, 0, 0, wide, 2));
  clait_put(ctx, xs, spec);
  clai_tensor *ys = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  CLAIT_OK(ctx, clai_unary(ctx, CLAI_RELU, ys, xs));
  expect_t(ctx, "relu, strided f32", ys, want, 0, 0);
  /* f16: FLT_MAX and 1e30 become inf, denormals of f32 become 0 */
  double xh[NSPEC], wh[NSPEC];
  for (int i = 0; i < NSPEC; i++) {
    xh[i] = clait_as_dtype(CLAI_DTYPE_F16, spec[i]);
    wh[i] = xh[i] > 0 || isnan(xh[i]) ? xh[i] : 0;
  }
  clai_tensor *h = up(ctx, CLAI_DTYPE_F16, 1, &n, spec), *hy = clait_tensor(ctx, CLAI_DTYPE_F16, 1, &n);
  CLAIT_OK(ctx, clai_unary(ctx, CLAI_RELU, hy, h));
  expect_t(ctx, "relu, f16", hy, wh, 0, 0);

  /* backward (PyTorch's threshold_backward): grad passes where NOT (x <= 0), so at NaN too; where x <= 0
   * the gradient is 0 even when grad_out is NaN or infinite. (grad_out is DEN at x = DEN, so a device that
   * flushes denormals may give 0 there.) */
  const double g[NSPEC] = {3, NaN, 3, INF, -2, NaN, 3, 3, 3, DEN, 3, NaN};
  const double gw[NSPEC] = {3, 0, 3, 0, -2, 0, 0, 0, 0, DEN, 0, NaN};
  clai_tensor *tg = up(ctx, CLAI_DTYPE_F32, 1, &n, g), *gx = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  CLAIT_OK(ctx, clai_unary_backward(ctx, CLAI_RELU, gx, tg, ys));
  expect_t(ctx, "relu backward at relu's output", gx, gw, 0, 0);
  CLAIT_OK(ctx, clai_unary_backward(ctx, CLAI_RELU, gx, tg, xs));
  expect_t(ctx, "relu backward, strided x", gx, gw, 0, 0);
  /* operands that do not merge into one dim take the general path: x a transposed [3, 4] view */
  const int64_t s43[2] = {4, 3}, s34[2] = {3, 4};
  clai_tensor *xt_base = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s43), *xt = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(xt_base, &xt, 0, 1));
  clait_put(ctx, xt, spec);
  clai_tensor *g2 = up(ctx, CLAI_DTYPE_F32, 2, s34, g), *gx2 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s34);
  CLAIT_OK(ctx, clai_unary_backward(ctx, CLAI_RELU, gx2, g2, xt));
  expect_t(ctx, "relu backward, transposed x", gx2, gw, 0, 0);
  /* f16 */
  clai_tensor *hg = up(ctx, CLAI_DTYPE_F16, 1, &n, g), *hgx = clait_tensor(ctx, CLAI_DTYPE_F16, 1, &n);
  double ghw[NSPEC];
  for (int i = 0; i < NSPEC; i++) ghw[i] = xh[i] <= 0 ? 0 : clait_as_dtype(CLAI_DTYPE_F16, g[i]);
  CLAIT_OK(ctx, clai_unary_backward(ctx, CLAI_RELU, hgx, hg, h));
  expect_t(ctx, "relu backward, f16", hgx, ghw, 0, 0);
  clai_tensor *all[] = {x, y, xs, xb, ys, h, hy, tg, gx, xt, xt_base, g2, gx2, hg, hgx};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clai_tensor_free(all[i]);
}

/* The fused ReLU of the matmul epilogue and of conv2d pass NaN through too. */
static void relu_fused_nan(void **state) {
  clai_context *ctx = CTX(state);
  /* C = relu(A B + bias): A [M, 2] with a NaN in row 1; bias per column with a NaN in column 2 and a
   * -inf in column 3. Shapes: a small one and one past the tile sizes. */
  const int64_t Ms[2] = {3, 70}, Ns[2] = {5, 67};
  for (int sz = 0; sz < 2; sz++) {
    const int64_t M = Ms[sz], N = Ns[sz], K = 2;
    const int64_t sa[2] = {M, K}, sb[2] = {K, N}, sc[2] = {M, N};
    double *a = calloc((size_t)(M * K), 8), *b = calloc((size_t)(K * N), 8), *bias = calloc((size_t)N, 8);
    double *want = calloc((size_t)(M * N), 8);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(bias);
    assert_non_null(want);
    for (int64_t i = 0; i < M; i++) a[i * K] = (double)(i % 3) - 1, a[i * K + 1] = 1;
    a[1 * K] = NaN;
    for (int64_t j = 0; j < N; j++) b[j] = 1, b[N + j] = (double)(j % 4) - 2, bias[j] = 0.5;
    bias[2] = NaN;
    bias[3] = -INF;
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        const double v = a[i * K] * b[j] + a[i * K + 1] * b[N + j] + bias[j];
        want[i * N + j] = isnan(v) ? NaN : v > 0 ? v : 0;
      }
    clai_tensor *ta = up(ctx, CLAI_DTYPE_F32, 2, sa, a), *tb = up(ctx, CLAI_DTYPE_F32, 2, sb, b);
    clai_tensor *tbias = up(ctx, CLAI_DTYPE_F32, 1, &N, bias), *tc = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sc);
    const clai_matmul_epilogue ep = {tbias, CLAI_ACT_RELU};
    CLAIT_OK(ctx, clai_matmul_ex(ctx, tc, ta, 0, tb, 0, 1.0f, 0.0f, &ep));
    char what[64];
    snprintf(what, sizeof what, "matmul + bias + relu %lldx%lld", (long long)M, (long long)N);
    expect_t(ctx, what, tc, want, 1e-6, 1e-6);
    clai_tensor *all[] = {ta, tb, tbias, tc};
    for (size_t i = 0; i < 4; i++) clai_tensor_free(all[i]);
    free(a);
    free(b);
    free(bias);
    free(want);
  }
  /* conv2d with a fused ReLU, 1x1 kernel: the im2col route (O = 4 per group) and the direct route
   * (depthwise). x [1, C, 2, 3] holds NaN, -inf and +inf; w = 1, so out = relu(x) per channel. */
  for (int route = 0; route < 2; route++) {
    const int64_t C = route == 0 ? 1 : 4, O = 4;
    const int64_t sx[4] = {1, C, 2, 3}, sw[4] = {O, route == 0 ? C : 1, 1, 1}, so[4] = {1, O, 2, 3};
    double xv[4 * 6], wv[16], want[4 * 6];
    for (int i = 0; i < 4 * 6; i++) xv[i] = spec[i % NSPEC];
    for (int i = 0; i < 16; i++) wv[i] = 1;
    for (int64_t o = 0; o < O; o++)
      for (int p = 0; p < 6; p++) {
        const double v = xv[(route == 0 ? 0 : o) * 6 + p];
        want[o * 6 + p] = isnan(v) ? NaN : v > 0 ? v : 0;
      }
    clai_tensor *tx = up(ctx, CLAI_DTYPE_F32, 4, sx, xv), *tw = up(ctx, CLAI_DTYPE_F32, 4, sw, wv);
    clai_tensor *to = clait_tensor(ctx, CLAI_DTYPE_F32, 4, so);
    clai_conv2d_params p = {0};
    p.activation = CLAI_ACT_RELU;
    p.groups = route == 0 ? 1 : 4;
    CLAIT_OK(ctx, clai_conv2d(ctx, to, tx, tw, NULL, &p));
    expect_t(ctx, route == 0 ? "conv2d + relu (im2col)" : "conv2d + relu (depthwise)", to, want, 0, 0);
    clai_tensor_free(tx);
    clai_tensor_free(tw);
    clai_tensor_free(to);
  }
}

/* Every unary op at the special values, and its backward (grad_out 1). Expected values are PyTorch's
 * (GELU is the tanh form: 0.5 x (1 + tanh(u)) is NaN at -inf, as x / (1 + e^(-2u)) is). */
static void unary_special(void **state) {
  clai_context *ctx = CTX(state);
  /* spec = {NaN, -inf, inf, -FLT_MAX, FLT_MAX, -1e30, -1, -0, 0, DEN, -DEN, 2.5} */
  const double gelu25 = 2.5 / (1 + exp(-1.5957691216057308 * (2.5 + 0.044715 * 2.5 * 2.5 * 2.5)));
  const double gelum1 = -1 / (1 + exp(-1.5957691216057308 * (-1 - 0.044715)));
  const double sig25 = 1 / (1 + exp(-2.5)), sigm1 = 1 / (1 + exp(1.0));
  struct {
    clai_unary_op op;
    const char *name;
    double want[NSPEC];
  } cases[] = {
      {CLAI_NEG, "neg", {NaN, INF, -INF, FMAX, -FMAX, 1e30, 1, 0, -0.0, -DEN, DEN, -2.5}},
      {CLAI_ABS, "abs", {NaN, INF, INF, FMAX, FMAX, 1e30, 1, 0, 0, DEN, DEN, 2.5}},
      {CLAI_EXP, "exp", {NaN, 0, INF, 0, INF, 0, exp(-1.0), 1, 1, 1, 1, exp(2.5)}},
      {CLAI_LOG, "log", {NaN, NaN, INF, NaN, log(FMAX), NaN, NaN, -INF, -INF, log(DEN), NaN, log(2.5)}},
      {CLAI_SQRT, "sqrt", {NaN, NaN, INF, NaN, sqrt(FMAX), NaN, NaN, 0, 0, sqrt(DEN), NaN, sqrt(2.5)}},
      {CLAI_GELU, "gelu", {NaN, NaN, INF, 0, FMAX, 0, gelum1, 0, 0, DEN / 2, -DEN / 2, gelu25}},
      {CLAI_SILU, "silu", {NaN, NaN, INF, 0, FMAX, 0, -sigm1, 0, 0, DEN / 2, -DEN / 2, 2.5 * sig25}},
      {CLAI_SIGMOID, "sigmoid", {NaN, 0, 1, 0, 1, 0, sigm1, 0.5, 0.5, 0.5, 0.5, sig25}},
      {CLAI_TANH, "tanh", {NaN, -1, 1, -1, 1, -1, tanh(-1.0), 0, 0, DEN, -DEN, tanh(2.5)}},
  };
  const int64_t n = NSPEC;
  clai_tensor *x = up(ctx, CLAI_DTYPE_F32, 1, &n, spec), *y = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    double want[NSPEC];
    memcpy(want, cases[c].want, sizeof want);
    /* log and sqrt of a denormal: a flushing device sees 0 (-inf, 0); accept either */
    double *got = NULL;
    CLAIT_OK(ctx, clai_unary(ctx, cases[c].op, y, x));
    got = clait_fetch(ctx, y);
    if (cases[c].op == CLAI_LOG && got[9] == -INF) want[9] = -INF;
    if (cases[c].op == CLAI_LOG && got[10] == -INF) want[10] = -INF; /* log(-0) */
    if (cases[c].op == CLAI_SQRT && got[9] == 0) want[9] = 0;
    if (cases[c].op == CLAI_SQRT && got[10] == 0) want[10] = 0;
    char what[64];
    snprintf(what, sizeof what, "unary %s", cases[c].name);
    expect(what, got, want, NSPEC, 1e-30, 2e-6);
    free(got);
  }
  /* backward at NaN: every derivative that depends on x is NaN there (PyTorch), except relu's (tested
   * above), neg's (-1 everywhere) and abs's (sign(x), 0 at NaN as at 0; clai.h documents it) */
  const double one = 1;
  clai_tensor *g = up(ctx, CLAI_DTYPE_F32, 1, &n, (double[NSPEC]){1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  const clai_unary_op ops[] = {CLAI_NEG,  CLAI_ABS,  CLAI_EXP,     CLAI_LOG, CLAI_SQRT,
                               CLAI_GELU, CLAI_SILU, CLAI_SIGMOID, CLAI_TANH};
  for (size_t c = 0; c < sizeof ops / sizeof ops[0]; c++) {
    CLAIT_OK(ctx, clai_unary_backward(ctx, ops[c], y, g, x));
    double *got = clait_fetch(ctx, y);
    const double w0 = ops[c] == CLAI_NEG ? -one : ops[c] == CLAI_ABS ? 0 : NaN;
    char what[64];
    snprintf(what, sizeof what, "unary backward %d at NaN", (int)ops[c]);
    expect(what, got, &w0, 1, 0, 0);
    /* at +-inf: exp' = e^x (0, inf), sigmoid' and tanh' 0 */
    if (ops[c] == CLAI_EXP) expect("exp' at -inf, inf", got + 1, (double[2]){0, INF}, 2, 0, 0);
    /* 1 - tanh^2 within tanh's few ulp (POCL's tanh(-inf) is -1 + 2^-24) */
    if (ops[c] == CLAI_SIGMOID || ops[c] == CLAI_TANH)
      expect("sigmoid'/tanh' at -inf, inf", got + 1, (double[2]){0, 0}, 2, 3e-7, 0);
    if (ops[c] == CLAI_LOG) expect("log' at 0", got + 8, (double[1]){INF}, 1, 0, 0);
    free(got);
  }
  clai_tensor_free(g);
  clai_tensor_free(x);
  clai_tensor_free(y);
}

/* ---- binary ops -------------------------------------------------------------------------------------------- */

/* IEEE arithmetic for add, sub, mul, div; maximum and minimum are fmax / fmin: a NaN operand is passed over
 * (clai.h; torch.fmax / torch.fmin, where torch.maximum would give NaN), NaN only when both are NaN. The
 * backward of maximum gives a NaN side no gradient. */
static void binary_special(void **state) {
  clai_context *ctx = CTX(state);
  const double a[] = {NaN, 1, INF, INF, -INF, FMAX, -FMAX, DEN, 0, NaN, -0.0};
  const double b[] = {1, NaN, INF, -INF, -INF, FMAX, FMAX, DEN, 0, NaN, 0};
  const double add[] = {NaN, NaN, INF, NaN, -INF, INF, 0, 2 * DEN, 0, NaN, 0};
  const double sub[] = {NaN, NaN, NaN, INF, NaN, 0, -INF, 0, 0, NaN, 0};
  const double mul[] = {NaN, NaN, INF, -INF, INF, INF, -INF, 0, 0, NaN, 0};
  const double dv[] = {NaN, NaN, NaN, NaN, NaN, 1, -1, 1, NaN, NaN, NaN};
  const double mx[] = {1, 1, INF, INF, -INF, FMAX, FMAX, DEN, 0, NaN, 0};
  const double mn[] = {1, 1, INF, -INF, -INF, FMAX, -FMAX, DEN, 0, NaN, 0};
  const double *want[6] = {add, sub, mul, dv, mx, mn};
  const int64_t n = sizeof a / sizeof a[0];
  clai_tensor *ta = up(ctx, CLAI_DTYPE_F32, 1, &n, a), *tb = up(ctx, CLAI_DTYPE_F32, 1, &n, b);
  clai_tensor *out = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  for (int op = 0; op < 6; op++) {
    CLAIT_OK(ctx, clai_binary(ctx, (clai_binary_op)op, out, ta, tb));
    double *got = clait_fetch(ctx, out);
    /* DEN / DEN on a flushing device is 0 / 0 */
    double w[16];
    memcpy(w, want[op], (size_t)n * 8);
    if (op == 3 && isnan(got[7])) w[7] = NaN;
    char what[32];
    snprintf(what, sizeof what, "binary op %d", op);
    expect(what, got, w, (size_t)n, 0, 1e-6);
    free(got);
  }
  /* maximum's backward: NaN side none, the other all; two NaNs split */
  double ones[16];
  for (int i = 0; i < n; i++) ones[i] = 1;
  clai_tensor *g = up(ctx, CLAI_DTYPE_F32, 1, &n, ones), *ga = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  CLAIT_OK(ctx, clai_binary_backward(ctx, CLAI_MAXIMUM, ga, NULL, g, ta, tb));
  double *got = clait_fetch(ctx, ga);
  expect("maximum backward, a's side at (NaN, 1), (1, NaN), (NaN, NaN)", (double[3]){got[0], got[1], got[9]},
         (double[3]){0, 1, 0.5}, 3, 0, 0);
  free(got);
  clai_tensor *all[] = {ta, tb, out, g, ga};
  for (size_t i = 0; i < 5; i++) clai_tensor_free(all[i]);
}

/* affine (alpha * x + beta) is IEEE: 0 * inf = NaN; where() counts a NaN mask as nonzero (clai.h) and copies
 * special values unchanged. */
static void affine_where_special(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t n = 4;
  const double x[4] = {NaN, INF, -INF, FMAX};
  clai_tensor *tx = up(ctx, CLAI_DTYPE_F32, 1, &n, x), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  CLAIT_OK(ctx, clai_affine(ctx, out, tx, 0.0f, 1.0f));
  expect_t(ctx, "affine 0 * x + 1", out, (double[4]){NaN, NaN, NaN, 1}, 0, 0);
  CLAIT_OK(ctx, clai_affine(ctx, out, tx, 2.0f, 0.0f));
  expect_t(ctx, "affine 2 * x", out, (double[4]){NaN, INF, -INF, INF}, 0, 0);
  const double mask[4] = {NaN, 0, -0.0, 1}, b[4] = {5, 6, 7, 8};
  clai_tensor *tm = up(ctx, CLAI_DTYPE_F32, 1, &n, mask), *tb = up(ctx, CLAI_DTYPE_F32, 1, &n, b);
  CLAIT_OK(ctx, clai_where(ctx, out, tm, tx, tb));
  expect_t(ctx, "where with a NaN mask", out, (double[4]){NaN, 6, 7, FMAX}, 0, 0);
  clai_tensor *all[] = {tx, out, tm, tb};
  for (size_t i = 0; i < 4; i++) clai_tensor_free(all[i]);
}

/* ---- reductions ---------------------------------------------------------------------------------------------- */

/* Rows: sum / mean propagate NaN and follow IEEE for infinities (inf + -inf = NaN); max / min give NaN for a
 * row with a NaN (torch.max); argmax / argmin return the first NaN's index (torch.argmax); var of a row
 * with an infinity is NaN. */
static void reduce_special(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t shape[2] = {6, 3};
  const double x[18] = {1, NaN, 2, 1, INF, 2, -INF, INF, 0, -FMAX, -FMAX, 0, DEN, DEN, 0, -INF, -INF, -1};
  const double sum[6] = {NaN, INF, NaN, -INF, 2 * DEN, -INF};
  const double mean[6] = {NaN, INF, NaN, -INF, 2 * DEN / 3, -INF};
  const double max[6] = {NaN, INF, INF, 0, DEN, -1};
  const double min[6] = {NaN, 1, -INF, -FMAX, 0, -INF};
  const double var[6] = {NaN, NaN, NaN, INF, 0, NaN};
  const double amax[6] = {1, 1, 1, 2, 0, 2}, amin[6] = {1, 0, 0, 0, 2, 0};
  clai_tensor *t = up(ctx, CLAI_DTYPE_F32, 2, shape, x), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 1, shape);
  clai_tensor *idx = clait_tensor(ctx, CLAI_DTYPE_I32, 1, shape);
  const clai_reduce_op ops[5] = {CLAI_REDUCE_SUM, CLAI_REDUCE_MEAN, CLAI_REDUCE_MAX, CLAI_REDUCE_MIN, CLAI_REDUCE_VAR};
  const double *want[5] = {sum, mean, max, min, var};
  const char *names[5] = {"sum", "mean", "max", "min", "var"};
  for (int k = 0; k < 5; k++) {
    CLAIT_OK(ctx, clai_reduce(ctx, ops[k], out, t, 1, 0));
    double *got = clait_fetch(ctx, out);
    double w[6];
    memcpy(w, want[k], sizeof w);
    if (k == 4 && got[3] == INF) w[3] = INF; /* var of [-FLT_MAX, -FLT_MAX, 0]: the squares overflow */
    char what[48];
    snprintf(what, sizeof what, "reduce %s of special rows", names[k]);
    expect(what, got, w, 6, 1e-45, 1e-6);
    free(got);
  }
  CLAIT_OK(ctx, clai_argmax(ctx, idx, t, 1, 0));
  expect_t(ctx, "argmax of special rows", idx, amax, 0, 0);
  CLAIT_OK(ctx, clai_argmin(ctx, idx, t, 1, 0));
  double *gi = clait_fetch(ctx, idx), wmin[6];
  memcpy(wmin, amin, sizeof wmin);
  if (gi[4] == 0) wmin[4] = 0; /* a device that flushes denormals sees [0 0 0] */
  expect("argmin of special rows", gi, wmin, 6, 0, 0);
  free(gi);
  /* the same rows as columns of a [3, 40] tensor reduced over axis 0 (the column kernel, float8 lanes) */
  {
    const int64_t sc[2] = {3, 40}, w = 40;
    double xc[120], wsum[40];
    for (int64_t j = 0; j < w; j++) {
      for (int i = 0; i < 3; i++) xc[i * w + j] = j < 6 ? x[j * 3 + i] : (double)(i + j);
      wsum[j] = j < 6 ? sum[j] : (double)(3 * j + 3);
    }
    clai_tensor *tc = up(ctx, CLAI_DTYPE_F32, 2, sc, xc), *oc = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &w);
    CLAIT_OK(ctx, clai_reduce(ctx, CLAI_REDUCE_SUM, oc, tc, 0, 0));
    expect_t(ctx, "reduce sum of special columns", oc, wsum, 1e-45, 1e-6);
    clai_tensor_free(tc);
    clai_tensor_free(oc);
  }
  /* all elements */
  clai_tensor *s0 = clait_tensor(ctx, CLAI_DTYPE_F32, 0, NULL);
  CLAIT_OK(ctx, clai_reduce(ctx, CLAI_REDUCE_MAX, s0, t, CLAI_AXIS_ALL, 0));
  expect_t(ctx, "max of everything (a NaN inside)", s0, (double[1]){NaN}, 0, 0);
  clai_tensor_free(s0);
  clai_tensor_free(t);
  clai_tensor_free(out);
  clai_tensor_free(idx);
}

/* ---- layernorm / rmsnorm --------------------------------------------------------------------------------------- */

/* A NaN or an infinity in a row makes the layernorm row NaN (x - mean is NaN or the variance is); rmsnorm
 * of a row with an infinity: mean(x^2) = inf, rstd = 0, so the infinity gives NaN and the rest 0 (PyTorch's
 * x * rsqrt(mean(x^2) + eps)); so does a row whose squares overflow f32 (-1e30: rstd 0, out 0, as PyTorch's
 * f32 gives). Denormal rows give ~0. */
static void norm_special(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t shape[2] = {4, 3}, rs[1] = {4};
  const double x[12] = {1, NaN, 2, 1, INF, 2, -1e30, -1e30, -1e30, DEN, -DEN, 0};
  const double ln[12] = {NaN, NaN, NaN, NaN, NaN, NaN, 0, 0, 0, 0, 0, 0};
  const double rms[12] = {NaN, NaN, NaN, 0, NaN, 0, 0, 0, 0, 0, 0, 0};
  const double lrstd[4] = {NaN, NaN, 1 / sqrt(1e-5), 1 / sqrt(1e-5)};
  const double rrstd[4] = {NaN, 0, 0, 1 / sqrt(1e-5)};
  clai_tensor *t = up(ctx, CLAI_DTYPE_F32, 2, shape, x), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, shape);
  clai_tensor *mean = clait_tensor(ctx, CLAI_DTYPE_F32, 1, rs), *rstd = clait_tensor(ctx, CLAI_DTYPE_F32, 1, rs);
  CLAIT_OK(ctx, clai_layernorm(ctx, out, t, NULL, NULL, 1e-5f, mean, rstd));
  double *got = clait_fetch(ctx, out);
  /* the -1e30 row: mean is -1e30 up to rounding, so x - mean is 0 or a rounding error times rstd; PyTorch
   * has the same rounding. Only rows 0, 1 and 3 are compared exactly. */
  expect("layernorm rows with NaN, inf", got, ln, 6, 0, 0);
  expect("layernorm of a denormal row", got + 9, ln + 9, 3, 1e-30, 0);
  free(got);
  got = clait_fetch(ctx, rstd);
  expect("layernorm rstd", got, lrstd, 2, 0, 0);
  expect("layernorm rstd of the denormal row", got + 3, lrstd + 3, 1, 0, 1e-6);
  free(got);
  CLAIT_OK(ctx, clai_rmsnorm(ctx, out, t, NULL, 1e-5f, rstd));
  expect_t(ctx, "rmsnorm of special rows", out, rms, 1e-30, 1e-6);
  expect_t(ctx, "rmsnorm rstd", rstd, rrstd, 0, 1e-6);
  clai_tensor_free(t);
  clai_tensor_free(out);
  clai_tensor_free(mean);
  clai_tensor_free(rstd);
}

/* ---- matmul ---------------------------------------------------------------------------------------------------- */

/* IEEE products and sums (inf * 0 = NaN, inf + -inf = NaN); with beta = 0, C is not read, so its NaNs do not
 * propagate (clai.h); denormal products may flush. */
static void matmul_special(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t sa[2] = {4, 2}, sb[2] = {2, 3}, sc[2] = {4, 3};
  const double a[8] = {NaN, 0, INF, 0, INF, 1, 1e-20, 1};
  const double b[6] = {1, 0, 2, -INF, 1, 0};
  /* row 0: NaN * anything; row 1: inf * [1 0 2] + 0 * [-inf 1 0] = [inf NaN inf] + [NaN 0 0]; row 2:
   * [inf NaN inf] + [-inf 1 0]; row 3: 1e-20 * [1 0 2] + [-inf 1 0] */
  const double want[12] = {NaN, NaN, NaN, NaN, NaN, INF, NaN, NaN, INF, -INF, 1, 2e-20};
  double cnan[12];
  for (int i = 0; i < 12; i++) cnan[i] = NaN;
  clai_tensor *ta = up(ctx, CLAI_DTYPE_F32, 2, sa, a), *tb = up(ctx, CLAI_DTYPE_F32, 2, sb, b);
  clai_tensor *tc = up(ctx, CLAI_DTYPE_F32, 2, sc, cnan);
  CLAIT_OK(ctx, clai_matmul(ctx, tc, ta, 0, tb, 0, 1.0f, 0.0f));
  expect_t(ctx, "matmul with NaN, inf (C NaN, beta 0)", tc, want, 0, 1e-6);
  /* beta != 0 reads C: NaN everywhere */
  clait_put(ctx, tc, cnan);
  CLAIT_OK(ctx, clai_matmul(ctx, tc, ta, 0, tb, 0, 1.0f, 1.0f));
  expect_t(ctx, "matmul, beta 1, C NaN", tc, cnan, 0, 0);
  /* denormal products: 1e-20 * 1e-20 = 1e-40 or 0 */
  const double d[8] = {1e-20, 0, 1e-20, 0, 1e-20, 0, 1e-20, 0};
  const double bd[6] = {1e-20, 1e-20, 1e-20, 0, 0, 0}, wd[12] = {DEN, DEN, DEN, DEN, DEN, DEN, DEN, DEN, DEN, DEN, DEN, DEN};
  clait_put(ctx, ta, d);
  clait_put(ctx, tb, bd);
  CLAIT_OK(ctx, clai_matmul(ctx, tc, ta, 0, tb, 0, 1.0f, 0.0f));
  expect_t(ctx, "matmul of denormal products", tc, wd, 1e-45, 1e-5);
  clai_tensor_free(ta);
  clai_tensor_free(tb);
  clai_tensor_free(tc);
}

/* ---- pooling -------------------------------------------------------------------------------------------------- */

/* max pooling: a NaN in the window gives NaN and its index (torch.max_pool2d); -inf windows give -inf;
 * average pooling follows IEEE (NaN in, NaN out; inf + -inf = NaN). Both the general loop and the 2x2
 * stride-2 fast path (x 2 x 8). */
static void pool_special(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t sx[4] = {1, 1, 2, 8}, so[4] = {1, 1, 1, 4};
  const double x[16] = {NaN, 1, INF, -INF, -INF, -INF, FMAX, DEN,
                        2,   3, 0,   5,    -INF, -INF, FMAX, 0};
  const double wmax[4] = {NaN, INF, -INF, FMAX}, widx[4] = {0, 2, 4, 6};
  const double wavg[4] = {NaN, NaN, -INF, INF}; /* the last: FLT_MAX + FLT_MAX overflows */
  clai_tensor *t = up(ctx, CLAI_DTYPE_F32, 4, sx, x), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 4, so);
  clai_tensor *idx = clait_tensor(ctx, CLAI_DTYPE_I32, 4, so);
  clai_pool2d_params p = {0};
  p.kernel_h = p.kernel_w = 2;
  CLAIT_OK(ctx, clai_max_pool2d(ctx, out, idx, t, &p));
  expect_t(ctx, "max_pool2d 2x2/2 (fast path)", out, wmax, 0, 0);
  expect_t(ctx, "max_pool2d indices", idx, widx, 0, 0);
  CLAIT_OK(ctx, clai_avg_pool2d(ctx, out, t, &p));
  expect_t(ctx, "avg_pool2d 2x2/2", out, wavg, 0, 0);
  /* the general loop: 1x2 windows */
  const int64_t so2[4] = {1, 1, 2, 4};
  clai_tensor *out2 = clait_tensor(ctx, CLAI_DTYPE_F32, 4, so2);
  p.kernel_h = 1;
  CLAIT_OK(ctx, clai_max_pool2d(ctx, out2, NULL, t, &p));
  const double w2[8] = {NaN, INF, -INF, FMAX, 3, 5, -INF, FMAX};
  expect_t(ctx, "max_pool2d 1x2 (general loop)", out2, w2, 0, 0);
  /* global average: the plane sums [NaN 1 inf -inf ...] and [2 3 0 5 ...] with FLT_MAX twice: NaN */
  const int64_t sg[4] = {1, 2, 1, 8}, sgo[2] = {1, 2};
  clai_tensor *g = up(ctx, CLAI_DTYPE_F32, 4, sg, x), *go = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sgo);
  CLAIT_OK(ctx, clai_global_avg_pool2d(ctx, go, g));
  expect_t(ctx, "global_avg_pool2d with NaN; with -inf and FLT_MAX", go, (double[2]){NaN, -INF}, 0, 0);
  clai_tensor_free(g);
  clai_tensor_free(go);
  clai_tensor_free(t);
  clai_tensor_free(out);
  clai_tensor_free(out2);
  clai_tensor_free(idx);
}

/* ---- attention ------------------------------------------------------------------------------------------------- */

/* Scores far beyond exp's range (one key dominates exactly), a query that sees no key (causal, Lq > Lk:
 * a zero row and lse -inf, clai.h), and a NaN key, which makes every query that sees it NaN. */
static void attention_special(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t sq[4] = {1, 1, 3, 1}, sk[4] = {1, 1, 2, 1}, sv[4] = {1, 1, 2, 2}, so[4] = {1, 1, 3, 2}, sl[3] = {1, 1, 3};
  const double q[3] = {1e5, -1e5, 3}, k[2] = {1e5, -1e5}, v[4] = {1, 2, 3, 4};
  clai_tensor *tq = up(ctx, CLAI_DTYPE_F32, 4, sq, q), *tk = up(ctx, CLAI_DTYPE_F32, 4, sk, k);
  clai_tensor *tv = up(ctx, CLAI_DTYPE_F32, 4, sv, v), *to = clait_tensor(ctx, CLAI_DTYPE_F32, 4, so);
  clai_tensor *tl = clait_tensor(ctx, CLAI_DTYPE_F32, 3, sl);
  /* scale 1/sqrt(80): query 0's scores are +-1.1e9, query 1's -+1.1e9; query 2: 3 * 1e5 / sqrt(80) vs its
   * negative, also one-sided */
  const float s80 = (float)(1.0 / sqrt(80.0));
  CLAIT_OK(ctx, clai_attention(ctx, to, tl, tq, tk, tv, s80, 0));
  const double w[6] = {1, 2, 3, 4, 1, 2};
  expect_t(ctx, "attention with scores of 1e9", to, w, 1e-6, 1e-6);
  double *lse = clait_fetch(ctx, tl);
  const double wl[3] = {1e10 * (double)s80, 1e10 * (double)s80, 3e5 * (double)s80};
  expect("attention lse with scores of 1e9", lse, wl, 3, 0, 1e-6);
  free(lse);
  /* causal, Lq = 3 > Lk = 2: query 0 sees no key */
  const double q2[3] = {1, 1, 1}, k2[2] = {0, 0};
  clait_put(ctx, tq, q2);
  clait_put(ctx, tk, k2);
  CLAIT_OK(ctx, clai_attention(ctx, to, tl, tq, tk, tv, 0.0f, 1));
  const double wc[6] = {0, 0, 1, 2, 2, 3}, wlc[3] = {-INF, 0, log(2.0)};
  expect_t(ctx, "causal attention, a query that sees no key", to, wc, 1e-6, 1e-6);
  expect_t(ctx, "causal attention lse", tl, wlc, 1e-6, 1e-6);
  /* a NaN key: queries 1 and 2 see it (causal), query 0 sees nothing */
  const double k3[2] = {0, NaN};
  clait_put(ctx, tk, k3);
  CLAIT_OK(ctx, clai_attention(ctx, to, tl, tq, tk, tv, 0.0f, 1));
  const double wn[6] = {0, 0, 1, 2, NaN, NaN};
  expect_t(ctx, "causal attention with a NaN key", to, wn, 1e-6, 1e-6);
  clai_tensor *all[] = {tq, tk, tv, to, tl};
  for (size_t i = 0; i < 5; i++) clai_tensor_free(all[i]);
}

/* ---- losses and gradient clipping ------------------------------------------------------------------------------ */

/* MSE: NaN in, NaN out; an infinite difference gives an infinite loss. clip_grad_norm: an infinite
 * gradient makes the norm inf and the factor 0, so that element becomes NaN (inf * 0) and the rest 0, as in
 * torch.nn.utils.clip_grad_norm_; a NaN makes every gradient NaN (clai.h). */
static void loss_clip_special(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t n = 3;
  const double x[3] = {1, INF, 0}, y[3] = {1, 0, 0};
  clai_tensor *tx = up(ctx, CLAI_DTYPE_F32, 1, &n, x), *ty = up(ctx, CLAI_DTYPE_F32, 1, &n, y);
  clai_tensor *loss = clait_tensor(ctx, CLAI_DTYPE_F32, 0, NULL), *g = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  CLAIT_OK(ctx, clai_loss_mse(ctx, loss, g, tx, ty));
  expect_t(ctx, "mse with an infinite difference", loss, (double[1]){INF}, 0, 0);
  const double gw[3] = {0, INF, 0};
  expect_t(ctx, "mse gradient with an infinite difference", g, gw, 0, 0);
  const double xn[3] = {1, NaN, 0};
  clait_put(ctx, tx, xn);
  CLAIT_OK(ctx, clai_loss_mse(ctx, loss, NULL, tx, ty));
  expect_t(ctx, "mse with NaN", loss, (double[1]){NaN}, 0, 0);
  /* clip_grad_norm */
  const double g1[3] = {1, INF, 2}, g2[3] = {3, 4, 0};
  clai_tensor *ga = up(ctx, CLAI_DTYPE_F32, 1, &n, g1), *gb = up(ctx, CLAI_DTYPE_F32, 1, &n, g2);
  clai_tensor *grads[2] = {ga, gb}, *norm = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[1]){1});
  CLAIT_OK(ctx, clai_clip_grad_norm(ctx, grads, 2, 1.0f, norm));
  expect_t(ctx, "clip_grad_norm: the norm with an infinite gradient", norm, (double[1]){INF}, 0, 0);
  expect_t(ctx, "clip_grad_norm: the infinite gradient", ga, (double[3]){0, NaN, 0}, 0, 0);
  expect_t(ctx, "clip_grad_norm: the other gradient", gb, (double[3]){0, 0, 0}, 0, 0);
  clait_put(ctx, ga, xn);
  clait_put(ctx, gb, g2);
  CLAIT_OK(ctx, clai_clip_grad_norm(ctx, grads, 2, 1.0f, norm));
  expect_t(ctx, "clip_grad_norm with a NaN", gb, (double[3]){NaN, NaN, NaN}, 0, 0);
  clai_tensor *all[] = {tx, ty, loss, g, ga, gb, norm};
  for (size_t i = 0; i < 7; i++) clai_tensor_free(all[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(softmax_large_scaled, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(softmax_special, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(log_softmax_precision, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(cross_entropy_precision, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(cross_entropy_special, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(relu_nan, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(relu_fused_nan, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(unary_special, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(binary_special, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(affine_where_special, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(reduce_special, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(norm_special, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(matmul_special, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(pool_special, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(attention_special, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(loss_clip_special, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("special", tests, 1);
}
