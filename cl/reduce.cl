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
 * Contiguous f32 rows are read with vload8 into eight independent lanes.
 *
 * Accuracy: sums are Kahan-compensated (per lane, then across lanes and chunks), so rows of 10^6 elements
 * sum to about f32 rounding; the variance is two-pass within a chunk (chunks are short enough to stay in
 * cache) and chunks are merged with Chan's formula. max/min propagate NaN; argmax/argmin treat NaN as the
 * extreme value (the first NaN wins) and return the first index of the extreme. Dtypes are run-time
 * flags (xf16, of16): f16 is storage only.
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

/* Reduces m elements starting at x[base] with stride xs into (*a, *b). For arg ops *b is the index
 * (relative to the chunk start) as_float. */
inline void clai_r_chunk(__global const float *x, const long base, const long m, const long xs, const int xf16,
                         const int op, float *a, float *b) {
  const int vec = xs == 1 && !xf16;
  __global const float *q = x + base;
  if (op == CLAI_R_SUM || op == CLAI_R_MEAN || op == CLAI_R_VAR) {
    float s = 0.0f, c = 0.0f;
    long j = 0;
    if (vec) {
      /* a Kahan step per block of 32: the step's four dependent adds would otherwise bound the speed */
      float8 vs = (float8)(0.0f), vc = (float8)(0.0f);
      for (; j + 32 <= m; j += 32) {
        const float8 blk = (vload8(0, q + j) + vload8(0, q + j + 8)) + (vload8(0, q + j + 16) + vload8(0, q + j + 24));
        const float8 y = blk - vc;
        const float8 t = vs + y;
        vc = clai_kcomp8(t, vs, y);
        vs = t;
      }
      for (; j + 8 <= m; j += 8) {
        const float8 y = vload8(0, q + j) - vc;
        const float8 t = vs + y;
        vc = clai_kcomp8(t, vs, y);
        vs = t;
      }
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
    if (vec) {
      float8 vs = (float8)(0.0f), vc = (float8)(0.0f);
      for (; j + 32 <= m; j += 32) {
        const float8 d0 = vload8(0, q + j) - mean, d1 = vload8(0, q + j + 8) - mean;
        const float8 d2 = vload8(0, q + j + 16) - mean, d3 = vload8(0, q + j + 24) - mean;
        const float8 y = (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3) - vc;
        const float8 t = vs + y;
        vc = clai_kcomp8(t, vs, y);
        vs = t;
      }
      for (; j + 8 <= m; j += 8) {
        const float8 d = vload8(0, q + j) - mean;
        const float8 y = d * d - vc;
        const float8 t = vs + y;
        vc = clai_kcomp8(t, vs, y);
        vs = t;
      }
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
 * stride in x, e.g. [R, C] summed over R, a bias gradient): a work-item takes 32 neighbouring rows as the
 * lanes of four float8 and walks the reduced axis, so every step loads two whole cache lines instead of
 * 32 strided scalars. Rows are enumerated as in clai_reduce_rows; w is the size of the innermost remaining
 * dim and nb = ceil(w / 32) the blocks per run of it. A block with fewer than 32 rows (the end of a run)
 * goes through the scalar path. f32 input; sum, mean, max, min and var. */
#define CLAI_COLS 32
#define CLAI_LD4(J)                                                                                       \
  const float8 v0 = vload8(0, q0 + (J) * xs), v1 = vload8(1, q0 + (J) * xs), v2 = vload8(2, q0 + (J) * xs), \
               v3 = vload8(3, q0 + (J) * xs)
#define CLAI_KAHAN_V(S, K, V)                                                                             \
  {                                                                                                       \
    const float8 y_ = (V) - K, t_ = S + y_;                                                               \
    K = clai_kcomp8(t_, S, y_);                                                                           \
    S = t_;                                                                                               \
  }

__kernel void clai_reduce_cols(__global float *out, __global const float *x, __global float *part,
                               CLAI_INDEX_ARGS(ix), const long n, const long xs, const long chunk,
                               const int nsplit, const int op, const int corr, const int of16) {
  const long nrows = CLAI_IX_NUMEL(ix);
  if (nrows == 0) return;
  const long w = CLAI_IX_SHAPE_IN(ix), nb = (w + CLAI_COLS - 1) / CLAI_COLS, nblk = nrows / w * nb;
  const long g = get_global_id(0);
  if (g >= nblk * nsplit) return;
  const long p = g / nblk, bq = g - p * nblk, q = bq / nb, b = bq - q * nb;
  const long r0 = q * w + b * CLAI_COLS, cnt = min((long)CLAI_COLS, w - b * CLAI_COLS), os = CLAI_IX_STRIDE_IN(ix, 0);
  long oo, ox, unused;
  CLAI_OFFSETS(ix, r0, &oo, &ox, &unused);
  const long lo = p * chunk, hi = min(n, lo + chunk), m = hi > lo ? hi - lo : 0;
  const long base = ox + lo * xs;
  float a[CLAI_COLS], c[CLAI_COLS];
  if (cnt < CLAI_COLS) {
    for (int k = 0; k < cnt; k++) clai_r_chunk(x, base + k, m, xs, 0, op, &a[k], &c[k]);
  } else {
    __global const float *q0 = x + base;
    float8 a0, a1, a2, a3, b0, b1, b2, b3;
    long j = 0;
    if (op == CLAI_R_MAX || op == CLAI_R_MIN) {
      const int mx = op == CLAI_R_MAX;
      a0 = a1 = a2 = a3 = (float8)(mx ? -INFINITY : INFINITY);
      int8 n0 = (int8)(0), n1 = n0, n2 = n0, n3 = n0;
      for (; j < m; j++) {
        CLAI_LD4(j);
        a0 = mx ? fmax(a0, v0) : fmin(a0, v0);
        a1 = mx ? fmax(a1, v1) : fmin(a1, v1);
        a2 = mx ? fmax(a2, v2) : fmin(a2, v2);
        a3 = mx ? fmax(a3, v3) : fmin(a3, v3);
        n0 |= v0 != v0;
        n1 |= v1 != v1;
        n2 |= v2 != v2;
        n3 |= v3 != v3;
      }
      a0 = n0 != 0 ? (float8)(NAN) : a0;
      a1 = n1 != 0 ? (float8)(NAN) : a1;
      a2 = n2 != 0 ? (float8)(NAN) : a2;
      a3 = n3 != 0 ? (float8)(NAN) : a3;
      b0 = b1 = b2 = b3 = (float8)(0.0f);
    } else {
      /* sums: a Kahan step per pair of rows of the reduced axis */
      a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = (float8)(0.0f);
      for (; j + 2 <= m; j += 2) {
        CLAI_LD4(j);
        const float8 u0 = vload8(0, q0 + (j + 1) * xs), u1 = vload8(1, q0 + (j + 1) * xs);
        const float8 u2 = vload8(2, q0 + (j + 1) * xs), u3 = vload8(3, q0 + (j + 1) * xs);
        CLAI_KAHAN_V(a0, b0, v0 + u0)
        CLAI_KAHAN_V(a1, b1, v1 + u1)
        CLAI_KAHAN_V(a2, b2, v2 + u2)
        CLAI_KAHAN_V(a3, b3, v3 + u3)
      }
      for (; j < m; j++) {
        CLAI_LD4(j);
        CLAI_KAHAN_V(a0, b0, v0)
        CLAI_KAHAN_V(a1, b1, v1)
        CLAI_KAHAN_V(a2, b2, v2)
        CLAI_KAHAN_V(a3, b3, v3)
      }
      if (op == CLAI_R_VAR) {
        const float inv = m > 0 ? 1.0f / (float)m : 0.0f;
        const float8 m0 = (a0 - b0) * inv, m1 = (a1 - b1) * inv, m2 = (a2 - b2) * inv, m3 = (a3 - b3) * inv;
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = (float8)(0.0f);
        for (j = 0; j < m; j++) {
          CLAI_LD4(j);
          const float8 d0 = v0 - m0, d1 = v1 - m1, d2 = v2 - m2, d3 = v3 - m3;
          CLAI_KAHAN_V(a0, b0, d0 * d0)
          CLAI_KAHAN_V(a1, b1, d1 * d1)
          CLAI_KAHAN_V(a2, b2, d2 * d2)
          CLAI_KAHAN_V(a3, b3, d3 * d3)
        }
        /* (mean, M2) per lane */
        b0 = a0 - b0;
        b1 = a1 - b1;
        b2 = a2 - b2;
        b3 = a3 - b3;
        a0 = m0;
        a1 = m1;
        a2 = m2;
        a3 = m3;
      }
    }
    vstore8(a0, 0, a);
    vstore8(a1, 1, a);
    vstore8(a2, 2, a);
    vstore8(a3, 3, a);
    vstore8(b0, 0, c);
    vstore8(b1, 1, c);
    vstore8(b2, 2, c);
    vstore8(b3, 3, c);
  }
  for (int k = 0; k < cnt; k++) {
    if (nsplit == 1) {
      clai_r_store(out, oo + k * os, op, a[k], c[k], n, corr, of16);
    } else {
      part[p * nrows + r0 + k] = a[k];
      part[nsplit * nrows + p * nrows + r0 + k] = c[k];
    }
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
