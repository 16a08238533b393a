/* attention_backward.cl - the backward of fused attention (cl/attention.cl), FlashAttention-2 style: the
 * probabilities are recomputed block by block from the forward's logsumexp, never stored.
 *
 * Per pair (query i, key j) of one head: s = q_i . k_j, p = exp(scale s - lse_i) (0 where the causal mask
 * hides j from i), dp = dO_i . v_j, ds = p (dp - D_i) with D_i = dO_i . O_i; then
 *   dV_j += p dO_i,   dK_j += scale ds q_i,   dQ_i += scale ds k_j.
 * Two kernels, no atomics, every sum in a fixed order (the same bits on every run):
 *   clai_attention_bwd_kv: one work-group per (batch, key/value head, block of keys); it walks every query
 *     head that reads the key/value head (grouped-query attention sums them here) and every query row that
 *     can see its keys, and writes dK and dV of its keys once.
 *   clai_attention_bwd_q: one work-group per (batch, head, block of queries); it walks the keys its queries
 *     see and writes dQ of its queries once.
 * Work mapping (both): each work-item owns 16 "lane" rows (keys for _kv, queries for _q) held transposed
 * in private float16 vectors, one lane per row ([d] -> 16 rows), with its accumulators. The other side
 * ("staged" rows: queries and dO for _kv, keys and V for _q) is staged 16 rows (8 for DMAX 256) at a time in local memory
 * as f32, and the work-item consumes it 4 rows at a time: every load of a lane vector serves 4 staged rows
 * (a register tile, as in the forward). D_i is recomputed where a query row is loaded (a dot product of Dv
 * terms, cheap next to the row's work), so no pre-pass or temporary is needed; lse is used in log2 units
 * (the exponentials are exp2).
 *
 * Tensor layouts come as long8 (offset, batch stride, head stride, row stride, column stride, 0, 0, 0) in
 * elements. dtypes come packed in `dts`, one bit each (0 f32, 1 f16): bit 0 q/k/v, 1 out, 2 grad_out,
 * 3 grad_q, 4 grad_k, 5 grad_v. Two variants, DMAX = 64 and 256, size the private rows and local blocks;
 * loops run to D and Dv. The mapping is CPU-shaped: a work-item's private rows (4 x DMAX float16) spill out of
 * GPU registers, so GPUs run it correctly but slowly; a GPU mapping (one row per work-item, as the forward's
 * ATT_RQ = 1) is still to be written. */

#define AB_LANES 16 /* rows per work-item (the width of a float16) */
/* Staged rows per block: 16, or 8 for DMAX 256, so the two staged blocks (2 x rows x DMAX floats) fit the
 * 32 KiB of local memory OpenCL 1.2 guarantees a GPU (section 4.2, CL_DEVICE_LOCAL_MEM_SIZE). */
#define AB_BS(DMAX) ((DMAX) > 128 ? 8 : 16)
#define AB_RR 4     /* staged rows per inner step */

inline float clai_ab_ld(__global const uchar *p, const long i, const int dt) {
  return dt == 0 ? ((__global const float *)p)[i] : vload_half(i, (__global const half *)p);
}

inline void clai_ab_st(__global uchar *p, const long i, const int dt, const float v) {
  if (dt == 0)
    ((__global float *)p)[i] = v;
  else
    vstore_half(v, i, (__global half *)p);
}

/* Loads column d of 16 rows r0 .. r0+15 (zero past n) of the (b, h) matrix of a layout as a float16. */
inline float16 clai_ab_lanes(__global const uchar *p, const long8 L, const long b, const long h, const int r0,
                             const int n, const int d, const int dt) {
  float t[AB_LANES];
  const long base = L.s0 + b * L.s1 + h * L.s2 + d * L.s4;
  for (int r = 0; r < AB_LANES; r++) t[r] = r0 + r < n ? clai_ab_ld(p, base + (long)(r0 + r) * L.s3, dt) : 0.0f;
  return vload16(0, t);
}

/* Stores the 16 lanes of v (times scale) as column d of rows r0 .. r0+15 (those below n). */
inline void clai_ab_store_lanes(__global uchar *p, const long8 L, const long b, const long h, const int r0,
                                const int n, const int d, const int dt, const float16 v) {
  float t[AB_LANES];
  vstore16(v, 0, t);
  const long base = L.s0 + b * L.s1 + h * L.s2 + d * L.s4;
  for (int r = 0; r < AB_LANES && r0 + r < n; r++) clai_ab_st(p, base + (long)(r0 + r) * L.s3, dt, t[r]);
}

/* D_i = dO_i . O_i, summed in order of d (the same in both kernels). */
inline float clai_ab_delta(__global const uchar *o, __global const uchar *dout, const long8 Lo, const long8 Ldo,
                           const long b, const long h, const int i, const int Dv, const int o_dt, const int do_dt) {
  const long ob = Lo.s0 + b * Lo.s1 + h * Lo.s2 + (long)i * Lo.s3;
  const long db = Ldo.s0 + b * Ldo.s1 + h * Ldo.s2 + (long)i * Ldo.s3;
  float acc = 0.0f;
  for (int d = 0; d < Dv; d++) acc += clai_ab_ld(dout, db + d * Ldo.s4, do_dt) * clai_ab_ld(o, ob + d * Lo.s4, o_dt);
  return acc;
}

/* Copies row i (zeros past n) of the (b, h) matrix of a layout into dst[0 .. len). */
inline void clai_ab_stage_row(__local float *dst, __global const uchar *p, const long8 L, const long b, const long h,
                              const int i, const int n, const int len, const int dt) {
  if (i >= n) {
    for (int d = 0; d < len; d++) dst[d] = 0.0f;
    return;
  }
  const long base = L.s0 + b * L.s1 + h * L.s2 + (long)i * L.s3;
  if (dt == 0) {
    __global const float *s = (__global const float *)p + base;
    for (int d = 0; d < len; d++) dst[d] = s[d * L.s4];
  } else {
    __global const half *s = (__global const half *)p + base;
    for (int d = 0; d < len; d++) dst[d] = vload_half(d * L.s4, s);
  }
}

#define CLAI_AB_ARGS                                                                                           \
  __global uchar *gq, __global uchar *gk, __global uchar *gv, __global const uchar *q, __global const uchar *k, \
      __global const uchar *v, __global const uchar *o, __global const uchar *dout, __global const float *lse,  \
      const long8 Lq_, const long8 Lk_, const long8 Lv_, const long8 Lo_, const long8 Ldo_, const long8 Ll_,   \
      const long8 Lgq, const long8 Lgk, const long8 Lgv, const int H, const int Hk, const int Lq, const int Lk, \
      const int D, const int Dv, const int causal, const int dts, const float c2, const float scale

#define CLAI_ATTENTION_BWD(DMAX)                                                                               \
  __kernel void clai_attention_bwd_kv_d##DMAX(CLAI_AB_ARGS) {                                                  \
    __local float Qs[AB_BS(DMAX) * DMAX], Os[AB_BS(DMAX) * DMAX], Ls[AB_BS(DMAX)], Ds[AB_BS(DMAX)]; /* staged q, dO, lse2, D */       \
    if (Lk <= 0 || H <= 0 || Hk <= 0) return; /* uniform: the warm-up and empty problems */                   \
    const int in_dt = dts & 1, o_dt = (dts >> 1) & 1, do_dt = (dts >> 2) & 1, gk_dt = (dts >> 4) & 1,           \
              gv_dt = (dts >> 5) & 1;                                                                          \
    const int lsz = (int)get_local_size(0), lid = (int)get_local_id(0), bk = lsz * AB_LANES;                   \
    const int nkb = (Lk + bk - 1) / bk;                                                                        \
    const long grp = get_group_id(0);                                                                          \
    const int kg0 = (int)(grp % nkb) * bk;                                                                     \
    const long bhk = grp / nkb, hk = bhk % Hk, b = bhk / Hk;                                                   \
    const int G = H / Hk, j0 = kg0 + lid * AB_LANES, shift = Lk - Lq;                                          \
    const int mine = j0 < Lk;                                                                                  \
    float16 kt[DMAX], vt[DMAX], ak[DMAX], av[DMAX];                                                            \
    for (int d = 0; d < D; d++) {                                                                              \
      kt[d] = mine ? clai_ab_lanes(k, Lk_, b, hk, j0, Lk, d, in_dt) : (float16)(0.0f);                         \
      ak[d] = (float16)(0.0f);                                                                                 \
    }                                                                                                          \
    for (int d = 0; d < Dv; d++) {                                                                             \
      vt[d] = mine ? clai_ab_lanes(v, Lv_, b, hk, j0, Lk, d, in_dt) : (float16)(0.0f);                         \
      av[d] = (float16)(0.0f);                                                                                 \
    }                                                                                                          \
    const int16 jv = j0 + (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);                      \
    /* causal: query i sees key j when j <= i + shift; the group's first key is seen from query kg0 - shift */ \
    const int ifirst = causal ? clamp(kg0 - shift, 0, Lq) : 0, imine = causal ? clamp(j0 - shift, 0, Lq) : 0;  \
    for (int h = (int)hk * G; h < (int)hk * G + G; h++) {                                                      \
      for (int ib = ifirst / AB_BS(DMAX) * AB_BS(DMAX); ib < Lq; ib += AB_BS(DMAX)) {                                            \
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous block is no longer read */                              \
        for (int r = lid; r < AB_BS(DMAX); r += lsz) {                                                               \
          const int i = ib + r;                                                                                \
          clai_ab_stage_row(Qs + r * DMAX, q, Lq_, b, h, i, Lq, D, in_dt);                                     \
          clai_ab_stage_row(Os + r * DMAX, dout, Ldo_, b, h, i, Lq, Dv, do_dt);                                \
          Ls[r] = i < Lq ? lse[Ll_.s0 + b * Ll_.s1 + h * Ll_.s2 + (long)i * Ll_.s3] * 1.4426950408889634f : 0.0f; \
          Ds[r] = i < Lq ? clai_ab_delta(o, dout, Lo_, Ldo_, b, h, i, Dv, o_dt, do_dt) : 0.0f;                 \
        }                                                                                                      \
        barrier(CLK_LOCAL_MEM_FENCE);                                                                          \
        if (!mine) continue;                                                                                   \
        for (int rr = 0; rr < AB_BS(DMAX) && ib + rr < Lq; rr += AB_RR) {                                            \
          if (ib + rr + AB_RR - 1 < imine) continue; /* no row of the step sees any key of mine */            \
          float16 s[AB_RR], dp[AB_RR];                                                                         \
          _Pragma("unroll") for (int r = 0; r < AB_RR; r++) s[r] = dp[r] = (float16)(0.0f);                    \
          for (int d = 0; d < D; d++) {                                                                        \
            const float16 x = kt[d];                                                                           \
            _Pragma("unroll") for (int r = 0; r < AB_RR; r++) s[r] = CLAI_FMA((float16)(Qs[(rr + r) * DMAX + d]), x, s[r]); \
          }                                                                                                    \
          for (int d = 0; d < Dv; d++) {                                                                       \
            const float16 x = vt[d];                                                                           \
            _Pragma("unroll") for (int r = 0; r < AB_RR; r++)                                                  \
                dp[r] = CLAI_FMA((float16)(Os[(rr + r) * DMAX + d]), x, dp[r]);                                     \
          }                                                                                                    \
          _Pragma("unroll") for (int r = 0; r < AB_RR; r++) {                                                  \
            const int i = ib + rr + r;                                                                         \
            const int16 vis = (int16)(i < Lq ? -1 : 0) & (causal ? jv <= (int16)(i + shift) : (int16)(-1));    \
            s[r] = select((float16)(0.0f), exp2(s[r] * c2 - Ls[rr + r]), vis); /* p */                          \
            dp[r] = s[r] * (dp[r] - Ds[rr + r]);                                /* ds */                        \
          }                                                                                                    \
          for (int d = 0; d < Dv; d++) {                                                                       \
            float16 a = av[d];                                                                                 \
            _Pragma("unroll") for (int r = 0; r < AB_RR; r++) a = CLAI_FMA(s[r], (float16)(Os[(rr + r) * DMAX + d]), a); \
            av[d] = a;                                                                                         \
          }                                                                                                    \
          for (int d = 0; d < D; d++) {                                                                        \
            float16 a = ak[d];                                                                                 \
            _Pragma("unroll") for (int r = 0; r < AB_RR; r++) a = CLAI_FMA(dp[r], (float16)(Qs[(rr + r) * DMAX + d]), a); \
            ak[d] = a;                                                                                         \
          }                                                                                                    \
        }                                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
    if (!mine) return;                                                                                         \
    for (int d = 0; d < D; d++) clai_ab_store_lanes(gk, Lgk, b, hk, j0, Lk, d, gk_dt, ak[d] * scale);          \
    for (int d = 0; d < Dv; d++) clai_ab_store_lanes(gv, Lgv, b, hk, j0, Lk, d, gv_dt, av[d]);                 \
  }                                                                                                            \
                                                                                                               \
  __kernel void clai_attention_bwd_q_d##DMAX(CLAI_AB_ARGS) {                                                   \
    __local float Ks[AB_BS(DMAX) * DMAX], Vs[AB_BS(DMAX) * DMAX]; /* staged k, v */                                       \
    if (Lq <= 0 || H <= 0 || Hk <= 0) return;                                                                  \
    const int in_dt = dts & 1, o_dt = (dts >> 1) & 1, do_dt = (dts >> 2) & 1, gq_dt = (dts >> 3) & 1;           \
    const int lsz = (int)get_local_size(0), lid = (int)get_local_id(0), bq = lsz * AB_LANES;                   \
    const int nqb = (Lq + bq - 1) / bq;                                                                        \
    const long grp = get_group_id(0);                                                                          \
    const int qg0 = (int)(grp % nqb) * bq;                                                                     \
    const long bh = grp / nqb, h = bh % H, b = bh / H, hk = h / (H / Hk);                                      \
    const int i0 = qg0 + lid * AB_LANES, shift = Lk - Lq;                                                      \
    const int mine = i0 < Lq;                                                                                  \
    float16 qt[DMAX], ot[DMAX], aq[DMAX];                                                                      \
    float lt[AB_LANES], dt_[AB_LANES];                                                                         \
    for (int d = 0; d < D; d++) {                                                                              \
      qt[d] = mine ? clai_ab_lanes(q, Lq_, b, h, i0, Lq, d, in_dt) : (float16)(0.0f);                          \
      aq[d] = (float16)(0.0f);                                                                                 \
    }                                                                                                          \
    for (int d = 0; d < Dv; d++) ot[d] = mine ? clai_ab_lanes(dout, Ldo_, b, h, i0, Lq, d, do_dt) : (float16)(0.0f); \
    for (int r = 0; r < AB_LANES; r++) {                                                                       \
      const int i = i0 + r;                                                                                    \
      lt[r] = i < Lq ? lse[Ll_.s0 + b * Ll_.s1 + h * Ll_.s2 + (long)i * Ll_.s3] * 1.4426950408889634f : 0.0f;  \
      dt_[r] = i < Lq ? clai_ab_delta(o, dout, Lo_, Ldo_, b, h, i, Dv, o_dt, do_dt) : 0.0f;                    \
    }                                                                                                          \
    const float16 l16 = vload16(0, lt), d16 = vload16(0, dt_);                                                 \
    const int16 iv = i0 + (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);                      \
    const int16 live = iv < (int16)(Lq);                                                                       \
    const int kstop = causal ? clamp(min(Lq, qg0 + bq) + shift, 0, Lk) : Lk;                                   \
    const int kmine = !mine ? 0 : causal ? clamp(min(Lq, i0 + AB_LANES) + shift, 0, Lk) : Lk;                 \
    for (int kb = 0; kb < kstop; kb += AB_BS(DMAX)) {                                                                \
      barrier(CLK_LOCAL_MEM_FENCE);                                                                            \
      for (int r = lid; r < AB_BS(DMAX); r += lsz) {                                                                 \
        clai_ab_stage_row(Ks + r * DMAX, k, Lk_, b, hk, kb + r, Lk, D, in_dt);                                 \
        clai_ab_stage_row(Vs + r * DMAX, v, Lv_, b, hk, kb + r, Lk, Dv, in_dt);                                \
      }                                                                                                        \
      barrier(CLK_LOCAL_MEM_FENCE);                                                                            \
      for (int rr = 0; rr < AB_BS(DMAX) && kb + rr < kmine; rr += AB_RR) {                                           \
        float16 s[AB_RR], dp[AB_RR];                                                                           \
        _Pragma("unroll") for (int r = 0; r < AB_RR; r++) s[r] = dp[r] = (float16)(0.0f);                      \
        for (int d = 0; d < D; d++) {                                                                          \
          const float16 x = qt[d];                                                                             \
          _Pragma("unroll") for (int r = 0; r < AB_RR; r++) s[r] = CLAI_FMA((float16)(Ks[(rr + r) * DMAX + d]), x, s[r]); \
        }                                                                                                      \
        for (int d = 0; d < Dv; d++) {                                                                         \
          const float16 x = ot[d];                                                                             \
          _Pragma("unroll") for (int r = 0; r < AB_RR; r++) dp[r] = CLAI_FMA((float16)(Vs[(rr + r) * DMAX + d]), x, dp[r]); \
        }                                                                                                      \
        _Pragma("unroll") for (int r = 0; r < AB_RR; r++) {                                                    \
          const int j = kb + rr + r;                                                                           \
          const int16 vis = live & (int16)(j < Lk ? -1 : 0) & (causal ? (int16)(j) <= iv + shift : (int16)(-1)); \
          s[r] = select((float16)(0.0f), exp2(s[r] * c2 - l16), vis);                                         \
          dp[r] = s[r] * (dp[r] - d16);                                                                        \
        }                                                                                                      \
        for (int d = 0; d < D; d++) {                                                                          \
          float16 a = aq[d];                                                                                   \
          _Pragma("unroll") for (int r = 0; r < AB_RR; r++) a = CLAI_FMA(dp[r], (float16)(Ks[(rr + r) * DMAX + d]), a); \
          aq[d] = a;                                                                                           \
        }                                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
    if (!mine) return;                                                                                         \
    for (int d = 0; d < D; d++) clai_ab_store_lanes(gq, Lgq, b, h, i0, Lq, d, gq_dt, aq[d] * scale);           \
  }

CLAI_ATTENTION_BWD(64)
CLAI_ATTENTION_BWD(256)
