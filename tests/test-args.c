/* test-args - the portable kernel-argument rules (DESIGN.md) and check mode (clai_context_params.check_args):
 * every kernel of every program, in every matmul family, declares exactly the arguments its signature in
 * lib/internal.h says; a launch that passes a wrong size, or too few or too many arguments, is refused with a message naming the kernel, the argument and both types, and leaves the context
 * usable; a clai__index crosses as five long8 in the layout cl/common.cl reads. */
#include <stdlib.h>

#include "internal.h"
#include "testutil.h"

static clai_context *check_ctx(int eager) {
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.check_args = 1;
  p.eager = eager;
  char err[4096];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, &p, err, sizeof err);
  if (st != CLAI_OK) fail_msg("clai_context_init (check mode, eager %d): %s: %s", eager, clai_status_name(st), err);
  return ctx;
}

/* Every program built in check mode: each kernel's declared arguments against its signature, for each matmul
 * family (the context builds the program of its own family only). */
static void test_every_kernel_table(void **state) {
  (void)state;
  static const char *const families[] = {"packed", "gpu", "generic"};
  const char *old = getenv("CLAI_GEMM");
  char *saved = old != NULL ? strdup(old) : NULL;
  for (int f = 0; f < 3; f++) {
    setenv("CLAI_GEMM", families[f], 1);
    clai_context *ctx = check_ctx(1);
    clai_context_stats s;
    CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
    /* every program but the two matmul programs of the other families */
    assert_int_equal((int)s.programs, CLAI__P_COUNT - 2);
    for (int k = 0; k < CLAI__K_COUNT; k++)
      if (ctx->kernels[k] != NULL) assert_non_null(ctx->kargs[k]);
    clai_context_free(ctx);
  }
  if (saved != NULL) {
    setenv("CLAI_GEMM", saved, 1);
    free(saved);
  } else {
    unsetenv("CLAI_GEMM");
  }
}

/* A dense f32 vector of n elements filled with v through the public API, so the context is shown usable. */
static void expect_fill_works(clai_context *ctx) {
  int64_t n = 5;
  clai_tensor *t = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  CLAIT_OK(ctx, clai_fill(ctx, t, 2.5));
  float v[5];
  CLAIT_OK(ctx, clai_tensor_read(t, v, sizeof v));
  for (int i = 0; i < 5; i++) assert_float_equal(v[i], 2.5f, 0);
  clai_tensor_free(t);
}

/* clai_fill_f32(__global float *dst, CLAI_INDEX_ARGS(ix), const float value): signature "bxf", so its
 * arguments are 0 the buffer, 1-5 the index, 6 the value. */
static void test_wrong_launches(void **state) {
  (void)state;
  clai_context *ctx = check_ctx(0);
  int64_t n = 4;
  clai_tensor *t = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  clai__index ix;
  const clai_tensor *ops[1] = {t};
  clai__index_build(&ix, 1, ops);
  cl_mem mem = t->buf->mem;
  const size_t global[1] = {4};
  const double dvalue = 1.0; /* 8 bytes where a float is declared */
  const cl_float value = 1.0f;

  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_fill_f32: argument 6 is declared float (4 bytes) but 8 bytes",
              clai__launch(ctx, CLAI__K_FILL_F32, global, 3, CLAI__ARG(mem), CLAI__IDX(ix), CLAI__ARG(dvalue)));
  expect_fill_works(ctx);
  /* the index passed as one raw struct (what libclai did before: 296 bytes by value) */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_fill_f32: argument 1 is declared long8 (64 bytes) but 296 bytes",
              clai__launch(ctx, CLAI__K_FILL_F32, global, 3, CLAI__ARG(mem), CLAI__ARG(ix), CLAI__ARG(value)));
  expect_fill_works(ctx);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_fill_f32: 6 arguments are passed, the kernel has 7",
              clai__launch(ctx, CLAI__K_FILL_F32, global, 2, CLAI__ARG(mem), CLAI__IDX(ix)));
  expect_fill_works(ctx);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_fill_f32: argument 7 is passed but the kernel has only 7",
              clai__launch(ctx, CLAI__K_FILL_F32, global, 4, CLAI__ARG(mem), CLAI__IDX(ix), CLAI__ARG(value),
                           CLAI__ARG(value)));
  expect_fill_works(ctx);
  /* and the right launch, straight through the internal API */
  CLAIT_OK(ctx, clai__launch(ctx, CLAI__K_FILL_F32, global, 3, CLAI__ARG(mem), CLAI__IDX(ix), CLAI__ARG(value)));
  float v[4];
  CLAIT_OK(ctx, clai_tensor_read(t, v, sizeof v));
  for (int i = 0; i < 4; i++) assert_float_equal(v[i], 1.0f, 0);
  clai_tensor_free(t);
  clai_context_free(ctx);
}

/* The declaration check itself, on a kernel of this test's own: every kind of mismatch is refused with the
 * kernel, the argument and both types named. */
static void test_declaration_check(void **state) {
  (void)state;
  clai_context *ctx = check_ctx(0);
  const char *src = "__kernel void probe(__global float *a, const int b, const long8 c, const long d,\n"
                    "                    __local float *e, const uint f, const float3 g) { a[0] = b; }\n";
  cl_program prog = NULL;
  CLAIT_OK(ctx, clai__program_build(ctx, src, "-cl-std=CL1.2 -cl-kernel-arg-info", "probe", &prog));
  cl_int err;
  cl_kernel kern = clCreateKernel(prog, "probe", &err);
  assert_non_null(kern);
  clai__karg *args = NULL;
  int n = -1;
  static const struct {
    const char *sig, *needle;
  } bad[] = {
      {"bivl", "probe: the kernel has 7 arguments, its signature \"bivl\" names 4"},
      {"iivl", "probe: argument 0 is declared float* but the host passes int"},
      {"bvvl", "probe: argument 1 is declared int but the host passes long8"},
      {"bixl", "probe: argument 3 is declared long but the host passes long8"}, /* x is five long8 from 2 */
      {"bivf", "probe: argument 3 is declared long but the host passes float"},
      {"bivlb", "probe: argument 4 is declared float* (__local) but the host passes a __global pointer"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    clai_status st = clai__kernel_args_check(ctx, kern, "probe", bad[i].sig, &args, &n);
    if (st != CLAI_E_BUILD || strstr(clai_errmsg(ctx), bad[i].needle) == NULL)
      fail_msg("signature %s: %s \"%s\", expected CLAI_E_BUILD \"%s\"", bad[i].sig, clai_status_name(st),
               clai_errmsg(ctx), bad[i].needle);
    assert_null(args);
  }
  clReleaseKernel(kern);
  clReleaseProgram(prog);
  /* the sizes it derives from the declarations, for a kernel the signature matches */
  const char *src2 = "__kernel void fine(__global float *a, const int b, const long8 c, const long d, const float e,\n"
                     "                   const long8 i0, const long8 i1, const long8 i2, const long8 i3,\n"
                     "                   const long8 i4) { a[0] = b; }\n";
  CLAIT_OK(ctx, clai__program_build(ctx, src2, "-cl-std=CL1.2 -cl-kernel-arg-info", "fine", &prog));
  kern = clCreateKernel(prog, "fine", &err);
  assert_non_null(kern);
  CLAIT_FAILS(ctx, CLAI_E_BUILD, "fine: its signature \"bivlfxi\" has more arguments than the kernel's 10",
              clai__kernel_args_check(ctx, kern, "fine", "bivlfxi", &args, &n));
  assert_null(args);
  CLAIT_OK(ctx, clai__kernel_args_check(ctx, kern, "fine", "bivlfx", &args, &n));
  assert_int_equal(n, 10);
  const size_t sizes[10] = {sizeof(cl_mem), 4, 64, 8, 4, 64, 64, 64, 64, 64};
  for (int i = 0; i < 10; i++) assert_int_equal(args[i].size, sizes[i]);
  assert_true(args[0].pointer);
  assert_string_equal(args[2].type, "long8");
  free(args);
  clReleaseKernel(kern);
  clReleaseProgram(prog);
  expect_fill_works(ctx);
  clai_context_free(ctx);
}

/* The layout of the five long8 (cl/common.cl): offsets, ndim, numel; shape and strides right-aligned. */
static void test_index_pack(void **state) {
  (void)state;
  clai__index ix;
  memset(&ix, 0, sizeof ix);
  ix.ndim = 3;
  ix.numel = 2 * 3 * 5;
  const cl_long shape[3] = {2, 3, 5};
  for (int d = 0; d < 3; d++) {
    ix.shape[d] = shape[d];
    ix.stride[0][d] = 100 + d;
    ix.stride[1][d] = 200 + d;
    ix.stride[2][d] = 300 + d;
  }
  ix.offset[0] = 7;
  ix.offset[1] = 8;
  ix.offset[2] = 9;
  cl_long8 v[5];
  clai__index_pack(&ix, v);
  const cl_long h[8] = {7, 8, 9, 3, 30, 0, 0, 0};
  for (int j = 0; j < 8; j++) assert_int_equal(v[0].s[j], h[j]);
  for (int j = 0; j < 5; j++) {
    assert_int_equal(v[1].s[j], 1); /* unused leading dims */
    for (int op = 0; op < 3; op++) assert_int_equal(v[2 + op].s[j], 0);
  }
  for (int d = 0; d < 3; d++) {
    assert_int_equal(v[1].s[5 + d], shape[d]);
    for (int op = 0; op < 3; op++) assert_int_equal(v[2 + op].s[5 + d], 100 * (op + 1) + d);
  }
  /* a scalar: no dims, every shape entry 1 */
  memset(&ix, 0, sizeof ix);
  ix.numel = 1;
  clai__index_pack(&ix, v);
  for (int j = 0; j < 8; j++) assert_int_equal(v[1].s[j], 1);
  assert_int_equal(v[0].s[4], 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(test_index_pack),
      CLAIT_TIMED(test_wrong_launches),
      CLAIT_TIMED(test_declaration_check),
      CLAIT_TIMED(test_every_kernel_table),
  };
  return clait_main("args", tests, sizeof tests / sizeof tests[0], 1);
}
