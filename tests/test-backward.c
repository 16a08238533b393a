/* test-backward.c - clai_unary_backward for every clai_unary_op: the host derivative of each op is first
 * checked against central finite differences of the forward function in double, then the device result
 * grad_out * f'(x) against it, for f32 and f16, sizes 1 to 1000, transposed and broadcast inputs, an
 * in-place gradient, and bad arguments. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

static const char *const names[] = {"neg", "abs", "exp", "log", "sqrt", "relu", "gelu", "silu", "sigmoid", "tanh"};

static double deriv(int op, double x) {
  double s, k = sqrt(2 / M_PI), t;
  switch (op) {
  case CLAI_NEG: return -1;
  case CLAI_ABS: return x > 0 ? 1 : x < 0 ? -1 : 0;
  case CLAI_EXP: return exp(x);
  case CLAI_LOG: return 1 / x;
  case CLAI_SQRT: return 0.5 / sqrt(x);
  case CLAI_RELU: return x > 0 ? 1 : 0;
  case CLAI_GELU: /* d/dx of 0.5x(1 + tanh(u)), u = k(x + 0.044715x^3) */
    t = tanh(k * (x + 0.044715 * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
  case CLAI_SILU: s = 1 / (1 + exp(-x)); return s + x * s * (1 - s);
  case CLAI_SIGMOID: s = 1 / (1 + exp(-x)); return s * (1 - s);
  default: t = tanh(x); return 1 - t * t;
  }
}

static void domain(int op, double *lo, double *hi) {
  *lo = op == CLAI_LOG || op == CLAI_SQRT ? 0.1 : -4;
  *hi = 4;
}

/* The host derivatives agree with central differences (away from the kinks of abs and relu). */
static void finite_differences(void **state) {
  (void)state;
  clait_rng r = {0xfd};
  for (int op = 0; op <= CLAI_TANH; op++) {
    double lo, hi;
    domain(op, &lo, &hi);
    for (int i = 0; i < 200; i++) {
      double x = lo + (hi - lo) * (clait_next(&r) >> 11) * (1.0 / 9007199254740992.0);
      if ((op == CLAI_ABS || op == CLAI_RELU) && fabs(x) < 1e-3) continue;
      double h = 1e-5 * (1 + fabs(x));
      const clai_unary_op u = (clai_unary_op)op;
      double fd = (clait_ref_unary(u, x + h) - clait_ref_unary(u, x - h)) / (2 * h), d = deriv(op, x);
      if (fabs(fd - d) > 1e-6 * (1 + fabs(d))) fail_msg("%s'(%g) = %.12g, finite difference %.12g", names[op], x, d, fd);
    }
  }
}

static double as(clai_dtype dt, double v) {
  return dt == CLAI_DTYPE_F16 ? clait_f16_to_f32(clait_f32_to_f16((float)v)) : (double)(float)v;
}

/* f32: a few ulp of the transcendental functions; f16: one half ulp of the rounded result. */
static void tol(clai_dtype dt, double *atol, double *rtol) {
  *atol = dt == CLAI_DTYPE_F16 ? 1e-4 : 1e-6;
  *rtol = dt == CLAI_DTYPE_F16 ? 2e-3 : 1e-5;
}

static void device_vs_reference(void **state) {
  clai_context *ctx = CTX(state);
  static const int64_t sizes[] = {1, 7, 31, 129, 1000};
  static const clai_dtype dts[] = {CLAI_DTYPE_F32, CLAI_DTYPE_F16};
  clait_rng r = {0xb4c};
  for (size_t d = 0; d < 2; d++)
    for (int op = 0; op <= CLAI_TANH; op++)
      for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        clai_dtype dt = dts[d];
        size_t n = (size_t)sizes[s];
        double lo, hi, *x = malloc(n * 8), *gy = malloc(n * 8), *want = malloc(n * 8);
        assert_non_null(x);
        assert_non_null(gy);
        assert_non_null(want);
        domain(op, &lo, &hi);
        for (size_t i = 0; i < n; i++) {
          x[i] = as(dt, clait_uniform(&r, (float)lo, (float)hi));
          gy[i] = as(dt, clait_uniform(&r, -2, 2));
          want[i] = as(dt, gy[i] * deriv(op, x[i]));
        }
        if (n > 3 && (op == CLAI_ABS || op == CLAI_RELU)) { /* the kink: PyTorch's 0 */
          x[2] = 0;
          want[2] = 0;
        }
        clai_tensor *tx = clait_tensor(ctx, dt, 1, &sizes[s]), *tgy = clait_tensor(ctx, dt, 1, &sizes[s]),
                    *tgx = clait_tensor(ctx, dt, 1, &sizes[s]);
        clait_put(ctx, tx, x);
        clait_put(ctx, tgy, gy);
        CLAIT_OK(ctx, clai_unary_backward(ctx, (clai_unary_op)op, tgx, tgy, tx));
        float *got = clait_get(ctx, tgx);
        char what[64];
        snprintf(what, sizeof what, "%s' %s n=%zu", names[op], clai_dtype_name(dt), n);
        double at, rt;
        tol(dt, &at, &rt);
        clait_expect_close(what, got, want, n, at, rt);
        free(got);
        /* in place over grad_out */
        CLAIT_OK(ctx, clai_unary_backward(ctx, (clai_unary_op)op, tgy, tgy, tx));
        got = clait_get(ctx, tgy);
        clait_expect_close(what, got, want, n, at, rt);
        free(got);
        clai_tensor_free(tx);
        clai_tensor_free(tgy);
        clai_tensor_free(tgx);
        free(x);
        free(gy);
        free(want);
      }
}

/* Transposed x, grad_out broadcast from one row, grad_x a column slice. */
static void views(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t sh[2] = {13, 17}, tsh[2] = {17, 13}, row[2] = {1, 17}, wide[2] = {13, 34};
  double xt[17 * 13], gr[17], want[13 * 17];
  clait_rng r = {5};
  for (int i = 0; i < 17 * 13; i++) xt[i] = (float)clait_uniform(&r, -3, 3);
  for (int i = 0; i < 17; i++) gr[i] = (float)clait_uniform(&r, -1, 1);
  for (int i = 0; i < 13; i++)
    for (int j = 0; j < 17; j++) want[i * 17 + j] = gr[j] * deriv(CLAI_GELU, xt[j * 13 + i]);
  clai_tensor *xb = clait_tensor(ctx, CLAI_DTYPE_F32, 2, tsh), *x = NULL, *gb = clait_tensor(ctx, CLAI_DTYPE_F32, 2, row),
              *g = NULL, *ob = clait_tensor(ctx, CLAI_DTYPE_F32, 2, wide), *o = NULL;
  clait_put(ctx, xb, xt);
  clait_put(ctx, gb, gr);
  CLAIT_OK(ctx, clai_tensor_transpose(xb, &x, 0, 1));
  CLAIT_OK(ctx, clai_tensor_expand(gb, &g, 2, sh));
  CLAIT_OK(ctx, clai_tensor_slice(ob, &o, 1, 0, 34, 2));
  CLAIT_OK(ctx, clai_unary_backward(ctx, CLAI_GELU, o, g, x));
  float *got = clait_get(ctx, o);
  clait_expect_close("gelu' views", got, want, 13 * 17, 1e-6, 1e-5);
  free(got);
  clai_tensor *all[] = {xb, x, gb, g, ob, o};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clai_tensor_free(all[i]);
}

static void bad_arguments(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t s7 = 7, s8 = 8, one = 1;
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s7), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s8),
              *h = clait_tensor(ctx, CLAI_DTYPE_F16, 1, &s7), *i = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &s7),
              *c = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s7), *o = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &one), *e = NULL,
              *sl = NULL;
  CLAIT_OK(ctx, clai_tensor_expand(o, &e, 1, &s7));
  CLAIT_OK(ctx, clai_tensor_slice(b, &sl, 0, 1, 8, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not a clai_unary_op", clai_unary_backward(ctx, (clai_unary_op)42, a, a, a));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "differ in shape", clai_unary_backward(ctx, CLAI_RELU, a, b, a));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "x [8]", clai_unary_backward(ctx, CLAI_RELU, a, a, b));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "dtypes differ", clai_unary_backward(ctx, CLAI_TANH, a, h, a));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "f32 or f16", clai_unary_backward(ctx, CLAI_RELU, i, i, i));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "broadcast", clai_unary_backward(ctx, CLAI_EXP, e, a, a));
  clai_tensor *head = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(b, &head, 0, 0, 7, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_unary_backward(ctx, CLAI_EXP, sl, head, a));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "is NULL", clai_unary_backward(ctx, CLAI_EXP, a, NULL, a));
  assert_int_equal(clai_unary_backward(NULL, CLAI_RELU, a, a, a), CLAI_E_INVALID_ARG);
  /* the context still works */
  double xv[7] = {-1, 0, 1, 2, -2, 3, 0.5}, gv[7] = {1, 1, 1, 1, 1, 1, 1}, want[7];
  clait_put(ctx, a, xv);
  clait_put(ctx, c, gv);
  CLAIT_OK(ctx, clai_unary_backward(ctx, CLAI_RELU, c, c, a));
  for (int k = 0; k < 7; k++) want[k] = xv[k] > 0;
  float *got = clait_get(ctx, c);
  clait_expect_close("after errors", got, want, 7, 0, 0);
  free(got);
  clai_tensor *all[] = {a, b, h, i, c, o, e, sl, head};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) clai_tensor_free(all[k]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(finite_differences),
      cmocka_unit_test_setup_teardown(device_vs_reference, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(bad_arguments, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("backward", tests, 1);
}
