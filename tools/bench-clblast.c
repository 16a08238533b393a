/* bench-clblast.c - CLBlast's SGEMM on the same OpenCL device, the GPU-library reference of
 * `clai bench gemm`. Built only when configure found CLBlast (--with-clblast); CLBlast gets its own
 * OpenCL context on the device libclai chose (found by name), so libclai's objects stay private. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl.h>

#include "bench.h"
#include "config.h"

#ifndef HAVE_CLBLAST
int bench_clblast_prepare(const char *device_name, int64_t m, int64_t n, int64_t k, int64_t batch, int trans_a,
                          int trans_b, bench_side *side, bench_ref_result *r) {
  (void)device_name, (void)m, (void)n, (void)k, (void)batch, (void)trans_a, (void)trans_b;
  memset(r, 0, sizeof *r);
  memset(side, 0, sizeof *side);
  snprintf(r->why, sizeof r->why, "libclai was configured without CLBlast");
  return -1;
}
#else
#include <clblast_c.h>

typedef struct clblast_run {
  CLBlastTranspose ta, tb;
  size_t m, n, k, batch, lda, ldb, sa, sb, sc;
  cl_mem a, b, c;
  cl_command_queue q;
  cl_context ctx;
} clblast_run;

static int run_clblast(void *arg) {
  clblast_run *r = arg;
  if (r->batch == 1)
    return (int)CLBlastSgemm(CLBlastLayoutRowMajor, r->ta, r->tb, r->m, r->n, r->k, 1.0f, r->a, 0, r->lda, r->b, 0,
                             r->ldb, 0.0f, r->c, 0, r->n, &r->q, NULL);
  return (int)CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, r->ta, r->tb, r->m, r->n, r->k, 1.0f, r->a, 0, r->lda,
                                         r->sa, r->b, 0, r->ldb, r->sb, 0.0f, r->c, 0, r->n, r->sc, r->batch, &r->q,
                                         NULL);
}

static int finish_clblast(void *arg) { return clFinish(((clblast_run *)arg)->q) == CL_SUCCESS ? 0 : -1; }

static void release_clblast(void *arg) {
  clblast_run *r = arg;
  if (r->a) clReleaseMemObject(r->a);
  if (r->b) clReleaseMemObject(r->b);
  if (r->c) clReleaseMemObject(r->c);
  if (r->q) clReleaseCommandQueue(r->q);
  if (r->ctx) clReleaseContext(r->ctx);
  free(r);
}

int bench_clblast_prepare(const char *device_name, int64_t m, int64_t n, int64_t k, int64_t batch, int trans_a,
                          int trans_b, bench_side *side, bench_ref_result *r) {
  memset(r, 0, sizeof *r);
  memset(side, 0, sizeof *side);
  cl_platform_id plat;
  cl_device_id dev = bench_find_device(device_name, &plat);
  if (dev == NULL) {
    snprintf(r->why, sizeof r->why, "device %s not found for CLBlast", device_name);
    return -1;
  }
  clblast_run *run = calloc(1, sizeof *run);
  size_t sa = (size_t)(m * k), sb = (size_t)(k * n), sc = (size_t)(m * n);
  float *host = malloc((sa > sb ? sa : sb) * batch * sizeof *host);
  cl_int err = CL_SUCCESS;
  if (run == NULL || host == NULL) {
    snprintf(r->why, sizeof r->why, "out of host memory");
    goto fail;
  }
  run->ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  run->q = run->ctx != NULL ? clCreateCommandQueue(run->ctx, dev, 0, &err) : NULL;
  if (run->q == NULL) {
    snprintf(r->why, sizeof r->why, "OpenCL setup for CLBlast failed (%d)", (int)err);
    goto fail;
  }
  run->a = clCreateBuffer(run->ctx, CL_MEM_READ_WRITE, sa * batch * 4, NULL, &err);
  run->b = clCreateBuffer(run->ctx, CL_MEM_READ_WRITE, sb * batch * 4, NULL, &err);
  run->c = clCreateBuffer(run->ctx, CL_MEM_READ_WRITE, sc * batch * 4, NULL, &err);
  if (run->a == NULL || run->b == NULL || run->c == NULL) {
    snprintf(r->why, sizeof r->why, "CLBlast buffers: OpenCL error %d", (int)err);
    goto fail;
  }
  for (size_t i = 0; i < (sa > sb ? sa : sb) * batch; i++) host[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
  clEnqueueWriteBuffer(run->q, run->a, CL_TRUE, 0, sa * batch * 4, host, 0, NULL, NULL);
  clEnqueueWriteBuffer(run->q, run->b, CL_TRUE, 0, sb * batch * 4, host, 0, NULL, NULL);
  run->ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
  run->tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
  run->m = (size_t)m, run->n = (size_t)n, run->k = (size_t)k, run->batch = (size_t)batch;
  run->lda = trans_a ? (size_t)m : (size_t)k, run->ldb = trans_b ? (size_t)k : (size_t)n;
  run->sa = sa, run->sb = sb, run->sc = sc;
  double t0 = bench_now();
  CLBlastStatusCode st = (CLBlastStatusCode)run_clblast(run); /* the first call compiles CLBlast's kernels */
  clFinish(run->q);
  double first = bench_now() - t0;
  if (st != CLBlastSuccess) {
    snprintf(r->why, sizeof r->why, "CLBlast returned status %d", (int)st);
    goto fail;
  }
  snprintf(r->what, sizeof r->what, "CLBlast, first call %.2f s", first);
  free(host);
  *side = (bench_side){run_clblast, finish_clblast, release_clblast, run, 0};
  return 0;
fail:
  if (run != NULL) release_clblast(run);
  free(host);
  return -1;
}
#endif
