/* norm.cl - row-wise ops along the last axis: softmax, log_softmax, layernorm, rmsnorm.
 *
 * Layout: a row is the last axis, n elements, x[ox + j * xs] and out[oo + j * os]; the rows are enumerated
 * by a clai_index over the other dims (operand 0 the output, operand 1 x), in row-major order, so row r of
 * attention scores [..., Lq, Lk] is query r % Lq. Work mapping: one work-item per row, which is the
 * CPU-shaped mapping (POCL runs a work-group's items in a loop on one core, and the row stays in L1
 * between the passes); rows that are contiguous f32 in both x and out are read eight elements at a
 * time, everything else (strided views, f16 storage, chosen by the run-time flags xf16/of16 or dt) goes
 * through a scalar path that computes the same thing.
 *
 * softmax: with g = sign(scale) (1 or -1) and m = max(g * x) over the unmasked elements, t = (g * x - m) *
 * |scale| (= scale * x - max(scale * x)), e = exp(t), out = e / sum(e); log_softmax: out = t - log(sum(e)),
 * so the large parts cancel exactly before anything is rounded (x - (m + log(sum)) lost 2.4e-4 at |x| ~ 1e4,
 * issue 10). g * x is exact, so the maximum and every subtraction see the same value however the compiler
 * contracts (OpenCL C contracts a * b + c into an fma by default, section 6.10 of the 1.2 spec: taking
 * the maximum over rounded products x * scale and subtracting it from an fma of x * scale - m shifted the
 * exponents by the products' rounding error, which made rows with |scale * x| ~ 1e10 or -1e30 masks NaN),
 * and the scale multiplies a difference that is <= 0, so scale * x beyond the float range does no harm.
 * Causal mask (flag 2): element j of query i is masked when j > i + (n - lq); masked elements give 0
 * (softmax) and -inf (log_softmax). A row with nothing left to weigh (fully masked, or every unmasked g * x
 * -inf) gives all 0 / all -inf instead of PyTorch's NaN; a NaN, or a g * x of +inf (through inf - inf),
 * makes its row NaN.
 *
 * layernorm: out = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + eps), var the population
 * variance computed in two passes; rmsnorm: out = x * rstd * gamma with rstd = 1 / sqrt(mean(x^2) + eps).
 * Optional per-row mean and rstd go to f32 buffers (flags). Statistics are accumulated in f32. */

#define CLAI_SM_LOG 1
#define CLAI_SM_CAUSAL 2

inline float clai_n_ld(__global const float *p, const long i, const int f16) {
  return f16 ? vload_half(i, (__global const half *)p) : p[i];
}

inline void clai_n_st(__global float *p, const long i, const float v, const int f16) {
  if (f16)
    vstore_half(v, i, (__global half *)p);
  else
    p[i] = v;
}

inline float clai_hmax8(const float8 v) {
  const float4 a = fmax(v.lo, v.hi);
  const float2 b = fmax(a.lo, a.hi);
  return fmax(b.lo, b.hi);
}

inline float clai_hsum8(const float8 v) {
  const float4 a = v.lo + v.hi;
  const float2 b = a.lo + a.hi;
  return b.lo + b.hi;
}

/* exp(x) for x <= 0 (the shifted scores of a softmax), vectorised: x = n ln2 + g with n the nearest
 * integer to x / ln2 (found by adding 1.5 * 2^23, which leaves n in the low mantissa bits), g from a
 * Cody-Waite split of ln2, e^g from its degree-7 Taylor polynomial (|g| <= ln2 / 2, truncation below 1e-8
 * relative), times 2^n built in the exponent bits. About 2 ulp; x < -87 (results below about 2^-125)
 * gives 0, NaN gives NaN. Only operators, no library calls: POCL's rint / convert / select on vectors can
 * end up as scalar loops, which made this several times slower. */
inline float8 clai_exp_neg8(const float8 x) {
  /* keeps n in range; a comparison (not fmax, whose NaN rules cost two more instructions) lets NaN through,
   * and NaN then flows through every step below into the result */
  const float8 xc = x < (float8)(-88.0f) ? (float8)(-88.0f) : x;
  const float8 big = xc * 1.44269504088896341f + 12582912.0f;
  const float8 n = big - 12582912.0f;
  const float8 g = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float8 p = (float8)(1.0f / 5040.0f);
  p = p * g + 1.0f / 720.0f;
  p = p * g + 1.0f / 120.0f;
  p = p * g + 1.0f / 24.0f;
  p = p * g + 1.0f / 6.0f;
  p = p * g + 0.5f;
  p = p * g + 1.0f;
  p = p * g + 1.0f;
  const int8 bits = (as_int8(big) - 0x4B400000 + 127) << 23;
  const float8 e = p * as_float8(bits);
  /* x < -87: 0 (the mask clears every bit) */
  return as_float8(as_int8(e) & ~(x < (float8)(-87.0f)));
}

/* The maximum came out -inf: either nothing is left to weigh (every element masked or -inf; then *m = 0
 * and the row becomes 0 / -inf) or every element is NaN (the maximum skips NaN; then the row is NaN). */
inline float clai_sm_empty(__global const float *x, const long ox, const long xs, const int xf16, const long m,
                           long *mout) {
  for (long j = 0; j < m; j++)
    if (isnan(clai_n_ld(x, ox + j * xs, xf16))) return NAN;
  *mout = 0;
  return -INFINITY;
}

__kernel void clai_softmax(__global float *out, __global const float *x, CLAI_INDEX_ARGS(ix), const long n,
                           const long xs, const long os, const long lq, const float scale, const int flags,
                           const int xf16, const int of16) {
  const long r = get_global_id(0);
  if (r >= CLAI_IX_NUMEL(ix)) return;
  long oo, ox, unused;
  CLAI_OFFSETS(ix, r, &oo, &ox, &unused);
  const int lg = flags & CLAI_SM_LOG;
  long m = n; /* unmasked elements: [0, m) */
  if (flags & CLAI_SM_CAUSAL) m = clamp(r % lq + (n - lq) + 1, 0L, n);
  const float masked = lg ? -INFINITY : 0.0f;
  __global const float *xr = x + ox;
  __global float *orow = out + oo;

  /* g * x is exact (g = +-1) and t = (g * x - m) * |scale| has no product to contract with the subtraction */
  const float g = scale < 0.0f ? -1.0f : 1.0f, as = fabs(scale);
  if (xs == 1 && os == 1 && !xf16 && !of16) {
    float8 vm = (float8)(-INFINITY), vm1 = vm, vm2 = vm, vm3 = vm;
    long j = 0;
    /* NaN is skipped here (v > vm is false) and makes its row NaN through exp; four chains, for speed */
    for (; j + 32 <= m; j += 32) {
      const float8 v0 = CLAI_LD8(xr + j) * g, v1 = CLAI_LD8(xr + j + 8) * g;
      const float8 v2 = CLAI_LD8(xr + j + 16) * g, v3 = CLAI_LD8(xr + j + 24) * g;
      vm = v0 > vm ? v0 : vm;
      vm1 = v1 > vm1 ? v1 : vm1;
      vm2 = v2 > vm2 ? v2 : vm2;
      vm3 = v3 > vm3 ? v3 : vm3;
    }
    for (; j + 8 <= m; j += 8) {
      const float8 v = CLAI_LD8(xr + j) * g;
      vm = v > vm ? v : vm;
    }
    vm = vm1 > vm ? vm1 : vm;
    vm = vm2 > vm ? vm2 : vm;
    vm = vm3 > vm ? vm3 : vm;
    float mx = clai_hmax8(vm);
    for (; j < m; j++) mx = fmax(mx, xr[j] * g);
    if (mx == -INFINITY) mx = clai_sm_empty(x, ox, 1, 0, m, &m);
    /* the sum in blocks of 2048 elements (256 a lane), added up at the end of each: one running f32 sum a
     * lane was 3.7e-4 off over a row of 600000 (tests/test-norm.c, test_long_rows) */
    float8 vs = (float8)(0.0f), vb = (float8)(0.0f);
    if (lg) {
      for (j = 0; j + 8 <= m; j += 8) {
        vb += clai_exp_neg8((CLAI_LD8(xr + j) * g - mx) * as);
        if ((j & 2047) == 2040) vs += vb, vb = (float8)(0.0f);
      }
    } else {
      for (j = 0; j + 8 <= m; j += 8) {
        const float8 e = clai_exp_neg8((CLAI_LD8(xr + j) * g - mx) * as);
        vb += e;
        if ((j & 2047) == 2040) vs += vb, vb = (float8)(0.0f);
        vstore8(e, 0, orow + j);
      }
    }
    float s = clai_hsum8(vs + vb);
    for (; j < m; j++) {
      const float e = exp((xr[j] * g - mx) * as);
      s += e;
      if (!lg) orow[j] = e;
    }
    if (lg) {
      const float ls = log(s);
      for (j = 0; j + 8 <= m; j += 8) vstore8((CLAI_LD8(xr + j) * g - mx) * as - ls, 0, orow + j);
      for (; j < m; j++) orow[j] = (xr[j] * g - mx) * as - ls;
    } else {
      const float inv = 1.0f / s;
      for (j = 0; j + 8 <= m; j += 8) vstore8(CLAI_LD8(orow + j) * inv, 0, orow + j);
      for (; j < m; j++) orow[j] *= inv;
    }
    for (j = m; j < n; j++) orow[j] = masked;
    return;
  }

  float mx = -INFINITY;
  for (long j = 0; j < m; j++) mx = fmax(mx, clai_n_ld(x, ox + j * xs, xf16) * g);
  if (mx == -INFINITY) mx = clai_sm_empty(x, ox, xs, xf16, m, &m);
  float s = 0.0f;
  for (long j = 0; j < m; j++) s += exp((clai_n_ld(x, ox + j * xs, xf16) * g - mx) * as);
  const float ls = log(s), inv = 1.0f / s;
  for (long j = 0; j < m; j++) {
    const float t = (clai_n_ld(x, ox + j * xs, xf16) * g - mx) * as;
    clai_n_st(out, oo + j * os, lg ? t - ls : exp(t) * inv, of16);
  }
  for (long j = m; j < n; j++) clai_n_st(out, oo + j * os, masked, of16);
}

#define CLAI_LN_RMS 1
#define CLAI_LN_GAMMA 2
#define CLAI_LN_BETA 4
#define CLAI_LN_MEAN 8
#define CLAI_LN_RSTD 16
#define CLAI_LN_NT 32 /* non-temporal stores of out (contiguous f32 rows; where CLAI_NT, cl/common.cl) */

/* dt bits: 1 x is f16, 2 out is f16, 4 gamma is f16, 8 beta is f16. */
__kernel void clai_layernorm(__global float *out, __global const float *x, __global const float *gamma,
                             __global const float *beta, __global float *mean_out, __global float *rstd_out,
                             CLAI_INDEX_ARGS(ix), const long n, const long xs, const long os, const long gs,
                             const long bs, const long go, const long bo, const long mo, const long ro,
                             const float eps, const int flags, const int dt) {
  const long r = get_global_id(0);
  if (r >= CLAI_IX_NUMEL(ix)) return;
  long oo, ox, unused;
  CLAI_OFFSETS(ix, r, &oo, &ox, &unused);
  const int rms = flags & CLAI_LN_RMS, hg = flags & CLAI_LN_GAMMA, hb = flags & CLAI_LN_BETA;
  const int xf16 = dt & 1, of16 = dt & 2, gf16 = dt & 4, bf16 = dt & 8;
  const int vec = xs == 1 && os == 1 && dt == 0 && (!hg || gs == 1) && (!hb || bs == 1);
  __global const float *xr = x + ox;
  __global float *orow = out + oo;
  float mean = 0.0f, var;

  if (vec) {
    long j;
    /* four accumulators, so that the passes are not bound by the latency of one chain of adds */
    if (!rms) {
      float8 v0 = (float8)(0.0f), v1 = v0, v2 = v0, v3 = v0;
      for (j = 0; j + 32 <= n; j += 32) {
        v0 += CLAI_LD8(xr + j);
        v1 += CLAI_LD8(xr + j + 8);
        v2 += CLAI_LD8(xr + j + 16);
        v3 += CLAI_LD8(xr + j + 24);
      }
      for (; j + 8 <= n; j += 8) v0 += CLAI_LD8(xr + j);
      float s = clai_hsum8((v0 + v1) + (v2 + v3));
      for (; j < n; j++) s += xr[j];
      mean = s / (float)n;
    }
    float8 v0 = (float8)(0.0f), v1 = v0, v2 = v0, v3 = v0;
    for (j = 0; j + 32 <= n; j += 32) {
      const float8 d0 = CLAI_LD8(xr + j) - mean, d1 = CLAI_LD8(xr + j + 8) - mean;
      const float8 d2 = CLAI_LD8(xr + j + 16) - mean, d3 = CLAI_LD8(xr + j + 24) - mean;
      v0 += d0 * d0;
      v1 += d1 * d1;
      v2 += d2 * d2;
      v3 += d3 * d3;
    }
    for (; j + 8 <= n; j += 8) {
      const float8 d = CLAI_LD8(xr + j) - mean;
      v0 += d * d;
    }
    float s = clai_hsum8((v0 + v1) + (v2 + v3));
    for (; j < n; j++) {
      const float d = xr[j] - mean;
      s += d * d;
    }
    var = s / (float)n;
    const float rstd = 1.0f / sqrt(var + eps);
    __global const float *gr = gamma + go, *br = beta + bo;
    j = 0;
#if CLAI_NT
    /* CLAI_LN_NT (the host's choice: x and out together exceed the device's cache, so out would leave it
     * anyway): non-temporal stores, which do not read each line of out before writing it (a third of the
     * memory traffic). Scalar stores up to a 32-byte boundary, then whole aligned vectors. */
    if (flags & CLAI_LN_NT) {
      for (; j < n && (((ulong)(orow + j)) & 31) != 0; j++) {
        float y = (xr[j] - mean) * rstd;
        if (hg) y *= gr[j];
        if (hb) y += br[j];
        orow[j] = y;
      }
      for (; j + 8 <= n; j += 8) {
        float8 y = (CLAI_LD8(xr + j) - mean) * rstd;
        if (hg) y *= CLAI_LD8(gr + j);
        if (hb) y += CLAI_LD8(br + j);
        __builtin_nontemporal_store(y, (__global float8 *)(orow + j));
      }
      __builtin_ia32_sfence(); /* the stores are weakly ordered: visible before the kernel is seen to end */
    } else
#endif
    /* one loop per case (the compiler did not take the flags' tests out of the loop) */
    if (hg && hb)
      for (j = 0; j + 8 <= n; j += 8)
        vstore8((CLAI_LD8(xr + j) - mean) * rstd * CLAI_LD8(gr + j) + CLAI_LD8(br + j), 0, orow + j);
    else if (hg)
      for (j = 0; j + 8 <= n; j += 8) vstore8((CLAI_LD8(xr + j) - mean) * rstd * CLAI_LD8(gr + j), 0, orow + j);
    else if (hb)
      for (j = 0; j + 8 <= n; j += 8) vstore8((CLAI_LD8(xr + j) - mean) * rstd + CLAI_LD8(br + j), 0, orow + j);
    else
      for (j = 0; j + 8 <= n; j += 8) vstore8((CLAI_LD8(xr + j) - mean) * rstd, 0, orow + j);
    for (; j < n; j++) {
      float y = (xr[j] - mean) * rstd;
      if (hg) y *= gr[j];
      if (hb) y += br[j];
      orow[j] = y;
    }
    if (flags & CLAI_LN_MEAN) mean_out[mo + r] = mean;
    if (flags & CLAI_LN_RSTD) rstd_out[ro + r] = rstd;
    return;
  }

  if (!rms) {
    float s = 0.0f;
    for (long j = 0; j < n; j++) s += clai_n_ld(x, ox + j * xs, xf16);
    mean = s / (float)n;
  }
  float s = 0.0f;
  for (long j = 0; j < n; j++) {
    const float d = clai_n_ld(x, ox + j * xs, xf16) - mean;
    s += d * d;
  }
  var = s / (float)n;
  const float rstd = 1.0f / sqrt(var + eps);
  for (long j = 0; j < n; j++) {
    float y = (clai_n_ld(x, ox + j * xs, xf16) - mean) * rstd;
    if (hg) y *= clai_n_ld(gamma, go + j * gs, gf16);
    if (hb) y += clai_n_ld(beta, bo + j * bs, bf16);
    clai_n_st(out, oo + j * os, y, of16);
  }
  if (flags & CLAI_LN_MEAN) mean_out[mo + r] = mean;
  if (flags & CLAI_LN_RSTD) rstd_out[ro + r] = rstd;
}

/* ---- work-group-per-row variants (GPU-shaped; CLAI_ROWS=wg, the default on GPUs) -----------------------
 * The same results as clai_softmax / clai_layernorm, the same arguments plus `lanes`: S = lanes work-items
 * per row, several rows per work-group when the rows are short (see clai_wg_reduce2 in cl/common.cl). Each
 * pass is a strided loop over the row in which neighbouring lanes read neighbouring elements, and each
 * statistic (maximum, sum, mean, variance) is a per-lane partial combined in local memory. The softmax
 * scales as clai_softmax does: t = (g * x - max(g * x)) * |scale| with g = sign(scale), so no rounded
 * product x * scale enters the result; log_softmax is t - log(sum). */
#define CLAI_ROW_LANES_(lanes)                                                                           \
  const int S = (lanes), lid_ = (int)get_local_id(0), sub = lid_ / S, lane = lid_ - sub * S;          \
  const long r = (long)get_group_id(0) * ((int)get_local_size(0) / S) + sub

__kernel void clai_softmax_wg(__global float *out, __global const float *x, CLAI_INDEX_ARGS(ix), const long n,
                              const long xs, const long os, const long lq, const float scale, const int flags,
                              const int xf16, const int of16, const int lanes) {
  __local float red_a[CLAI_WG_MAX_LOCAL], red_b[CLAI_WG_MAX_LOCAL];
  if (lanes <= 0 || CLAI_IX_NUMEL(ix) == 0) return; /* the whole group leaves together */
  CLAI_ROW_LANES_(lanes);
  const int live = r < CLAI_IX_NUMEL(ix), lg = flags & CLAI_SM_LOG;
  long oo = 0, ox = 0, unused;
  if (live) CLAI_OFFSETS(ix, r, &oo, &ox, &unused);
  long m = live ? n : 0; /* unmasked elements: [0, m) */
  if (live && (flags & CLAI_SM_CAUSAL)) m = clamp(r % lq + (n - lq) + 1, 0L, n);
  /* as clai_softmax: the maximum of g * x (exact, g = +-1), then t = (g * x - m) * |scale| */
  const float g = scale < 0.0f ? -1.0f : 1.0f, as = fabs(scale);
  float mx = -INFINITY, has_nan = 0.0f;
  for (long j = lane; j < m; j += S) {
    const float t = clai_n_ld(x, ox + j * xs, xf16) * g;
    mx = fmax(mx, t); /* NaN is skipped here and makes its row NaN through exp */
    if (isnan(t)) has_nan = 1.0f;
  }
  clai_wg_reduce2(red_a, red_b, sub * S, lane, S, CLAI_WG_MAX, &mx, &has_nan);
  /* nothing to weigh: the row is 0 / -inf; only NaN: the row is NaN (as clai_sm_empty) */
  if (mx == -INFINITY) {
    if (has_nan != 0.0f)
      mx = NAN;
    else
      m = 0;
  }
  float s = 0.0f, unused_b = 0.0f;
  for (long j = lane; j < m; j += S) {
    const float d = (clai_n_ld(x, ox + j * xs, xf16) * g - mx) * as;
    s += exp(d);
  }
  clai_wg_reduce2(red_a, red_b, sub * S, lane, S, CLAI_WG_SUM, &s, &unused_b);
  const float ls = log(s), inv = 1.0f / s;
  for (long j = lane; j < m; j += S) {
    const float d = (clai_n_ld(x, ox + j * xs, xf16) * g - mx) * as;
    clai_n_st(out, oo + j * os, lg ? d - ls : exp(d) * inv, of16);
  }
  if (live)
    for (long j = m + lane; j < n; j += S) clai_n_st(out, oo + j * os, lg ? -INFINITY : 0.0f, of16);
}

/* dt bits as in clai_layernorm. */
__kernel void clai_layernorm_wg(__global float *out, __global const float *x, __global const float *gamma,
                                __global const float *beta, __global float *mean_out, __global float *rstd_out,
                                CLAI_INDEX_ARGS(ix), const long n, const long xs, const long os, const long gs,
                                const long bs, const long go, const long bo, const long mo, const long ro,
                                const float eps, const int flags, const int dt, const int lanes) {
  __local float red_a[CLAI_WG_MAX_LOCAL], red_b[CLAI_WG_MAX_LOCAL];
  if (lanes <= 0 || CLAI_IX_NUMEL(ix) == 0 || n == 0) return;
  CLAI_ROW_LANES_(lanes);
  const int live = r < CLAI_IX_NUMEL(ix);
  long oo = 0, ox = 0, unused;
  if (live) CLAI_OFFSETS(ix, r, &oo, &ox, &unused);
  const long m = live ? n : 0;
  const int rms = flags & CLAI_LN_RMS, hg = flags & CLAI_LN_GAMMA, hb = flags & CLAI_LN_BETA;
  const int xf16 = dt & 1, of16 = dt & 2, gf16 = dt & 4, bf16 = dt & 8;
  float mean = 0.0f, s = 0.0f, unused_b = 0.0f;
  if (!rms) { /* uniform across the group: every lane takes part in the reduction */
    for (long j = lane; j < m; j += S) s += clai_n_ld(x, ox + j * xs, xf16);
    clai_wg_reduce2(red_a, red_b, sub * S, lane, S, CLAI_WG_SUM, &s, &unused_b);
    mean = s / (float)n;
  }
  s = 0.0f;
  for (long j = lane; j < m; j += S) {
    const float d = clai_n_ld(x, ox + j * xs, xf16) - mean;
    s += d * d;
  }
  clai_wg_reduce2(red_a, red_b, sub * S, lane, S, CLAI_WG_SUM, &s, &unused_b);
  const float var = s / (float)n;
  const float rstd = 1.0f / sqrt(var + eps);
  for (long j = lane; j < m; j += S) {
    float y = (clai_n_ld(x, ox + j * xs, xf16) - mean) * rstd;
    if (hg) y *= clai_n_ld(gamma, go + j * gs, gf16);
    if (hb) y += clai_n_ld(beta, bo + j * bs, bf16);
    clai_n_st(out, oo + j * os, y, of16);
  }
  if (live && lane == 0) {
    if (flags & CLAI_LN_MEAN) mean_out[mo + r] = mean;
    if (flags & CLAI_LN_RSTD) rstd_out[ro + r] = rstd;
  }
}
