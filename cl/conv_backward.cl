/* conv_backward.cl - gradients of 2-D convolution and pooling over NCHW tensors (host side:
 * lib/op-conv-backward.c; the forward kernels are in cl/conv.cl).
 *
 * Layout and geometry as in cl/conv.cl: x / grad_x [N, C, H, W], w / grad_w [O, C/groups, KH, KW],
 * grad_out [N, O or C, OH, OW], each as buffer + element offset + one stride per dim; sizes are int (the
 * host checks them against 2^31), element offsets long. Output (oh, ow) reads input row
 * ih = oh*sth - pt + kh*dh and column iw = ow*stw - pl + kw*dw.
 *
 * Every kernel is a gather: each work-item owns the elements it writes and sums what reaches them in a
 * fixed order, so there are no atomics and the results are the same bits on every run.
 * - clai_col2im_*: (ih, c, n) per work-item, one row of grad_x: the sum of the entries of the dense f32
 *   column buffer col [C*KH*KW, nb*OH*OW] (im2col's layout: rows (c, kh, kw), columns (n, oh, ow)) that
 *   im2col would have taken
 *   from each element of the row. Rows go in chunks of 64 columns held in private memory; with stride 1
 *   every tap adds a contiguous run of a col row, which vectorises.
 * - clai_conv_bwd_data_*: (ih, c, n) per work-item, the same loop with w * grad_out in place of col: the
 *   direct route for groups with few output channels (depthwise), as clai_conv_direct_* in the forward.
 * - clai_conv_bwd_weight_*: one work-item per weight element (o, cg, kh, kw): the sum over n, oh, ow of
 *   grad_out * x (the direct route of the weight gradient).
 * - clai_conv_bwd_bias_*: one work-item per output channel: the sum of grad_out over n, oh, ow.
 * - clai_pool2d_bwd_*: (ih, c, n) per work-item, one row of grad_x: the sum over the pooling windows that
 *   contain each element of grad_out / divisor (average) or of grad_out where the stored argmax is this
 *   element (max). Overlapping windows (stride < kernel) simply contribute several terms. */

#define CLAI_CONV_BWD_CHUNK 64

/* The accumulation loop shared by col2im and the direct data gradient: for the taps (kh, kw) whose
 * output row oh exists, acc[q] += WV * SRC(ow) for the columns c0 + q of the chunk that tap kw reaches
 * at output column ow. Expects ih, c0, cn, acc, KH, KW, OH, OW, sth, stw, pt, pl, dh, dw in scope;
 * ROW(kh, kw, oh) sets up the source of the tap (a pointer or an offset). */
#define CLAI_BWD_TAPS(ROW, WV, UNIT_SRC, SRC, UNIT)                                                              \
  for (int kh = 0; kh < KH; kh++) {                                                                          \
    const int t = ih + pt - kh * dh;                                                                         \
    if (t < 0) break; /* t only falls as kh grows */                                                         \
    if (t % sth != 0) continue;                                                                              \
    const int oh = t / sth;                                                                                  \
    if (oh >= OH) continue;                                                                                  \
    for (int kw = 0; kw < KW; kw++) {                                                                        \
      ROW(kh, kw, oh);                                                                                       \
      const float wv = WV;                                                                                   \
      const int u0 = pl - kw * dw; /* ow * stw = iw + u0 */                                                  \
      if (UNIT) {                                                                                            \
        const int lo = clamp(-u0 - c0, 0, cn), hi = clamp(OW - u0 - c0, lo, cn);                             \
        for (int q = lo; q < hi; q++) acc[q] = CLAI_FMA(wv, UNIT_SRC(c0 + q + u0), acc[q]);                       \
      } else {                                                                                               \
        for (int q = 0; q < cn; q++) {                                                                       \
          const int u = c0 + q + u0;                                                                         \
          if (u >= 0 && u % stw == 0 && u / stw < OW) acc[q] = CLAI_FMA(wv, SRC(u / stw), acc[q]);                \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
  }

/* The plane route of col2im, where the host asks for it with `plane` (col2im() in lib/op-conv-backward.c):
 * a "same" convolution of stride 1 into dense f32 planes, one work-item per (c, n) plane (the host launches
 * dim 0 with 1; not where the plane's walk would pass a device's loop budget), which adds each tap's column
 * of col to the plane moved by a constant, one long contiguous loop per tap, taps in order. The entries of
 * col that im2col would have taken from the padding columns (|shift| per row, which the move wraps into the
 * neighbouring row) are zeroed first, in col itself (the caller's workspace), so adding them is exact. */
#define CLAI_COL2IM(SFX, T, ST, PLANE_OK)                                                                    \
  __kernel void clai_col2im_##SFX(__global T *gx, __global float *col, const long goff, const long sgn,       \
                                  const long sgc, const long sgh, const long sgw, const int nb, const int C,  \
                                  const int H, const int W, const int KH, const int KW, const int OH,         \
                                  const int OW, const int sth, const int stw, const int pt, const int pl,     \
                                  const int dh, const int dw, const int plane) {                              \
    const int ih = get_global_id(0), c = get_global_id(1), n = get_global_id(2);                             \
    if (ih >= H || c >= C || n >= nb) return;                                                                 \
    const int P = OH * OW;                                                                                    \
    const long rs = (long)nb * P; /* from one col row to the next */                                          \
    __global float *cb = col + (long)c * KH * KW * rs + (long)n * P;                                          \
    if (PLANE_OK && plane) { /* the host's choice (above) */                                                 \
      if (ih != 0) return; /* dim 0 rounded up to the work-group */                                            \
      __global float *dst = (__global float *)gx + goff + n * sgn + (long)c * sgc;                            \
      for (int p = 0; p < P; p++) dst[p] = 0.0f;                                                              \
      for (int kh = 0; kh < KH; kh++)                                                                         \
        for (int kw = 0; kw < KW; kw++) {                                                                     \
          __global float *src = cb + (kh * KW + kw) * rs;                                                     \
          const int s = kw * dw - pl, move = (kh * dh - pt) * W + s;                                          \
          const int qlo = clamp((pt - kh * dh) * W, 0, P), qhi = clamp((H + pt - kh * dh) * W, qlo, P);       \
          const int nz = min(s < 0 ? -s : s, W), z0 = s < 0 ? 0 : W - nz;                                     \
          for (int q = qlo; q < qhi; q += W)                                                                  \
            for (int j = 0; j < nz; j++) src[q + z0 + j] = 0.0f;                                              \
          const int clo = clamp(-move, qlo, qhi), chi = clamp(P - move, clo, qhi);                            \
          for (int q = clo; q < chi; q++) dst[q + move] += src[q];                                            \
        }                                                                                                     \
      return;                                                                                                 \
    }                                                                                                         \
    const long gp = goff + n * sgn + (long)c * sgc + (long)ih * sgh;                                          \
    __global const float *src;                                                                                \
    for (int c0 = 0; c0 < W; c0 += CLAI_CONV_BWD_CHUNK) {                                                     \
      const int cn = min(CLAI_CONV_BWD_CHUNK, W - c0);                                                        \
      float acc[CLAI_CONV_BWD_CHUNK];                                                                         \
      for (int q = 0; q < cn; q++) acc[q] = 0.0f;                                                             \
      CLAI_BWD_TAPS(CLAI_COL_ROW_, 1.0f, CLAI_COL_AT_, CLAI_COL_AT_, stw == 1)                                \
      for (int q = 0; q < cn; q++) ST(gx, gp + (long)(c0 + q) * sgw, acc[q]);                                 \
    }                                                                                                         \
  }
#define CLAI_COL_ROW_(kh, kw, oh) src = cb + ((kh) * KW + (kw)) * rs + (long)(oh) * OW
#define CLAI_COL_AT_(ow) src[ow]
CLAI_COL2IM(f32, float, CLAI_ST_F32, 1)
CLAI_COL2IM(f16, half, CLAI_ST_F16, 0)

#define CLAI_CONV_BWD_DATA(SFX, T, LD, ST)                                                                   \
  __kernel void clai_conv_bwd_data_##SFX(                                                                     \
      __global T *gx, __global const T *gy, __global const T *w, const long goff, const long sgn,             \
      const long sgc, const long sgh, const long sgw, const long yoff, const long syn, const long syc,         \
      const long syh, const long syw, const long woff, const long swo, const long swc, const long swh,        \
      const long sww, const int N, const int C, const int H, const int W, const int O, const int KH,          \
      const int KW, const int OH, const int OW, const int sth, const int stw, const int pt, const int pl,     \
      const int dh, const int dw, const int groups) {                                                         \
    const int ih = get_global_id(0), c = get_global_id(1), n = get_global_id(2);                             \
    if (ih >= H || c >= C || n >= N) return;                                                                  \
    const int Og = O / groups, Cg = C / groups, g = c / Cg, cg = c - g * Cg;                                  \
    const long gp = goff + n * sgn + (long)c * sgc + (long)ih * sgh;                                          \
    long yr = 0, wr = 0;                                                                                      \
    for (int c0 = 0; c0 < W; c0 += CLAI_CONV_BWD_CHUNK) {                                                     \
      const int cn = min(CLAI_CONV_BWD_CHUNK, W - c0);                                                        \
      float acc[CLAI_CONV_BWD_CHUNK];                                                                         \
      for (int q = 0; q < cn; q++) acc[q] = 0.0f;                                                             \
      for (int og = 0; og < Og; og++) {                                                                       \
        const int o = g * Og + og;                                                                            \
        const long yo = yoff + n * syn + (long)o * syc, wo = woff + (long)o * swo + (long)cg * swc;           \
        CLAI_BWD_TAPS(CLAI_DY_ROW_, LD(w, wr), CLAI_DY_UNIT_, CLAI_DY_AT_, stw == 1 && syw == 1)             \
      }                                                                                                       \
      for (int q = 0; q < cn; q++) ST(gx, gp + (long)(c0 + q) * sgw, acc[q]);                                 \
    }                                                                                                         \
  }
#define CLAI_DY_ROW_(kh, kw, oh) (yr = yo + (long)(oh) * syh, wr = wo + (long)(kh) * swh + (long)(kw) * sww)
#define CLAI_DY_UNIT_(ow) CLAI_LDY_(gy, yr + (ow))
#define CLAI_DY_AT_(ow) CLAI_LDY_(gy, yr + (long)(ow) * syw)
#define CLAI_LDY_ CLAI_LD_F32
CLAI_CONV_BWD_DATA(f32, float, CLAI_LD_F32, CLAI_ST_F32)
#undef CLAI_LDY_
#define CLAI_LDY_ CLAI_LD_F16
CLAI_CONV_BWD_DATA(f16, half, CLAI_LD_F16, CLAI_ST_F16)
#undef CLAI_LDY_

/* grad_w[o][cg][kh][kw] = sum over n, oh, ow of grad_out[n][o][oh][ow] * x[n][g*Cg + cg][ih][iw]. */
#define CLAI_CONV_BWD_WEIGHT(SFX, T, LD, ST)                                                                 \
  __kernel void clai_conv_bwd_weight_##SFX(                                                                   \
      __global T *gw, __global const T *x, __global const T *gy, const long woff, const long swo,             \
      const long swc, const long swh, const long sww, const long xoff, const long sxn, const long sxc,        \
      const long sxh, const long sxw, const long yoff, const long syn, const long syc, const long syh,        \
      const long syw, const int N, const int C, const int H, const int W, const int O, const int KH,          \
      const int KW, const int OH, const int OW, const int sth, const int stw, const int pt, const int pl,     \
      const int dh, const int dw, const int groups) {                                                         \
    const long i = get_global_id(0);                                                                          \
    if (groups < 1 || i >= (long)O * (C / groups) * KH * KW) return;                                          \
    const int Cg = C / groups, Og = O / groups;                                                               \
    const int kw = (int)(i % KW), kh = (int)(i / KW % KH), cg = (int)(i / ((long)KW * KH) % Cg),              \
              o = (int)(i / ((long)KW * KH * Cg)), c = o / Og * Cg + cg;                                      \
    const int shift = kw * dw - pl; /* iw = ow * stw + shift */                                               \
    const int lo = clamp((-shift + stw - 1) / stw, 0, OW);                                                    \
    const int hi = clamp(W - shift > 0 ? (W - shift + stw - 1) / stw : 0, lo, OW);                            \
    const int unit = stw == 1 && sxw == 1 && syw == 1;                                                        \
    float total = 0.0f;                                                                                       \
    for (int n = 0; n < N; n++) {                                                                             \
      const long xp = xoff + n * sxn + (long)c * sxc, yp = yoff + n * syn + (long)o * syc;                    \
      float part = 0.0f;                                                                                      \
      for (int oh = 0; oh < OH; oh++) {                                                                       \
        const int ih = oh * sth - pt + kh * dh;                                                               \
        if (ih < 0 || ih >= H) continue;                                                                      \
        const long xr = xp + (long)ih * sxh, yr = yp + (long)oh * syh;                                        \
        if (unit) {                                                                                           \
          for (int ow = lo; ow < hi; ow++) part = CLAI_FMA(LD(gy, yr + ow), LD(x, xr + ow + shift), part);         \
        } else {                                                                                              \
          for (int ow = lo; ow < hi; ow++)                                                                    \
            part = CLAI_FMA(LD(gy, yr + (long)ow * syw), LD(x, xr + (long)(ow * stw + shift) * sxw), part);        \
        }                                                                                                     \
      }                                                                                                       \
      total += part;                                                                                          \
    }                                                                                                         \
    ST(gw, woff + (long)o * swo + (long)cg * swc + (long)kh * swh + (long)kw * sww, total);                  \
  }

/* grad_bias[o] (+)= sum over n, oh, ow of grad_out[n][o][oh][ow]; with accumulate the stored value is
 * added (f32 only: the host uses it for an f32 workspace). */
#define CLAI_CONV_BWD_BIAS(SFX, T, LD, ST, VLD4)                                                                 \
  __kernel void clai_conv_bwd_bias_##SFX(__global T *gb, __global const T *gy, const long boff,               \
                                         const long sb, const long yoff, const long syn, const long syc,      \
                                         const long syh, const long syw, const int N, const int O,            \
                                         const int OH, const int OW) {                                        \
    const int o = get_global_id(0);                                                                           \
    if (o >= O) return;                                                                                       \
    float total = 0.0f;                                                                                       \
    const int dense = syw == 1 && syh == OW;                                                                  \
    for (int n = 0; n < N; n++) {                                                                             \
      const long yp = yoff + n * syn + (long)o * syc;                                                         \
      float part = 0.0f;                                                                                      \
      if (dense) { /* four running sums (one add chain would bound the loop by the add latency) */           \
        __global const T *src = gy + yp;                                                                      \
        float4 s4 = (float4)(0.0f);                                                                           \
        int p = 0;                                                                                            \
        for (; p + 4 <= OH * OW; p += 4) s4 += VLD4(0, src + p);                                              \
        part = (s4.x + s4.y) + (s4.z + s4.w);                                                                 \
        for (; p < OH * OW; p++) part += LD(src, p);                                                          \
      } else {                                                                                                \
        for (int oh = 0; oh < OH; oh++)                                                                       \
          for (int ow = 0; ow < OW; ow++) part += LD(gy, yp + (long)oh * syh + (long)ow * syw);               \
      }                                                                                                       \
      total += part;                                                                                          \
    }                                                                                                         \
    ST(gb, boff + (long)o * sb, total);                                                                       \
  }

/* The 2x2 stride-2 max-pooling route of clai_pool2d_bwd_* (`plane`): pool_launch() in
 * lib/op-conv-backward.c asks for it (max, 2x2 windows, stride 2, no padding, unit strides along the rows
 * of grad_x, grad_out and the indices, a plane within any loop budget) and launches a work-item per plane. */

/* mode 1: max, grad_out goes to the element the index names; 2: average dividing by KH*KW; 3: average
 * dividing by the input elements of the window (as the forward, cl/conv.cl). The row is built in chunks
 * of 64 columns in private memory: for each window row oh that covers ih and each window ow that reaches
 * the chunk (in increasing order, so the sums are in a fixed order), its contribution is added to the
 * columns it covers: no division per element (an earlier per-element gather took 10 times longer). */
#define CLAI_POOL2D_BWD(SFX, T, LD, ST)                                                                      \
  __kernel void clai_pool2d_bwd_##SFX(                                                                        \
      __global T *gx, __global const T *gy, __global const int *idx, const long goff, const long sgn,         \
      const long sgc, const long sgh, const long sgw, const long yoff, const long syn, const long syc,         \
      const long syh, const long syw, const long ioff, const long sidn, const long sic, const long sih,       \
      const long siw, const int N, const int C, const int H, const int W, const int OH, const int OW,         \
      const int KH, const int KW, const int sth, const int stw, const int pt, const int pl, const int mode,   \
      const int plane) {                                                                                       \
    const int ih = get_global_id(0), c = get_global_id(1), n = get_global_id(2);                             \
    if (ih >= H || c >= C || n >= N) return;                                                                  \
    /* the windows oh with oh*sth - pt <= ih < oh*sth - pt + KH */                                            \
    const int a = ih + pt - KH + 1;                                                                           \
    const int oh0 = a <= 0 ? 0 : (a + sth - 1) / sth, oh1 = min((ih + pt) / sth, OH - 1);                    \
    const long yp = yoff + n * syn + (long)c * syc, ip = ioff + n * sidn + (long)c * sic;                     \
    const long gp = goff + n * sgn + (long)c * sgc + (long)ih * sgh;                                          \
    const int rowstart = ih * W;                                                                              \
    if (plane) { /* the host's choice (above) */                                                             \
      /* max over 2x2 windows of stride 2 (the common CNN pooling), unit strides along the rows: a work-item \
       * per plane (the host launches dim 0 with 1). Row r lies in window row r/2 only and each element in  \
       * one window, so it receives its window's gradient when the index names it and 0 otherwise, written \
       * in one pass; an index naming any other element (in or out of the window) matches neither column  \
       * and contributes nothing. With right padding and an odd W the last window hangs over the edge: only \
       * its left column is grad_x's (ow_pair windows lie wholly inside). */                                 \
      if (ih != 0) return; /* dim 0 rounded up to the work-group */                                           \
      for (int r = 0; r < H; r++) {                                                                           \
        const int oh = r >> 1, ow_end = oh < OH ? OW : 0, ow_pair = min(ow_end, W >> 1), rs = r * W;         \
        const long yr = yp + (long)oh * syh, ir = ip + (long)oh * sih;                                        \
        const long gr = goff + n * sgn + (long)c * sgc + (long)r * sgh;                                       \
        for (int ow = 0; ow < ow_pair; ow++) {                                                                \
          const float g = LD(gy, yr + ow);                                                                    \
          const int at = idx[ir + ow] - rs - 2 * ow;                                                          \
          ST(gx, gr + 2 * ow, at == 0 ? g : 0.0f);                                                            \
          ST(gx, gr + 2 * ow + 1, at == 1 ? g : 0.0f);                                                        \
        }                                                                                                     \
        if (ow_pair < ow_end) /* the window over the right edge: W = 2 * ow_pair + 1 */                       \
          ST(gx, gr + 2 * ow_pair, idx[ir + ow_pair] == rs + 2 * ow_pair ? LD(gy, yr + ow_pair) : 0.0f);      \
        for (int iw = min(2 * ow_end, W); iw < W; iw++) ST(gx, gr + iw, 0.0f);                                \
      }                                                                                                       \
      return;                                                                                                 \
    }                                                                                                         \
    if (sth >= KH && stw >= KW && mode != 1) {                                                                \
      /* average over windows that do not overlap: one window row at most covers ih and one window at     \
       * most each element, so every element is written once, in one pass along the row (7.4 instead of  \
       * 10.6 ms of CPU time for [128, 32, 28, 28] on POCL; for max pooling the same pass, with the index  \
       * test, took 16 ms against 12.7 for the general loop below, so max pooling stays there) */          \
      int iw = 0;                                                                                             \
      if (oh0 == oh1) {                                                                                       \
        const long yr = yp + (long)oh0 * syh;                                                                 \
        const int h0 = oh0 * sth - pt, hn = min(h0 + KH, H) - max(h0, 0);                                     \
        for (int ow = 0; ow < OW; ow++) {                                                                     \
          const int w0 = ow * stw - pl, lo = max(w0, 0), hi = min(w0 + KW, W);                                \
          for (; iw < lo; iw++) ST(gx, gp + (long)iw * sgw, 0.0f);                                            \
          const float g = LD(gy, yr + (long)ow * syw);                                                        \
          const float v = g / (float)(mode == 2 ? KH * KW : hn * (hi - lo));                                  \
          for (; iw < hi; iw++) ST(gx, gp + (long)iw * sgw, v);                                               \
        }                                                                                                     \
      }                                                                                                       \
      for (; iw < W; iw++) ST(gx, gp + (long)iw * sgw, 0.0f);                                                 \
      return;                                                                                                 \
    }                                                                                                         \
    for (int c0 = 0; c0 < W; c0 += CLAI_CONV_BWD_CHUNK) {                                                     \
      const int cn = min(CLAI_CONV_BWD_CHUNK, W - c0);                                                        \
      float acc[CLAI_CONV_BWD_CHUNK];                                                                         \
      for (int q = 0; q < cn; q++) acc[q] = 0.0f;                                                             \
      /* windows ow whose columns [ow*stw - pl, ow*stw - pl + KW) meet [c0, c0 + cn) */                       \
      const int b = c0 + pl - KW + 1;                                                                         \
      const int ow0 = b <= 0 ? 0 : (b + stw - 1) / stw, ow1 = min((c0 + cn - 1 + pl) / stw, OW - 1);         \
      for (int oh = oh0; oh <= oh1; oh++) {                                                                   \
        const long yr = yp + (long)oh * syh, ir = ip + (long)oh * sih;                                        \
        const int h0 = oh * sth - pt, hn = min(h0 + KH, H) - max(h0, 0);                                      \
        for (int ow = ow0; ow <= ow1; ow++) {                                                                 \
          const float g = LD(gy, yr + (long)ow * syw);                                                        \
          const int w0 = ow * stw - pl;                                                                       \
          if (mode == 1) {                                                                                    \
            const int iw = idx[ir + (long)ow * siw] - rowstart - c0;                                          \
            /* an index outside its window (or this chunk) is ignored */                                      \
            if (iw >= 0 && iw < cn && iw + c0 >= w0 && iw + c0 < w0 + KW) acc[iw] += g;                       \
          } else {                                                                                            \
            const int lo = max(w0, c0), hi = min(w0 + KW, c0 + cn);                                           \
            const int cnt = mode == 2 ? KH * KW : hn * (min(w0 + KW, W) - max(w0, 0));                        \
            const float v = g / (float)cnt;                                                                   \
            for (int iw = lo; iw < hi; iw++) acc[iw - c0] += v;                                               \
          }                                                                                                   \
        }                                                                                                     \
      }                                                                                                       \
      for (int q = 0; q < cn; q++) ST(gx, gp + (long)(c0 + q) * sgw, acc[q]);                                 \
    }                                                                                                         \
  }

/* rows[o][n*P + p] = y[n][o][p] (P = OH*OW), images n < nb: grad_out regrouped so that the images of one
 * channel are adjacent, the weight GEMM's reduction dim. One plane per work-item, a contiguous copy when
 * the plane is dense. (The generic strided copy took 32 ms for the CNN's first layer at batch 128; this
 * takes a few.) */
#define CLAI_CONV_ROWS(SFX, T, LD)                                                                           \
  __kernel void clai_conv_rows_##SFX(__global float *rows, __global const T *y, const long yoff,             \
                                     const long syn, const long syc, const long syh, const long syw,         \
                                     const int nb, const int O, const int OH, const int OW, const int rb) {  \
    /* dim 1: image n and band of rb rows (rb = OH but on a device with a loop budget) */                     \
    const int nbands = CLAI_NBANDS(OH, rb), o = get_global_id(0), n = get_global_id(1) / nbands;               \
    if (o >= O || n >= nb) return;                                                                            \
    const int P = OH * OW, oh0 = get_global_id(1) % nbands * rb, oh1 = min(OH, oh0 + rb);                     \
    __global float *dst = rows + ((long)o * nb + n) * P;                                                      \
    const long yp = yoff + n * syn + (long)o * syc;                                                           \
    if (syw == 1 && syh == OW) {                                                                              \
      for (int p = oh0 * OW; p < oh1 * OW; p++) dst[p] = LD(y, yp + p);                                       \
    } else {                                                                                                  \
      for (int oh = oh0; oh < oh1; oh++)                                                                      \
        for (int ow = 0; ow < OW; ow++) dst[oh * OW + ow] = LD(y, yp + (long)oh * syh + (long)ow * syw);      \
    }                                                                                                         \
  }
CLAI_CONV_ROWS(f32, float, CLAI_LD_F32)
CLAI_CONV_ROWS(f16, half, CLAI_LD_F16)

/* dst[doff + j] = (accumulate ? dst[doff + j] : 0) + sum over r < R of src[r*len + j], r in increasing
 * order: the per-image partial weight gradients summed over the images into grad_w, a dense view that may
 * start anywhere in its buffer (doff). One work-item per column. */
__kernel void clai_conv_sum_rows(__global float *dst, __global const float *src, const long doff, const long R,
                                 const long len, const int accumulate) {
  const long j = get_global_id(0);
  if (j >= len) return;
  float s = accumulate ? dst[doff + j] : 0.0f;
  for (long r = 0; r < R; r++) s += src[r * len + j];
  dst[doff + j] = s;
}

#define CLAI_CONV_BWD_ALL(SFX, T, LD, ST, VLD4)                                                                  \
  CLAI_CONV_BWD_WEIGHT(SFX, T, LD, ST)                                                                       \
  CLAI_CONV_BWD_BIAS(SFX, T, LD, ST, VLD4)                                                                   \
  CLAI_POOL2D_BWD(SFX, T, LD, ST)
CLAI_CONV_BWD_ALL(f32, float, CLAI_LD_F32, CLAI_ST_F32, vload4)
CLAI_CONV_BWD_ALL(f16, half, CLAI_LD_F16, CLAI_ST_F16, vload_half4)
