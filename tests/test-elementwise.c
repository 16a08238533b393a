/* test-elementwise.c - clai_binary, clai_unary and clai_affine / clai_scale / clai_add_scalar against a
 * double-precision reference on the host, for f32, f16 and i32, with NumPy broadcasting, strided views as
 * inputs and outputs, and outputs that alias an input.
 *
 * Host data is kept as doubles holding values exactly representable in the tensor's dtype (f16 inputs are
 * rounded to half before upload), so the reference sees exactly what the device sees. f16 results are
 * compared with the reference rounded to half. */
#include <limits.h>

#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

static const int64_t sizes[] = {1, 7, 31, 129, 1000};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static const clai_dtype all_dtypes[] = {CLAI_DTYPE_F32, CLAI_DTYPE_F16, CLAI_DTYPE_I32};
static const clai_dtype float_dtypes[] = {CLAI_DTYPE_F32, CLAI_DTYPE_F16};

static const char *const bin_names[] = {"add", "sub", "mul", "div", "maximum", "minimum"};
static const char *const un_names[] = {"neg", "abs", "exp", "log", "sqrt", "relu", "gelu", "silu", "sigmoid", "tanh"};

/* ---- host helpers ----------------------------------------------------------------------------------- */

static size_t count(int ndim, const int64_t *shape) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  return n;
}

static void put(clai_dtype dt, void *buf, size_t i, double v) {
  switch (dt) {
  case CLAI_DTYPE_F32: ((float *)buf)[i] = (float)v; break;
  case CLAI_DTYPE_F16: ((uint16_t *)buf)[i] = clait_f32_to_f16((float)v); break;
  case CLAI_DTYPE_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
  default: fail_msg("put: %s is not an elementwise dtype", clai_dtype_name(dt));
  }
}

static double get(clai_dtype dt, const void *buf, size_t i) {
  switch (dt) {
  case CLAI_DTYPE_F32: return ((const float *)buf)[i];
  case CLAI_DTYPE_F16: return clait_f16_to_f32(((const uint16_t *)buf)[i]);
  case CLAI_DTYPE_I32: return ((const int32_t *)buf)[i];
  default: break;
  }
  return NAN;
}

/* The value v as the dtype stores it. */
static double as_dtype(clai_dtype dt, double v) {
  if (dt == CLAI_DTYPE_F32) return (float)v;
  if (dt == CLAI_DTYPE_F16) return clait_f16_to_f32(clait_f32_to_f16((float)v));
  return v;
}

/* n random values in [lo, hi), exactly representable in dt (integers for i32). */
static void randv(clait_rng *r, clai_dtype dt, double *v, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) {
    double x = clait_uniform(r, (float)lo, (float)hi);
    v[i] = dt == CLAI_DTYPE_I32 ? floor(x) : as_dtype(dt, x);
  }
}

/* Writes the dense row-major values v into t (any view). */
static void write_vals(clai_context *ctx, clai_tensor *t, const double *v) {
  clai_dtype dt = clai_tensor_dtype(t);
  size_t n = (size_t)clai_tensor_numel(t), es = clai_dtype_size(dt);
  void *buf = malloc(n * es + 1);
  assert_non_null(buf);
  for (size_t i = 0; i < n; i++) put(dt, buf, i, v[i]);
  clai_status st = clai_tensor_write(t, buf, n * es);
  free(buf);
  CLAIT_OK(ctx, st);
}

/* A new dense tensor holding v. */
static clai_tensor *upload(clai_context *ctx, clai_dtype dt, int ndim, const int64_t *shape, const double *v) {
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, ndim, shape));
  write_vals(ctx, t, v);
  return t;
}

/* Reads t (any view) densely into v. */
static void download(clai_context *ctx, clai_tensor *t, double *v) {
  clai_dtype dt = clai_tensor_dtype(t);
  size_t n = (size_t)clai_tensor_numel(t), es = clai_dtype_size(dt);
  void *buf = malloc(n * es + 1);
  assert_non_null(buf);
  clai_status st = clai_tensor_read(t, buf, n * es);
  for (size_t i = 0; i < n; i++) v[i] = get(dt, buf, i);
  free(buf);
  CLAIT_OK(ctx, st);
}

/* got against want: i32 exactly, f32 within atol + rtol*|want|, f16 the same against want rounded to half. */
static void expect(const char *what, clai_dtype dt, const double *got, const double *want, size_t n, double atol,
                   double rtol) {
  if (dt == CLAI_DTYPE_I32) {
    for (size_t i = 0; i < n; i++)
      if (got[i] != want[i]) fail_msg("%s: element %zu is %.0f, expected %.0f", what, i, got[i], want[i]);
    return;
  }
  float *g = malloc(n * sizeof *g + 1);
  double *w = malloc(n * sizeof *w + 1);
  assert_non_null(g);
  assert_non_null(w);
  for (size_t i = 0; i < n; i++) {
    g[i] = (float)got[i];
    w[i] = dt == CLAI_DTYPE_F16 ? as_dtype(dt, want[i]) : want[i];
    if (isinf(w[i]) || isnan(w[i]) || isinf(g[i]))
      fail_msg("%s: element %zu is %g, expected %g (no infinities expected here)", what, i, g[i], w[i]);
  }
  clait_expect_close(what, g, w, n, atol, rtol);
  free(g);
  free(w);
}

/* Gathers the logical elements of a strided layout over the dense values `base` into dense `out`. */
static void gather(const double *base, int ndim, const int64_t *shape, const int64_t *strides, int64_t offset,
                   double *out) {
  size_t n = count(ndim, shape);
  for (size_t i = 0; i < n; i++) {
    size_t rem = i;
    int64_t o = offset;
    for (int d = ndim - 1; d >= 0; d--) {
      o += (int64_t)(rem % (size_t)shape[d]) * strides[d];
      rem /= (size_t)shape[d];
    }
    out[i] = base[o];
  }
}

/* Where in a dense input of shape sh_in (NumPy-broadcast to the output shape sh) output element i lies. */
static size_t bindex(size_t i, int nd_in, const int64_t *sh_in, int nd, const int64_t *sh) {
  int64_t dense[CLAI_MAX_DIMS], s = 1;
  for (int d = nd_in - 1; d >= 0; d--) {
    dense[d] = s;
    s *= sh_in[d];
  }
  size_t rem = i, o = 0;
  for (int d = nd - 1; d >= 0; d--) {
    size_t idx = rem % (size_t)sh[d];
    rem /= (size_t)sh[d];
    int di = nd_in - nd + d;
    if (di >= 0 && sh_in[di] != 1) o += idx * (size_t)dense[di];
  }
  return o;
}

/* ---- references ------------------------------------------------------------------------------------- */

static double ref_binary(clai_binary_op op, clai_dtype dt, double a, double b) {
  if (dt == CLAI_DTYPE_I32) {
    int64_t x = (int64_t)a, y = (int64_t)b, r = 0;
    switch (op) {
    case CLAI_ADD: r = x + y; break;
    case CLAI_SUB: r = x - y; break;
    case CLAI_MUL: r = x * y; break;
    case CLAI_DIV: r = y == 0 ? 0 : x / y; break; /* C division truncates toward zero */
    case CLAI_MAXIMUM: r = x > y ? x : y; break;
    case CLAI_MINIMUM: r = x < y ? x : y; break;
    }
    return (double)r;
  }
  switch (op) {
  case CLAI_ADD: return a + b;
  case CLAI_SUB: return a - b;
  case CLAI_MUL: return a * b;
  case CLAI_DIV: return a / b;
  case CLAI_MAXIMUM: return a > b ? a : b;
  case CLAI_MINIMUM: return a < b ? a : b;
  }
  return NAN;
}

/* Tolerances. f32: min/max/neg/abs/relu exact, arithmetic 1e-6 + 1e-5 rel, transcendental a bit looser
 * (OpenCL allows exp 3 ulp, tanh 5 ulp). f16: the
 * reference rounded to half may differ by one half ulp (rtol 1e-3) from a result computed in f32 and then
 * rounded; atol covers halves near the subnormal range. */
static void bin_tol(clai_binary_op op, clai_dtype dt, double *atol, double *rtol) {
  int exact = op == CLAI_MAXIMUM || op == CLAI_MINIMUM;
  if (dt == CLAI_DTYPE_F32) {
    *atol = exact ? 0 : 1e-6;
    *rtol = exact ? 0 : 1e-5;
  } else {
    *atol = exact ? 0 : 1e-5;
    *rtol = exact ? 0 : 1e-3;
  }
}

static void un_tol(clai_unary_op op, clai_dtype dt, double *atol, double *rtol) {
  int exact = op == CLAI_NEG || op == CLAI_ABS || op == CLAI_RELU;
  int simple = op == CLAI_SQRT;
  if (dt == CLAI_DTYPE_F32) {
    *atol = exact ? 0 : simple ? 1e-6 : 2e-6;
    *rtol = exact ? 0 : simple ? 1e-5 : 2e-5;
  } else {
    *atol = exact ? 0 : 2e-5;
    *rtol = exact ? 0 : 1e-3;
  }
}

/* A range of inputs that suits op in dtype dt. */
static void un_domain(clai_unary_op op, clai_dtype dt, double *lo, double *hi) {
  switch (op) {
  case CLAI_LOG:
  case CLAI_SQRT: *lo = 0.01, *hi = 100; break;
  case CLAI_EXP: *lo = dt == CLAI_DTYPE_F16 ? -10 : -20, *hi = dt == CLAI_DTYPE_F16 ? 10 : 20; break;
  case CLAI_GELU: *lo = -8, *hi = 8; break;
  case CLAI_SILU:
  case CLAI_SIGMOID:
  case CLAI_TANH: *lo = -20, *hi = 20; break;
  default: *lo = -50, *hi = 50; break;
  }
}

/* ---- binary ------------------------------------------------------------------------------------------ */

/* out = a OP b for dense a and b of the given shapes; out has shape osh. Checks against the reference. */
static void check_binary(clai_context *ctx, clait_rng *r, clai_dtype dt, clai_binary_op op, int nda, const int64_t *sha,
                         int ndb, const int64_t *shb, int ndo, const int64_t *sho) {
  size_t na = count(nda, sha), nb = count(ndb, shb), no = count(ndo, sho);
  double *a = malloc(na * sizeof *a + 1), *b = malloc(nb * sizeof *b + 1), *got = malloc(no * sizeof *got + 1),
         *want = malloc(no * sizeof *want + 1);
  assert_true(a && b && got && want);
  if (dt == CLAI_DTYPE_I32) {
    randv(r, dt, a, na, -1000, 1000);
    randv(r, dt, b, nb, -12, 12); /* zeros included: i32 division by zero gives 0 */
  } else {
    randv(r, dt, a, na, -4, 4);
    randv(r, dt, b, nb, -4, 4);
    if (op == CLAI_DIV) /* keep divisors away from zero: |b| in [0.25, 4) */
      for (size_t i = 0; i < nb; i++)
        if (fabs(b[i]) < 0.25) b[i] = as_dtype(dt, b[i] < 0 ? b[i] - 0.25 : b[i] + 0.25);
  }
  clai_tensor *ta = upload(ctx, dt, nda, sha, a), *tb = upload(ctx, dt, ndb, shb, b), *to = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &to, dt, ndo, sho));
  CLAIT_OK(ctx, clai_binary(ctx, op, to, ta, tb));
  download(ctx, to, got);
  for (size_t i = 0; i < no; i++)
    want[i] = ref_binary(op, dt, a[bindex(i, nda, sha, ndo, sho)], b[bindex(i, ndb, shb, ndo, sho)]);
  char what[128];
  snprintf(what, sizeof what, "binary %s %s, %zu elements (a %zu, b %zu)", bin_names[op], clai_dtype_name(dt), no, na,
           nb);
  double atol, rtol;
  bin_tol(op, dt, &atol, &rtol);
  expect(what, dt, got, want, no, atol, rtol);
  clai_tensor_free(ta);
  clai_tensor_free(tb);
  clai_tensor_free(to);
  free(a);
  free(b);
  free(got);
  free(want);
}

static void test_binary_sizes(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x9e3779b97f4a7c15ULL};
  for (size_t d = 0; d < 3; d++)
    for (size_t s = 0; s < NSIZES; s++)
      for (int op = CLAI_ADD; op <= CLAI_MINIMUM; op++)
        check_binary(ctx, &r, all_dtypes[d], (clai_binary_op)op, 1, &sizes[s], 1, &sizes[s], 1, &sizes[s]);
}

static void test_binary_multidim(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x1234567890abcdefULL};
  static const int64_t shapes[][5] = {{3, 5, 7}, {2, 3, 1, 129}, {1, 7, 1, 31}, {4, 2, 3, 5, 2}, {1000, 1}};
  static const int nds[] = {3, 4, 4, 5, 2};
  for (size_t d = 0; d < 3; d++)
    for (size_t s = 0; s < sizeof nds / sizeof nds[0]; s++)
      for (int op = CLAI_ADD; op <= CLAI_MINIMUM; op++)
        check_binary(ctx, &r, all_dtypes[d], (clai_binary_op)op, nds[s], shapes[s], nds[s], shapes[s], nds[s],
                     shapes[s]);
}

static void test_binary_broadcast(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xfeedfacecafebeefULL};
  const struct {
    int nda, ndb, ndo;
    int64_t a[4], b[4], o[4];
  } cases[] = {
      {3, 2, 3, {3, 1, 5}, {4, 1}, {3, 4, 5}},          /* both sides broadcast */
      {2, 3, 3, {4, 1}, {3, 1, 5}, {3, 4, 5}},          /* the same with a and b swapped */
      {2, 1, 2, {7, 31}, {31}, {7, 31}},                /* bias [N] onto [M, N] */
      {1, 2, 2, {129}, {33, 129}, {33, 129}},           /* bias as the first operand */
      {2, 0, 2, {7, 9}, {0}, {7, 9}},                   /* 0-d scalar onto a matrix */
      {0, 2, 2, {0}, {7, 9}, {7, 9}},                   /* ... as the first operand */
      {1, 2, 2, {1}, {7, 9}, {7, 9}},                   /* [1] onto [7, 9] */
      {2, 2, 2, {7, 1}, {1, 9}, {7, 9}},                /* outer product shape */
      {4, 4, 4, {2, 1, 3, 1}, {1, 4, 1, 5}, {2, 4, 3, 5}},
      {2, 1, 2, {CLAIT_SIZE(1000, 100), 1}, {129}, {CLAIT_SIZE(1000, 100), 129}}, /* small: 100 rows */
      {0, 0, 0, {0}, {0}, {0}},                         /* scalar op scalar */
  };
  for (size_t d = 0; d < 3; d++)
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
      for (int op = CLAI_ADD; op <= CLAI_MINIMUM; op++)
        check_binary(ctx, &r, all_dtypes[d], (clai_binary_op)op, cases[c].nda, cases[c].a, cases[c].ndb, cases[c].b,
                     cases[c].ndo, cases[c].o);
}

/* Non-contiguous inputs (a transposed view, a column slice with step 2, a row slice with an offset that is
 * broadcast) and non-contiguous outputs (a transposed view, a column slice), checking that the output's
 * buffer is untouched outside the view. */
static void test_binary_views(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x0badc0ffee0ddf00ULL};
  enum { R = 12, C = 7 };
  const double sentinel = -77;
  for (size_t d = 0; d < 3; d++) {
    clai_dtype dt = all_dtypes[d];
    for (int op = CLAI_ADD; op <= CLAI_MINIMUM; op++) {
      for (int out_kind = 0; out_kind < 3; out_kind++) {
        /* a = transpose of a [C, R] tensor; b = columns 1, 3, .., 13 of a [R, 15] tensor; bias = row 1,
         * columns 0, 2, .., 12 of a [3, 14] tensor, as a [1, C] view broadcast over the rows. */
        double abase[C * R], bbase[R * 15], cbase[3 * 14], av[R * C], bv[R * C], cv[C];
        randv(&r, dt, abase, C * R, dt == CLAI_DTYPE_I32 ? -1000 : -4, dt == CLAI_DTYPE_I32 ? 1000 : 4);
        randv(&r, dt, bbase, R * 15, dt == CLAI_DTYPE_I32 ? -9 : 0.5, dt == CLAI_DTYPE_I32 ? 9 : 4);
        randv(&r, dt, cbase, 3 * 14, dt == CLAI_DTYPE_I32 ? -9 : 0.5, dt == CLAI_DTYPE_I32 ? 9 : 4);
        const int64_t ashape_base[2] = {C, R}, bshape_base[2] = {R, 15}, cshape_base[2] = {3, 14};
        const int64_t vshape[2] = {R, C}, bias_shape[2] = {1, C};
        const int64_t ast[2] = {1, R}, bst[2] = {15, 2}, cst[2] = {14, 2};
        gather(abase, 2, vshape, ast, 0, av);
        gather(bbase, 2, vshape, bst, 1, bv);
        gather(cbase, 2, bias_shape, cst, 14, cv);
        clai_tensor *ta0 = upload(ctx, dt, 2, ashape_base, abase), *tb0 = upload(ctx, dt, 2, bshape_base, bbase),
                    *tc0 = upload(ctx, dt, 2, cshape_base, cbase);
        clai_tensor *ta = NULL, *tb = NULL, *tc1 = NULL, *tc = NULL;
        CLAIT_OK(ctx, clai_tensor_transpose(ta0, &ta, 0, 1));
        CLAIT_OK(ctx, clai_tensor_slice(tb0, &tb, 1, 1, 15, 2));
        CLAIT_OK(ctx, clai_tensor_slice(tc0, &tc1, 0, 1, 2, 1));
        CLAIT_OK(ctx, clai_tensor_slice(tc1, &tc, 1, 0, 14, 2));
        assert_false(clai_tensor_is_contiguous(ta));
        assert_false(clai_tensor_is_contiguous(tb));
        assert_int_equal(clai_tensor_dim(tc, 0), 1);
        assert_int_equal(clai_tensor_dim(tc, 1), C);

        /* The output: dense, the transpose of a [C, R] tensor, or columns 1, 3, .. of a [R, 2C+1] tensor. */
        int64_t oshape_base[2], ost[2], ooff;
        if (out_kind == 0) {
          oshape_base[0] = R, oshape_base[1] = C, ost[0] = C, ost[1] = 1, ooff = 0;
        } else if (out_kind == 1) {
          oshape_base[0] = C, oshape_base[1] = R, ost[0] = 1, ost[1] = R, ooff = 0;
        } else {
          oshape_base[0] = R, oshape_base[1] = 2 * C + 1, ost[0] = 2 * C + 1, ost[1] = 2, ooff = 1;
        }
        size_t nob = count(2, oshape_base);
        double obase[R * (2 * C + 1)], ogot[R * (2 * C + 1)], want_base[R * (2 * C + 1)];
        for (size_t i = 0; i < nob; i++) obase[i] = want_base[i] = sentinel;
        clai_tensor *to0 = upload(ctx, dt, 2, oshape_base, obase), *to = NULL;
        if (out_kind == 0) CLAIT_OK(ctx, clai_tensor_view(to0, &to, 2, vshape, ost, 0));
        else if (out_kind == 1) CLAIT_OK(ctx, clai_tensor_transpose(to0, &to, 0, 1));
        else CLAIT_OK(ctx, clai_tensor_slice(to0, &to, 1, 1, 2 * C + 1, 2));

        /* out = a OP b, then out = out OP bias (the second in place on the strided output). */
        CLAIT_OK(ctx, clai_binary(ctx, (clai_binary_op)op, to, ta, tb));
        CLAIT_OK(ctx, clai_binary(ctx, (clai_binary_op)op, to, to, tc));
        download(ctx, to0, ogot);
        for (int i = 0; i < R; i++)
          for (int j = 0; j < C; j++) {
            double x = ref_binary((clai_binary_op)op, dt, av[i * C + j], bv[i * C + j]);
            x = as_dtype(dt, x); /* the intermediate is stored in out's dtype */
            want_base[ooff + i * ost[0] + j * ost[1]] = ref_binary((clai_binary_op)op, dt, x, cv[j]);
          }
        char what[128];
        snprintf(what, sizeof what, "binary %s %s on views, output kind %d (whole output buffer)", bin_names[op],
                 clai_dtype_name(dt), out_kind);
        double atol, rtol;
        bin_tol((clai_binary_op)op, dt, &atol, &rtol);
        /* two chained ops: allow twice the single-op error */
        expect(what, dt, ogot, want_base, nob, 2 * atol, 2 * rtol);
        clai_tensor *list[] = {ta0, tb0, tc0, ta, tb, tc1, tc, to0, to};
        for (size_t k = 0; k < sizeof list / sizeof list[0]; k++) clai_tensor_free(list[k]);
      }
    }
  }
}

static void test_binary_i32_div(void **state) {
  clai_context *ctx = CTX(state);
  static const double a[] = {7, -7, 7, -7, 0, 5, -5, 100, -100, 1, 0, INT_MAX, INT_MIN + 1, INT_MAX, 6, -6, 3, -3};
  static const double b[] = {2, 2, -2, -2, 3, 0, 0, 7, -7, 0, 0, 3, 2, -1, 4, 4, 5, 5};
  static const double want[] = {3, -3, -3, 3, 0, 0, 0, 14, 14, 0, 0, 715827882, -1073741823, -INT_MAX, 1, -1, 0, 0};
  const int64_t n = sizeof a / sizeof a[0];
  double got[sizeof a / sizeof a[0]];
  clai_tensor *ta = upload(ctx, CLAI_DTYPE_I32, 1, &n, a), *tb = upload(ctx, CLAI_DTYPE_I32, 1, &n, b), *to = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &to, CLAI_DTYPE_I32, 1, &n));
  CLAIT_OK(ctx, clai_binary(ctx, CLAI_DIV, to, ta, tb));
  download(ctx, to, got);
  expect("i32 div: truncation toward zero, x / 0 = 0", CLAI_DTYPE_I32, got, want, (size_t)n, 0, 0);

  /* Division by a broadcast zero scalar gives 0 everywhere; a zero numerator too. */
  const double zero = 0;
  clai_tensor *tz = upload(ctx, CLAI_DTYPE_I32, 0, NULL, &zero);
  CLAIT_OK(ctx, clai_binary(ctx, CLAI_DIV, to, ta, tz));
  download(ctx, to, got);
  double zeros[sizeof a / sizeof a[0]] = {0};
  expect("i32 div by a 0-d zero", CLAI_DTYPE_I32, got, zeros, (size_t)n, 0, 0);
  CLAIT_OK(ctx, clai_binary(ctx, CLAI_DIV, to, tz, ta));
  download(ctx, to, got);
  expect("i32 0 / x", CLAI_DTYPE_I32, got, zeros, (size_t)n, 0, 0);
  clai_tensor_free(ta);
  clai_tensor_free(tb);
  clai_tensor_free(tz);
  clai_tensor_free(to);
}

/* out aliasing an input: out == a, out == b, out == a == b, broadcast in place, on a strided view; and a
 * partial overlap, which must be refused without touching out. */
static void test_binary_inplace(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x5eed5eed5eed5eedULL};
  enum { M = 33, N = 31 };
  const int64_t shape[2] = {M, N}, bias_shape[1] = {N};
  for (size_t d = 0; d < 3; d++) {
    clai_dtype dt = all_dtypes[d];
    double lo = dt == CLAI_DTYPE_I32 ? -100 : -2, hi = dt == CLAI_DTYPE_I32 ? 100 : 2;
    double a[M * N], b[M * N], bias[N], got[M * N], want[M * N];
    randv(&r, dt, a, M * N, lo, hi);
    randv(&r, dt, b, M * N, lo, hi);
    randv(&r, dt, bias, N, lo, hi);
    clai_tensor *ta = upload(ctx, dt, 2, shape, a), *tb = upload(ctx, dt, 2, shape, b),
                *tbias = upload(ctx, dt, 1, bias_shape, bias);
    double atol, rtol;
    bin_tol(CLAI_MUL, dt, &atol, &rtol);
    char what[96];

    /* a = a + b */
    CLAIT_OK(ctx, clai_binary(ctx, CLAI_ADD, ta, ta, tb));
    for (int i = 0; i < M * N; i++) a[i] = as_dtype(dt, a[i] + b[i]);
    download(ctx, ta, got);
    snprintf(what, sizeof what, "%s a = a + b", clai_dtype_name(dt));
    expect(what, dt, got, a, M * N, atol, rtol);

    /* b = a - b */
    CLAIT_OK(ctx, clai_binary(ctx, CLAI_SUB, tb, ta, tb));
    for (int i = 0; i < M * N; i++) b[i] = as_dtype(dt, a[i] - b[i]);
    download(ctx, tb, got);
    snprintf(what, sizeof what, "%s b = a - b", clai_dtype_name(dt));
    expect(what, dt, got, b, M * N, atol, rtol);

    /* a = a * a */
    CLAIT_OK(ctx, clai_binary(ctx, CLAI_MUL, ta, ta, ta));
    for (int i = 0; i < M * N; i++) want[i] = a[i] * a[i], a[i] = as_dtype(dt, want[i]);
    download(ctx, ta, got);
    snprintf(what, sizeof what, "%s a = a * a", clai_dtype_name(dt));
    expect(what, dt, got, want, M * N, atol, rtol);

    /* b = max(b, bias) with the bias broadcast over the rows */
    CLAIT_OK(ctx, clai_binary(ctx, CLAI_MAXIMUM, tb, tb, tbias));
    for (int i = 0; i < M * N; i++) b[i] = b[i] > bias[i % N] ? b[i] : bias[i % N];
    download(ctx, tb, got);
    snprintf(what, sizeof what, "%s b = max(b, bias)", clai_dtype_name(dt));
    expect(what, dt, got, b, M * N, 0, 0);

    /* In place on a strided view: t = transpose(a); t = t - transpose(b). */
    clai_tensor *at = NULL, *bt = NULL;
    CLAIT_OK(ctx, clai_tensor_transpose(ta, &at, 0, 1));
    CLAIT_OK(ctx, clai_tensor_transpose(tb, &bt, 0, 1));
    CLAIT_OK(ctx, clai_binary(ctx, CLAI_SUB, at, at, bt));
    for (int i = 0; i < M * N; i++) a[i] = as_dtype(dt, a[i] - b[i]);
    download(ctx, ta, got);
    snprintf(what, sizeof what, "%s transposed view in place", clai_dtype_name(dt));
    expect(what, dt, got, a, M * N, atol, rtol);

    /* Partial overlap: out = rows 1.., a = rows 0..M-1 of the same tensor: refused, nothing changes. */
    clai_tensor *lo_rows = NULL, *hi_rows = NULL, *bs = NULL;
    CLAIT_OK(ctx, clai_tensor_slice(ta, &hi_rows, 0, 1, M, 1));
    CLAIT_OK(ctx, clai_tensor_slice(ta, &lo_rows, 0, 0, M - 1, 1));
    CLAIT_OK(ctx, clai_tensor_slice(tb, &bs, 0, 0, M - 1, 1));
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlap", clai_binary(ctx, CLAI_ADD, hi_rows, lo_rows, bs));
    download(ctx, ta, got);
    snprintf(what, sizeof what, "%s after a refused overlapping op", clai_dtype_name(dt));
    expect(what, dt, got, a, M * N, 0, 0);

    /* out = t, a = transpose(t) (square, same offset, other strides): an element-for-element alias it is
     * not, so the op must either be refused, leaving t unchanged, or compute t^T + b correctly. */
    {
      const int64_t sq[2] = {N, N};
      double s[N * N], sb[N * N], sw[N * N];
      randv(&r, dt, s, N * N, lo, hi);
      randv(&r, dt, sb, N * N, lo, hi);
      clai_tensor *ts = upload(ctx, dt, 2, sq, s), *tsb = upload(ctx, dt, 2, sq, sb), *tst = NULL;
      CLAIT_OK(ctx, clai_tensor_transpose(ts, &tst, 0, 1));
      clai_status st = clai_binary(ctx, CLAI_ADD, ts, tst, tsb);
      for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
          sw[i * N + j] = st == CLAI_OK ? as_dtype(dt, s[j * N + i] + sb[i * N + j]) : s[i * N + j];
      if (st != CLAI_OK) assert_int_equal(st, CLAI_E_INVALID_ARG);
      download(ctx, ts, got);
      snprintf(what, sizeof what, "%s out = transpose(out) + b (%s)", clai_dtype_name(dt), clai_status_name(st));
      expect(what, dt, got, sw, N * N, atol, rtol);
      st = clai_unary(ctx, CLAI_NEG, ts, tst);
      if (st != CLAI_OK) assert_int_equal(st, CLAI_E_INVALID_ARG);
      for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) s[i * N + j] = st == CLAI_OK ? -sw[j * N + i] : sw[i * N + j];
      download(ctx, ts, got);
      snprintf(what, sizeof what, "%s out = -transpose(out) (%s)", clai_dtype_name(dt), clai_status_name(st));
      expect(what, dt, got, s, N * N, 0, 0);
      clai_tensor_free(tst);
      clai_tensor_free(ts);
      clai_tensor_free(tsb);
    }

    clai_tensor *list[] = {ta, tb, tbias, at, bt, lo_rows, hi_rows, bs};
    for (size_t k = 0; k < sizeof list / sizeof list[0]; k++) clai_tensor_free(list[k]);
  }
}

/* Contiguous views that start at an offset (row slices): inputs and output, for binary, unary and affine
 * (the dense f32 kernels take the offsets as arguments); the output's rows outside the view stay as they were. */
static void test_contiguous_offsets(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x3c6ef372fe94f82bULL};
  enum { R = 9, C = 31, ROWS = 4 };
  const int64_t bsh[2] = {R, C};
  for (size_t d = 0; d < 3; d++) {
    clai_dtype dt = all_dtypes[d];
    double a[R * C], b[R * C], o[R * C], got[R * C], want[R * C];
    randv(&r, dt, a, R * C, dt == CLAI_DTYPE_I32 ? -50 : 0.5, dt == CLAI_DTYPE_I32 ? 50 : 4);
    randv(&r, dt, b, R * C, dt == CLAI_DTYPE_I32 ? -50 : 0.5, dt == CLAI_DTYPE_I32 ? 50 : 4);
    randv(&r, dt, o, R * C, -1, 1);
    clai_tensor *ta0 = upload(ctx, dt, 2, bsh, a), *tb0 = upload(ctx, dt, 2, bsh, b), *to0 = upload(ctx, dt, 2, bsh, o);
    clai_tensor *ta = NULL, *tb = NULL, *to = NULL;
    CLAIT_OK(ctx, clai_tensor_slice(ta0, &ta, 0, 2, 2 + ROWS, 1)); /* rows 2..5 */
    CLAIT_OK(ctx, clai_tensor_slice(tb0, &tb, 0, 5, 5 + ROWS, 1)); /* rows 5..8 */
    CLAIT_OK(ctx, clai_tensor_slice(to0, &to, 0, 3, 3 + ROWS, 1)); /* rows 3..6 */
    assert_true(clai_tensor_is_contiguous(ta) && clai_tensor_is_contiguous(tb) && clai_tensor_is_contiguous(to));
    char what[96];
    for (int op = CLAI_ADD; op <= CLAI_MINIMUM; op++) {
      CLAIT_OK(ctx, clai_binary(ctx, (clai_binary_op)op, to, ta, tb));
      download(ctx, to0, got);
      for (int i = 0; i < R * C; i++)
        want[i] = i >= 3 * C && i < (3 + ROWS) * C ? ref_binary((clai_binary_op)op, dt, a[i - C], b[i + 2 * C]) : o[i];
      snprintf(what, sizeof what, "binary %s %s on row slices (whole output buffer)", bin_names[op],
               clai_dtype_name(dt));
      double atol, rtol;
      bin_tol((clai_binary_op)op, dt, &atol, &rtol);
      expect(what, dt, got, want, R * C, atol, rtol);
    }
    static const clai_unary_op uops[] = {CLAI_NEG, CLAI_ABS, CLAI_RELU, CLAI_SQRT, CLAI_LOG, CLAI_EXP};
    for (size_t k = 0; k < sizeof uops / sizeof uops[0]; k++) {
      if (dt == CLAI_DTYPE_I32 && k >= 3) break;
      CLAIT_OK(ctx, clai_unary(ctx, uops[k], to, ta));
      download(ctx, to0, got);
      for (int i = 0; i < R * C; i++)
        want[i] = i >= 3 * C && i < (3 + ROWS) * C ? clait_ref_unary(uops[k], a[i - C]) : o[i];
      snprintf(what, sizeof what, "unary %s %s on row slices (whole output buffer)", un_names[uops[k]],
               clai_dtype_name(dt));
      double atol, rtol;
      un_tol(uops[k], dt, &atol, &rtol);
      expect(what, dt, got, want, R * C, atol, rtol);
    }
    if (dt != CLAI_DTYPE_I32) {
      CLAIT_OK(ctx, clai_affine(ctx, to, tb, -1.5f, 0.5f));
      download(ctx, to0, got);
      for (int i = 0; i < R * C; i++) want[i] = i >= 3 * C && i < (3 + ROWS) * C ? -1.5 * b[i + 2 * C] + 0.5 : o[i];
      snprintf(what, sizeof what, "affine %s on row slices (whole output buffer)", clai_dtype_name(dt));
      expect(what, dt, got, want, R * C, 1e-6, dt == CLAI_DTYPE_F32 ? 1e-5 : 1e-3);
    }
    clai_tensor *list[] = {ta0, tb0, to0, ta, tb, to};
    for (size_t k = 0; k < sizeof list / sizeof list[0]; k++) clai_tensor_free(list[k]);
  }
}

/* ---- unary ------------------------------------------------------------------------------------------- */

/* out = OP(x) for x given as dense values of shape sh; x and out are dense, or x is the transpose of a dense
 * tensor (view_in) and out is a column slice with step 2 of a bigger tensor (view_out). */
static void check_unary(clai_context *ctx, clai_dtype dt, clai_unary_op op, int nd, const int64_t *sh, const double *x,
                        int view_in, int view_out) {
  size_t n = count(nd, sh);
  double *got = malloc(n * sizeof *got + 1), *want = malloc(n * sizeof *want + 1);
  assert_true(got && want);
  clai_tensor *tx0 = NULL, *tx = NULL, *to0 = NULL, *to = NULL;
  if (view_in) {
    /* Store x transposed in a [sh1, sh0] tensor, then pass its transpose. */
    assert_int_equal(nd, 2);
    double *xt = malloc(n * sizeof *xt + 1);
    assert_non_null(xt);
    for (int64_t i = 0; i < sh[0]; i++)
      for (int64_t j = 0; j < sh[1]; j++) xt[j * sh[0] + i] = x[i * sh[1] + j];
    const int64_t tsh[2] = {sh[1], sh[0]};
    tx0 = upload(ctx, dt, 2, tsh, xt);
    free(xt);
    CLAIT_OK(ctx, clai_tensor_transpose(tx0, &tx, 0, 1));
  } else {
    tx = upload(ctx, dt, nd, sh, x);
  }
  if (view_out) {
    int64_t wide[CLAI_MAX_DIMS];
    memcpy(wide, sh, (size_t)nd * sizeof *sh);
    wide[nd - 1] = 2 * sh[nd - 1];
    CLAIT_OK(ctx, clai_tensor_init(ctx, &to0, dt, nd, wide));
    CLAIT_OK(ctx, clai_fill(ctx, to0, -3.0));
    CLAIT_OK(ctx, clai_tensor_slice(to0, &to, nd - 1, 0, wide[nd - 1], 2));
  } else {
    CLAIT_OK(ctx, clai_tensor_init(ctx, &to, dt, nd, sh));
  }
  CLAIT_OK(ctx, clai_unary(ctx, op, to, tx));
  download(ctx, to, got);
  for (size_t i = 0; i < n; i++) want[i] = clait_ref_unary(op, x[i]);
  char what[128];
  snprintf(what, sizeof what, "unary %s %s, %zu elements%s%s", un_names[op], clai_dtype_name(dt), n,
           view_in ? ", transposed input" : "", view_out ? ", sliced output" : "");
  double atol, rtol;
  un_tol(op, dt, &atol, &rtol);
  expect(what, dt, got, want, n, atol, rtol);
  if (view_out) { /* the skipped columns keep the fill value */
    size_t nw = 2 * n;
    double *all = malloc(nw * sizeof *all + 1);
    assert_non_null(all);
    download(ctx, to0, all);
    for (size_t i = 1; i < nw; i += 2)
      if (all[i] != -3.0) fail_msg("%s: element %zu outside the output view changed to %g", what, i, all[i]);
    free(all);
  }
  clai_tensor_free(tx0);
  clai_tensor_free(tx);
  clai_tensor_free(to0);
  clai_tensor_free(to);
  free(got);
  free(want);
}

static void test_unary_sizes(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x243f6a8885a308d3ULL};
  double x[1000];
  for (size_t d = 0; d < 2; d++)
    for (size_t s = 0; s < NSIZES; s++)
      for (int op = CLAI_NEG; op <= CLAI_TANH; op++) {
        double lo, hi;
        un_domain((clai_unary_op)op, float_dtypes[d], &lo, &hi);
        randv(&r, float_dtypes[d], x, (size_t)sizes[s], lo, hi);
        check_unary(ctx, float_dtypes[d], (clai_unary_op)op, 1, &sizes[s], x, 0, 0);
      }
}

static void test_unary_views(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x13198a2e03707344ULL};
  static const int64_t shapes[][4] = {{3, 5, 7}, {2, 1, 129}, {31, 7}, {7, 129}, {1, 1000}};
  static const int nds[] = {3, 3, 2, 2, 2};
  double x[7 * 129 + 1000];
  for (size_t d = 0; d < 2; d++)
    for (size_t s = 0; s < sizeof nds / sizeof nds[0]; s++)
      for (int op = CLAI_NEG; op <= CLAI_TANH; op++) {
        double lo, hi;
        un_domain((clai_unary_op)op, float_dtypes[d], &lo, &hi);
        randv(&r, float_dtypes[d], x, count(nds[s], shapes[s]), lo, hi);
        check_unary(ctx, float_dtypes[d], (clai_unary_op)op, nds[s], shapes[s], x, 0, 0);
        check_unary(ctx, float_dtypes[d], (clai_unary_op)op, nds[s], shapes[s], x, 0, 1);
        if (nds[s] == 2) {
          check_unary(ctx, float_dtypes[d], (clai_unary_op)op, nds[s], shapes[s], x, 1, 0);
          check_unary(ctx, float_dtypes[d], (clai_unary_op)op, nds[s], shapes[s], x, 1, 1);
        }
      }
}

/* Large magnitudes: sigmoid and SiLU must neither overflow to NaN nor lose their limits; exp, tanh and
 * GELU over wide ranges; f16 exp overflows to +inf and underflows to 0 like IEEE half. */
static void test_unary_extremes(void **state) {
  clai_context *ctx = CTX(state);
  static const double xs[] = {-100, -88, -80, -50, -30, -20, -10.5, -5, -1, -0.25, 0,
                              0.25, 1,    5,   10.5, 20, 30, 50, 80, 88, 100};
  const int64_t n = sizeof xs / sizeof xs[0];
  double got[sizeof xs / sizeof xs[0]], want[sizeof xs / sizeof xs[0]];
  static const clai_unary_op ops[] = {CLAI_SIGMOID, CLAI_SILU, CLAI_TANH, CLAI_GELU, CLAI_RELU, CLAI_ABS, CLAI_NEG};
  for (size_t d = 0; d < 2; d++) {
    clai_dtype dt = float_dtypes[d];
    clai_tensor *tx = upload(ctx, dt, 1, &n, xs), *to = NULL;
    CLAIT_OK(ctx, clai_tensor_init(ctx, &to, dt, 1, &n));
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
      CLAIT_OK(ctx, clai_unary(ctx, ops[k], to, tx));
      download(ctx, to, got);
      for (int64_t i = 0; i < n; i++) want[i] = clait_ref_unary(ops[k], xs[i]);
      char what[96];
      snprintf(what, sizeof what, "unary %s %s at large magnitudes", un_names[ops[k]], clai_dtype_name(dt));
      double atol, rtol;
      un_tol(ops[k], dt, &atol, &rtol);
      expect(what, dt, got, want, (size_t)n, atol, rtol);
    }
    /* Exact limits. */
    CLAIT_OK(ctx, clai_unary(ctx, CLAI_SIGMOID, to, tx));
    download(ctx, to, got);
    assert_true(got[0] >= 0 && got[0] < 1e-30);
    assert_true(got[n - 1] == 1.0);
    assert_true(got[10] == 0.5);
    CLAIT_OK(ctx, clai_unary(ctx, CLAI_TANH, to, tx));
    download(ctx, to, got);
    /* OpenCL's tanh may stop one ulp short of +-1 (5 ulp allowed), but must never pass it */
    assert_true(got[0] >= -1.0 && got[0] < -0.99999 && got[n - 1] <= 1.0 && got[n - 1] > 0.99999);
    assert_true(got[10] == 0.0);
    CLAIT_OK(ctx, clai_unary(ctx, CLAI_GELU, to, tx));
    download(ctx, to, got);
    assert_true(got[n - 1] == 100.0 && got[10] == 0.0);
    for (int i = 0; i < 6; i++) /* x <= -20: GELU(x) is below 1e-80, so -0 or a value that rounds there */
      if (!(got[i] <= 0 && got[i] > -1e-30))
        fail_msg("gelu %s(%g) = %g, expected about -0", clai_dtype_name(dt), xs[i], got[i]);
    CLAIT_OK(ctx, clai_unary(ctx, CLAI_SILU, to, tx));
    download(ctx, to, got);
    assert_true(got[n - 1] == 100.0);
    assert_true(got[0] <= 0 && got[0] > -1e-30);
    clai_tensor_free(tx);
    clai_tensor_free(to);
  }

  /* The GELU tail, where the result is tiny: relative accuracy, not just absolute. */
  const int64_t gn = 49;
  double g[49], gg[49], gw[49];
  for (int i = 0; i < gn; i++) g[i] = -9 + 0.125 * i; /* -9 .. -3 */
  clai_tensor *tg = upload(ctx, CLAI_DTYPE_F32, 1, &gn, g), *tgo = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tgo, CLAI_DTYPE_F32, 1, &gn));
  CLAIT_OK(ctx, clai_unary(ctx, CLAI_GELU, tgo, tg));
  download(ctx, tgo, gg);
  for (int i = 0; i < gn; i++) gw[i] = clait_ref_unary(CLAI_GELU, g[i]);
  expect("gelu f32 tail on [-9, -3] (relative)", CLAI_DTYPE_F32, gg, gw, (size_t)gn, 1e-35, 1e-4);
  clai_tensor_free(tg);
  clai_tensor_free(tgo);

  /* exp over [-20, 20] (f32) */
  const int64_t m = 81;
  double e[81], eg[81], ew[81];
  for (int i = 0; i < m; i++) e[i] = -20 + 0.5 * i;
  clai_tensor *te = upload(ctx, CLAI_DTYPE_F32, 1, &m, e), *teo = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &teo, CLAI_DTYPE_F32, 1, &m));
  CLAIT_OK(ctx, clai_unary(ctx, CLAI_EXP, teo, te));
  download(ctx, teo, eg);
  for (int i = 0; i < m; i++) ew[i] = exp(e[i]);
  expect("exp f32 on [-20, 20]", CLAI_DTYPE_F32, eg, ew, (size_t)m, 0, 2e-5);
  clai_tensor_free(te);
  clai_tensor_free(teo);

  /* f16: exp(12) = 162755 > 65504 is +inf; exp(-20) = 2e-9 is below the smallest half subnormal: 0. */
  const double hx[] = {12, -20, 11, -17};
  const int64_t hn = 4;
  double hg[4];
  clai_tensor *th = upload(ctx, CLAI_DTYPE_F16, 1, &hn, hx), *tho = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tho, CLAI_DTYPE_F16, 1, &hn));
  CLAIT_OK(ctx, clai_unary(ctx, CLAI_EXP, tho, th));
  download(ctx, tho, hg);
  assert_true(isinf(hg[0]) && hg[0] > 0);
  assert_true(hg[1] == 0.0);
  assert_true(fabs(hg[2] - as_dtype(CLAI_DTYPE_F16, exp(11.0))) <= 1e-3 * exp(11.0));
  assert_true(fabs(hg[3] - exp(-17.0)) <= 6e-8); /* a half subnormal */
  clai_tensor_free(th);
  clai_tensor_free(tho);
}

static void test_unary_i32(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xa4093822299f31d0ULL};
  static const clai_unary_op ops[] = {CLAI_NEG, CLAI_ABS, CLAI_RELU};
  double x[1000];
  for (size_t s = 0; s < NSIZES; s++)
    for (size_t k = 0; k < 3; k++) {
      randv(&r, CLAI_DTYPE_I32, x, (size_t)sizes[s], -100000, 100000);
      x[0] = 0;
      if (sizes[s] > 2) x[1] = INT_MAX, x[2] = -INT_MAX;
      check_unary(ctx, CLAI_DTYPE_I32, ops[k], 1, &sizes[s], x, 0, 0);
    }
  const int64_t sh[2] = {31, 7};
  randv(&r, CLAI_DTYPE_I32, x, 31 * 7, -1000, 1000);
  for (size_t k = 0; k < 3; k++) {
    check_unary(ctx, CLAI_DTYPE_I32, ops[k], 2, sh, x, 1, 0);
    check_unary(ctx, CLAI_DTYPE_I32, ops[k], 2, sh, x, 1, 1);
  }
  /* The other ops are not defined for i32. */
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_I32, 2, sh));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "i32", clai_unary(ctx, CLAI_EXP, t, t));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "i32", clai_affine(ctx, t, t, 2.0f, 1.0f));
  clai_tensor_free(t);
}

/* out == x for every op: dense f32 (the contiguous kernel), f16 and a transposed f32 view (strided). */
static void test_unary_inplace(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x082efa98ec4e6c89ULL};
  const int64_t sh[2] = {29, 13};
  double x[29 * 13], got[29 * 13], want[29 * 13];
  for (int layout = 0; layout < 3; layout++) {
    clai_dtype dt = layout == 1 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
    for (int op = CLAI_NEG; op <= CLAI_TANH; op++) {
      double lo, hi;
      un_domain((clai_unary_op)op, dt, &lo, &hi);
      randv(&r, dt, x, 29 * 13, lo, hi);
      clai_tensor *t = upload(ctx, dt, 2, sh, x), *v = NULL;
      if (layout == 2) CLAIT_OK(ctx, clai_tensor_transpose(t, &v, 0, 1));
      CLAIT_OK(ctx, clai_unary(ctx, (clai_unary_op)op, v ? v : t, v ? v : t));
      download(ctx, t, got);
      for (int i = 0; i < 29 * 13; i++) want[i] = clait_ref_unary((clai_unary_op)op, x[i]);
      char what[96];
      snprintf(what, sizeof what, "unary %s %s in place (layout %d)", un_names[op], clai_dtype_name(dt), layout);
      double atol, rtol;
      un_tol((clai_unary_op)op, dt, &atol, &rtol);
      expect(what, dt, got, want, 29 * 13, atol, rtol);
      clai_tensor_free(v);
      clai_tensor_free(t);
    }
  }
}

/* ---- affine ------------------------------------------------------------------------------------------ */

static void test_affine(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x452821e638d01377ULL};
  static const float params[][2] = {{2.5f, -1.25f}, {-0.75f, 3.0f}, {0.0f, 0.5f}, {1.0f, 0.0f}};
  double x[1000], got[2000], want[1000];
  for (size_t d = 0; d < 2; d++) {
    clai_dtype dt = float_dtypes[d];
    double atol = dt == CLAI_DTYPE_F32 ? 1e-6 : 1e-5, rtol = dt == CLAI_DTYPE_F32 ? 1e-5 : 1e-3;
    for (size_t s = 0; s < NSIZES; s++) {
      size_t n = (size_t)sizes[s];
      randv(&r, dt, x, n, -4, 4);
      clai_tensor *tx = upload(ctx, dt, 1, &sizes[s], x), *to = NULL;
      CLAIT_OK(ctx, clai_tensor_init(ctx, &to, dt, 1, &sizes[s]));
      char what[96];
      for (size_t p = 0; p < sizeof params / sizeof params[0]; p++) {
        float al = params[p][0], be = params[p][1];
        CLAIT_OK(ctx, clai_affine(ctx, to, tx, al, be));
        download(ctx, to, got);
        for (size_t i = 0; i < n; i++) want[i] = (double)al * x[i] + be;
        snprintf(what, sizeof what, "affine %g*x%+g %s n=%zu", al, be, clai_dtype_name(dt), n);
        expect(what, dt, got, want, n, atol, rtol);
      }
      CLAIT_OK(ctx, clai_scale(ctx, to, tx, -1.5f));
      download(ctx, to, got);
      for (size_t i = 0; i < n; i++) want[i] = -1.5 * x[i];
      snprintf(what, sizeof what, "scale %s n=%zu", clai_dtype_name(dt), n);
      expect(what, dt, got, want, n, atol, rtol);
      CLAIT_OK(ctx, clai_add_scalar(ctx, to, tx, 0.375f));
      download(ctx, to, got);
      for (size_t i = 0; i < n; i++) want[i] = x[i] + 0.375;
      snprintf(what, sizeof what, "add_scalar %s n=%zu", clai_dtype_name(dt), n);
      expect(what, dt, got, want, n, atol, rtol);
      /* in place */
      CLAIT_OK(ctx, clai_affine(ctx, tx, tx, 0.5f, 2.0f));
      download(ctx, tx, got);
      for (size_t i = 0; i < n; i++) want[i] = 0.5 * x[i] + 2.0;
      snprintf(what, sizeof what, "affine in place %s n=%zu", clai_dtype_name(dt), n);
      expect(what, dt, got, want, n, atol, rtol);
      clai_tensor_free(tx);
      clai_tensor_free(to);
    }

    /* A transposed [25, 40] input into a column slice (step 2) of a [40, 50] output. */
    const int64_t bsh[2] = {25, 40}, osh[2] = {40, 50};
    double base[1000];
    randv(&r, dt, base, 1000, -4, 4);
    clai_tensor *tb = upload(ctx, dt, 2, bsh, base), *tx = NULL, *to0 = NULL, *to = NULL;
    CLAIT_OK(ctx, clai_tensor_transpose(tb, &tx, 0, 1));
    CLAIT_OK(ctx, clai_tensor_init(ctx, &to0, dt, 2, osh));
    CLAIT_OK(ctx, clai_fill(ctx, to0, 9.0));
    CLAIT_OK(ctx, clai_tensor_slice(to0, &to, 1, 0, 50, 2));
    CLAIT_OK(ctx, clai_affine(ctx, to, tx, -2.0f, 0.25f));
    download(ctx, to0, got);
    double wfull[2000];
    for (int i = 0; i < 40; i++)
      for (int j = 0; j < 50; j++) wfull[i * 50 + j] = j % 2 ? 9.0 : -2.0 * base[(j / 2) * 40 + i] + 0.25;
    expect(dt == CLAI_DTYPE_F32 ? "affine f32 strided in, strided out" : "affine f16 strided in, strided out", dt,
           got, wfull, 2000, atol, rtol);
    clai_tensor_free(to);
    clai_tensor_free(to0);
    clai_tensor_free(tx);
    clai_tensor_free(tb);
  }
}

/* clai_glu: out = OP(x[..., :n]) * x[..., n:], against the double-precision unary reference, on awkward
 * shapes, f32 and f16, x dense (f32: the row kernel) or a transposed view (the indexed kernel) and out at an
 * offset, special values, and the errors. */
static void test_glu(void **state) {
  clai_context *ctx = *state;
  clait_rng r = {0x61u};
  static const clai_unary_op ops[] = {CLAI_SILU, CLAI_GELU, CLAI_SIGMOID, CLAI_RELU, CLAI_TANH};
  static const int64_t shapes[][3] = {{1, 1, 1}, {1, 7, 31}, {3, 5, 129}};
  for (int dense = 0; dense < 2; dense++)
  for (int dt = 0; dt < 2; dt++)
    for (size_t si = 0; si < 3; si++)
      for (size_t oi = 0; oi < 5; oi++) {
        const clai_dtype d = dt ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
        const int64_t B = shapes[si][0], R = shapes[si][1], n = shapes[si][2];
        const size_t nx = (size_t)(B * R * 2 * n), no = (size_t)(B * R * n);
        float *xv = malloc(nx * 4), *got = malloc(no * 4);
        double *want = malloc(no * sizeof *want);
        assert_non_null(xv);
        assert_non_null(got);
        assert_non_null(want);
        clait_fill(&r, xv, nx, -6.0f, 6.0f);
        if (nx >= 8) xv[0] = NAN, xv[2 * n - 1] = NAN, xv[1] = INFINITY, xv[n + 1] = 0.0f, xv[2] = -INFINITY;
        if (dt) clait_round_f16(xv, nx);
        /* x stored as [B, R, 2n], or as [B, 2n, R] and viewed transposed as [B, R, 2n] */
        const int64_t xsh[3] = {B, R, 2 * n}, ts[3] = {B, 2 * n, R};
        clai_tensor *xs, *x = NULL;
        if (dense) {
          xs = clait_upload_floats(ctx, d, 3, xsh, xv);
          CLAIT_OK(ctx, clai_tensor_reshape(xs, &x, 3, xsh));
        } else {
          float *xt = malloc(nx * 4);
          assert_non_null(xt);
          for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < R; i++)
              for (int64_t j = 0; j < 2 * n; j++) xt[(b * 2 * n + j) * R + i] = xv[(b * R + i) * 2 * n + j];
          xs = clait_upload_floats(ctx, d, 3, ts, xt);
          free(xt);
          CLAIT_OK(ctx, clai_tensor_transpose(xs, &x, 1, 2));
        }
        const int64_t big[1] = {(int64_t)no + 5}, os[3] = {B, R, n}, ost[3] = {R * n, n, 1};
        clai_tensor *base = clait_tensor(ctx, d, 1, big), *out = NULL;
        CLAIT_OK(ctx, clai_tensor_view(base, &out, 3, os, ost, 5));
        CLAIT_OK(ctx, clai_glu(ctx, ops[oi], out, x));
        clait_read_floats(ctx, out, got);
        for (int64_t b = 0; b < B; b++)
          for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < n; j++) {
              const float *row = xv + (b * R + i) * 2 * n;
              want[(b * R + i) * n + j] = clait_as_dtype(d, clait_ref_unary(ops[oi], row[j]) * row[n + j]);
            }
        clait_expect_close("glu", got, want, no, dt ? 1e-3 : 1e-6, dt ? 4e-3 : 2e-6);
        clai_tensor_free(out);
        clai_tensor_free(base);
        clai_tensor_free(x);
        clai_tensor_free(xs);
        free(xv);
        free(got);
        free(want);
      }
  const int64_t s6[2] = {2, 6}, s3[2] = {2, 3}, s5[2] = {2, 5};
  clai_tensor *x = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s6), *o = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s3);
  clai_tensor *oh = clait_tensor(ctx, CLAI_DTYPE_F16, 2, s3), *x5 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s5), *v = NULL;
  CLAIT_OK(ctx, clai_fill(ctx, x, 1.0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "doubled", clai_glu(ctx, CLAI_SILU, o, x5));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "one dtype", clai_glu(ctx, CLAI_SILU, oh, x));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not a clai_unary_op", clai_glu(ctx, (clai_unary_op)42, o, x));
  CLAIT_OK(ctx, clai_tensor_slice(x, &v, 1, 0, 3, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_glu(ctx, CLAI_SILU, v, x));
  CLAIT_OK(ctx, clai_glu(ctx, CLAI_SIGMOID, o, x)); /* still usable */
  clai_tensor_free(v);
  clai_tensor_free(x5);
  clai_tensor_free(oh);
  clai_tensor_free(o);
  clai_tensor_free(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_binary_sizes, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_binary_multidim, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_binary_broadcast, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_binary_views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_binary_i32_div, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_binary_inplace, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_contiguous_offsets, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_unary_sizes, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_unary_views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_unary_extremes, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_unary_i32, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_unary_inplace, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_affine, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_glu, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("elementwise", tests, 1);
}
