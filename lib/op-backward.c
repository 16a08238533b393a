/* op-backward.c - gradients of the elementwise activations (cl/backward.cl). */
#include "internal.h"

static const char *const names[] = {"neg", "abs", "exp", "log", "sqrt", "relu", "gelu", "silu", "sigmoid", "tanh"};

clai_status clai_unary_backward(clai_context *ctx, clai_unary_op op, clai_tensor *grad_x, const clai_tensor *grad_out,
                                const clai_tensor *x) {
  const char *fn = "clai_unary_backward";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if ((int)op < 0 || (int)op > CLAI_TANH)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %d is not a clai_unary_op", fn, (int)op);
  const char *name = names[op];
  clai_status s = clai__check_tensor(ctx, grad_x, fn, "grad_x");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, grad_out, fn, "grad_out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s != CLAI_OK) return s;
  if (grad_x->dtype != CLAI_DTYPE_F32 && grad_x->dtype != CLAI_DTYPE_F16)
    return clai__error(ctx, CLAI_E_DTYPE, "%s(%s): grad_x is %s; gradients are f32 or f16", fn, name,
                       clai_dtype_name(grad_x->dtype));
  if (grad_out->dtype != grad_x->dtype || x->dtype != grad_x->dtype)
    return clai__error(ctx, CLAI_E_DTYPE, "%s(%s): dtypes differ (grad_x %s, grad_out %s, x %s)", fn, name,
                       clai_dtype_name(grad_x->dtype), clai_dtype_name(grad_out->dtype), clai_dtype_name(x->dtype));
  char a[160], b[160];
  if (!clai__same_shape(grad_x, grad_out) || !clai__same_shape(grad_x, x)) {
    const clai_tensor *bad = !clai__same_shape(grad_x, grad_out) ? grad_out : x;
    return clai__error(ctx, CLAI_E_SHAPE, "%s(%s): grad_x %s and %s %s differ in shape", fn, name,
                       clai__shape_str(grad_x->ndim, grad_x->shape, a, sizeof a), bad == x ? "x" : "grad_out",
                       clai__shape_str(bad->ndim, bad->shape, b, sizeof b));
  }
  for (int i = 0; i < grad_x->ndim; i++)
    if (grad_x->shape[i] > 1 && grad_x->strides[i] == 0)
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s(%s): grad_x is a broadcast view (a stride of 0)", fn, name);
  if (!clai__alias_ok(grad_x, grad_out) || !clai__alias_ok(grad_x, x))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s(%s): grad_x overlaps an input other than element for element",
                       fn, name);
  clai__index ix;
  const clai_tensor *ops[3] = {grad_x, grad_out, x};
  clai__index_build(&ix, 3, ops);
  const cl_int cop = (cl_int)op;
  const int64_t per = ctx->caps.is_cpu ? 32 : 1; /* elements per work-item: CLAI_BWD_PER in cl/backward.cl */
  size_t global = (size_t)((ix.numel + per - 1) / per);
  int k = grad_x->dtype == CLAI_DTYPE_F32 ? CLAI__K_UNARY_BWD_F32 : CLAI__K_UNARY_BWD_F16;
  return clai__launch(ctx, k, &global, 5, CLAI__ARG(grad_x->buf->mem), CLAI__ARG(grad_out->buf->mem),
                      CLAI__ARG(x->buf->mem), CLAI__ARG(ix), CLAI__ARG(cop));
}
