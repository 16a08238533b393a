/* op-random.c - counter-based random numbers, weight initialisation and dropout (cl/random.cl).
 *
 * The numbers of a call are a pure function of (seed, offset, element index), see cl/random.cl, so the
 * same call gives the same tensor on every device and every run. */
#include <math.h>

#include "internal.h"

#define DIST_UNIFORM 0
#define DIST_NORMAL 1

/* Philox blocks (work-items) for n elements. */
static size_t blocks(int64_t n) { return (size_t)((n + 3) / 4); }

/* A view whose distinct indices address the same element (a stride 0 on a dim larger than 1, as from
 * clai_tensor_expand) cannot take independent values: clai__check_out rejects it. */
static clai_status check_float_out(clai_context *ctx, const clai_tensor *t, const char *fn, const char *what) {
  clai_status s = clai__check_out(ctx, t, fn, what);
  if (s != CLAI_OK) return s;
  if (t->dtype != CLAI_DTYPE_F32 && t->dtype != CLAI_DTYPE_F16)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: %s is %s; random values need f32 or f16", fn, what,
                       clai_dtype_name(t->dtype));
  return CLAI_OK;
}

static clai_status rand_fill(clai_context *ctx, const char *fn, clai_tensor *out, uint64_t seed, uint64_t offset,
                             int dist, float a, float b) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = check_float_out(ctx, out, fn, "out");
  if (s != CLAI_OK) return s;
  if (!isfinite(a) || !isfinite(b))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: the parameters (%g, %g) are not finite", fn, (double)a,
                       (double)b);
  clai__index ix;
  const clai_tensor *ops[1] = {out};
  clai__index_build(&ix, 1, ops);
  const cl_long sd = (cl_long)seed, off = (cl_long)offset;
  const cl_int d = dist;
  const cl_float fa = a, fb = b;
  size_t global = blocks(ix.numel);
  int k = out->dtype == CLAI_DTYPE_F32 ? CLAI__K_RAND_F32 : CLAI__K_RAND_F16;
  return clai__launch(ctx, k, &global, 7, CLAI__ARG(out->buf->mem), CLAI__IDX(ix), CLAI__ARG(sd), CLAI__ARG(off),
                      CLAI__ARG(d), CLAI__ARG(fa), CLAI__ARG(fb));
}

clai_status clai_rand_uniform(clai_context *ctx, clai_tensor *out, uint64_t seed, uint64_t offset, float lo,
                              float hi) {
  if (ctx != NULL && !(lo <= hi))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "clai_rand_uniform: lo %g is greater than hi %g", (double)lo,
                       (double)hi);
  return rand_fill(ctx, "clai_rand_uniform", out, seed, offset, DIST_UNIFORM, lo, hi);
}

clai_status clai_rand_normal(clai_context *ctx, clai_tensor *out, uint64_t seed, uint64_t offset, float mean,
                             float std) {
  if (ctx != NULL && !(std >= 0.0f))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "clai_rand_normal: std %g is negative", (double)std);
  return rand_fill(ctx, "clai_rand_normal", out, seed, offset, DIST_NORMAL, mean, std);
}

clai_status clai_init_fans(const clai_tensor *w, int64_t *fan_in, int64_t *fan_out) {
  if (w == NULL || fan_in == NULL || fan_out == NULL) return CLAI_E_INVALID_ARG;
  clai_context *ctx = w->ctx;
  if (w->ndim < 2) {
    char a[160];
    return clai__error(ctx, CLAI_E_SHAPE,
                       "clai_init_fans: a weight needs at least 2 dims ([out, in] or [O, C/g, k...]), got %s",
                       clai__shape_str(w->ndim, w->shape, a, sizeof a));
  }
  int64_t receptive = 1;
  for (int i = 2; i < w->ndim; i++) receptive *= w->shape[i];
  *fan_in = w->shape[1] * receptive;
  *fan_out = w->shape[0] * receptive;
  return CLAI_OK;
}

/* Checks w and returns its fans; on failure the message names fn. */
static clai_status fans(clai_context *ctx, const char *fn, clai_tensor *w, float gain, int64_t *fi, int64_t *fo) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = check_float_out(ctx, w, fn, "w");
  if (s != CLAI_OK) return s;
  if (!(gain >= 0.0f) || !isfinite(gain))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: gain %g is negative or not finite", fn, (double)gain);
  char a[160];
  if (w->ndim < 2)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: w needs at least 2 dims ([out, in] or [O, C/g, k...]), got %s", fn,
                       clai__shape_str(w->ndim, w->shape, a, sizeof a));
  s = clai_init_fans(w, fi, fo);
  if (s != CLAI_OK) return s;
  if (*fi == 0 || *fo == 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: w %s has a zero fan (fan_in %lld, fan_out %lld)", fn,
                       clai__shape_str(w->ndim, w->shape, a, sizeof a), (long long)*fi, (long long)*fo);
  return CLAI_OK;
}

static clai_status kaiming(clai_context *ctx, const char *fn, clai_tensor *w, uint64_t seed, uint64_t offset,
                           float gain, int use_fan_out, int dist) {
  int64_t fi = 0, fo = 0;
  clai_status s = fans(ctx, fn, w, gain, &fi, &fo);
  if (s != CLAI_OK) return s;
  double g = gain == 0.0f ? sqrt(2.0) : gain, fan = (double)(use_fan_out ? fo : fi), std = g / sqrt(fan);
  if (dist == DIST_UNIFORM) {
    float bound = (float)(sqrt(3.0) * std);
    return rand_fill(ctx, fn, w, seed, offset, DIST_UNIFORM, -bound, bound);
  }
  return rand_fill(ctx, fn, w, seed, offset, DIST_NORMAL, 0.0f, (float)std);
}

static clai_status xavier(clai_context *ctx, const char *fn, clai_tensor *w, uint64_t seed, uint64_t offset,
                          float gain, int dist) {
  int64_t fi = 0, fo = 0;
  clai_status s = fans(ctx, fn, w, gain, &fi, &fo);
  if (s != CLAI_OK) return s;
  double g = gain == 0.0f ? 1.0 : gain, std = g * sqrt(2.0 / ((double)fi + (double)fo));
  if (dist == DIST_UNIFORM) {
    float bound = (float)(sqrt(3.0) * std);
    return rand_fill(ctx, fn, w, seed, offset, DIST_UNIFORM, -bound, bound);
  }
  return rand_fill(ctx, fn, w, seed, offset, DIST_NORMAL, 0.0f, (float)std);
}

clai_status clai_init_kaiming_uniform(clai_context *ctx, clai_tensor *w, uint64_t seed, uint64_t offset, float gain,
                                      int use_fan_out) {
  return kaiming(ctx, "clai_init_kaiming_uniform", w, seed, offset, gain, use_fan_out, DIST_UNIFORM);
}

clai_status clai_init_kaiming_normal(clai_context *ctx, clai_tensor *w, uint64_t seed, uint64_t offset, float gain,
                                     int use_fan_out) {
  return kaiming(ctx, "clai_init_kaiming_normal", w, seed, offset, gain, use_fan_out, DIST_NORMAL);
}

clai_status clai_init_xavier_uniform(clai_context *ctx, clai_tensor *w, uint64_t seed, uint64_t offset, float gain) {
  return xavier(ctx, "clai_init_xavier_uniform", w, seed, offset, gain, DIST_UNIFORM);
}

clai_status clai_init_xavier_normal(clai_context *ctx, clai_tensor *w, uint64_t seed, uint64_t offset, float gain) {
  return xavier(ctx, "clai_init_xavier_normal", w, seed, offset, gain, DIST_NORMAL);
}

clai_status clai_dropout(clai_context *ctx, clai_tensor *out, clai_tensor *mask, const clai_tensor *x, float p,
                         uint64_t seed, uint64_t offset) {
  const char *fn = "clai_dropout";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = check_float_out(ctx, out, fn, "out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s == CLAI_OK && mask != NULL) s = clai__check_out(ctx, mask, fn, "mask");
  if (s != CLAI_OK) return s;
  if (!(p >= 0.0f && p <= 1.0f))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: p %g is outside [0, 1]", fn, (double)p);
  if (x->dtype != out->dtype || (mask != NULL && mask->dtype != out->dtype))
    return clai__error(ctx, CLAI_E_DTYPE, "%s: dtypes differ (out %s, x %s, mask %s)", fn, clai_dtype_name(out->dtype),
                       clai_dtype_name(x->dtype), mask != NULL ? clai_dtype_name(mask->dtype) : "none");
  char a[160], b[160];
  if (!clai__same_shape(out, x) || (mask != NULL && !clai__same_shape(out, mask))) {
    const clai_tensor *bad = !clai__same_shape(out, x) ? x : mask;
    return clai__error(ctx, CLAI_E_SHAPE, "%s: out %s and %s %s differ in shape", fn,
                       clai__shape_str(out->ndim, out->shape, a, sizeof a), bad == x ? "x" : "mask",
                       clai__shape_str(bad->ndim, bad->shape, b, sizeof b));
  }
  if (!clai__alias_ok(out, x))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps x other than element for element", fn);
  if (mask != NULL && (clai__tensors_overlap(mask, out) || clai__tensors_overlap(mask, x)))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: mask overlaps out or x", fn);
  clai__index ix;
  const clai_tensor *ops[3] = {out, x, mask};
  clai__index_build(&ix, mask != NULL ? 3 : 2, ops);
  const cl_long sd = (cl_long)seed, off = (cl_long)offset;
  const cl_float q = 1.0f - p, scale = p < 1.0f ? (float)(1.0 / (1.0 - (double)p)) : 0.0f;
  const cl_int has_mask = mask != NULL;
  cl_mem mm = mask != NULL ? mask->buf->mem : out->buf->mem; /* never written when has_mask is 0 */
  size_t global = blocks(ix.numel);
  int k = out->dtype == CLAI_DTYPE_F32 ? CLAI__K_DROPOUT_F32 : CLAI__K_DROPOUT_F16;
  return clai__launch(ctx, k, &global, 9, CLAI__ARG(out->buf->mem), CLAI__ARG(x->buf->mem), CLAI__ARG(mm),
                      CLAI__IDX(ix), CLAI__ARG(sd), CLAI__ARG(off), CLAI__ARG(q), CLAI__ARG(scale), CLAI__ARG(has_mask));
}
