/* op-quant.c - quantized tensors (Q8_0, Q4_0, Q4_1: GGUF's 32-value blocks; Q4_K, Q6_K: its 256-value
 * super-blocks, include/clai.h): the dequantizing copy and the block copy behind clai_copy. The kernels walk
 * every format in 32-value blocks (a K-quant's sub-blocks, cl/quant.cl). The product with a quantized weight
 * matrix is in op-matmul.c and the lookup from a quantized embedding table in op-layout.c; their kernels are
 * in cl/quant.cl with these. */
#include <string.h>

#include "internal.h"

/* Checks that src broadcasts to dst's shape with an equal last dim (the one holding the blocks) and builds
 * the index over [dst's leading dims..., blocks of the last dim] that the block kernels run on: operand 0 is
 * dst, 1 src, with the innermost strides of one block step (32 elements of the quantized side, 32 values of
 * the float side at its element stride, returned in *fs). what names the check in the message. */
static clai_status block_index(clai_context *ctx, const char *fn, clai_tensor *dst, const clai_tensor *src,
                               int dst_quant, clai__index *ix, cl_long *fs) {
  int64_t st[CLAI_MAX_DIMS];
  char a[160], b[160];
  const int last = dst->ndim - 1;
  if (dst->ndim < 1 || !clai__broadcast_strides(src, dst->ndim, dst->shape, st) || src->ndim < 1 ||
      src->shape[src->ndim - 1] != dst->shape[last])
    return clai__error(ctx, CLAI_E_SHAPE, "%s: the %s source %s does not match the %s destination %s (its leading "
                       "dims may broadcast; the last dim, which holds the blocks, must be equal)", fn,
                       clai_dtype_name(src->dtype), clai__shape_str(src->ndim, src->shape, a, sizeof a),
                       clai_dtype_name(dst->dtype), clai__shape_str(dst->ndim, dst->shape, b, sizeof b));
  clai_tensor db = *dst, sb = *src;
  sb.ndim = dst->ndim;
  memcpy(sb.shape, dst->shape, sizeof sb.shape);
  memcpy(sb.strides, st, sizeof sb.strides);
  db.shape[last] = sb.shape[last] = dst->shape[last] / 32;
  *fs = dst_quant ? st[last] : dst->strides[last];
  db.strides[last] = dst_quant ? 32 : dst->strides[last] * 32;
  sb.strides[last] = dst_quant ? st[last] * 32 : 32;
  const clai_tensor *ops[2] = {&db, &sb};
  clai__index_build(ix, 2, ops);
  return CLAI_OK;
}

clai_status clai__dequant(clai_context *ctx, clai_tensor *dst, const clai_tensor *src, const char *fn) {
  clai__index ix;
  cl_long os;
  clai_status st = block_index(ctx, fn, dst, src, 0, &ix, &os);
  if (st != CLAI_OK || clai_tensor_numel(dst) == 0) return st;
  const cl_int fmt = (cl_int)src->dtype, half = dst->dtype == CLAI_DTYPE_F16;
  size_t global = (size_t)ix.numel;
  return clai__launch(ctx, CLAI__K_DEQUANT, &global, 6, CLAI__ARG(dst->buf->mem), CLAI__ARG(src->buf->mem),
                      CLAI__IDX(ix), CLAI__ARG(os), CLAI__ARG(fmt), CLAI__ARG(half));
}

/* Byte offset of element `off` (a block start) of a quantized tensor. */
static size_t block_byte(const clai_tensor *t, int64_t off) {
  return (size_t)(off / clai_dtype_block(t->dtype)) * clai_dtype_size(t->dtype);
}

/* dst = src for two quantized tensors of one dtype and shape: their rows (whole blocks, consecutive) are
 * copied on the device, one clEnqueueCopyBuffer per row unless both are dense. */
static clai_status copy_blocks(clai_context *ctx, clai_tensor *dst, const clai_tensor *src, const char *fn) {
  const int64_t numel = clai_tensor_numel(dst);
  if (numel == 0) return CLAI_OK;
  const int64_t cols = dst->shape[dst->ndim - 1];
  const int whole = clai_tensor_is_contiguous(dst) && clai_tensor_is_contiguous(src);
  const int64_t rows = whole ? 1 : numel / cols;
  const size_t rbytes = block_byte(dst, whole ? numel : cols);
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, od = dst->offset, os = src->offset;
    for (int d = dst->ndim - 2; d >= 0 && !whole; d--) {
      od += rem % dst->shape[d] * dst->strides[d];
      os += rem % dst->shape[d] * src->strides[d];
      rem /= dst->shape[d];
    }
    cl_int err = clEnqueueCopyBuffer(ctx->queue, src->buf->mem, dst->buf->mem, block_byte(src, os), block_byte(dst, od),
                                     rbytes, 0, NULL, NULL);
    if (err != CL_SUCCESS) return clai__cl_error(ctx, err, "%s: clEnqueueCopyBuffer (row %lld) failed", fn, (long long)r);
  }
  return CLAI_OK;
}

/* dst (Q8_0) = src (f32 or f16, any strides; leading dims may broadcast, the last dim equals dst's). */
static clai_status quantize(clai_context *ctx, clai_tensor *dst, const clai_tensor *src, const char *fn) {
  if (dst->dtype != CLAI_DTYPE_Q8_0 || src->dtype == CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: %s into %s: libclai quantizes f32 and f16 into q8_0 only (write "
                       "other quantized blocks with clai_tensor_write)", fn, clai_dtype_name(src->dtype),
                       clai_dtype_name(dst->dtype));
  clai__index ix;
  cl_long xs;
  clai_status st = block_index(ctx, fn, dst, src, 1, &ix, &xs);
  if (st != CLAI_OK || clai_tensor_numel(dst) == 0) return st;
  const cl_int half = src->dtype == CLAI_DTYPE_F16;
  size_t global = (size_t)ix.numel;
  return clai__launch(ctx, CLAI__K_QUANT_Q8_0, &global, 5, CLAI__ARG(dst->buf->mem), CLAI__ARG(src->buf->mem),
                      CLAI__IDX(ix), CLAI__ARG(xs), CLAI__ARG(half));
}

clai_status clai__copy_quant(clai_context *ctx, clai_tensor *dst, const clai_tensor *src, const char *fn) {
  char a[160], b[160];
  const int qd = clai_dtype_block(dst->dtype) > 1, qs = clai_dtype_block(src->dtype) > 1;
  if (qd && !qs) return quantize(ctx, dst, src, fn);
  if (qd) {
    if (dst->dtype != src->dtype)
      return clai__error(ctx, CLAI_E_DTYPE, "%s: %s into %s: quantized tensors copy only into their own dtype or "
                         "into f32/f16", fn, clai_dtype_name(src->dtype), clai_dtype_name(dst->dtype));
    if (!clai__same_shape(dst, src))
      return clai__error(ctx, CLAI_E_SHAPE, "%s: quantized copies need equal shapes (%s into %s)", fn,
                         clai__shape_str(src->ndim, src->shape, a, sizeof a),
                         clai__shape_str(dst->ndim, dst->shape, b, sizeof b));
    return copy_blocks(ctx, dst, src, fn);
  }
  if (dst->dtype == CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: a %s tensor dequantizes into f32 or f16, not i32", fn,
                       clai_dtype_name(src->dtype));
  return clai__dequant(ctx, dst, src, fn);
}
