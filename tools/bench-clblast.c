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
int bench_clblast(const char *device_name, int64_t m, int64_t n, int64_t k, int64_t batch, int trans_a,
                  int trans_b, int samples, double min_seconds, bench_ref_result *r) {
  (void)device_name, (void)m, (void)n, (void)k, (void)batch, (void)trans_a, (void)trans_b, (void)samples;
  (void)min_seconds;
  memset(r, 0, sizeof *r);
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

int bench_clblast(const char *device_name, int64_t m, int64_t n, int64_t k, int64_t batch, int trans_a,
                  int trans_b, int samples, double min_seconds, bench_ref_result *r) {
  memset(r, 0, sizeof *r);
  cl_platform_id plat;
  cl_device_id dev = bench_find_device(device_name, &plat);
  if (dev == NULL) {
    snprintf(r->why, sizeof r->why, "device %s not found for CLBlast", device_name);
    return -1;
  }
  cl_int err;
  cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  cl_command_queue q = ctx != NULL ? clCreateCommandQueue(ctx, dev, 0, &err) : NULL;
  size_t sa = (size_t)(m * k), sb = (size_t)(k * n), sc = (size_t)(m * n);
  cl_mem a = NULL, b = NULL, c = NULL;
  float *host = malloc((sa > sb ? sa : sb) * batch * sizeof *host);
  int rc = -1;
  if (q == NULL || host == NULL) {
    snprintf(r->why, sizeof r->why, "OpenCL setup for CLBlast failed (%d)", (int)err);
    goto done;
  }
  a = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sa * batch * 4, NULL, &err);
  b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sb * batch * 4, NULL, &err);
  c = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sc * batch * 4, NULL, &err);
  if (a == NULL || b == NULL || c == NULL) {
    snprintf(r->why, sizeof r->why, "CLBlast buffers: OpenCL error %d", (int)err);
    goto done;
  }
  for (size_t i = 0; i < (sa > sb ? sa : sb) * batch; i++) host[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
  clEnqueueWriteBuffer(q, a, CL_TRUE, 0, sa * batch * 4, host, 0, NULL, NULL);
  clEnqueueWriteBuffer(q, b, CL_TRUE, 0, sb * batch * 4, host, 0, NULL, NULL);
  CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
  size_t lda = trans_a ? (size_t)m : (size_t)k, ldb = trans_b ? (size_t)k : (size_t)n;
  double flop = 2.0 * (double)m * (double)n * (double)k * (double)batch;
  clblast_run run = {ta, tb, (size_t)m, (size_t)n, (size_t)k, (size_t)batch, lda, ldb, sa, sb, sc, a, b, c, q};
  double t0 = bench_now();
  CLBlastStatusCode st = (CLBlastStatusCode)run_clblast(&run); /* the first call compiles CLBlast's kernels */
  clFinish(q);
  double first = bench_now() - t0;
  if (st != CLBlastSuccess ||
      (st = (CLBlastStatusCode)bench_measure(run_clblast, finish_clblast, &run, flop, samples, min_seconds,
                                             &r->median, &r->min, &r->max)) != CLBlastSuccess) {
    snprintf(r->why, sizeof r->why, "CLBlast returned status %d", (int)st);
    goto done;
  }
  snprintf(r->what, sizeof r->what, "CLBlast, first call %.2f s", first);
  rc = 0;
done:
  if (a) clReleaseMemObject(a);
  if (b) clReleaseMemObject(b);
  if (c) clReleaseMemObject(c);
  if (q) clReleaseCommandQueue(q);
  if (ctx) clReleaseContext(ctx);
  free(host);
  return rc;
}
#endif
