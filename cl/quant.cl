/* quant.cl - the quantized block formats (Q8_0, Q4_0, Q4_1, and the K-quants Q4_K and Q6_K; their byte
 * layouts are in include/clai.h at clai_dtype): the dequantizing copy, the embedding lookup from a quantized
 * table, and the small-M product of clai_matmul with a quantized weight matrix (lib/op-quant.c).
 *
 * A quantized buffer is addressed in elements like any other (offsets and strides, all multiples of 32
 * where a block starts); element e lies in block e / 32, at byte (e / 32) * clai_qbytes(fmt). A block's f16
 * scale (and Q4_1's minimum) are read as bytes and converted by clai_h2f (cl/common.cl), exact and several
 * times faster on POCL than vload_half. fmt is the clai_dtype value, uniform across a launch.
 *
 * The products: C[b][m][n] = alpha * sum_k X[b][m][k] * W[b][n][k] + (epilogue), X f32 (lib/op-matmul.c
 * widens f16 and Q8_0 activations first), for the few rows of a language model's decode step.
 * Work-item (n, b) reads row n of W once, a block at a time, dequantizes it into two float16 and multiplies
 * it with the rows of X (small, in cache), so the weights - the whole cost of a decode step - cross the
 * memory bus once. clai_qgemv_<fmt> (M <= QROWS, X dense along K) has the format fixed at compile time and
 * a loop of its own for M = 1; clai_qmatmul_f32 takes any strides and M up to 16, walking the row of W
 * again (from cache) for each QROWS rows of X. Accumulation is in f32, in 16 lanes per row, summed in a
 * fixed order at the end (results do not depend on the work-group size). The epilogue arrives as three
 * ints (see clai_q_store).
 *
 * The K-quants store super-blocks of 256 values, eight sub-blocks of 32 that each have a scale of their own
 * (Q4_K: and a minimum; Q6_K: one scale per 16 values, so a sub-block has one for its low and one for its high
 * 16 values). The kernels address them as 32-value blocks like the others: block blk is sub-block blk % 8 of
 * super-block blk / 8 (offsets and strides are multiples of 256, so a row starts at a super-block), and its
 * "d" and "m" are its effective scales (clai_qk_scale), so the loops over blocks above serve them unchanged.
 * The decode kernels convert a super-block's eight pairs of scales together (clai_qk_scales8). */
#define CLAI_Q8_0 3
#define CLAI_Q4_0 4
#define CLAI_Q4_1 5
#define CLAI_Q4_K 6
#define CLAI_Q6_K 7
#define QROWS 4

/* Bytes of a K-quant super-block. */
#define CLAI_QK_BYTES(fmt) ((fmt) == CLAI_Q4_K ? 144 : 210)

inline long clai_qbytes(const int fmt) { return fmt == CLAI_Q8_0 ? 34 : fmt == CLAI_Q4_0 ? 18 : 20; }

/* clai_h2f (cl/common.cl) of the little-endian half at byte 2i of p. */
#define CLAI_H2F_AT(p, i) clai_h2f((uint)(p)[2 * (i)] | (uint)(p)[2 * (i) + 1] << 8)

/* The effective scales of sub-block j (0-7) of the K-quant super-block at p, as clai_qk_sub takes them:
 * Q4_K: *d = d sc_j and *m = -(dmin m_j) (a value is then q *d + *m); Q6_K: *d and *m = d times the int8
 * scales of the sub-block's values 0-15 and 16-31 (scales 2j and 2j + 1). The products are exact in f32 (an
 * 11-bit significand times 6 or 8 bits), so the order of the factors does not matter. */
inline void clai_qk_scale(__global const uchar *p, const int j, const int fmt, float *d, float *m) {
  if (fmt == CLAI_Q4_K) {
    __global const uchar *s = p + 4;
    const uint sc = j < 4 ? s[j] & 63u : (s[j + 4] & 15u) | (uint)(s[j - 4] >> 6) << 4;
    const uint mn = j < 4 ? s[j + 4] & 63u : (uint)(s[j + 4] >> 4) | (uint)(s[j] >> 6) << 4;
    *d = CLAI_H2F_AT(p, 0) * (float)sc;
    *m = -(CLAI_H2F_AT(p, 1) * (float)mn);
  } else {
    __global const char *sc = (__global const char *)(p + 192);
    const float d6 = CLAI_H2F_AT(p, 104);
    *d = d6 * (float)sc[2 * j];
    *m = d6 * (float)sc[2 * j + 1];
  }
}

/* The eight sub-blocks' effective scales of the super-block at p together (clai_qk_scale's values, the
 * same products), for the decode kernels. */
inline void clai_qk_scales8(__global const uchar *p, const int fmt, float8 *d, float8 *m) {
  if (fmt == CLAI_Q4_K) {
    const uchar4 a = vload4(0, p + 4), b = vload4(0, p + 8), c = vload4(0, p + 12);
    const uchar8 sc = (uchar8)(a & (uchar4)63, (c & (uchar4)15) | (a >> (uchar4)6) << (uchar4)4);
    const uchar8 mn = (uchar8)(b & (uchar4)63, c >> (uchar4)4 | (b >> (uchar4)6) << (uchar4)4);
    *d = CLAI_H2F_AT(p, 0) * convert_float8(sc);
    *m = -(CLAI_H2F_AT(p, 1) * convert_float8(mn));
  } else {
    const float16 s = CLAI_H2F_AT(p, 104) * convert_float16(vload16(0, (__global const char *)(p + 192)));
    *d = s.even;
    *m = s.odd;
  }
}

/* The 32 values of sub-block j of the K-quant super-block at p, whose effective scales (clai_qk_scale) are d
 * and m, as two float16 (values 0-15, 16-31). */
inline void clai_qk_sub(__global const uchar *p, const int j, const int fmt, const float d, const float m,
                        float16 *lo, float16 *hi) {
  if (fmt == CLAI_Q4_K) { /* sub-blocks 2g and 2g + 1: the low and the high nibbles of bytes 32 g.. */
    __global const uchar *qs = p + 16 + 32 * (j >> 1);
    const uchar16 sh = (uchar16)(uchar)((j & 1) * 4);
    *lo = CLAI_FMA(convert_float16(vload16(0, qs) >> sh & (uchar16)15), (float16)d, (float16)m);
    *hi = CLAI_FMA(convert_float16(vload16(1, qs) >> sh & (uchar16)15), (float16)d, (float16)m);
  } else { /* sub-block j = 4 h + r: ql[64 h + 32 (r & 1)..] nibble r >> 1, qh[32 h..] bits 2r, 2r + 1 */
    const int h = j >> 2, r = j & 3;
    __global const uchar *ql = p + 64 * h + 32 * (r & 1), *qh = p + 128 + 32 * h;
    const uchar16 sl = (uchar16)(uchar)((r >> 1) * 4), shh = (uchar16)(uchar)(2 * r);
    const uchar16 q0 = (vload16(0, ql) >> sl & (uchar16)15) | (vload16(0, qh) >> shh & (uchar16)3) << (uchar16)4;
    const uchar16 q1 = (vload16(1, ql) >> sl & (uchar16)15) | (vload16(1, qh) >> shh & (uchar16)3) << (uchar16)4;
    *lo = (convert_float16(q0) - 32.0f) * d; /* q - 32 is exact, so one rounding, as for Q4_0 */
    *hi = (convert_float16(q1) - 32.0f) * m;
  }
}

/* The 32 values of block blk whose scale and minimum are d and m, as two float16 (values 0-15, 16-31); for a
 * K-quant, d and m are the sub-block's effective scales (clai_qk_scale). */
inline void clai_q_block_dm(__global const uchar *q, const long blk, const int fmt, const float d, const float m,
                            float16 *lo, float16 *hi) {
  if (fmt == CLAI_Q4_K || fmt == CLAI_Q6_K) {
    clai_qk_sub(q + (blk >> 3) * CLAI_QK_BYTES(fmt), (int)(blk & 7), fmt, d, m, lo, hi);
    return;
  }
  __global const uchar *p = q + blk * clai_qbytes(fmt);
  if (fmt == CLAI_Q8_0) {
    *lo = convert_float16(vload16(0, (__global const char *)(p + 2))) * d;
    *hi = convert_float16(vload16(1, (__global const char *)(p + 2))) * d;
  } else {
    const uchar16 b = vload16(0, p + (fmt == CLAI_Q4_0 ? 2 : 4));
    if (fmt == CLAI_Q4_0) { /* (q - 8) d, not q d - 8 d: an infinite scale gives infinities, not NaN */
      *lo = (convert_float16(b & (uchar16)15) - 8.0f) * d;
      *hi = (convert_float16(b >> (uchar16)4) - 8.0f) * d;
    } else {
      *lo = CLAI_FMA(convert_float16(b & (uchar16)15), (float16)d, (float16)m);
      *hi = CLAI_FMA(convert_float16(b >> (uchar16)4), (float16)d, (float16)m);
    }
  }
}

/* The 32 values of block blk: values 0-15 in *lo, 16-31 in *hi. */
inline void clai_q_block(__global const uchar *q, const long blk, const int fmt, float16 *lo, float16 *hi) {
  if (fmt == CLAI_Q4_K || fmt == CLAI_Q6_K) {
    __global const uchar *p = q + (blk >> 3) * CLAI_QK_BYTES(fmt);
    float d, m;
    clai_qk_scale(p, (int)(blk & 7), fmt, &d, &m);
    clai_qk_sub(p, (int)(blk & 7), fmt, d, m, lo, hi);
    return;
  }
  __global const uchar *p = q + blk * clai_qbytes(fmt);
  clai_q_block_dm(q, blk, fmt, CLAI_H2F_AT(p, 0), fmt == CLAI_Q4_1 ? CLAI_H2F_AT(p, 1) : 0.0f, lo, hi);
}

/* Value j (0-31) of block blk. */
inline float clai_q_value(__global const uchar *q, const long blk, const int j, const int fmt) {
  if (fmt == CLAI_Q4_K || fmt == CLAI_Q6_K) { /* as clai_qk_sub computes it */
    __global const uchar *k = q + (blk >> 3) * CLAI_QK_BYTES(fmt);
    const int sb = (int)(blk & 7);
    float d, m;
    clai_qk_scale(k, sb, fmt, &d, &m);
    if (fmt == CLAI_Q4_K) {
      const uchar b = k[16 + 32 * (sb >> 1) + j];
      return CLAI_FMA((float)(sb & 1 ? b >> 4 : b & 15), d, m);
    }
    const int h = sb >> 2, r = sb & 3;
    const uint lo4 = (uint)(k[64 * h + 32 * (r & 1) + j] >> 4 * (r >> 1)) & 15u;
    const uint hi2 = (uint)(k[128 + 32 * h + j] >> 2 * r) & 3u;
    return ((float)(lo4 | hi2 << 4) - 32.0f) * (j < 16 ? d : m);
  }
  __global const uchar *p = q + blk * clai_qbytes(fmt);
  const float d = CLAI_H2F_AT(p, 0);
  if (fmt == CLAI_Q8_0) return (float)((__global const char *)p)[2 + j] * d;
  const uchar b = p[(fmt == CLAI_Q4_0 ? 2 : 4) + (j & 15)];
  const float v = (float)(j < 16 ? b & 15 : b >> 4);
  if (fmt == CLAI_Q4_0) return (v - 8.0f) * d;
  return v * d + CLAI_H2F_AT(p, 1);
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
  if (os == 1) { /* dense rows: two 16-wide stores */
    if (out_half) {
      vstore_half16(lo, 0, (__global half *)out + oo);
      vstore_half16(hi, 0, (__global half *)out + oo + 16);
    } else {
      vstore16(lo, 0, (__global float *)out + oo);
      vstore16(hi, 0, (__global float *)out + oo + 16);
    }
    return;
  }
  float v[32];
  vstore16(lo, 0, v);
  vstore16(hi, 1, v);
  for (int j = 0; j < 32; j++) {
    if (out_half)
      vstore_half(v[j], oo + j * os, (__global half *)out);
    else
      ((__global float *)out)[oo + j * os] = v[j];
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
/* The epilogue comes as three ints, not clai_store_tile's packed flags: Oclgrind 21.10 decoded the packed form
 * wrongly in these kernels (an f16 C took the bias path and read its own buffer as the bias: infinities). */
inline void clai_q_store(__global float *c, const long o, const float acc, const float alpha, const float beta,
                         __global const float *bias, const long bo, const int bk, const int chalf, const int act) {
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
inline float16 clai_qx_strided_f32(__global const float *x, const long o, const long s) {
  float t[16];
  for (int j = 0; j < 16; j++) t[j] = x[o + j * s];
  return vload16(0, t);
}

#define CLAI_QMATMUL(SFX, XT, XLOAD)                                                                            \
  __kernel void clai_qmatmul_##SFX(__global float *c, __global const XT *x, __global const uchar *w,            \
                                   CLAI_INDEX_ARGS(ix), const int M, const int N, const int K, const long sxm,  \
                                   const long sxk, const long swn, const long scm, const long scn,              \
                                   const float alpha, const float beta, __global const float *bias,             \
                                   const long boff, const long bsm, const long bsn, const int bk, const int chalf, \
                                   const int act, const int fmt) {                                                             \
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
                     boff + (long)(m0 + r) * bsm + (long)n * bsn, bk, chalf, act);                                       \
    }                                                                                                           \
  }
CLAI_QMATMUL(f32, float, CLAI_QX_F32)

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

/* The scales d (and Q4_1's minimums m; 0 otherwise) of the 8 blocks from block blk on, converted together:
 * a block's two scalar conversions were most of the decode loop's instructions on a CPU. Every format's
 * block size is even, so the halves are 2-byte aligned. (The vectors are built from the loads directly: going
 * through a private array made POCL store 4 bytes and load 8, which stalls store forwarding.) */
#define CLAI_Q_HALF(p, bytes, j, i) ((uint)((__global const ushort *)((p) + (j) * (bytes)))[i])
#define CLAI_Q_HALVES8(p, bytes, i)                                                                             \
  (uint8)(CLAI_Q_HALF(p, bytes, 0, i), CLAI_Q_HALF(p, bytes, 1, i), CLAI_Q_HALF(p, bytes, 2, i),                \
          CLAI_Q_HALF(p, bytes, 3, i), CLAI_Q_HALF(p, bytes, 4, i), CLAI_Q_HALF(p, bytes, 5, i),                \
          CLAI_Q_HALF(p, bytes, 6, i), CLAI_Q_HALF(p, bytes, 7, i))
inline void clai_q_scales8(__global const uchar *q, const long blk, const int fmt, float8 *d, float8 *m) {
  const long bytes = clai_qbytes(fmt);
  __global const uchar *p = q + blk * bytes;
  *d = clai_h2f8(CLAI_Q_HALVES8(p, bytes, 0));
  *m = fmt == CLAI_Q4_1 ? clai_h2f8(CLAI_Q_HALVES8(p, bytes, 1)) : (float8)0.0f;
}

/* The decode step's product, specialised: M <= QROWS rows of A whose K stride is 1, the format fixed at
 * compile time (one kernel per format). Work-item (n, b) walks row n of W once, 8 blocks at a time: their
 * scales are converted together (clai_q_scales8), then per block the quants become floats, are scaled (and
 * shifted by the minimum, for Q4_1) and multiply A's values in 16 lanes, the low and the high half of a
 * block in two accumulators so that consecutive FMAs do not wait on each other. The format is a literal,
 * so the branches on it fold away; the general kernel's branches on the format, the strides and M cost it
 * half its speed on POCL.
 * clai_qgemv_<fmt> reads an f32 A from global memory; clai_qgemv8_<fmt> takes Q8_0 activations (llama.cpp's
 * scheme), which each work-group dequantizes - exactly, a quant times a half - into local memory first (all
 * of it: one barrier; a loop over chunks kept the accumulators in memory across its barriers on POCL, 1.7x
 * slower), so that one launch replaces a dequantizing copy and the product (A's offsets
 * and row stride are in elements, at block starts; the local size along the batch is 1, so every work-item
 * of a group has the same b and reaches the same barriers). Both give the same sums in the same order for
 * the same A values. */
#define QSTAGE 4096 /* floats of local memory (16 KiB) for A's rows: the host sends M * K > QSTAGE elsewhere */

/* Block BLK of W (scale D, minimum MN) times the M rows of A at x0..x3 + K0. */
#define CLAI_QGEMV_ROWS(FMT, BLK, D, MN, K0)                                                                     \
  {                                                                                                             \
    float16 wl, wh;                                                                                             \
    clai_q_block_dm(w, (BLK), FMT, (D), (MN), &wl, &wh);                                                        \
    a0 = CLAI_FMA(vload16(0, x0 + (K0)), wl, a0);                                                               \
    b0 = CLAI_FMA(vload16(0, x0 + (K0) + 16), wh, b0);                                                          \
    if (M > 1) {                                                                                                \
      a1 = CLAI_FMA(vload16(0, x1 + (K0)), wl, a1);                                                             \
      b1 = CLAI_FMA(vload16(0, x1 + (K0) + 16), wh, b1);                                                        \
    }                                                                                                           \
    if (M > 2) {                                                                                                \
      a2 = CLAI_FMA(vload16(0, x2 + (K0)), wl, a2);                                                             \
      b2 = CLAI_FMA(vload16(0, x2 + (K0) + 16), wh, b2);                                                        \
    }                                                                                                           \
    if (M > 3) {                                                                                                \
      a3 = CLAI_FMA(vload16(0, x3 + (K0)), wl, a3);                                                             \
      b3 = CLAI_FMA(vload16(0, x3 + (K0) + 16), wh, b3);                                                        \
    }                                                                                                           \
  }

/* Blocks KB0 <= kb < KB1 of row wrow of W against A, whose values for block kb are at x0..x3 + kb * 32 - XO. */
#define CLAI_QGEMV_SPAN(FMT, KB0, KB1, XO)                                                                       \
  {                                                                                                             \
    int kb = (KB0);                                                                                             \
    for (; kb + 8 <= (KB1); kb += 8) {                                                                          \
      float8 d8, m8;                                                                                            \
      clai_q_scales8(w, wrow + kb, FMT, &d8, &m8);                                                              \
      const float d[8] = {d8.s0, d8.s1, d8.s2, d8.s3, d8.s4, d8.s5, d8.s6, d8.s7};                              \
      const float mn[8] = {m8.s0, m8.s1, m8.s2, m8.s3, m8.s4, m8.s5, m8.s6, m8.s7};                             \
      if (M == 1) { /* the decode step: without the other rows' branches */                                     \
        _Pragma("unroll") for (int j = 0; j < 8; j++) {                                                         \
          float16 wl, wh;                                                                                       \
          clai_q_block_dm(w, wrow + kb + j, FMT, d[j], mn[j], &wl, &wh);                                        \
          a0 = CLAI_FMA(vload16(0, x0 + (kb + j) * 32 - (XO)), wl, a0);                                         \
          b0 = CLAI_FMA(vload16(0, x0 + (kb + j) * 32 - (XO) + 16), wh, b0);                                    \
        }                                                                                                       \
      } else {                                                                                                  \
        for (int j = 0; j < 8; j++) CLAI_QGEMV_ROWS(FMT, wrow + kb + j, d[j], mn[j], (kb + j) * 32 - (XO))      \
      }                                                                                                         \
    }                                                                                                           \
    for (; kb < (KB1); kb++) {                                                                                  \
      __global const uchar *p = w + (wrow + kb) * clai_qbytes(FMT);                                             \
      CLAI_QGEMV_ROWS(FMT, wrow + kb, CLAI_H2F_AT(p, 0), FMT == CLAI_Q4_1 ? CLAI_H2F_AT(p, 1) : 0.0f,            \
                      kb * 32 - (XO))                                                                           \
    }                                                                                                           \
  }

/* The K-quants' walk: super-blocks 0 <= sb < NB / 8 of row wrow (in blocks, a multiple of 8) against A at
 * x0..x3 + (8 sb + j) * 32 for sub-block j. A super-block's eight pairs of effective scales are converted
 * together, then each sub-block goes as a block of the formats above. */
#define CLAI_QKGEMV_SPAN(FMT, NB)                                                                              \
  for (int sb = 0; sb < (NB) / 8; sb++) {                                                                       \
    __global const uchar *sp = w + (wrow / 8 + sb) * CLAI_QK_BYTES(FMT);                                        \
    float8 d8, m8;                                                                                              \
    clai_qk_scales8(sp, FMT, &d8, &m8);                                                                         \
    const float d[8] = {d8.s0, d8.s1, d8.s2, d8.s3, d8.s4, d8.s5, d8.s6, d8.s7};                                \
    const float mn[8] = {m8.s0, m8.s1, m8.s2, m8.s3, m8.s4, m8.s5, m8.s6, m8.s7};                               \
    if (M == 1) {                                                                                               \
      _Pragma("unroll") for (int j = 0; j < 8; j++) {                                                           \
        float16 wl, wh;                                                                                         \
        clai_qk_sub(sp, j, FMT, d[j], mn[j], &wl, &wh);                                                         \
        a0 = CLAI_FMA(vload16(0, x0 + (sb * 8 + j) * 32), wl, a0);                                              \
        b0 = CLAI_FMA(vload16(0, x0 + (sb * 8 + j) * 32 + 16), wh, b0);                                         \
      }                                                                                                         \
    } else {                                                                                                    \
      for (int j = 0; j < 8; j++) CLAI_QGEMV_ROWS(FMT, wrow + sb * 8 + j, d[j], mn[j], (sb * 8 + j) * 32)       \
    }                                                                                                           \
  }

/* The 32-value formats' walk over a row's NB blocks. */
#define CLAI_QGEMV_WALK(FMT, NB) CLAI_QGEMV_SPAN(FMT, 0, NB, 0)

/* The M sums through the epilogue. */
#define CLAI_QGEMV_STORE                                                                                        \
  {                                                                                                             \
    const float acc[QROWS] = {clai_hsum16(a0 + b0), clai_hsum16(a1 + b1), clai_hsum16(a2 + b2),                 \
                              clai_hsum16(a3 + b3)};                                                            \
    for (int r = 0; r < M && r < QROWS; r++)                                                                    \
      clai_q_store(c, oc + (long)r * scm + (long)n * scn, acc[r], alpha, beta, bias,                            \
                   boff + (long)r * bsm + (long)n * bsn, bk, chalf, act);                                       \
  }

#define CLAI_QGEMV_ARGS(XT)                                                                                     \
  __global float *c, __global const XT *x, __global const uchar *w, CLAI_INDEX_ARGS(ix), const int M,          \
      const int N, const int K, const long sxm, const long swn, const long scm, const long scn,                 \
      const float alpha, const float beta, __global const float *bias, const long boff, const long bsm,         \
      const long bsn, const int bk, const int chalf, const int act

/* The product from activations staged in local memory xs (clai_qgemv8, clai_qgemvp), after the barrier. */
#define CLAI_QGEMV_LOCAL(FMT, WALK)                                                                             \
  if (!live || n >= N) return;                                                                                  \
  const long wrow = (ow + (long)n * swn) / 32;                                                                  \
  __local const float *x0 = xs, *x1 = xs + (M > 1 ? K : 0), *x2 = xs + (M > 2 ? 2 * K : 0),                    \
                      *x3 = xs + (M > 3 ? 3 * K : 0);                                                           \
  float16 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;               \
  WALK(FMT, nb)                                                                                                 \
  CLAI_QGEMV_STORE

#define CLAI_QGEMV(SFX, FMT, WALK)                                                                              \
  __kernel void clai_qgemv_##SFX(CLAI_QGEMV_ARGS(float)) {                                                      \
    const int n = (int)get_global_id(0);                                                                        \
    const long b = (long)get_global_id(1);                                                                      \
    if (n >= N || b >= CLAI_IX_NUMEL(ix)) return;                                                               \
    long oc, ox, ow;                                                                                            \
    CLAI_OFFSETS(ix, b, &oc, &ox, &ow);                                                                         \
    const long wrow = (ow + (long)n * swn) / 32; /* the row's first block */                                    \
    __global const float *x0 = x + ox, *x1 = x0 + (M > 1 ? sxm : 0), *x2 = x0 + (M > 2 ? 2 * sxm : 0),         \
                         *x3 = x0 + (M > 3 ? 3 * sxm : 0);                                                      \
    float16 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;             \
    WALK(FMT, K / 32)                                                                                           \
    CLAI_QGEMV_STORE                                                                                            \
  }                                                                                                             \
  __kernel void clai_qgemv8_##SFX(CLAI_QGEMV_ARGS(uchar)) {                                                     \
    __local float xs[QSTAGE];                                                                                   \
    const int n = (int)get_global_id(0);                                                                        \
    const long b = (long)get_global_id(1);                                                                      \
    const int live = b < CLAI_IX_NUMEL(ix);                                                                     \
    long oc = 0, ox = 0, ow = 0;                                                                                \
    if (live) CLAI_OFFSETS(ix, b, &oc, &ox, &ow);                                                               \
    const int nb = K / 32, rows = M < QROWS ? M : QROWS;                                                        \
    for (int t = (int)get_local_id(0); live && t < rows * nb; t += (int)get_local_size(0)) {                   \
      const int r = t / nb, j = t - r * nb;                                                                     \
      float16 lo, hi;                                                                                           \
      clai_q_block(x, (ox + r * sxm) / 32 + j, CLAI_Q8_0, &lo, &hi);                                            \
      vstore16(lo, 0, xs + r * K + j * 32);                                                                     \
      vstore16(hi, 0, xs + r * K + j * 32 + 16);                                                                \
    }                                                                                                           \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                               \
    CLAI_QGEMV_LOCAL(FMT, WALK)                                                                                 \
  }
CLAI_QGEMV(q8_0, CLAI_Q8_0, CLAI_QGEMV_WALK)
CLAI_QGEMV(q4_0, CLAI_Q4_0, CLAI_QGEMV_WALK)
CLAI_QGEMV(q4_1, CLAI_Q4_1, CLAI_QGEMV_WALK)
CLAI_QGEMV(q4_k, CLAI_Q4_K, CLAI_QKGEMV_SPAN)
CLAI_QGEMV(q6_k, CLAI_Q6_K, CLAI_QKGEMV_SPAN)

/* The Q8_K rounding of 16 values of a block whose scale is sc (d = clai_q8k_d(sc), 1 / sc): q = rint(x sc),
 * at most 127, times d. A NaN stays NaN (the comparison is false for it, where fmin would have made it 127).
 * d = 0 (the block's largest magnitude below 127 / FLT_MAX, so that sc overflowed) gives zeros, as
 * llama.cpp's scale of 1 / -inf = -0 does, where x sc would be infinite or NaN. */
inline float clai_q8k_d(const float sc) { return isinf(sc) ? 0.0f : 1.0f / sc; }
inline float16 clai_q8k16(const float16 x, const float sc, const float d) {
  if (d == 0.0f) return select(0.0f, x, isnan(x));
  const float16 q = rint(x * sc);
  return select(q, (float16)127.0f, q > 127.0f) * d;
}

/* x' = x rounded as llama.cpp's Q8_K rounds the activations of its K-quant products (clai_rounding in clai.h),
 * in place: one block of 256 values per work-item, x dense f32 from element off. s = -127 / m with m the
 * first value of largest magnitude, q = rint(x s) (at most 127), x' = q (1 / s); a block without a nonzero
 * value is left as it is. */
__kernel void clai_round_q8k(__global float *x, const long off, const long nblocks) {
  const long i = get_global_id(0);
  if (i >= nblocks) return;
  __global float *p = x + off + i * 256;
  float amax = 0.0f, m = 0.0f;
  for (int j = 0; j < 256; j++)
    if (fabs(p[j]) > amax) amax = fabs(p[j]), m = p[j];
  if (amax == 0.0f) return;
  const float sc = -127.0f / m, d = clai_q8k_d(sc);
  for (int j = 0; j < 256; j += 16) vstore16(clai_q8k16(vload16(0, p + j), sc, d), 0, p + j);
}

/* clai_qgemvp_<fmt>: the decode product of clai_qgemv8 with an f32 A that the work-group transforms in local
 * memory first - the prologue of clai_matmul_pro, the ops a language model runs between two products, so
 * that they cost no launch of their own. pf bits, applied in this order: 1 GLU (x's row holds 2K values:
 * value k is act(x[k]) * x[K + k], act SiLU (glu_op 7) or GELU (6) in clai_unary_f's formulas), 2 RMS
 * normalisation (value * rstd * g[k], rstd = 1 / sqrt(sum of squares / K + eps), as clai_rmsnorm; the sum is
 * taken per block of 32 and then over the blocks in order, the same in every work-item), 4 rounding to Q8_0
 * blocks (d = max|v| / 127 rounded to half, q = round(v / d): the bits clai_copy into Q8_0 gives, dequantized
 * as clai_qgemv8 dequantizes), 8 rounding to Q8_K blocks of 256 (as clai_round_q8k). Every work-group repeats
 * the prologue for its own columns, so it is written in 16-wide vectors, a block (two of them) per work-item
 * and step: phase 1 computes the values and the blocks' sums of squares, phase 2 normalises and rounds each
 * block in place (for Q8_K it finds the block's largest magnitude), phase 3 rounds to Q8_K. A's K stride is
 * 1; M * K <= QSTAGE. */
inline float16 clai_glu16(const int op, const float16 a, const float16 u) {
  if (op == 6) return a / (1.0f + exp(-1.5957691216057308f * (a + 0.044715f * a * a * a))) * u;
  return a / (1.0f + exp(-a)) * u;
}
inline float clai_amax16(const float16 v) {
  const float16 a = fabs(v);
  const float8 b = fmax(a.lo, a.hi);
  const float4 c = fmax(b.lo, b.hi);
  const float2 d = fmax(c.lo, c.hi);
  return fmax(d.lo, d.hi);
}
inline float16 clai_round_q8(const float16 v, const float id, const float dq) {
  return convert_float16(convert_char16_sat(round(v * id))) * dq;
}
#define CLAI_QGEMVP(SFX, FMT, WALK)                                                                             \
  __kernel void clai_qgemvp_##SFX(CLAI_QGEMV_ARGS(float), __global const uchar *g, const long goff,            \
                                  const long gs, const int ghalf, const float eps, const int pf,               \
                                  const int glu_op) {                                                          \
    __local float xs[QSTAGE];                                                                                   \
    __local float ssq[QSTAGE / 32], lam[QSTAGE / 32], lmv[QSTAGE / 32];                                       \
    const int n = (int)get_global_id(0);                                                                        \
    const long b = (long)get_global_id(1);                                                                      \
    const int live = b < CLAI_IX_NUMEL(ix);                                                                     \
    long oc = 0, ox = 0, ow = 0;                                                                                \
    if (live) CLAI_OFFSETS(ix, b, &oc, &ox, &ow);                                                               \
    const int nb = K / 32, rows = M < QROWS ? M : QROWS, L = (int)get_local_size(0);                           \
    for (int t = (int)get_local_id(0); live && t < rows * nb; t += L) {                                        \
      const int r = t / nb, j = t - r * nb;                                                                     \
      __global const float *xr = x + ox + r * sxm + j * 32;                                                     \
      float16 lo = vload16(0, xr), hi = vload16(1, xr);                                                         \
      if (pf & 1) {                                                                                             \
        lo = clai_glu16(glu_op, lo, vload16(0, xr + K));                                                        \
        hi = clai_glu16(glu_op, hi, vload16(1, xr + K));                                                        \
      }                                                                                                         \
      vstore16(lo, 0, xs + r * K + j * 32);                                                                     \
      vstore16(hi, 1, xs + r * K + j * 32);                                                                     \
      ssq[t] = clai_hsum16(CLAI_FMA(hi, hi, lo * lo));                                                          \
    }                                                                                                           \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                               \
    for (int t = (int)get_local_id(0); live && (pf & 14) && t < rows * nb; t += L) {                          \
      const int r = t / nb, j = t - r * nb;                                                                     \
      __local float *v = xs + r * K + j * 32;                                                                   \
      float16 lo = vload16(0, v), hi = vload16(1, v);                                                           \
      if (pf & 2) {                                                                                             \
        float s = 0.0f;                                                                                         \
        for (int q = 0; q < nb; q++) s += ssq[r * nb + q];                                                      \
        const float rstd = 1.0f / sqrt(s / (float)K + eps);                                                     \
        float16 glo, ghi;                                                                                       \
        const long g0 = goff + (long)j * 32 * gs;                                                               \
        if (gs == 1 && !ghalf) {                                                                                \
          glo = vload16(0, (__global const float *)g + g0), ghi = vload16(1, (__global const float *)g + g0);   \
        } else {                                                                                                \
          float gv[32];                                                                                         \
          for (int i = 0; i < 32; i++)                                                                          \
            gv[i] = ghalf ? vload_half(g0 + i * gs, (__global const half *)g) : ((__global const float *)g)[g0 + i * gs]; \
          glo = vload16(0, gv), ghi = vload16(1, gv);                                                           \
        }                                                                                                       \
        lo = lo * rstd * glo;                                                                                   \
        hi = hi * rstd * ghi;                                                                                   \
      }                                                                                                         \
      if (pf & 4) {                                                                                             \
        const float d = fmax(clai_amax16(lo), clai_amax16(hi)) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;      \
        ushort dbits; /* d rounded to half as vstore_half rounds it (clai_f2h is wrong on Oclgrind) */          \
        vstore_half(d, 0, (__private half *)&dbits);                                                            \
        const float dq = vload_half(0, (__private const half *)&dbits);                                        \
        lo = clai_round_q8(lo, id, dq);                                                                         \
        hi = clai_round_q8(hi, id, dq);                                                                         \
      }                                                                                                         \
      vstore16(lo, 0, v);                                                                                       \
      vstore16(hi, 1, v);                                                                                       \
      if (pf & 8) { /* Q8_K: the block's largest magnitude and the first value that has it */                 \
        const float a = fmax(clai_amax16(lo), clai_amax16(hi));                                                 \
        float m = 0.0f;                                                                                         \
        for (int i = 31; i >= 0; i--) m = fabs(v[i]) == a ? v[i] : m;                                           \
        lam[t] = a, lmv[t] = m;                                                                                 \
      }                                                                                                         \
    }                                                                                                           \
    if (pf & 8) { /* Q8_K over the 256 values of 8 blocks: phase 3, after their maxima */                      \
      barrier(CLK_LOCAL_MEM_FENCE);                                                                             \
      for (int t = (int)get_local_id(0); live && t < rows * nb; t += L) {                                      \
        const int r = t / nb, j = t - r * nb, t0 = r * nb + (j & ~7);                                           \
        float amax = 0.0f, m = 0.0f;                                                                            \
        for (int q = 0; q < 8; q++)                                                                             \
          if (lam[t0 + q] > amax) amax = lam[t0 + q], m = lmv[t0 + q];                                          \
        if (amax == 0.0f) continue;                                                                             \
        const float sc = -127.0f / m, d = clai_q8k_d(sc);                                                       \
        __local float *v = xs + r * K + j * 32;                                                                 \
        vstore16(clai_q8k16(vload16(0, v), sc, d), 0, v);                                                       \
        vstore16(clai_q8k16(vload16(1, v), sc, d), 1, v);                                                       \
      }                                                                                                         \
    }                                                                                                           \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                               \
    CLAI_QGEMV_LOCAL(FMT, WALK)                                                                                 \
  }
CLAI_QGEMVP(q8_0, CLAI_Q8_0, CLAI_QGEMV_WALK)
CLAI_QGEMVP(q4_0, CLAI_Q4_0, CLAI_QGEMV_WALK)
CLAI_QGEMVP(q4_1, CLAI_Q4_1, CLAI_QGEMV_WALK)
CLAI_QGEMVP(q4_k, CLAI_Q4_K, CLAI_QKGEMV_SPAN)
CLAI_QGEMVP(q6_k, CLAI_Q6_K, CLAI_QKGEMV_SPAN)
