/* pool.c - the caching device allocator.
 *
 * Requests are rounded up to a size class: 256 bytes, then four classes per power of two (2^e * 5/4,
 * 6/4, 7/4, 8/4), so at most 25% is wasted. A buffer whose last view is freed goes onto its class's free
 * list while the cached total stays under the cap; the next request of that class reuses it without
 * calling clCreateBuffer. When the device refuses an allocation the cache is trimmed and the allocation
 * retried once. Reuse is safe without events because the context has one in-order queue: work enqueued
 * on a reused buffer runs after all earlier work on it. */
#include <stdlib.h>

#include "internal.h"

#define MIN_CLASS_BYTES 256u

static uint64_t class_size(int c) {
  if (c == 0) return MIN_CLASS_BYTES;
  int e = 8 + (c - 1) / 4, s = (c - 1) % 4 + 1;
  return ((uint64_t)1 << e) + (uint64_t)s * ((uint64_t)1 << (e - 2));
}

static int class_of(uint64_t n) {
  if (n <= MIN_CLASS_BYTES) return 0;
  int e = 63 - __builtin_clzll(n - 1); /* 2^e < n <= 2^(e+1) */
  uint64_t step = (uint64_t)1 << (e - 2);
  uint64_t s = (n - ((uint64_t)1 << e) + step - 1) / step;
  return (e - 8) * 4 + (int)s;
}

void clai__pool_init(clai__pool *pool, uint64_t limit) {
  for (int c = 0; c < CLAI__POOL_CLASSES; c++) pool->free_list[c] = NULL;
  pool->limit = limit;
  pool->bytes_in_use = pool->bytes_cached = pool->bytes_peak = 0;
  pool->device_allocs = pool->device_frees = pool->hits = 0;
}

static void destroy(clai__pool *pool, clai__buffer *b) {
  clReleaseMemObject(b->mem);
  pool->device_frees++;
  free(b);
}

void clai__pool_trim(clai__pool *pool) {
  for (int c = 0; c < CLAI__POOL_CLASSES; c++) {
    while (pool->free_list[c] != NULL) {
      clai__buffer *b = pool->free_list[c];
      pool->free_list[c] = b->next;
      pool->bytes_cached -= b->bytes;
      destroy(pool, b);
    }
  }
}

static void note_peak(clai__pool *pool) {
  uint64_t total = pool->bytes_in_use + pool->bytes_cached;
  if (total > pool->bytes_peak) pool->bytes_peak = total;
}

clai__buffer *clai__pool_alloc(clai_context *ctx, uint64_t bytes, clai_status *status) {
  clai__pool *pool = &ctx->pool;
  uint64_t max = ctx->caps.max_alloc;
  if (bytes > max) {
    *status = clai__error(ctx, CLAI_E_OUT_OF_MEMORY,
                          "allocation of %llu bytes exceeds the device's largest allocation (%llu bytes)",
                          (unsigned long long)bytes, (unsigned long long)max);
    return NULL;
  }
  int c = class_of(bytes);
  uint64_t size = class_size(c);
  if (size > max) { /* rounding up would pass the device's limit: take exactly what was asked, unpooled */
    c = -1;
    size = bytes;
  }
  if (c >= 0 && pool->free_list[c] != NULL) {
    clai__buffer *b = pool->free_list[c];
    pool->free_list[c] = b->next;
    pool->bytes_cached -= b->bytes;
    pool->bytes_in_use += b->bytes;
    pool->hits++;
    b->next = NULL;
    b->refs = 1;
    b->size = bytes;
    return b;
  }
  clai__buffer *b = calloc(1, sizeof *b);
  if (b == NULL) {
    *status = clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "out of host memory");
    return NULL;
  }
  cl_int err = CL_SUCCESS;
  for (int attempt = 0; attempt < 2; attempt++) {
    /* Where device memory is host memory, CL_MEM_ALLOC_HOST_PTR asks for memory the host can address, so that
     * clai_tensor_map hands out the buffer itself (integrated GPUs; POCL's CPU buffers are host memory anyway). */
    cl_mem_flags fl = CL_MEM_READ_WRITE | (ctx->caps.host_unified && !ctx->caps.is_cpu ? CL_MEM_ALLOC_HOST_PTR : 0);
    b->mem = clCreateBuffer(ctx->cl, fl, (size_t)size, NULL, &err);
    if (b->mem != NULL || clai__cl_status(err) != CLAI_E_OUT_OF_MEMORY) break;
    clai__pool_trim(pool); /* give cached memory back to the device, then try once more */
  }
  if (b->mem == NULL) {
    free(b);
    *status = clai__cl_error(ctx, err, "clCreateBuffer of %llu bytes failed", (unsigned long long)size);
    return NULL;
  }
  pool->device_allocs++;
  b->bytes = size;
  b->size = bytes;
  b->cls = c;
  b->refs = 1;
  pool->bytes_in_use += size;
  note_peak(pool);
  return b;
}

void clai__pool_release(clai_context *ctx, clai__buffer *b) {
  clai__pool *pool = &ctx->pool;
  if (b == NULL || --b->refs > 0) return;
  pool->bytes_in_use -= b->bytes;
  if (b->cls >= 0 && pool->bytes_cached + b->bytes <= pool->limit) {
    b->next = pool->free_list[b->cls];
    pool->free_list[b->cls] = b;
    pool->bytes_cached += b->bytes;
    note_peak(pool);
    return;
  }
  destroy(pool, b);
}

void clai__pool_stats(const clai__pool *pool, clai_context_stats *stats) {
  stats->bytes_in_use = pool->bytes_in_use;
  stats->bytes_cached = pool->bytes_cached;
  stats->bytes_peak = pool->bytes_peak;
  stats->device_allocs = pool->device_allocs;
  stats->device_frees = pool->device_frees;
  stats->pool_hits = pool->hits;
}
