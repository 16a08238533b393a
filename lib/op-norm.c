/* op-norm.c - softmax, log_softmax, layernorm and rmsnorm along the last axis (cl/norm.cl). The rows are
 * enumerated by a clai_index over every dim but the last; the kernels take a row per work-item, or (their
 * _wg forms, ctx->rows_wg: CLAI_ROWS, GPUs) a row per group of work-items, several rows per work-group. */
#include <math.h>
#include <string.h>

#include "internal.h"

#define SM_LOG 1    /* CLAI_SM_LOG in cl/norm.cl */
#define SM_CAUSAL 2 /* CLAI_SM_CAUSAL */
#define LN_RMS 1    /* CLAI_LN_* */
#define LN_GAMMA 2
#define LN_BETA 4
#define LN_MEAN 8
#define LN_RSTD 16
#define LN_NT 32

/* out may be x exactly (same buffer, offset, strides) but must not otherwise overlap it. */
static int inplace_ok(const clai_tensor *out, const clai_tensor *x) {
  if (!clai__tensors_overlap(out, x)) return 1;
  if (out->dtype != x->dtype || out->offset != x->offset || out->ndim != x->ndim) return 0;
  for (int i = 0; i < x->ndim; i++)
    if (x->shape[i] != 1 && x->strides[i] != out->strides[i]) return 0;
  return 1;
}

/* Shared checks of x and out: dtypes, at least one dim, same shape, aliasing. */
static clai_status check_rows(clai_context *ctx, const char *fn, clai_tensor *out, const clai_tensor *x) {
  clai_status s = clai__check_out(ctx, out, fn, "out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s != CLAI_OK) return s;
  if (x->dtype == CLAI_DTYPE_I32 || out->dtype == CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: x is %s and out %s; both must be f32 or f16", fn,
                       clai_dtype_name(x->dtype), clai_dtype_name(out->dtype));
  if (x->ndim < 1) return clai__error(ctx, CLAI_E_SHAPE, "%s: x is 0-d; it needs a last axis", fn);
  char a[160], b[160];
  int same = out->ndim == x->ndim;
  for (int i = 0; same && i < x->ndim; i++) same = out->shape[i] == x->shape[i];
  if (!same)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: out %s and x %s differ in shape", fn,
                       clai__shape_str(out->ndim, out->shape, a, sizeof a), clai__shape_str(x->ndim, x->shape, b, sizeof b));
  if (!inplace_ok(out, x))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps x other than as the very same view", fn);
  return CLAI_OK;
}

/* Row views (every dim but the last) of out and x, and the index over them. */
static void row_index(clai__index *ix, const clai_tensor *out, const clai_tensor *x) {
  clai_tensor orow = *out, xrow = *x;
  orow.ndim = xrow.ndim = x->ndim - 1;
  const clai_tensor *ops[2] = {&orow, &xrow};
  clai__index_build(ix, 2, ops);
}

static clai_status softmax(clai_context *ctx, const char *fn, int flags, clai_tensor *out, const clai_tensor *x,
                           const clai_softmax_opts *opts) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = check_rows(ctx, fn, out, x);
  if (s != CLAI_OK) return s;
  cl_float scale = opts != NULL && opts->scale != 0.0f ? opts->scale : 1.0f;
  if (!isfinite(scale)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: scale %g is not finite", fn, (double)scale);
  cl_long lq = 1;
  if (opts != NULL && opts->causal) {
    if (x->ndim < 2)
      return clai__error(ctx, CLAI_E_SHAPE, "%s: a causal mask needs x of at least 2 dims [..., Lq, Lk], x has %d",
                         fn, x->ndim);
    flags |= SM_CAUSAL;
    lq = x->shape[x->ndim - 2];
  }
  clai__index ix;
  row_index(&ix, out, x);
  const cl_long n = x->shape[x->ndim - 1], xs = x->strides[x->ndim - 1], os = out->strides[out->ndim - 1];
  const cl_int cf = flags, xf16 = x->dtype == CLAI_DTYPE_F16, of16 = out->dtype == CLAI_DTYPE_F16;
  if (n == 0 || lq == 0) return CLAI_OK;
  size_t global = (size_t)ix.numel;
  if (clai__rows_wg_for(ctx, n) && ix.numel > 0) {
    size_t local;
    cl_int lanes;
    s = clai__rows_shape(ctx, CLAI__K_SOFTMAX_WG, n, ix.numel, &lanes, &local, &global);
    if (s != CLAI_OK) return s;
    return clai__launch_local(ctx, CLAI__K_SOFTMAX_WG, &global, &local, 12, CLAI__ARG(out->buf->mem),
                              CLAI__ARG(x->buf->mem), CLAI__IDX(ix), CLAI__ARG(n), CLAI__ARG(xs), CLAI__ARG(os),
                              CLAI__ARG(lq), CLAI__ARG(scale), CLAI__ARG(cf), CLAI__ARG(xf16), CLAI__ARG(of16),
                              CLAI__ARG(lanes));
  }
  return clai__launch(ctx, CLAI__K_SOFTMAX, &global, 11, CLAI__ARG(out->buf->mem), CLAI__ARG(x->buf->mem),
                      CLAI__IDX(ix), CLAI__ARG(n), CLAI__ARG(xs), CLAI__ARG(os), CLAI__ARG(lq), CLAI__ARG(scale),
                      CLAI__ARG(cf), CLAI__ARG(xf16), CLAI__ARG(of16));
}

clai_status clai_softmax(clai_context *ctx, clai_tensor *out, const clai_tensor *x, const clai_softmax_opts *opts) {
  return softmax(ctx, "clai_softmax", 0, out, x, opts);
}

clai_status clai_log_softmax(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                             const clai_softmax_opts *opts) {
  return softmax(ctx, "clai_log_softmax", SM_LOG, out, x, opts);
}

/* gamma / beta: 1-D of n elements, f32 or f16. */
static clai_status check_affine(clai_context *ctx, const char *fn, const char *what, const clai_tensor *p,
                                const clai_tensor *out, int64_t n) {
  clai_status s = clai__check_tensor(ctx, p, fn, what);
  if (s != CLAI_OK) return s;
  char a[160];
  if (p->dtype == CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: %s is i32; it must be f32 or f16", fn, what);
  if (p->ndim != 1 || p->shape[0] != n)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: %s is %s; it must be 1-D of the last dim's size [%lld]", fn, what,
                       clai__shape_str(p->ndim, p->shape, a, sizeof a), (long long)n);
  if (clai__tensors_overlap(out, p)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps %s", fn, what);
  return CLAI_OK;
}

clai_status clai__norm_check_stat(clai_context *ctx, const char *fn, const char *what, const clai_tensor *t,
                                  const clai_tensor *x, const clai_tensor *avoid, const char *avoid_name) {
  clai_status s = clai__check_tensor(ctx, t, fn, what);
  if (s != CLAI_OK) return s;
  if (t->dtype != CLAI_DTYPE_F32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: %s is %s; it must be f32", fn, what, clai_dtype_name(t->dtype));
  int nd = x->ndim - 1;
  int ok = t->ndim == nd || (t->ndim == x->ndim && t->shape[nd] == 1);
  for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == x->shape[i];
  char a[160], b[160];
  if (!ok)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: %s is %s; it must be x's shape %s without the last dim", fn, what,
                       clai__shape_str(t->ndim, t->shape, a, sizeof a), clai__shape_str(x->ndim, x->shape, b, sizeof b));
  if (!clai_tensor_is_contiguous(t))
    return clai__error(ctx, CLAI_E_NOT_CONTIGUOUS, "%s: %s must be contiguous", fn, what);
  if (avoid != NULL && clai__tensors_overlap(t, avoid))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %s overlaps %s", fn, what, avoid_name);
  return CLAI_OK;
}

static clai_status norm(clai_context *ctx, const char *fn, int rms, clai_tensor *out, const clai_tensor *x,
                        const clai_tensor *gamma, const clai_tensor *beta, float eps, clai_tensor *mean_out,
                        clai_tensor *rstd_out) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = check_rows(ctx, fn, out, x);
  if (s != CLAI_OK) return s;
  const int64_t n = x->shape[x->ndim - 1];
  if (!(eps >= 0.0f) || !isfinite(eps))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: eps %g must be finite and >= 0", fn, (double)eps);
  if (gamma != NULL && (s = check_affine(ctx, fn, "gamma", gamma, out, n)) != CLAI_OK) return s;
  if (beta != NULL && (s = check_affine(ctx, fn, "beta", beta, out, n)) != CLAI_OK) return s;
  /* the statistics are written: they must not overlap x or out */
  if (mean_out != NULL && (s = clai__norm_check_stat(ctx, fn, "mean_out", mean_out, x, out, "out")) != CLAI_OK) return s;
  if (rstd_out != NULL && (s = clai__norm_check_stat(ctx, fn, "rstd_out", rstd_out, x, out, "out")) != CLAI_OK) return s;
  if ((mean_out != NULL && clai__tensors_overlap(mean_out, x)) || (rstd_out != NULL && clai__tensors_overlap(rstd_out, x)))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: mean_out or rstd_out overlaps x", fn);
  if (mean_out != NULL && rstd_out != NULL && clai__tensors_overlap(mean_out, rstd_out))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: mean_out overlaps rstd_out", fn);
  clai__index ix;
  row_index(&ix, out, x);
  if (ix.numel == 0) return CLAI_OK;
  if (n == 0) {
    /* rows of nothing: out is empty, and each row's statistics are those of no values, NaN (the mean of
     * an empty axis in clai_reduce is NaN too); 1 / sqrt(NaN + eps) stays NaN */
    if (mean_out != NULL) s = clai_fill(ctx, mean_out, NAN);
    if (s == CLAI_OK && rstd_out != NULL) s = clai_fill(ctx, rstd_out, NAN);
    return s;
  }
  cl_int flags = (rms ? LN_RMS : 0) | (gamma ? LN_GAMMA : 0) | (beta ? LN_BETA : 0) | (mean_out ? LN_MEAN : 0) |
                 (rstd_out ? LN_RSTD : 0);
  /* Non-temporal stores of out where x and out together exceed the device's cache (out would leave it
   * anyway): no read of each line of out before it is written. CPUs with POCL only (caps.nt_store). */
  if (ctx->caps.nt_store && ctx->caps.cache_bytes > 0 &&
      (double)clai_tensor_numel(x) * (clai_dtype_size(x->dtype) + clai_dtype_size(out->dtype)) >
          (double)ctx->caps.cache_bytes)
    flags |= LN_NT;
  cl_int dt = (x->dtype == CLAI_DTYPE_F16 ? 1 : 0) | (out->dtype == CLAI_DTYPE_F16 ? 2 : 0) |
              (gamma && gamma->dtype == CLAI_DTYPE_F16 ? 4 : 0) | (beta && beta->dtype == CLAI_DTYPE_F16 ? 8 : 0);
  const cl_long cn = n, xs = x->strides[x->ndim - 1], os = out->strides[out->ndim - 1];
  const cl_long gs = gamma ? gamma->strides[0] : 0, bs = beta ? beta->strides[0] : 0;
  const cl_long go = gamma ? gamma->offset : 0, bo = beta ? beta->offset : 0;
  const cl_long mo = mean_out ? mean_out->offset : 0, ro = rstd_out ? rstd_out->offset : 0;
  const cl_float ceps = eps;
  /* absent tensors: x's buffer stands in (never read or written, the flags say so) */
  cl_mem gm = gamma ? gamma->buf->mem : x->buf->mem, bm = beta ? beta->buf->mem : x->buf->mem;
  cl_mem mm = mean_out ? mean_out->buf->mem : x->buf->mem, rm = rstd_out ? rstd_out->buf->mem : x->buf->mem;
  size_t global = (size_t)ix.numel;
  if (clai__rows_wg_for(ctx, n)) {
    size_t local;
    cl_int lanes;
    s = clai__rows_shape(ctx, CLAI__K_LAYERNORM_WG, n, ix.numel, &lanes, &local, &global);
    if (s != CLAI_OK) return s;
    return clai__launch_local(ctx, CLAI__K_LAYERNORM_WG, &global, &local, 20, CLAI__ARG(out->buf->mem),
                              CLAI__ARG(x->buf->mem), CLAI__ARG(gm), CLAI__ARG(bm), CLAI__ARG(mm), CLAI__ARG(rm),
                              CLAI__IDX(ix), CLAI__ARG(cn), CLAI__ARG(xs), CLAI__ARG(os), CLAI__ARG(gs), CLAI__ARG(bs),
                              CLAI__ARG(go), CLAI__ARG(bo), CLAI__ARG(mo), CLAI__ARG(ro), CLAI__ARG(ceps),
                              CLAI__ARG(flags), CLAI__ARG(dt), CLAI__ARG(lanes));
  }
  return clai__launch(ctx, CLAI__K_LAYERNORM, &global, 19, CLAI__ARG(out->buf->mem), CLAI__ARG(x->buf->mem),
                      CLAI__ARG(gm), CLAI__ARG(bm), CLAI__ARG(mm), CLAI__ARG(rm), CLAI__IDX(ix), CLAI__ARG(cn),
                      CLAI__ARG(xs), CLAI__ARG(os), CLAI__ARG(gs), CLAI__ARG(bs), CLAI__ARG(go), CLAI__ARG(bo),
                      CLAI__ARG(mo), CLAI__ARG(ro), CLAI__ARG(ceps), CLAI__ARG(flags), CLAI__ARG(dt));
}

clai_status clai_layernorm(clai_context *ctx, clai_tensor *out, const clai_tensor *x, const clai_tensor *gamma,
                           const clai_tensor *beta, float eps, clai_tensor *mean_out, clai_tensor *rstd_out) {
  return norm(ctx, "clai_layernorm", 0, out, x, gamma, beta, eps, mean_out, rstd_out);
}

clai_status clai_rmsnorm(clai_context *ctx, clai_tensor *out, const clai_tensor *x, const clai_tensor *gamma,
                         float eps, clai_tensor *rstd_out) {
  return norm(ctx, "clai_rmsnorm", 1, out, x, gamma, NULL, eps, NULL, rstd_out);
}
