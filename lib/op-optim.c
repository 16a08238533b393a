/* op-optim.c - optimizer steps (SGD with momentum, Adam, AdamW) and gradient clipping by global norm
 * (cl/optim.cl). One launch per parameter tensor; clipping is deterministic (fixed-order partial sums). */
#include <math.h>

#include "internal.h"

/* Checks one operand of an optimizer step against the parameter: same shape, dense, the expected dtype
 * (f32 for state, param's for the gradient), no overlap with param. */
static clai_status check_operand(clai_context *ctx, const char *fn, const clai_tensor *param, const clai_tensor *t,
                                 const char *what, int is_state) {
  clai_status s = clai__check_tensor(ctx, t, fn, what);
  if (s != CLAI_OK) return s;
  char a[160], b[160];
  if (!clai__same_shape(param, t))
    return clai__error(ctx, CLAI_E_SHAPE, "%s: param %s and %s %s differ in shape", fn,
                       clai__shape_str(param->ndim, param->shape, a, sizeof a), what,
                       clai__shape_str(t->ndim, t->shape, b, sizeof b));
  clai_dtype want = is_state ? CLAI_DTYPE_F32 : param->dtype;
  if (t->dtype != want)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: %s is %s, expected %s (%s)", fn, what, clai_dtype_name(t->dtype),
                       clai_dtype_name(want), is_state ? "optimizer state is f32" : "the dtype of param");
  if (!clai_tensor_is_contiguous(t))
    return clai__error(ctx, CLAI_E_NOT_CONTIGUOUS, "%s: %s is not contiguous; optimizer tensors must be dense", fn,
                       what);
  if (clai__tensors_overlap(param, t))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %s overlaps param", fn, what);
  return CLAI_OK;
}

static clai_status check_param(clai_context *ctx, const char *fn, const clai_tensor *param) {
  clai_status s = clai__check_tensor(ctx, param, fn, "param");
  if (s != CLAI_OK) return s;
  if (param->dtype != CLAI_DTYPE_F32 && param->dtype != CLAI_DTYPE_F16)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: param is %s; parameters are f32 or f16", fn,
                       clai_dtype_name(param->dtype));
  if (!clai_tensor_is_contiguous(param))
    return clai__error(ctx, CLAI_E_NOT_CONTIGUOUS, "%s: param is not contiguous; optimizer tensors must be dense", fn);
  return CLAI_OK;
}

static int finite_nonneg(float x) { return isfinite(x) && x >= 0.0f; }

clai_status clai_optim_sgd(clai_context *ctx, clai_tensor *param, clai_tensor *momentum_buf, const clai_tensor *grad,
                           int64_t step, const clai_sgd_params *hp) {
  const char *fn = "clai_optim_sgd";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (hp == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: params is NULL", fn);
  if (!finite_nonneg(hp->lr))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: lr %g is negative or not finite", fn, (double)hp->lr);
  if (!finite_nonneg(hp->momentum))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: momentum %g is negative or not finite", fn, (double)hp->momentum);
  if (!isfinite(hp->dampening))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: dampening %g is not finite", fn, (double)hp->dampening);
  if (!finite_nonneg(hp->weight_decay))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: weight_decay %g is negative or not finite", fn,
                       (double)hp->weight_decay);
  if (hp->nesterov && (hp->momentum <= 0.0f || hp->dampening != 0.0f))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: nesterov needs a momentum > 0 and zero dampening (momentum %g, "
                       "dampening %g)", fn, (double)hp->momentum, (double)hp->dampening);
  if (step < 1) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: step %lld is not >= 1", fn, (long long)step);
  clai_status s = check_param(ctx, fn, param);
  if (s == CLAI_OK) s = check_operand(ctx, fn, param, grad, "grad", 0);
  if (s != CLAI_OK) return s;
  if (hp->momentum != 0.0f) {
    if (momentum_buf == NULL)
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: momentum %g needs momentum_buf, which is NULL", fn,
                         (double)hp->momentum);
    s = check_operand(ctx, fn, param, momentum_buf, "momentum_buf", 1);
    if (s != CLAI_OK) return s;
    if (clai__tensors_overlap(momentum_buf, grad))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: momentum_buf overlaps grad", fn);
  }
  const cl_long n = clai_tensor_numel(param), po = param->offset, go = grad->offset;
  const cl_long bo = momentum_buf != NULL && hp->momentum != 0.0f ? momentum_buf->offset : 0;
  cl_mem bm = momentum_buf != NULL && hp->momentum != 0.0f ? momentum_buf->buf->mem : param->buf->mem;
  const cl_float lr = hp->lr, mom = hp->momentum, damp = hp->dampening, wd = hp->weight_decay;
  const cl_int nest = hp->nesterov != 0, first = step == 1;
  size_t global = (size_t)n;
  int k = param->dtype == CLAI_DTYPE_F32 ? CLAI__K_SGD_F32 : CLAI__K_SGD_F16;
  return clai__launch(ctx, k, &global, 13, CLAI__ARG(param->buf->mem), CLAI__ARG(grad->buf->mem), CLAI__ARG(bm),
                      CLAI__ARG(n), CLAI__ARG(po), CLAI__ARG(go), CLAI__ARG(bo), CLAI__ARG(lr), CLAI__ARG(mom),
                      CLAI__ARG(damp), CLAI__ARG(wd), CLAI__ARG(nest), CLAI__ARG(first));
}

static clai_status adam(clai_context *ctx, const char *fn, clai_tensor *param, clai_tensor *exp_avg,
                        clai_tensor *exp_avg_sq, const clai_tensor *grad, int64_t step, const clai_adam_params *hp,
                        int decoupled) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (hp == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: params is NULL", fn);
  if (!finite_nonneg(hp->lr))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: lr %g is negative or not finite", fn, (double)hp->lr);
  if (!(hp->beta1 >= 0.0f && hp->beta1 < 1.0f) || !(hp->beta2 >= 0.0f && hp->beta2 < 1.0f))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: betas (%g, %g) must lie in [0, 1)", fn, (double)hp->beta1,
                       (double)hp->beta2);
  if (!finite_nonneg(hp->eps))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: eps %g is negative or not finite", fn, (double)hp->eps);
  if (!finite_nonneg(hp->weight_decay))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: weight_decay %g is negative or not finite", fn,
                       (double)hp->weight_decay);
  if (step < 1) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: step %lld is not >= 1", fn, (long long)step);
  clai_status s = check_param(ctx, fn, param);
  if (s == CLAI_OK) s = check_operand(ctx, fn, param, grad, "grad", 0);
  if (s == CLAI_OK) s = check_operand(ctx, fn, param, exp_avg, "exp_avg", 1);
  if (s == CLAI_OK) s = check_operand(ctx, fn, param, exp_avg_sq, "exp_avg_sq", 1);
  if (s != CLAI_OK) return s;
  if (clai__tensors_overlap(exp_avg, exp_avg_sq) || clai__tensors_overlap(exp_avg, grad) ||
      clai__tensors_overlap(exp_avg_sq, grad))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: exp_avg, exp_avg_sq and grad must not overlap", fn);
  /* Bias corrections in double, as PyTorch computes them on the host for non-capturable steps. */
  double bc1 = 1.0 - pow((double)hp->beta1, (double)step), bc2 = 1.0 - pow((double)hp->beta2, (double)step);
  const cl_float step_size = (float)((double)hp->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
  const cl_long n = clai_tensor_numel(param), po = param->offset, go = grad->offset, mo = exp_avg->offset,
                vo = exp_avg_sq->offset;
  const cl_float lr = hp->lr, b1 = hp->beta1, b2 = hp->beta2, eps = hp->eps, wd = hp->weight_decay;
  const cl_int dec = decoupled;
  const int64_t per = ctx->caps.is_cpu ? 128 : 1; /* elements per work-item: CLAI_ADAM_PER in cl/optim.cl */
  size_t global = (size_t)((n + per - 1) / per);
  int k = param->dtype == CLAI_DTYPE_F32 ? CLAI__K_ADAM_F32 : CLAI__K_ADAM_F16;
  return clai__launch(ctx, k, &global, 17, CLAI__ARG(param->buf->mem), CLAI__ARG(grad->buf->mem),
                      CLAI__ARG(exp_avg->buf->mem), CLAI__ARG(exp_avg_sq->buf->mem), CLAI__ARG(n), CLAI__ARG(po),
                      CLAI__ARG(go), CLAI__ARG(mo), CLAI__ARG(vo), CLAI__ARG(lr), CLAI__ARG(b1), CLAI__ARG(b2),
                      CLAI__ARG(eps), CLAI__ARG(wd), CLAI__ARG(step_size), CLAI__ARG(bc2_sqrt), CLAI__ARG(dec));
}

clai_status clai_optim_adam(clai_context *ctx, clai_tensor *param, clai_tensor *exp_avg, clai_tensor *exp_avg_sq,
                            const clai_tensor *grad, int64_t step, const clai_adam_params *params) {
  return adam(ctx, "clai_optim_adam", param, exp_avg, exp_avg_sq, grad, step, params, 0);
}

clai_status clai_optim_adamw(clai_context *ctx, clai_tensor *param, clai_tensor *exp_avg, clai_tensor *exp_avg_sq,
                             const clai_tensor *grad, int64_t step, const clai_adam_params *params) {
  return adam(ctx, "clai_optim_adamw", param, exp_avg, exp_avg_sq, grad, step, params, 1);
}

/* Partial sums of squares for a tensor of n elements (clai__partials). */
static int64_t partials_for(const clai_context *ctx, int64_t n) { return clai__partials(ctx, n, 1); }

clai_status clai_clip_grad_norm(clai_context *ctx, clai_tensor *const *grads, int n, float max_norm,
                                clai_tensor *norm_out) {
  const char *fn = "clai_clip_grad_norm";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (n < 0 || (n > 0 && grads == NULL))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %d gradients at %p", fn, n, (const void *)grads);
  if (!(max_norm >= 0.0f) || isnan(max_norm))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: max_norm %g is negative", fn, (double)max_norm);
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    char what[32];
    snprintf(what, sizeof what, "grads[%d]", i);
    clai_status s = clai__check_tensor(ctx, grads[i], fn, what);
    if (s != CLAI_OK) return s;
    if (grads[i]->dtype != CLAI_DTYPE_F32 && grads[i]->dtype != CLAI_DTYPE_F16)
      return clai__error(ctx, CLAI_E_DTYPE, "%s: %s is %s; gradients are f32 or f16", fn, what,
                         clai_dtype_name(grads[i]->dtype));
    if (!clai_tensor_is_contiguous(grads[i]))
      return clai__error(ctx, CLAI_E_NOT_CONTIGUOUS, "%s: %s is not contiguous", fn, what);
    for (int j = 0; j < i; j++)
      if (clai__tensors_overlap(grads[i], grads[j]))
        return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grads[%d] overlaps grads[%d]", fn, i, j);
    total += partials_for(ctx, clai_tensor_numel(grads[i]));
  }
  if (norm_out != NULL) {
    clai_status s = clai__check_tensor(ctx, norm_out, fn, "norm_out");
    if (s != CLAI_OK) return s;
    if (norm_out->dtype != CLAI_DTYPE_F32)
      return clai__error(ctx, CLAI_E_DTYPE, "%s: norm_out is %s; it must be one f32 element", fn,
                         clai_dtype_name(norm_out->dtype));
    if (clai_tensor_numel(norm_out) != 1)
      return clai__error(ctx, CLAI_E_SHAPE, "%s: norm_out must be one f32 element (it has %lld elements)", fn,
                         (long long)clai_tensor_numel(norm_out));
    /* the norm is written before the gradients are scaled (and read by the scaling): no overlap */
    for (int i = 0; i < n; i++)
      if (clai__tensors_overlap(norm_out, grads[i]))
        return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: norm_out overlaps grads[%d]", fn, i);
  }
  if (n == 0) return norm_out != NULL ? clai_fill(ctx, norm_out, 0.0) : CLAI_OK;
  clai_tensor *partial = NULL, *scal = NULL;
  int64_t shp = total, two = 2;
  clai_status s = clai_tensor_init(ctx, &partial, CLAI_DTYPE_F32, 1, &shp);
  if (s == CLAI_OK) s = clai_tensor_init(ctx, &scal, CLAI_DTYPE_F32, 1, &two);
  cl_long at = 0;
  for (int i = 0; i < n && s == CLAI_OK; i++) {
    const clai_tensor *g = grads[i];
    const cl_long cnt = clai_tensor_numel(g), xo = g->offset, P = partials_for(ctx, cnt);
    size_t global = (size_t)P;
    int k = g->dtype == CLAI_DTYPE_F32 ? CLAI__K_SUMSQ_F32 : CLAI__K_SUMSQ_F16;
    s = clai__launch(ctx, k, &global, 6, CLAI__ARG(partial->buf->mem), CLAI__ARG(g->buf->mem), CLAI__ARG(cnt),
                     CLAI__ARG(xo), CLAI__ARG(at), CLAI__ARG(P));
    at += P;
  }
  if (s == CLAI_OK) {
    const cl_long count = total, oo = norm_out != NULL ? norm_out->offset : 0;
    const cl_float mx = max_norm;
    const cl_int has_out = norm_out != NULL, active = 1;
    cl_mem om = norm_out != NULL ? norm_out->buf->mem : scal->buf->mem;
    size_t group = ctx->klocal[CLAI__K_NORM_FINISH][0]; /* one work-group; local_1d is at most 256 */
    s = clai__launch(ctx, CLAI__K_NORM_FINISH, &group, 8, CLAI__ARG(scal->buf->mem), CLAI__ARG(partial->buf->mem),
                     CLAI__ARG(om), CLAI__ARG(count), CLAI__ARG(oo), CLAI__ARG(mx), CLAI__ARG(has_out),
                     CLAI__ARG(active));
  }
  for (int i = 0; i < n && s == CLAI_OK; i++) {
    clai_tensor *g = grads[i];
    const cl_long cnt = clai_tensor_numel(g), xo = g->offset;
    size_t global = (size_t)cnt;
    int k = g->dtype == CLAI_DTYPE_F32 ? CLAI__K_CLIP_SCALE_F32 : CLAI__K_CLIP_SCALE_F16;
    s = clai__launch(ctx, k, &global, 4, CLAI__ARG(g->buf->mem), CLAI__ARG(scal->buf->mem), CLAI__ARG(cnt),
                     CLAI__ARG(xo));
  }
  /* Freeing before the kernels ran is safe: the in-order queue orders any reuse of the buffers after them. */
  clai_tensor_free(partial);
  clai_tensor_free(scal);
  return s;
}
