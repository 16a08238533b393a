/* common.cl - prepended to every program of libclai (see lib/program.c).
 *
 * Build options every program gets from the host:
 *   CLAI_FP16  1 when the device reports cl_khr_fp16 (half arithmetic); half *storage* never needs it,
 *              because vload_half/vstore_half are core OpenCL C 1.2 (section 6.12.7).
 *   CLAI_CPU   1 on CPU devices (POCL), where the kernels prefer CPU-shaped work mappings.
 *
 * Strided kernels receive a clai_index by value. Its layout must match struct clai__index in
 * lib/internal.h field for field; every field is a long so no padding rules are involved. */
#ifndef CLAI_FP16
#define CLAI_FP16 0
#endif
#ifndef CLAI_CPU
#define CLAI_CPU 0
#endif
#if CLAI_FP16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#endif

#define CLAI_MAX_DIMS 8
#define CLAI_IDX_OPS 3

typedef struct clai_index {
  long ndim;
  long numel;
  long shape[CLAI_MAX_DIMS];
  long stride[CLAI_IDX_OPS][CLAI_MAX_DIMS];
  long offset[CLAI_IDX_OPS];
} clai_index;

/* Element offsets of the three operands for linear index i (row-major over ix->shape). */
inline void clai_offsets(const clai_index *ix, long i, long *o0, long *o1, long *o2) {
  long a = ix->offset[0], b = ix->offset[1], c = ix->offset[2];
  if (ix->ndim == 1) { /* the common case after the host merged contiguous dims */
    a += i * ix->stride[0][0];
    b += i * ix->stride[1][0];
    c += i * ix->stride[2][0];
  } else {
    for (int d = (int)ix->ndim - 1; d >= 0; d--) {
      const long s = ix->shape[d];
      const long q = i / s;
      const long r = i - q * s;
      a += r * ix->stride[0][d];
      b += r * ix->stride[1][d];
      c += r * ix->stride[2][d];
      i = q;
    }
  }
  *o0 = a;
  *o1 = b;
  *o2 = c;
}

/* Loads and stores by storage type; arithmetic is always in float (or int for i32). */
#define CLAI_LD_F32(p, i) ((p)[i])
#define CLAI_ST_F32(p, i, v) ((p)[i] = (v))
#define CLAI_LD_F16(p, i) vload_half((i), (p))
#define CLAI_ST_F16(p, i, v) vstore_half((v), (i), (p))
#define CLAI_LD_I32(p, i) ((p)[i])
#define CLAI_ST_I32(p, i, v) ((p)[i] = (v))
