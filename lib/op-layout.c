/* op-layout.c - clai_contiguous, clai_concat, clai_gather_rows, clai_one_hot, clai_where (cl/layout.cl; the
 * copies go through the strided copy kernel of op-copy.c). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

clai_status clai_contiguous(clai_context *ctx, clai_tensor **out, clai_tensor *x) {
  const char *fn = "clai_contiguous";
  if (out != NULL) *out = NULL;
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (out == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out is NULL", fn);
  clai_status st = clai__check_tensor(ctx, x, fn, "x");
  if (st != CLAI_OK) return st;
  if (clai_tensor_is_contiguous(x)) {
    int64_t strides[CLAI_MAX_DIMS];
    clai__dense_strides(x->ndim, x->shape, strides);
    return clai_tensor_view(x, out, x->ndim, x->shape, strides, 0);
  }
  clai_tensor *t = NULL;
  st = clai_tensor_init(ctx, &t, x->dtype, x->ndim, x->shape);
  if (st == CLAI_OK) st = clai__copy(ctx, t, x, fn);
  if (st != CLAI_OK) {
    clai_tensor_free(t);
    return st;
  }
  *out = t;
  return CLAI_OK;
}

clai_status clai_concat(clai_context *ctx, clai_tensor *out, int n, const clai_tensor *const *xs, int axis) {
  const char *fn = "clai_concat";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status st = clai__check_out(ctx, out, fn, "out");
  if (st != CLAI_OK) return st;
  if (n < 1 || xs == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: n is %d (at least one input needed)", fn, n);
  int ax = axis < 0 ? axis + out->ndim : axis;
  if (ax < 0 || ax >= out->ndim)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: axis %d out of range for a %d-d output", fn, axis, out->ndim);
  char a[160], b[160], what[32];
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    snprintf(what, sizeof what, "xs[%d]", i);
    st = clai__check_tensor(ctx, xs[i], fn, what);
    if (st != CLAI_OK) return st;
    const clai_tensor *x = xs[i];
    if (x->dtype != out->dtype)
      return clai__error(ctx, CLAI_E_DTYPE, "%s: xs[%d] is %s, out is %s; convert with clai_copy", fn, i,
                         clai_dtype_name(x->dtype), clai_dtype_name(out->dtype));
    int same = x->ndim == out->ndim;
    for (int d = 0; same && d < out->ndim; d++) same = d == ax || x->shape[d] == out->shape[d];
    if (!same)
      return clai__error(ctx, CLAI_E_SHAPE, "%s: xs[%d] %s does not match out %s outside axis %d", fn, i,
                         clai__shape_str(x->ndim, x->shape, a, sizeof a),
                         clai__shape_str(out->ndim, out->shape, b, sizeof b), ax);
    if (clai__tensors_overlap(out, x))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps xs[%d] in memory", fn, i);
    total += x->shape[ax];
  }
  if (total != out->shape[ax])
    return clai__error(ctx, CLAI_E_SHAPE, "%s: the inputs add up to %lld along axis %d, out has %lld", fn,
                       (long long)total, ax, (long long)out->shape[ax]);
  /* Each input is copied into a slice of out: a view on the stack (same buffer, narrowed along axis). */
  int64_t at = 0;
  for (int i = 0; i < n; i++) {
    clai_tensor part = *out;
    part.shape[ax] = xs[i]->shape[ax];
    part.offset = out->offset + at * out->strides[ax];
    at += xs[i]->shape[ax];
    st = clai__copy(ctx, &part, xs[i], fn);
    if (st != CLAI_OK) return st;
  }
  return CLAI_OK;
}

/* in as a view with one more trailing dim of size 1 (which broadcasts with stride 0). */
static clai_tensor with_unit_dim(const clai_tensor *in) {
  clai_tensor t = *in;
  t.shape[t.ndim] = 1;
  t.strides[t.ndim] = 0;
  t.ndim++;
  return t;
}

/* Checks that `out` is `in`'s shape plus one last dim (and that there is room for it). */
static clai_status check_plus_one(clai_context *ctx, const char *fn, const clai_tensor *out, const char *oname,
                                  const clai_tensor *in, const char *iname) {
  char a[160], b[160];
  int ok = in->ndim < CLAI_MAX_DIMS && out->ndim == in->ndim + 1;
  for (int d = 0; ok && d < in->ndim; d++) ok = out->shape[d] == in->shape[d];
  if (ok) return CLAI_OK;
  return clai__error(ctx, CLAI_E_SHAPE, "%s: %s %s must be %s %s plus one last dim", fn, oname,
                     clai__shape_str(out->ndim, out->shape, a, sizeof a), iname,
                     clai__shape_str(in->ndim, in->shape, b, sizeof b));
}

clai_status clai_gather_rows(clai_context *ctx, clai_tensor *out, const clai_tensor *table, const clai_tensor *index) {
  const char *fn = "clai_gather_rows";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status st = clai__check_out(ctx, out, fn, "out");
  if (st == CLAI_OK) st = clai__check_tensor_any(ctx, table, fn, "table");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, index, fn, "index");
  if (st != CLAI_OK) return st;
  char a[160];
  if (index->dtype != CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: index is %s, must be i32", fn, clai_dtype_name(index->dtype));
  const int quant = clai_dtype_block(table->dtype) > 1;
  if (quant && out->dtype != CLAI_DTYPE_F32 && out->dtype != CLAI_DTYPE_F16)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: a %s table dequantizes into an f32 or f16 out, not %s", fn,
                       clai_dtype_name(table->dtype), clai_dtype_name(out->dtype));
  if (!quant && table->dtype != out->dtype)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: table is %s, out is %s; they must match", fn,
                       clai_dtype_name(table->dtype), clai_dtype_name(out->dtype));
  if (table->ndim != 2)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: table %s must be 2-d [rows, cols]", fn,
                       clai__shape_str(table->ndim, table->shape, a, sizeof a));
  st = check_plus_one(ctx, fn, out, "out", index, "index");
  if (st != CLAI_OK) return st;
  if (out->shape[out->ndim - 1] != table->shape[1])
    return clai__error(ctx, CLAI_E_SHAPE, "%s: out's last dim is %lld, table has %lld cols", fn,
                       (long long)out->shape[out->ndim - 1], (long long)table->shape[1]);
  if (clai__tensors_overlap(out, table) || clai__tensors_overlap(out, index))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps table or index in memory", fn);
  clai__index ix;
  clai_tensor idx1 = with_unit_dim(index);
  const clai_tensor *ops[2] = {out, &idx1};
  clai__index_build(&ix, 2, ops);
  const int64_t nidx = clai_tensor_numel(index);
  if (ix.numel == 0 && (nidx == 0 || table->shape[1] != 0)) return CLAI_OK;
  if (ix.numel == 0) { /* zero columns: no kernel to check the index, so the host does (a rare shape) */
    int32_t *v = malloc((size_t)nidx * sizeof *v);
    if (v == NULL) return clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "%s: out of host memory", fn);
    st = clai_tensor_read((clai_tensor *)index, v, /* reads only */ (size_t)nidx * sizeof *v);
    int64_t bad = -1;
    for (int64_t i = 0; st == CLAI_OK && i < nidx && bad < 0; i++)
      if (v[i] < 0 || v[i] >= table->shape[0]) bad = i;
    const int32_t value = bad >= 0 ? v[bad] : 0;
    free(v);
    if (st != CLAI_OK || bad < 0) return st;
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: index[%lld] = %d is outside [0, %lld) (row-major position in index %s)",
                       fn, (long long)bad, (int)value, (long long)table->shape[0],
                       clai__shape_str(index->ndim, index->shape, a, sizeof a));
  }

  clai__buffer *flag = clai__pool_alloc(ctx, sizeof(cl_int), &st);
  if (flag == NULL) return st;
  const cl_int none = INT_MAX;
  cl_int err = clEnqueueFillBuffer(ctx->queue, flag->mem, &none, sizeof none, 0, sizeof none, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    clai__pool_release(ctx, flag);
    return clai__cl_error(ctx, err, "%s: clEnqueueFillBuffer failed", fn);
  }
  const cl_long ncols = table->shape[1], nrows = table->shape[0], toff = table->offset, trow = table->strides[0],
                tcol = table->strides[1];
  const int64_t per = ctx->caps.is_cpu ? 64 : 1; /* elements per work-item: CLAI_GATHER_PER in cl/layout.cl */
  size_t global = (size_t)((ix.numel + per - 1) / per);
  int k = clai_dtype_size(out->dtype) == 2 ? CLAI__K_GATHER_ROWS_B2 : CLAI__K_GATHER_ROWS_B4;
  if (quant) { /* one element per work-item (cl/quant.cl); tcol is 1 for a quantized view */
    const cl_int fmt = (cl_int)table->dtype, half = out->dtype == CLAI_DTYPE_F16;
    global = (size_t)ix.numel;
    st = clai__launch(ctx, CLAI__K_GATHER_ROWS_Q, &global, 11, CLAI__ARG(out->buf->mem), CLAI__ARG(table->buf->mem),
                      CLAI__ARG(index->buf->mem), CLAI__ARG(flag->mem), CLAI__IDX(ix), CLAI__ARG(ncols),
                      CLAI__ARG(nrows), CLAI__ARG(toff), CLAI__ARG(trow), CLAI__ARG(fmt), CLAI__ARG(half));
  } else {
    st = clai__launch(ctx, k, &global, 10, CLAI__ARG(out->buf->mem), CLAI__ARG(table->buf->mem),
                      CLAI__ARG(index->buf->mem), CLAI__ARG(flag->mem), CLAI__IDX(ix), CLAI__ARG(ncols),
                      CLAI__ARG(nrows), CLAI__ARG(toff), CLAI__ARG(trow), CLAI__ARG(tcol));
  }
  cl_int first = INT_MAX, value = 0;
  if (st == CLAI_OK) {
    err = clEnqueueReadBuffer(ctx->queue, flag->mem, CL_TRUE, 0, sizeof first, &first, 0, NULL, NULL);
    if (err != CL_SUCCESS) st = clai__cl_error(ctx, err, "%s: reading the range flag failed", fn);
  }
  clai__pool_release(ctx, flag);
  if (st != CLAI_OK || first == INT_MAX) return st;
  /* Fetch the offending value for the message: the element of index at row-major position `first`. */
  int64_t rem = first, off = index->offset;
  for (int d = index->ndim - 1; d >= 0; d--) {
    off += rem % index->shape[d] * index->strides[d];
    rem /= index->shape[d];
  }
  err = clEnqueueReadBuffer(ctx->queue, index->buf->mem, CL_TRUE, (size_t)off * sizeof(cl_int), sizeof value,
                            &value, 0, NULL, NULL);
  if (err != CL_SUCCESS) return clai__cl_error(ctx, err, "%s: reading the bad index failed", fn);
  return clai__error(ctx, CLAI_E_INVALID_ARG,
                     "%s: index[%d] = %d is outside [0, %lld) (row-major position in index %s); its output row "
                     "is zeros",
                     fn, (int)first, (int)value, (long long)nrows, clai__shape_str(index->ndim, index->shape, a, sizeof a));
}

clai_status clai_one_hot(clai_context *ctx, clai_tensor *out, const clai_tensor *labels) {
  const char *fn = "clai_one_hot";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status st = clai__check_out(ctx, out, fn, "out");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, labels, fn, "labels");
  if (st != CLAI_OK) return st;
  if (labels->dtype != CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: labels are %s, must be i32", fn, clai_dtype_name(labels->dtype));
  st = check_plus_one(ctx, fn, out, "out", labels, "labels");
  if (st != CLAI_OK) return st;
  if (clai__tensors_overlap(out, labels))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps labels in memory", fn);
  clai__index ix;
  clai_tensor lab1 = with_unit_dim(labels);
  const clai_tensor *ops[2] = {out, &lab1};
  clai__index_build(&ix, 2, ops);
  const cl_long ncls = out->shape[out->ndim - 1];
  const cl_int odt = (cl_int)out->dtype;
  size_t global = (size_t)ix.numel;
  return clai__launch(ctx, CLAI__K_ONE_HOT, &global, 5, CLAI__ARG(out->buf->mem), CLAI__ARG(labels->buf->mem),
                      CLAI__IDX(ix), CLAI__ARG(ncls), CLAI__ARG(odt));
}

clai_status clai_where(clai_context *ctx, clai_tensor *out, const clai_tensor *mask, const clai_tensor *a,
                       const clai_tensor *b) {
  const char *fn = "clai_where";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status st = clai__check_out(ctx, out, fn, "out");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, mask, fn, "mask");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, a, fn, "a");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, b, fn, "b");
  if (st != CLAI_OK) return st;
  if (a->dtype != out->dtype || b->dtype != out->dtype)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: dtypes differ (out %s, a %s, b %s); convert with clai_copy", fn,
                       clai_dtype_name(out->dtype), clai_dtype_name(a->dtype), clai_dtype_name(b->dtype));
  int64_t tmp[CLAI_MAX_DIMS];
  const clai_tensor *ins[3] = {mask, a, b};
  static const char *const names[3] = {"mask", "a", "b"};
  char x[160], y[160];
  for (int i = 0; i < 3; i++) {
    if (!clai__broadcast_strides(ins[i], out->ndim, out->shape, tmp))
      return clai__error(ctx, CLAI_E_SHAPE, "%s: %s %s does not broadcast to out %s", fn, names[i],
                         clai__shape_str(ins[i]->ndim, ins[i]->shape, x, sizeof x),
                         clai__shape_str(out->ndim, out->shape, y, sizeof y));
    if (!clai__alias_ok(out, ins[i]))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps %s other than element for element", fn, names[i]);
  }
  clai__index ixa, ixb;
  const clai_tensor *opsa[3] = {out, mask, a}, *opsb[2] = {out, b};
  clai__index_build(&ixa, 3, opsa);
  clai__index_build(&ixb, 2, opsb);
  const cl_int mdt = (cl_int)mask->dtype;
  size_t global = (size_t)ixa.numel;
  int k = clai_dtype_size(out->dtype) == 2 ? CLAI__K_WHERE_B2 : CLAI__K_WHERE_B4;
  return clai__launch(ctx, k, &global, 7, CLAI__ARG(out->buf->mem), CLAI__ARG(mask->buf->mem), CLAI__ARG(a->buf->mem),
                      CLAI__ARG(b->buf->mem), CLAI__IDX(ixa), CLAI__IDX(ixb), CLAI__ARG(mdt));
}

/* The backward of clai_gather_rows. The positions are sorted by table row on the host (the index is read
 * back: this op waits for the work before it, like the forward's range check) into a plan that one kernel
 * walks, one work-item per (touched row, column) summing its positions in ascending order: deterministic
 * without float atomics, O(n + touched rows) on the host and n * cols additions on the device. */
clai_status clai_gather_rows_backward(clai_context *ctx, clai_tensor *grad_table, const clai_tensor *grad_out,
                                      const clai_tensor *index, int accumulate) {
  const char *fn = "clai_gather_rows_backward";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status st = clai__check_out(ctx, grad_table, fn, "grad_table");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, grad_out, fn, "grad_out");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, index, fn, "index");
  if (st != CLAI_OK) return st;
  char a[160];
  if (index->dtype != CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: index is %s, must be i32", fn, clai_dtype_name(index->dtype));
  if ((grad_table->dtype != CLAI_DTYPE_F32 && grad_table->dtype != CLAI_DTYPE_F16) ||
      (grad_out->dtype != CLAI_DTYPE_F32 && grad_out->dtype != CLAI_DTYPE_F16))
    return clai__error(ctx, CLAI_E_DTYPE, "%s: grad_table is %s, grad_out %s; each must be f32 or f16", fn,
                       clai_dtype_name(grad_table->dtype), clai_dtype_name(grad_out->dtype));
  if (grad_table->ndim != 2)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: grad_table %s must be 2-d [rows, cols]", fn,
                       clai__shape_str(grad_table->ndim, grad_table->shape, a, sizeof a));
  st = check_plus_one(ctx, fn, grad_out, "grad_out", index, "index");
  if (st != CLAI_OK) return st;
  if (grad_out->shape[grad_out->ndim - 1] != grad_table->shape[1])
    return clai__error(ctx, CLAI_E_SHAPE, "%s: grad_out's last dim is %lld, grad_table has %lld cols", fn,
                       (long long)grad_out->shape[grad_out->ndim - 1], (long long)grad_table->shape[1]);
  if (accumulate != 0 && accumulate != 1)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: accumulate is %d, must be 0 or 1", fn, accumulate);
  if (clai__tensors_overlap(grad_table, grad_out) || clai__tensors_overlap(grad_table, index))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad_table overlaps grad_out or index in memory", fn);
  if (grad_table->shape[0] > INT32_MAX)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: %lld table rows; at most 2^31 - 1", fn,
                       (long long)grad_table->shape[0]);
  const int64_t rows = grad_table->shape[0], cols = grad_table->shape[1], n = clai_tensor_numel(index);
  if (!accumulate) {
    st = clai_fill(ctx, grad_table, 0.0);
    if (st != CLAI_OK) return st;
  }
  if (n == 0 || cols == 0) return CLAI_OK;

  int32_t *idx = malloc((size_t)n * sizeof *idx);
  int64_t *cnt = calloc((size_t)rows + 1, sizeof *cnt);
  cl_long *plan = NULL;
  clai__buffer *buf = NULL;
  clai_tensor *tmp = NULL; /* an f32 grad_table for passes (below) */
  const clai_tensor *dst = grad_table;
  int64_t bad = -1;
  if (idx == NULL || cnt == NULL) {
    st = clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  st = clai_tensor_read((clai_tensor *)index, idx, (size_t)n * sizeof *idx);
  if (st != CLAI_OK) goto done;
  /* counting sort: cnt[r + 1] = positions of row r, then prefix sums give each row's first slot */
  int64_t ng = 0, nu = 0;
  for (int64_t p = 0; p < n; p++) {
    if (idx[p] < 0 || idx[p] >= rows) {
      if (bad < 0) bad = p;
      continue;
    }
    if (cnt[idx[p] + 1]++ == 0) nu++;
    ng++;
  }
  if (ng == 0) goto done;
  size_t bytes = (size_t)(ng + 2 * nu + 1) * sizeof(cl_long);
  plan = malloc(bytes);
  if (plan == NULL) {
    st = clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "%s: out of host memory", fn);
    goto done;
  }
  /* Each row's run of positions in one pass, or, where the longest would pass a device's loop budget
   * (llvmpipe: 65535 iterations a work-item; 1000000 positions of one row summed to 65534 there), in passes
   * of at most its share, into an f32 copy of an f16 grad_table (so that it is rounded once). */
  int64_t longest = 0;
  for (int64_t r = 0; r < rows; r++) longest = cnt[r + 1] > longest ? cnt[r + 1] : longest;
  const int64_t share = clai__loop_cap(ctx, 1) < longest ? clai__loop_cap(ctx, 1) : longest;
  if (share < longest && grad_table->dtype != CLAI_DTYPE_F32) {
    st = clai_tensor_init(ctx, &tmp, CLAI_DTYPE_F32, 2, grad_table->shape);
    if (st == CLAI_OK) st = clai__copy(ctx, tmp, grad_table, fn);
    if (st != CLAI_OK) goto done;
    dst = tmp;
  }
  cl_long *goff = plan, *toff = plan + ng, *seg = plan + ng + nu;
  int64_t u = 0;
  seg[0] = 0;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t c = cnt[r + 1];
    cnt[r + 1] = cnt[r] + c; /* cnt[r] is now the first slot of row r */
    if (c == 0) continue;
    toff[u] = dst->offset + r * dst->strides[0];
    seg[u + 1] = seg[u] + c;
    u++;
  }
  const int gnd = grad_out->ndim - 1; /* the dims of index */
  for (int64_t p = 0; p < n; p++) {
    if (idx[p] < 0 || idx[p] >= rows) continue;
    int64_t rem = p, off = grad_out->offset;
    for (int d = gnd - 1; d >= 0; d--) {
      off += rem % grad_out->shape[d] * grad_out->strides[d];
      rem /= grad_out->shape[d];
    }
    goff[cnt[idx[p]]++] = off;
  }
  buf = clai__pool_alloc(ctx, bytes, &st);
  if (buf == NULL) goto done;
  cl_int err = clEnqueueWriteBuffer(ctx->queue, buf->mem, CL_TRUE, 0, bytes, plan, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    st = clai__cl_error(ctx, err, "%s: writing the plan failed", fn);
    goto done;
  }
  uint64_t work;
  if (!clai__mul_ok((uint64_t)nu, (uint64_t)cols, &work) || work > (uint64_t)SIZE_MAX) {
    st = clai__error(ctx, CLAI_E_OVERFLOW, "%s: too many work-items", fn);
    goto done;
  }
  size_t global = (size_t)work;
  const cl_long cnu = nu, cng = ng, ccols = cols, tsc = dst->strides[1], gsc = grad_out->strides[grad_out->ndim - 1];
  const cl_int tdt = (cl_int)dst->dtype, gdt = (cl_int)grad_out->dtype, acc = accumulate;
  /* the plan buffer goes back to the pool below: a later op that reuses it is queued after these kernels */
  for (int64_t p0 = 0; p0 < longest && st == CLAI_OK; p0 += share) {
    const cl_long cp0 = p0, cpn = share;
    const cl_int first = p0 == 0;
    st = clai__launch(ctx, CLAI__K_SCATTER_ROWS_ADD, &global, 14, CLAI__ARG(dst->buf->mem),
                      CLAI__ARG(grad_out->buf->mem), CLAI__ARG(buf->mem), CLAI__ARG(cnu), CLAI__ARG(cng),
                      CLAI__ARG(ccols), CLAI__ARG(tsc), CLAI__ARG(gsc), CLAI__ARG(tdt), CLAI__ARG(gdt), CLAI__ARG(acc),
                      CLAI__ARG(cp0), CLAI__ARG(cpn), CLAI__ARG(first));
  }
  if (st == CLAI_OK && tmp != NULL) st = clai__copy(ctx, grad_table, tmp, fn);
done:
  clai_tensor_free(tmp); /* the in-order queue runs any reuse of its buffer after the copy */
  if (buf != NULL) clai__pool_release(ctx, buf);
  free(plan);
  free(cnt);
  const int32_t value = bad >= 0 && idx != NULL ? idx[bad] : 0;
  free(idx);
  if (st != CLAI_OK || bad < 0) return st;
  return clai__error(ctx, CLAI_E_INVALID_ARG,
                     "%s: index[%lld] = %d is outside [0, %lld) (row-major position in index %s); that position "
                     "adds nothing",
                     fn, (long long)bad, (int)value, (long long)rows,
                     clai__shape_str(index->ndim, index->shape, a, sizeof a));
}
