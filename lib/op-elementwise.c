/* op-elementwise.c - binary ops with NumPy broadcasting, unary ops, scale / add-scalar (cl/elementwise.cl). */
#include "internal.h"

#define OP_AFFINE 100 /* CLAI_OP_AFFINE in cl/elementwise.cl */

static const char *const binary_names[] = {"add", "sub", "mul", "div", "maximum", "minimum"};
static const char *const unary_names[] = {"neg", "abs", "exp", "log", "sqrt", "relu", "gelu", "silu", "sigmoid", "tanh"};

/* After merging, is the op a dense [rows, cols] output (or one row) with each input's column stride 0 or 1?
 * That covers same-shape dense operands, a row or column vector broadcast against a matrix, and scalars. */
static int rows_form(const clai__index *ix) {
  if (ix->ndim > 2) return 0;
  if (ix->ndim == 0) return 1;
  const int in = (int)ix->ndim - 1;
  if (ix->stride[0][in] != 1 || (ix->ndim == 2 && ix->stride[0][0] != ix->shape[1])) return 0;
  for (int k = 1; k < 3; k++)
    if (ix->stride[k][in] != 0 && ix->stride[k][in] != 1) return 0;
  return 1;
}

clai_status clai_binary(clai_context *ctx, clai_binary_op op, clai_tensor *out, const clai_tensor *a,
                        const clai_tensor *b) {
  const char *fn = "clai_binary";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if ((int)op < 0 || (int)op > CLAI_MINIMUM)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %d is not a clai_binary_op", fn, (int)op);
  clai_status s = clai__check_out(ctx, out, fn, "out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, a, fn, "a");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, b, fn, "b");
  if (s != CLAI_OK) return s;
  const char *name = binary_names[op];
  if (a->dtype != out->dtype || b->dtype != out->dtype)
    return clai__error(ctx, CLAI_E_DTYPE, "%s(%s): dtypes differ (out %s, a %s, b %s); convert with clai_copy", fn,
                       name, clai_dtype_name(out->dtype), clai_dtype_name(a->dtype), clai_dtype_name(b->dtype));
  int64_t sa[CLAI_MAX_DIMS], sb[CLAI_MAX_DIMS];
  char x[160], y[160], z[160];
  if (!clai__broadcast_strides(a, out->ndim, out->shape, sa) || !clai__broadcast_strides(b, out->ndim, out->shape, sb))
    return clai__error(ctx, CLAI_E_SHAPE, "%s(%s): a %s and b %s do not broadcast to out %s", fn, name,
                       clai__shape_str(a->ndim, a->shape, x, sizeof x), clai__shape_str(b->ndim, b->shape, y, sizeof y),
                       clai__shape_str(out->ndim, out->shape, z, sizeof z));
  if (!clai__alias_ok(out, a) || !clai__alias_ok(out, b))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s(%s): out overlaps an input other than element for element", fn, name);
  const cl_int cop = (cl_int)op;
  clai__index ix;
  const clai_tensor *ops[3] = {out, a, b};
  clai__index_build(&ix, 3, ops);
  if (out->dtype == CLAI_DTYPE_F32 && rows_form(&ix)) {
    /* [rows, cols] with unit or zero column strides: contiguous runs per work-item (see cl/elementwise.cl) */
    const int two = ix.ndim == 2;
    const cl_long rows = two ? ix.shape[0] : 1, cols = ix.ndim > 0 ? ix.shape[ix.ndim - 1] : 1;
    const cl_long chunk = ctx->caps.is_cpu ? 2048 : 8, oo = ix.offset[0], oa = ix.offset[1], ob = ix.offset[2];
    const cl_long ars = two ? ix.stride[1][0] : 0, brs = two ? ix.stride[2][0] : 0;
    const cl_int acs = ix.ndim > 0 ? (cl_int)ix.stride[1][ix.ndim - 1] : 0;
    const cl_int bcs = ix.ndim > 0 ? (cl_int)ix.stride[2][ix.ndim - 1] : 0;
    size_t global = (size_t)(rows * ((cols + chunk - 1) / chunk));
    return clai__launch(ctx, CLAI__K_BINARY_ROWS_F32, &global, 14, CLAI__ARG(out->buf->mem), CLAI__ARG(a->buf->mem),
                        CLAI__ARG(b->buf->mem), CLAI__ARG(rows), CLAI__ARG(cols), CLAI__ARG(chunk), CLAI__ARG(oo),
                        CLAI__ARG(oa), CLAI__ARG(ob), CLAI__ARG(ars), CLAI__ARG(brs), CLAI__ARG(acs), CLAI__ARG(bcs),
                        CLAI__ARG(cop));
  }
  int k = out->dtype == CLAI_DTYPE_F32 ? CLAI__K_BINARY_F32 : out->dtype == CLAI_DTYPE_F16 ? CLAI__K_BINARY_F16 : CLAI__K_BINARY_I32;
  size_t global = (size_t)ix.numel;
  return clai__launch(ctx, k, &global, 5, CLAI__ARG(out->buf->mem), CLAI__ARG(a->buf->mem), CLAI__ARG(b->buf->mem),
                      CLAI__IDX(ix), CLAI__ARG(cop));
}

/* One entry for every unary op and the affine map (op = OP_AFFINE). */
static clai_status unary(clai_context *ctx, const char *fn, const char *name, int op, clai_tensor *out,
                         const clai_tensor *x, float alpha, float beta) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, out, fn, "out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s != CLAI_OK) return s;
  if (x->dtype != out->dtype)
    return clai__error(ctx, CLAI_E_DTYPE, "%s(%s): dtypes differ (out %s, x %s); convert with clai_copy", fn, name,
                       clai_dtype_name(out->dtype), clai_dtype_name(x->dtype));
  int int_ok = op == CLAI_NEG || op == CLAI_ABS || op == CLAI_RELU;
  if (out->dtype == CLAI_DTYPE_I32 && !int_ok)
    return clai__error(ctx, CLAI_E_DTYPE, "%s(%s): not defined for i32 tensors (only neg, abs, relu are)", fn, name);
  char a[160], b[160];
  if (x->ndim != out->ndim) goto shape_error;
  for (int i = 0; i < x->ndim; i++)
    if (x->shape[i] != out->shape[i]) goto shape_error;
  if (!clai__alias_ok(out, x))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s(%s): out overlaps x other than element for element", fn, name);
  const cl_int cop = op;
  const cl_float al = alpha, be = beta;
  if (out->dtype == CLAI_DTYPE_F32 && clai_tensor_is_contiguous(out) && clai_tensor_is_contiguous(x)) {
    /* contiguous runs per work-item (see cl/elementwise.cl) */
    const cl_long n = clai_tensor_numel(out), oo = out->offset, ox = x->offset;
    const cl_long chunk = ctx->caps.is_cpu ? 2048 : 8;
    size_t global = (size_t)((n + chunk - 1) / chunk);
    return clai__launch(ctx, CLAI__K_UNARY_ROWS_F32, &global, 9, CLAI__ARG(out->buf->mem), CLAI__ARG(x->buf->mem),
                        CLAI__ARG(n), CLAI__ARG(chunk), CLAI__ARG(oo), CLAI__ARG(ox), CLAI__ARG(cop), CLAI__ARG(al),
                        CLAI__ARG(be));
  }
  clai__index ix;
  const clai_tensor *ops[2] = {out, x};
  clai__index_build(&ix, 2, ops);
  int k = out->dtype == CLAI_DTYPE_F32 ? CLAI__K_UNARY_F32 : out->dtype == CLAI_DTYPE_F16 ? CLAI__K_UNARY_F16 : CLAI__K_UNARY_I32;
  size_t global = (size_t)ix.numel;
  return clai__launch(ctx, k, &global, 6, CLAI__ARG(out->buf->mem), CLAI__ARG(x->buf->mem), CLAI__IDX(ix),
                      CLAI__ARG(cop), CLAI__ARG(al), CLAI__ARG(be));
shape_error:
  return clai__error(ctx, CLAI_E_SHAPE, "%s(%s): out %s and x %s differ in shape", fn, name,
                     clai__shape_str(out->ndim, out->shape, a, sizeof a), clai__shape_str(x->ndim, x->shape, b, sizeof b));
}

clai_status clai_unary(clai_context *ctx, clai_unary_op op, clai_tensor *out, const clai_tensor *x) {
  if (ctx != NULL && ((int)op < 0 || (int)op > CLAI_TANH))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "clai_unary: %d is not a clai_unary_op", (int)op);
  return unary(ctx, "clai_unary", ctx != NULL ? unary_names[op] : "?", (int)op, out, x, 1.0f, 0.0f);
}

clai_status clai_glu(clai_context *ctx, clai_unary_op op, clai_tensor *out, const clai_tensor *x) {
  const char *fn = "clai_glu";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if ((int)op < 0 || (int)op > CLAI_TANH) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %d is not a clai_unary_op", fn, (int)op);
  clai_status s = clai__check_out(ctx, out, fn, "out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s != CLAI_OK) return s;
  if (x->dtype != out->dtype || x->dtype == CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: out and x must share one dtype, f32 or f16 (have %s, %s)", fn,
                       clai_dtype_name(out->dtype), clai_dtype_name(x->dtype));
  char a[160], b[160];
  int ok = x->ndim >= 1 && x->ndim == out->ndim && x->shape[x->ndim - 1] % 2 == 0 &&
           out->shape[out->ndim - 1] == x->shape[x->ndim - 1] / 2;
  for (int i = 0; ok && i < x->ndim - 1; i++) ok = x->shape[i] == out->shape[i];
  if (!ok)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: x %s must be out %s with its last dim doubled", fn,
                       clai__shape_str(x->ndim, x->shape, a, sizeof a), clai__shape_str(out->ndim, out->shape, b, sizeof b));
  if (clai__tensors_overlap(out, x)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps x in memory", fn);
  const int last = x->ndim - 1;
  const int64_t n = out->shape[last], rows = n > 0 ? clai_tensor_numel(out) / n : 0;
  if (out->dtype == CLAI_DTYPE_F32 && rows > 0 && (out->strides[last] == 1 || n == 1) &&
      (x->strides[last] == 1 || 2 * n == 1)) {
    /* rows of dense last dims, evenly spaced (one stride over the leading dims, or one row) */
    int64_t ors = 0, xrs = 0, k = -1;
    int even = 1;
    for (int i = last - 1; i >= 0; i--)
      if (out->shape[i] > 1) {
        if (k >= 0 && (out->strides[i] != out->strides[k] * out->shape[k] || x->strides[i] != x->strides[k] * x->shape[k]))
          even = 0;
        if (k < 0) ors = out->strides[i], xrs = x->strides[i];
        k = i;
      }
    if (even) {
      const cl_long crows = rows, cn = n, chunk = ctx->caps.is_cpu ? 512 : 8, oo = out->offset, xo = x->offset,
                    cors = ors, cxrs = xrs;
      const cl_int cop = (cl_int)op;
      size_t global = (size_t)(rows * ((n + chunk - 1) / chunk));
      return clai__launch(ctx, CLAI__K_GLU_ROWS_F32, &global, 10, CLAI__ARG(out->buf->mem), CLAI__ARG(x->buf->mem),
                          CLAI__ARG(crows), CLAI__ARG(cn), CLAI__ARG(chunk), CLAI__ARG(oo), CLAI__ARG(cors),
                          CLAI__ARG(xo), CLAI__ARG(cxrs), CLAI__ARG(cop));
    }
  }
  clai_tensor xa = *x, xb = *x;
  xa.shape[last] = xb.shape[last] = out->shape[last];
  xb.offset += out->shape[last] * x->strides[last];
  clai__index ix;
  const clai_tensor *ops[3] = {out, &xa, &xb};
  clai__index_build(&ix, 3, ops);
  const cl_int cop = (cl_int)op;
  size_t global = (size_t)ix.numel;
  return clai__launch(ctx, out->dtype == CLAI_DTYPE_F16 ? CLAI__K_GLU_F16 : CLAI__K_GLU_F32, &global, 4,
                      CLAI__ARG(out->buf->mem), CLAI__ARG(x->buf->mem), CLAI__IDX(ix), CLAI__ARG(cop));
}

clai_status clai_affine(clai_context *ctx, clai_tensor *out, const clai_tensor *x, float alpha, float beta) {
  return unary(ctx, "clai_affine", "affine", OP_AFFINE, out, x, alpha, beta);
}

clai_status clai_scale(clai_context *ctx, clai_tensor *out, const clai_tensor *x, float alpha) {
  return clai_affine(ctx, out, x, alpha, 0.0f);
}

clai_status clai_add_scalar(clai_context *ctx, clai_tensor *out, const clai_tensor *x, float beta) {
  return clai_affine(ctx, out, x, 1.0f, beta);
}

