/* op-conv-backward.c - gradients of clai_conv2d and of the 2-D poolings (kernels in cl/conv_backward.cl;
 * the forward ops are in op-conv.c).
 *
 * On the packed family (CPUs) with f32 operands both gradients are implicit GEMMs over zero-padded inputs,
 * with no column workspace (data_igemm, weight_igemm below; the kernels in cl/matmul_packed.cl): the data
 * gradient of stride 1 as the forward convolution of the padded output gradient with the window turned
 * around, the weight gradient with the taps as rows, the output channels as columns and the positions as
 * the reduction. Elsewhere:
 * The data gradient (the transposed convolution) of groups with 4 or more output channels runs, per chunk
 * of nb images, one clai_matmul per group over all the chunk's images side by side,
 *   col[g] [Cg*KH*KW, nb*OH*OW] = w[g]^T [Cg*KH*KW, Og] x grad_out[g] [Og, nb*OH*OW],
 * into im2col's layout, then col2im gathers the column entries back into grad_x: every element sums the
 * entries im2col would have taken from it, in a fixed order, so no atomics. grad_out first goes through
 * a plane-copy kernel into [O, nb*OH*OW] (f32), because its images are not adjacent in NCHW; it is the
 * smallest operand, and a GEMM with N = nb*OH*OW ran in about half the time of a GEMM per image (N =
 * OH*OW = 196 for the CNN's second layer, not a multiple of the kernel's 16 columns).
 * The weight gradient of those groups is, per chunk, im2col(x) and one GEMM per group
 *   grad_w[g] (+)= grad_out[g] [Og, nb*OH*OW] x col[g]^T [nb*OH*OW, Cg*KH*KW],
 * the reduction over images and positions being the GEMM's K (large), accumulated over chunks with
 * beta = 1 (grad_out regrouped as above). When the gradient is small next to an image (O*8 <= OH*OW, the
 * CNN's first layer: a [32, 25] result has too few tiles for the cores) and grad_out is dense f32, a
 * batched GEMM computes one partial gradient per image instead, reading grad_out in place, and a kernel
 * sums the partials over the images in order. The bias gradient is a kernel of its own (one work-item per
 * channel, fixed order). Groups with fewer output channels (depthwise) run direct kernels for both
 * gradients, as the forward does.
 * Every route is deterministic: the same inputs give the same bits on every run. */
#include <limits.h>
#include <string.h>

#include "internal.h"

/* Groups with fewer output channels than this take the direct kernels (as clai_conv2d does). */
#define DIRECT_MAX_OG 4

static int big(int64_t v) { return v > INT_MAX; }

/* Checks the operands of a convolution gradient and resolves the geometry: xt is x or grad_x ([N, C, H, W]),
 * wt is w or grad_w ([O, C/groups, KH, KW]), gy is grad_out, which must be [N, O, OH, OW]. */
static clai_status conv_resolve(clai_context *ctx, const char *fn, const clai_tensor *xt, const char *xname,
                                const clai_tensor *wt, const char *wname, const clai_tensor *gy,
                                const clai_conv2d_params *params, clai__conv_geom *g) {
  clai_conv2d_params p;
  if (params != NULL)
    p = *params;
  else
    memset(&p, 0, sizeof p);
  if (p.stride_h < 0 || p.stride_w < 0 || p.dilation_h < 0 || p.dilation_w < 0 || p.groups < 0 || p.pad_top < 0 ||
      p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    return clai__error(ctx, CLAI_E_INVALID_ARG,
                       "%s: negative parameter (stride %lldx%lld, dilation %lldx%lld, padding t%lld b%lld l%lld r%lld, "
                       "groups %lld)",
                       fn, (long long)p.stride_h, (long long)p.stride_w, (long long)p.dilation_h,
                       (long long)p.dilation_w, (long long)p.pad_top, (long long)p.pad_bottom, (long long)p.pad_left,
                       (long long)p.pad_right, (long long)p.groups);
  clai_status s = clai__conv_need_4d(ctx, fn, xt, xname);
  if (s == CLAI_OK) s = clai__conv_need_4d(ctx, fn, wt, wname);
  if (s == CLAI_OK) s = clai__conv_need_4d(ctx, fn, gy, "grad_out");
  const clai_dtype dt = xt->dtype == CLAI_DTYPE_F16 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, xt, xname, dt, xname);
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, wt, wname, dt, xname);
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, gy, "grad_out", dt, xname);
  if (s != CLAI_OK) return s;
  g->N = xt->shape[0], g->C = xt->shape[1], g->H = xt->shape[2], g->W = xt->shape[3];
  g->O = wt->shape[0], g->KH = wt->shape[2], g->KW = wt->shape[3];
  g->sh = p.stride_h ? p.stride_h : 1, g->sw = p.stride_w ? p.stride_w : 1;
  g->dh = p.dilation_h ? p.dilation_h : 1, g->dw = p.dilation_w ? p.dilation_w : 1;
  g->pt = p.pad_top, g->pb = p.pad_bottom, g->pl = p.pad_left, g->pr = p.pad_right;
  g->groups = p.groups ? p.groups : 1;
  char a[160], b[160];
  if (big(g->N) || big(g->C) || big(g->H) || big(g->W) || big(g->O) || big(g->KH) || big(g->KW) || big(g->sh) ||
      big(g->sw) || big(g->dh) || big(g->dw) || big(g->pt) || big(g->pb) || big(g->pl) || big(g->pr) ||
      big(g->groups))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: every size and parameter must be below 2^31", fn);
  if (g->C % g->groups != 0 || g->O % g->groups != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: groups %lld must divide the channels of %s (%lld) and of grad_out (%lld)",
                       fn, (long long)g->groups, xname, (long long)g->C, (long long)g->O);
  if (wt->shape[1] * g->groups != g->C)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: channel mismatch: %s %s has %lld input channels per group, %s %s has "
                       "%lld channels in %lld groups", fn, wname, clai__shape_str(4, wt->shape, a, sizeof a),
                       (long long)wt->shape[1], xname, clai__shape_str(4, xt->shape, b, sizeof b), (long long)g->C,
                       (long long)g->groups);
  if (g->KH < 1 || g->KW < 1)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: %s %s has an empty window", fn, wname,
                       clai__shape_str(4, wt->shape, a, sizeof a));
  g->OH = clai__conv_out_len(g->H, g->pt, g->pb, g->KH, g->dh, g->sh);
  g->OW = clai__conv_out_len(g->W, g->pl, g->pr, g->KW, g->dw, g->sw);
  if (g->OH < 1 || g->OW < 1)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: output size would be %lldx%lld: the window (%lldx%lld, dilation "
                       "%lldx%lld) does not fit the padded input %lldx%lld", fn, (long long)g->OH, (long long)g->OW,
                       (long long)g->KH, (long long)g->KW, (long long)g->dh, (long long)g->dw,
                       (long long)(g->H + g->pt + g->pb), (long long)(g->W + g->pl + g->pr));
  const int64_t want[4] = {g->N, g->O, g->OH, g->OW};
  if (memcmp(gy->shape, want, sizeof want) != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: grad_out is %s, expected %s (the forward's output shape)", fn,
                       clai__shape_str(4, gy->shape, a, sizeof a), clai__shape_str(4, want, b, sizeof b));
  uint64_t rows;
  if (big(g->OH * g->OW) || !clai__mul_ok((uint64_t)g->C, (uint64_t)(g->KH * g->KW), &rows) || rows > INT_MAX)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: an output plane or C*KH*KW of 2^31 elements or more", fn);
  return CLAI_OK;
}

static void tensor_strides4(const clai_tensor *t, cl_long *off, cl_long *s) {
  *off = t->offset;
  for (int i = 0; i < 4; i++) s[i] = t->strides[i];
}

/* ---- the data gradient -------------------------------------------------------------------------------- */

static clai_status data_direct(clai_context *ctx, clai_tensor *gx, const clai_tensor *gy, const clai_tensor *w,
                               const clai__conv_geom *g) {
  cl_long go, gs[4], yo, ys[4], wo, ws[4];
  tensor_strides4(gx, &go, gs);
  tensor_strides4(gy, &yo, ys);
  tensor_strides4(w, &wo, ws);
  const cl_int N = (cl_int)g->N, C = (cl_int)g->C, H = (cl_int)g->H, W = (cl_int)g->W, O = (cl_int)g->O,
               KH = (cl_int)g->KH, KW = (cl_int)g->KW, OH = (cl_int)g->OH, OW = (cl_int)g->OW,
               sth = (cl_int)g->sh, stw = (cl_int)g->sw, pt = (cl_int)g->pt, pl = (cl_int)g->pl,
               dh = (cl_int)g->dh, dw = (cl_int)g->dw, groups = (cl_int)g->groups;
  size_t global[3] = {(size_t)g->H, (size_t)g->C, (size_t)g->N};
  const int k = gx->dtype == CLAI_DTYPE_F16 ? CLAI__K_CONV_BWD_DATA_F16 : CLAI__K_CONV_BWD_DATA_F32;
  return clai__launch(ctx, k, global, 34, CLAI__ARG(gx->buf->mem), CLAI__ARG(gy->buf->mem), CLAI__ARG(w->buf->mem),
                      CLAI__ARG(go), CLAI__ARG(gs[0]), CLAI__ARG(gs[1]), CLAI__ARG(gs[2]), CLAI__ARG(gs[3]),
                      CLAI__ARG(yo), CLAI__ARG(ys[0]), CLAI__ARG(ys[1]), CLAI__ARG(ys[2]), CLAI__ARG(ys[3]),
                      CLAI__ARG(wo), CLAI__ARG(ws[0]), CLAI__ARG(ws[1]), CLAI__ARG(ws[2]), CLAI__ARG(ws[3]),
                      CLAI__ARG(N), CLAI__ARG(C), CLAI__ARG(H), CLAI__ARG(W), CLAI__ARG(O), CLAI__ARG(KH),
                      CLAI__ARG(KW), CLAI__ARG(OH), CLAI__ARG(OW), CLAI__ARG(sth), CLAI__ARG(stw), CLAI__ARG(pt),
                      CLAI__ARG(pl), CLAI__ARG(dh), CLAI__ARG(dw), CLAI__ARG(groups));
}

/* grad_x images n0 .. n0+nb from col, dense f32 [C*KH*KW, nb*OH*OW] (im2col's layout). */
static clai_status col2im(clai_context *ctx, clai_tensor *gx, cl_mem col, int64_t n0, int64_t nb,
                          const clai__conv_geom *g) {
  const cl_long goff = gx->offset + n0 * gx->strides[0], sgn = gx->strides[0], sgc = gx->strides[1],
                sgh = gx->strides[2], sgw = gx->strides[3];
  const cl_int cnb = (cl_int)nb, C = (cl_int)g->C, H = (cl_int)g->H, W = (cl_int)g->W, KH = (cl_int)g->KH,
               KW = (cl_int)g->KW, OH = (cl_int)g->OH, OW = (cl_int)g->OW, sth = (cl_int)g->sh,
               stw = (cl_int)g->sw, pt = (cl_int)g->pt, pl = (cl_int)g->pl, dh = (cl_int)g->dh,
               dw = (cl_int)g->dw;
  /* col2im's plane route (cl/conv_backward.cl; "same" size, stride 1, dense f32 planes): a work-item per
   * plane instead of per row (POCL: the CNN's second layer 4-8 instead of 9-20 ms a batch), not where the
   * plane's walk, KH * KW + 1 passes over it, would pass a device's loop budget. A row's walk is about
   * W * KH * KW. */
  const cl_int plane = gx->dtype == CLAI_DTYPE_F32 && g->sh == 1 && g->sw == 1 && g->OH == g->H &&
                       g->OW == g->W && sgw == 1 && sgh == g->W &&
                       g->OH * g->OW <= clai__loop_cap(ctx, 2 * (g->KH * g->KW + 1));
  if (!plane && clai__loop_cap(ctx, g->KH * g->KW * 2) < g->W)
    return clai__row_too_long(ctx, "clai_conv2d_backward_data", g->W);
  size_t global[3] = {plane ? 1 : (size_t)g->H, (size_t)g->C, (size_t)nb};
  const int k = gx->dtype == CLAI_DTYPE_F16 ? CLAI__K_COL2IM_F16 : CLAI__K_COL2IM_F32;
  return clai__launch(ctx, k, global, 22, CLAI__ARG(gx->buf->mem), CLAI__ARG(col), CLAI__ARG(goff), CLAI__ARG(sgn),
                      CLAI__ARG(sgc), CLAI__ARG(sgh), CLAI__ARG(sgw), CLAI__ARG(cnb), CLAI__ARG(C), CLAI__ARG(H),
                      CLAI__ARG(W), CLAI__ARG(KH), CLAI__ARG(KW), CLAI__ARG(OH), CLAI__ARG(OW), CLAI__ARG(sth),
                      CLAI__ARG(stw), CLAI__ARG(pt), CLAI__ARG(pl), CLAI__ARG(dh), CLAI__ARG(dw), CLAI__ARG(plane));
}

static clai_status rows(clai_context *ctx, cl_mem dst, const clai_tensor *gy, int64_t n0, int64_t nb,
                        const clai__conv_geom *g);

static clai_status data_gemm(clai_context *ctx, clai_tensor *gx, const clai_tensor *gy, const clai_tensor *w,
                             const clai__conv_geom *g) {
  const int64_t G = g->groups, Og = g->O / G, K = g->C / G * g->KH * g->KW, P = g->OH * g->OW, O = g->O;
  uint64_t colel, per_image;
  if (!clai__mul_ok((uint64_t)(G * K), (uint64_t)P, &colel) || !clai__mul_ok(colel + (uint64_t)(O * P), 4, &per_image))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "clai_conv2d_backward_data: the column workspace overflows");
  const int64_t nbmax = clai__conv_chunk_images(g, per_image, clai__conv_col_budget(ctx));
  clai_tensor *wt = NULL, *col = NULL, *gyr = NULL, *va = NULL, *vb = NULL, *vc = NULL;
  clai_status st = clai__conv_weight_groups(ctx, "clai_conv2d_backward_data", w, g, &wt, &va);
  const int64_t colshape[2] = {G * K, nbmax * P}, gyshape[2] = {O, nbmax * P};
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &col, CLAI_DTYPE_F32, 2, colshape);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &gyr, CLAI_DTYPE_F32, 2, gyshape);
  for (int64_t n0 = 0; st == CLAI_OK && n0 < g->N; n0 += nbmax) {
    const int64_t nb = g->N - n0 < nbmax ? g->N - n0 : nbmax;
    /* one GEMM per group over all the chunk's images side by side: N = nb*OH*OW rather than OH*OW */
    const int64_t bshape[3] = {G, Og, nb * P}, bstr[3] = {Og * nb * P, nb * P, 1};
    const int64_t cshape[3] = {G, K, nb * P}, cstr[3] = {K * nb * P, nb * P, 1};
    st = rows(ctx, gyr->buf->mem, gy, n0, nb, g);
    if (st == CLAI_OK) st = clai_tensor_view(gyr, &vb, 3, bshape, bstr, 0);
    if (st == CLAI_OK) st = clai_tensor_view(col, &vc, 3, cshape, cstr, 0);
    if (st == CLAI_OK) st = clai_matmul(ctx, vc, va, 1, vb, 0, 1.0f, 0.0f);
    if (st == CLAI_OK) st = col2im(ctx, gx, col->buf->mem, n0, nb, g);
    clai_tensor_free(vb);
    clai_tensor_free(vc);
    vb = vc = NULL;
  }
  clai_tensor_free(va);
  clai_tensor_free(gyr);
  clai_tensor_free(col);
  clai_tensor_free(wt);
  return st;
}

/* Stride 1 on the packed family: the data gradient is itself a convolution, of grad_out padded by
 * dilation * (window - 1) - padding on each side, with the window turned around and the channels swapped
 * (clai__conv_wt's flip), run as clai_conv2d runs it: an implicit GEMM (op-conv.c) with no column
 * workspace and no col2im. */
/* The geometry of that convolution (*t); 0 where it is not one (a stride above 1, or padding past
 * dilation * (window - 1), which would need a negative padding). */
static int data_as_conv(const clai__conv_geom *g, clai__conv_geom *t) {
  *t = *g;
  t->C = g->O, t->H = g->OH, t->W = g->OW, t->O = g->C, t->OH = g->H, t->OW = g->W;
  t->pt = g->dh * (g->KH - 1) - g->pt, t->pb = g->dh * (g->KH - 1) - g->pb;
  t->pl = g->dw * (g->KW - 1) - g->pl, t->pr = g->dw * (g->KW - 1) - g->pr;
  return g->sh == 1 && g->sw == 1 && t->pt >= 0 && t->pb >= 0 && t->pl >= 0 && t->pr >= 0;
}

static clai_status data_igemm(clai_context *ctx, clai_tensor *gx, const clai_tensor *gy, const clai_tensor *w,
                              const clai__conv_geom *g, const clai__conv_geom *t) {
  clai_tensor *bt = NULL;
  int64_t colsp;
  clai_status st = clai__conv_wt(ctx, &bt, w, g, 1, &colsp);
  if (st == CLAI_OK) st = clai__conv_igemm(ctx, "clai_conv2d_backward_data", gx, gy, bt, colsp, NULL, t, 0);
  clai_tensor_free(bt);
  return st;
}

clai_status clai_conv2d_backward_data(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_out,
                                      const clai_tensor *w, const clai_conv2d_params *params) {
  const char *fn = "clai_conv2d_backward_data";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, grad_x, fn, "grad_x");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, grad_out, fn, "grad_out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, w, fn, "w");
  if (s != CLAI_OK) return s;
  clai__conv_geom g;
  s = conv_resolve(ctx, fn, grad_x, "grad_x", w, "w", grad_out, params, &g);
  if (s != CLAI_OK) return s;
  if (clai__tensors_overlap(grad_x, grad_out) || clai__tensors_overlap(grad_x, w))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad_x overlaps grad_out or w in memory", fn);
  if (g.N == 0 || g.C == 0 || g.H == 0 || g.W == 0) return CLAI_OK;
  if (g.O == 0) return clai_fill(ctx, grad_x, 0.0);
  /* (the direct kernel's row walks W * O / groups * KH * KW taps: past a device's loop budget, the GEMM) */
  if (g.O / g.groups < DIRECT_MAX_OG && g.W * (g.O / g.groups) * g.KH * g.KW <= clai__loop_cap(ctx, 2))
    return data_direct(ctx, grad_x, grad_out, w, &g);
  clai__conv_geom t;
  if (clai__conv_igemm_ok(ctx, grad_out, w, grad_x, NULL) && data_as_conv(&g, &t))
    return data_igemm(ctx, grad_x, grad_out, w, &g, &t);
  return data_gemm(ctx, grad_x, grad_out, w, &g);
}

/* ---- the weight and bias gradients -------------------------------------------------------------------- */

static clai_status weight_direct(clai_context *ctx, clai_tensor *gw, const clai_tensor *x, const clai_tensor *gy,
                                 const clai__conv_geom *g) {
  cl_long wo, ws[4], xo, xs[4], yo, ys[4];
  tensor_strides4(gw, &wo, ws);
  tensor_strides4(x, &xo, xs);
  tensor_strides4(gy, &yo, ys);
  const cl_int N = (cl_int)g->N, C = (cl_int)g->C, H = (cl_int)g->H, W = (cl_int)g->W, O = (cl_int)g->O,
               KH = (cl_int)g->KH, KW = (cl_int)g->KW, OH = (cl_int)g->OH, OW = (cl_int)g->OW,
               sth = (cl_int)g->sh, stw = (cl_int)g->sw, pt = (cl_int)g->pt, pl = (cl_int)g->pl,
               dh = (cl_int)g->dh, dw = (cl_int)g->dw, groups = (cl_int)g->groups;
  size_t global[2] = {(size_t)(g->O * (g->C / g->groups) * g->KH * g->KW), 1};
  const int k = gw->dtype == CLAI_DTYPE_F16 ? CLAI__K_CONV_BWD_WEIGHT_F16 : CLAI__K_CONV_BWD_WEIGHT_F32;
  return clai__launch(ctx, k, global, 34, CLAI__ARG(gw->buf->mem), CLAI__ARG(x->buf->mem), CLAI__ARG(gy->buf->mem),
                      CLAI__ARG(wo), CLAI__ARG(ws[0]), CLAI__ARG(ws[1]), CLAI__ARG(ws[2]), CLAI__ARG(ws[3]),
                      CLAI__ARG(xo), CLAI__ARG(xs[0]), CLAI__ARG(xs[1]), CLAI__ARG(xs[2]), CLAI__ARG(xs[3]),
                      CLAI__ARG(yo), CLAI__ARG(ys[0]), CLAI__ARG(ys[1]), CLAI__ARG(ys[2]), CLAI__ARG(ys[3]),
                      CLAI__ARG(N), CLAI__ARG(C), CLAI__ARG(H), CLAI__ARG(W), CLAI__ARG(O), CLAI__ARG(KH),
                      CLAI__ARG(KW), CLAI__ARG(OH), CLAI__ARG(OW), CLAI__ARG(sth), CLAI__ARG(stw), CLAI__ARG(pt),
                      CLAI__ARG(pl), CLAI__ARG(dh), CLAI__ARG(dw), CLAI__ARG(groups));
}

static clai_status bias_grad(clai_context *ctx, clai_tensor *gb, const clai_tensor *gy, const clai__conv_geom *g) {
  if (g->N * (g->OH * g->OW + 2) > clai__loop_cap(ctx, 1)) {
    /* a walk past a device's loop budget: the reduction ops' chunks, gy [N, O, OH, OW] summed to [1, O, 1, 1] */
    const int64_t s4[4] = {1, g->O, 1, 1}, st4[4] = {0, gb->strides[0], 0, 0};
    clai_tensor *b4 = NULL;
    clai_status st = clai_tensor_view(gb, &b4, 4, s4, st4, 0);
    if (st == CLAI_OK) st = clai_sum_to(ctx, b4, gy);
    clai_tensor_free(b4);
    return st;
  }
  const cl_long boff = gb->offset, sb = gb->strides[0];
  cl_long yo, ys[4];
  tensor_strides4(gy, &yo, ys);
  const cl_int N = (cl_int)g->N, O = (cl_int)g->O, OH = (cl_int)g->OH, OW = (cl_int)g->OW;
  size_t global[2] = {(size_t)g->O, 1};
  const int k = gb->dtype == CLAI_DTYPE_F16 ? CLAI__K_CONV_BWD_BIAS_F16 : CLAI__K_CONV_BWD_BIAS_F32;
  return clai__launch(ctx, k, global, 13, CLAI__ARG(gb->buf->mem), CLAI__ARG(gy->buf->mem), CLAI__ARG(boff),
                      CLAI__ARG(sb), CLAI__ARG(yo), CLAI__ARG(ys[0]), CLAI__ARG(ys[1]), CLAI__ARG(ys[2]),
                      CLAI__ARG(ys[3]), CLAI__ARG(N), CLAI__ARG(O), CLAI__ARG(OH), CLAI__ARG(OW));
}

/* grad_out's images n0 .. n0+nb as dense f32 rows [O, nb*OH*OW] in `dst`. */
static clai_status rows(clai_context *ctx, cl_mem dst, const clai_tensor *gy, int64_t n0, int64_t nb,
                        const clai__conv_geom *g) {
  const cl_long yoff = gy->offset + n0 * gy->strides[0], syn = gy->strides[0], syc = gy->strides[1],
                syh = gy->strides[2], syw = gy->strides[3];
  const cl_int cnb = (cl_int)nb, O = (cl_int)g->O, OH = (cl_int)g->OH, OW = (cl_int)g->OW;
  const cl_int rb = clai__band_rows(ctx, g->OH, g->OW);
  if (rb == 0)
    return clai__row_too_long(ctx, "clai_conv2d_backward", g->OW);
  size_t global[2] = {(size_t)g->O, (size_t)nb * (size_t)((OH + rb - 1) / rb)};
  const int k = gy->dtype == CLAI_DTYPE_F16 ? CLAI__K_CONV_ROWS_F16 : CLAI__K_CONV_ROWS_F32;
  return clai__launch(ctx, k, global, 12, CLAI__ARG(dst), CLAI__ARG(gy->buf->mem), CLAI__ARG(yoff), CLAI__ARG(syn),
                      CLAI__ARG(syc), CLAI__ARG(syh), CLAI__ARG(syw), CLAI__ARG(cnb), CLAI__ARG(O), CLAI__ARG(OH),
                      CLAI__ARG(OW), CLAI__ARG(rb));
}

/* dst (dense f32, at its own offset) (+)= the sum of src's R rows of len (a dense temporary). */
static clai_status sum_rows(clai_context *ctx, clai_tensor *dst, const clai_tensor *src, int64_t R, int64_t len,
                            int accumulate) {
  const cl_long doff = dst->offset, r = R, l = len;
  const cl_int acc = accumulate;
  size_t global = (size_t)len;
  return clai__launch(ctx, CLAI__K_CONV_SUM_ROWS, &global, 6, CLAI__ARG(dst->buf->mem), CLAI__ARG(src->buf->mem),
                      CLAI__ARG(doff), CLAI__ARG(r), CLAI__ARG(l), CLAI__ARG(acc));
}

/* The weight gradient when it is small next to an image (O*8 <= OH*OW, the CNN's first layer): a GEMM of
 * one [O, K] output has too few tiles to keep the cores busy, so one batched clai_matmul computes a
 * partial gradient per image, part[n][g] = grad_out[n][g] [Og, OH*OW] x col[g][n]^T (grad_out read in
 * place, col in im2col's layout), and a kernel sums the partials over the images in order. */
static clai_status weight_per_image(clai_context *ctx, clai_tensor *dst, const clai_tensor *x, const clai_tensor *gy,
                                    const clai__conv_geom *g) {
  const int64_t G = g->groups, Og = g->O / G, K = g->C / G * g->KH * g->KW, P = g->OH * g->OW, O = g->O;
  uint64_t colel, per_image;
  if (!clai__mul_ok((uint64_t)(G * K), (uint64_t)P, &colel) || !clai__mul_ok(colel + (uint64_t)(O * K), 4, &per_image))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "clai_conv2d_backward_weight: the column workspace overflows");
  const int64_t nbmax = clai__conv_chunk_images(g, per_image, clai__conv_col_budget(ctx));
  clai_tensor *col = NULL, *part = NULL, *va = NULL, *vb = NULL, *vc = NULL;
  const int64_t colshape[2] = {G * K, nbmax * P}, partshape[2] = {nbmax, O * K};
  clai_status st = clai_tensor_init(ctx, &col, CLAI_DTYPE_F32, 2, colshape);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &part, CLAI_DTYPE_F32, 2, partshape);
  for (int64_t n0 = 0; st == CLAI_OK && n0 < g->N; n0 += nbmax) {
    const int64_t nb = g->N - n0 < nbmax ? g->N - n0 : nbmax;
    const int64_t ashape[4] = {nb, G, Og, P}, astr[4] = {gy->strides[0], Og * gy->strides[1], gy->strides[1],
                                                         gy->strides[3]};
    const int64_t bshape[4] = {nb, G, K, P}, bstr[4] = {P, K * nb * P, nb * P, 1};
    const int64_t cshape[4] = {nb, G, Og, K}, cstr[4] = {O * K, Og * K, K, 1};
    st = clai__im2col(ctx, col->buf->mem, x, n0, nb, g);
    if (st == CLAI_OK) st = clai_tensor_view((clai_tensor *)gy, &va, 4, ashape, astr, n0 * gy->strides[0]);
    if (st == CLAI_OK) st = clai_tensor_view(col, &vb, 4, bshape, bstr, 0);
    if (st == CLAI_OK) st = clai_tensor_view(part, &vc, 4, cshape, cstr, 0);
    if (st == CLAI_OK) st = clai_matmul(ctx, vc, va, 0, vb, 1, 1.0f, 0.0f);
    if (st == CLAI_OK) st = sum_rows(ctx, dst, part, nb, O * K, n0 > 0);
    clai_tensor_free(va);
    clai_tensor_free(vb);
    clai_tensor_free(vc);
    va = vb = vc = NULL;
  }
  clai_tensor_free(part);
  clai_tensor_free(col);
  return st;
}

static clai_status weight_gemm(clai_context *ctx, clai_tensor *gw, const clai_tensor *x, const clai_tensor *gy,
                               const clai__conv_geom *g) {
  const int64_t G = g->groups, Og = g->O / G, K = g->C / G * g->KH * g->KW, P = g->OH * g->OW, O = g->O;
  uint64_t colel, per_image;
  if (!clai__mul_ok((uint64_t)(G * K), (uint64_t)P, &colel) || !clai__mul_ok(colel + (uint64_t)(O * P), 4, &per_image))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "clai_conv2d_backward_weight: the column workspace overflows");
  const int64_t nbmax = clai__conv_chunk_images(g, per_image, clai__conv_col_budget(ctx));
  clai_tensor *acc = NULL, *col = NULL, *gyt = NULL, *va = NULL, *vb = NULL, *vc = NULL;
  clai_status st = CLAI_OK;
  /* the GEMM accumulates over chunks in f32: into grad_w itself when it is dense f32 */
  clai_tensor *dst = gw;
  if (gw->dtype != CLAI_DTYPE_F32 || !clai_tensor_is_contiguous(gw)) {
    st = clai_tensor_init(ctx, &acc, CLAI_DTYPE_F32, 4, gw->shape);
    dst = acc;
  }
  /* grad_out read in place (f32, each plane one run) and a small gradient: partials per image */
  const int in_place = gy->dtype == CLAI_DTYPE_F32 && (g->OH == 1 || gy->strides[2] == g->OW * gy->strides[3]);
  if (st == CLAI_OK && in_place && O * 8 <= P) {
    st = weight_per_image(ctx, dst, x, gy, g);
    if (st == CLAI_OK && acc != NULL) st = clai__copy(ctx, gw, acc, "clai_conv2d_backward_weight");
    clai_tensor_free(acc);
    return st;
  }
  const int64_t colshape[2] = {G * K, nbmax * P}, gyshape[2] = {O, nbmax * P};
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &col, CLAI_DTYPE_F32, 2, colshape);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &gyt, CLAI_DTYPE_F32, 2, gyshape);
  const int64_t cshape[3] = {G, Og, K}, cstr[3] = {Og * K, K, 1};
  if (st == CLAI_OK) st = clai_tensor_view(dst, &vc, 3, cshape, cstr, 0);
  for (int64_t n0 = 0; st == CLAI_OK && n0 < g->N; n0 += nbmax) {
    const int64_t nb = g->N - n0 < nbmax ? g->N - n0 : nbmax;
    st = rows(ctx, gyt->buf->mem, gy, n0, nb, g);
    if (st == CLAI_OK) st = clai__im2col(ctx, col->buf->mem, x, n0, nb, g);
    const int64_t ashape[3] = {G, Og, nb * P}, astr[3] = {Og * nb * P, nb * P, 1};
    const int64_t bshape[3] = {G, K, nb * P}, bstr[3] = {K * nb * P, nb * P, 1};
    if (st == CLAI_OK) st = clai_tensor_view(gyt, &va, 3, ashape, astr, 0);
    if (st == CLAI_OK) st = clai_tensor_view(col, &vb, 3, bshape, bstr, 0);
    if (st == CLAI_OK) st = clai_matmul(ctx, vc, va, 0, vb, 1, 1.0f, n0 == 0 ? 0.0f : 1.0f);
    clai_tensor_free(va);
    clai_tensor_free(vb);
    va = vb = NULL;
  }
  if (st == CLAI_OK && acc != NULL) st = clai__copy(ctx, gw, acc, "clai_conv2d_backward_weight");
  clai_tensor_free(vc);
  clai_tensor_free(gyt);
  clai_tensor_free(col);
  clai_tensor_free(acc);
  return st;
}

/* The packed family's weight gradient, an implicit GEMM over a zero-padded copy of x (cl/matmul_packed.cl's
 * clai_conv_wgrad): rows are the taps (c, kh, kw), columns the output channels of grad_out transposed per
 * chunk to positions x channels (clai_conv_gyt), and the reduction runs over the chunk's positions, split
 * into slices when the taps and channels make too few tiles to keep the cores busy (the CNN's first layer:
 * 25 taps x 32 channels). Later chunks of images add to the first one's partial sums, and
 * clai_conv_wgrad_sum adds the slices in order at the end. */
static clai_status weight_igemm(clai_context *ctx, clai_tensor *gw, const clai_tensor *x, const clai_tensor *gy,
                                const clai__conv_geom *g) {
  const struct clai__gemm_packed *pk = &ctx->gemm.packed;
  const int64_t G = g->groups, Cg = g->C / G, Og = g->O / G, taps = g->KH * g->KW, K = Cg * taps,
                P = g->OH * g->OW, Hp = g->H + g->pt + g->pb, Wp = g->W + g->pl + g->pr;
  const int64_t nr = (int64_t)pk->cn * pk->vw, Ogp = (Og + nr - 1) / nr * nr, Kp = (K + pk->rm - 1) / pk->rm * pk->rm;
  uint64_t xbytes, ybytes;
  clai_status st = clai__conv_padded_bytes(ctx, "clai_conv2d_backward_weight", g, &xbytes);
  if (st != CLAI_OK) return st;
  if (!clai__mul_ok((uint64_t)(G * P), (uint64_t)Ogp * 4, &ybytes))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "clai_conv2d_backward_weight: the transposed grad_out is too large");
  const int64_t nbmax = clai__conv_chunk_images(g, xbytes + ybytes, clai__conv_col_budget(ctx));
  /* positions per slice: the tiles times the slices make 256 work-items or more, 64 positions at least */
  const int64_t tiles = Kp / pk->rm * (Ogp / nr) * G, want = (256 + tiles - 1) / tiles;
  int64_t L = (nbmax * P + want - 1) / want;
  if (L < 64) L = 64;
  const int64_t Smax = (nbmax * P + L - 1) / L;
  clai_tensor *xp = NULL, *gyt = NULL, *part = NULL;
  const int64_t xshape[4] = {nbmax, g->C, Hp, Wp}, yshape[3] = {G, nbmax * P, Ogp}, pshape[3] = {G * Smax, Kp, Ogp};
  st = clai_tensor_init(ctx, &xp, CLAI_DTYPE_F32, 4, xshape);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &gyt, CLAI_DTYPE_F32, 3, yshape);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &part, CLAI_DTYPE_F32, 3, pshape);
  const cl_long sxn = g->C * Hp * Wp, syn = gy->strides[0], syc = gy->strides[1], syh = gy->strides[2],
                syw = gy->strides[3], woff = gw->offset, swo = gw->strides[0], swc = gw->strides[1],
                swh = gw->strides[2], sww = gw->strides[3];
  const cl_int cL = (cl_int)L, cg = (cl_int)Cg, chp = (cl_int)Hp, cwp = (cl_int)Wp, KH = (cl_int)g->KH,
               KW = (cl_int)g->KW, OH = (cl_int)g->OH, OW = (cl_int)g->OW, sth = (cl_int)g->sh, stw = (cl_int)g->sw,
               dh = (cl_int)g->dh, dw = (cl_int)g->dw, ckp = (cl_int)Kp, cogp = (cl_int)Ogp, og = (cl_int)Og,
               O = (cl_int)g->O, cG = (cl_int)G;
  for (int64_t n0 = 0; st == CLAI_OK && n0 < g->N; n0 += nbmax) {
    const int64_t nb = g->N - n0 < nbmax ? g->N - n0 : nbmax, S = (nb * P + L - 1) / L;
    const cl_long yoff = gy->offset + n0 * syn;
    const cl_int np = (cl_int)(nb * P), cS = (cl_int)S, accumulate = n0 > 0;
    st = clai__conv_pad(ctx, xp->buf->mem, x, n0, nb, g);
    size_t gyg[2] = {(size_t)(nb * g->OH), (size_t)G};
    if (st == CLAI_OK)
      st = clai__launch(ctx, CLAI__K_CONV_GYT, gyg, 13, CLAI__ARG(gyt->buf->mem), CLAI__ARG(gy->buf->mem),
                        CLAI__ARG(yoff), CLAI__ARG(syn), CLAI__ARG(syc), CLAI__ARG(syh), CLAI__ARG(syw), CLAI__ARG(np),
                        CLAI__ARG(cG), CLAI__ARG(og), CLAI__ARG(cogp), CLAI__ARG(OH), CLAI__ARG(OW));
    size_t gwg[3] = {(size_t)(Kp / pk->rm), (size_t)(Ogp / nr), (size_t)(G * S)};
    if (st == CLAI_OK)
      st = clai__launch(ctx, CLAI__K_CONV_WGRAD, gwg, 21, CLAI__ARG(part->buf->mem), CLAI__ARG(xp->buf->mem),
                        CLAI__ARG(gyt->buf->mem), CLAI__ARG(np), CLAI__ARG(cL), CLAI__ARG(cS), CLAI__ARG(cg),
                        CLAI__ARG(chp), CLAI__ARG(cwp), CLAI__ARG(KH), CLAI__ARG(KW), CLAI__ARG(OH), CLAI__ARG(OW),
                        CLAI__ARG(sth), CLAI__ARG(stw), CLAI__ARG(dh), CLAI__ARG(dw), CLAI__ARG(ckp), CLAI__ARG(cogp),
                        CLAI__ARG(accumulate), CLAI__ARG(sxn));
  }
  /* the first chunk wrote all Smax slices (it is a whole chunk); later ones added to theirs */
  const cl_int smax = (cl_int)Smax;
  size_t gsum[2] = {(size_t)K, (size_t)g->O};
  if (st == CLAI_OK)
    st = clai__launch(ctx, CLAI__K_CONV_WGRAD_SUM, gsum, 15, CLAI__ARG(gw->buf->mem), CLAI__ARG(part->buf->mem),
                      CLAI__ARG(woff), CLAI__ARG(swo), CLAI__ARG(swc), CLAI__ARG(swh), CLAI__ARG(sww),
                      CLAI__ARG(smax), CLAI__ARG(og), CLAI__ARG(cg), CLAI__ARG(KH), CLAI__ARG(KW), CLAI__ARG(ckp),
                      CLAI__ARG(cogp), CLAI__ARG(O));
  clai_tensor_free(part);
  clai_tensor_free(gyt);
  clai_tensor_free(xp);
  return st;
}

clai_status clai_conv2d_backward_weight(clai_context *ctx, clai_tensor *grad_w, clai_tensor *grad_bias,
                                        const clai_tensor *x, const clai_tensor *grad_out,
                                        const clai_conv2d_params *params) {
  const char *fn = "clai_conv2d_backward_weight";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, grad_w, fn, "grad_w");
  if (s == CLAI_OK && grad_bias != NULL) s = clai__check_out(ctx, grad_bias, fn, "grad_bias");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, grad_out, fn, "grad_out");
  if (s != CLAI_OK) return s;
  clai__conv_geom g;
  s = conv_resolve(ctx, fn, x, "x", grad_w, "grad_w", grad_out, params, &g);
  if (s == CLAI_OK && grad_bias != NULL) s = clai__conv_need_dtype(ctx, fn, grad_bias, "grad_bias", x->dtype, "x");
  if (s != CLAI_OK) return s;
  char a[160];
  if (grad_bias != NULL && (grad_bias->ndim != 1 || grad_bias->shape[0] != g.O))
    return clai__error(ctx, CLAI_E_SHAPE, "%s: grad_bias is %s, expected [%lld] (one per output channel)", fn,
                       clai__shape_str(grad_bias->ndim, grad_bias->shape, a, sizeof a), (long long)g.O);
  if (clai__tensors_overlap(grad_w, x) || clai__tensors_overlap(grad_w, grad_out) ||
      (grad_bias != NULL && (clai__tensors_overlap(grad_bias, x) || clai__tensors_overlap(grad_bias, grad_out) ||
                             clai__tensors_overlap(grad_bias, grad_w))))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad_w or grad_bias overlaps x, grad_out or each other in memory",
                       fn);
  if (g.O == 0) return CLAI_OK;
  if (g.N == 0) {
    s = clai_fill(ctx, grad_w, 0.0);
    if (s == CLAI_OK && grad_bias != NULL) s = clai_fill(ctx, grad_bias, 0.0);
    return s;
  }
  if (grad_bias != NULL) s = bias_grad(ctx, grad_bias, grad_out, &g);
  if (s != CLAI_OK || g.C == 0) return s;
  /* (the direct kernel walks N * OH * OW per weight: past a device's loop budget, the GEMM) */
  if (g.O / g.groups < DIRECT_MAX_OG && g.N * g.OH * g.OW <= clai__loop_cap(ctx, 1))
    return weight_direct(ctx, grad_w, x, grad_out, &g);
  if (clai__conv_igemm_ok(ctx, x, grad_out, grad_w, NULL))
    return weight_igemm(ctx, grad_w, x, grad_out, &g);
  return weight_gemm(ctx, grad_w, x, grad_out, &g);
}

/* ---- pooling ------------------------------------------------------------------------------------------ */

/* mode 1 max (indices), 2 average over the whole window, 3 average over the input elements. */
static clai_status pool_launch(clai_context *ctx, clai_tensor *gx, const clai_tensor *gy, const cl_long *ys,
                               const clai_tensor *idx, const clai__conv_geom *g, int mode) {
  cl_long go, gs[4];
  tensor_strides4(gx, &go, gs);
  const cl_long yo = gy->offset, io = idx != NULL ? idx->offset : 0;
  const cl_long is[4] = {idx ? idx->strides[0] : 0, idx ? idx->strides[1] : 0, idx ? idx->strides[2] : 0,
                         idx ? idx->strides[3] : 0};
  const cl_int N = (cl_int)g->N, C = (cl_int)g->C, H = (cl_int)g->H, W = (cl_int)g->W, OH = (cl_int)g->OH,
               OW = (cl_int)g->OW, KH = (cl_int)g->KH, KW = (cl_int)g->KW, sth = (cl_int)g->sh,
               stw = (cl_int)g->sw, pt = (cl_int)g->pt, pl = (cl_int)g->pl, cmode = mode;
  cl_mem imem = idx != NULL ? idx->buf->mem : gy->buf->mem;
  /* the 2x2 route of cl/conv_backward.cl: a work-item per plane (rows of 28 were too little work for one;
   * POCL: [128, 32, 28, 28] in about half the time), not where the plane would pass a device's loop budget.
   * A row's walk: per chunk of 64 columns, the window rows over it by the windows that meet the chunk, each
   * adding one element (max) or its columns in the chunk (average). */
  const cl_int plane = mode == 1 && g->KH == 2 && g->KW == 2 && g->sh == 2 && g->sw == 2 && g->pt == 0 &&
                       g->pl == 0 && gs[3] == 1 && ys[3] == 1 && is[3] == 1 &&
                       g->H * g->W <= clai__loop_cap(ctx, 2);
  const int64_t wr = (g->KH + g->sh - 1) / g->sh, wrows = wr < g->OH ? wr : g->OH, wins = (64 + g->KW - 1) / g->sw + 1,
                adds = mode == 1 ? 1 : g->KW < 64 ? g->KW : 64;
  const int64_t walk = (g->W + 63) / 64 * (128 + wrows * (wins < g->OW ? wins : g->OW) * (adds + 1));
  if (!plane && walk > clai__loop_cap(ctx, 0))
    return clai__row_too_long(ctx, "pooling backward", g->W);
  size_t global[3] = {plane ? 1 : (size_t)g->H, (size_t)g->C, (size_t)g->N};
  const int k = gx->dtype == CLAI_DTYPE_F16 ? CLAI__K_POOL2D_BWD_F16 : CLAI__K_POOL2D_BWD_F32;
  return clai__launch(ctx, k, global, 32, CLAI__ARG(gx->buf->mem), CLAI__ARG(gy->buf->mem), CLAI__ARG(imem),
                      CLAI__ARG(go), CLAI__ARG(gs[0]), CLAI__ARG(gs[1]), CLAI__ARG(gs[2]), CLAI__ARG(gs[3]),
                      CLAI__ARG(yo), CLAI__ARG(ys[0]), CLAI__ARG(ys[1]), CLAI__ARG(ys[2]), CLAI__ARG(ys[3]),
                      CLAI__ARG(io), CLAI__ARG(is[0]), CLAI__ARG(is[1]), CLAI__ARG(is[2]), CLAI__ARG(is[3]),
                      CLAI__ARG(N), CLAI__ARG(C), CLAI__ARG(H), CLAI__ARG(W), CLAI__ARG(OH), CLAI__ARG(OW),
                      CLAI__ARG(KH), CLAI__ARG(KW), CLAI__ARG(sth), CLAI__ARG(stw), CLAI__ARG(pt), CLAI__ARG(pl),
                      CLAI__ARG(cmode), CLAI__ARG(plane));
}

static clai_status pool_backward(clai_context *ctx, const char *fn, clai_tensor *gx, const clai_tensor *gy,
                                 const clai_tensor *idx, const clai_pool2d_params *p, int max) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, gx, fn, "grad_x");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, gy, fn, "grad_out");
  if (s == CLAI_OK && max) s = clai__check_tensor(ctx, idx, fn, "indices");
  if (s != CLAI_OK) return s;
  if (p == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: params is NULL (the kernel size is required)", fn);
  if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 0 || p->stride_w < 0)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: kernel %lldx%lld must be at least 1x1 and stride %lldx%lld not negative",
                       fn, (long long)p->kernel_h, (long long)p->kernel_w, (long long)p->stride_h, (long long)p->stride_w);
  if (p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0 || p->pad_top >= p->kernel_h ||
      p->pad_bottom >= p->kernel_h || p->pad_left >= p->kernel_w || p->pad_right >= p->kernel_w)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: padding t%lld b%lld l%lld r%lld must be in [0, kernel) for kernel %lldx%lld",
                       fn, (long long)p->pad_top, (long long)p->pad_bottom, (long long)p->pad_left,
                       (long long)p->pad_right, (long long)p->kernel_h, (long long)p->kernel_w);
  s = clai__conv_need_4d(ctx, fn, gx, "grad_x");
  if (s == CLAI_OK) s = clai__conv_need_4d(ctx, fn, gy, "grad_out");
  const clai_dtype dt = gx->dtype == CLAI_DTYPE_F16 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, gx, "grad_x", dt, "grad_x");
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, gy, "grad_out", dt, "grad_x");
  if (s != CLAI_OK) return s;
  if (max && idx->dtype != CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: indices is %s, expected i32", fn, clai_dtype_name(idx->dtype));
  clai__conv_geom g;
  s = clai__pool_geom(ctx, fn, gx, p, &g);
  if (s != CLAI_OK) return s;
  char a[160], b[160];
  const int64_t want[4] = {g.N, g.C, g.OH, g.OW};
  if (memcmp(gy->shape, want, sizeof want) != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: grad_out is %s, expected %s (the forward's output shape)", fn,
                       clai__shape_str(4, gy->shape, a, sizeof a), clai__shape_str(4, want, b, sizeof b));
  if (max && (idx->ndim != 4 || memcmp(idx->shape, want, sizeof want) != 0))
    return clai__error(ctx, CLAI_E_SHAPE, "%s: indices is %s, expected grad_out's shape %s", fn,
                       clai__shape_str(idx->ndim, idx->shape, a, sizeof a), clai__shape_str(4, want, b, sizeof b));
  if (clai__tensors_overlap(gx, gy) || (max && clai__tensors_overlap(gx, idx)))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad_x overlaps grad_out or indices in memory", fn);
  const cl_long ys[4] = {gy->strides[0], gy->strides[1], gy->strides[2], gy->strides[3]};
  return pool_launch(ctx, gx, gy, ys, max ? idx : NULL, &g, max ? 1 : p->count_include_pad ? 2 : 3);
}

clai_status clai_max_pool2d_backward(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_out,
                                     const clai_tensor *indices, const clai_pool2d_params *params) {
  return pool_backward(ctx, "clai_max_pool2d_backward", grad_x, grad_out, indices, params, 1);
}

clai_status clai_avg_pool2d_backward(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_out,
                                     const clai_pool2d_params *params) {
  return pool_backward(ctx, "clai_avg_pool2d_backward", grad_x, grad_out, NULL, params, 0);
}

clai_status clai_global_avg_pool2d_backward(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_out) {
  const char *fn = "clai_global_avg_pool2d_backward";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, grad_x, fn, "grad_x");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, grad_out, fn, "grad_out");
  if (s == CLAI_OK) s = clai__conv_need_4d(ctx, fn, grad_x, "grad_x");
  const clai_dtype dt = grad_x->dtype == CLAI_DTYPE_F16 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, grad_x, "grad_x", dt, "grad_x");
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, grad_out, "grad_out", dt, "grad_x");
  if (s != CLAI_OK) return s;
  char a[160], b[160];
  const int64_t N = grad_x->shape[0], C = grad_x->shape[1], H = grad_x->shape[2], W = grad_x->shape[3];
  const clai_tensor *gy = grad_out;
  int ok = (gy->ndim == 2 || (gy->ndim == 4 && gy->shape[2] == 1 && gy->shape[3] == 1)) && gy->shape[0] == N &&
           gy->shape[1] == C;
  if (!ok)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: grad_out is %s, expected [%lld, %lld] or [%lld, %lld, 1, 1] for grad_x %s",
                       fn, clai__shape_str(gy->ndim, gy->shape, a, sizeof a), (long long)N, (long long)C, (long long)N,
                       (long long)C, clai__shape_str(4, grad_x->shape, b, sizeof b));
  if (H * W < 1)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: grad_x %s has an empty plane", fn,
                       clai__shape_str(4, grad_x->shape, a, sizeof a));
  if (big(N) || big(C) || big(H) || big(W) || big(H * W))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: every size must be below 2^31", fn);
  if (clai__tensors_overlap(grad_x, gy))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: grad_x overlaps grad_out in memory", fn);
  /* average pooling with one window over the whole plane, dividing by H*W */
  clai__conv_geom g;
  memset(&g, 0, sizeof g);
  g.N = N, g.C = C, g.H = H, g.W = W, g.KH = H, g.KW = W, g.sh = g.sw = 1, g.OH = g.OW = 1, g.dh = g.dw = 1;
  const cl_long ys[4] = {gy->strides[0], gy->strides[1], 0, 0};
  return pool_launch(ctx, grad_x, gy, ys, NULL, &g, 2);
}
