/* test-reduce.c - clai_reduce (sum, mean, max, min, var), clai_var, clai_argmax / clai_argmin and clai_sum_to
 * against a double-precision reference on the host: every axis (negative ones too) and CLAI_AXIS_ALL, with
 * and without keepdim, f32 and f16 storage in and out, strided views (transpose, step slices, expanded dims)
 * as inputs, rows of length 1, rows long enough to be split into chunks (10^6 elements), NaNs, ties, and
 * every bad argument. The reference reads the input back through clai_tensor_read (dense, row-major), so it
 * sees exactly the values the device reduces. */
#include <limits.h>

#include "internal.h" /* clai__reduce_cols_tile: the columns a work-item or work-group of the column kernels takes */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

/* ---- host helpers ------------------------------------------------------------------------------------ */

enum { OP_SUM, OP_MEAN, OP_MAX, OP_MIN, OP_VAR0, OP_VAR1, OP_ARGMAX, OP_ARGMIN, OP_COUNT };
static const char *const op_names[] = {"sum", "mean", "max", "min", "var", "var(ddof 1)", "argmax", "argmin"};

/* The reference of op over n values with stride st from p; *mag gets sum |x| (for the tolerance). */
static double ref_row(int op, const double *p, int64_t n, int64_t st, double *mag) {
  double s = 0, a = 0, best = 0;
  int64_t bi = 0;
  int nan = 0;
  for (int64_t j = 0; j < n; j++) {
    double v = p[j * st];
    s += v;
    a += fabs(v);
    nan |= isnan(v);
  }
  *mag = a;
  switch (op) {
  case OP_SUM: return s;
  case OP_MEAN: return s / (double)n;
  case OP_VAR0:
  case OP_VAR1: {
    double m = s / (double)n, q = 0, sq = 0;
    for (int64_t j = 0; j < n; j++) {
      q += (p[j * st] - m) * (p[j * st] - m);
      sq += p[j * st] * p[j * st];
    }
    *mag = sq / (double)n; /* the cancellation a variance in f32 cannot avoid is about eps * mean(x^2) */
    int64_t d = n - (op == OP_VAR1);
    return d > 0 ? q / (double)d : NAN;
  }
  case OP_MAX:
  case OP_MIN:
    if (nan) return NAN;
    best = p[0];
    for (int64_t j = 1; j < n; j++) best = op == OP_MAX ? fmax(best, p[j * st]) : fmin(best, p[j * st]);
    return best;
  default:
    for (int64_t j = 0; j < n; j++) {
      double v = p[j * st];
      if (isnan(v)) return (double)j;
      if (j == 0 || (op == OP_ARGMAX ? v > best : v < best)) {
        best = v;
        bi = j;
      }
    }
    return (double)bi;
  }
}

static clai_status run_op(clai_context *ctx, int op, clai_tensor *out, clai_tensor *x, int axis, int keepdim) {
  switch (op) {
  case OP_SUM: return clai_reduce(ctx, CLAI_REDUCE_SUM, out, x, axis, keepdim);
  case OP_MEAN: return clai_reduce(ctx, CLAI_REDUCE_MEAN, out, x, axis, keepdim);
  case OP_MAX: return clai_reduce(ctx, CLAI_REDUCE_MAX, out, x, axis, keepdim);
  case OP_MIN: return clai_reduce(ctx, CLAI_REDUCE_MIN, out, x, axis, keepdim);
  case OP_VAR0: return clai_reduce(ctx, CLAI_REDUCE_VAR, out, x, axis, keepdim);
  case OP_VAR1: return clai_var(ctx, out, x, axis, keepdim, 1);
  case OP_ARGMAX: return clai_argmax(ctx, out, x, axis, keepdim);
  default: return clai_argmin(ctx, out, x, axis, keepdim);
  }
}

/* Reduces x (any view) with op over axis into a new output of dtype odt and checks every element. xv: x's
 * values as clait_fetch gives them, or NULL to fetch them here (a strided view's fetch is a copy kernel, which
 * on a simulator cost as much as some of the reductions checked with it: the loops over ops fetch once). */
static void check_reduce_v(clai_context *ctx, int op, clai_tensor *x, const double *xv_in, int axis, int keepdim,
                           clai_dtype odt, double rtol) {
  int nd = clai_tensor_ndim(x), all = axis == CLAI_AXIS_ALL, ax = all ? 0 : (axis < 0 ? axis + nd : axis);
  int64_t shape[CLAI_MAX_DIMS], oshape[CLAI_MAX_DIMS];
  int on = 0;
  for (int i = 0; i < nd; i++) shape[i] = clai_tensor_dim(x, i);
  for (int i = 0; i < nd; i++) {
    if (all || i == ax) {
      if (keepdim) oshape[on++] = 1;
    } else {
      oshape[on++] = shape[i];
    }
  }
  int arg = op == OP_ARGMAX || op == OP_ARGMIN;
  clai_tensor *out = clait_tensor(ctx, arg ? CLAI_DTYPE_I32 : odt, on, oshape);
  CLAIT_OK(ctx, run_op(ctx, op, out, x, axis, keepdim));
  double *xv_own = xv_in != NULL ? NULL : clait_fetch(ctx, x), *got = clait_fetch(ctx, out);
  const double *xv = xv_in != NULL ? xv_in : xv_own;
  int64_t outer = 1, n = 1, inner = 1;
  for (int i = 0; i < nd; i++) {
    if (all || i == ax) n *= shape[i];
    else if (i < ax) outer *= shape[i];
    else inner *= shape[i];
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t q = 0; q < inner; q++) {
      double mag, want = ref_row(op, xv + o * n * inner + q, n, inner, &mag);
      double g = got[o * inner + q];
      double tol = arg ? 0 : rtol * fabs(want) + 1e-7 * mag / (op == OP_MEAN ? (double)n : 1.0) + 1e-30;
      if (op == OP_VAR0 || op == OP_VAR1) tol = rtol * fabs(want) + 1e-10 * mag;
      if (odt == CLAI_DTYPE_F16 && !arg) tol += fabs(want) * 1e-3;
      if ((isnan(want) && isnan(g)) || g == want) continue; /* == takes infinities */
      if (!(fabs(g - want) <= tol))
        fail_msg("%s over axis %d (keepdim %d) of %lld x %lld x %lld: element %lld is %.9g, expected %.9g", op_names[op],
                 axis, keepdim, (long long)outer, (long long)n, (long long)inner, (long long)(o * inner + q), g, want);
    }
  free(xv_own);
  free(got);
  clai_tensor_free(out);
}
static void check_reduce(clai_context *ctx, int op, clai_tensor *x, int axis, int keepdim, clai_dtype odt, double rtol) {
  check_reduce_v(ctx, op, x, NULL, axis, keepdim, odt, rtol);
}

static void random_values(clait_rng *r, float *v, size_t n, float lo, float hi) { clait_fill(r, v, n, lo, hi); }

/* ---- results --------------------------------------------------------------------------------------- */

/* Small mode takes the cases by turns: every second one, every fourth under Oclgrind (a reduction there takes
 * about a second; each axis, keepdim and op is still met, each op on some of the axes). */
static int small_turns(const clai_context *ctx) { return clait_oclgrind(ctx) ? 4 : 2; }

static void test_every_axis(void **state) {
  clai_context *ctx = CTX(state);
  const int turns = small_turns(ctx);
  clait_rng r = {42};
  static const int64_t shapes[][3] = {{7, 31, 3}, {1, 129, 1}, {5, 1, 1000}, {2, 3, 4}};
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const int64_t *sh = shapes[si];
    size_t n = (size_t)(sh[0] * sh[1] * sh[2]);
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    random_values(&r, v, n, -2.0f, 3.0f);
    for (int d = 0; d < 2; d++) {
      clai_dtype dt = d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
      clai_tensor *x = clait_upload_floats(ctx, dt, 3, sh, v);
      for (int op = 0; op < OP_COUNT; op++) {
        const int axes[] = {0, 1, 2, -1, -3, CLAI_AXIS_ALL};
        for (int ai = 0; ai < 6; ai++)
          for (int kd = 0; kd < 2; kd++)
            if (!clait_small() || (op + ai + kd) % turns == 0) /* small: by turns */
              check_reduce(ctx, op, x, axes[ai], kd, CLAI_DTYPE_F32, 1e-5);
        /* f16 output: small mode on half of the shapes, by turns (each op with f32 and f16 input) */
        if (!clait_small() || (op + (int)si + d) % 2 == 0) check_reduce(ctx, op, x, 1, 0, CLAI_DTYPE_F16, 1e-5);
      }
      clai_tensor_free(x);
    }
    free(v);
  }
}

static void test_views(void **state) {
  clai_context *ctx = CTX(state);
  const int turns = small_turns(ctx);
  clait_rng r = {7};
  float v[129 * 31];
  random_values(&r, v, 129 * 31, -1.0f, 1.0f);
  for (int d = 0; d < 2; d++) {
    clai_dtype dt = d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
    clai_tensor *x = clait_upload_floats(ctx, dt, 2, (int64_t[]){129, 31}, v), *t = NULL, *s = NULL, *e = NULL, *row = NULL;
    CLAIT_OK(ctx, clai_tensor_transpose(x, &t, 0, 1));             /* [31, 129], strides (1, 31) */
    CLAIT_OK(ctx, clai_tensor_slice(x, &s, 0, 3, 120, 4));         /* every 4th row */
    CLAIT_OK(ctx, clai_tensor_slice(x, &row, 0, 5, 6, 1));         /* [1, 31] */
    CLAIT_OK(ctx, clai_tensor_expand(row, &e, 3, (int64_t[]){3, 40, 31})); /* stride-0 dims */
    clai_tensor *views[] = {t, s, e};
    for (int vi = 0; vi < 3; vi++)
      for (int op = 0; op < OP_COUNT; op++) {
        if (clait_small() && (op + vi + d) % turns) continue; /* small: some of the ops, by turns */
        int nd = clai_tensor_ndim(views[vi]);
        double *xv = clait_fetch(ctx, views[vi]);
        for (int ax = 0; ax < nd; ax++) check_reduce_v(ctx, op, views[vi], xv, ax, vi & 1, CLAI_DTYPE_F32, 1e-5);
        check_reduce_v(ctx, op, views[vi], xv, CLAI_AXIS_ALL, 0, CLAI_DTYPE_F32, 1e-5);
        free(xv);
      }
    clai_tensor_free(e);
    clai_tensor_free(row);
    clai_tensor_free(s);
    clai_tensor_free(t);
    clai_tensor_free(x);
  }
}

/* Rows of length 1 and 0 (along the last axis and along a strided one), and a 0-d input. */
static void test_short_rows(void **state) {
  clai_context *ctx = CTX(state);
  float v[5] = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f};
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){5, 1}, v);
  for (int op = 0; op < OP_COUNT; op++) {
    check_reduce(ctx, op, x, 1, 0, CLAI_DTYPE_F32, 0);
    check_reduce(ctx, op, x, 0, 1, CLAI_DTYPE_F32, 1e-6);
  }
  clai_tensor *s = clait_upload_floats(ctx, CLAI_DTYPE_F32, 0, NULL, v + 2);
  for (int op = 0; op < OP_COUNT; op++) check_reduce(ctx, op, s, CLAI_AXIS_ALL, 0, CLAI_DTYPE_F32, 0);
  /* an empty axis: the sum is 0, the mean NaN, the maximum does not exist */
  clai_tensor *z = clait_tensor(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){3, 0}), *o = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){3});
  CLAIT_OK(ctx, clai_reduce(ctx, CLAI_REDUCE_SUM, o, z, 1, 0));
  double *g = clait_fetch(ctx, o);
  for (int i = 0; i < 3; i++) assert_true(g[i] == 0.0);
  free(g);
  CLAIT_OK(ctx, clai_reduce(ctx, CLAI_REDUCE_MEAN, o, z, 1, 0));
  g = clait_fetch(ctx, o);
  for (int i = 0; i < 3; i++) assert_true(isnan(g[i]));
  free(g);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "empty", clai_reduce(ctx, CLAI_REDUCE_MAX, o, z, 1, 0));
  /* the same over a strided axis ([0, 3] over axis 0: the column kernels), f32 and f16 */
  for (int d = 0; d < 2; d++) {
    clai_tensor *zc = clait_tensor(ctx, d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, 2, (int64_t[]){0, 3});
    CLAIT_OK(ctx, clai_reduce(ctx, CLAI_REDUCE_SUM, o, zc, 0, 0));
    g = clait_fetch(ctx, o);
    for (int i = 0; i < 3; i++) assert_true(g[i] == 0.0);
    free(g);
    CLAIT_OK(ctx, clai_reduce(ctx, CLAI_REDUCE_VAR, o, zc, 0, 0));
    g = clait_fetch(ctx, o);
    for (int i = 0; i < 3; i++) assert_true(isnan(g[i]));
    free(g);
    CLAIT_FAILS(ctx, CLAI_E_SHAPE, "empty", clai_reduce(ctx, CLAI_REDUCE_MIN, o, zc, 0, 0));
    clai_tensor_free(zc);
  }
  clai_tensor_free(o);
  clai_tensor_free(z);
  clai_tensor_free(s);
  clai_tensor_free(x);
}

/* 10^6-element rows (split into chunks and merged), with an offset that would ruin a naive variance, and
 * lengths just past a chunk boundary. */
static void test_long_rows(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {99};
  const int64_t side = CLAIT_SIZE(1000, 100); /* small: rows of 2500 and 10000, still cut into chunks */
  const size_t n = (size_t)(side * side);
  float *v = malloc((n > 8193 ? n : 8193) * sizeof *v);
  assert_non_null(v);
  for (size_t i = 0; i < n; i++) v[i] = 1000.0f + clait_uniform(&r, 0.0f, 1.0f);
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){(int64_t)n}, v);
  /* small mode: each op on every other one of the seven views below, by turns (TURN(view)), so that each op
   * still meets rows cut into chunks (views 0 to 3) and the column reductions (4 to 6), with the offset of 1000
   * in both; the ties past chunk lengths at the end still take every op */
#define TURN(vi) (!clait_small() || (op + (vi)) % 2 == 0)
  for (int op = 0; op < OP_COUNT; op++)
    if (TURN(0)) check_reduce(ctx, op, x, 0, 0, CLAI_DTYPE_F32, 2e-6);
  clai_tensor *m = NULL, *mt = NULL;
  CLAIT_OK(ctx, clai_tensor_reshape(x, &m, 2, (int64_t[]){4, (int64_t)n / 4}));
  CLAIT_OK(ctx, clai_tensor_transpose(m, &mt, 0, 1)); /* [250000, 4]: long strided rows along axis 0 */
  double *mv = clait_fetch(ctx, m), *mtv = clait_fetch(ctx, mt);
  for (int op = 0; op < OP_COUNT; op++) {
    if (TURN(1)) check_reduce_v(ctx, op, m, mv, 1, 0, CLAI_DTYPE_F32, 2e-6);
    if (TURN(2)) check_reduce_v(ctx, op, mt, mtv, 0, 1, CLAI_DTYPE_F32, 2e-6);
    if (TURN(3)) check_reduce_v(ctx, op, mt, mtv, CLAI_AXIS_ALL, 0, CLAI_DTYPE_F32, 2e-6);
  }
  /* column reductions (eight neighbouring outputs per work-item), the axis cut into chunks and merged */
  clai_tensor *sq = NULL, *sl = NULL;
  CLAIT_OK(ctx, clai_tensor_reshape(x, &sq, 2, (int64_t[]){side, side}));
  CLAIT_OK(ctx, clai_tensor_slice(sq, &sl, 1, 3, side, 1)); /* [1000, 997]: rows do not start aligned */
  double *sqv = clait_fetch(ctx, sq), *slv = clait_fetch(ctx, sl);
  for (int op = 0; op < OP_COUNT; op++) {
    if (TURN(4)) check_reduce_v(ctx, op, sq, sqv, 0, 0, CLAI_DTYPE_F32, 2e-6);
    if (TURN(5)) check_reduce_v(ctx, op, sl, slv, 0, 1, CLAI_DTYPE_F32, 2e-6);
    if (TURN(6)) check_reduce_v(ctx, op, m, mv, 0, 0, CLAI_DTYPE_F32, 2e-6);
  }
#undef TURN
  free(slv), free(sqv), free(mtv), free(mv);
  clai_tensor_free(sl);
  clai_tensor_free(sq);
  clai_tensor_free(mt);
  clai_tensor_free(m);
  clai_tensor_free(x);
  /* just past chunk lengths, with the maximum tied in the first and the last chunk */
  const int64_t lens[] = {8193, 16385, 24577};
  for (int li = 0; li < CLAIT_SIZE(3, 1); li++) {
    for (int64_t i = 0; i < lens[li]; i++) v[i] = clait_uniform(&r, -1.0f, 1.0f);
    v[3] = 5.0f;
    v[lens[li] - 1] = 5.0f;
    v[lens[li] / 2] = -5.0f;
    v[lens[li] - 2] = -5.0f;
    clai_tensor *y = clait_upload_floats(ctx, CLAI_DTYPE_F16, 1, (int64_t[]){lens[li]}, v);
    for (int op = 0; op < OP_COUNT; op++) check_reduce(ctx, op, y, 0, 0, CLAI_DTYPE_F32, 2e-6);
    clai_tensor_free(y);
  }
  free(v);
}

static void test_nan(void **state) {
  clai_context *ctx = CTX(state);
  float v[3 * 20];
  for (int i = 0; i < 60; i++) v[i] = (float)((i * 7) % 11);
  v[20 + 13] = NAN; /* row 1: NaN past the first vector */
  v[40 + 2] = NAN;  /* row 2: NaN in the first vector, and another later */
  v[40 + 17] = NAN;
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){3, 20}, v);
  for (int op = 0; op < OP_COUNT; op++) check_reduce(ctx, op, x, 1, 0, CLAI_DTYPE_F32, 1e-6);
  clai_tensor_free(x);
}

/* Row lengths and row counts around the work-group variants' shapes: [R, n] reduced over the last axis
 * (several rows per work-group, the last group part-full) and over the first (blocks of neighbouring
 * rows, narrower than a block or not a multiple of it), f32 and f16, every op. */
static void test_row_shapes(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {17};
  static const int64_t lens[] = {1, 7, 31, 129, 1000, 4097};
  static const int64_t counts[] = {1, 3, 37};
  float *v = malloc(37 * 4097 * sizeof *v);
  assert_non_null(v);
  random_values(&r, v, 37 * 4097, -2.0f, 2.0f);
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++)
      for (int d = 0; d < 2; d++) {
        /* small mode: not 37 rows of 1000 or more (87% of the values; Oclgrind took 73 s for this case), which
         * 37 shorter rows and 1 and 3 long ones cover: one long row is cut into chunks, three are not */
        if (clait_small() && counts[ci] > 3 && lens[li] >= 1000) continue;
        clai_dtype dt = d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
        clai_tensor *x = clait_upload_floats(ctx, dt, 2, (int64_t[]){counts[ci], lens[li]}, v);
        for (int op = 0; op < OP_COUNT; op++) {
          /* small mode: half of the ops on each shape and dtype, by turns, over both axes: each op still meets
           * every length with every count (in one of the dtypes), so the long rows cut into chunks too */
          if (clait_small() && (op + li + ci + (size_t)d) % 2) continue;
          check_reduce(ctx, op, x, 1, 0, CLAI_DTYPE_F32, 2e-6);
          check_reduce(ctx, op, x, 0, 0, CLAI_DTYPE_F32, 2e-6);
        }
        clai_tensor_free(x);
      }
  free(v);
  /* many rows longer than a chunk: enough rows for every core, so on CPUs they are not cut (a row per work-item) */
  if (!clait_small()) {
    const int64_t R = 520, C = 2100;
    v = malloc((size_t)(R * C) * sizeof *v);
    assert_non_null(v);
    random_values(&r, v, (size_t)(R * C), -2.0f, 2.0f);
    for (int d = 0; d < 2; d++) {
      clai_tensor *x = clait_upload_floats(ctx, d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, 2, (int64_t[]){R, C}, v);
      for (int op = 0; op < OP_COUNT; op++) check_reduce(ctx, op, x, 1, 0, CLAI_DTYPE_F32, 2e-6);
      clai_tensor_free(x);
    }
    free(v);
  }
}

/* Reductions over a strided axis whose rows are neighbours (the column kernels): widths around a CPU
 * work-item's tile of 512 columns and not multiples of 8, reduced axes that leave 1-3 steps after groups of
 * four and are cut into chunks (a variance's more finely: 128 steps), the middle axis of a 3-D tensor, rows
 * that start unaligned, a stepped reduced axis, and NaN / +-inf in vector columns and in tail columns; f32
 * and f16 inputs. */
static void test_cols_shapes(void **state) {
  clai_context *ctx = CTX(state);
  const int turns = small_turns(ctx);
  clait_rng r = {23};
  /* W: the width of the 3-D, unaligned, stepped and special-value cases below, three columns past whole tiles:
   * 515 for a CPU's tile of 512. In small mode on a device whose tile is narrower (GPUs and the simulator: 32
   * columns, a work-item's tile in clai_reduce_cols and a work-group's block in clai_reduce_cols_wg), two of
   * its tiles and the same three: 67, whole and ragged tiles, vector and tail columns as before, on an eighth
   * of the data (on Oclgrind these cases were 60% of the test's column reductions). */
  const int64_t tile = clai__reduce_cols_tile(&ctx->caps);
  const int64_t W = clait_small() && tile < 512 ? 2 * tile + 3 : 515;
  /* The widths below: 511, 512, 515 and 1029 are one short of whole tiles, whole ones, three and five past
   * them for a CPU's tile of 512; in small mode on a device whose tile is narrower, the same around two and
   * four of its tiles (63, 64, 67 and 133 for 32), on an eighth of the data (those four took three quarters of
   * the loop's values; on Oclgrind the loop was half of this test's time) */
  const int narrow = clait_small() && tile < 512;
  const int64_t widths[] = {3, 9, narrow ? 2 * tile - 1 : 511, narrow ? 2 * tile : 512, narrow ? 2 * tile + 3 : 515,
                            narrow ? 4 * tile + 5 : 1029};
  static const int64_t lens[] = {2, 5, 131, 1030};
  const size_t cap = 1031 * 1035;
  float *v = malloc(cap * sizeof *v);
  assert_non_null(v);
  random_values(&r, v, cap, -2.0f, 3.0f);
  int turn = 0;
  for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
      for (int d = 0; d < (lens[li] > 200 ? 1 : 2); d++) { /* f16 input on the shorter axes */
        if (clait_small() && (lens[li] > 200 || turn++ % turns)) continue;
        clai_dtype dt = d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
        clai_tensor *x = clait_upload_floats(ctx, dt, 2, (int64_t[]){lens[li], widths[wi]}, v);
        double *xv = clait_fetch(ctx, x);
        for (int op = 0; op < OP_COUNT; op++) check_reduce_v(ctx, op, x, xv, 0, (int)(li & 1), CLAI_DTYPE_F32, 2e-6);
        free(xv);
        clai_tensor_free(x);
      }
    }
  /* [3, 131, W] over its middle axis; rows of W starting 3 elements in ([1030, W + 3] sliced); every third
   * step of the reduced axis; f16 output */
  clai_tensor *t3 = clait_upload_floats(ctx, CLAI_DTYPE_F32, 3, (int64_t[]){3, 131, W}, v);
  clai_tensor *big = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){1030, W + 3}, v), *un = NULL, *st = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(big, &un, 1, 3, W + 3, 1)); /* [1030, W], rows W + 3 apart */
  CLAIT_OK(ctx, clai_tensor_slice(un, &st, 0, 1, 1030, 3));   /* [343, W], every third row */
  double *t3v = clait_fetch(ctx, t3), *unv = clait_fetch(ctx, un), *stv = clait_fetch(ctx, st);
  for (int op = 0; op < OP_COUNT; op++) {
    if (clait_small() && op % turns) continue;
    check_reduce_v(ctx, op, t3, t3v, 1, 0, CLAI_DTYPE_F32, 2e-6);
    check_reduce_v(ctx, op, un, unv, 0, 1, CLAI_DTYPE_F32, 2e-6);
    check_reduce_v(ctx, op, st, stv, 0, 0, CLAI_DTYPE_F32, 2e-6);
    check_reduce_v(ctx, op, t3, t3v, 0, 0, CLAI_DTYPE_F16, 2e-6);
  }
  free(stv), free(unv), free(t3v);
  clai_tensor_free(st);
  clai_tensor_free(un);
  clai_tensor_free(big);
  clai_tensor_free(t3);
  /* [300, W] with special values (W = 515: columns 512-514 are the tail, 100-103 in the first tile; W = 67:
   * 64-66 and 36-39): NaN in vector column 2 (steps 5 and 150) and in tail column W - 2 (step 290, the last
   * chunk); +inf in column c0 at steps 3 and 290; -inf in c0 + 1; +inf and -inf in c0 + 2; column c0 + 3 all
   * -inf; column W - 1 +inf once; tied extremes in columns 7, 8 and W - 3 (a tail column) */
  const int64_t R = 300, C = W, c0 = W == 515 ? 100 : tile + 4;
  for (int64_t i = 0; i < R * C; i++) v[i] = clait_uniform(&r, -1.0f, 1.0f);
  v[5 * C + 2] = NAN;
  v[290 * C + C - 2] = NAN;
  v[3 * C + c0] = INFINITY;
  v[290 * C + c0] = INFINITY;
  v[7 * C + c0 + 1] = -INFINITY;
  v[8 * C + c0 + 2] = INFINITY;
  v[200 * C + c0 + 2] = -INFINITY;
  for (int64_t i = 0; i < R; i++) v[i * C + c0 + 3] = -INFINITY;
  v[150 * C + C - 1] = INFINITY;
  v[150 * C + 2] = NAN; /* a second NaN: argmax/argmin return the first */
  v[10 * C + 7] = 5.0f; /* ties in different chunks: the first index wins */
  v[250 * C + 7] = 5.0f;
  v[20 * C + C - 3] = -5.0f;
  v[200 * C + C - 3] = -5.0f;
  v[30 * C + 8] = -5.0f;
  v[280 * C + 8] = -5.0f;
  for (int d = 0; d < 2; d++) {
    clai_tensor *sp = clait_upload_floats(ctx, d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, 2, (int64_t[]){R, C}, v);
    double *spv = clait_fetch(ctx, sp);
    for (int op = 0; op < OP_COUNT; op++) check_reduce_v(ctx, op, sp, spv, 0, 0, CLAI_DTYPE_F32, 2e-6);
    free(spv);
    clai_tensor_free(sp);
  }
  free(v);
}

/* The variant CLAI_ROWS forces (else the device's default) is the one that runs. */
static void test_rows_variant(void **state) {
  (void)state;
  clai_context *ctx = clait_profiled_ctx();
  const int wg = clait_rows_wg(ctx);
  clait_rng r = {18};
  float v[37 * 129];
  random_values(&r, v, 37 * 129, -1.0f, 1.0f);
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){37, 129}, v);
  clai_tensor *o37 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){37});
  clai_tensor *o129 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){129});
  clai_profile_reset(ctx);
  CLAIT_OK(ctx, clai_reduce(ctx, CLAI_REDUCE_SUM, o37, x, 1, 0));
  clait_expect_kernel(ctx, "clai_reduce_rows_wg", wg);
  clait_expect_kernel(ctx, "clai_reduce_rows", !wg);
  clai_profile_reset(ctx);
  CLAIT_OK(ctx, clai_reduce(ctx, CLAI_REDUCE_SUM, o129, x, 0, 0)); /* a bias gradient: sum-cols */
  clait_expect_kernel(ctx, "clai_reduce_cols_wg", wg);
  clait_expect_kernel(ctx, "clai_reduce_cols", !wg);
  clai_tensor_free(o129);
  clai_tensor_free(o37);
  clai_tensor_free(x);
  clai_context_free(ctx);
}

static void test_sum_to(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {5};
  float v[4 * 5 * 6];
  random_values(&r, v, 120, -1.0f, 1.0f);
  clai_tensor *base = clait_upload_floats(ctx, CLAI_DTYPE_F32, 3, (int64_t[]){6, 5, 4}, v), *x = NULL;
  CLAIT_OK(ctx, clai_tensor_permute(base, &x, (int[]){2, 1, 0})); /* [4, 5, 6], fully strided */
  double *xv = clait_fetch(ctx, x);
  float dv[120];
  for (int i = 0; i < 120; i++) dv[i] = (float)xv[i];
  clai_tensor *dense = clait_upload_floats(ctx, CLAI_DTYPE_F32, 3, (int64_t[]){4, 5, 6}, dv); /* summed dims merge */
  for (int variant = 0; variant < 2; variant++) {
    clai_tensor *xin = variant ? dense : x;
    static const struct {
      int nd;
      int64_t shape[3];
    } targets[] = {{1, {6}}, {2, {1, 6}}, {3, {4, 1, 6}}, {2, {5, 1}}, {0, {0}}, {3, {4, 5, 6}}, {3, {1, 5, 1}}, {3, {4, 1, 1}}};
    for (size_t ti = 0; ti < sizeof targets / sizeof targets[0]; ti++) {
      for (int d = 0; d < 2; d++) {
        clai_dtype odt = d ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
        clai_tensor *out = clait_tensor(ctx, odt, targets[ti].nd, targets[ti].shape);
        CLAIT_OK(ctx, clai_sum_to(ctx, out, xin));
        double *got = clait_fetch(ctx, out);
        /* out's shape aligned to [4, 5, 6] */
        int64_t os[3];
        for (int i = 0; i < 3; i++) {
          int oi = targets[ti].nd - 3 + i;
          os[i] = oi < 0 ? 1 : targets[ti].shape[oi];
        }
        double want[120] = {0};
        for (int a = 0; a < 4; a++)
          for (int b = 0; b < 5; b++)
            for (int c = 0; c < 6; c++) {
              int64_t o = ((os[0] > 1 ? a : 0) * os[1] + (os[1] > 1 ? b : 0)) * os[2] + (os[2] > 1 ? c : 0);
              want[o] += xv[(a * 5 + b) * 6 + c];
            }
        for (int64_t i = 0; i < clai_tensor_numel(out); i++)
          if (!(fabs(got[i] - want[i]) <= 1e-5 + (d ? 2e-3 : 1e-6) * fabs(want[i])))
            fail_msg("clai_sum_to to target %zu (%s): element %lld is %.9g, expected %.9g", ti, clai_dtype_name(odt),
                     (long long)i, got[i], want[i]);
        free(got);
        clai_tensor_free(out);
      }
    }
  }
  free(xv);
  clai_tensor_free(dense);
  clai_tensor_free(x);
  clai_tensor_free(base);
}

/* ---- errors ---------------------------------------------------------------------------------------- */

static void test_errors(void **state) {
  clai_context *ctx = CTX(state);
  float v[12] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
  clai_tensor *x = clait_upload_floats(ctx, CLAI_DTYPE_F32, 2, (int64_t[]){3, 4}, v);
  clai_tensor *o3 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){3}), *o4 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, (int64_t[]){4});
  clai_tensor *i3 = clait_tensor(ctx, CLAI_DTYPE_I32, 1, (int64_t[]){3});
  clai_tensor *xi = clait_tensor(ctx, CLAI_DTYPE_I32, 2, (int64_t[]){3, 4});
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_reduce_op", clai_reduce(ctx, (clai_reduce_op)9, o3, x, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "axis 2", clai_reduce(ctx, CLAI_REDUCE_SUM, o3, x, 2, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "axis -3", clai_reduce(ctx, CLAI_REDUCE_SUM, o3, x, -3, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "needs [3]", clai_reduce(ctx, CLAI_REDUCE_SUM, o4, x, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "needs [3, 1]", clai_reduce(ctx, CLAI_REDUCE_SUM, o3, x, 1, 1));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "all axes", clai_reduce(ctx, CLAI_REDUCE_SUM, o3, x, CLAI_AXIS_ALL, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "i32", clai_reduce(ctx, CLAI_REDUCE_SUM, o3, xi, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "f32 or f16", clai_reduce(ctx, CLAI_REDUCE_SUM, i3, x, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "i32 output", clai_argmax(ctx, o3, x, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "negative", clai_var(ctx, o3, x, 1, 0, -1));
  clai_tensor *col = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(x, &col, 1, 0, 1, 1)); /* [3, 1] inside x */
  clai_tensor *colv = NULL;
  CLAIT_OK(ctx, clai_tensor_reshape(col, &colv, 1, (int64_t[]){3}));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_reduce(ctx, CLAI_REDUCE_MAX, colv, x, 1, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "does not broadcast", clai_sum_to(ctx, o3, x));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "f32 or f16", clai_sum_to(ctx, o4, xi));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "NULL", clai_reduce(ctx, CLAI_REDUCE_SUM, o3, NULL, 1, 0));
  /* nothing was written into x, and the context still works */
  double *xv = clait_fetch(ctx, x);
  for (int i = 0; i < 12; i++) assert_true(xv[i] == v[i]);
  free(xv);
  CLAIT_OK(ctx, clai_argmax(ctx, i3, x, -1, 0));
  double *g = clait_fetch(ctx, i3);
  assert_true(g[0] == 2 && g[1] == 1 && g[2] == 3);
  free(g);
  CLAIT_OK(ctx, clai_reduce(ctx, CLAI_REDUCE_SUM, o4, x, 0, 0));
  g = clait_fetch(ctx, o4);
  assert_true(g[0] == 13 && g[1] == 13 && g[2] == 11 && g[3] == 15);
  free(g);
  clai_tensor_free(colv);
  clai_tensor_free(col);
  clai_tensor_free(xi);
  clai_tensor_free(i3);
  clai_tensor_free(o4);
  clai_tensor_free(o3);
  clai_tensor_free(x);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clait_setup, clait_teardown)
int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_every_axis), T(test_views), T(test_short_rows), T(test_long_rows),
      T(test_nan),        T(test_row_shapes), T(test_cols_shapes), T(test_rows_variant), T(test_sum_to),
      T(test_errors),
  };
  return CLAIT_MAIN("reduce", tests, 1);
}
