/* bench-peak.c - the device's measured single-precision FMA peak, the yardstick of `clai bench gemm`: a
 * kernel of independent fma chains, run on its own OpenCL context on the device libclai chose (found by
 * name, as bench-clblast.c does), in the same process as the GEMM figures it is set beside.
 *
 * Each work-item runs CH chains of float vectors of the device's native width (CL_DEVICE_NATIVE_VECTOR_WIDTH_
 * FLOAT: one hardware register each on a CPU). An FMA unit takes a new operation every cycle but delivers its
 * result 4-5 cycles later, and a core has two: about 10 chains in flight keep both busy. CH is 16 where the
 * vectors are 16 floats wide (AVX-512, 32 registers) and 10 elsewhere (AVX2's 16 registers, with room for
 * the two operands), which covers that latency without spilling. Each chain computes x = x * a + b with a
 * just below 1 and b small, so values stay normal and finite; the sum of the chains is stored so that no
 * chain is dead code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl.h>

#include "bench.h"

static const char peak_source[] =
    "#define CAT_(a, b) a##b\n"
    "#define CAT(a, b) CAT_(a, b)\n"
    "#if W == 1\n"
    "#define FV float\n"
    "#else\n"
    "#define FV CAT(float, W)\n"
    "#endif\n"
    "#if HW_FMA\n"
    "#define STEP(x) x = fma(x, a, b)\n"
    "#else\n"
    "#define STEP(x) x = mad(x, a, b)\n"
    "#endif\n"
    "__kernel void clai_peak_fma(__global float *out, const float a, const float b, const int iters) {\n"
    "  const float g = (float)get_global_id(0) * 1e-7f;\n"
    "  FV x[CH];\n"
    "  for (int j = 0; j < CH; j++) x[j] = (FV)(g + (float)j * 1e-3f);\n"
    "  for (int i = 0; i < iters; i++) {\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < CH; j++) STEP(x[j]);\n"
    "  }\n"
    "  FV s = x[0];\n"
    "  for (int j = 1; j < CH; j++) s += x[j];\n"
    "  float t = 0.0f;\n"
    "#if W == 1\n"
    "  t = s;\n"
    "#else\n"
    "  float l[W];\n"
    "  CAT(vstore, W)(s, 0, l);\n"
    "  for (int j = 0; j < W; j++) t += l[j];\n"
    "#endif\n"
    "  out[get_global_id(0)] = t;\n"
    "}\n";

cl_device_id bench_find_device(const char *name, cl_platform_id *plat) {
  cl_platform_id ps[16];
  cl_uint np = 0;
  if (clGetPlatformIDs(16, ps, &np) != CL_SUCCESS) return NULL;
  for (cl_uint i = 0; i < np && i < 16; i++) {
    cl_device_id ds[16];
    cl_uint nd = 0;
    if (clGetDeviceIDs(ps[i], CL_DEVICE_TYPE_ALL, 16, ds, &nd) != CL_SUCCESS) continue;
    for (cl_uint j = 0; j < nd && j < 16; j++) {
      char dn[256] = "";
      clGetDeviceInfo(ds[j], CL_DEVICE_NAME, sizeof dn, dn, NULL);
      dn[sizeof dn - 1] = '\0';
      if (strcmp(dn, name) == 0) {
        if (plat != NULL) *plat = ps[i];
        return ds[j];
      }
    }
  }
  return NULL;
}

typedef struct peak_run {
  cl_command_queue q;
  cl_kernel k;
  size_t global, local;
} peak_run;

static int run_peak(void *arg) {
  peak_run *r = arg;
  return clEnqueueNDRangeKernel(r->q, r->k, 1, NULL, &r->global, &r->local, 0, NULL, NULL) == CL_SUCCESS ? 0 : -1;
}

static int finish_peak(void *arg) { return clFinish(((peak_run *)arg)->q) == CL_SUCCESS ? 0 : -1; }

int bench_peak(const char *device_name, int samples, double min_seconds, bench_ref_result *r) {
  memset(r, 0, sizeof *r);
  cl_device_id dev = bench_find_device(device_name, NULL);
  if (dev == NULL) {
    snprintf(r->why, sizeof r->why, "device \"%s\" not found", device_name);
    return -1;
  }
  cl_uint width = 0, cu = 0;
  cl_device_fp_config fp = 0;
  size_t max_wg = 0;
  clGetDeviceInfo(dev, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof width, &width, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
  clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
  if (width != 1 && width != 2 && width != 4 && width != 8 && width != 16) width = width > 16 ? 16 : 4;
  if (cu == 0) cu = 1;
  const int chains = width >= 16 ? 16 : 10, iters = 2048;
  cl_int err = CL_SUCCESS;
  cl_context cl = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  cl_command_queue q = cl != NULL ? clCreateCommandQueue(cl, dev, 0, &err) : NULL;
  const char *src = peak_source;
  cl_program prog = q != NULL ? clCreateProgramWithSource(cl, 1, &src, NULL, &err) : NULL;
  cl_kernel k = NULL;
  cl_mem out = NULL;
  int rc = -1;
  if (prog == NULL) {
    snprintf(r->why, sizeof r->why, "could not set up OpenCL on the device (error %d)", (int)err);
    goto done;
  }
  char opts[128];
  snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DW=%u -DCH=%d -DHW_FMA=%d", width, chains, (fp & CL_FP_FMA) ? 1 : 0);
  if ((err = clBuildProgram(prog, 1, &dev, opts, NULL, NULL)) != CL_SUCCESS ||
      (k = clCreateKernel(prog, "clai_peak_fma", &err)) == NULL) {
    snprintf(r->why, sizeof r->why, "the peak kernel did not build (error %d)", (int)err);
    goto done;
  }
  /* enough work-items to fill every compute unit many times over (a GPU needs thousands per unit), in
   * work-groups of a size set here: left to the implementation, POCL made the 512 work-items of a 2-core
   * CPU one work-group, which one thread ran, and the "peak" came out at half the machine's (163 GFLOP/s,
   * where a 2-thread C loop of the same chains reached 330). At least 8 groups per compute unit, of at most
   * 256 work-items, a power of two that divides the global size (32 on a 2-core CPU: 318 GFLOP/s). */
  peak_run run = {q, k, (size_t)cu * (width >= 4 ? 256 : 4096), 1};
  while (run.local * 2 <= 256 && run.local * 2 <= max_wg && run.global / (run.local * 2) >= (size_t)cu * 8)
    run.local *= 2;
  out = clCreateBuffer(cl, CL_MEM_WRITE_ONLY, run.global * sizeof(float), NULL, &err);
  const cl_float a = 0.999999f, b = 1e-6f;
  const cl_int n = iters;
  if (out == NULL || clSetKernelArg(k, 0, sizeof out, &out) != CL_SUCCESS || clSetKernelArg(k, 1, sizeof a, &a) ||
      clSetKernelArg(k, 2, sizeof b, &b) || clSetKernelArg(k, 3, sizeof n, &n)) {
    snprintf(r->why, sizeof r->why, "could not set the peak kernel's arguments");
    goto done;
  }
  const double flop = 2.0 * (double)width * chains * iters * (double)run.global;
  if (bench_measure(run_peak, finish_peak, &run, flop, samples, min_seconds, &r->median, &r->min, &r->max) != 0) {
    snprintf(r->why, sizeof r->why, "the peak kernel failed to run");
    goto done;
  }
  snprintf(r->what, sizeof r->what,
           "%d independent fma chains of float%u per work-item, %zu work-items in groups of %zu", chains, width,
           run.global, run.local);
  rc = 0;
done:
  if (out != NULL) clReleaseMemObject(out);
  if (k != NULL) clReleaseKernel(k);
  if (prog != NULL) clReleaseProgram(prog);
  if (q != NULL) clReleaseCommandQueue(q);
  if (cl != NULL) clReleaseContext(cl);
  return rc;
}
