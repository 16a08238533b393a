/* test-binary-backward - clai_binary_backward for every clai_binary_op with broadcasting: the host's
 * analytic gradient (in double, summed over the broadcast dims) is first checked against central finite
 * differences of L = sum(grad_out * (a OP b)), then the device's grad_a and grad_b against it, for f32 and
 * f16, shapes with odd sizes where a or b (or both) broadcast; ties and NaNs of maximum/minimum; strided
 * views; one side only; the same bits on every run; bad arguments (the context stays usable). */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))
#define MAXN 4096

static const char *const names[] = {"add", "sub", "mul", "div", "maximum", "minimum"};

/* A broadcast case: out's shape and a's and b's (right-aligned, NumPy rules). */
typedef struct bcase {
  int nd, na, nb;
  int64_t out[4], a[4], b[4];
} bcase;

static const bcase cases[] = {
    {3, 3, 3, {3, 5, 7}, {3, 5, 7}, {3, 5, 7}}, /* no broadcast */
    {3, 3, 1, {3, 5, 7}, {3, 5, 7}, {7}},       /* a bias along the last dim */
    {3, 3, 3, {3, 5, 7}, {3, 1, 7}, {1, 5, 1}}, /* both broadcast, on different dims */
    {2, 1, 2, {4, 9}, {1}, {4, 9}},             /* a scalar-like a */
    {2, 2, 2, {13, 11}, {13, 1}, {1, 11}},      /* an outer product */
    {1, 1, 1, {1}, {1}, {1}},
};
#define NCASES (sizeof cases / sizeof cases[0])

static double f(int op, double x, double y) {
  switch (op) {
  case CLAI_ADD: return x + y;
  case CLAI_SUB: return x - y;
  case CLAI_MUL: return x * y;
  case CLAI_DIV: return x / y;
  case CLAI_MAXIMUM: return x > y ? x : y;
  default: return x < y ? x : y;
  }
}

/* d f / d side at (x, y): ties split in halves, NaNs as documented in clai.h */
static double df(int op, int side, double x, double y) {
  switch (op) {
  case CLAI_ADD: return 1;
  case CLAI_SUB: return side ? -1 : 1;
  case CLAI_MUL: return side ? x : y;
  case CLAI_DIV: return side ? -x / (y * y) : 1 / y;
  default: {
    double self = side ? y : x, other = side ? x : y;
    if (isnan(self) && isnan(other)) return 0.5;
    if (isnan(self)) return 0;
    if (isnan(other)) return 1;
    int wins = op == CLAI_MAXIMUM ? self > other : self < other;
    return wins ? 1 : self == other ? 0.5 : 0;
  }
  }
}

/* Element offset in a (shape s, nd dims, right-aligned to out's od dims) of out's linear index i. */
static size_t bidx(const bcase *c, const int64_t *s, int nd, size_t i) {
  size_t off = 0, mul = 1;
  for (int d = c->nd - 1, e = nd - 1; d >= 0; d--, e--) {
    size_t coord = i % (size_t)c->out[d];
    i /= (size_t)c->out[d];
    if (e >= 0) {
      if (s[e] != 1) off += coord * mul;
      mul *= (size_t)s[e];
    }
  }
  return off;
}

static size_t numel(const int64_t *s, int nd) {
  size_t n = 1;
  for (int i = 0; i < nd; i++) n *= (size_t)s[i];
  return n;
}

/* The reference: ga[j] = sum over out elements i reading a[j] of g[i] * df/da, likewise gb. */
static void reference(const bcase *c, int op, const double *g, const double *a, const double *b, double *ga,
                      double *gb) {
  size_t no = numel(c->out, c->nd), na = numel(c->a, c->na), nb = numel(c->b, c->nb);
  for (size_t j = 0; j < na; j++) ga[j] = 0;
  for (size_t j = 0; j < nb; j++) gb[j] = 0;
  for (size_t i = 0; i < no; i++) {
    size_t ia = bidx(c, c->a, c->na, i), ib = bidx(c, c->b, c->nb, i);
    ga[ia] += g[i] * df(op, 0, a[ia], b[ib]);
    gb[ib] += g[i] * df(op, 1, a[ia], b[ib]);
  }
}

static double loss(const bcase *c, int op, const double *g, const double *a, const double *b) {
  double s = 0;
  for (size_t i = 0; i < numel(c->out, c->nd); i++)
    s += g[i] * f(op, a[bidx(c, c->a, c->na, i)], b[bidx(c, c->b, c->nb, i)]);
  return s;
}

/* Random inputs: b away from 0 for div; a and b far enough apart that max/min have no near-ties. */
static void inputs(clait_rng *r, int op, const bcase *c, double *g, double *a, double *b) {
  for (size_t i = 0; i < numel(c->out, c->nd); i++) g[i] = clait_uniform(r, -1, 1);
  for (size_t i = 0; i < numel(c->a, c->na); i++) a[i] = clait_uniform(r, -2, 2);
  for (size_t i = 0; i < numel(c->b, c->nb); i++) {
    double v = clait_uniform(r, 0.5, 2);
    b[i] = op == CLAI_DIV ? (clait_next(r) & 1 ? v : -v) : clait_uniform(r, -2, 2);
  }
  if (op >= CLAI_MAXIMUM)
    for (size_t i = 0; i < numel(c->b, c->nb); i++)
      for (size_t j = 0; j < numel(c->a, c->na); j++)
        if (fabs(a[j] - b[i]) < 1e-3) b[i] += 0.01;
}

/* The analytic reference agrees with central differences of the loss, element by element. */
static void finite_differences(void **state) {
  (void)state;
  clait_rng r = {0xb1};
  static double g[MAXN], a[MAXN], b[MAXN], ga[MAXN], gb[MAXN];
  for (int op = 0; op <= CLAI_MINIMUM; op++)
    for (size_t k = 0; k < NCASES; k++) {
      const bcase *c = &cases[k];
      inputs(&r, op, c, g, a, b);
      reference(c, op, g, a, b, ga, gb);
      for (int side = 0; side < 2; side++) {
        double *x = side ? b : a, *want = side ? gb : ga;
        size_t n = numel(side ? c->b : c->a, side ? c->nb : c->na);
        for (size_t j = 0; j < n; j++) {
          double keep = x[j], h = 1e-6 * (1 + fabs(keep));
          x[j] = keep + h;
          double up = loss(c, op, g, a, b);
          x[j] = keep - h;
          double down = loss(c, op, g, a, b);
          x[j] = keep;
          double fd = (up - down) / (2 * h);
          if (!(fabs(fd - want[j]) <= 1e-5 * (1 + fabs(fd))))
            fail_msg("%s case %zu grad_%c[%zu]: analytic %.9g, finite difference %.9g", names[op], k, "ab"[side], j,
                     want[j], fd);
        }
      }
    }
}

static void upload(clai_context *ctx, clai_tensor *t, const double *v) { clait_put(ctx, t, v); }

/* f16 inputs are rounded to half on the host before the reference sees them. */
static void round_to(clai_dtype dt, double *v, size_t n) {
  if (dt != CLAI_DTYPE_F16) return;
  for (size_t i = 0; i < n; i++) v[i] = clait_f16_to_f32(clait_f32_to_f16((float)v[i]));
}

static void run(clai_context *ctx, int op, const bcase *c, clai_dtype dt, clait_rng *r) {
  static double g[MAXN], a[MAXN], b[MAXN], ga[MAXN], gb[MAXN];
  inputs(r, op, c, g, a, b);
  size_t no = numel(c->out, c->nd), na = numel(c->a, c->na), nb = numel(c->b, c->nb);
  round_to(dt, g, no), round_to(dt, a, na), round_to(dt, b, nb);
  reference(c, op, g, a, b, ga, gb);
  clai_tensor *tg = clait_tensor(ctx, dt, c->nd, c->out), *ta = clait_tensor(ctx, dt, c->na, c->a),
              *tb = clait_tensor(ctx, dt, c->nb, c->b), *tga = clait_tensor(ctx, dt, c->na, c->a),
              *tgb = clait_tensor(ctx, dt, c->nb, c->b);
  upload(ctx, tg, g), upload(ctx, ta, a), upload(ctx, tb, b);
  CLAIT_OK(ctx, clai_binary_backward(ctx, (clai_binary_op)op, tga, tgb, tg, ta, tb));
  double *got_a = clait_fetch(ctx, tga), *got_b = clait_fetch(ctx, tgb);
  /* f32: sums of at most a few hundred terms; f16: the result rounded to half */
  const double rtol = dt == CLAI_DTYPE_F16 ? 2e-3 : 1e-5, atol = dt == CLAI_DTYPE_F16 ? 2e-3 : 1e-5;
  for (int side = 0; side < 2; side++) {
    const double *got = side ? got_b : got_a, *want = side ? gb : ga;
    for (size_t j = 0; j < (side ? nb : na); j++)
      if (!(fabs(got[j] - want[j]) <= atol + rtol * fabs(want[j])))
        fail_msg("%s %s grad_%c[%zu] = %.9g, expected %.9g", names[op], clai_dtype_name(dt), "ab"[side], j, got[j],
                 want[j]);
  }
  free(got_a), free(got_b);
  clai_tensor_free(tg), clai_tensor_free(ta), clai_tensor_free(tb), clai_tensor_free(tga), clai_tensor_free(tgb);
}

static void device_vs_reference(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xb2};
  for (int op = 0; op <= CLAI_MINIMUM; op++)
    for (size_t k = 0; k < NCASES; k++) {
      run(ctx, op, &cases[k], CLAI_DTYPE_F32, &r);
      run(ctx, op, &cases[k], CLAI_DTYPE_F16, &r);
    }
}

/* maximum/minimum with ties (halves) and NaNs (the non-NaN side takes it; two NaNs split it). */
static void ties_and_nans(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t n = 4;
  const float a[4] = {1, 2, NAN, NAN}, b[4] = {1, 3, 5, NAN}, g[4] = {2, 2, 2, 2};
  const double want_max_a[4] = {1, 0, 0, 1}, want_max_b[4] = {1, 2, 2, 1};
  const double want_min_a[4] = {1, 2, 0, 1}, want_min_b[4] = {1, 0, 2, 1};
  clai_tensor *ta = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, &n, a),
              *tb = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, &n, b),
              *tg = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, &n, g);
  clai_tensor *ga = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n), *gb = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  for (int op = CLAI_MAXIMUM; op <= CLAI_MINIMUM; op++) {
    CLAIT_OK(ctx, clai_binary_backward(ctx, (clai_binary_op)op, ga, gb, tg, ta, tb));
    double *x = clait_fetch(ctx, ga), *y = clait_fetch(ctx, gb);
    const double *wa = op == CLAI_MAXIMUM ? want_max_a : want_min_a, *wb = op == CLAI_MAXIMUM ? want_max_b : want_min_b;
    for (int i = 0; i < 4; i++) {
      if (x[i] != wa[i] || y[i] != wb[i])
        fail_msg("%s element %d: grad_a %g grad_b %g, expected %g and %g", names[op], i, x[i], y[i], wa[i], wb[i]);
    }
    free(x), free(y);
  }
  clai_tensor_free(ta), clai_tensor_free(tb), clai_tensor_free(tg), clai_tensor_free(ga), clai_tensor_free(gb);
}

/* Strided inputs (a transposed view) and gradients (a column slice), one side at a time, and the same bits
 * on a second run. */
static void views_and_repeat(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xb3};
  const int64_t R = 37, C = 23, sT[2] = {C, R}, so[2] = {R, C}, sb[1] = {C}, wide[2] = {C, 3};
  double at[37 * 23], a[37 * 23], b[23], g[37 * 23];
  for (int i = 0; i < R * C; i++) at[i] = clait_uniform(&r, -2, 2), g[i] = clait_uniform(&r, -1, 1);
  for (int j = 0; j < C; j++) b[j] = clait_uniform(&r, 0.5, 2);
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) a[i * C + j] = at[j * R + i];
  clai_tensor *base = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sT), *tb = clait_tensor(ctx, CLAI_DTYPE_F32, 1, sb),
              *tg = clait_tensor(ctx, CLAI_DTYPE_F32, 2, so), *gbase = clait_tensor(ctx, CLAI_DTYPE_F32, 2, wide);
  clait_put(ctx, base, at), clait_put(ctx, tb, b), clait_put(ctx, tg, g);
  const int64_t tstr[2] = {1, R}, cstr[1] = {3};
  clai_tensor *ta = NULL, *gcol = NULL;
  CLAIT_OK(ctx, clai_tensor_view(base, &ta, 2, so, tstr, 0));      /* a = base^T, [R, C] */
  CLAIT_OK(ctx, clai_tensor_view(gbase, &gcol, 1, sb, cstr, 1));   /* grad_b: column 1 of [C, 3] */
  CLAIT_OK(ctx, clai_fill(ctx, gbase, 7.0));
  CLAIT_OK(ctx, clai_binary_backward(ctx, CLAI_DIV, NULL, gcol, tg, ta, tb));
  double *got = clait_fetch(ctx, gbase);
  for (int j = 0; j < C; j++) {
    double want = 0;
    for (int i = 0; i < R; i++) want += g[i * C + j] * (-(double)(float)a[i * C + j] / ((double)(float)b[j] * (float)b[j]));
    if (!(fabs(got[j * 3 + 1] - want) <= 1e-4 * (1 + fabs(want)))) fail_msg("div grad_b[%d] = %.9g, expected %.9g", j, got[j * 3 + 1], want);
    if (got[j * 3] != 7.0 || got[j * 3 + 2] != 7.0) fail_msg("row %d: the columns beside grad_b were written", j);
  }
  /* again: identical bits */
  double *first = got;
  CLAIT_OK(ctx, clai_binary_backward(ctx, CLAI_DIV, NULL, gcol, tg, ta, tb));
  double *second = clait_fetch(ctx, gbase);
  assert_memory_equal(first, second, sizeof(double) * (size_t)(C * 3));
  free(first), free(second);
  clai_tensor_free(ta), clai_tensor_free(gcol), clai_tensor_free(base), clai_tensor_free(tb), clai_tensor_free(tg),
      clai_tensor_free(gbase);
}

static void bad_arguments(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t s3[1] = {3}, s4[1] = {4}, s34[2] = {3, 4};
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 1, s4), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s34),
              *g = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s34), *ga = clait_tensor(ctx, CLAI_DTYPE_F32, 1, s4),
              *gb = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s34), *bad = clait_tensor(ctx, CLAI_DTYPE_F32, 1, s3),
              *h = clait_tensor(ctx, CLAI_DTYPE_F16, 2, s34), *i32 = clait_tensor(ctx, CLAI_DTYPE_I32, 2, s34);
  assert_int_equal(clai_binary_backward(NULL, CLAI_ADD, ga, gb, g, a, b), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_binary_backward(ctx, (clai_binary_op)9, ga, gb, g, a, b), CLAI_E_INVALID_ARG);
  assert_non_null(strstr(clai_errmsg(ctx), "clai_binary_op"));
  assert_int_equal(clai_binary_backward(ctx, CLAI_MUL, bad, gb, g, a, b), CLAI_E_SHAPE); /* grad_a not a's shape */
  assert_int_equal(clai_binary_backward(ctx, CLAI_MUL, ga, gb, g, bad, b), CLAI_E_SHAPE); /* a does not broadcast */
  assert_int_equal(clai_binary_backward(ctx, CLAI_MUL, ga, gb, h, a, b), CLAI_E_DTYPE);
  assert_int_equal(clai_binary_backward(ctx, CLAI_MUL, ga, gb, i32, a, b), CLAI_E_DTYPE);
  assert_int_equal(clai_binary_backward(ctx, CLAI_MUL, ga, g, g, a, b), CLAI_E_INVALID_ARG); /* grad_b is grad_out */
  assert_int_equal(clai_binary_backward(ctx, CLAI_MUL, ga, gb, g, a, gb), CLAI_E_INVALID_ARG); /* grad_b is b */
  assert_int_equal(clai_binary_backward(ctx, CLAI_ADD, NULL, NULL, g, a, b), CLAI_OK); /* nothing wanted */
  /* still usable */
  CLAIT_OK(ctx, clai_fill(ctx, g, 1.0));
  CLAIT_OK(ctx, clai_binary_backward(ctx, CLAI_ADD, ga, NULL, g, a, b));
  double *v = clait_fetch(ctx, ga);
  for (int i = 0; i < 4; i++) assert_true(v[i] == 3.0); /* a [4] broadcast over 3 rows */
  free(v);
  clai_tensor_free(a), clai_tensor_free(b), clai_tensor_free(g), clai_tensor_free(ga), clai_tensor_free(gb),
      clai_tensor_free(bad), clai_tensor_free(h), clai_tensor_free(i32);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clait_setup, clait_teardown)
int main(void) {
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(finite_differences),
      T(device_vs_reference),
      T(ties_and_nans),
      T(views_and_repeat),
      T(bad_arguments),
  };
  return CLAIT_MAIN("binary-backward", tests, 1);
}
