/* op-loss.c - softmax cross-entropy over integer labels and mean squared error (cl/loss.cl). The mean is
 * reduced in a fixed order (partial sums whose layout depends on the size and the device class alone, then one
 * work-group), never with atomics. The finishing kernels run as one work-group: a global size of 1 is
 * rounded up to the local size (local_1d, at most 256) by clai__launch. With one partial there is nothing to
 * fold: the partial's kernel writes the result, and the finishing kernel is not launched. */
#include <math.h>

#include "internal.h"

/* On GPUs, rows at least this long get a work-group each (clai_xent_rows_wg_*), so that neighbouring
 * work-items read neighbouring logits; shorter rows, and every row on CPUs (where POCL runs one work-item
 * per row faster: measured 2x at [8192, 1000] and [128, 32000]), get one work-item each. CLAI_ROWS=wg or
 * item (ctx->rows_forced) forces one form for every row length on any device. */
#define XENT_WG_MIN_C 128

/* Partial sums (clai__partials); the walk of an MSE element takes up to CLAI_MAX_DIMS more iterations (its
 * offsets). */
static int64_t partials_for(const clai_context *ctx, int64_t n) { return clai__partials(ctx, n, CLAI_MAX_DIMS); }

static clai_status check_loss_out(clai_context *ctx, const char *fn, const clai_tensor *loss) {
  clai_status s = clai__check_tensor(ctx, loss, fn, "loss");
  if (s != CLAI_OK) return s;
  if (loss->dtype != CLAI_DTYPE_F32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: loss is %s; it must be one f32 element", fn,
                       clai_dtype_name(loss->dtype));
  if (clai_tensor_numel(loss) != 1)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: loss must be one f32 element (it has %lld elements)", fn,
                       (long long)clai_tensor_numel(loss));
  return CLAI_OK;
}

/* The work-group of the one-group kernels that fold the partials (clai_xent_inv, clai_loss_finish): on a
 * CPU a single work-item (at most 1024 values, clai__partials, a loop of microseconds; and POCL compiles
 * the group of 1 without the barriers' work-item loops, 0.03 instead of 0.15 s at a cold start), else (and
 * where a loop budget may have made more partials) the kernel's usual group (NULL). */
static const size_t *fold_local(const clai_context *ctx) {
  static const size_t one = 1;
  return ctx->caps.is_cpu && ctx->caps.loop_limit == 0 ? &one : NULL;
}

/* Adds the n f32 values of the dense tensor `vals` into loss, times scal[0] (scal != NULL) or scale. */
static clai_status sum_into(clai_context *ctx, clai_tensor *loss, const clai_tensor *vals, int64_t n,
                            const clai_tensor *scal, float scale) {
  const cl_long P = partials_for(ctx, n), cn = n, oo = loss->offset;
  clai_tensor *part = NULL;
  int64_t shp = P;
  clai_status s = clai_tensor_init(ctx, &part, CLAI_DTYPE_F32, 1, &shp);
  size_t global = (size_t)P, one = 1;
  const cl_float sc = scale;
  const cl_int use_scal = scal != NULL, active = 1;
  cl_mem sm = scal != NULL ? scal->buf->mem : part != NULL ? part->buf->mem : NULL;
  if (s == CLAI_OK)
    s = clai__launch(ctx, CLAI__K_LOSS_PARTIAL, &global, 9, CLAI__ARG(part->buf->mem), CLAI__ARG(vals->buf->mem),
                     CLAI__ARG(cn), CLAI__ARG(P), CLAI__ARG(loss->buf->mem), CLAI__ARG(sm), CLAI__ARG(oo),
                     CLAI__ARG(sc), CLAI__ARG(use_scal));
  if (s == CLAI_OK && P > 1) { /* one partial: clai_loss_partial wrote the result */
    s = clai__launch_local(ctx, CLAI__K_LOSS_FINISH, &one, fold_local(ctx), 8, CLAI__ARG(loss->buf->mem),
                           CLAI__ARG(part->buf->mem), CLAI__ARG(sm), CLAI__ARG(P), CLAI__ARG(oo), CLAI__ARG(sc),
                           CLAI__ARG(use_scal), CLAI__ARG(active));
  }
  clai_tensor_free(part); /* the in-order queue orders any reuse after the kernels */
  return s;
}

clai_status clai__loss_cross_entropy(clai_context *ctx, clai_tensor *loss, clai_tensor *grad,
                                     const clai_tensor *logits, const clai_tensor *labels, int ignore_index,
                                     int kernel_choice) {
  const char *fn = "clai_loss_cross_entropy";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = check_loss_out(ctx, fn, loss);
  if (s == CLAI_OK) s = clai__check_tensor(ctx, logits, fn, "logits");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, labels, fn, "labels");
  if (s == CLAI_OK && grad != NULL) s = clai__check_out(ctx, grad, fn, "grad");
  if (s != CLAI_OK) return s;
  char a[160], b[160];
  if (logits->ndim != 2)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: logits must be [N, C], got %s", fn,
                       clai__shape_str(logits->ndim, logits->shape, a, sizeof a));
  if (logits->dtype != CLAI_DTYPE_F32 && logits->dtype != CLAI_DTYPE_F16)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: logits are %s; f32 or f16 expected", fn, clai_dtype_name(logits->dtype));
  if (labels->dtype != CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: labels are %s; i32 expected", fn, clai_dtype_name(labels->dtype));
  const int64_t N = logits->shape[0], C = logits->shape[1];
  if (labels->ndim != 1 || labels->shape[0] != N)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: labels %s do not match logits %s (labels must be [N])", fn,
                       clai__shape_str(labels->ndim, labels->shape, a, sizeof a),
                       clai__shape_str(logits->ndim, logits->shape, b, sizeof b));
  if (grad != NULL) {
    if (!clai__same_shape(grad, logits))
      return clai__error(ctx, CLAI_E_SHAPE, "%s: grad %s and logits %s differ in shape", fn,
                         clai__shape_str(grad->ndim, grad->shape, a, sizeof a),
                         clai__shape_str(logits->ndim, logits->shape, b, sizeof b));
    if (grad->dtype != logits->dtype)
      return clai__error(ctx, CLAI_E_DTYPE, "%s: grad is %s, logits %s; they must match", fn,
                         clai_dtype_name(grad->dtype), clai_dtype_name(logits->dtype));
    if (!clai__alias_ok(grad, logits))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad overlaps logits other than element for element", fn);
    if (clai__tensors_overlap(grad, labels) || clai__tensors_overlap(grad, loss))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad overlaps labels or loss", fn);
  }
  if (clai__tensors_overlap(loss, logits) || clai__tensors_overlap(loss, labels))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: loss overlaps logits or labels", fn);
  if (N == 0) return clai_fill(ctx, loss, NAN); /* the mean of nothing, as PyTorch */
  const cl_long P = partials_for(ctx, N), cn = N, cc = C, ls = labels->strides[0], lo = labels->offset;
  const cl_long xs0 = logits->strides[0], xs1 = logits->strides[1], xo = logits->offset;
  const cl_long gs0 = grad != NULL ? grad->strides[0] : 0, gs1 = grad != NULL ? grad->strides[1] : 0;
  const cl_long go = grad != NULL ? grad->offset : 0;
  const cl_int ign = ignore_index, has_grad = grad != NULL, active = 1;
  clai_tensor *cnt = NULL, *scal = NULL, *rows = NULL;
  int64_t sp = P, one1 = 1, sn = N;
  s = clai_tensor_init(ctx, &cnt, CLAI_DTYPE_I32, 1, &sp);
  if (s == CLAI_OK) s = clai_tensor_init(ctx, &scal, CLAI_DTYPE_F32, 1, &one1);
  if (s == CLAI_OK) s = clai_tensor_init(ctx, &rows, CLAI_DTYPE_F32, 1, &sn);
  size_t gp = (size_t)P, one = 1, gn = (size_t)N;
  if (s == CLAI_OK)
    s = clai__launch(ctx, CLAI__K_XENT_COUNT, &gp, 8, CLAI__ARG(cnt->buf->mem), CLAI__ARG(labels->buf->mem),
                     CLAI__ARG(cn), CLAI__ARG(ls), CLAI__ARG(lo), CLAI__ARG(ign), CLAI__ARG(P),
                     CLAI__ARG(scal->buf->mem));
  if (s == CLAI_OK && P > 1) /* one partial: clai_xent_count wrote scal */
    s = clai__launch_local(ctx, CLAI__K_XENT_INV, &one, fold_local(ctx), 4, CLAI__ARG(scal->buf->mem),
                           CLAI__ARG(cnt->buf->mem), CLAI__ARG(P), CLAI__ARG(active));
  if (s == CLAI_OK) {
    int k = logits->dtype == CLAI_DTYPE_F32 ? CLAI__K_XENT_ROWS_F32 : CLAI__K_XENT_ROWS_F16;
    /* CLAI_ROWS=wg / item forces the form; else by device and row length */
    int wg = kernel_choice == 2 ||
             (kernel_choice == 0 && (ctx->rows_forced ? ctx->rows_wg : ctx->rows_wg && C >= XENT_WG_MIN_C));
    /* rows whose walk by one work-item (the maximum, the sum, the gradient: three passes) would pass the
     * device's loop budget (llvmpipe: with C = 49152 the gradient's last logits were never written) take a
     * work-group each (not clai__rows_wg_for, whose ctx->rows_wg would override the short-row rule above: on a
     * GPU a work-group of 256 per row of 4 logits) */
    if (kernel_choice == 0 && C > clai__loop_cap(ctx, 2)) wg = 1;
    if (ctx->klocal[CLAI__K_XENT_ROWS_WG_F32][0] > 256) wg = 0; /* the kernel's local arrays hold 256 */
    if (wg) {
      k = logits->dtype == CLAI_DTYPE_F32 ? CLAI__K_XENT_ROWS_WG_F32 : CLAI__K_XENT_ROWS_WG_F16;
      gn = (size_t)N * ctx->klocal[k][0];
    }
    const int64_t lanes = wg && ctx->klocal[k][0] > 0 ? (int64_t)ctx->klocal[k][0] : 1,
                  walk = (C + lanes - 1) / lanes;
    if (walk > clai__loop_cap(ctx, 2))
      s = clai__error(ctx, CLAI_E_UNSUPPORTED,
                      "clai_loss_cross_entropy: rows of %lld classes in %lld lanes are more loop iterations a "
                      "work-item than this device runs (its kernels' loops stop after %lld in all: llvmpipe)",
                      (long long)C, (long long)lanes, (long long)ctx->caps.loop_limit);
    cl_mem gm = grad != NULL ? grad->buf->mem : rows->buf->mem; /* not written when has_grad is 0 */
    if (s == CLAI_OK)
      s = clai__launch(ctx, k, &gn, 17, CLAI__ARG(rows->buf->mem), CLAI__ARG(gm), CLAI__ARG(logits->buf->mem),
                       CLAI__ARG(labels->buf->mem), CLAI__ARG(scal->buf->mem), CLAI__ARG(cn), CLAI__ARG(cc),
                       CLAI__ARG(xs0), CLAI__ARG(xs1), CLAI__ARG(xo), CLAI__ARG(ls), CLAI__ARG(lo), CLAI__ARG(gs0),
                       CLAI__ARG(gs1), CLAI__ARG(go), CLAI__ARG(ign), CLAI__ARG(has_grad));
  }
  if (s == CLAI_OK) s = sum_into(ctx, loss, rows, N, scal, 1.0f);
  clai_tensor_free(rows);
  clai_tensor_free(scal);
  clai_tensor_free(cnt);
  return s;
}

clai_status clai_loss_cross_entropy(clai_context *ctx, clai_tensor *loss, clai_tensor *grad, const clai_tensor *logits,
                                    const clai_tensor *labels, int ignore_index) {
  return clai__loss_cross_entropy(ctx, loss, grad, logits, labels, ignore_index, 0);
}

clai_status clai_loss_mse(clai_context *ctx, clai_tensor *loss, clai_tensor *grad, const clai_tensor *x,
                          const clai_tensor *y) {
  const char *fn = "clai_loss_mse";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = check_loss_out(ctx, fn, loss);
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, y, fn, "y");
  if (s == CLAI_OK && grad != NULL) s = clai__check_out(ctx, grad, fn, "grad");
  if (s != CLAI_OK) return s;
  char a[160], b[160];
  if (x->dtype != CLAI_DTYPE_F32 && x->dtype != CLAI_DTYPE_F16)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: x is %s; f32 or f16 expected", fn, clai_dtype_name(x->dtype));
  if (y->dtype != x->dtype || (grad != NULL && grad->dtype != x->dtype))
    return clai__error(ctx, CLAI_E_DTYPE, "%s: dtypes differ (x %s, y %s, grad %s)", fn, clai_dtype_name(x->dtype),
                       clai_dtype_name(y->dtype), grad != NULL ? clai_dtype_name(grad->dtype) : "none");
  if (!clai__same_shape(x, y) || (grad != NULL && !clai__same_shape(x, grad))) {
    const clai_tensor *bad = !clai__same_shape(x, y) ? y : grad;
    return clai__error(ctx, CLAI_E_SHAPE, "%s: x %s and %s %s differ in shape", fn,
                       clai__shape_str(x->ndim, x->shape, a, sizeof a), bad == y ? "y" : "grad",
                       clai__shape_str(bad->ndim, bad->shape, b, sizeof b));
  }
  if (grad != NULL) {
    if (!clai__alias_ok(grad, x) || !clai__alias_ok(grad, y))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad overlaps x or y other than element for element", fn);
    if (clai__tensors_overlap(grad, loss)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad overlaps loss", fn);
  }
  if (clai__tensors_overlap(loss, x) || clai__tensors_overlap(loss, y))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: loss overlaps x or y", fn);
  const int64_t n = clai_tensor_numel(x);
  if (n == 0) return clai_fill(ctx, loss, NAN);
  clai__index ix;
  const clai_tensor *ops[3] = {x, y, grad};
  clai__index_build(&ix, grad != NULL ? 3 : 2, ops);
  const cl_long P = partials_for(ctx, n);
  const cl_float gscale = (float)(2.0 / (double)n);
  const cl_int has_grad = grad != NULL, active = 1;
  clai_tensor *part = NULL;
  int64_t sp = P;
  s = clai_tensor_init(ctx, &part, CLAI_DTYPE_F32, 1, &sp);
  size_t gp = (size_t)P, one = 1;
  if (s == CLAI_OK) {
    int k = x->dtype == CLAI_DTYPE_F32 ? CLAI__K_MSE_F32 : CLAI__K_MSE_F16;
    cl_mem gm = grad != NULL ? grad->buf->mem : part->buf->mem;
    s = clai__launch(ctx, k, &gp, 8, CLAI__ARG(part->buf->mem), CLAI__ARG(gm), CLAI__ARG(x->buf->mem),
                     CLAI__ARG(y->buf->mem), CLAI__IDX(ix), CLAI__ARG(P), CLAI__ARG(gscale), CLAI__ARG(has_grad));
  }
  if (s == CLAI_OK) {
    const cl_long oo = loss->offset;
    const cl_float sc = (float)(1.0 / (double)n);
    const cl_int use_scal = 0;
    s = clai__launch_local(ctx, CLAI__K_LOSS_FINISH, &one, fold_local(ctx), 8, CLAI__ARG(loss->buf->mem),
                           CLAI__ARG(part->buf->mem), CLAI__ARG(part->buf->mem), CLAI__ARG(P), CLAI__ARG(oo),
                           CLAI__ARG(sc), CLAI__ARG(use_scal), CLAI__ARG(active));
  }
  clai_tensor_free(part);
  return s;
}
