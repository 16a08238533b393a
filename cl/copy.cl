/* copy.cl - strided copy with dtype conversion, and fill.
 *
 * Layout: any strided views; ix (built by the host) holds the destination shape, operand 0 = dst,
 * operand 1 = src (broadcast strides are 0). One work-item per destination element, dim 0 linear.
 * dtype codes: 0 f32, 1 f16, 2 i32 (enum clai_dtype). Conversions follow OpenCL C: float -> int rounds
 * toward zero and saturates (convert_int_sat_rtz), float -> half rounds to nearest even (vstore_half). */

__kernel void clai_copy(__global uchar *dst, __global const uchar *src, CLAI_INDEX_ARGS(ix), const long dst_dtype,
                        const long src_dtype) {
  const long i = get_global_id(0);
  if (i >= CLAI_IX_NUMEL(ix)) return;
  long od, os, unused;
  CLAI_OFFSETS(ix, i, &od, &os, &unused);
  float f = 0.0f;
  int v = 0;
  const int is_int = src_dtype == 2;
  if (src_dtype == 0)
    f = ((__global const float *)src)[os];
  else if (src_dtype == 1)
    f = vload_half(os, (__global const half *)src);
  else
    v = ((__global const int *)src)[os];
  if (dst_dtype == 0)
    ((__global float *)dst)[od] = is_int ? (float)v : f;
  else if (dst_dtype == 1)
    vstore_half(is_int ? (float)v : f, od, (__global half *)dst);
  else
    ((__global int *)dst)[od] = is_int ? v : convert_int_sat_rtz(f);
}

#define CLAI_FILL(SFX, T, VT, ST)                                                     \
  __kernel void clai_fill_##SFX(__global T *dst, CLAI_INDEX_ARGS(ix), const VT value) { \
    const long i = get_global_id(0);                                                  \
    if (i >= CLAI_IX_NUMEL(ix)) return;                                                        \
    long od, u1, u2;                                                                  \
    CLAI_OFFSETS(ix, i, &od, &u1, &u2);                                              \
    ST(dst, od, value);                                                               \
  }
CLAI_FILL(f32, float, float, CLAI_ST_F32)
CLAI_FILL(f16, half, float, CLAI_ST_F16)
CLAI_FILL(i32, int, int, CLAI_ST_I32)

/* Dense copy of n 4-byte elements (f32 or i32, same dtype on both sides) from src + os to dst + od: each
 * work-item copies a contiguous run of `chunk` elements with vload8/vstore8, which POCL runs at memory
 * speed (one element per work-item costs a work-item loop iteration per element). nt (the host's choice, for
 * copies too large to stay in cache): non-temporal stores, which do not read each line of dst before
 * writing it, a third of the memory traffic; scalar stores up to a 32-byte boundary, then aligned vectors. */
__kernel void clai_copy_dense4(__global uint *dst, __global const uint *src, const long n, const long od,
                               const long os, const long chunk, const int nt) {
  if (chunk <= 0) return;
  const long c0 = get_global_id(0) * chunk;
  if (c0 >= n) return;
  const long m = min(chunk, n - c0);
  __global uint *d = dst + od + c0;
  __global const uint *s = src + os + c0;
  long j = 0;
#if CLAI_NT /* cl/common.cl */
  if (nt) {
    for (; j < m && (((ulong)(d + j)) & 31) != 0; j++) d[j] = s[j];
    for (; j + 8 <= m; j += 8) __builtin_nontemporal_store(vload8(0, s + j), (__global uint8 *)(d + j));
    __builtin_ia32_sfence(); /* the stores are weakly ordered: visible before the kernel is seen to end */
  }
#endif
  for (; j + 8 <= m; j += 8) vstore8(vload8(0, s + j), 0, d + j);
  for (; j < m; j++) d[j] = s[j];
}
