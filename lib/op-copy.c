/* op-copy.c - clai_copy (strided copy with broadcasting and dtype conversion) and clai_fill. */
#include "internal.h"

clai_status clai__copy(clai_context *ctx, clai_tensor *dst, const clai_tensor *src, const char *fn) {
  int64_t st[CLAI_MAX_DIMS];
  char a[160], b[160];
  if (!clai__broadcast_strides(src, dst->ndim, dst->shape, st))
    return clai__error(ctx, CLAI_E_SHAPE, "%s: source %s does not broadcast to destination %s", fn,
                       clai__shape_str(src->ndim, src->shape, a, sizeof a),
                       clai__shape_str(dst->ndim, dst->shape, b, sizeof b));
  if (dst->dtype == src->dtype && clai_dtype_size(dst->dtype) == 4 && clai_tensor_is_contiguous(dst) &&
      clai_tensor_is_contiguous(src) && clai_tensor_numel(dst) == clai_tensor_numel(src)) {
    /* dense, same 4-byte dtype: contiguous runs per work-item (cl/copy.cl) */
    const cl_long n = clai_tensor_numel(dst), od = dst->offset, os = src->offset;
    const cl_long chunk = ctx->caps.is_cpu ? 4096 : 8;
    size_t global = (size_t)((n + chunk - 1) / chunk);
    /* Non-temporal stores (POCL's CPU devices) where source and destination together exceed a quarter of
     * the cache the device reports (its last level, shared with the other cores and, on a VM, with other
     * guests): there the copy leaves the cache anyway. On the 2-core AVX-512 VM (300 MB of L3 reported),
     * `clai bench ops --only copy`: a 64 MB copy at 28-31 GB/s with them, 19 GB/s without (memcpy 22-23);
     * at 16 MB 46-47 against 35-38, at 4 MB 46-47 against 39; at 1 MB, in L2, 27-34 against 40-41. */
    const cl_int nt = ctx->caps.nt_store && ctx->caps.cache_bytes > 0 &&
                      (double)n * 8.0 > (double)ctx->caps.cache_bytes / 4.0;
    return clai__launch(ctx, CLAI__K_COPY_DENSE4, &global, 7, CLAI__ARG(dst->buf->mem), CLAI__ARG(src->buf->mem),
                        CLAI__ARG(n), CLAI__ARG(od), CLAI__ARG(os), CLAI__ARG(chunk), CLAI__ARG(nt));
  }
  clai__index ix;
  const clai_tensor *ops[2] = {dst, src};
  clai__index_build(&ix, 2, ops);
  const cl_long dd = dst->dtype, sd = src->dtype;
  size_t global = (size_t)ix.numel;
  return clai__launch(ctx, CLAI__K_COPY, &global, 5, CLAI__ARG(dst->buf->mem), CLAI__ARG(src->buf->mem),
                      CLAI__IDX(ix), CLAI__ARG(dd), CLAI__ARG(sd));
}

clai_status clai_copy(clai_context *ctx, clai_tensor *dst, const clai_tensor *src) {
  const char *fn = "clai_copy";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out_any(ctx, dst, fn, "dst");
  if (s == CLAI_OK) s = clai__check_tensor_any(ctx, src, fn, "src");
  if (s != CLAI_OK) return s;
  const int quant = clai_dtype_block(dst->dtype) > 1 || clai_dtype_block(src->dtype) > 1;
  if (quant && clai__tensors_overlap(dst, src))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: dst and src overlap in memory", fn);
  if (quant) return clai__copy_quant(ctx, dst, src, fn);
  if (clai__tensors_overlap(dst, src)) {
    int same = dst->dtype == src->dtype && dst->offset == src->offset && dst->ndim == src->ndim;
    for (int i = 0; same && i < dst->ndim; i++)
      same = dst->shape[i] == src->shape[i] && (dst->shape[i] == 1 || dst->strides[i] == src->strides[i]);
    if (!same) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: dst and src overlap in memory", fn);
  }
  return clai__copy(ctx, dst, src, fn);
}

clai_status clai_fill(clai_context *ctx, clai_tensor *dst, double value) {
  const char *fn = "clai_fill";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, dst, fn, "dst");
  if (s != CLAI_OK) return s;
  clai__index ix;
  const clai_tensor *ops[1] = {dst};
  clai__index_build(&ix, 1, ops);
  size_t global = (size_t)ix.numel;
  if (dst->dtype == CLAI_DTYPE_I32) {
    if (!(value >= -2147483648.0 && value <= 2147483647.0))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %g does not fit an i32 tensor", fn, value);
    const cl_int v = (cl_int)value;
    return clai__launch(ctx, CLAI__K_FILL_I32, &global, 3, CLAI__ARG(dst->buf->mem), CLAI__IDX(ix), CLAI__ARG(v));
  }
  const cl_float v = (cl_float)value;
  int k = dst->dtype == CLAI_DTYPE_F16 ? CLAI__K_FILL_F16 : CLAI__K_FILL_F32;
  return clai__launch(ctx, k, &global, 3, CLAI__ARG(dst->buf->mem), CLAI__IDX(ix), CLAI__ARG(v));
}
