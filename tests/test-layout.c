/* test-layout.c - clai_contiguous, clai_concat, clai_gather_rows, clai_one_hot and clai_where against plain C
 * references, for f32, f16 and i32, on awkward sizes, strided views as inputs and outputs, and bad inputs
 * (status, a word of the message, the context usable afterwards).
 *
 * These ops only move values, so every result must be exact: host data is generated exactly representable
 * in the tensor's dtype and compared bit for bit through doubles. */
#include <limits.h>

#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

static const clai_dtype all_dtypes[] = {CLAI_DTYPE_F32, CLAI_DTYPE_F16, CLAI_DTYPE_I32};

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
  }
}

static double get(clai_dtype dt, const void *buf, size_t i) {
  switch (dt) {
  case CLAI_DTYPE_F32: return ((const float *)buf)[i];
  case CLAI_DTYPE_F16: return clait_f16_to_f32(((const uint16_t *)buf)[i]);
  case CLAI_DTYPE_I32: return ((const int32_t *)buf)[i];
  }
  return NAN;
}

/* n distinct-looking values exactly representable in every dtype (small integers and halves). */
static void randv(clait_rng *r, double *v, size_t n) {
  for (size_t i = 0; i < n; i++) v[i] = (double)((int)(clait_next(r) % 2001) - 1000) / 2.0;
}

static void write_vals(clai_context *ctx, clai_tensor *t, const double *v) {
  clai_dtype dt = clai_tensor_dtype(t);
  size_t n = (size_t)clai_tensor_numel(t), es = clai_dtype_size(dt);
  void *buf = malloc(n * es + 1);
  assert_non_null(buf);
  for (size_t i = 0; i < n; i++) put(dt, buf, i, dt == CLAI_DTYPE_I32 ? floor(v[i]) : v[i]);
  clai_status st = clai_tensor_write(t, buf, n * es);
  free(buf);
  CLAIT_OK(ctx, st);
}

static clai_tensor *upload(clai_context *ctx, clai_dtype dt, int ndim, const int64_t *shape, const double *v) {
  clai_tensor *t = clait_tensor(ctx, dt, ndim, shape);
  write_vals(ctx, t, v);
  return t;
}

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

/* The value as dtype dt stores it (i32 truncates our halves). */
static double as_dt(clai_dtype dt, double v) { return dt == CLAI_DTYPE_I32 ? floor(v) : v; }

static void expect_exact(const char *what, const double *got, const double *want, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!(got[i] == want[i]) && !(isnan(got[i]) && isnan(want[i])))
      fail_msg("%s: element %zu is %.9g, expected %.9g", what, i, got[i], want[i]);
}

/* Element offset (in a dense base of the view's parent) of row-major position i of a strided layout. */
static int64_t at(int ndim, const int64_t *shape, const int64_t *strides, int64_t offset, size_t i) {
  int64_t o = offset;
  for (int d = ndim - 1; d >= 0; d--) {
    o += (int64_t)(i % (size_t)shape[d]) * strides[d];
    i /= (size_t)shape[d];
  }
  return o;
}

/* ---- contiguous ------------------------------------------------------------------------------------- */

static void test_contiguous(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x1111222233334444ULL};
  for (size_t di = 0; di < 3; di++) {
    clai_dtype dt = all_dtypes[di];
    /* base [7, 33, 5]; views: a permutation (2, 0, 1), a stepped slice along dim 1, an expand of [1, 5] */
    const int64_t bs[3] = {7, 33, 5};
    size_t nb = count(3, bs);
    double *base = malloc(nb * sizeof *base), *got = malloc(nb * sizeof *got), *want = malloc(nb * sizeof *want);
    assert_true(base && got && want);
    randv(&r, base, nb);
    for (size_t i = 0; i < nb; i++) base[i] = as_dt(dt, base[i]);
    clai_tensor *t = upload(ctx, dt, 3, bs, base);
    for (int kind = 0; kind < 3; kind++) {
      clai_tensor *v = NULL, *c = NULL;
      if (kind == 0) {
        const int perm[3] = {2, 0, 1};
        CLAIT_OK(ctx, clai_tensor_permute(t, &v, perm));
      } else if (kind == 1) {
        CLAIT_OK(ctx, clai_tensor_slice(t, &v, 1, 2, 31, 3));
      } else {
        clai_tensor *row = NULL, *row2 = NULL;
        CLAIT_OK(ctx, clai_tensor_slice(t, &row, 0, 3, 4, 1)); /* [1, 33, 5] */
        const int64_t s2[2] = {33, 5}, e3[3] = {4, 33, 5};
        CLAIT_OK(ctx, clai_tensor_reshape(row, &row2, 2, s2));
        CLAIT_OK(ctx, clai_tensor_expand(row2, &v, 3, e3));
        clai_tensor_free(row);
        clai_tensor_free(row2);
      }
      assert_false(clai_tensor_is_contiguous(v));
      int nd = clai_tensor_ndim(v);
      int64_t sh[3], stv[3];
      for (int d = 0; d < nd; d++) sh[d] = clai_tensor_dim(v, d), stv[d] = clai_tensor_stride(v, d);
      size_t n = count(nd, sh);
      for (size_t i = 0; i < n; i++) want[i] = base[at(nd, sh, stv, clai_tensor_offset(v), i)];
      CLAIT_OK(ctx, clai_contiguous(ctx, &c, v));
      assert_true(clai_tensor_is_contiguous(c));
      assert_int_equal(clai_tensor_dtype(c), dt);
      assert_int_equal(clai_tensor_ndim(c), nd);
      for (int d = 0; d < nd; d++) assert_int_equal(clai_tensor_dim(c, d), sh[d]);
      download(ctx, c, got);
      expect_exact("contiguous copy of a view", got, want, n);
      /* a copy: overwriting the source leaves it unchanged */
      CLAIT_OK(ctx, clai_fill(ctx, t, 3));
      download(ctx, c, got);
      expect_exact("contiguous copy after the source changed", got, want, n);
      write_vals(ctx, t, base);
      clai_tensor_free(c);
      clai_tensor_free(v);
    }
    /* An already contiguous tensor (a row slice) gives a view of the same elements: a write through it shows. */
    clai_tensor *v = NULL, *c = NULL;
    CLAIT_OK(ctx, clai_tensor_slice(t, &v, 0, 2, 5, 1));
    assert_true(clai_tensor_is_contiguous(v));
    CLAIT_OK(ctx, clai_contiguous(ctx, &c, v));
    size_t n = 3 * 33 * 5;
    download(ctx, c, got);
    expect_exact("contiguous of a contiguous view", got, base + 2 * 33 * 5, n);
    CLAIT_OK(ctx, clai_fill(ctx, c, 7));
    download(ctx, v, got);
    for (size_t i = 0; i < n; i++) want[i] = 7;
    expect_exact("contiguous of a contiguous tensor is a view", got, want, n);
    clai_tensor_free(c);
    clai_tensor_free(v);
    clai_tensor_free(t);
    free(base);
    free(got);
    free(want);
  }
}

/* ---- concat ------------------------------------------------------------------------------------------ */

/* Concatenates n dense random tensors of shape `shape` with sizes[i] along axis, optionally feeding the
 * inputs as transposed views and writing into a column slice of a bigger output. */
static void check_concat(clai_context *ctx, clait_rng *r, clai_dtype dt, int ndim, const int64_t *shape, int axis,
                         int n, const int64_t *sizes, int views) {
  clai_tensor *xs[4], *bases[4];
  double *vals[4];
  int64_t total = 0;
  int ax = axis < 0 ? axis + ndim : axis;
  for (int i = 0; i < n; i++) {
    int64_t sh[CLAI_MAX_DIMS];
    memcpy(sh, shape, sizeof sh[0] * (size_t)ndim);
    sh[ax] = sizes[i];
    total += sizes[i];
    size_t cnt = count(ndim, sh);
    vals[i] = malloc(cnt * sizeof(double) + 8);
    randv(r, vals[i], cnt);
    for (size_t e = 0; e < cnt; e++) vals[i][e] = as_dt(dt, vals[i][e]);
    if (!views) {
      bases[i] = NULL;
      xs[i] = upload(ctx, dt, ndim, sh, vals[i]);
    } else {
      /* the same logical tensor as the transpose of a dense tensor with the last two dims swapped */
      int64_t tsh[CLAI_MAX_DIMS];
      memcpy(tsh, sh, sizeof tsh[0] * (size_t)ndim);
      tsh[ndim - 1] = sh[ndim - 2];
      tsh[ndim - 2] = sh[ndim - 1];
      double *tv = malloc(cnt * sizeof(double) + 8);
      int64_t rows = sh[ndim - 2], cols = sh[ndim - 1];
      for (size_t e = 0; e < cnt; e++) {
        size_t outer = e / (size_t)(rows * cols), rc = e % (size_t)(rows * cols);
        size_t i0 = rc / (size_t)cols, j0 = rc % (size_t)cols;
        tv[outer * (size_t)(rows * cols) + j0 * (size_t)rows + i0] = vals[i][e];
      }
      bases[i] = upload(ctx, dt, ndim, tsh, tv);
      free(tv);
      CLAIT_OK(ctx, clai_tensor_transpose(bases[i], &xs[i], -1, -2));
    }
  }
  int64_t osh[CLAI_MAX_DIMS];
  memcpy(osh, shape, sizeof osh[0] * (size_t)ndim);
  osh[ax] = total;
  size_t no = count(ndim, osh);
  clai_tensor *obase = NULL, *out = NULL;
  int64_t bigsh[CLAI_MAX_DIMS];
  memcpy(bigsh, osh, sizeof bigsh[0] * (size_t)ndim);
  bigsh[ndim - 1] = osh[ndim - 1] * 2 + 1;
  if (views) {
    obase = clait_tensor(ctx, dt, ndim, bigsh);
    CLAIT_OK(ctx, clai_fill(ctx, obase, -9));
    CLAIT_OK(ctx, clai_tensor_slice(obase, &out, -1, 1, bigsh[ndim - 1], 2));
  } else {
    out = clait_tensor(ctx, dt, ndim, osh);
  }
  CLAIT_OK(ctx, clai_concat(ctx, out, n, (const clai_tensor *const *)xs, axis));
  double *got = malloc(no * sizeof *got + 8), *want = malloc(no * sizeof *want + 8);
  download(ctx, out, got);
  for (size_t e = 0; e < no; e++) {
    int64_t idx[CLAI_MAX_DIMS];
    size_t rem = e;
    for (int d = ndim - 1; d >= 0; d--) idx[d] = (int64_t)(rem % (size_t)osh[d]), rem /= (size_t)osh[d];
    int part = 0;
    while (idx[ax] >= sizes[part]) idx[ax] -= sizes[part++];
    int64_t sh[CLAI_MAX_DIMS];
    memcpy(sh, shape, sizeof sh[0] * (size_t)ndim);
    sh[ax] = sizes[part];
    size_t lin = 0;
    for (int d = 0; d < ndim; d++) lin = lin * (size_t)sh[d] + (size_t)idx[d];
    want[e] = vals[part][lin];
  }
  char what[96];
  snprintf(what, sizeof what, "concat %s of %d along axis %d%s", clai_dtype_name(dt), n, axis, views ? " (views)" : "");
  expect_exact(what, got, want, no);
  if (views) { /* the elements between the output's columns are untouched */
    size_t nb = count(ndim, bigsh);
    double *bg = malloc(nb * sizeof *bg);
    download(ctx, obase, bg);
    for (size_t e = 0; e < nb; e++)
      if ((e % (size_t)bigsh[ndim - 1]) % 2 == 0 && bg[e] != -9) fail_msg("%s: wrote outside the output view", what);
    free(bg);
  }
  for (int i = 0; i < n; i++) {
    clai_tensor_free(xs[i]);
    clai_tensor_free(bases[i]);
    free(vals[i]);
  }
  clai_tensor_free(out);
  clai_tensor_free(obase);
  free(got);
  free(want);
}

static void test_concat(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x5555666677778888ULL};
  for (size_t di = 0; di < 3; di++) {
    clai_dtype dt = all_dtypes[di];
    for (int views = 0; views < 2; views++) {
      const int64_t s3[3] = {3, 7, 5};
      const int64_t a[3] = {1, 7, 31}, b[2] = {129, 1}, c[3] = {2, 0, 3}, d[1] = {5};
      check_concat(ctx, &r, dt, 3, s3, 0, 3, a, views);
      check_concat(ctx, &r, dt, 3, s3, 1, 2, b, views);
      check_concat(ctx, &r, dt, 3, s3, -1, 3, c, views); /* last axis, with an empty part */
      check_concat(ctx, &r, dt, 3, s3, 2, 1, d, views);  /* one input: a copy */
      const int64_t s2[2] = {1000, 4}, e[2] = {3, 1};
      check_concat(ctx, &r, dt, 2, s2, 1, 2, e, views);
    }
  }
}

/* ---- gather rows ------------------------------------------------------------------------------------ */

/* out = table[index] for a [rows, cols] table (dense or a transposed view) and an index of shape ish. */
static void check_gather(clai_context *ctx, clait_rng *r, clai_dtype dt, int64_t rows, int64_t cols, int ind,
                         const int64_t *ish, int transposed) {
  size_t nt = (size_t)(rows * cols), ni = count(ind, ish), no = ni * (size_t)cols;
  double *tv = malloc(nt * sizeof *tv + 8), *iv = malloc(ni * sizeof *iv + 8), *got = malloc(no * sizeof *got + 8),
         *want = malloc(no * sizeof *want + 8);
  randv(r, tv, nt);
  for (size_t i = 0; i < nt; i++) tv[i] = as_dt(dt, tv[i]);
  for (size_t i = 0; i < ni; i++) iv[i] = (double)(clait_next(r) % (uint64_t)rows);
  clai_tensor *tb = NULL, *table = NULL;
  if (!transposed) {
    const int64_t ts[2] = {rows, cols};
    table = upload(ctx, dt, 2, ts, tv);
  } else {
    const int64_t ts[2] = {cols, rows};
    double *tt = malloc(nt * sizeof *tt + 8);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++) tt[j * rows + i] = tv[i * cols + j];
    tb = upload(ctx, dt, 2, ts, tt);
    free(tt);
    CLAIT_OK(ctx, clai_tensor_transpose(tb, &table, 0, 1));
  }
  clai_tensor *index = upload(ctx, CLAI_DTYPE_I32, ind, ish, iv);
  int64_t osh[CLAI_MAX_DIMS];
  memcpy(osh, ish, sizeof osh[0] * (size_t)ind);
  osh[ind] = cols;
  clai_tensor *out = clait_tensor(ctx, dt, ind + 1, osh);
  CLAIT_OK(ctx, clai_gather_rows(ctx, out, table, index));
  download(ctx, out, got);
  for (size_t i = 0; i < ni; i++)
    for (int64_t j = 0; j < cols; j++) want[i * (size_t)cols + (size_t)j] = tv[(size_t)iv[i] * (size_t)cols + (size_t)j];
  char what[96];
  snprintf(what, sizeof what, "gather %s [%lld, %lld]%s, %zu indices", clai_dtype_name(dt), (long long)rows,
           (long long)cols, transposed ? " transposed" : "", ni);
  expect_exact(what, got, want, no);
  clai_tensor_free(out);
  clai_tensor_free(index);
  clai_tensor_free(table);
  clai_tensor_free(tb);
  free(tv);
  free(iv);
  free(got);
  free(want);
}

static void test_gather(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x9999aaaabbbbccccULL};
  const int64_t i0[1] = {0}, i1[1] = {7}, i2[2] = {3, 7}, i3[3] = {2, 5, 33}, i4[1] = {CLAIT_SIZE(1000, 200)};
  for (size_t di = 0; di < 3; di++)
    for (int tr = 0; tr < 2; tr++) {
      check_gather(ctx, &r, all_dtypes[di], 10, 64, 0, i0, tr); /* a 0-d index: out is one row */
      check_gather(ctx, &r, all_dtypes[di], 1, 7, 1, i1, tr);
      check_gather(ctx, &r, all_dtypes[di], 31, 1, 2, i2, tr);
      check_gather(ctx, &r, all_dtypes[di], 129, 3, 3, i3, tr);
      check_gather(ctx, &r, all_dtypes[di], CLAIT_SIZE(1000, 200), 129, 1, i4, tr); /* small: 200 rows */
    }
}

/* A strided index (every other element of a [2, 14] tensor, transposed) into a dense output. */
static void test_gather_index_view(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t ts[2] = {9, 4}, bs[2] = {2, 14};
  double tv[36], bv[28], got[7 * 2 * 4], want[7 * 2 * 4];
  for (int i = 0; i < 36; i++) tv[i] = i * 1.5 - 20;
  for (int i = 0; i < 28; i++) bv[i] = (i * 5) % 9;
  clai_tensor *table = upload(ctx, CLAI_DTYPE_F32, 2, ts, tv), *ib = upload(ctx, CLAI_DTYPE_I32, 2, bs, bv);
  clai_tensor *is = NULL, *it = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(ib, &is, 1, 0, 14, 2)); /* [2, 7] */
  CLAIT_OK(ctx, clai_tensor_transpose(is, &it, 0, 1));   /* [7, 2] */
  const int64_t os[3] = {7, 2, 4};
  clai_tensor *out = clait_tensor(ctx, CLAI_DTYPE_F32, 3, os);
  CLAIT_OK(ctx, clai_gather_rows(ctx, out, table, it));
  download(ctx, out, got);
  for (int i = 0; i < 7; i++)
    for (int j = 0; j < 2; j++)
      for (int c = 0; c < 4; c++) want[(i * 2 + j) * 4 + c] = tv[(int)bv[j * 14 + 2 * i] * 4 + c];
  expect_exact("gather through a strided index", got, want, 56);
  clai_tensor_free(out);
  clai_tensor_free(it);
  clai_tensor_free(is);
  clai_tensor_free(ib);
  clai_tensor_free(table);
}

/* Out-of-range indices: the table is rows 2..6 of a [9, 4] tensor whose other rows hold a sentinel, so an
 * index of -1, 5 or 6 that read outside the table (the view) would pick up the sentinel. The op must return
 * CLAI_E_INVALID_ARG naming the first bad position and value, write zeros for bad rows and the right rows
 * for the others, and leave the context usable. */
static void test_gather_out_of_range(void **state) {
  clai_context *ctx = CTX(state);
  const double sentinel = 12345;
  const int64_t bs[2] = {9, 4};
  double bv[36];
  for (int i = 0; i < 36; i++) bv[i] = (i >= 8 && i < 28) ? i : sentinel;
  clai_tensor *base = upload(ctx, CLAI_DTYPE_F32, 2, bs, bv), *table = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(base, &table, 0, 2, 7, 1)); /* 5 rows */
  static const struct {
    double idx[6];
    const char *needle;
  } cases[] = {
      {{0, 4, 5, 1, -1, 2}, "index[2] = 5 is outside [0, 5)"},
      {{-1, 0, 0, 0, 0, 0}, "index[0] = -1 is outside [0, 5)"},
      {{1, 2, 3, 4, 0, 6}, "index[5] = 6 is outside [0, 5)"},
      {{0, 0, 0, INT_MIN, INT_MAX, 0}, "index[3] = -2147483648"},
  };
  const int64_t is[1] = {6}, os[2] = {6, 4};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    clai_tensor *index = upload(ctx, CLAI_DTYPE_I32, 1, is, cases[c].idx), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, os);
    CLAIT_OK(ctx, clai_fill(ctx, out, -1));
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, cases[c].needle, clai_gather_rows(ctx, out, table, index));
    double got[24], want[24];
    download(ctx, out, got);
    for (int i = 0; i < 6; i++) {
      int v = (int)cases[c].idx[i];
      for (int j = 0; j < 4; j++) want[i * 4 + j] = v >= 0 && v < 5 ? bv[(v + 2) * 4 + j] : 0.0;
    }
    expect_exact("gather with bad indices: good rows gathered, bad rows zero, no sentinel read", got, want, 24);
    clai_tensor_free(index);
    clai_tensor_free(out);
  }
  /* f16 and a 2-d index: the position is row-major in the index */
  {
    const int64_t ts[2] = {3, 2}, i2[2] = {2, 3}, o3[3] = {2, 3, 2};
    const double tv[6] = {1, 2, 3, 4, 5, 6}, iv[6] = {0, 1, 2, 2, 3, 0};
    clai_tensor *t16 = upload(ctx, CLAI_DTYPE_F16, 2, ts, tv), *index = upload(ctx, CLAI_DTYPE_I32, 2, i2, iv);
    clai_tensor *out = clait_tensor(ctx, CLAI_DTYPE_F16, 3, o3);
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "index[4] = 3", clai_gather_rows(ctx, out, t16, index));
    double got[12];
    const double want[12] = {1, 2, 3, 4, 5, 6, 5, 6, 0, 0, 1, 2};
    download(ctx, out, got);
    expect_exact("f16 gather with a bad index", got, want, 12);
    clai_tensor_free(t16);
    clai_tensor_free(index);
    clai_tensor_free(out);
  }
  /* a table of zero columns: nothing is gathered, yet a bad index is still reported (the host checks) */
  {
    const int64_t ts[2] = {4, 0}, i2[2] = {2, 3}, o3[3] = {2, 3, 0};
    const double good[6] = {0, 1, 2, 3, 3, 0}, bad[6] = {0, 1, 2, 3, 7, 0};
    clai_tensor *t0 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, ts), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 3, o3);
    clai_tensor *ig = upload(ctx, CLAI_DTYPE_I32, 2, i2, good), *ib = upload(ctx, CLAI_DTYPE_I32, 2, i2, bad);
    CLAIT_OK(ctx, clai_gather_rows(ctx, out, t0, ig));
    CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "index[4] = 7 is outside [0, 4)", clai_gather_rows(ctx, out, t0, ib));
    clai_tensor *list[] = {t0, out, ig, ib};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  }
  clai_tensor_free(table);
  clai_tensor_free(base);
  check_gather(ctx, &(clait_rng){42}, CLAI_DTYPE_F32, 7, 3, 1, is, 0); /* usable afterwards */
}

static void test_gather_errors(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t ts[2] = {5, 4}, t3[3] = {5, 4, 1}, is[1] = {3}, os[2] = {3, 4}, bad[2] = {3, 5}, o1[1] = {4};
  clai_tensor *table = clait_tensor(ctx, CLAI_DTYPE_F32, 2, ts), *table3 = clait_tensor(ctx, CLAI_DTYPE_F32, 3, t3);
  clai_tensor *index = clait_tensor(ctx, CLAI_DTYPE_I32, 1, is), *findex = clait_tensor(ctx, CLAI_DTYPE_F32, 1, is);
  clai_tensor *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, os), *out16 = clait_tensor(ctx, CLAI_DTYPE_F16, 2, os);
  clai_tensor *outbad = clait_tensor(ctx, CLAI_DTYPE_F32, 2, bad), *out1 = clait_tensor(ctx, CLAI_DTYPE_F32, 1, o1);
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "must be i32", clai_gather_rows(ctx, out, table, findex));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "must match", clai_gather_rows(ctx, out16, table, index));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "2-d", clai_gather_rows(ctx, out, table3, index));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "cols", clai_gather_rows(ctx, outbad, table, index));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "plus one last dim", clai_gather_rows(ctx, out1, table, index));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "is NULL", clai_gather_rows(ctx, out, NULL, index));
  clai_tensor *tv = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(table, &tv, 0, 0, 3, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_gather_rows(ctx, tv, table, index));
  clai_tensor *list[] = {table, table3, index, findex, out, out16, outbad, out1, tv};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  check_gather(ctx, &(clait_rng){43}, CLAI_DTYPE_F16, 7, 3, 1, is, 1);
}

/* ---- one-hot ---------------------------------------------------------------------------------------- */

static void check_one_hot(clai_context *ctx, clait_rng *r, clai_dtype dt, int nd, const int64_t *lsh, int64_t ncls,
                          int strided_out) {
  size_t nl = count(nd, lsh), no = nl * (size_t)ncls;
  double *lv = malloc(nl * sizeof *lv + 8), *got = malloc(no * sizeof *got + 8), *want = malloc(no * sizeof *want + 8);
  for (size_t i = 0; i < nl; i++) /* some labels out of range: -1, ncls, a big one */
    lv[i] = (double)((int64_t)(clait_next(r) % (uint64_t)(ncls + 3)) - 1);
  if (nl > 2) lv[nl - 1] = INT_MAX;
  clai_tensor *labels = upload(ctx, CLAI_DTYPE_I32, nd, lsh, lv), *obase = NULL, *out = NULL;
  int64_t osh[CLAI_MAX_DIMS];
  memcpy(osh, lsh, sizeof osh[0] * (size_t)nd);
  osh[nd] = ncls;
  if (strided_out) { /* out as the transpose of a tensor with the last two dims swapped */
    int64_t tsh[CLAI_MAX_DIMS];
    memcpy(tsh, osh, sizeof tsh);
    tsh[nd] = osh[nd - 1];
    tsh[nd - 1] = osh[nd];
    obase = clait_tensor(ctx, dt, nd + 1, tsh);
    CLAIT_OK(ctx, clai_tensor_transpose(obase, &out, -1, -2));
  } else {
    out = clait_tensor(ctx, dt, nd + 1, osh);
  }
  CLAIT_OK(ctx, clai_one_hot(ctx, out, labels));
  download(ctx, out, got);
  for (size_t i = 0; i < nl; i++)
    for (int64_t c = 0; c < ncls; c++) want[i * (size_t)ncls + (size_t)c] = lv[i] == (double)c ? 1 : 0;
  char what[80];
  snprintf(what, sizeof what, "one-hot %s, %zu labels, %lld classes", clai_dtype_name(dt), nl, (long long)ncls);
  expect_exact(what, got, want, no);
  clai_tensor_free(labels);
  clai_tensor_free(out);
  clai_tensor_free(obase);
  free(lv);
  free(got);
  free(want);
}

static void test_one_hot(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xddddeeeeffff0000ULL};
  const int64_t l1[1] = {7}, l2[2] = {3, 33}, l3[1] = {CLAIT_SIZE(1000, 200)}, l0[1] = {1}; /* small: 200 */
  for (size_t di = 0; di < 3; di++) {
    check_one_hot(ctx, &r, all_dtypes[di], 1, l1, 1, 0);
    check_one_hot(ctx, &r, all_dtypes[di], 1, l1, 10, 1);
    check_one_hot(ctx, &r, all_dtypes[di], 2, l2, 31, 0);
    check_one_hot(ctx, &r, all_dtypes[di], 2, l2, 7, 1);
    check_one_hot(ctx, &r, all_dtypes[di], 1, l3, 129, 0);
    check_one_hot(ctx, &r, all_dtypes[di], 1, l0, 1000, 0);
  }
  /* errors */
  const int64_t ls[1] = {4}, os[2] = {4, 3}, bad[2] = {5, 3};
  clai_tensor *lf = clait_tensor(ctx, CLAI_DTYPE_F32, 1, ls), *li = clait_tensor(ctx, CLAI_DTYPE_I32, 1, ls);
  clai_tensor *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, os), *ob = clait_tensor(ctx, CLAI_DTYPE_F32, 2, bad);
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "must be i32", clai_one_hot(ctx, out, lf));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "plus one last dim", clai_one_hot(ctx, ob, li));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "plus one last dim", clai_one_hot(ctx, li, li));
  clai_tensor_free(lf);
  clai_tensor_free(li);
  clai_tensor_free(out);
  clai_tensor_free(ob);
  check_one_hot(ctx, &r, CLAI_DTYPE_F32, 1, l1, 5, 0);
}

/* ---- where ------------------------------------------------------------------------------------------- */

static void check_where(clai_context *ctx, clait_rng *r, clai_dtype dt, clai_dtype mdt, int ndm, const int64_t *shm,
                        int nda, const int64_t *sha, int ndb, const int64_t *shb, int ndo, const int64_t *sho) {
  size_t nm = count(ndm, shm), na = count(nda, sha), nb = count(ndb, shb), no = count(ndo, sho);
  double *m = malloc(nm * sizeof *m + 8), *a = malloc(na * sizeof *a + 8), *b = malloc(nb * sizeof *b + 8),
         *got = malloc(no * sizeof *got + 8), *want = malloc(no * sizeof *want + 8);
  for (size_t i = 0; i < nm; i++) { /* zeros, ones, negatives, fractions (nonzero), -0.0 (zero) */
    int k = (int)(clait_next(r) % 5);
    m[i] = k == 0 ? 0.0 : k == 1 ? 1.0 : k == 2 ? -3.0 : k == 3 ? 0.5 : -0.0;
    if (mdt == CLAI_DTYPE_I32 && k == 3) m[i] = 7;
  }
  randv(r, a, na);
  randv(r, b, nb);
  for (size_t i = 0; i < na; i++) a[i] = as_dt(dt, a[i]);
  for (size_t i = 0; i < nb; i++) b[i] = as_dt(dt, b[i]);
  clai_tensor *tm = upload(ctx, mdt, ndm, shm, m), *ta = upload(ctx, dt, nda, sha, a), *tb = upload(ctx, dt, ndb, shb, b);
  clai_tensor *to = clait_tensor(ctx, dt, ndo, sho);
  CLAIT_OK(ctx, clai_where(ctx, to, tm, ta, tb));
  download(ctx, to, got);
  /* where output element i reads each (broadcast) input */
  for (size_t i = 0; i < no; i++) {
    const int nds[3] = {ndm, nda, ndb};
    const int64_t *shs[3] = {shm, sha, shb};
    size_t pos[3];
    for (int k = 0; k < 3; k++) {
      size_t rem = i, o = 0, s = 1;
      for (int d = ndo - 1; d >= 0; d--) {
        size_t c = rem % (size_t)sho[d];
        rem /= (size_t)sho[d];
        int dk = nds[k] - ndo + d;
        if (dk >= 0) {
          if (shs[k][dk] != 1) o += c * s;
          s *= (size_t)shs[k][dk];
        }
      }
      pos[k] = o;
    }
    want[i] = m[pos[0]] != 0 ? a[pos[1]] : b[pos[2]];
  }
  char what[80];
  snprintf(what, sizeof what, "where %s with a %s mask, %zu elements", clai_dtype_name(dt), clai_dtype_name(mdt), no);
  expect_exact(what, got, want, no);
  clai_tensor_free(tm);
  clai_tensor_free(ta);
  clai_tensor_free(tb);
  clai_tensor_free(to);
  free(m);
  free(a);
  free(b);
  free(got);
  free(want);
}

static void test_where(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x1234123412341234ULL};
  static const struct {
    int ndm, nda, ndb, ndo;
    int64_t m[3], a[3], b[3], o[3];
  } cases[] = {
      {1, 1, 1, 1, {7}, {7}, {7}, {7}},
      {1, 1, 1, 1, {1000}, {1000}, {1000}, {1000}},
      {2, 1, 0, 2, {3, 31}, {31}, {0}, {3, 31}},         /* a bias row, b a scalar */
      {2, 3, 3, 3, {1, 129}, {2, 1, 129}, {2, 5, 1}, {2, 5, 129}},
      {0, 2, 2, 2, {0}, {4, 4}, {4, 4}, {4, 4}},          /* a scalar mask */
      {3, 2, 1, 3, {2, 7, 1}, {7, 33}, {33}, {2, 7, 33}},
  };
  const clai_dtype mdts[3] = {CLAI_DTYPE_I32, CLAI_DTYPE_F32, CLAI_DTYPE_F16};
  for (size_t di = 0; di < 3; di++)
    for (size_t mi = 0; mi < 3; mi++)
      for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_where(ctx, &r, all_dtypes[di], mdts[mi], cases[c].ndm, cases[c].m, cases[c].nda, cases[c].a, cases[c].ndb,
                    cases[c].b, cases[c].ndo, cases[c].o);
}

/* Strided inputs, a strided output and in place (out = a), then the errors. */
static void test_where_views_and_errors(void **state) {
  clai_context *ctx = CTX(state);
  enum { R = 5, C = 7 };
  double mv[C * R], av[R * 2 * C], got[R * C], want[R * C];
  for (int i = 0; i < C * R; i++) mv[i] = (i * 7) % 3 == 0;
  for (int i = 0; i < R * 2 * C; i++) av[i] = i - 30;
  const int64_t ms[2] = {C, R}, as[2] = {R, 2 * C}, os[2] = {R, C}, bs[1] = {C};
  const double bv[C] = {100, 101, 102, 103, 104, 105, 106};
  clai_tensor *m0 = upload(ctx, CLAI_DTYPE_I32, 2, ms, mv), *a0 = upload(ctx, CLAI_DTYPE_F32, 2, as, av);
  clai_tensor *b = upload(ctx, CLAI_DTYPE_F32, 1, bs, bv), *m = NULL, *a = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(m0, &m, 0, 1));    /* [R, C] strided */
  CLAIT_OK(ctx, clai_tensor_slice(a0, &a, 1, 1, 2 * C, 2)); /* [R, C] columns 1, 3, .. */
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) want[i * C + j] = mv[j * R + i] != 0 ? av[i * 2 * C + 2 * j + 1] : bv[j];
  /* in place: a = where(m, a, b) on the strided view */
  CLAIT_OK(ctx, clai_where(ctx, a, m, a, b));
  download(ctx, a, got);
  expect_exact("where in place on strided views", got, want, R * C);
  double whole[R * 2 * C];
  download(ctx, a0, whole);
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++)
      if (whole[i * 2 * C + 2 * j] != av[i * 2 * C + 2 * j]) fail_msg("where wrote outside its output view");
  /* errors */
  clai_tensor *o = clait_tensor(ctx, CLAI_DTYPE_F32, 2, os), *o16 = clait_tensor(ctx, CLAI_DTYPE_F16, 2, os), *bad = NULL;
  const int64_t bads[1] = {4};
  bad = clait_tensor(ctx, CLAI_DTYPE_F32, 1, bads);
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "dtypes differ", clai_where(ctx, o16, m, a, b));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "does not broadcast", clai_where(ctx, o, m, a, bad));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "mask", clai_where(ctx, o, bad, a, b));
  clai_tensor *shifted = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(a0, &shifted, 1, 0, 2 * C - 1, 2)); /* overlaps a's buffer, not element for element */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_where(ctx, shifted, m, a, b));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "is NULL", clai_where(ctx, o, NULL, a, b));
  CLAIT_OK(ctx, clai_where(ctx, o, m, a, b)); /* usable */
  download(ctx, o, got);
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++)
      want[i * C + j] = mv[j * R + i] != 0 ? want[i * C + j] : bv[j];
  expect_exact("where after errors", got, want, R * C);
  clai_tensor *list[] = {m0, a0, b, m, a, o, o16, bad, shifted};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
}

static void test_concat_contiguous_errors(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t s1[2] = {2, 3}, s2[2] = {2, 4}, s3[2] = {3, 3}, so[2] = {2, 7};
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s1), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s2), *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s3);
  clai_tensor *b16 = clait_tensor(ctx, CLAI_DTYPE_F16, 2, s2), *out = clait_tensor(ctx, CLAI_DTYPE_F32, 2, so), *part = NULL;
  const clai_tensor *ab[2] = {a, b}, *ac[2] = {a, c}, *a16[2] = {a, b16}, *aa[2] = {a, a}, *an[2] = {a, NULL};
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "outside axis", clai_concat(ctx, out, 2, ac, 1));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "xs[1] is f16", clai_concat(ctx, out, 2, a16, 1));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "add up to 6", clai_concat(ctx, out, 2, aa, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "axis 2 out of range", clai_concat(ctx, out, 2, ab, 2));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "axis -3 out of range", clai_concat(ctx, out, 2, ab, -3));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "at least one", clai_concat(ctx, out, 0, ab, 1));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "xs[1] is NULL", clai_concat(ctx, out, 2, an, 1));
  CLAIT_OK(ctx, clai_tensor_slice(out, &part, 1, 0, 3, 1));
  const clai_tensor *pb[2] = {part, b};
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps xs[0]", clai_concat(ctx, out, 2, pb, 1));
  clai_tensor *cc = (clai_tensor *)1;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "x is NULL", clai_contiguous(ctx, &cc, NULL));
  assert_null(cc);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_contiguous(ctx, NULL, a));
  /* usable: a real concat */
  const double av[6] = {1, 2, 3, 4, 5, 6}, bv[8] = {7, 8, 9, 10, 11, 12, 13, 14};
  write_vals(ctx, a, av);
  write_vals(ctx, b, bv);
  CLAIT_OK(ctx, clai_concat(ctx, out, 2, ab, -1));
  double got[14];
  const double want[14] = {1, 2, 3, 7, 8, 9, 10, 4, 5, 6, 11, 12, 13, 14};
  download(ctx, out, got);
  expect_exact("concat after errors", got, want, 14);
  clai_tensor *list[] = {a, b, c, b16, out, part};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_contiguous, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_concat, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_concat_contiguous_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather_index_view, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather_out_of_range, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_one_hot, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_where, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_where_views_and_errors, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("layout", tests, 1);
}
