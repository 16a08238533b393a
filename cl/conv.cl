/* conv.cl - 2-D convolution building blocks and pooling over NCHW tensors (host side: lib/op-conv.c).
 *
 * Layout: x is [N, C, H, W], a weight [O, C/groups, KH, KW], outputs [N, O or C, OH, OW]; every tensor
 * arrives as a buffer, an element offset and one element stride per dim, so any strided view works.
 * Geometry is int (the host checks every size against 2^31); element offsets are long.
 * Output position (oh, ow) reads input rows oh*sth - pt + kh*dh and columns ow*stw - pl + kw*dw; rows and
 * columns outside the input are the padding (zero for convolution, ignored for max pooling).
 *
 * Work mapping: POCL pays a fixed cost per work-item and per work-group, so every kernel gives a work-item
 * a whole row or plane and loops over it; with unit strides the inner loops are contiguous and vectorise.
 * The kernels are 2-D or 3-D with local sizes set in lib/program.c (create_kernels).
 * - clai_im2col_*: (n, r = (c, kh, kw)) per work-item: col[r][n*OH*OW + oh*OW + ow] = x[n][c][ih][iw], 0 in
 *   the padding. col is dense f32; with c = g*Cg + cg the rows of one group are contiguous.
 * - clai_conv_epilogue_*: (o, n) per work-item: out[n][o] = act(acc[o][n] + bias[o]) from the dense f32
 *   acc [O, nb, OH*OW] into any view of out.
 * - clai_conv_direct_*: (oh, o, n) per work-item, the whole convolution with bias and activation.
 * - clai_pool2d_*: (c, n) per work-item, the whole output plane: max (optionally with the argmax as
 *   ih*W + iw into an i32 view) or average pooling; 2x2 windows of stride 2 over unit-stride rows take
 *   a float8 path (4 outputs per step), which made the CNN's pooling 2.6 times faster on POCL.
 * - clai_global_avg_pool_*: one work-item per (n, c) plane.
 * Activations follow enum clai_activation: 0 none, 1 relu, 2 gelu (tanh form), 3 silu. */

inline float clai_conv_act(const int act, const float v) {
  switch (act) {
  case 1: return v < 0.0f ? 0.0f : v; /* NaN passes, as in clai_unary */
  /* the tanh-form GELU as x * sigmoid(2u), as in cl/elementwise.cl */
  case 2: return v / (1.0f + exp(-1.5957691216057308f * (v + 0.044715f * v * v * v)));
  case 3: return v / (1.0f + exp(-v));
  default: return v;
  }
}

#define CLAI_IM2COL(SFX, T, LD)                                                                                  \
  __kernel void clai_im2col_##SFX(__global float *col, __global const T *x, const long xoff, const long sxn,    \
                                  const long sxc, const long sxh, const long sxw, const int nb, const int C,    \
                                  const int H, const int W, const int KH, const int KW, const int OH,           \
                                  const int OW, const int sth, const int stw, const int pt, const int pl,       \
                                  const int dh, const int dw, const int rb) {                                   \
    /* dim 0: image n and band of rb output rows (rb = OH but on a device with a loop budget) */                \
    const int nbands = CLAI_NBANDS(OH, rb), n = get_global_id(0) / nbands, r = get_global_id(1);                 \
    if (n >= nb || r >= C * KH * KW) return;                                                                    \
    const int oh0 = get_global_id(0) % nbands * rb, oh1 = min(OH, oh0 + rb);                                    \
    const int kw = r % KW, t = r / KW, kh = t % KH, c = t / KH;                                                 \
    __global float *dst = col + ((long)r * nb + n) * OH * OW + (long)oh0 * OW;                                  \
    const long xp = xoff + n * sxn + c * sxc;                                                                   \
    const int shift = kw * dw - pl; /* iw = ow * stw + shift */                                                 \
    if (nbands == 1 && sth == 1 && stw == 1 && OH == H && OW == W && sxw == 1 && sxh == W) {                   \
      /* a "same" convolution of stride 1 over dense planes: the tap's column of col is the input plane       \
       * moved by a constant, so it is one long copy (POCL vectorises that; a short loop per row of 14 ran    \
       * at a third of the speed), rows outside the input are zero, and the |shift| columns per row that the \
       * move wraps into the neighbouring row are zeroed afterwards. Reads stay inside the plane. */          \
      const int P = H * W, move = (kh * dh - pt) * W + shift;                                                   \
      const int qlo = clamp((pt - kh * dh) * W, 0, P), qhi = clamp((H + pt - kh * dh) * W, qlo, P);             \
      const int clo = clamp(-move, qlo, qhi), chi = clamp(P - move, clo, qhi);                                  \
      const long base = xp + move; /* base + q >= xp for every q read */                                     \
      for (int q = 0; q < clo; q++) dst[q] = 0.0f;                                                              \
      for (int q = clo; q < chi; q++) dst[q] = LD(x, base + q);                                                 \
      for (int q = chi; q < P; q++) dst[q] = 0.0f;                                                              \
      const int nz = min(shift < 0 ? -shift : shift, W), z0 = shift < 0 ? 0 : W - nz;                         \
      for (int q = qlo; q < qhi; q += W)                                                                        \
        for (int j = 0; j < nz; j++) dst[q + z0 + j] = 0.0f;                                                    \
      return;                                                                                                   \
    }                                                                                                           \
    /* with unit strides the columns ow in [lo, hi) read the input, the rest is padding */                       \
    const int lo = clamp(-shift, 0, OW), hi = clamp(W - shift, lo, OW);                                         \
    const int unit = stw == 1 && sxw == 1;                                                                      \
    for (int oh = oh0; oh < oh1; oh++, dst += OW) {                                                             \
      const int ih = oh * sth - pt + kh * dh;                                                                   \
      if (ih < 0 || ih >= H) {                                                                                  \
        for (int ow = 0; ow < OW; ow++) dst[ow] = 0.0f;                                                         \
      } else if (unit) {                                                                                        \
        __global const T *src = x + xp + ih * sxh + shift;                                                      \
        for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;                                                         \
        for (int ow = lo; ow < hi; ow++) dst[ow] = LD(src, ow);                                                 \
        for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;                                                        \
      } else {                                                                                                  \
        const long xr = xp + ih * sxh;                                                                          \
        for (int ow = 0; ow < OW; ow++) {                                                                       \
          const int iw = ow * stw + shift;                                                                      \
          dst[ow] = iw >= 0 && iw < W ? LD(x, xr + iw * sxw) : 0.0f;                                            \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
  }
CLAI_IM2COL(f32, float, CLAI_LD_F32)
CLAI_IM2COL(f16, half, CLAI_LD_F16)

/* One output plane per work-item; the activation is a separate loop each so every loop vectorises. */
#define CLAI_CONV_EPI_LOOP(ST, EXPR)                                                                                \
  if (dense)                                                                                                    \
    for (int p = p0; p < p1; p++) {                                                                             \
      const float v = src[p] + b;                                                                               \
      ST(dst, p, EXPR);                                                                                         \
    }                                                                                                           \
  else                                                                                                          \
    for (int p = p0; p < p1; p++) {                                                                             \
      const int oh = p / OW, ow = p - oh * OW;                                                                  \
      const float v = src[p] + b;                                                                               \
      ST(dst, oh * soh + ow * sow, EXPR);                                                                       \
    }
#define CLAI_CONV_EPILOGUE(SFX, T, LD, ST)                                                                       \
  __kernel void clai_conv_epilogue_##SFX(__global T *out, __global const float *acc, __global const T *bias,    \
                                         const long ooff, const long son, const long soc, const long soh,        \
                                         const long sow, const long aoff, const long boff, const long sb,        \
                                         const int nb, const int O, const int OH, const int OW,                  \
                                         const int has_bias, const int act, const int rb) {                      \
    /* dim 1: image n and band of rb rows (rb = OH but on a device with a loop budget) */                       \
    const int nbands = CLAI_NBANDS(OH, rb), o = get_global_id(0), n = get_global_id(1) / nbands;                 \
    if (o >= O || n >= nb) return;                                                                              \
    const int P = OH * OW, p0 = get_global_id(1) % nbands * rb * OW, p1 = min(P, p0 + rb * OW);                 \
    const int dense = sow == 1 && soh == OW;                                                                    \
    __global const float *src = acc + aoff + ((long)o * nb + n) * P;                                            \
    __global T *dst = out + ooff + n * son + o * soc;                                                           \
    const float b = has_bias ? LD(bias, boff + o * sb) : 0.0f;                                                  \
    if (act == 1) {                                                                                             \
      CLAI_CONV_EPI_LOOP(ST, v < 0.0f ? 0.0f : v)                                                                   \
    } else if (act == 0) {                                                                                      \
      CLAI_CONV_EPI_LOOP(ST, v)                                                                                    \
    } else {                                                                                                    \
      CLAI_CONV_EPI_LOOP(ST, clai_conv_act(act, v))                                                                 \
    }                                                                                                           \
  }
CLAI_CONV_EPILOGUE(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_CONV_EPILOGUE(f16, half, CLAI_LD_F16, CLAI_ST_F16)

/* The direct convolution: one output row (n, o, oh) per work-item, in chunks of 64 columns accumulated in
 * private memory: for each tap (c, kh, kw) the columns whose input lies inside the image form one range,
 * and with unit strides the loop over it is a contiguous multiply-add that the compiler vectorises. */
#define CLAI_CONV_DIRECT(SFX, T, LD, ST)                                                                         \
  __kernel void clai_conv_direct_##SFX(__global T *out, __global const T *x, __global const T *w,              \
                                       __global const T *bias, const long xoff, const long sxn, const long sxc,  \
                                       const long sxh, const long sxw, const long woff, const long swo,          \
                                       const long swc, const long swh, const long sww, const long ooff,          \
                                       const long son, const long soc, const long soh, const long sow,           \
                                       const long boff, const long sb, const int N, const int C, const int H,    \
                                       const int W, const int O, const int KH, const int KW, const int OH,       \
                                       const int OW, const int sth, const int stw, const int pt, const int pl,   \
                                       const int dh, const int dw, const int groups, const int has_bias,         \
                                       const int act) {                                                          \
    const int oh = get_global_id(0), o = get_global_id(1), n = get_global_id(2);                                \
    if (oh >= OH || o >= O || n >= N) return;                                                                   \
    const int Og = O / groups, Cg = C / groups, g = o / Og;                                                     \
    const int unit = stw == 1 && sxw == 1;                                                                      \
    const float b = has_bias ? LD(bias, boff + (long)o * sb) : 0.0f;                                            \
    const long op = ooff + n * son + (long)o * soc + (long)oh * soh;                                            \
    for (int c0 = 0; c0 < OW; c0 += 64) {                                                                       \
      const int cn = min(64, OW - c0);                                                                          \
      float acc[64];                                                                                            \
      for (int q = 0; q < cn; q++) acc[q] = 0.0f;                                                                \
      for (int cg = 0; cg < Cg; cg++) {                                                                         \
        const long xc = xoff + n * sxn + (long)(g * Cg + cg) * sxc;                                             \
        const long wc = woff + (long)o * swo + (long)cg * swc;                                                  \
        for (int kh = 0; kh < KH; kh++) {                                                                       \
          const int ih = oh * sth - pt + kh * dh;                                                               \
          if (ih < 0 || ih >= H) continue;                                                                      \
          const long xr = xc + (long)ih * sxh;                                                                  \
          for (int kw = 0; kw < KW; kw++) {                                                                     \
            const float wv = LD(w, wc + (long)kh * swh + (long)kw * sww);                                       \
            const int shift = kw * dw - pl; /* iw = ow * stw + shift */                                         \
            if (unit) {                                                                                         \
              const int lo = clamp(-shift - c0, 0, cn), hi = clamp(W - shift - c0, lo, cn);                     \
              __global const T *src = x + xr + c0 + shift;                                                      \
              for (int q = lo; q < hi; q++) acc[q] = CLAI_FMA(wv, LD(src, q), acc[q]);                               \
            } else {                                                                                            \
              for (int q = 0; q < cn; q++) {                                                                    \
                const int iw = (c0 + q) * stw + shift;                                                          \
                if (iw >= 0 && iw < W) acc[q] = CLAI_FMA(wv, LD(x, xr + (long)iw * sxw), acc[q]);                    \
              }                                                                                                 \
            }                                                                                                   \
          }                                                                                                     \
        }                                                                                                       \
      }                                                                                                         \
      for (int q = 0; q < cn; q++) ST(out, op + (long)(c0 + q) * sow, clai_conv_act(act, acc[q] + b));          \
    }                                                                                                           \
  }
CLAI_CONV_DIRECT(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_CONV_DIRECT(f16, half, CLAI_LD_F16, CLAI_ST_F16)

/* mode: 0 max, 1 max writing the argmax, 2 average over the whole window (count_include_pad), 3 average
 * over the input elements of the window only. Padding is never larger than the window (checked by the
 * host), so every window holds at least one input element. */
#define CLAI_POOL2D(SFX, T, LD, ST, VLD8)                                                                             \
  __kernel void clai_pool2d_##SFX(__global T *out, __global int *idx, __global const T *x, const long xoff,     \
                                  const long sxn, const long sxc, const long sxh, const long sxw,                \
                                  const long ooff, const long son, const long soc, const long soh,               \
                                  const long sow, const long ioff, const long sidn, const long sic,              \
                                  const long sih, const long siw, const int N, const int C, const int H,        \
                                  const int W, const int OH, const int OW, const int KH, const int KW,           \
                                  const int sth, const int stw, const int pt, const int pl, const int mode,      \
                                  const int rb) {                                                                \
    /* dim 1: image n and band of rb output rows (rb = OH but on a device with a loop budget) */                \
    const int nbands = CLAI_NBANDS(OH, rb), c = get_global_id(0), n = get_global_id(1) / nbands;                 \
    if (c >= C || n >= N) return;                                                                               \
    const int oh0 = get_global_id(1) % nbands * rb, oh1 = min(OH, oh0 + rb);                                    \
    const long xp = xoff + n * sxn + (long)c * sxc;                                                             \
    const int fast = KH == 2 && KW == 2 && sth == 2 && stw == 2 && pt == 0 && pl == 0 && sxw == 1;            \
    for (int oh = oh0; oh < oh1; oh++) {                                                                        \
    const int h0 = oh * sth - pt, ha = max(h0, 0), hb = min(h0 + KH, H);                                        \
    const long op = ooff + n * son + (long)c * soc + (long)oh * soh;                                            \
    const long ip = ioff + n * sidn + (long)c * sic + (long)oh * sih;                                           \
    int ow = 0;                                                                                                 \
    if (fast && h0 + 2 <= H) {                                                                                  \
      /* 2x2 windows, stride 2, both rows inside: 4 outputs from two 8-wide loads, in the same order and   \
       * with the same NaN rule as the general loop below */                                                  \
      __global const T *r0 = x + xp + (long)h0 * sxh, *r1 = r0 + sxh;                                           \
      for (; 2 * ow + 8 <= W; ow += 4) {                                                                        \
        const float8 u = VLD8(0, r0 + 2 * ow), v = VLD8(0, r1 + 2 * ow);                                        \
        const int4 a0 = (int4)(h0 * W + 2 * ow) + (int4)(0, 2, 4, 6);                                          \
        const float4 c[4] = {u.even, u.odd, v.even, v.odd};                                                     \
        const int off[4] = {0, 1, W, W + 1};                                                                    \
        float4 best = c[0], sum = c[0];                                                                         \
        int4 arg = a0;                                                                                          \
        for (int q = 1; q < 4; q++) {                                                                           \
          const int4 t = isgreater(c[q], best) | (isnan(c[q]) & ~isnan(best));                                  \
          best = select(best, c[q], t);                                                                         \
          arg = select(arg, a0 + off[q], t);                                                                    \
          sum += c[q];                                                                                          \
        }                                                                                                       \
        float r[4];                                                                                             \
        int ri[4];                                                                                              \
        vstore4(mode >= 2 ? sum / 4.0f : best, 0, r);                                                           \
        vstore4(arg, 0, ri);                                                                                    \
        for (int q = 0; q < 4; q++) {                                                                           \
          ST(out, op + (long)(ow + q) * sow, r[q]);                                                             \
          if (mode == 1) idx[ip + (long)(ow + q) * siw] = ri[q];                                                \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
    for (; ow < OW; ow++) {                                                                                     \
      const int w0 = ow * stw - pl, wa = max(w0, 0), wb = min(w0 + KW, W);                                      \
      float best = -INFINITY, sum = 0.0f;                                                                       \
      int arg = ha * W + wa;                                                                                    \
      for (int ih = ha; ih < hb; ih++)                                                                          \
        for (int iw = wa; iw < wb; iw++) {                                                                      \
          const float v = LD(x, xp + (long)ih * sxh + (long)iw * sxw);                                          \
          sum += v;                                                                                             \
          /* NaN wins and stays, like a max that propagates NaN; selects, not branches, so that the    \
           * work-items of a group (planes of one size) run in lockstep and vectorise */                    \
          const int better = v > best || (isnan(v) && !isnan(best));                                            \
          best = better ? v : best;                                                                             \
          arg = better ? ih * W + iw : arg;                                                                     \
        }                                                                                                       \
      float v = best;                                                                                           \
      if (mode == 2) v = sum / (float)(KH * KW);                                                                \
      if (mode == 3) v = sum / (float)((hb - ha) * (wb - wa));                                                  \
      ST(out, op + (long)ow * sow, v);                                                                          \
      if (mode == 1) idx[ip + (long)ow * siw] = arg;                                                            \
    }                                                                                                           \
    }                                                                                                           \
  }
CLAI_POOL2D(f32, float, CLAI_LD_F32, CLAI_ST_F32, vload8)
CLAI_POOL2D(f16, half, CLAI_LD_F16, CLAI_ST_F16, vload_half8)

#define CLAI_GAP(SFX, T, LD, ST)                                                                                 \
  __kernel void clai_global_avg_pool_##SFX(__global T *out, __global const T *x, const long xoff,               \
                                           const long sxn, const long sxc, const long sxh, const long sxw,       \
                                           const long ooff, const long son, const long soc, const int N,         \
                                           const int C, const int H, const int W) {                              \
    const long i = get_global_id(0);                                                                            \
    if (i >= (long)N * C) return;                                                                               \
    const long n = i / C;                                                                                       \
    const int c = (int)(i - n * C);                                                                             \
    const long xp = xoff + n * sxn + (long)c * sxc;                                                             \
    float sum = 0.0f;                                                                                           \
    for (int ih = 0; ih < H; ih++) {                                                                            \
      float row = 0.0f;                                                                                         \
      for (int iw = 0; iw < W; iw++) row += LD(x, xp + (long)ih * sxh + (long)iw * sxw);                        \
      sum += row;                                                                                               \
    }                                                                                                           \
    ST(out, ooff + n * son + (long)c * soc, sum / (float)((long)H * W));                                        \
  }
CLAI_GAP(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_GAP(f16, half, CLAI_LD_F16, CLAI_ST_F16)
