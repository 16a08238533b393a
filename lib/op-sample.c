/* op-sample.c - clai_sample: one token id per row of logits, drawn on the device (cl/sample.cl), so that a
 * text generator reads back 4 bytes a token. The host checks the arguments, turns the parameters into one
 * of the kernel's modes and launches one work-group per row; the procedure itself is in clai.h. */
#include <float.h>
#include <limits.h>
#include <math.h>

#include "internal.h"


/* Work-items per row on a CPU: POCL runs a work-group's items in turn on one core, where the barriers of
 * the sort and the scans cost more than the items save; one item per row was the fastest on POCL 3.1 (a
 * 49152-wide row, top-k 40: 76 us of device time with 1 item, 103 with 16), and rows go to the cores.
 * llvmpipe, which runs items in SIMD lanes, keeps 16 (cl/sample.cl's CLAI_SMP_PRIV: a histogram per item,
 * no atomics). A GPU gets the largest power of two the kernel allows, up to 256. */
#define SMP_CPU_LOCAL 1
#define SMP_LANES_LOCAL 16

clai_status clai__sample(clai_context *ctx, clai_tensor *ids, const clai_tensor *logits, const clai_sample_params *p,
                         int local) {
  const char *fn = "clai_sample";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, ids, fn, "ids");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, logits, fn, "logits");
  if (s != CLAI_OK) return s;
  if (ids->dtype != CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: ids is %s; it must be i32", fn, clai_dtype_name(ids->dtype));
  if (logits->dtype != CLAI_DTYPE_F32 && logits->dtype != CLAI_DTYPE_F16)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: logits is %s; it must be f32 or f16", fn,
                       clai_dtype_name(logits->dtype));
  char a[160], b[160];
  if (logits->ndim < 1)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: logits is 0-d; it needs a last dim of tokens", fn);
  const int64_t n = logits->shape[logits->ndim - 1];
  if (n == 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: logits %s has rows of no tokens", fn,
                       clai__shape_str(logits->ndim, logits->shape, a, sizeof a));
  if (n > INT_MAX)
    return clai__error(ctx, CLAI_E_OVERFLOW, "%s: rows of %lld tokens do not fit i32 ids", fn, (long long)n);
  /* ids: logits' shape without the last dim, or [1] for a 1-d logits */
  int ok = ids->ndim == logits->ndim - 1;
  for (int i = 0; ok && i < ids->ndim; i++) ok = ids->shape[i] == logits->shape[i];
  if (!ok && logits->ndim == 1 && ids->ndim == 1 && ids->shape[0] == 1) ok = 1;
  if (!ok)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: ids is %s; logits %s needs %s%s", fn,
                       clai__shape_str(ids->ndim, ids->shape, a, sizeof a),
                       clai__shape_str(logits->ndim, logits->shape, b, sizeof b),
                       logits->ndim == 1 ? "[] or [1]" : "its shape without the last dim",
                       logits->ndim == 1 ? "" : " (one id per row)");
  if (clai__tensors_overlap(ids, logits)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: ids overlaps logits", fn);

  clai_sample_params q = {0};
  if (p != NULL) q = *p;
  if (isnan(q.temperature) || isinf(q.temperature))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: temperature %g is not a finite number", fn,
                       (double)q.temperature);
  if (q.top_k < 0) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: top_k %d is negative", fn, q.top_k);
  if (q.top_k > CLAI_SAMPLE_MAX_CANDIDATES)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: top_k %d is above the %d candidates clai_sample sorts", fn,
                       q.top_k, CLAI_SAMPLE_MAX_CANDIDATES);
  if (!(q.top_p >= 0.0f))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: top_p %g is negative or NaN (0 or 1 mean no limit)", fn,
                       (double)q.top_p);
  if (!(q.min_p >= 0.0f && q.min_p <= 1.0f))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: min_p %g is outside [0, 1]", fn, (double)q.min_p);

  const int greedy = q.temperature <= 0.0f || q.top_k == 1;
  const int has_p = q.top_p > 0.0f && q.top_p < 1.0f, has_min = q.min_p > 0.0f;
  /* the kernel of the mode (cl/sample.cl): candidates with the total over them (top_k) or over the row */
  int kernel;
  cl_int kc = 1;
  if (greedy) {
    kernel = CLAI__K_SAMPLE_GREEDY;
  } else if (q.top_k > 0) {
    kernel = CLAI__K_SAMPLE_TOPK;
    kc = (cl_int)(q.top_k < n ? q.top_k : n);
  } else if (has_p || has_min) {
    kernel = CLAI__K_SAMPLE_TOPP;
    kc = (cl_int)(n < CLAI_SAMPLE_MAX_CANDIDATES ? n : CLAI_SAMPLE_MAX_CANDIDATES);
  } else {
    kernel = CLAI__K_SAMPLE_FULL;
  }
  /* 1 / T in double, held to FLT_MAX (a T below about 3e-39 would give inf, and 0 * inf = NaN) */
  double it = greedy ? 1.0 : 1.0 / (double)q.temperature;
  const cl_float inv_t = (cl_float)(it > FLT_MAX ? FLT_MAX : it);
  const cl_float top_p = has_p ? q.top_p : 1.0f, min_p = q.min_p;
  const cl_long cn = n, xs = logits->strides[logits->ndim - 1], seed = (cl_long)q.seed, off = (cl_long)q.offset;
  const cl_int xf16 = logits->dtype == CLAI_DTYPE_F16;

  /* the rows: ids as it is (or its one element) against logits without the last dim */
  clai_tensor rows = *logits, idv = *ids;
  rows.ndim = logits->ndim - 1;
  if (ids->ndim != rows.ndim) idv.ndim = 0; /* [1] for a 1-d logits: the same single element */
  clai__index ix;
  const clai_tensor *ops[2] = {&idv, &rows};
  clai__index_build(&ix, 2, ops);
  if (ix.numel == 0) return CLAI_OK;

  size_t most;
  if ((s = clai__rows_local(ctx, kernel, &most)) != CLAI_OK) return s;
  size_t L = most;
  if (local != 0) {
    if (local < 0 || (local & (local - 1)) != 0 || (size_t)local > most)
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: a work-group of %d is not a power of two up to %zu", fn, local,
                         most);
    L = (size_t)local;
  } else if (ctx->caps.is_cpu) {
    const size_t want = ctx->caps.lanes_cpu ? SMP_LANES_LOCAL : SMP_CPU_LOCAL;
    if (L > want) L = want;
  }
  /* a device that stops long loops (llvmpipe) must not meet a chunk or a block longer than it runs */
  const int64_t chunk = (n + (int64_t)L - 1) / (int64_t)L, block = n / 1024 + 1;
  if (clai__past_loop_limit(ctx, chunk) || clai__past_loop_limit(ctx, block))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: rows of %lld tokens need loops longer than the device runs (%lld)",
                       fn, (long long)n, (long long)ctx->caps.loop_limit);
  uint64_t items;
  if (!clai__mul_ok((uint64_t)ix.numel, L, &items) || items > (uint64_t)SIZE_MAX)
    return clai__error(ctx, CLAI_E_OVERFLOW, "%s: %lld rows need more work-items than a size_t holds", fn,
                       (long long)ix.numel);
  const size_t global = (size_t)items;
  return clai__launch_local(ctx, kernel, &global, &L, 12, CLAI__ARG(ids->buf->mem), CLAI__ARG(logits->buf->mem),
                            CLAI__IDX(ix), CLAI__ARG(cn), CLAI__ARG(xs), CLAI__ARG(seed), CLAI__ARG(off),
                            CLAI__ARG(inv_t), CLAI__ARG(top_p), CLAI__ARG(min_p), CLAI__ARG(kc), CLAI__ARG(xf16));
}

clai_status clai_sample(clai_context *ctx, clai_tensor *ids, const clai_tensor *logits, const clai_sample_params *p) {
  return clai__sample(ctx, ids, logits, p, 0);
}
