/* norm_backward.cl - gradients of the row-wise ops of norm.cl: softmax, log_softmax, layernorm, rmsnorm.
 *
 * Layout as in norm.cl: a row is the last axis, n elements; rows are enumerated by a clai_index over the
 * other dims (operand 0 grad_x, 1 grad_y, 2 the saved forward tensor: y for softmax, x for the norms), in
 * row-major order. One work-item per row (the CPU-shaped mapping the forward uses); rows that are
 * contiguous f32 in every operand take a vload8 path, everything else a scalar path computing the same.
 *
 * softmax:     gx = scale * y * (gy - sum(gy * y))          over the unmasked prefix [0, m), 0 past it
 * log_softmax: gx = scale * (gy - exp(y) * sum(gy))         (y the forward output), 0 past m
 * layernorm:   xh = (x - mean) * rstd, g = gy * gamma, gx = rstd * (g - mean(g) - xh * mean(g * xh))
 * rmsnorm:     xh = x * rstd,                          gx = rstd * (g - xh * mean(g * xh))
 * grad_gamma = sum over rows of gy * xh and grad_beta = sum of gy come from clai_norm_bwd_cols: one
 * work-item per (chunk of rows, column) sums its chunk in row order into a partial buffer; the host then
 * sums the partials over the chunks with clai_reduce (fixed order too), so results are bit-reproducible. */

#define CLAI_SMB_LOG 1
#define CLAI_SMB_CAUSAL 2
#define CLAI_LNB_RMS 1
#define CLAI_LNB_GAMMA 2
#define CLAI_LNB_BETA 4

inline float clai_nb_ld(__global const float *p, const long i, const int f16) {
  return f16 ? vload_half(i, (__global const half *)p) : p[i];
}

inline void clai_nb_st(__global float *p, const long i, const float v, const int f16) {
  if (f16)
    vstore_half(v, i, (__global half *)p);
  else
    p[i] = v;
}

inline float clai_nb_hsum8(const float8 v) {
  const float4 a = v.lo + v.hi;
  const float2 b = a.lo + a.hi;
  return b.lo + b.hi;
}

/* dt bits: 1 grad_x is f16, 2 grad_y is f16, 4 y is f16. */
__kernel void clai_softmax_bwd(__global float *gx, __global const float *gy, __global const float *y,
                               CLAI_INDEX_ARGS(ix), const long n, const long gxs, const long gys, const long ys,
                               const long lq, const float scale, const int flags, const int dt) {
  const long r = get_global_id(0);
  if (r >= CLAI_IX_NUMEL(ix)) return;
  long og, oy, oo;
  CLAI_OFFSETS(ix, r, &og, &oy, &oo);
  const int lg = flags & CLAI_SMB_LOG;
  long m = n;
  if (flags & CLAI_SMB_CAUSAL) m = clamp(r % lq + (n - lq) + 1, 0L, n);
  const int gxf = dt & 1, gyf = dt & 2, yf = dt & 4;

  if (gxs == 1 && gys == 1 && ys == 1 && dt == 0) {
    __global float *gxr = gx + og;
    __global const float *gyr = gy + oy, *yr = y + oo;
    float8 v = (float8)(0.0f);
    long j = 0;
    if (lg)
      for (; j + 8 <= m; j += 8) v += vload8(0, gyr + j);
    else
      for (; j + 8 <= m; j += 8) v += vload8(0, gyr + j) * vload8(0, yr + j);
    float s = clai_nb_hsum8(v);
    for (; j < m; j++) s += lg ? gyr[j] : gyr[j] * yr[j];
    if (lg) {
      for (j = 0; j + 8 <= m; j += 8)
        vstore8(scale * (vload8(0, gyr + j) - exp(vload8(0, yr + j)) * s), 0, gxr + j);
      for (; j < m; j++) gxr[j] = scale * (gyr[j] - exp(yr[j]) * s);
    } else {
      for (j = 0; j + 8 <= m; j += 8)
        vstore8(scale * vload8(0, yr + j) * (vload8(0, gyr + j) - s), 0, gxr + j);
      for (; j < m; j++) gxr[j] = scale * yr[j] * (gyr[j] - s);
    }
    for (j = m; j < n; j++) gxr[j] = 0.0f;
    return;
  }

  float s = 0.0f;
  for (long j = 0; j < m; j++) {
    const float g = clai_nb_ld(gy, oy + j * gys, gyf);
    s += lg ? g : g * clai_nb_ld(y, oo + j * ys, yf);
  }
  for (long j = 0; j < m; j++) {
    const float g = clai_nb_ld(gy, oy + j * gys, gyf), yv = clai_nb_ld(y, oo + j * ys, yf);
    clai_nb_st(gx, og + j * gxs, lg ? scale * (g - exp(yv) * s) : scale * yv * (g - s), gxf);
  }
  for (long j = m; j < n; j++) clai_nb_st(gx, og + j * gxs, 0.0f, gxf);
}

/* dt bits: 1 grad_x is f16, 2 grad_y is f16, 4 x is f16, 8 gamma is f16. mean (layernorm only) and rstd
 * are f32, contiguous, one per row at mo + r / ro + r. */
__kernel void clai_layernorm_bwd(__global float *gx, __global const float *gy, __global const float *x,
                                 __global const float *gamma, __global const float *mean,
                                 __global const float *rstd, CLAI_INDEX_ARGS(ix), const long n, const long gxs,
                                 const long gys, const long xs, const long gs, const long go, const long mo,
                                 const long ro, const int flags, const int dt) {
  const long r = get_global_id(0);
  if (r >= CLAI_IX_NUMEL(ix)) return;
  long og, oy, ox;
  CLAI_OFFSETS(ix, r, &og, &oy, &ox);
  const int rms = flags & CLAI_LNB_RMS, hg = flags & CLAI_LNB_GAMMA;
  const int gxf = dt & 1, gyf = dt & 2, xf = dt & 4, gmf = dt & 8;
  const float mu = rms ? 0.0f : mean[mo + r], rs = rstd[ro + r];
  const float inv_n = 1.0f / (float)n;

  if (gxs == 1 && gys == 1 && xs == 1 && dt == 0 && (!hg || gs == 1)) {
    __global float *gxr = gx + og;
    __global const float *gyr = gy + oy, *xr = x + ox, *gr = gamma + go;
    float8 va = (float8)(0.0f), vb = (float8)(0.0f);
    long j = 0;
    for (; j + 8 <= n; j += 8) {
      float8 g = vload8(0, gyr + j);
      if (hg) g *= vload8(0, gr + j);
      va += g;
      vb += g * ((vload8(0, xr + j) - mu) * rs);
    }
    float sa = clai_nb_hsum8(va), sb = clai_nb_hsum8(vb);
    for (; j < n; j++) {
      const float g = hg ? gyr[j] * gr[j] : gyr[j];
      sa += g;
      sb += g * ((xr[j] - mu) * rs);
    }
    const float ma = rms ? 0.0f : sa * inv_n, mb = sb * inv_n;
    for (j = 0; j + 8 <= n; j += 8) {
      float8 g = vload8(0, gyr + j);
      if (hg) g *= vload8(0, gr + j);
      vstore8(rs * (g - ma - (vload8(0, xr + j) - mu) * rs * mb), 0, gxr + j);
    }
    for (; j < n; j++) {
      const float g = hg ? gyr[j] * gr[j] : gyr[j];
      gxr[j] = rs * (g - ma - (xr[j] - mu) * rs * mb);
    }
    return;
  }

  float sa = 0.0f, sb = 0.0f;
  for (long j = 0; j < n; j++) {
    float g = clai_nb_ld(gy, oy + j * gys, gyf);
    if (hg) g *= clai_nb_ld(gamma, go + j * gs, gmf);
    sa += g;
    sb += g * ((clai_nb_ld(x, ox + j * xs, xf) - mu) * rs);
  }
  const float ma = rms ? 0.0f : sa * inv_n, mb = sb * inv_n;
  for (long j = 0; j < n; j++) {
    float g = clai_nb_ld(gy, oy + j * gys, gyf);
    if (hg) g *= clai_nb_ld(gamma, go + j * gs, gmf);
    const float xh = (clai_nb_ld(x, ox + j * xs, xf) - mu) * rs;
    clai_nb_st(gx, og + j * gxs, rs * (g - ma - xh * mb), gxf);
  }
}

/* Partial sums for grad_gamma / grad_beta: work-item (c, b) = c * nb + b sums rows [c * chunk, (c + 1) *
 * chunk) of columns [b * vw, b * vw + vw) in row order: pg[c * n + j] = sum gy * xh, pb[c * n + j] = sum gy
 * (flag BETA). vw is 8 (vload8 over contiguous f32 rows, merged row dims; the host checks) or 1, nb =
 * ceil(n / vw). ix: operand 1 grad_y, operand 2 x (operand 0 unused). dt bits: 2 grad_y is f16, 4 x is f16. */
__kernel void clai_norm_bwd_cols(__global float *pg, __global float *pb, __global const float *gy,
                                 __global const float *x, __global const float *mean, __global const float *rstd,
                                 CLAI_INDEX_ARGS(ix), const long n, const long chunk, const long vw, const long gys,
                                 const long xs, const long mo, const long ro, const int flags, const int dt) {
  const long id = get_global_id(0);
  if (n == 0 || chunk == 0 || vw == 0) return;
  const long nb = (n + vw - 1) / vw, c = id / nb, j0 = (id - c * nb) * vw, r0 = c * chunk;
  if (r0 >= CLAI_IX_NUMEL(ix)) return;
  const long r1 = min(r0 + chunk, CLAI_IX_NUMEL(ix));
  const int rms = flags & CLAI_LNB_RMS, hb = flags & CLAI_LNB_BETA, gyf = dt & 2, xf = dt & 4;
  if (vw == 8 && j0 + 8 <= n) {
    const long sy = CLAI_IX_STRIDE_IN(ix, 1), sx = CLAI_IX_STRIDE_IN(ix, 2);
    __global const float *gyr = gy + CLAI_IX_OFF(ix, 1) + r0 * sy + j0, *xr = x + CLAI_IX_OFF(ix, 2) + r0 * sx + j0;
    float8 sg = (float8)(0.0f), sb = (float8)(0.0f);
    for (long r = r0; r < r1; r++, gyr += sy, xr += sx) {
      const float8 g = vload8(0, gyr);
      const float mu = rms ? 0.0f : mean[mo + r];
      sg += g * ((vload8(0, xr) - mu) * rstd[ro + r]);
      sb += g;
    }
    vstore8(sg, 0, pg + c * n + j0);
    if (hb) vstore8(sb, 0, pb + c * n + j0);
    return;
  }
  for (long j = j0; j < min(j0 + vw, n); j++) {
    float sg = 0.0f, sb = 0.0f;
    for (long r = r0; r < r1; r++) {
      long unused, oy, ox;
      CLAI_OFFSETS(ix, r, &unused, &oy, &ox);
      const float g = clai_nb_ld(gy, oy + j * gys, gyf);
      const float mu = rms ? 0.0f : mean[mo + r];
      sg += g * ((clai_nb_ld(x, ox + j * xs, xf) - mu) * rstd[ro + r]);
      sb += g;
    }
    pg[c * n + j] = sg;
    if (hb) pb[c * n + j] = sb;
  }
}

/* ---- work-group-per-row variants (GPU-shaped; CLAI_ROWS=wg, the default on GPUs) -----------------------
 * The same results as clai_softmax_bwd / clai_layernorm_bwd, the same arguments plus `lanes`: S = lanes
 * work-items per row, several rows per work-group for short rows (clai_wg_reduce2 in cl/common.cl); the row
 * sums are per-lane partials over neighbouring elements, combined in local memory. */
#define CLAI_NB_LANES_(lanes)                                                                            \
  const int S = (lanes), lid_ = (int)get_local_id(0), sub = lid_ / S, lane = lid_ - sub * S;          \
  const long r = (long)get_group_id(0) * ((int)get_local_size(0) / S) + sub

__kernel void clai_softmax_bwd_wg(__global float *gx, __global const float *gy, __global const float *y,
                                  CLAI_INDEX_ARGS(ix), const long n, const long gxs, const long gys, const long ys,
                                  const long lq, const float scale, const int flags, const int dt, const int lanes) {
  __local float red_a[CLAI_WG_MAX_LOCAL], red_b[CLAI_WG_MAX_LOCAL];
  if (lanes <= 0 || CLAI_IX_NUMEL(ix) == 0) return;
  CLAI_NB_LANES_(lanes);
  const int live = r < CLAI_IX_NUMEL(ix), lg = flags & CLAI_SMB_LOG;
  long og = 0, oy = 0, oo = 0;
  if (live) CLAI_OFFSETS(ix, r, &og, &oy, &oo);
  long m = live ? n : 0;
  if (live && (flags & CLAI_SMB_CAUSAL)) m = clamp(r % lq + (n - lq) + 1, 0L, n);
  const int gxf = dt & 1, gyf = dt & 2, yf = dt & 4;
  float s = 0.0f, unused_b = 0.0f;
  for (long j = lane; j < m; j += S) {
    const float g = clai_nb_ld(gy, oy + j * gys, gyf);
    s += lg ? g : g * clai_nb_ld(y, oo + j * ys, yf);
  }
  clai_wg_reduce2(red_a, red_b, sub * S, lane, S, CLAI_WG_SUM, &s, &unused_b);
  for (long j = lane; j < m; j += S) {
    const float g = clai_nb_ld(gy, oy + j * gys, gyf), yv = clai_nb_ld(y, oo + j * ys, yf);
    clai_nb_st(gx, og + j * gxs, lg ? scale * (g - exp(yv) * s) : scale * yv * (g - s), gxf);
  }
  if (live)
    for (long j = m + lane; j < n; j += S) clai_nb_st(gx, og + j * gxs, 0.0f, gxf);
}

/* dt bits, mean and rstd as in clai_layernorm_bwd. */
__kernel void clai_layernorm_bwd_wg(__global float *gx, __global const float *gy, __global const float *x,
                                    __global const float *gamma, __global const float *mean,
                                    __global const float *rstd, CLAI_INDEX_ARGS(ix), const long n, const long gxs,
                                    const long gys, const long xs, const long gs, const long go, const long mo,
                                    const long ro, const int flags, const int dt, const int lanes) {
  __local float red_a[CLAI_WG_MAX_LOCAL], red_b[CLAI_WG_MAX_LOCAL];
  if (lanes <= 0 || CLAI_IX_NUMEL(ix) == 0 || n == 0) return;
  CLAI_NB_LANES_(lanes);
  const int live = r < CLAI_IX_NUMEL(ix);
  long og = 0, oy = 0, ox = 0;
  if (live) CLAI_OFFSETS(ix, r, &og, &oy, &ox);
  const long m = live ? n : 0;
  const int rms = flags & CLAI_LNB_RMS, hg = flags & CLAI_LNB_GAMMA;
  const int gxf = dt & 1, gyf = dt & 2, xf = dt & 4, gmf = dt & 8;
  const float mu = !live || rms ? 0.0f : mean[mo + r], rs = live ? rstd[ro + r] : 0.0f;
  const float inv_n = 1.0f / (float)n;
  float sa = 0.0f, sb = 0.0f;
  for (long j = lane; j < m; j += S) {
    float g = clai_nb_ld(gy, oy + j * gys, gyf);
    if (hg) g *= clai_nb_ld(gamma, go + j * gs, gmf);
    sa += g;
    sb += g * ((clai_nb_ld(x, ox + j * xs, xf) - mu) * rs);
  }
  clai_wg_reduce2(red_a, red_b, sub * S, lane, S, CLAI_WG_SUM, &sa, &sb);
  const float ma = rms ? 0.0f : sa * inv_n, mb = sb * inv_n;
  for (long j = lane; j < m; j += S) {
    float g = clai_nb_ld(gy, oy + j * gys, gyf);
    if (hg) g *= clai_nb_ld(gamma, go + j * gs, gmf);
    const float xh = (clai_nb_ld(x, ox + j * xs, xf) - mu) * rs;
    clai_nb_st(gx, og + j * gxs, rs * (g - ma - xh * mb), gxf);
  }
}
