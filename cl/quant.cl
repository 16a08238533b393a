/* quant.cl - the quantized block formats (Q8_0, Q4_0, Q4_1; their byte layouts are in include/clai.h at
 * clai_dtype): the dequantizing copy, the embedding lookup from a quantized table, and the small-M product of
 * clai_matmul with a quantized weight matrix (lib/op-quant.c).
 *
 * A quantized buffer is addressed in elements like any other (offsets and strides, all multiples of 32
 * where a block starts); element e lies in block e / 32, at byte (e / 32) * QBYTES(fmt). Blocks are 34, 18
 * or 20 bytes, so the f16 scale at a block's start is always 2-byte aligned (vload_half needs that). fmt is
 * the clai_dtype value, uniform across a launch: the branches on it cost nothing next to the memory reads.
 *
 * clai_qmatmul_*: C[b][m][n] = alpha * sum_k X[b][m][k] * W[b][n][k] + (epilogue), for M up to 16 (the
 * decode step of a language model: one token, or a few). Work-item (n, b) reads row n of W once, a block at
 * a time, dequantizes it into two float16 and multiplies it with up to QROWS rows of X (X is small and stays
 * in cache), so the weights - the whole cost of a decode step - cross the memory bus once. With M > QROWS
 * the row of W is walked again for the next QROWS rows of X, from cache. Accumulation is in f32, in 16
 * lanes per row, summed in a fixed order at the end (results do not depend on the work-group size). */
#define CLAI_Q8_0 3
#define CLAI_Q4_0 4
#define CLAI_Q4_1 5
#define QROWS 4

inline long clai_qbytes(const int fmt) { return fmt == CLAI_Q8_0 ? 34 : fmt == CLAI_Q4_0 ? 18 : 20; }

/* The 32 values of block blk: values 0-15 in *lo, 16-31 in *hi. */
inline void clai_q_block(__global const uchar *q, const long blk, const int fmt, float16 *lo, float16 *hi) {
  __global const uchar *p = q + blk * clai_qbytes(fmt);
  const float d = vload_half(0, (__global const half *)p);
  if (fmt == CLAI_Q8_0) {
    *lo = convert_float16(vload16(0, (__global const char *)(p + 2))) * d;
    *hi = convert_float16(vload16(1, (__global const char *)(p + 2))) * d;
  } else {
    const uchar16 b = vload16(0, p + (fmt == CLAI_Q4_0 ? 2 : 4));
    const float16 l = convert_float16(b & (uchar16)15), h = convert_float16(b >> (uchar16)4);
    if (fmt == CLAI_Q4_0) {
      *lo = (l - 8.0f) * d;
      *hi = (h - 8.0f) * d;
    } else {
      const float m = vload_half(1, (__global const half *)p);
      *lo = l * d + m;
      *hi = h * d + m;
    }
  }
}

/* Value j (0-31) of block blk. */
inline float clai_q_value(__global const uchar *q, const long blk, const int j, const int fmt) {
  __global const uchar *p = q + blk * clai_qbytes(fmt);
  const float d = vload_half(0, (__global const half *)p);
  if (fmt == CLAI_Q8_0) return (float)((__global const char *)p)[2 + j] * d;
  const uchar b = p[(fmt == CLAI_Q4_0 ? 2 : 4) + (j & 15)];
  const float v = (float)(j < 16 ? b & 15 : b >> 4);
  if (fmt == CLAI_Q4_0) return (v - 8.0f) * d;
  return v * d + vload_half(1, (__global const half *)p);
}

/* out = dequantize(q): one block per work-item. The index (lib/op-quant.c) runs over [rows..., blocks per
 * row]: operand 0 is out (its innermost stride is 32 times os, the stride between two values), operand 1 the
 * quantized source in elements (innermost stride 32). out_half: out is f16. */
__kernel void clai_dequant(__global uchar *out, __global const uchar *q, CLAI_INDEX_ARGS(ix), const long os,
                           const int fmt, const int out_half) {
  const long i = get_global_id(0);
  if (i >= CLAI_IX_NUMEL(ix)) return;
  long oo, oq, unused;
  CLAI_OFFSETS(ix, i, &oo, &oq, &unused);
  float16 lo, hi;
  clai_q_block(q, oq / 32, fmt, &lo, &hi);
  if (out_half) {
    __global half *o = (__global half *)out;
    if (os == 1) {
      vstore_half16(lo, 0, o + oo);
      vstore_half16(hi, 0, o + oo + 16);
    } else {
      float v[32];
      vstore16(lo, 0, v);
      vstore16(hi, 1, v);
      for (int j = 0; j < 32; j++) vstore_half(v[j], oo + j * os, o);
    }
  } else {
    __global float *o = (__global float *)out;
    if (os == 1) {
      vstore16(lo, 0, o + oo);
      vstore16(hi, 0, o + oo + 16);
    } else {
      float v[32];
      vstore16(lo, 0, v);
      vstore16(hi, 1, v);
      for (int j = 0; j < 32; j++) o[oo + j * os] = v[j];
    }
  }
}

/* The embedding lookup of clai_gather_rows from a quantized table (cl/layout.cl has the plain one; the index
 * check and the flag are the same): out[p..., col] = table[index[p...], col], one output element per
 * work-item. The index's operands: 0 = out, 1 = index. toff and trow are in elements (multiples of 32). */
__kernel void clai_gather_rows_q(__global uchar *out, __global const uchar *table, __global const int *index,
                                 __global int *flag, CLAI_INDEX_ARGS(ix), const long ncols, const long nrows,
                                 const long toff, const long trow, const int fmt, const int out_half) {
  const long i = get_global_id(0);
  if (i >= CLAI_IX_NUMEL(ix)) return;
  long oo, oi, unused;
  CLAI_OFFSETS(ix, i, &oo, &oi, &unused);
  const long col = i % ncols;
  const long row = index[oi];
  float v = 0.0f;
  if ((ulong)row < (ulong)nrows) { /* one unsigned comparison: see clai_gather_rows in cl/layout.cl */
    v = clai_q_value(table, (toff + row * trow + col) / 32, (int)(col % 32), fmt);
  } else if (col == 0) {
    atomic_min(flag, (int)min(i / ncols, (long)INT_MAX - 1));
  }
  if (out_half)
    vstore_half(v, oo, (__global half *)out);
  else
    ((__global float *)out)[oo] = v;
}

/* One element of C with clai_matmul's epilogue (the scalar path of clai_store_tile in cl/common.cl). */
inline void clai_q_store(__global float *c, const long o, const float acc, const float alpha, const float beta,
                         __global const float *bias, const long bo, const int flags) {
  const int act = flags >> 12, bk = (flags >> 4) & 3, chalf = (flags >> 8) & 1;
  __global half *hc = (__global half *)c;
  float v = alpha * acc;
  if (beta != 0.0f) v += beta * (chalf ? vload_half(o, hc) : c[o]);
  if (bk != 0) v += bk == 2 ? vload_half(bo, (__global const half *)bias) : bias[bo];
  CLAI_ACTIVATE(v, act);
  if (chalf)
    vstore_half(v, o, hc);
  else
    c[o] = v;
}

inline float clai_hsum16(const float16 a) {
  const float8 b = a.lo + a.hi;
  const float4 c = b.lo + b.hi;
  const float2 d = c.lo + c.hi;
  return d.lo + d.hi;
}

/* 16 values of row x (element offset o, stride s between values) as floats. */
#define CLAI_QX_F32(x, o, s) ((s) == 1 ? vload16(0, (x) + (o)) : clai_qx_strided_f32((x), (o), (s)))
#define CLAI_QX_F16(x, o, s) ((s) == 1 ? vload_half16(0, (x) + (o)) : clai_qx_strided_f16((x), (o), (s)))
inline float16 clai_qx_strided_f32(__global const float *x, const long o, const long s) {
  float t[16];
  for (int j = 0; j < 16; j++) t[j] = x[o + j * s];
  return vload16(0, t);
}
inline float16 clai_qx_strided_f16(__global const half *x, const long o, const long s) {
  float t[16];
  for (int j = 0; j < 16; j++) t[j] = vload_half(o + j * s, x);
  return vload16(0, t);
}

#define CLAI_QMATMUL(SFX, XT, XLOAD)                                                                            \
  __kernel void clai_qmatmul_##SFX(__global float *c, __global const XT *x, __global const uchar *w,            \
                                   CLAI_INDEX_ARGS(ix), const int M, const int N, const int K, const long sxm,  \
                                   const long sxk, const long swn, const long scm, const long scn,              \
                                   const float alpha, const float beta, __global const float *bias,             \
                                   const long boff, const long bsm, const long bsn, const int flags,           \
                                   const int fmt) {                                                             \
    const int n = (int)get_global_id(0);                                                                        \
    const long b = (long)get_global_id(1);                                                                      \
    if (n >= N || b >= CLAI_IX_NUMEL(ix)) return;                                                               \
    long oc, ox, ow;                                                                                            \
    CLAI_OFFSETS(ix, b, &oc, &ox, &ow);                                                                         \
    const long wrow = (ow + (long)n * swn) / 32; /* the row's first block */                                    \
    const int nb = K / 32;                                                                                      \
    for (int m0 = 0; m0 < M; m0 += QROWS) {                                                                     \
      float16 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;                                                       \
      const long x0 = ox + (long)m0 * sxm;                                                                      \
      for (int kb = 0; kb < nb; kb++) {                                                                         \
        float16 lo, hi;                                                                                         \
        clai_q_block(w, wrow + kb, fmt, &lo, &hi);                                                              \
        const long xk = x0 + (long)kb * 32 * sxk;                                                               \
        a0 = CLAI_FMA(XLOAD(x, xk, sxk), lo, a0);                                                               \
        a0 = CLAI_FMA(XLOAD(x, xk + 16 * sxk, sxk), hi, a0);                                                    \
        if (m0 + 1 < M) {                                                                                       \
          a1 = CLAI_FMA(XLOAD(x, xk + sxm, sxk), lo, a1);                                                       \
          a1 = CLAI_FMA(XLOAD(x, xk + sxm + 16 * sxk, sxk), hi, a1);                                            \
        }                                                                                                       \
        if (m0 + 2 < M) {                                                                                       \
          a2 = CLAI_FMA(XLOAD(x, xk + 2 * sxm, sxk), lo, a2);                                                   \
          a2 = CLAI_FMA(XLOAD(x, xk + 2 * sxm + 16 * sxk, sxk), hi, a2);                                        \
        }                                                                                                       \
        if (m0 + 3 < M) {                                                                                       \
          a3 = CLAI_FMA(XLOAD(x, xk + 3 * sxm, sxk), lo, a3);                                                   \
          a3 = CLAI_FMA(XLOAD(x, xk + 3 * sxm + 16 * sxk, sxk), hi, a3);                                        \
        }                                                                                                       \
      }                                                                                                         \
      const float acc[QROWS] = {clai_hsum16(a0), clai_hsum16(a1), clai_hsum16(a2), clai_hsum16(a3)};            \
      for (int r = 0; r < QROWS && m0 + r < M; r++)                                                             \
        clai_q_store(c, oc + (long)(m0 + r) * scm + (long)n * scn, acc[r], alpha, beta, bias,                   \
                     boff + (long)(m0 + r) * bsm + (long)n * bsn, flags);                                       \
    }                                                                                                           \
  }
CLAI_QMATMUL(f32, float, CLAI_QX_F32)
CLAI_QMATMUL(f16, half, CLAI_QX_F16)

/* The raw quants of block blk as floats (exact: small integers), lo = values 0-15, hi = 16-31, and the
 * block's scale d and minimum m (0 for Q8_0 and Q4_0; Q4_0's offset of 8 is taken off the quants). */
inline void clai_q_raw(__global const uchar *q, const long blk, const int fmt, float16 *lo, float16 *hi, float *d,
                       float *m) {
  __global const uchar *p = q + blk * clai_qbytes(fmt);
  *d = vload_half(0, (__global const half *)p);
  *m = 0.0f;
  if (fmt == CLAI_Q8_0) {
    *lo = convert_float16(vload16(0, (__global const char *)(p + 2)));
    *hi = convert_float16(vload16(1, (__global const char *)(p + 2)));
  } else {
    const uchar16 b = vload16(0, p + (fmt == CLAI_Q4_0 ? 2 : 4));
    *lo = convert_float16(b & (uchar16)15);
    *hi = convert_float16(b >> (uchar16)4);
    if (fmt == CLAI_Q4_0) {
      *lo -= 8.0f;
      *hi -= 8.0f;
    } else {
      *m = vload_half(1, (__global const half *)p);
    }
  }
}

/* out (Q8_0) = quantize(x): per block of 32 values d = max|x| / 127 (stored as half), q = round(x / d) (half
 * away from zero), all zeros when the block is. One block per work-item; the index runs over [rows...,
 * blocks per row] with operand 0 = out in elements (innermost stride 32) and 1 = x (innermost stride 32 xs,
 * xs the stride between two values). x_half: x is f16. */
__kernel void clai_quant_q8_0(__global uchar *out, __global const uchar *x, CLAI_INDEX_ARGS(ix), const long xs,
                              const int x_half) {
  const long i = get_global_id(0);
  if (i >= CLAI_IX_NUMEL(ix)) return;
  long oo, ox, unused;
  CLAI_OFFSETS(ix, i, &oo, &ox, &unused);
  float v[32];
  if (x_half) {
    for (int j = 0; j < 32; j++) v[j] = vload_half(ox + j * xs, (__global const half *)x);
  } else {
    for (int j = 0; j < 32; j++) v[j] = ((__global const float *)x)[ox + j * xs];
  }
  float amax = 0.0f;
  for (int j = 0; j < 32; j++) amax = fmax(amax, fabs(v[j]));
  const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  __global uchar *p = out + (oo / 32) * 34;
  vstore_half(d, 0, (__global half *)p);
  for (int j = 0; j < 32; j++) ((__global char *)p)[2 + j] = convert_char_sat(round(v[j] * id));
}

/* clai_qmatmul_* with A quantized too (Q8_0 activations, as a language model's decode step runs them): per
 * block, the quants multiply as exact small integers in float lanes, then scale by dA * dW, and a Q4_1
 * minimum adds mW * dA * sum(qA). sxm and the offsets are in elements (multiples of 32); A's K stride is 1. */
__kernel void clai_qmatmul_q8(__global float *c, __global const uchar *x, __global const uchar *w, CLAI_INDEX_ARGS(ix),
                              const int M, const int N, const int K, const long sxm, const long sxk, const long swn,
                              const long scm, const long scn, const float alpha, const float beta,
                              __global const float *bias, const long boff, const long bsm, const long bsn,
                              const int flags, const int fmt) {
  const int n = (int)get_global_id(0);
  const long b = (long)get_global_id(1);
  if (n >= N || b >= CLAI_IX_NUMEL(ix)) return;
  long oc, ox, ow;
  CLAI_OFFSETS(ix, b, &oc, &ox, &ow);
  const long wrow = (ow + (long)n * swn) / 32;
  const int nb = K / 32;
  for (int m0 = 0; m0 < M; m0 += QROWS) {
    float16 acc[QROWS];
    for (int r = 0; r < QROWS; r++) acc[r] = 0.0f;
    for (int kb = 0; kb < nb; kb++) {
      float16 wl, wh;
      float dw, mw;
      clai_q_raw(w, wrow + kb, fmt, &wl, &wh, &dw, &mw);
      for (int r = 0; r < QROWS; r++) {
        if (m0 + r >= M) break;
        float16 xl, xh;
        float dx, unused_m;
        clai_q_raw(x, (ox + (long)(m0 + r) * sxm) / 32 + kb, CLAI_Q8_0, &xl, &xh, &dx, &unused_m);
        acc[r] = CLAI_FMA(xl * wl + xh * wh, (float16)(dx * dw), acc[r]);
        if (fmt == CLAI_Q4_1) acc[r] = CLAI_FMA(xl + xh, (float16)(dx * mw), acc[r]);
      }
    }
    for (int r = 0; r < QROWS && m0 + r < M; r++)
      clai_q_store(c, oc + (long)(m0 + r) * scm + (long)n * scn, clai_hsum16(acc[r]), alpha, beta, bias,
                   boff + (long)(m0 + r) * bsm + (long)n * bsn, flags);
  }
}
