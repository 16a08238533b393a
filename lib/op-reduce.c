/* op-reduce.c - reductions along one axis or over everything: sum, mean, max, min, var, argmax, argmin, and
 * clai_sum_to (cl/reduce.cl). The host turns (x, axis) into rows: a clai_index over the dims that remain
 * and the length and stride of the reduced axis. Long rows are cut into chunks reduced in parallel and
 * merged in order by a second kernel, so a reduction over everything still uses every core. With
 * ctx->rows_wg (CLAI_ROWS, GPUs) the chunks are reduced by groups of work-items instead (launch_wg). */
#include <limits.h>
#include <string.h>

#include "internal.h"

/* Op codes of cl/reduce.cl (CLAI_R_*): the public clai_reduce_op values, then the arg ops. */
#define R_ARGMAX 5
#define R_ARGMIN 6

static const char *const op_names[] = {"sum", "mean", "max", "min", "var", "argmax", "argmin"};

/* Elements per chunk: long enough that the second kernel is cheap, short enough that a chunk stays in
 * cache for the variance's second pass, and that a GPU gets enough work-items. */
static int64_t chunk_cap(const clai_context *ctx) { return ctx->caps.is_cpu ? 2048 : 1024; }

int clai__reduce_cols_tile(const clai__devcaps *caps) { return caps->is_cpu && !caps->lanes_cpu ? 512 : 32; }

/* The chunks of clai_reduce_cols (a work-item per tile of neighbouring rows and chunk of the reduced axis):
 * the axis is cut only as far as needed for about four work-items per compute unit (so that the cores stay
 * busy to the end), never below 16 steps a chunk; a variance, which walks its chunk twice, keeps a chunk's
 * tile within 256 KB so that the second walk finds it in cache; a device with a loop limit (llvmpipe) gets
 * chunks within it. */
static void cols_split(const clai_context *ctx, int op, int64_t nrows, int64_t w, int64_t n, cl_long *chunk,
                       cl_int *nsplit) {
  const int64_t tile = clai__reduce_cols_tile(&ctx->caps), tiles = nrows / w * ((w + tile - 1) / tile);
  const int64_t want = 4 * (int64_t)ctx->caps.compute_units;
  int64_t s = tiles >= want ? 1 : (want + tiles - 1) / tiles, most = (n + 15) / 16;
  if (s > most) s = most;
  if (s < 1) s = 1;
  int64_t c = (n + s - 1) / s;
  const int64_t var_cap = (256 * 1024 / 4) / (w < tile ? w : tile), least = (n + INT_MAX - 1) / INT_MAX;
  if (op == CLAI_REDUCE_VAR && c > var_cap) c = var_cap;
  /* llvmpipe: every element of the chunk runs the loops over the tile's vectors and tail (twice for a
   * variance); with chunks of 65535, a sum over 1000000 rows of 2 columns gave 1677600 and 0 there */
  const int64_t cols = w < tile ? w : tile, cap = clai__loop_cap(ctx, 2 * (cols / 8 + cols % 8 + 2));
  if (c > cap) c = cap;
  if (c < least) c = least; /* nsplit fits an int */
  if (c < 1) c = 1;
  *chunk = c;
  *nsplit = n > 0 ? (cl_int)((n + c - 1) / c) : 1; /* an empty axis: one chunk of nothing */
}

/* A stack copy of t with dim `axis` removed (a header only, never a live tensor). */
static void drop_dim(clai_tensor *v, const clai_tensor *t, int axis) {
  *v = *t;
  v->ndim = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (i == axis) continue;
    v->shape[v->ndim] = t->shape[i];
    v->strides[v->ndim] = t->strides[i];
    v->ndim++;
  }
}

/* The work-group variants (ctx->rows_wg; cl/reduce.cl): clai_reduce_rows_wg with a group of lanes per
 * (chunk, row), or for rows that are neighbours in memory clai_reduce_cols_wg with a block of up to 32
 * neighbouring rows per work-group, the rest of the group spread along the reduced axis. */
static clai_status launch_wg(clai_context *ctx, const char *fn, int cols, const clai__index *ix, cl_mem out, cl_mem x,
                             cl_mem part, cl_long n, cl_long xs, cl_long chunk, cl_int nsplit, cl_int op, cl_int corr,
                             cl_int xf16, cl_int of16) {
  const int kernel = cols ? CLAI__K_REDUCE_COLS_WG : CLAI__K_REDUCE_ROWS_WG;
  size_t local, global;
  cl_int shape; /* lanes per (chunk, row), or rows per block */
  clai_status st;
  if (cols) {
    if ((st = clai__rows_local(ctx, kernel, &local)) != CLAI_OK) return st;
    const int64_t w = ix->shape[ix->ndim - 1];
    size_t cw = 1;
    while (cw < 32 && cw < local && (int64_t)cw < w) cw *= 2;
    /* no more lanes along the reduced axis than a power of two covering its chunk: a short axis left most of
     * a group of 256 idle through every step of the tree (and Oclgrind simulates each of them) */
    while (local > cw && (int64_t)(local / cw / 2) >= chunk) local /= 2;
    uint64_t blocks, items;
    if (!clai__mul_ok((uint64_t)(ix->numel / w), (uint64_t)((w + (int64_t)cw - 1) / (int64_t)cw), &blocks) ||
        !clai__mul_ok(blocks, (uint64_t)nsplit, &blocks) || !clai__mul_ok(blocks, local, &items) ||
        items > (uint64_t)SIZE_MAX)
      return clai__error(ctx, CLAI_E_OVERFLOW, "%s: %lld rows of %lld elements overflow", fn, (long long)ix->numel,
                         (long long)n);
    shape = (cl_int)cw;
    global = (size_t)items;
  } else if ((st = clai__rows_shape(ctx, kernel, chunk, ix->numel * nsplit, &shape, &local, &global)) != CLAI_OK) {
    return st;
  }
  return clai__launch_local(ctx, kernel, &global, &local, 13, CLAI__ARG(out), CLAI__ARG(x), CLAI__ARG(part),
                            CLAI__IDX(*ix), CLAI__ARG(n), CLAI__ARG(xs), CLAI__ARG(chunk), CLAI__ARG(nsplit),
                            CLAI__ARG(op), CLAI__ARG(corr), CLAI__ARG(xf16), CLAI__ARG(of16), CLAI__ARG(shape));
}

/* Launches the reduction of rows: out_rows and x_rows have the same shape (the rows); each row is n
 * elements of x with stride xs from x_rows' element. */
static clai_status launch_rows(clai_context *ctx, const char *fn, int op, const clai_tensor *out_rows,
                               const clai_tensor *x_rows, int64_t n, int64_t xs, int corr) {
  clai__index ix;
  const clai_tensor *ops[2] = {out_rows, x_rows};
  clai__index_build(&ix, 2, ops);
  const cl_long nrows = ix.numel;
  if (nrows == 0) return CLAI_OK;
  const cl_int xf16 = x_rows->dtype == CLAI_DTYPE_F16;
  /* Rows that are neighbours in memory (a strided reduced axis, unit stride across rows): a tile of
   * neighbouring rows per work-item (clai_reduce_cols; cols_split cuts the reduced axis), or on GPUs a block
   * of them per work-group (clai_reduce_cols_wg). */
  const int cols = xs != 1 && ix.ndim >= 1 && ix.stride[1][ix.ndim - 1] == 1;
  int64_t cap = cols && ctx->caps.is_cpu ? 64 : chunk_cap(ctx);
  /* On a CPU without a loop limit, rows that already give every core several work-groups are not cut:
   * cutting them only added the merge and made each work-group read pieces of rows far apart ([1024, 4096]
   * summed over its rows ran at 0.26x of the C loop). Fewer rows are cut into no more chunks than give every
   * core four work-groups: a sum of everything of [4096, 1024] in 512 chunks rather than 2048 of 2048
   * elements spent 0.006 ms instead of 0.022 in the merge, whose one work-item walks the chunks in order
   * (`clai bench ops`: 0.97-0.98x the C loop, was 0.92x; 2-core AVX-512 VM). A variance keeps its chunks
   * within 256 KB, which its second pass over a chunk then finds in cache. */
  const int64_t groups_cpu = (int64_t)ctx->local_1d * 4 * ctx->caps.compute_units;
  if (!cols && !ctx->rows_wg && ctx->caps.is_cpu && ctx->caps.loop_limit == 0) {
    const int64_t per = (n * nrows + groups_cpu - 1) / groups_cpu; /* elements per work-item for that many */
    if (nrows >= groups_cpu)
      cap = op == CLAI_REDUCE_VAR ? 65536 : INT64_MAX;
    else if (per > cap)
      cap = op == CLAI_REDUCE_VAR && per > 65536 ? 65536 : per;
  }
  cl_int nsplit = 1;
  cl_long chunk = n > 0 ? n : 1;
  if (cols && !ctx->rows_wg) {
    cols_split(ctx, op, ix.numel, ix.shape[ix.ndim - 1], n, &chunk, &nsplit);
  } else if (n > cap) {
    int64_t s = (n + cap - 1) / cap;
    chunk = (n + s - 1) / s;
    chunk = (chunk + 7) / 8 * 8; /* whole vectors per chunk */
    nsplit = (cl_int)((n + chunk - 1) / chunk);
  }
  const cl_long cn = n, cxs = xs;
  const cl_int cop = op, ccorr = corr, of16 = out_rows->dtype == CLAI_DTYPE_F16;
  uint64_t items, cells;
  if (!clai__mul_ok((uint64_t)nrows, (uint64_t)nsplit, &items) || !clai__mul_ok(items, 2, &cells) ||
      items > (uint64_t)SIZE_MAX)
    return clai__error(ctx, CLAI_E_OVERFLOW, "%s: %lld rows of %lld elements overflow", fn, (long long)nrows,
                       (long long)n);
  size_t global = (size_t)items;
  if (cols && !ctx->rows_wg) {
    const int64_t w = ix.shape[ix.ndim - 1], tile = clai__reduce_cols_tile(&ctx->caps);
    global = (size_t)(nrows / w * ((w + tile - 1) / tile) * nsplit); /* CLAI_COLT rows per work-item */
  }
  const int kernel = cols ? CLAI__K_REDUCE_COLS : CLAI__K_REDUCE_ROWS;
  if (ctx->rows_wg && nsplit == 1)
    return launch_wg(ctx, fn, cols, &ix, out_rows->buf->mem, x_rows->buf->mem, x_rows->buf->mem, cn, cxs, chunk,
                     nsplit, cop, ccorr, xf16, of16);
  if (cols && nsplit == 1)
    return clai__launch(ctx, kernel, &global, 12, CLAI__ARG(out_rows->buf->mem), CLAI__ARG(x_rows->buf->mem),
                        CLAI__ARG(x_rows->buf->mem), CLAI__IDX(ix), CLAI__ARG(cn), CLAI__ARG(cxs), CLAI__ARG(chunk),
                        CLAI__ARG(nsplit), CLAI__ARG(cop), CLAI__ARG(ccorr), CLAI__ARG(xf16), CLAI__ARG(of16));
  if (nsplit == 1)
    return clai__launch(ctx, CLAI__K_REDUCE_ROWS, &global, 12, CLAI__ARG(out_rows->buf->mem),
                        CLAI__ARG(x_rows->buf->mem), CLAI__ARG(x_rows->buf->mem), CLAI__IDX(ix), CLAI__ARG(cn),
                        CLAI__ARG(cxs), CLAI__ARG(chunk), CLAI__ARG(nsplit), CLAI__ARG(cop), CLAI__ARG(ccorr),
                        CLAI__ARG(xf16), CLAI__ARG(of16));
  clai_tensor *part = NULL;
  int64_t pshape[1] = {(int64_t)cells};
  clai_status st = clai_tensor_init(ctx, &part, CLAI_DTYPE_F32, 1, pshape);
  if (st != CLAI_OK) return st;
  if (ctx->rows_wg)
    st = launch_wg(ctx, fn, cols, &ix, out_rows->buf->mem, x_rows->buf->mem, part->buf->mem, cn, cxs, chunk, nsplit,
                   cop, ccorr, xf16, of16);
  else if (cols)
    st = clai__launch(ctx, kernel, &global, 12, CLAI__ARG(out_rows->buf->mem), CLAI__ARG(x_rows->buf->mem),
                      CLAI__ARG(part->buf->mem), CLAI__IDX(ix), CLAI__ARG(cn), CLAI__ARG(cxs), CLAI__ARG(chunk),
                      CLAI__ARG(nsplit), CLAI__ARG(cop), CLAI__ARG(ccorr), CLAI__ARG(xf16), CLAI__ARG(of16));
  else
    st = clai__launch(ctx, kernel, &global, 12, CLAI__ARG(out_rows->buf->mem), CLAI__ARG(x_rows->buf->mem),
                      CLAI__ARG(part->buf->mem), CLAI__IDX(ix), CLAI__ARG(cn), CLAI__ARG(cxs), CLAI__ARG(chunk),
                      CLAI__ARG(nsplit), CLAI__ARG(cop), CLAI__ARG(ccorr), CLAI__ARG(xf16), CLAI__ARG(of16));
  if (st == CLAI_OK) {
    size_t g2 = (size_t)nrows;
    st = clai__launch(ctx, CLAI__K_REDUCE_MERGE, &g2, 9, CLAI__ARG(out_rows->buf->mem), CLAI__ARG(part->buf->mem),
                      CLAI__IDX(ix), CLAI__ARG(cn), CLAI__ARG(chunk), CLAI__ARG(nsplit), CLAI__ARG(cop),
                      CLAI__ARG(ccorr), CLAI__ARG(of16));
  }
  /* The queue is in order: a later op that reuses the buffer runs after these kernels. */
  clai_tensor_free(part);
  return st;
}

/* The checks and the launch shared by every reduction; `op` is a CLAI_R_* code. */
static clai_status reduce(clai_context *ctx, const char *fn, int op, clai_tensor *out, const clai_tensor *x, int axis,
                          int keepdim, int corr) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, out, fn, "out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s != CLAI_OK) return s;
  const char *name = op_names[op];
  const int arg = op == R_ARGMAX || op == R_ARGMIN;
  if (x->dtype != CLAI_DTYPE_F32 && x->dtype != CLAI_DTYPE_F16)
    return clai__error(ctx, CLAI_E_DTYPE, "%s(%s): x is %s; only f32 and f16 are reduced", fn, name,
                       clai_dtype_name(x->dtype));
  if (arg && out->dtype != CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: out is %s; indices need an i32 output", fn, clai_dtype_name(out->dtype));
  if (!arg && out->dtype != CLAI_DTYPE_F32 && out->dtype != CLAI_DTYPE_F16)
    return clai__error(ctx, CLAI_E_DTYPE, "%s(%s): out is %s; it must be f32 or f16", fn, name,
                       clai_dtype_name(out->dtype));
  const int all = axis == CLAI_AXIS_ALL;
  if (!all && (axis < -x->ndim || axis >= x->ndim))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s(%s): axis %d is out of range for x of %d dims", fn, name, axis,
                       x->ndim);
  if (!all && axis < 0) axis += x->ndim;
  /* the expected output shape */
  int64_t want[CLAI_MAX_DIMS];
  int wn = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (all || i == axis) {
      if (keepdim) want[wn++] = 1;
    } else {
      want[wn++] = x->shape[i];
    }
  }
  int ok = out->ndim == wn;
  for (int i = 0; ok && i < wn; i++) ok = out->shape[i] == want[i];
  char a[160], b[160], c[160], ax[32] = "all axes";
  if (!all) snprintf(ax, sizeof ax, "axis %d", axis);
  if (!ok)
    return clai__error(ctx, CLAI_E_SHAPE, "%s(%s): out is %s; reducing x %s over %s needs %s", fn, name,
                       clai__shape_str(out->ndim, out->shape, a, sizeof a), clai__shape_str(x->ndim, x->shape, b, sizeof b),
                       ax, clai__shape_str(wn, want, c, sizeof c));
  if (clai__tensors_overlap(out, x))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s(%s): out overlaps x", fn, name);
  const int64_t n = all ? clai_tensor_numel(x) : x->shape[axis];
  if (n == 0 && (op == CLAI_REDUCE_MAX || op == CLAI_REDUCE_MIN || arg))
    return clai__error(ctx, CLAI_E_SHAPE, "%s(%s): the reduced axis of x %s is empty; %s has no value", fn, name,
                       clai__shape_str(x->ndim, x->shape, b, sizeof b), name);
  if (arg && n > INT_MAX)
    return clai__error(ctx, CLAI_E_OVERFLOW, "%s: %lld elements along the axis do not fit i32 indices", fn,
                       (long long)n);

  clai_tensor xr, orow;
  if (!all) {
    drop_dim(&xr, x, axis);
    if (keepdim)
      drop_dim(&orow, out, axis);
    else
      orow = *out;
    return launch_rows(ctx, fn, op, &orow, &xr, n, x->strides[axis], corr);
  }
  /* Everything: one row. A strided x is first copied densely (the row must have one stride). */
  orow = *out;
  orow.ndim = 0;
  clai_tensor *dense = NULL;
  const clai_tensor *src = x;
  if (!clai_tensor_is_contiguous(x)) {
    s = clai_tensor_init(ctx, &dense, x->dtype, x->ndim, x->shape);
    if (s == CLAI_OK) s = clai__copy(ctx, dense, x, fn);
    if (s != CLAI_OK) {
      clai_tensor_free(dense);
      return s;
    }
    src = dense;
  }
  xr = *src;
  xr.ndim = 0;
  s = launch_rows(ctx, fn, op, &orow, &xr, n, 1, corr);
  clai_tensor_free(dense);
  return s;
}

clai_status clai_reduce(clai_context *ctx, clai_reduce_op op, clai_tensor *out, const clai_tensor *x, int axis,
                        int keepdim) {
  if (ctx != NULL && ((int)op < 0 || (int)op > CLAI_REDUCE_VAR))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "clai_reduce: %d is not a clai_reduce_op", (int)op);
  return reduce(ctx, "clai_reduce", (int)op, out, x, axis, keepdim, 0);
}

clai_status clai_var(clai_context *ctx, clai_tensor *out, const clai_tensor *x, int axis, int keepdim,
                     int correction) {
  if (ctx != NULL && correction < 0)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "clai_var: correction %d is negative", correction);
  return reduce(ctx, "clai_var", CLAI_REDUCE_VAR, out, x, axis, keepdim, correction);
}

clai_status clai_argmax(clai_context *ctx, clai_tensor *out, const clai_tensor *x, int axis, int keepdim) {
  return reduce(ctx, "clai_argmax", R_ARGMAX, out, x, axis, keepdim, 0);
}

clai_status clai_argmin(clai_context *ctx, clai_tensor *out, const clai_tensor *x, int axis, int keepdim) {
  return reduce(ctx, "clai_argmin", R_ARGMIN, out, x, axis, keepdim, 0);
}

clai_status clai_sum_to(clai_context *ctx, clai_tensor *out, const clai_tensor *x) {
  const char *fn = "clai_sum_to";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, out, fn, "out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s != CLAI_OK) return s;
  if (x->dtype == CLAI_DTYPE_I32 || out->dtype == CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: x is %s and out %s; both must be f32 or f16", fn,
                       clai_dtype_name(x->dtype), clai_dtype_name(out->dtype));
  /* out's shape aligned to x's dims; a dim is summed where out has 1 (or nothing) and x has more. */
  int64_t ost[CLAI_MAX_DIMS], oshape[CLAI_MAX_DIMS];
  int sum_dim[CLAI_MAX_DIMS], nsum = 0;
  int ok = out->ndim <= x->ndim;
  for (int i = 0; ok && i < x->ndim; i++) {
    int oi = out->ndim - x->ndim + i;
    oshape[i] = oi < 0 ? 1 : out->shape[oi];
    ost[i] = oi < 0 ? 0 : out->strides[oi];
    if (oshape[i] == x->shape[i]) continue;
    if (oshape[i] != 1) ok = 0;
    else sum_dim[nsum++] = i;
  }
  char a[160], b[160];
  if (!ok)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: out %s does not broadcast to x %s", fn,
                       clai__shape_str(out->ndim, out->shape, a, sizeof a), clai__shape_str(x->ndim, x->shape, b, sizeof b));
  if (clai__tensors_overlap(out, x)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps x", fn);
  if (nsum == 0) return clai__copy(ctx, out, x, fn);
  /* x and out (seen with x's number of dims: leading dims of size 1, stride 0) with neighbouring summed dims
   * merged where x's layout allows, so that e.g. a contiguous [B, T, C] -> [C] is one pass over [B*T, C]. */
  clai_tensor xm = *x, ov = *out;
  int nd = 0;
  nsum = 0;
  for (int i = 0; i < x->ndim; i++) {
    const int summed = oshape[i] != x->shape[i];
    if (summed && nsum > 0 && sum_dim[nsum - 1] == nd - 1 && xm.strides[nd - 1] == x->strides[i] * x->shape[i]) {
      xm.shape[nd - 1] *= x->shape[i];
      xm.strides[nd - 1] = x->strides[i];
      continue;
    }
    xm.shape[nd] = x->shape[i];
    xm.strides[nd] = x->strides[i];
    ov.shape[nd] = oshape[i];
    ov.strides[nd] = ost[i];
    if (summed) sum_dim[nsum++] = nd;
    nd++;
  }
  xm.ndim = ov.ndim = nd;
  /* Sum one dim at a time, innermost first, into f32 temporaries of x's shape with the summed dims 1;
   * the last step writes out. */
  const clai_tensor *cur = &xm;
  clai_tensor *tmp[2] = {NULL, NULL};
  int64_t shape[CLAI_MAX_DIMS];
  memcpy(shape, xm.shape, sizeof shape);
  for (int k = nsum - 1; k >= 0 && s == CLAI_OK; k--) {
    const int d = sum_dim[k];
    shape[d] = 1;
    clai_tensor *dst = &ov;
    if (k > 0) {
      clai_tensor_free(tmp[k & 1]);
      tmp[k & 1] = NULL;
      s = clai_tensor_init(ctx, &tmp[k & 1], CLAI_DTYPE_F32, nd, shape);
      if (s != CLAI_OK) break;
      dst = tmp[k & 1];
    }
    clai_tensor xr, orow;
    drop_dim(&xr, cur, d);
    drop_dim(&orow, dst, d);
    s = launch_rows(ctx, fn, CLAI_REDUCE_SUM, &orow, &xr, cur->shape[d], cur->strides[d], 0);
    cur = dst;
  }
  clai_tensor_free(tmp[0]);
  clai_tensor_free(tmp[1]);
  return s;
}
