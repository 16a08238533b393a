/* attention.cl - fused scaled dot-product attention with an online softmax, and rotary position embedding.
 *
 * Attention. q [B, H, Lq, D], k [B, Hk, Lk, D], v [B, Hk, Lk, Dv], out [B, H, Lq, Dv], lse [B, H, Lq], each
 * as (offset, batch stride, head stride, row stride, column stride) in elements, so any strided view works.
 * Work mapping: 1-D; one work-group per (b, h, block of queries); each work-item owns ATT_RQ consecutive
 * query rows (4 on CPUs, 1 elsewhere), so a block is ATT_RQ times the local size (any local size works;
 * lib/op-attention.c sizes the grid with the same numbers). The work-group walks the keys in blocks of
 * ATT_BK = 16: it stages K (transposed, [d][j]) and V ([j][d]) of the block in local memory as f32, then
 * each work-item computes its ATT_RQ x 16 tile of scores with float16 multiply-adds (one vector load of 16
 * keys serves all its rows, like a GEMM register tile), folds them into a running softmax per row (max m,
 * sum l, accumulator acc of Dv values rescaled by exp(m_old - m_new) when the max grows) and adds p V along
 * Dv in chunks of 16. Only one block of scores per query exists at a time; nothing of size Lq x Lk is ever
 * stored. q is pre-multiplied by scale * log2(e) so the exponentials are exp2. A causal work-group stops at
 * the last key its last query sees, and a work-item skips blocks past its own last visible key.
 *
 * Two variants, DMAX = 64 and 256 (the host picks the smaller that holds max(D, Dv)), size the private
 * rows and the local blocks (2 x 16 x DMAX floats: 32 KiB at 256); the loops run to D and Dv, so the
 * larger variant costs nothing on CPUs, and the smaller keeps GPU registers for the common head dims. The
 * loops over a work-item's rows are unrolled: left rolled, POCL kept the accumulators in memory (2x slower).
 * dtype codes: 0 f32, 1 f16 (enum clai_dtype). */

inline float clai_att_ld(__global const uchar *p, const long i, const int dt) {
  return dt == 0 ? ((__global const float *)p)[i] : vload_half(i, (__global const half *)p);
}

inline void clai_att_st(__global uchar *p, const long i, const int dt, const float v) {
  if (dt == 0)
    ((__global float *)p)[i] = v;
  else
    vstore_half(v, i, (__global half *)p);
}

inline float clai_hmax16(const float16 v) {
  const float8 a = fmax(v.lo, v.hi);
  const float4 b = fmax(a.lo, a.hi);
  return fmax(fmax(b.x, b.y), fmax(b.z, b.w));
}

inline float clai_hsum16(const float16 v) {
  const float8 a = v.lo + v.hi;
  const float4 b = a.lo + a.hi;
  return (b.x + b.y) + (b.z + b.w);
}

/* Rows per work-item (-DATT_RQ from the host, clai__attention_rq in lib/op-attention.c, which sizes the grid
 * with the same number): a CPU work-item keeps a register tile of 4 rows x 16 keys (GEMM-like: one vector
 * load of 16 keys serves 4 rows); a GPU work-item keeps one row. */
#ifndef ATT_RQ
#error "cl/attention.cl needs -DATT_RQ (lib/program.c passes it)"
#endif
#define ATT_BK 16

/* Stages keys kb .. kb + ATT_BK - 1 of one (batch, head): K transposed into Kt[d][j] (row length ATT_BK), V
 * into Vs[j][d] (row length dmax). Keys past Lk and V columns past Dv up to a multiple of 16 are zero (they
 * meet a zero weight or are not stored, and a zero keeps NaN out); Kt columns past D are never read. On CPUs
 * a work-item copies whole key rows (contiguous loads, no index arithmetic per element); elsewhere the
 * work-items of the group take consecutive elements. */
inline void clai_att_stage(__local float *Kt, __local float *Vs, const int dmax, __global const uchar *k,
                           __global const uchar *v, const long kbase, const long vbase, const long k_sl,
                           const long k_sd, const long v_sl, const long v_sd, const int kb, const int Lk,
                           const int D, const int Dv, const int in_dt, const int lid, const int lsz) {
  const int dvp = (Dv + 15) / 16 * 16;
#if CLAI_CPU
  for (int j = lid; j < ATT_BK; j += lsz) {
    const int jg = kb + j;
    __local float *kt = Kt + j, *vs = Vs + j * dmax;
    if (jg >= Lk) {
      for (int d = 0; d < D; d++) kt[d * ATT_BK] = 0.0f;
      for (int d = 0; d < dvp; d++) vs[d] = 0.0f;
      continue;
    }
    const long ko = kbase + jg * k_sl, vo = vbase + jg * v_sl;
    if (in_dt == 0) {
      __global const float *kp = (__global const float *)k + ko, *vp = (__global const float *)v + vo;
      for (int d = 0; d < D; d++) kt[d * ATT_BK] = kp[d * k_sd];
      for (int d = 0; d < Dv; d++) vs[d] = vp[d * v_sd];
    } else {
      __global const half *kp = (__global const half *)k + ko, *vp = (__global const half *)v + vo;
      for (int d = 0; d < D; d++) kt[d * ATT_BK] = vload_half(d * k_sd, kp);
      for (int d = 0; d < Dv; d++) vs[d] = vload_half(d * v_sd, vp);
    }
    for (int d = Dv; d < dvp; d++) vs[d] = 0.0f;
  }
#else
  for (int e = lid; e < ATT_BK * dmax; e += lsz) {
    const int j = e / dmax, d = e % dmax, jg = kb + j;
    if (d < D) Kt[d * ATT_BK + j] = jg < Lk ? clai_att_ld(k, kbase + jg * k_sl + d * k_sd, in_dt) : 0.0f;
    if (d < dvp) Vs[e] = jg < Lk && d < Dv ? clai_att_ld(v, vbase + jg * v_sl + d * v_sd, in_dt) : 0.0f;
  }
#endif
}

#define CLAI_ATTENTION(DMAX)                                                                                   \
  __kernel void clai_attention_d##DMAX(                                                                        \
      __global uchar *out, __global float *lse, __global const uchar *q, __global const uchar *k,              \
      __global const uchar *v, const int H, const int Hk, const int Lq, const int Lk, const int D, const int Dv, \
      const long q_off, const long q_sb, const long q_sh, const long q_sl, const long q_sd, const long k_off,  \
      const long k_sb, const long k_sh, const long k_sl, const long k_sd, const long v_off, const long v_sb,   \
      const long v_sh, const long v_sl, const long v_sd, const long o_off, const long o_sb, const long o_sh,   \
      const long o_sl, const long o_sd, const long l_off, const long l_sb, const long l_sh, const long l_sl,   \
      const float qscale, const int causal, const int in_dt, const int out_dt, const int has_lse) {           \
    __local float Kt[DMAX * ATT_BK], Vs[ATT_BK * DMAX]; /* K transposed [d][j], V [j][d], zero-padded */      \
    if (Lq <= 0 || H <= 0 || Hk <= 0) return;            /* uniform: the warm-up and empty problems */        \
    const int lsz = (int)get_local_size(0), lid = (int)get_local_id(0), bq = lsz * ATT_RQ;                     \
    const int nqb = (Lq + bq - 1) / bq;                                                                        \
    const long grp = get_group_id(0);                                                                          \
    const int qb = (int)(grp % nqb);                                                                           \
    const long bh = grp / nqb;                                                                                 \
    const long h = bh % H, b = bh / H, hk = h / (H / Hk);                                                      \
    const int q0 = qb * bq + lid * ATT_RQ;                                                                     \
    const int shift = Lk - Lq; /* causal: query i sees keys j <= i + shift */                                  \
    const int kstop = causal ? clamp(min(Lq, (qb + 1) * bq) + shift, 0, Lk) : Lk;                              \
    const int ncv = (Dv + 15) / 16;                                                                            \
    float qr[ATT_RQ * DMAX];                                                                                    \
    float16 acc[ATT_RQ * (DMAX / 16)];                                                                            \
    float m[ATT_RQ], l[ATT_RQ];                                                                                \
    int kend[ATT_RQ];                                                                                          \
    int kmax = 0;                                                                                              \
    _Pragma("unroll") for (int r = 0; r < ATT_RQ; r++) {                                                                         \
      const int qi = q0 + r;                                                                                   \
      kend[r] = qi >= Lq ? 0 : causal ? clamp(qi + shift + 1, 0, Lk) : Lk;                                     \
      kmax = max(kmax, kend[r]);                                                                               \
      const long qbase = q_off + b * q_sb + h * q_sh + (long)qi * q_sl;                                        \
      for (int d = 0; d < D; d++) qr[r * DMAX + d] = qi < Lq ? clai_att_ld(q, qbase + d * q_sd, in_dt) * qscale : 0.0f; \
      for (int c = 0; c < ncv; c++) acc[r * (DMAX / 16) + c] = (float16)(0.0f);                                               \
      m[r] = -INFINITY;                                                                                        \
      l[r] = 0.0f;                                                                                             \
    }                                                                                                          \
    const long kbase = k_off + b * k_sb + hk * k_sh, vbase = v_off + b * v_sb + hk * v_sh;                     \
    const int16 iota = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);                          \
    for (int kb = 0; kb < kstop; kb += ATT_BK) {                                                               \
      barrier(CLK_LOCAL_MEM_FENCE); /* the previous block is no longer read */                                \
      clai_att_stage(Kt, Vs, DMAX, k, v, kbase, vbase, k_sl, k_sd, v_sl, v_sd, kb, Lk, D, Dv, in_dt, lid, lsz);   \
      barrier(CLK_LOCAL_MEM_FENCE);                                                                            \
      if (kb < kmax) {                                                                                         \
        float16 s[ATT_RQ];                                                                                     \
        _Pragma("unroll") for (int r = 0; r < ATT_RQ; r++) s[r] = (float16)(0.0f);                                               \
        for (int d = 0; d < D; d++) {                                                                          \
          const float16 kv = vload16(0, Kt + d * ATT_BK);                                                      \
          _Pragma("unroll") for (int r = 0; r < ATT_RQ; r++) s[r] = CLAI_FMA((float16)(qr[r * DMAX + d]), kv, s[r]);                          \
        }                                                                                                      \
        float p[ATT_RQ * ATT_BK], corr[ATT_RQ];                                                                 \
        _Pragma("unroll") for (int r = 0; r < ATT_RQ; r++) {                                                                     \
          const float16 sm = select((float16)(-INFINITY), s[r], (kb + iota) < (int16)(kend[r]));              \
          const float mb = fmax(m[r], clai_hmax16(sm));                                                        \
          float16 pv = (float16)(0.0f);                                                                        \
          corr[r] = 1.0f;                                                                                      \
          if (mb > -INFINITY) { /* the row has seen a key */                                                   \
            corr[r] = exp2(m[r] - mb);                                                                         \
            pv = exp2(sm - mb);                                                                                \
            l[r] = l[r] * corr[r] + clai_hsum16(pv);                                                           \
            m[r] = mb;                                                                                         \
          }                                                                                                    \
          vstore16(pv, r, p);                                                                               \
        }                                                                                                      \
        for (int c = 0; c < ncv; c++) {                                                                        \
          float16 a[ATT_RQ];                                                                                   \
          _Pragma("unroll") for (int r = 0; r < ATT_RQ; r++) a[r] = acc[r * (DMAX / 16) + c] * corr[r];                                         \
          for (int j = 0; j < ATT_BK; j++) {                                                                   \
            const float16 vv = vload16(c, Vs + j * DMAX);                                                      \
            _Pragma("unroll") for (int r = 0; r < ATT_RQ; r++) a[r] = CLAI_FMA((float16)(p[r * ATT_BK + j]), vv, a[r]);                         \
          }                                                                                                    \
          _Pragma("unroll") for (int r = 0; r < ATT_RQ; r++) acc[r * (DMAX / 16) + c] = a[r];                                                   \
        }                                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
    const int nrows = clamp(Lq - q0, 0, ATT_RQ);                                                               \
    for (int r = 0; r < nrows; r++) {                                                                          \
      const int qi = q0 + r;                                                                                   \
      const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;                                                      \
      const long obase = o_off + b * o_sb + h * o_sh + (long)qi * o_sl;                                        \
      for (int c = 0; c < ncv; c++) {                                                                          \
        float tmp[16];                                                                                         \
        vstore16(acc[r * (DMAX / 16) + c] * inv, 0, tmp);                                                                     \
        for (int e = 0; e < 16 && c * 16 + e < Dv; e++) clai_att_st(out, obase + (c * 16 + e) * o_sd, out_dt, tmp[e]); \
      }                                                                                                        \
      if (has_lse)                                                                                             \
        lse[l_off + b * l_sb + h * l_sh + (long)qi * l_sl] =                                                   \
            l[r] > 0.0f ? (m[r] + log2(l[r])) * 0.69314718055994531f : -INFINITY;                              \
    }                                                                                                          \
  }

CLAI_ATTENTION(64)
CLAI_ATTENTION(256)

/* Rotary position embedding. The host gives a clai_index over the rows (every dim but the last) of out and x
 * and the column strides separately. Work mapping: 1-D, per row rot/2 work-items that each rotate one pair
 * (reading both elements before writing either, so out may be x) and D - rot that copy the rest. The
 * position of row r is (r / seq_inner) % seq_len + pos_offset (seq_inner: rows per step of the position
 * dim). With `inverse` the rotation is by -t (the transpose: the backward). */
#define CLAI_ROPE(SFX, T, LD, ST)                                                                              \
  __kernel void clai_rope_##SFX(__global T *out, __global const T *x, CLAI_INDEX_ARGS(ix), const long D,        \
                                const long rot, const long o_sd, const long x_sd, const long seq_len,          \
                                const long seq_inner, const long pos_offset, const float log2_theta,           \
                                const int halves, const int inverse) {                                         \
    const long half_rot = rot / 2, per_row = D - half_rot;                                                     \
    const long g = get_global_id(0);                                                                           \
    if (per_row <= 0 || seq_inner <= 0 || g >= CLAI_IX_NUMEL(ix) / seq_inner * per_row) return;               \
    /* a work-item takes element pair j of the seq_inner rows that share one position (the heads) */           \
    const long rg = g / per_row, j = g % per_row;                                                              \
    long oo, ox, unused;                                                                                       \
    if (j >= half_rot) {                                                                                       \
      const long d = j + half_rot;                                                                             \
      for (long h = 0; h < seq_inner; h++) {                                                                   \
        CLAI_OFFSETS(ix, rg * seq_inner + h, &oo, &ox, &unused);                                              \
        ST(out, oo + d * o_sd, LD(x, ox + d * x_sd));                                                          \
      }                                                                                                        \
      return;                                                                                                  \
    }                                                                                                          \
    const long da = halves ? j : 2 * j, db = halves ? j + half_rot : 2 * j + 1;                               \
    const float pos = (float)(rg % seq_len + pos_offset);                                                      \
    const float t = pos * exp2(-(float)(2 * j) / (float)rot * log2_theta);                                     \
    float c;                                                                                                   \
    const float s0 = sincos(t, &c), s = inverse ? -s0 : s0; /* sin(-t) = -sin t, cos(-t) = cos t */         \
    for (long h = 0; h < seq_inner; h++) {                                                                     \
      CLAI_OFFSETS(ix, rg * seq_inner + h, &oo, &ox, &unused);                                                \
      const float xa = LD(x, ox + da * x_sd), xb = LD(x, ox + db * x_sd);                                      \
      ST(out, oo + da * o_sd, xa * c - xb * s);                                                                \
      ST(out, oo + db * o_sd, xa * s + xb * c);                                                                \
    }                                                                                                          \
  }
CLAI_ROPE(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_ROPE(f16, half, CLAI_LD_F16, CLAI_ST_F16)
