/* profile.c - per-kernel device times (clai_context_params.profile, CLAI_PROFILE=1).
 *
 * With profiling on, the queue is created with CL_QUEUE_PROFILING_ENABLE and every kernel launch keeps its
 * event. Events are resolved (waited for, their START/END read, released) in batches of
 * CLAI__PROFILE_BATCH, so the number alive stays bounded however long the run. Resolving a batch waits
 * for its last launch, which is why profiling is opt-in: it changes how far the host runs ahead. */
#include <stdlib.h>

#include "internal.h"

cl_event *clai__profile_event(clai_context *ctx) {
  if (!ctx->prof.on) return NULL;
  if (ctx->prof.npending == CLAI__PROFILE_BATCH) (void)clai__profile_flush(ctx);
  return &ctx->prof.pending[ctx->prof.npending];
}

void clai__profile_launched(clai_context *ctx, int kernel, cl_int err) {
  if (!ctx->prof.on || err != CL_SUCCESS) return;
  ctx->prof.pending_kernel[ctx->prof.npending++] = kernel;
}

clai_status clai__profile_flush(clai_context *ctx) {
  clai__profile *p = &ctx->prof;
  clai_status st = CLAI_OK;
  if (p->npending > 0) {
    cl_int err = clWaitForEvents((cl_uint)p->npending, p->pending);
    if (err != CL_SUCCESS) st = clai__cl_error(ctx, err, "profiling: clWaitForEvents failed");
  }
  for (int i = 0; i < p->npending; i++) {
    cl_ulong t0 = 0, t1 = 0;
    if (st == CLAI_OK) {
      cl_int err = clGetEventProfilingInfo(p->pending[i], CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
      if (err == CL_SUCCESS) err = clGetEventProfilingInfo(p->pending[i], CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
      if (err != CL_SUCCESS) st = clai__cl_error(ctx, err, "profiling: clGetEventProfilingInfo failed");
    }
    if (st == CLAI_OK) {
      p->launches[p->pending_kernel[i]]++;
      p->ns[p->pending_kernel[i]] += t1 > t0 ? t1 - t0 : 0;
    }
    clReleaseEvent(p->pending[i]);
  }
  p->npending = 0;
  return st;
}

void clai__profile_free(clai_context *ctx) {
  for (int i = 0; i < ctx->prof.npending; i++) clReleaseEvent(ctx->prof.pending[i]);
  ctx->prof.npending = 0;
}

static int by_time(const void *a, const void *b) {
  const clai_kernel_profile *x = a, *y = b;
  return (x->seconds < y->seconds) - (x->seconds > y->seconds);
}

int clai_profile_get(clai_context *ctx, clai_kernel_profile *out, int cap) {
  if (ctx == NULL) return -1;
  if (!ctx->prof.on) {
    clai__error(ctx, CLAI_E_INVALID_ARG,
                "clai_profile_get: profiling is off (set clai_context_params.profile = 1 or CLAI_PROFILE=1)");
    return -1;
  }
  if (cap < 0 || (cap > 0 && out == NULL)) {
    clai__error(ctx, CLAI_E_INVALID_ARG, "clai_profile_get: out is NULL or cap (%d) negative", cap);
    return -1;
  }
  if (clai__profile_flush(ctx) != CLAI_OK) return -1;
  clai_kernel_profile all[CLAI__K_COUNT];
  int n = 0;
  for (int k = 0; k < CLAI__K_COUNT; k++)
    if (ctx->prof.launches[k] > 0)
      all[n++] = (clai_kernel_profile){clai__kernel_name(k), ctx->prof.launches[k], (double)ctx->prof.ns[k] * 1e-9};
  qsort(all, (size_t)n, sizeof all[0], by_time);
  for (int i = 0; i < n && i < cap; i++) out[i] = all[i];
  return n;
}

void clai_profile_reset(clai_context *ctx) {
  if (ctx == NULL || !ctx->prof.on) return;
  (void)clai__profile_flush(ctx);
  for (int k = 0; k < CLAI__K_COUNT; k++) ctx->prof.launches[k] = ctx->prof.ns[k] = 0;
}
