/* tensor-map.c - host access to a tensor's memory: clai_tensor_map / clai_tensor_map_wait / clai_tensor_unmap
 * over clEnqueueMapBuffer and clEnqueueUnmapMemObject on the context's in-order queue. On a device that
 * shares host memory the pool's buffers are host-accessible (pool.c), so the driver hands out the buffer
 * itself; elsewhere it stages a copy, which CLAI_MAP_WRITE alone (CL_MAP_WRITE_INVALIDATE_REGION) spares on
 * the way in. A tensor records its own mapping; the overlap check walks the context's live tensors, which is
 * cheap next to a map. */
#include <stdlib.h>

#include "internal.h"

/* Another live mapping of t's buffer whose elements overlap t's, or NULL. */
static const clai_tensor *overlapping_map(const clai_tensor *t) {
  int64_t lo, hi, olo, ohi;
  if (!clai__tensor_extent(t, &lo, &hi)) return NULL;
  for (const clai_tensor *o = t->ctx->tensors; o != NULL; o = o->next)
    if (o != t && o->mapped && o->buf == t->buf && clai__tensor_extent(o, &olo, &ohi) && olo <= hi && lo <= ohi)
      return o;
  return NULL;
}

clai_status clai_tensor_map(clai_tensor *t, unsigned flags, void **ptr) {
  if (ptr != NULL) *ptr = NULL;
  if (t == NULL) return CLAI_E_INVALID_ARG;
  clai_context *ctx = t->ctx;
  const char *fn = "clai_tensor_map";
  if (ptr == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: ptr is NULL", fn);
  if ((flags & (CLAI_MAP_READ | CLAI_MAP_WRITE)) == 0 || (flags & ~(unsigned)(CLAI_MAP_READ | CLAI_MAP_WRITE | CLAI_MAP_ASYNC)))
    return clai__error(ctx, CLAI_E_INVALID_ARG,
                       "%s: flags 0x%x: expected CLAI_MAP_READ and/or CLAI_MAP_WRITE, optionally with CLAI_MAP_ASYNC", fn,
                       flags);
  if (t->mapped)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: the tensor is mapped already (clai_tensor_unmap it first)", fn);
  if (clai_dtype_block(t->dtype) != 1)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: %s tensors cannot be mapped", fn, clai_dtype_name(t->dtype));
  if (!clai_tensor_is_contiguous(t))
    return clai__error(ctx, CLAI_E_NOT_CONTIGUOUS,
                       "%s: the view is not dense (strided, transposed or broadcast); clai_copy it into a new tensor "
                       "and map that",
                       fn);
  if (overlapping_map(t) != NULL)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: another view of the same buffer that overlaps this one is mapped", fn);
  const size_t es = clai_dtype_size(t->dtype);
  uint64_t bytes, at;
  if (!clai__mul_ok((uint64_t)clai_tensor_numel(t), es, &bytes) || !clai__mul_ok((uint64_t)t->offset, es, &at) ||
      bytes > SIZE_MAX || at > SIZE_MAX)
    return clai__error(ctx, CLAI_E_OVERFLOW, "%s: the byte range of the tensor overflows", fn);
  if (bytes == 0) {
    t->mapped = 1;
    return CLAI_OK;
  }
  cl_map_flags mf = 0;
  if (flags & CLAI_MAP_READ) mf |= CL_MAP_READ;
  if (flags & CLAI_MAP_WRITE) mf |= (flags & CLAI_MAP_READ) ? CL_MAP_WRITE : CL_MAP_WRITE_INVALIDATE_REGION;
  const int async = (flags & CLAI_MAP_ASYNC) != 0;
  cl_int err = CL_SUCCESS;
  cl_event ev = NULL;
  void *p = clEnqueueMapBuffer(ctx->queue, t->buf->mem, async ? CL_FALSE : CL_TRUE, mf, (size_t)at, (size_t)bytes, 0,
                               NULL, async ? &ev : NULL, &err);
  if (p == NULL || err != CL_SUCCESS) {
    if (ev != NULL) clReleaseEvent(ev);
    return clai__cl_error(ctx, err != CL_SUCCESS ? err : CL_MAP_FAILURE, "%s: clEnqueueMapBuffer of %llu bytes failed",
                          fn, (unsigned long long)bytes);
  }
  if (async) clFlush(ctx->queue); /* let the device start on what comes before the map while the host goes on */
  t->mapped = 1, t->map_ptr = p, t->map_event = ev;
  *ptr = p;
  return CLAI_OK;
}

clai_status clai_tensor_map_wait(clai_tensor *t) {
  if (t == NULL) return CLAI_E_INVALID_ARG;
  if (!t->mapped) return clai__error(t->ctx, CLAI_E_INVALID_ARG, "clai_tensor_map_wait: the tensor is not mapped");
  if (t->map_event == NULL) return CLAI_OK;
  cl_int err = clWaitForEvents(1, &t->map_event);
  if (err != CL_SUCCESS)
    return clai__cl_error(t->ctx, err, "clai_tensor_map_wait: the map (or an op enqueued before it) failed");
  clReleaseEvent(t->map_event);
  t->map_event = NULL;
  return CLAI_OK;
}

clai_status clai_tensor_unmap(clai_tensor *t) {
  if (t == NULL) return CLAI_E_INVALID_ARG;
  clai_context *ctx = t->ctx;
  if (!t->mapped)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "clai_tensor_unmap: the tensor is not mapped (never, or unmapped already)");
  cl_int err = CL_SUCCESS;
  if (t->map_ptr != NULL) err = clEnqueueUnmapMemObject(ctx->queue, t->buf->mem, t->map_ptr, 0, NULL, NULL);
  if (t->map_event != NULL) clReleaseEvent(t->map_event);
  t->mapped = 0, t->map_ptr = NULL, t->map_event = NULL;
  if (err != CL_SUCCESS) return clai__cl_error(ctx, err, "clai_tensor_unmap: clEnqueueUnmapMemObject failed");
  return CLAI_OK;
}

void clai__tensor_map_drop(clai_tensor *t) {
  /* The unmap is enqueued before the buffer can go back to the pool, so a later user of the buffer (ordered
   * after it on the in-order queue) sees the host's writes and an unmapped buffer. */
  (void)clai_tensor_unmap(t);
}
