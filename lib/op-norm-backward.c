/* op-norm-backward.c - gradients of softmax, log_softmax, layernorm and rmsnorm along the last axis
 * (cl/norm_backward.cl). Rows are enumerated as in op-norm.c; one work-item per row, or a group of them
 * (the _wg kernels, ctx->rows_wg). grad_gamma and grad_beta are column sums over every row: per-chunk
 * partials (fixed row order) then clai_reduce over the chunks, so no float atomics and the same bits on
 * every run. */
#include <math.h>
#include <string.h>

#include "internal.h"

#define SMB_LOG 1    /* CLAI_SMB_* in cl/norm_backward.cl */
#define SMB_CAUSAL 2
#define LNB_RMS 1    /* CLAI_LNB_* */
#define LNB_GAMMA 2
#define LNB_BETA 4
#define COL_CHUNK 64 /* rows per partial sum of grad_gamma / grad_beta */

/* grad_x may be grad_y exactly (same buffer, offset, dtype and strides) but must not otherwise overlap it. */
static int same_view(const clai_tensor *a, const clai_tensor *b) {
  if (!clai__tensors_overlap(a, b)) return 1;
  if (a->dtype != b->dtype || a->offset != b->offset || a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != 1 && a->strides[i] != b->strides[i]) return 0;
  return 1;
}

static int same_shape(const clai_tensor *a, const clai_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

/* grad_x, grad_y and the saved tensor t (y or x, named tname): f32/f16, >= 1 dim, one shape, aliasing. */
static clai_status check_rows(clai_context *ctx, const char *fn, clai_tensor *gx, const clai_tensor *gy,
                              const clai_tensor *t, const char *tname) {
  clai_status s = clai__check_out(ctx, gx, fn, "grad_x");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, gy, fn, "grad_y");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, t, fn, tname);
  if (s != CLAI_OK) return s;
  if (gx->dtype == CLAI_DTYPE_I32 || gy->dtype == CLAI_DTYPE_I32 || t->dtype == CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: grad_x is %s, grad_y %s and %s %s; each must be f32 or f16", fn,
                       clai_dtype_name(gx->dtype), clai_dtype_name(gy->dtype), tname, clai_dtype_name(t->dtype));
  if (t->ndim < 1) return clai__error(ctx, CLAI_E_SHAPE, "%s: %s is 0-d; it needs a last axis", fn, tname);
  char a[160], b[160];
  if (!same_shape(gy, t))
    return clai__error(ctx, CLAI_E_SHAPE, "%s: grad_y %s and %s %s differ in shape", fn,
                       clai__shape_str(gy->ndim, gy->shape, a, sizeof a), tname,
                       clai__shape_str(t->ndim, t->shape, b, sizeof b));
  if (!same_shape(gx, t))
    return clai__error(ctx, CLAI_E_SHAPE, "%s: grad_x %s and %s %s differ in shape", fn,
                       clai__shape_str(gx->ndim, gx->shape, a, sizeof a), tname,
                       clai__shape_str(t->ndim, t->shape, b, sizeof b));
  if (!same_view(gx, gy))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad_x overlaps grad_y other than as the very same view", fn);
  if (clai__tensors_overlap(gx, t))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad_x overlaps %s", fn, tname);
  return CLAI_OK;
}

static void row_index(clai__index *ix, const clai_tensor *gx, const clai_tensor *gy, const clai_tensor *t) {
  clai_tensor a = *gx, b = *gy, c = *t;
  a.ndim = b.ndim = c.ndim = t->ndim - 1;
  const clai_tensor *ops[3] = {&a, &b, &c};
  clai__index_build(ix, 3, ops);
}

static clai_status softmax_bwd(clai_context *ctx, const char *fn, int flags, clai_tensor *gx, const clai_tensor *gy,
                               const clai_tensor *y, const clai_softmax_opts *opts) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = check_rows(ctx, fn, gx, gy, y, "y");
  if (s != CLAI_OK) return s;
  cl_float scale = opts != NULL && opts->scale != 0.0f ? opts->scale : 1.0f;
  if (!isfinite(scale)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: scale %g is not finite", fn, (double)scale);
  cl_long lq = 1;
  if (opts != NULL && opts->causal) {
    if (y->ndim < 2)
      return clai__error(ctx, CLAI_E_SHAPE, "%s: a causal mask needs y of at least 2 dims [..., Lq, Lk], y has %d",
                         fn, y->ndim);
    flags |= SMB_CAUSAL;
    lq = y->shape[y->ndim - 2];
  }
  clai__index ix;
  row_index(&ix, gx, gy, y);
  const int d = y->ndim - 1;
  const cl_long n = y->shape[d], gxs = gx->strides[d], gys = gy->strides[d], ys = y->strides[d];
  const cl_int cf = flags, dt = (gx->dtype == CLAI_DTYPE_F16 ? 1 : 0) | (gy->dtype == CLAI_DTYPE_F16 ? 2 : 0) |
                                (y->dtype == CLAI_DTYPE_F16 ? 4 : 0);
  if (n == 0 || lq == 0 || ix.numel == 0) return CLAI_OK;
  size_t global = (size_t)ix.numel;
  if (clai__rows_wg_for(ctx, n)) {
    size_t local;
    cl_int lanes;
    s = clai__rows_shape(ctx, CLAI__K_SOFTMAX_BWD_WG, n, ix.numel, &lanes, &local, &global);
    if (s != CLAI_OK) return s;
    return clai__launch_local(ctx, CLAI__K_SOFTMAX_BWD_WG, &global, &local, 13, CLAI__ARG(gx->buf->mem),
                              CLAI__ARG(gy->buf->mem), CLAI__ARG(y->buf->mem), CLAI__IDX(ix), CLAI__ARG(n),
                              CLAI__ARG(gxs), CLAI__ARG(gys), CLAI__ARG(ys), CLAI__ARG(lq), CLAI__ARG(scale),
                              CLAI__ARG(cf), CLAI__ARG(dt), CLAI__ARG(lanes));
  }
  return clai__launch(ctx, CLAI__K_SOFTMAX_BWD, &global, 12, CLAI__ARG(gx->buf->mem), CLAI__ARG(gy->buf->mem),
                      CLAI__ARG(y->buf->mem), CLAI__IDX(ix), CLAI__ARG(n), CLAI__ARG(gxs), CLAI__ARG(gys),
                      CLAI__ARG(ys), CLAI__ARG(lq), CLAI__ARG(scale), CLAI__ARG(cf), CLAI__ARG(dt));
}

clai_status clai_softmax_backward(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_y,
                                  const clai_tensor *y, const clai_softmax_opts *opts) {
  return softmax_bwd(ctx, "clai_softmax_backward", 0, grad_x, grad_y, y, opts);
}

clai_status clai_log_softmax_backward(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_y,
                                      const clai_tensor *y, const clai_softmax_opts *opts) {
  return softmax_bwd(ctx, "clai_log_softmax_backward", SMB_LOG, grad_x, grad_y, y, opts);
}

/* gamma, grad_gamma, grad_beta: 1-D of n elements, f32 or f16. */
static clai_status check_vec(clai_context *ctx, const char *fn, const char *what, const clai_tensor *p, int64_t n) {
  clai_status s = clai__check_tensor(ctx, p, fn, what);
  if (s != CLAI_OK) return s;
  char a[160];
  if (p->dtype == CLAI_DTYPE_I32) return clai__error(ctx, CLAI_E_DTYPE, "%s: %s is i32; it must be f32 or f16", fn, what);
  if (p->ndim != 1 || p->shape[0] != n)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: %s is %s; it must be 1-D of the last dim's size [%lld]", fn, what,
                       clai__shape_str(p->ndim, p->shape, a, sizeof a), (long long)n);
  return CLAI_OK;
}

static clai_status norm_bwd(clai_context *ctx, const char *fn, int rms, clai_tensor *gx, clai_tensor *ggamma,
                            clai_tensor *gbeta, const clai_tensor *gy, const clai_tensor *x, const clai_tensor *gamma,
                            const clai_tensor *mean, const clai_tensor *rstd) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = check_rows(ctx, fn, gx, gy, x, "x");
  if (s != CLAI_OK) return s;
  const int64_t n = x->shape[x->ndim - 1];
  if (!rms && mean == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: mean is NULL", fn);
  if (rstd == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: rstd is NULL", fn);
  /* the saved statistics are read: f32, contiguous, x's shape without the last dim, apart from grad_x */
  if (!rms && (s = clai__norm_check_stat(ctx, fn, "mean", mean, x, gx, "grad_x")) != CLAI_OK) return s;
  if ((s = clai__norm_check_stat(ctx, fn, "rstd", rstd, x, gx, "grad_x")) != CLAI_OK) return s;
  if (gamma != NULL) {
    if ((s = check_vec(ctx, fn, "gamma", gamma, n)) != CLAI_OK) return s;
    if (clai__tensors_overlap(gx, gamma)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad_x overlaps gamma", fn);
  }
  clai_tensor *outs[2] = {ggamma, gbeta};
  const char *onames[2] = {"grad_gamma", "grad_beta"};
  const clai_tensor *ins[6] = {gx, gy, x, gamma, mean, rstd};
  const char *inames[6] = {"grad_x", "grad_y", "x", "gamma", "mean", "rstd"};
  for (int o = 0; o < 2; o++) {
    if (outs[o] == NULL) continue;
    if ((s = clai__check_out(ctx, outs[o], fn, onames[o])) != CLAI_OK) return s;
    if ((s = check_vec(ctx, fn, onames[o], outs[o], n)) != CLAI_OK) return s;
    for (int i = 0; i < 6; i++)
      if (ins[i] != NULL && clai__tensors_overlap(outs[o], ins[i]))
        return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %s overlaps %s", fn, onames[o], inames[i]);
  }
  if (ggamma != NULL && gbeta != NULL && clai__tensors_overlap(ggamma, gbeta))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad_gamma overlaps grad_beta", fn);

  clai__index ix;
  row_index(&ix, gx, gy, x);
  const int d = x->ndim - 1;
  const cl_long cn = n, gxs = gx->strides[d], gys = gy->strides[d], xs = x->strides[d];
  const cl_long gs = gamma ? gamma->strides[0] : 0, go = gamma ? gamma->offset : 0;
  const cl_long mo = mean && !rms ? mean->offset : 0, ro = rstd->offset;
  const cl_int dt = (gx->dtype == CLAI_DTYPE_F16 ? 1 : 0) | (gy->dtype == CLAI_DTYPE_F16 ? 2 : 0) |
                    (x->dtype == CLAI_DTYPE_F16 ? 4 : 0) | (gamma && gamma->dtype == CLAI_DTYPE_F16 ? 8 : 0);
  cl_mem gm = gamma ? gamma->buf->mem : x->buf->mem, mm = mean && !rms ? mean->buf->mem : rstd->buf->mem;
  const int64_t rows = ix.numel;

  /* column sums first: grad_x may be grad_y itself, and the row kernel overwrites it */
  if (n > 0 && (ggamma != NULL || gbeta != NULL)) {
    if (rows == 0) { /* sums over no rows: 0 */
      for (int o = 0; o < 2; o++)
        if (outs[o] != NULL && (s = clai_fill(ctx, outs[o], 0.0f)) != CLAI_OK) return s;
    } else {
      const int64_t chunks = (rows + COL_CHUNK - 1) / COL_CHUNK;
      const int64_t pshape[2] = {chunks, n};
      clai_tensor *pg = NULL, *pb = NULL;
      s = clai_tensor_init(ctx, &pg, CLAI_DTYPE_F32, 2, pshape);
      if (s == CLAI_OK && gbeta != NULL) s = clai_tensor_init(ctx, &pb, CLAI_DTYPE_F32, 2, pshape);
      if (s == CLAI_OK) {
        const cl_long chunk = COL_CHUNK, cmo = mo, cro = ro;
        /* eight columns per work-item where rows are contiguous f32 and the row dims merged into one */
        const cl_long vw = gys == 1 && xs == 1 && (dt & 6) == 0 && ix.ndim <= 1 ? 8 : 1;
        const cl_int cf = (rms ? LNB_RMS : 0) | (gbeta ? LNB_BETA : 0);
        cl_mem pbm = pb ? pb->buf->mem : pg->buf->mem;
        size_t global = (size_t)(chunks * ((n + vw - 1) / vw));
        s = clai__launch(ctx, CLAI__K_NORM_BWD_COLS, &global, 16, CLAI__ARG(pg->buf->mem), CLAI__ARG(pbm),
                         CLAI__ARG(gy->buf->mem), CLAI__ARG(x->buf->mem), CLAI__ARG(mm), CLAI__ARG(rstd->buf->mem),
                         CLAI__IDX(ix), CLAI__ARG(cn), CLAI__ARG(chunk), CLAI__ARG(vw), CLAI__ARG(gys), CLAI__ARG(xs),
                         CLAI__ARG(cmo), CLAI__ARG(cro), CLAI__ARG(cf), CLAI__ARG(dt));
      }
      if (s == CLAI_OK && ggamma != NULL) s = clai_reduce(ctx, CLAI_REDUCE_SUM, ggamma, pg, 0, 0);
      if (s == CLAI_OK && gbeta != NULL) s = clai_reduce(ctx, CLAI_REDUCE_SUM, gbeta, pb, 0, 0);
      clai_tensor_free(pg);
      clai_tensor_free(pb);
      if (s != CLAI_OK) return s;
    }
  }
  if (n == 0 || rows == 0) return CLAI_OK;
  const cl_int flags = (rms ? LNB_RMS : 0) | (gamma ? LNB_GAMMA : 0);
  size_t global = (size_t)rows;
  if (clai__rows_wg_for(ctx, n)) {
    size_t local;
    cl_int lanes;
    s = clai__rows_shape(ctx, CLAI__K_LAYERNORM_BWD_WG, n, rows, &lanes, &local, &global);
    if (s != CLAI_OK) return s;
    return clai__launch_local(ctx, CLAI__K_LAYERNORM_BWD_WG, &global, &local, 18, CLAI__ARG(gx->buf->mem),
                              CLAI__ARG(gy->buf->mem), CLAI__ARG(x->buf->mem), CLAI__ARG(gm), CLAI__ARG(mm),
                              CLAI__ARG(rstd->buf->mem), CLAI__IDX(ix), CLAI__ARG(cn), CLAI__ARG(gxs), CLAI__ARG(gys),
                              CLAI__ARG(xs), CLAI__ARG(gs), CLAI__ARG(go), CLAI__ARG(mo), CLAI__ARG(ro),
                              CLAI__ARG(flags), CLAI__ARG(dt), CLAI__ARG(lanes));
  }
  return clai__launch(ctx, CLAI__K_LAYERNORM_BWD, &global, 17, CLAI__ARG(gx->buf->mem), CLAI__ARG(gy->buf->mem),
                      CLAI__ARG(x->buf->mem), CLAI__ARG(gm), CLAI__ARG(mm), CLAI__ARG(rstd->buf->mem), CLAI__IDX(ix),
                      CLAI__ARG(cn), CLAI__ARG(gxs), CLAI__ARG(gys), CLAI__ARG(xs), CLAI__ARG(gs), CLAI__ARG(go),
                      CLAI__ARG(mo), CLAI__ARG(ro), CLAI__ARG(flags), CLAI__ARG(dt));
}

clai_status clai_layernorm_backward(clai_context *ctx, clai_tensor *grad_x, clai_tensor *grad_gamma,
                                    clai_tensor *grad_beta, const clai_tensor *grad_y, const clai_tensor *x,
                                    const clai_tensor *gamma, const clai_tensor *mean, const clai_tensor *rstd) {
  return norm_bwd(ctx, "clai_layernorm_backward", 0, grad_x, grad_gamma, grad_beta, grad_y, x, gamma, mean, rstd);
}

clai_status clai_rmsnorm_backward(clai_context *ctx, clai_tensor *grad_x, clai_tensor *grad_gamma,
                                  const clai_tensor *grad_y, const clai_tensor *x, const clai_tensor *gamma,
                                  const clai_tensor *rstd) {
  return norm_bwd(ctx, "clai_rmsnorm_backward", 1, grad_x, grad_gamma, NULL, grad_y, x, gamma, NULL, rstd);
}
