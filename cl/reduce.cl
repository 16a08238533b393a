/* reduce.cl - reductions along one axis: sum, mean, max, min, argmax, argmin, variance.
 *
 * Layout: the host describes the input as rows. A row is the run of n elements along the reduced axis,
 * element j at x[ox + j * xs]; the rows are enumerated by a clai_index over the other dims (operand 0 is
 * the output, operand 1 the first element of the row in x), so any strided view works and the reduced
 * axis need not be the last. Work mapping: work-item g takes chunk p = g / nrows of row r = g % nrows,
 * elements [p * chunk, min(n, (p + 1) * chunk)); neighbouring work-items take neighbouring rows, so a
 * reduction over a non-last axis reads neighbouring addresses. With nsplit = 1 a work-item reduces a whole
 * row and writes the result; otherwise clai_reduce_rows writes one partial state per chunk into `part`
 * and clai_reduce_merge combines them in chunk order (no atomics: results are identical run after run).
 * Rows of unit stride are read eight elements at a time (f16 too for the sums, the mean and the variance).
 *
 * Accuracy: sums are Kahan-compensated (per lane across blocks of 128 elements, each lane's 16 values of a
 * block added plainly, at most five roundings deep; then across lanes and chunks; the column kernel per
 * column across groups of four steps), so rows of 10^6 elements sum to about f32 rounding; the variance is
 * two-pass within a chunk (chunks are short enough to stay in cache) and chunks are merged with Chan's
 * formula. max/min propagate NaN; argmax/argmin treat NaN as the extreme value (the first NaN wins) and
 * return the first index of the extreme. Dtypes are run-time flags (xf16, of16): f16 is storage only.
 * The column kernel (clai_reduce_cols, below) has its own work mapping; its chunking depends on the
 * device's compute units, so its roundings may differ between machines, never between runs.
 *
 * Partial state, plane k at part[k * nsplit * nrows + p * nrows + r]: plane 0 the chunk's sum, max, min,
 * extreme value or mean; plane 1 the Kahan compensation, the index (as_float) or M2. */

#define CLAI_R_SUM 0
#define CLAI_R_MEAN 1
#define CLAI_R_MAX 2
#define CLAI_R_MIN 3
#define CLAI_R_VAR 4
#define CLAI_R_ARGMAX 5
#define CLAI_R_ARGMIN 6

inline float clai_r_ld(__global const float *p, const long i, const int f16) {
  return f16 ? vload_half(i, (__global const half *)p) : p[i];
}

inline void clai_r_st(__global float *p, const long i, const float v, const int f16) {
  if (f16)
    vstore_half(v, i, (__global half *)p);
  else
    p[i] = v;
}

/* The compensation of a Kahan step t = s + y: (t - s) - y, except 0 once the sum is infinite, where it would
 * be inf - inf = NaN and turn a sum of [1, inf, 2] into NaN instead of inf. (A NaN or an inf + -inf still
 * gives NaN through t.) */
inline float clai_kcomp(const float t, const float s, const float y) {
  return isinf(t) ? 0.0f : (t - s) - y;
}
inline float8 clai_kcomp8(const float8 t, const float8 s, const float8 y) {
  return isinf(t) ? (float8)(0.0f) : (t - s) - y;
}

/* Kahan step: *s + v, with the running compensation in *c (the true sum is *s - *c). */
inline void clai_kahan(float *s, float *c, const float v) {
  const float y = v - *c;
  const float t = *s + y;
  *c = clai_kcomp(t, *s, y);
  *s = t;
}

/* Folds eight compensated lanes into (*s, *c), which must be (0, 0): each lane's compensation is applied,
 * then the lanes are summed as a tree (three roundings of the total, not eight of a running sum). */
inline void clai_kahan8(float *s, float *c, const float8 vs, const float8 vc) {
  const float8 t = vs - vc;
  const float4 u = t.lo + t.hi;
  const float2 w = u.lo + u.hi;
  *s = w.lo + w.hi;
  *c = 0.0f;
}

/* A Kahan step of eight lanes: S + V, the running compensation in K. */
#define CLAI_KAHAN_V(S, K, V)                                                                             \
  {                                                                                                       \
    const float8 y_ = (V) - K, t_ = S + y_;                                                               \
    K = clai_kcomp8(t_, S, y_);                                                                           \
    S = t_;                                                                                               \
  }

/* Does (v, i) beat the best (bv, bi) for argmax? NaN beats every number; ties go to the smaller index. */
inline int clai_r_better(const float v, const int i, const float bv, const int bi) {
  if (isnan(bv)) return isnan(v) && i < bi;
  return isnan(v) || v > bv || (v == bv && i < bi);
}

/* The value of a finished reduction. `a` is the sum / extreme / mean, `b` the compensation or M2. */
inline float clai_r_final(const int op, const float a, const float b, const long n, const int corr) {
  switch (op) {
  case CLAI_R_SUM: return a - b;
  case CLAI_R_MEAN: return (a - b) / (float)n;
  case CLAI_R_VAR: return n - corr > 0 ? b / (float)(n - corr) : NAN;
  default: return a;
  }
}

/* Eight halves from element i of x on, as floats. On POCL (CLAI_BITHALF) the bit conversion of clai_h2f,
 * eight at a time, from a load that stays eight wide (as CLAI_LD8); elsewhere vload_half8. */
#if CLAI_BITHALF
typedef ushort8 clai_h8u __attribute__((aligned(2)));
inline float8 clai_ldh8(__global const float *x, const long i) {
  const uint8 h = convert_uint8(*(const __global clai_h8u *)((const __global ushort *)x + i));
  const uint8 sign = (h & 0x8000u) << 16, mag = (h & 0x7fffu) << 13;
  const float8 fin = as_float8(sign | mag) * 0x1p112f, inf = as_float8(sign | 0x7f800000u | mag);
  return (h & 0x7c00u) == (uint8)(0x7c00u) ? inf : fin;
}
#else
inline float8 clai_ldh8(__global const float *x, const long i) { return vload_half8(0, (__global const half *)x + i); }
#endif
#define CLAI_R_LD8_F32(x, i) CLAI_LD8((x) + (i))
#define CLAI_R_LD1_F32(x, i) ((x)[i])
#define CLAI_R_LD8_F16(x, i) clai_ldh8((x), (i))
#define CLAI_R_LD1_F16(x, i) vload_half((i), (__global const half *)(x))

/* The compensated eight-lane sum (*vs, *vc) of x, or with sqd of (x - mean)^2, over the first m / 8 * 8
 * elements from element e of x (unit stride); returns that count. Blocks of 128: plain sums in four float8
 * accumulators (four vectors each), then one Kahan step per block (a Kahan step per vector cost seven times
 * the work of the plain C loop, which showed on data in cache; a lane's 16 values of a block are added at
 * most five roundings deep); then blocks of 32 and of 8. One function per input dtype (CLAI_R_RUN). */
#define CLAI_R_RUN(NAME, LD8)                                                                                 \
  inline long NAME(__global const float *x, const long e, const long m, const int sqd, const float mean,      \
                   float8 *pvs, float8 *pvc) {                                                                \
    const float8 mu = (float8)(mean);                                                                         \
    float8 vs = (float8)(0.0f), vc = vs;                                                                      \
    long j = 0;                                                                                               \
    if (!sqd) {                                                                                               \
      for (; j + 128 <= m; j += 128) {                                                                        \
        const long b = e + j;                                                                                 \
        float8 a0 = LD8(x, b), a1 = LD8(x, b + 8), a2 = LD8(x, b + 16), a3 = LD8(x, b + 24);                  \
        for (int k = 32; k < 128; k += 32) {                                                                  \
          a0 += LD8(x, b + k);                                                                                \
          a1 += LD8(x, b + k + 8);                                                                            \
          a2 += LD8(x, b + k + 16);                                                                           \
          a3 += LD8(x, b + k + 24);                                                                           \
        }                                                                                                     \
        CLAI_KAHAN_V(vs, vc, (a0 + a1) + (a2 + a3))                                                           \
      }                                                                                                       \
      for (; j + 32 <= m; j += 32) /* short rows, and what a long one leaves */                               \
        CLAI_KAHAN_V(vs, vc, (LD8(x, e + j) + LD8(x, e + j + 8)) + (LD8(x, e + j + 16) + LD8(x, e + j + 24))) \
      for (; j + 8 <= m; j += 8) CLAI_KAHAN_V(vs, vc, LD8(x, e + j))                                          \
    } else {                                                                                                  \
      for (; j + 128 <= m; j += 128) {                                                                        \
        const long b = e + j;                                                                                 \
        float8 d0 = LD8(x, b) - mu, d1 = LD8(x, b + 8) - mu, d2 = LD8(x, b + 16) - mu, d3 = LD8(x, b + 24) - mu; \
        float8 a0 = d0 * d0, a1 = d1 * d1, a2 = d2 * d2, a3 = d3 * d3;                                        \
        for (int k = 32; k < 128; k += 32) {                                                                  \
          d0 = LD8(x, b + k) - mu;                                                                            \
          d1 = LD8(x, b + k + 8) - mu;                                                                        \
          d2 = LD8(x, b + k + 16) - mu;                                                                       \
          d3 = LD8(x, b + k + 24) - mu;                                                                       \
          a0 += d0 * d0;                                                                                      \
          a1 += d1 * d1;                                                                                      \
          a2 += d2 * d2;                                                                                      \
          a3 += d3 * d3;                                                                                      \
        }                                                                                                     \
        CLAI_KAHAN_V(vs, vc, (a0 + a1) + (a2 + a3))                                                           \
      }                                                                                                       \
      for (; j + 32 <= m; j += 32) {                                                                          \
        const float8 d0 = LD8(x, e + j) - mu, d1 = LD8(x, e + j + 8) - mu;                                    \
        const float8 d2 = LD8(x, e + j + 16) - mu, d3 = LD8(x, e + j + 24) - mu;                              \
        CLAI_KAHAN_V(vs, vc, (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3))                                       \
      }                                                                                                       \
      for (; j + 8 <= m; j += 8) {                                                                            \
        const float8 d = LD8(x, e + j) - mu;                                                                  \
        CLAI_KAHAN_V(vs, vc, d * d)                                                                           \
      }                                                                                                       \
    }                                                                                                         \
    *pvs = vs;                                                                                                \
    *pvc = vc;                                                                                                \
    return j;                                                                                                 \
  }
CLAI_R_RUN(clai_r_run_f32, CLAI_R_LD8_F32)
CLAI_R_RUN(clai_r_run_f16, CLAI_R_LD8_F16)

/* Reduces m elements starting at x[base] with stride xs into (*a, *b). For arg ops *b is the index
 * (relative to the chunk start) as_float. */
inline void clai_r_chunk(__global const float *x, const long base, const long m, const long xs, const int xf16,
                         const int op, float *a, float *b) {
  const int vec = xs == 1 && !xf16;
  __global const float *q = x + base;
  if (op == CLAI_R_SUM || op == CLAI_R_MEAN || op == CLAI_R_VAR) {
    float s = 0.0f, c = 0.0f;
    long j = 0;
    if (xs == 1) {
      float8 vs, vc;
      j = xf16 ? clai_r_run_f16(x, base, m, 0, 0.0f, &vs, &vc) : clai_r_run_f32(x, base, m, 0, 0.0f, &vs, &vc);
      clai_kahan8(&s, &c, vs, vc);
    }
    for (; j < m; j++) clai_kahan(&s, &c, clai_r_ld(x, base + j * xs, xf16));
    if (op != CLAI_R_VAR) {
      *a = s;
      *b = c;
      return;
    }
    /* second pass over the chunk (in cache): the sum of squared deviations from the chunk's mean */
    const float mean = m > 0 ? (s - c) / (float)m : 0.0f;
    s = 0.0f;
    c = 0.0f;
    j = 0;
    if (xs == 1) {
      float8 vs, vc;
      j = xf16 ? clai_r_run_f16(x, base, m, 1, mean, &vs, &vc) : clai_r_run_f32(x, base, m, 1, mean, &vs, &vc);
      clai_kahan8(&s, &c, vs, vc);
    }
    for (; j < m; j++) {
      const float d = clai_r_ld(x, base + j * xs, xf16) - mean;
      clai_kahan(&s, &c, d * d);
    }
    *a = mean;
    *b = s - c;
    return;
  }
  if (op == CLAI_R_MAX || op == CLAI_R_MIN) {
    const int mx = op == CLAI_R_MAX;
    float r = mx ? -INFINITY : INFINITY;
    int nan = 0;
    long j = 0;
    if (vec) {
      float8 vr = (float8)(r);
      int8 vn = (int8)(0);
      for (; j + 8 <= m; j += 8) {
        const float8 v = vload8(0, q + j);
        vr = mx ? fmax(vr, v) : fmin(vr, v);
        vn |= isnan(v);
      }
      float t[8];
      vstore8(vr, 0, t);
      for (int l = 0; l < 8; l++) r = mx ? fmax(r, t[l]) : fmin(r, t[l]);
      nan = any(vn);
    }
    for (; j < m; j++) {
      const float v = clai_r_ld(x, base + j * xs, xf16);
      r = mx ? fmax(r, v) : fmin(r, v);
      nan |= isnan(v);
    }
    *a = nan ? NAN : r;
    *b = 0.0f;
    return;
  }
  /* argmax; argmin is argmax of -x */
  const float sg = op == CLAI_R_ARGMIN ? -1.0f : 1.0f;
  float bv = -INFINITY;
  int bi = 0;
  long j = 0;
  if (m > 0) bv = sg * clai_r_ld(x, base, xf16);
  if (vec && m >= 8) {
    float8 vb = sg * vload8(0, q);
    int8 vi = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    for (j = 8; j + 8 <= m; j += 8) {
      const float8 v = sg * vload8(0, q + j);
      const int8 take = ~isnan(vb) & (isnan(v) | isgreater(v, vb));
      vb = select(vb, v, take);
      vi = select(vi, (int8)((int)j) + (int8)(0, 1, 2, 3, 4, 5, 6, 7), take);
    }
    float t[8];
    int ti[8];
    vstore8(vb, 0, t);
    vstore8(vi, 0, ti);
    bv = t[0];
    bi = ti[0];
    for (int l = 1; l < 8; l++)
      if (clai_r_better(t[l], ti[l], bv, bi)) {
        bv = t[l];
        bi = ti[l];
      }
  }
  for (; j < m; j++) {
    const float v = sg * clai_r_ld(x, base + j * xs, xf16);
    if (clai_r_better(v, (int)j, bv, bi)) {
      bv = v;
      bi = (int)j;
    }
  }
  *a = bv;
  *b = as_float(bi);
}

inline void clai_r_store(__global float *out, const long oo, const int op, const float a, const float b,
                         const long n, const int corr, const int of16) {
  if (op == CLAI_R_ARGMAX || op == CLAI_R_ARGMIN)
    ((__global int *)out)[oo] = as_int(b);
  else
    clai_r_st(out, oo, clai_r_final(op, a, b, n, corr), of16);
}

/* Writes a unit's result (nsplit 1) or its partial state (a, then b, each [nsplit][nrows]; an arg index
 * made absolute by the unit's start lo). */
inline void clai_rw_out(__global float *out, __global float *part, const long oo, const long p, const long r,
                        const long nrows, const int nsplit, const int op, float a, float b, const long n,
                        const long lo, const int corr, const int of16) {
  if (nsplit == 1) {
    clai_r_store(out, oo, op, a, b, n, corr, of16);
  } else {
    if (op == CLAI_R_ARGMAX || op == CLAI_R_ARGMIN) b = as_float(as_int(b) + (int)lo);
    part[p * nrows + r] = a;
    part[nsplit * nrows + p * nrows + r] = b;
  }
}

__kernel void clai_reduce_rows(__global float *out, __global const float *x, __global float *part,
                               CLAI_INDEX_ARGS(ix), const long n, const long xs, const long chunk,
                               const int nsplit, const int op, const int corr, const int xf16, const int of16) {
  const long g = get_global_id(0), nrows = CLAI_IX_NUMEL(ix);
  if (g >= nrows * nsplit) return;
  const long p = g / nrows, r = g - p * nrows;
  long oo, ox, unused;
  CLAI_OFFSETS(ix, r, &oo, &ox, &unused);
  const long lo = p * chunk;
  const long hi = min(n, lo + chunk);
  float a, b;
  clai_r_chunk(x, ox + lo * xs, hi > lo ? hi - lo : 0, xs, xf16, op, &a, &b);
  clai_rw_out(out, part, oo, p, r, nrows, nsplit, op, a, b, n, lo, corr, of16);
}

/* Combines the nsplit partial states of each row in chunk order and writes the result. */
__kernel void clai_reduce_merge(__global float *out, __global const float *part, CLAI_INDEX_ARGS(ix), const long n,
                                const long chunk, const int nsplit, const int op, const int corr, const int of16) {
  const long r = get_global_id(0), nrows = CLAI_IX_NUMEL(ix);
  if (r >= nrows) return;
  long oo, unused0, unused1;
  CLAI_OFFSETS(ix, r, &oo, &unused0, &unused1);
  const long plane = nsplit * nrows;
  float a = part[r], b = part[plane + r];
  float cnt = (float)min(chunk, n);
  for (int p = 1; p < nsplit; p++) {
    const float pa = part[p * nrows + r], pb = part[plane + p * nrows + r];
    switch (op) {
    case CLAI_R_SUM:
    case CLAI_R_MEAN:
      /* a - b is the sum so far; add the chunk's pa - pb, compensated */
      {
        float s = a, c = b;
        clai_kahan(&s, &c, pa);
        clai_kahan(&s, &c, -pb);
        a = s;
        b = c;
      }
      break;
    case CLAI_R_MAX: a = isnan(a) || isnan(pa) ? NAN : fmax(a, pa); break;
    case CLAI_R_MIN: a = isnan(a) || isnan(pa) ? NAN : fmin(a, pa); break;
    case CLAI_R_VAR: {
      /* Chan et al.: merge (cnt, mean a, M2 b) with the chunk's (nb, pa, pb) */
      const float nb = (float)(min(n, (p + 1) * chunk) - p * chunk);
      const float tot = cnt + nb, d = pa - a;
      a += d * (nb / tot);
      b += pb + d * d * (cnt * nb / tot);
      cnt = tot;
    } break;
    default:
      if (clai_r_better(pa, as_int(pb), a, as_int(b))) {
        a = pa;
        b = pb;
      }
      break;
    }
  }
  clai_r_store(out, oo, op, a, b, n, corr, of16);
}

/* Reductions over a strided axis whose rows are neighbours in memory (the innermost remaining dim has unit
 * stride in x: [R, C] summed over R, a bias gradient; the middle axis of [A, B, C]). A work-item takes a tile
 * of up to CLAI_COLT neighbouring rows (the "columns" of the [reduced, w] matrix; a tile never crosses a run
 * of the innermost dim, w long) and one chunk of the reduced axis, and walks the chunk in order: at every step
 * it reads the tile's run of contiguous elements, four steps at a time, into per-column accumulators (float8
 * lanes, then scalars for the last cnt % 8 columns). CLAI_COLT is a build option: 512 on CPUs, whose
 * prefetchers follow the 2 KB runs and whose L1 holds the 4 KB of accumulators (a work-item that read 128
 * bytes of each of many rows 4 KB apart waited on memory at every row: 0.4x of a C loop), 32 elsewhere (a
 * few registers; there this kernel only runs when CLAI_ROWS=item forces it). Rows are enumerated as in
 * clai_reduce_rows; nb = ceil(w / CLAI_COLT) tiles per run. f32 or f16 input; every op (the variance: the
 * chunk's mean, then the squared deviations from it: the second walk finds the chunk in cache when the host
 * keeps chunk * CLAI_COLT small; argmax/argmin step by step, in order). */
#ifndef CLAI_COLT
#define CLAI_COLT 32
#endif
#define CLAI_COLV (CLAI_COLT / 8)

/* The chunk's state per column of the tile: for sums va/vb (ta/tb for the scalar columns) get the Kahan sum
 * and compensation of x (sqdev, kind 2: of (x - mu)^2, mu per column); for extremes (kind 1) va the maximum
 * of sg * x (NaN kept once met). nv float8 columns, then nt scalar ones; m steps of stride xs from element
 * e of x. One function per input dtype (CLAI_RC_WALK), so that the loads are not chosen inside the loops. */
#define CLAI_RC_WALK(NAME, LD8, LD1)                                                                          \
  inline void NAME(__global const float *x, const long e, const long m, const long xs, const int nv,          \
                   const int nt, const int kind, const float sg, float8 *va, float8 *vb, float *ta, float *tb,   \
                   const float8 *vmu, const float *tmu) {                                                      \
    const int ext = kind == 1, sqd = kind == 2;                                                               \
    const float init = ext ? -INFINITY : 0.0f;                                                                \
    for (int k = 0; k < nv; k++) {                                                                            \
      va[k] = (float8)(init);                                                                                 \
      vb[k] = (float8)(0.0f);                                                                                 \
    }                                                                                                         \
    for (int k = 0; k < nt; k++) {                                                                            \
      ta[k] = init;                                                                                           \
      tb[k] = 0.0f;                                                                                           \
    }                                                                                                         \
    const long et = e + nv * 8;                                                                               \
    long j = 0;                                                                                               \
    for (; j + 4 <= m; j += 4) {                                                                              \
      const long i0 = e + j * xs, i1 = i0 + xs, i2 = i1 + xs, i3 = i2 + xs;                                   \
      for (int k = 0; k < nv; k++) {                                                                          \
        float8 v0 = LD8(x, i0 + k * 8), v1 = LD8(x, i1 + k * 8), v2 = LD8(x, i2 + k * 8), v3 = LD8(x, i3 + k * 8); \
        if (ext) {                                                                                            \
          v0 *= sg;                                                                                           \
          v1 *= sg;                                                                                           \
          v2 *= sg;                                                                                           \
          v3 *= sg;                                                                                           \
          /* v > a or v NaN takes v: a NaN, once in, stays (nothing compares greater than it) */              \
          const float8 u0 = (v0 > v1) | (v0 != v0) ? v0 : v1, u1 = (v2 > v3) | (v2 != v2) ? v2 : v3;           \
          const float8 u = (u0 > u1) | (u0 != u0) ? u0 : u1, a = va[k];                                       \
          va[k] = (u > a) | (u != u) ? u : a;                                                                 \
        } else {                                                                                              \
          if (sqd) {                                                                                          \
            v0 = (v0 - vmu[k]) * (v0 - vmu[k]);                                                               \
            v1 = (v1 - vmu[k]) * (v1 - vmu[k]);                                                               \
            v2 = (v2 - vmu[k]) * (v2 - vmu[k]);                                                               \
            v3 = (v3 - vmu[k]) * (v3 - vmu[k]);                                                               \
          }                                                                                                   \
          float8 s = va[k], c = vb[k];                                                                        \
          CLAI_KAHAN_V(s, c, (v0 + v1) + (v2 + v3))                                                           \
          va[k] = s;                                                                                          \
          vb[k] = c;                                                                                          \
        }                                                                                                     \
      }                                                                                                       \
      for (int k = 0; k < nt; k++) {                                                                          \
        const long it = et + j * xs + k;                                                                      \
        float v0 = LD1(x, it), v1 = LD1(x, it + xs), v2 = LD1(x, it + 2 * xs), v3 = LD1(x, it + 3 * xs);      \
        if (ext) {                                                                                            \
          const float a = ta[k];                                                                              \
          v0 *= sg;                                                                                           \
          v1 *= sg;                                                                                           \
          v2 *= sg;                                                                                           \
          v3 *= sg;                                                                                           \
          const float u0 = v0 > v1 || isnan(v0) ? v0 : v1, u1 = v2 > v3 || isnan(v2) ? v2 : v3;               \
          const float u = u0 > u1 || isnan(u0) ? u0 : u1;                                                     \
          ta[k] = u > a || isnan(u) ? u : a;                                                                  \
        } else {                                                                                              \
          if (sqd) {                                                                                          \
            v0 = (v0 - tmu[k]) * (v0 - tmu[k]);                                                               \
            v1 = (v1 - tmu[k]) * (v1 - tmu[k]);                                                               \
            v2 = (v2 - tmu[k]) * (v2 - tmu[k]);                                                               \
            v3 = (v3 - tmu[k]) * (v3 - tmu[k]);                                                               \
          }                                                                                                   \
          clai_kahan(&ta[k], &tb[k], (v0 + v1) + (v2 + v3));                                                  \
        }                                                                                                     \
      }                                                                                                       \
    }                                                                                                         \
    for (; j < m; j++) {                                                                                      \
      const long i0 = e + j * xs;                                                                             \
      for (int k = 0; k < nv; k++) {                                                                          \
        float8 v = LD8(x, i0 + k * 8);                                                                        \
        if (ext) {                                                                                            \
          v *= sg;                                                                                            \
          const float8 a = va[k];                                                                             \
          va[k] = (v > a) | (v != v) ? v : a;                                                                 \
        } else {                                                                                              \
          if (sqd) v = (v - vmu[k]) * (v - vmu[k]);                                                           \
          float8 s = va[k], c = vb[k];                                                                        \
          CLAI_KAHAN_V(s, c, v)                                                                               \
          va[k] = s;                                                                                          \
          vb[k] = c;                                                                                          \
        }                                                                                                     \
      }                                                                                                       \
      for (int k = 0; k < nt; k++) {                                                                          \
        float v = LD1(x, et + j * xs + k);                                                                    \
        if (ext) {                                                                                            \
          v *= sg;                                                                                            \
          ta[k] = v > ta[k] || isnan(v) ? v : ta[k];                                                          \
        } else {                                                                                              \
          if (sqd) v = (v - tmu[k]) * (v - tmu[k]);                                                           \
          clai_kahan(&ta[k], &tb[k], v);                                                                      \
        }                                                                                                     \
      }                                                                                                       \
    }                                                                                                         \
  }
CLAI_RC_WALK(clai_rc_walk_f32, CLAI_R_LD8_F32, CLAI_R_LD1_F32)
CLAI_RC_WALK(clai_rc_walk_f16, CLAI_R_LD8_F16, CLAI_R_LD1_F16)

/* argmax of sg * x per column of the tile (argmin: sg = -1), step by step in order: va/ta get the value and
 * vb/tb the chunk-relative step (as_float) of the first extreme, a NaN counting as the extreme (the first NaN
 * wins). m >= 1. One function per input dtype, as CLAI_RC_WALK. */
#define CLAI_RC_ARG(NAME, LD8, LD1)                                                                           \
  inline void NAME(__global const float *x, const long e, const long m, const long xs, const int nv,          \
                   const int nt, const float sg, float8 *va, float8 *vb, float *ta, float *tb) {               \
    const long et = e + nv * 8;                                                                               \
    for (int k = 0; k < nv; k++) {                                                                            \
      va[k] = sg * LD8(x, e + k * 8);                                                                         \
      vb[k] = as_float8((int8)(0));                                                                           \
    }                                                                                                         \
    for (int k = 0; k < nt; k++) {                                                                            \
      ta[k] = sg * LD1(x, et + k);                                                                            \
      tb[k] = as_float(0);                                                                                    \
    }                                                                                                         \
    for (long j = 1; j < m; j++) {                                                                            \
      const float8 jj = as_float8((int8)((int)j));                                                            \
      for (int k = 0; k < nv; k++) {                                                                          \
        const float8 v = sg * LD8(x, e + j * xs + k * 8), b = va[k];                                          \
        const int8 take = (b == b) & ((v != v) | (v > b)); /* the best is a number, v is NaN or greater */    \
        va[k] = take ? v : b;                                                                                 \
        vb[k] = take ? jj : vb[k];                                                                            \
      }                                                                                                       \
      for (int k = 0; k < nt; k++) {                                                                          \
        const float v = sg * LD1(x, et + j * xs + k), b = ta[k];                                              \
        if (!isnan(b) && (isnan(v) || v > b)) {                                                               \
          ta[k] = v;                                                                                          \
          tb[k] = as_float((int)j);                                                                           \
        }                                                                                                     \
      }                                                                                                       \
    }                                                                                                         \
  }
CLAI_RC_ARG(clai_rc_arg_f32, CLAI_R_LD8_F32, CLAI_R_LD1_F32)
CLAI_RC_ARG(clai_rc_arg_f16, CLAI_R_LD8_F16, CLAI_R_LD1_F16)

/* One walk of the chunk (see CLAI_RC_WALK), for x's dtype. */
inline void clai_rc_walk(__global const float *x, const long e, const long m, const long xs, const int nv,
                         const int nt, const int kind, const float sg, float8 *va, float8 *vb, float *ta, float *tb,
                         const float8 *vmu, const float *tmu, const int xf16) {
  if (xf16)
    clai_rc_walk_f16(x, e, m, xs, nv, nt, kind, sg, va, vb, ta, tb, vmu, tmu);
  else
    clai_rc_walk_f32(x, e, m, xs, nv, nt, kind, sg, va, vb, ta, tb, vmu, tmu);
}

__kernel void clai_reduce_cols(__global float *out, __global const float *x, __global float *part,
                               CLAI_INDEX_ARGS(ix), const long n, const long xs, const long chunk,
                               const int nsplit, const int op, const int corr, const int xf16, const int of16) {
  const long nrows = CLAI_IX_NUMEL(ix);
  if (nrows == 0) return;
  const long w = CLAI_IX_SHAPE_IN(ix), nb = (w + CLAI_COLT - 1) / CLAI_COLT, nblk = nrows / w * nb;
  const long g = get_global_id(0);
  if (g >= nblk * nsplit) return;
  const long p = g / nblk, bq = g - p * nblk, qq = bq / nb, b = bq - qq * nb;
  const long r0 = qq * w + b * CLAI_COLT, os = CLAI_IX_STRIDE_IN(ix, 0);
  const int cnt = (int)min((long)CLAI_COLT, w - b * CLAI_COLT), nv = cnt / 8, nt = cnt - nv * 8;
  long oo, ox, unused;
  CLAI_OFFSETS(ix, r0, &oo, &ox, &unused);
  const long lo = p * chunk, hi = min(n, lo + chunk), m = hi > lo ? hi - lo : 0;
  const long e = ox + lo * xs;
  float8 va[CLAI_COLV], vb[CLAI_COLV], vmu[CLAI_COLV];
  float ta[8], tb[8], tmu[8];
  const int ext = op == CLAI_R_MAX || op == CLAI_R_MIN, arg = op == CLAI_R_ARGMAX || op == CLAI_R_ARGMIN;
  const float sg = op == CLAI_R_MIN || op == CLAI_R_ARGMIN ? -1.0f : 1.0f;
  if (arg && xf16)
    clai_rc_arg_f16(x, e, m, xs, nv, nt, sg, va, vb, ta, tb);
  else if (arg)
    clai_rc_arg_f32(x, e, m, xs, nv, nt, sg, va, vb, ta, tb);
  else
    clai_rc_walk(x, e, m, xs, nv, nt, ext ? 1 : 0, sg, va, vb, ta, tb, vmu, tmu, xf16);
  if (op == CLAI_R_VAR) {
    /* the chunk's mean per column, then the squared deviations from it; the state is (mean, M2) */
    const float inv = m > 0 ? 1.0f / (float)m : 0.0f;
    for (int k = 0; k < nv; k++) vmu[k] = (va[k] - vb[k]) * inv;
    for (int k = 0; k < nt; k++) tmu[k] = (ta[k] - tb[k]) * inv;
    clai_rc_walk(x, e, m, xs, nv, nt, 2, 1.0f, va, vb, ta, tb, vmu, tmu, xf16);
    for (int k = 0; k < nv; k++) {
      vb[k] = va[k] - vb[k];
      va[k] = vmu[k];
    }
    for (int k = 0; k < nt; k++) {
      tb[k] = ta[k] - tb[k];
      ta[k] = tmu[k];
    }
  }
  for (int k = 0; k < cnt; k++) {
    float a, c;
    if (k < nv * 8) {
      float fa[8], fc[8];
      vstore8(va[k / 8], 0, fa);
      vstore8(vb[k / 8], 0, fc);
      a = fa[k % 8];
      c = fc[k % 8];
    } else {
      a = ta[k - nv * 8];
      c = tb[k - nv * 8];
    }
    if (ext) {
      a *= sg;
      c = 0.0f;
    }
    clai_rw_out(out, part, oo + k * os, p, r0 + k, nrows, nsplit, op, a, c, n, lo, corr, of16);
  }
}

/* ---- work-group variants (GPU-shaped; CLAI_ROWS=wg, the default on GPUs) --------------------------------
 * The same results and partial states as clai_reduce_rows / clai_reduce_cols, for every op and dtype.
 * clai_reduce_rows_wg: S = lanes work-items per (chunk, row) unit, enumerated as in clai_reduce_rows, several
 * units per work-group for short rows; lane k reads elements k, k + S, ... of the chunk, so neighbouring
 * work-items read neighbouring elements of a row of unit stride.
 * clai_reduce_cols_wg: for a strided reduced axis whose rows are neighbours in memory (as clai_reduce_cols):
 * a work-group takes a block of cw neighbouring rows ("columns" of the [reduced, w] matrix) of one chunk;
 * work-item (c, s) = (lid % cw, lid / cw) walks the reduced axis from element s in steps of L / cw, so at
 * every step the cw work-items of a slice read cw neighbouring addresses.
 * Each work-item keeps the state of its elements (a Kahan sum, an extreme with a NaN flag, or an argmax
 * pair; the variance is two-pass within the chunk: the sum, then the squared deviations from the chunk's
 * mean), and the states are combined in a fixed halving tree in local memory: the same bits on every run. */
#define CLAI_R_SQDEV 7 /* a work-item's part of the variance's second pass: Kahan sum of (x - mean)^2 */

/* The state (*a, *b) of elements base + j * xs, j = first, first + step, ... < m, for op (SUM, MAX, MIN,
 * ARGMAX, ARGMIN or SQDEV; MEAN counts as SUM). Arg ops keep the chunk-relative index as_float in *b. */
inline void clai_rw_part(__global const float *x, const long base, const long first, const long step, const long m,
                         const long xs, const int xf16, const int op, const float mean, float *a, float *b) {
  if (op == CLAI_R_MAX || op == CLAI_R_MIN) {
    const int mx = op == CLAI_R_MAX;
    float v = mx ? -INFINITY : INFINITY;
    int nan = 0;
    for (long j = first; j < m; j += step) {
      const float t = clai_r_ld(x, base + j * xs, xf16);
      v = mx ? fmax(v, t) : fmin(v, t);
      nan |= isnan(t);
    }
    *a = nan ? NAN : v;
    *b = 0.0f;
  } else if (op == CLAI_R_ARGMAX || op == CLAI_R_ARGMIN) {
    const float sg = op == CLAI_R_ARGMIN ? -1.0f : 1.0f;
    float bv = -INFINITY;
    int bi = INT_MAX; /* an empty state loses to every element */
    for (long j = first; j < m; j += step) {
      const float t = sg * clai_r_ld(x, base + j * xs, xf16);
      if (clai_r_better(t, (int)j, bv, bi)) {
        bv = t;
        bi = (int)j;
      }
    }
    *a = bv;
    *b = as_float(bi);
  } else {
    float s = 0.0f, c = 0.0f;
    for (long j = first; j < m; j += step) {
      const float t = clai_r_ld(x, base + j * xs, xf16);
      if (op == CLAI_R_SQDEV) {
        const float d = t - mean;
        clai_kahan(&s, &c, d * d);
      } else {
        clai_kahan(&s, &c, t);
      }
    }
    *a = s;
    *b = c;
  }
}

/* Combines the states at ra/rb[k] into those at [i] (sums keep their compensation). */
inline void clai_rw_combine(__local float *ra, __local float *rb, const int i, const int k, const int op) {
  switch (op) {
  case CLAI_R_MAX: ra[i] = isnan(ra[i]) || isnan(ra[k]) ? NAN : fmax(ra[i], ra[k]); break;
  case CLAI_R_MIN: ra[i] = isnan(ra[i]) || isnan(ra[k]) ? NAN : fmin(ra[i], ra[k]); break;
  case CLAI_R_ARGMAX:
  case CLAI_R_ARGMIN:
    if (clai_r_better(ra[k], as_int(rb[k]), ra[i], as_int(rb[i]))) {
      ra[i] = ra[k];
      rb[i] = rb[k];
    }
    break;
  default: { /* the sum so far is ra - rb; add the other's ra[k] - rb[k], compensated */
    float s = ra[i], c = rb[i];
    clai_kahan(&s, &c, ra[k]);
    clai_kahan(&s, &c, -rb[k]);
    ra[i] = s;
    rb[i] = c;
  } break;
  }
}

/* Combines the cnt (a power of two) states of work-items base + k * stride, k = lane < cnt, into every one
 * of them. Every work-item of the group must call it. */
inline void clai_rw_tree(__local float *ra, __local float *rb, const int base, const int stride, const int lane,
                         const int cnt, const int op, float *a, float *b) {
  barrier(CLK_LOCAL_MEM_FENCE); /* whoever read the previous results has done so */
  ra[base + lane * stride] = *a;
  rb[base + lane * stride] = *b;
  for (int st = cnt >> 1; st > 0; st >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lane < st) clai_rw_combine(ra, rb, base + lane * stride, base + (lane + st) * stride, op);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  *a = ra[base];
  *b = rb[base];
}

/* The finished state of one chunk of m elements starting at base: the work-item's share (first, step), then
 * the tree over its cnt partners; the variance's (mean, M2) takes two rounds. */
inline void clai_rw_chunk(__global const float *x, const long base, const int lane, const int cnt, const int tbase,
                          const int tstride, const long m, const long xs, const int xf16, const int op,
                          __local float *ra, __local float *rb, float *a, float *b) {
  const int first_op = op == CLAI_R_VAR || op == CLAI_R_MEAN ? CLAI_R_SUM : op;
  clai_rw_part(x, base, lane, cnt, m, xs, xf16, first_op, 0.0f, a, b);
  clai_rw_tree(ra, rb, tbase, tstride, lane, cnt, first_op, a, b);
  if (op != CLAI_R_VAR) return;
  const float mean = m > 0 ? (*a - *b) / (float)m : 0.0f;
  clai_rw_part(x, base, lane, cnt, m, xs, xf16, CLAI_R_SQDEV, mean, a, b);
  clai_rw_tree(ra, rb, tbase, tstride, lane, cnt, CLAI_R_SUM, a, b);
  *b = *a - *b;
  *a = mean;
}

#define CLAI_RW_LOCAL 256
__kernel void clai_reduce_rows_wg(__global float *out, __global const float *x, __global float *part,
                                  CLAI_INDEX_ARGS(ix), const long n, const long xs, const long chunk,
                                  const int nsplit, const int op, const int corr, const int xf16, const int of16,
                                  const int lanes) {
  __local float ra[CLAI_RW_LOCAL], rb[CLAI_RW_LOCAL];
  const long nrows = CLAI_IX_NUMEL(ix);
  if (lanes <= 0 || nrows == 0 || nsplit <= 0) return; /* the whole group leaves together */
  const int S = lanes, lid = (int)get_local_id(0), sub = lid / S, lane = lid - sub * S;
  const long u = (long)get_group_id(0) * ((int)get_local_size(0) / S) + sub;
  const int live = u < nrows * nsplit;
  long p = 0, r = 0, oo = 0, ox = 0, unused;
  if (live) {
    p = u / nrows;
    r = u - p * nrows;
    CLAI_OFFSETS(ix, r, &oo, &ox, &unused);
  }
  const long lo = p * chunk, hi = min(n, lo + chunk), m = live && hi > lo ? hi - lo : 0;
  float a, b;
  clai_rw_chunk(x, ox + lo * xs, lane, S, sub * S, 1, m, xs, xf16, op, ra, rb, &a, &b);
  if (live && lane == 0) clai_rw_out(out, part, oo, p, r, nrows, nsplit, op, a, b, n, lo, corr, of16);
}

__kernel void clai_reduce_cols_wg(__global float *out, __global const float *x, __global float *part,
                                  CLAI_INDEX_ARGS(ix), const long n, const long xs, const long chunk,
                                  const int nsplit, const int op, const int corr, const int xf16, const int of16,
                                  const int cw) {
  __local float ra[CLAI_RW_LOCAL], rb[CLAI_RW_LOCAL];
  const long nrows = CLAI_IX_NUMEL(ix);
  if (cw <= 0 || nrows == 0 || nsplit <= 0) return;
  const int lid = (int)get_local_id(0), RS = (int)get_local_size(0) / cw, s = lid / cw, c = lid - s * cw;
  const long w = CLAI_IX_SHAPE_IN(ix), nb = (w + cw - 1) / cw, nblk = nrows / w * nb, g = get_group_id(0);
  if (g >= nblk * nsplit) return; /* the whole group leaves together */
  const long p = g / nblk, bq = g - p * nblk, q = bq / nb, col = (bq - q * nb) * cw + c, r = q * w + col;
  const int live = col < w && s < RS;
  long oo = 0, ox = 0, unused;
  if (live) CLAI_OFFSETS(ix, r, &oo, &ox, &unused);
  const long lo = p * chunk, hi = min(n, lo + chunk), m = live && hi > lo ? hi - lo : 0;
  float a, b;
  clai_rw_chunk(x, ox + lo * xs, s, RS, c, cw, m, xs, xf16, op, ra, rb, &a, &b);
  if (live && s == 0) clai_rw_out(out, part, oo, p, r, nrows, nsplit, op, a, b, n, lo, corr, of16);
}
