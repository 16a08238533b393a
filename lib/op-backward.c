/* op-backward.c - gradients of the elementwise ops: the activations and the binary ops with broadcasting
 * (cl/backward.cl). */
#include "internal.h"

static const char *const names[] = {"neg", "abs", "exp", "log", "sqrt", "relu", "gelu", "silu", "sigmoid", "tanh"};

clai_status clai_unary_backward(clai_context *ctx, clai_unary_op op, clai_tensor *grad_x, const clai_tensor *grad_out,
                                const clai_tensor *x) {
  const char *fn = "clai_unary_backward";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if ((int)op < 0 || (int)op > CLAI_TANH)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %d is not a clai_unary_op", fn, (int)op);
  const char *name = names[op];
  clai_status s = clai__check_out(ctx, grad_x, fn, "grad_x");
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
                      CLAI__ARG(x->buf->mem), CLAI__IDX(ix), CLAI__ARG(cop));
}

static const char *const binary_names[] = {"add", "sub", "mul", "div", "maximum", "minimum"};

/* One side's gradient: the kernel writes grad_out * d(a OP b)/d(side) densely over grad_out's shape into a
 * pooled f32 workspace, and clai_sum_to folds it to the side's shape (a copy where nothing was broadcast),
 * in a fixed order, so the result is the same on every run. */
static clai_status binary_side(clai_context *ctx, clai_binary_op op, int side, clai_tensor *grad,
                               const clai_tensor *grad_out, const clai_tensor *a, const clai_tensor *b) {
  clai_tensor *full = NULL;
  clai_status st = clai_tensor_init(ctx, &full, CLAI_DTYPE_F32, grad_out->ndim, grad_out->shape);
  if (st != CLAI_OK) return st;
  clai__index ix;
  const clai_tensor *ops[3] = {grad_out, a, b};
  clai__index_build(&ix, 3, ops);
  const cl_int cop = (cl_int)op, cside = side;
  const int64_t per = ctx->caps.is_cpu ? 32 : 1; /* CLAI_BWD_PER in cl/backward.cl */
  size_t global = (size_t)((ix.numel + per - 1) / per);
  int k = grad_out->dtype == CLAI_DTYPE_F32 ? CLAI__K_BINARY_BWD_F32 : CLAI__K_BINARY_BWD_F16;
  st = clai__launch(ctx, k, &global, 7, CLAI__ARG(full->buf->mem), CLAI__ARG(grad_out->buf->mem),
                    CLAI__ARG(a->buf->mem), CLAI__ARG(b->buf->mem), CLAI__IDX(ix), CLAI__ARG(cop), CLAI__ARG(cside));
  if (st == CLAI_OK) st = clai_sum_to(ctx, grad, full);
  clai_tensor_free(full);
  return st;
}

clai_status clai_binary_backward(clai_context *ctx, clai_binary_op op, clai_tensor *grad_a, clai_tensor *grad_b,
                                 const clai_tensor *grad_out, const clai_tensor *a, const clai_tensor *b) {
  const char *fn = "clai_binary_backward";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if ((int)op < 0 || (int)op > CLAI_MINIMUM)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %d is not a clai_binary_op", fn, (int)op);
  const char *name = binary_names[op];
  clai_status s = clai__check_tensor(ctx, grad_out, fn, "grad_out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, a, fn, "a");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, b, fn, "b");
  if (s == CLAI_OK && grad_a != NULL) s = clai__check_out(ctx, grad_a, fn, "grad_a");
  if (s == CLAI_OK && grad_b != NULL) s = clai__check_out(ctx, grad_b, fn, "grad_b");
  if (s != CLAI_OK) return s;
  const clai_dtype dt = grad_out->dtype;
  if (dt != CLAI_DTYPE_F32 && dt != CLAI_DTYPE_F16)
    return clai__error(ctx, CLAI_E_DTYPE, "%s(%s): grad_out is %s; gradients are f32 or f16", fn, name,
                       clai_dtype_name(dt));
  if (a->dtype != dt || b->dtype != dt || (grad_a != NULL && grad_a->dtype != dt) ||
      (grad_b != NULL && grad_b->dtype != dt))
    return clai__error(ctx, CLAI_E_DTYPE, "%s(%s): grad_out, a, b, grad_a and grad_b must share one dtype (grad_out is %s)",
                       fn, name, clai_dtype_name(dt));
  int64_t st_[CLAI_MAX_DIMS];
  char x[160], y[160], z[160];
  if (!clai__broadcast_strides(a, grad_out->ndim, grad_out->shape, st_) ||
      !clai__broadcast_strides(b, grad_out->ndim, grad_out->shape, st_))
    return clai__error(ctx, CLAI_E_SHAPE, "%s(%s): a %s and b %s do not broadcast to grad_out %s (the forward's out)", fn,
                       name, clai__shape_str(a->ndim, a->shape, x, sizeof x), clai__shape_str(b->ndim, b->shape, y, sizeof y),
                       clai__shape_str(grad_out->ndim, grad_out->shape, z, sizeof z));
  const clai_tensor *sides[2] = {grad_a, grad_b}, *ins[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    const clai_tensor *gs = sides[i];
    if (gs == NULL) continue;
    if (!clai__same_shape(gs, ins[i]))
      return clai__error(ctx, CLAI_E_SHAPE, "%s(%s): grad_%c %s must have %c's shape %s", fn, name, "ab"[i],
                         clai__shape_str(gs->ndim, gs->shape, x, sizeof x), "ab"[i],
                         clai__shape_str(ins[i]->ndim, ins[i]->shape, y, sizeof y));
    if (clai__tensors_overlap(gs, grad_out) || clai__tensors_overlap(gs, a) || clai__tensors_overlap(gs, b))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s(%s): grad_%c overlaps grad_out, a or b", fn, name, "ab"[i]);
  }
  if (grad_a != NULL && grad_b != NULL && clai__tensors_overlap(grad_a, grad_b))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s(%s): grad_a and grad_b overlap", fn, name);
  s = CLAI_OK;
  if (grad_a != NULL) s = binary_side(ctx, op, 0, grad_a, grad_out, a, b);
  if (s == CLAI_OK && grad_b != NULL) s = binary_side(ctx, op, 1, grad_b, grad_out, a, b);
  return s;
}
