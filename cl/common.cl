/* common.cl - prepended to every program of libclai (see lib/program.c).
 *
 * Build options every program gets from the host:
 *   CLAI_FP16  1 when the device reports cl_khr_fp16 (half arithmetic); half *storage* never needs it,
 *              because vload_half/vstore_half are core OpenCL C 1.2 (section 6.12.7).
 *   CLAI_CPU   1 on CPU devices (POCL), where the kernels prefer CPU-shaped work mappings.
 *   CLAI_HW_FMA 1 when the device reports a fused multiply-add (CL_FP_FMA in CL_DEVICE_SINGLE_FP_CONFIG).
 *              The kernels accumulate with CLAI_FMA: fma() there, a multiply and an add elsewhere, where
 *              fma() is a correctly rounded software routine (llvmpipe: the GEMM ran 3-4x slower with it).
 *   CLAI_ASSUMES 1 on POCL's CPU devices, whose compiler may be told what holds (CLAI_ASSUME below).
 *   CLAI_NTSTORE 1 where Clang's __builtin_nontemporal_store is there (POCL's CPU devices: caps.nt_store in
 *              lib/device.c; passed to the programs that use it); kernels test CLAI_NT below.
 *
 * Strided kernels take their index metadata as five long8 arguments (CLAI_INDEX_ARGS); see below. */
#ifndef CLAI_FP16
#define CLAI_FP16 0
#endif
#ifndef CLAI_CPU
#define CLAI_CPU 0
#endif
#ifndef CLAI_NTSTORE
#define CLAI_NTSTORE 0
#endif
/* CLAI_NT: non-temporal stores (which do not read a line before writing it) and the sfence that orders them
 * before the kernel is seen to end, both x86's. */
#if CLAI_NTSTORE && (defined(__x86_64__) || defined(__i386__))
#define CLAI_NT 1
#else
#define CLAI_NT 0
#endif
#ifndef CLAI_HW_FMA
#define CLAI_HW_FMA 1
#endif
#if CLAI_HW_FMA
#define CLAI_FMA(a, b, c) fma((a), (b), (c))
#else
#define CLAI_FMA(a, b, c) ((a) * (b) + (c))
#endif
#if CLAI_FP16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#endif
/* CLAI_ASSUME(c): the compiler may take c as true, where the host says the device's compiler can be told
 * (CLAI_ASSUMES: POCL on a CPU, through clang's __builtin_unreachable); nothing elsewhere (Oclgrind 21.10
 * fails to create a kernel that calls the llvm.assume it becomes). */
#if defined(__clang__) && defined(CLAI_ASSUMES)
#define CLAI_ASSUME(c) \
  do {                 \
    if (!(c)) __builtin_unreachable(); \
  } while (0)
#else
#define CLAI_ASSUME(c) ((void)0)
#endif

/* ---- strided index metadata ---------------------------------------------------------------------------
 * A kernel that walks strided views of up to three operands (0 = the output, 1 and 2 inputs) over one shape
 * of up to 8 dims takes CLAI_INDEX_ARGS(ix): five long8 arguments that lib/program.c fills from a
 * struct clai__index (lib/internal.h):
 *   ix_h              (offset0, offset1, offset2, ndim, numel, 0, 0, 0), offsets in elements
 *   ix_n              the shape, right-aligned: the innermost dim in .s7, unused leading dims are 1
 *   ix_s0, _s1, _s2   each operand's strides (elements), aligned like ix_n, 0 in unused dims
 * Only scalars and vectors of fixed size cross the host/kernel boundary: a struct by value is laid out
 * differently by some implementations (Mesa rusticl sizes one holding a 2-D array differently), and the
 * right alignment keeps every component access static, so no private array is ever indexed at run time. */
#define CLAI_MAX_DIMS 8
#define CLAI_INDEX_ARGS(ix) \
  const long8 ix##_h, const long8 ix##_n, const long8 ix##_s0, const long8 ix##_s1, const long8 ix##_s2
#define CLAI_IX_OFF(ix, k) (ix##_h.s##k)       /* operand k's offset, k a literal 0, 1 or 2 */
#define CLAI_IX_NDIM(ix) (ix##_h.s3)
#define CLAI_IX_NUMEL(ix) (ix##_h.s4)
#define CLAI_IX_SHAPE_IN(ix) (ix##_n.s7)         /* the innermost dim (1 when ndim is 0) */
#define CLAI_IX_STRIDE_IN(ix, k) (ix##_s##k.s7) /* operand k's innermost stride: its only one when ndim is 1 */
#define CLAI_OFFSETS(ix, i, o0, o1, o2) \
  clai_offsets(ix##_h, ix##_n, ix##_s0, ix##_s1, ix##_s2, (i), (o0), (o1), (o2))

#define CLAI_IX_STEP_(c)                \
  do {                                  \
    const long q_ = i / n.c;            \
    const long r_ = i - q_ * n.c;       \
    a += r_ * s0.c;                     \
    b += r_ * s1.c;                     \
    d += r_ * s2.c;                     \
    i = q_;                             \
  } while (0)

/* Element offsets of the three operands for linear index i < numel (row-major over the shape). */
inline void clai_offsets(const long8 h, const long8 n, const long8 s0, const long8 s1, const long8 s2, long i,
                         long *o0, long *o1, long *o2) {
  long a = h.s0, b = h.s1, d = h.s2;
  const long nd = h.s3;
  if (nd == 1) { /* the common case after the host merged contiguous dims */
    a += i * s0.s7;
    b += i * s1.s7;
    d += i * s2.s7;
  } else if (nd > 1) {
    CLAI_IX_STEP_(s7);
    CLAI_IX_STEP_(s6);
    if (nd > 2) CLAI_IX_STEP_(s5);
    if (nd > 3) CLAI_IX_STEP_(s4);
    if (nd > 4) CLAI_IX_STEP_(s3);
    if (nd > 5) CLAI_IX_STEP_(s2);
    if (nd > 6) CLAI_IX_STEP_(s1);
    if (nd > 7) CLAI_IX_STEP_(s0);
  }
  *o0 = a;
  *o1 = b;
  *o2 = d;
}

/* ---- half precision storage on CPU devices --------------------------------------------------------------
 * POCL 3.1 implements vload_half and vstore_half as software routines that cost more than the arithmetic
 * around them (the decode step's product ran at half speed; RoPE and attention over an f16 KV cache were
 * dominated by them). On POCL (CLAI_BITHALF, lib/device.c) the scalar forms are replaced by these conversions:
 * clai_h2f is exact for every half (subnormals by an exact multiplication by 2^112, infinities and NaNs
 * kept), clai_f2h rounds to nearest even as vstore_half does (subnormal results by letting the FPU round
 * x + 0.5, whose ulp is the half subnormal step; overflow to infinity; NaNs stay NaN). GPUs keep the
 * builtins, which are instructions there, and so does Oclgrind, which evaluated clai_f2h wrongly.
 * tests/test-tensor checks every half pattern and the rounding. clai_h2f also reads the scales of the
 * quantized blocks (cl/quant.cl) on every device. */
inline float clai_h2f(const uint h) {
  const uint sign = (h & 0x8000u) << 16, mag = (h & 0x7fffu) << 13;
  return (h & 0x7c00u) == 0x7c00u ? as_float(sign | 0x7f800000u | mag) : as_float(sign | mag) * 0x1p112f;
}
/* clai_h2f of eight halves at once (the same exact conversion, on a vector). */
inline float8 clai_h2f8(const uint8 h) {
  const uint8 sign = (h & 0x8000u) << 16, mag = (h & 0x7fffu) << 13;
  const float8 f = as_float8(sign | mag) * 0x1p112f;
  return (h & 0x7c00u) == 0x7c00u ? as_float8(sign | 0x7f800000u | mag) : f;
}
inline ushort clai_f2h(const float f) {
  const uint x = as_uint(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (ushort)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* NaN, quiet */
  if (ax >= 0x477ff000u) return (ushort)(sign | 0x7c00u);                        /* rounds to infinity */
  if (ax < 0x38800000u) /* below 2^-14: a half subnormal (or zero) */
    return (ushort)(sign | (as_uint(as_float(ax) + 0.5f) - 0x3f000000u));
  return (ushort)(sign | ((ax + 0xc8000fffu + ((ax >> 13) & 1u)) >> 13)); /* rebias the exponent, round */
}
#ifndef CLAI_BITHALF
#define CLAI_BITHALF 0
#endif
#if CLAI_BITHALF
inline float __attribute__((overloadable)) clai_vload_half(const size_t i, const __global half *p) {
  return clai_h2f(((const __global ushort *)p)[i]);
}
inline float __attribute__((overloadable)) clai_vload_half(const size_t i, const __local half *p) {
  return clai_h2f(((const __local ushort *)p)[i]);
}
inline float __attribute__((overloadable)) clai_vload_half(const size_t i, const __private half *p) {
  return clai_h2f(((const __private ushort *)p)[i]);
}
inline void __attribute__((overloadable)) clai_vstore_half(const float v, const size_t i, __global half *p) {
  ((__global ushort *)p)[i] = clai_f2h(v);
}
inline void __attribute__((overloadable)) clai_vstore_half(const float v, const size_t i, __local half *p) {
  ((__local ushort *)p)[i] = clai_f2h(v);
}
inline void __attribute__((overloadable)) clai_vstore_half(const float v, const size_t i, __private half *p) {
  ((__private ushort *)p)[i] = clai_f2h(v);
}
#define vload_half(i, p) clai_vload_half((size_t)(i), (p))
#define vstore_half(v, i, p) clai_vstore_half((float)(v), (size_t)(i), (p))
#endif

/* An unaligned load of eight floats at p. On CPUs (their OpenCL compilers are Clang) through a float8 type
 * of 4-byte alignment: where two vload8 results were added directly, POCL 3.1 compiled the loads and the add
 * as 2-wide pieces (several times slower, seen in the generated code of cl/reduce.cl); a plain vector load
 * stays whole. Elsewhere vload8. */
#if CLAI_CPU
typedef float8 clai_f8u __attribute__((aligned(4)));
#define CLAI_LD8(p) (*(const __global clai_f8u *)(p))
#else
#define CLAI_LD8(p) vload8(0, (p))
#endif

/* Loads and stores by storage type; arithmetic is always in float (or int for i32). */
#define CLAI_LD_F32(p, i) ((p)[i])
#define CLAI_ST_F32(p, i, v) ((p)[i] = (v))
#define CLAI_LD_F16(p, i) vload_half((i), (p))
#define CLAI_ST_F16(p, i, v) vstore_half((v), (i), (p))
#define CLAI_LD_I32(p, i) ((p)[i])
#define CLAI_ST_I32(p, i, v) ((p)[i] = (v))

/* ---- the GEMM epilogue, shared by every matmul family (cl/matmul*.cl) ----------------------------------
 * Each family keeps an rm x VW tile of C in registers (rm float vectors of width VW, VW columns side by
 * side) and ends with clai_store_tile(), which writes
 *     C = act(alpha * acc + beta * C + bias)
 * for the rows and columns inside M x N. C is not read when beta is 0 (NaNs there do not propagate).
 * `flags` packs what the host knows (lib/op-matmul.c): bits 4-5 the bias (0 none, 1 f32, 2 f16), bit 8 C
 * stored as half, bits 12 and up the activation (clai_activation in clai.h). The activation sits in the top
 * bits so that decoding it needs no mask: with `flags & 15`, LLVM turns the activation's if-chain into a
 * switch on a 4-bit integer, which Oclgrind 21.10 evaluates without truncating (a bias bit then hid the
 * ReLU). The bias element of (m, n)
 * is bias[boff + m * bsm + n * bsn] (a row vector has bsm = 0, a column vector bsn = 0). Only programs
 * built with a tile width VW (-DVW) get this code. */
#define CLAI_ACT_NONE 0
#define CLAI_ACT_RELU 1
#define CLAI_ACT_GELU 2
#define CLAI_ACT_SILU 3

/* v = act(v) for a float or a float vector; GELU is the tanh form written as x * sigmoid(2u), as in
 * cl/elementwise.cl. ReLU passes NaN through (x < 0 ? 0 : x; fmax would make it 0), as clai_unary does. */
#define CLAI_ACTIVATE(v, act)                                                        \
  do {                                                                               \
    if ((act) == CLAI_ACT_RELU)                                                      \
      (v) = (v) < 0.0f ? 0.0f : (v);                                                 \
    else if ((act) == CLAI_ACT_GELU)                                                 \
      (v) = (v) / (1.0f + exp(-1.5957691216057308f * ((v) + 0.044715f * (v) * (v) * (v)))); \
    else if ((act) == CLAI_ACT_SILU)                                                 \
      (v) = (v) / (1.0f + exp(-(v)));                                                \
  } while (0)

#ifdef VW
#define CLAI_CAT_(a, b) a##b
#define CLAI_CAT(a, b) CLAI_CAT_(a, b)
#define FV CLAI_CAT(float, VW)
#define VLOAD_VW CLAI_CAT(vload, VW)
#define VSTORE_VW CLAI_CAT(vstore, VW)
#define VLOAD_HALF_VW CLAI_CAT(vload_half, VW)
#define VSTORE_HALF_VW CLAI_CAT(vstore_half, VW)

inline float clai_bias_at(__global const float *bias, const long o, const int kind) {
  return kind == 2 ? vload_half(o, (__global const half *)bias) : bias[o];
}

/* c points at element 0 of the batch entry's C (in elements of C's dtype: half when flags say so). */
inline void clai_store_tile(__global float *c, const long oc, const FV *acc, const int rm, const int row0,
                            const int col0, const int M, const int N, const long scm, const long scn,
                            const float alpha, const float beta, __global const float *bias, const long boff,
                            const long bsm, const long bsn, const int flags) {
  const int act = flags >> 12, bk = (flags >> 4) & 3, chalf = (flags >> 8) & 1;
  __global half *hc = (__global half *)c;
  const int whole = scn == 1 && col0 + VW <= N;
  for (int r = 0; r < rm; r++) {
    if (row0 + r >= M) break;
    const long co = oc + (long)(row0 + r) * scm;
    const long bo = boff + (long)(row0 + r) * bsm;
    if (whole) {
      FV v = alpha * acc[r];
      if (beta != 0.0f) v = CLAI_FMA((FV)(beta), chalf ? VLOAD_HALF_VW(0, hc + co + col0) : VLOAD_VW(0, c + co + col0), v);
      if (bk != 0) {
        if (bsn == 0) {
          v += clai_bias_at(bias, bo, bk);
        } else if (bsn == 1) {
          v += bk == 2 ? VLOAD_HALF_VW(0, (__global const half *)bias + bo + col0) : VLOAD_VW(0, bias + bo + col0);
        } else {
          float t[VW];
          for (int j = 0; j < VW; j++) t[j] = clai_bias_at(bias, bo + (long)(col0 + j) * bsn, bk);
          v += VLOAD_VW(0, t);
        }
      }
      CLAI_ACTIVATE(v, act);
      if (chalf)
        VSTORE_HALF_VW(v, 0, hc + co + col0);
      else
        VSTORE_VW(v, 0, c + co + col0);
    } else {
      float t[VW];
      VSTORE_VW(acc[r], 0, t);
      for (int j = 0; j < VW && col0 + j < N; j++) {
        const long o = co + (long)(col0 + j) * scn;
        float v = alpha * t[j];
        if (beta != 0.0f) v += beta * (chalf ? vload_half(o, hc) : c[o]);
        if (bk != 0) v += clai_bias_at(bias, bo + (long)(col0 + j) * bsn, bk);
        CLAI_ACTIVATE(v, act);
        if (chalf)
          vstore_half(v, o, hc);
        else
          c[o] = v;
      }
    }
  }
}

/* The common case of the epilogue, inlined: rm rows of cn vectors (acc[q * rm + r] holds row r, columns
 * col0 + q * VW ...), C in f32 with unit column stride, all cn * VW columns inside N (rows past M are
 * skipped), no bias or an f32 one with bsn 0 or 1 (a value per row, or a row vector or matrix read as
 * vectors), no activation or ReLU. Returns 0 without storing anything otherwise, and the caller goes to
 * clai_store_tile. The same operations in the same order as there, so the results are bit for bit the
 * same. clai_store_tile is a called function, run once per vector column, whose prologue loads GELU's and
 * SiLU's constants: on POCL (AVX-512, 14 x 32 tiles, K = 8, M x N 1008 x 1024 and 2016 x 2048) a tile cost
 * 0.46-0.53 us of a thread whatever K, ~9% of a 777^3 product; 0.21-0.27 us through this path. */
inline __attribute__((always_inline)) int clai_store_tile_fast(
    __global float *c, const long oc, const FV *acc, const int rm, const int cn, const int row0, const int col0,
    const int M, const int N, const long scm, const long scn, const float alpha, const float beta,
    __global const float *bias, const long boff, const long bsm, const long bsn, const int flags) {
  const int act = flags >> 12, bk = (flags >> 4) & 3;
  if (scn != 1 || (flags & (1 << 8)) != 0 || act > CLAI_ACT_RELU || bk > 1 || (bk == 1 && bsn != 0 && bsn != 1) ||
      col0 + cn * VW > N)
    return 0;
  const int rows = min(rm, M - row0);
#pragma unroll
  for (int r = 0; r < rm; r++) {
    if (r >= rows) continue; /* not break: a loop with one exit unrolls, and acc then stays in registers */
    __global float *cr = c + oc + (long)(row0 + r) * scm + col0;
    const long bo = boff + (long)(row0 + r) * bsm;
#pragma unroll
    for (int q = 0; q < cn; q++) {
      FV v = alpha * acc[q * rm + r];
      if (beta != 0.0f) v = CLAI_FMA((FV)(beta), VLOAD_VW(0, cr + q * VW), v);
      if (bk != 0) v += bsn == 0 ? (FV)(bias[bo]) : VLOAD_VW(0, bias + bo + col0 + q * VW);
      if (act == CLAI_ACT_RELU) v = v < 0.0f ? 0.0f : v;
      VSTORE_VW(v, 0, cr + q * VW);
    }
  }
  return 1;
}

/* Stores an R x CN tile (acc[q * R + r], R and CN constants): the inlined common case, else clai_store_tile
 * once per vector column inside N, on a copy of acc (passing acc itself would put the accumulators in memory
 * for the whole loop over k) and through one call site (POCL compiles each kernel at its first launch per
 * work-group size, and the store's code is long). */
#define CLAI_STORE_TILES(c, oc, acc, R, CN_, row0, col0, M, N, scm, scn, alpha, beta, bias, boff, bsm, bsn, flags) \
  do {                                                                                                         \
    if (!clai_store_tile_fast(c, oc, acc, R, CN_, row0, col0, M, N, scm, scn, alpha, beta, bias, boff, bsm, bsn, \
                              flags)) {                                                                        \
      FV out_[(R) * (CN_)];                                                                                    \
      _Pragma("unroll") for (int r_ = 0; r_ < (R) * (CN_); r_++) out_[r_] = (acc)[r_];                         \
      _Pragma("unroll 1") for (int q_ = 0; q_ < (CN_); q_++) if ((col0) + q_ * VW < (N))                       \
        clai_store_tile(c, oc, out_ + q_ * (R), R, row0, (col0) + q_ * VW, M, N, scm, scn, alpha, beta, bias,  \
                        boff, bsm, bsn, flags);                                                                \
    }                                                                                                          \
  } while (0)
#endif /* VW */

/* The bands of rb rows that cover `rows` (cl/conv.cl, cl/conv_backward.cl: a plane's rows in bands on a device
 * with a loop budget; lib/internal.h, clai__band_rows). At least 1, so that the work-item's band and image
 * divide by it, whatever the sizes (the warm-up launches every kernel with all of them 0). */
#define CLAI_NBANDS(rows, rb) ((rb) > 0 && (rows) > 0 ? ((rows) + (rb) - 1) / (rb) : 1)

/* The elements of partial j of P over n: a contiguous chunk on CPUs (one core streams through it), an
 * interleaved set j, j + P, ... on GPUs (neighbouring work-items read neighbouring elements). Either way the
 * grouping and the order of additions depend only on n and P (cl/loss.cl, cl/optim.cl). */
#if CLAI_CPU
#define CLAI_PART_RANGE(j, n, P, lo, hi, st)                                                             \
  const long st = 1, lo = (j) * (((n) + (P) - 1) / (P)), hi = min((long)(n), lo + ((n) + (P) - 1) / (P))
#else
#define CLAI_PART_RANGE(j, n, P, lo, hi, st) const long st = (P), lo = (j), hi = (n)
#endif

/* Adds the L values of red[] in a fixed tree (the same on every run for a given work-group size) and
 * leaves the total in red[0]; every work-item of the group must call it (cl/loss.cl, cl/optim.cl). */
inline void clai_tree_sum(__local float *red, const int lid, const int L) {
  for (int st = 1; st < L; st <<= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if ((lid & (2 * st - 1)) == 0 && lid + st < L) red[lid] += red[lid + st];
  }
  barrier(CLK_LOCAL_MEM_FENCE);
}

/* ---- work-group-per-row kernels (CLAI_ROWS=wg; cl/norm.cl, cl/norm_backward.cl) -------------------------
 * A work-group of L work-items takes L / S rows, S work-items ("lanes", a power of two the host picks, see
 * clai__rows_shape) per row: lane k of sub-group g owns elements k, k + S, ... of row group_id * (L / S) + g,
 * so neighbouring work-items read neighbouring elements. clai_wg_reduce2 combines two values per lane over
 * the S lanes of one sub-group in a fixed halving tree in local memory (the same order on every run for a
 * given S) and hands the results to every lane. Every work-item of the group must call it, rows past the end
 * included, so the barriers are reached uniformly. red_a and red_b hold at least L floats. */
#define CLAI_WG_MAX_LOCAL 256
#define CLAI_WG_SUM 0 /* *a and *b are summed */
#define CLAI_WG_MAX 1 /* *a and *b become maxima (fmax: NaN is skipped) */
inline void clai_wg_reduce2(__local float *red_a, __local float *red_b, const int base, const int lane, const int S,
                            const int op, float *a, float *b) {
  barrier(CLK_LOCAL_MEM_FENCE); /* whoever read the previous results has done so */
  red_a[base + lane] = *a;
  red_b[base + lane] = *b;
  for (int st = S >> 1; st > 0; st >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lane < st) {
      const int i = base + lane, k = i + st;
      if (op == CLAI_WG_MAX) {
        red_a[i] = fmax(red_a[i], red_a[k]);
        red_b[i] = fmax(red_b[i], red_b[k]);
      } else {
        red_a[i] += red_a[k];
        red_b[i] += red_b[k];
      }
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  *a = red_a[base];
  *b = red_b[base];
}

/* The float ops of clai_unary (op = the clai_unary_op value; alpha * x + beta past the named ones): shared by
 * cl/elementwise.cl and the fused GLU of cl/quant.cl, so that both compute the same bits. */
inline float clai_unary_f(const int op, const float x, const float alpha, const float beta) {
  switch (op) {
  case 0: return -x;
  case 1: return fabs(x);
  case 2: return exp(x);
  case 3: return log(x);
  case 4: return sqrt(x);
  /* relu: x < 0 ? 0 : x, not fmax(x, 0), which maps NaN to 0 (a NaN must not vanish behind a ReLU; PyTorch
   * propagates it too, issue 10) */
  case 5: return x < 0.0f ? 0.0f : x;
  /* GELU (tanh form) as x * sigmoid(2u), the same function since 0.5(1 + tanh(u)) = 1 / (1 + exp(-2u)):
   * 1 + tanh(u) cancels for negative x and left an error of about |x| * 2^-24 in the tail (GELU(-100)
   * came out as -3e-6 instead of -0). */
  case 6: return x / (1.0f + exp(-1.5957691216057308f * (x + 0.044715f * x * x * x)));
  case 7: return x / (1.0f + exp(-x));
  case 8: return 1.0f / (1.0f + exp(-x));
  case 9: return tanh(x);
  default: return alpha * x + beta;
  }
}
