/* op-conv.c - clai_conv2d and 2-D pooling over NCHW tensors (kernels in cl/conv.cl).
 *
 * clai_conv2d takes one of three routes:
 * - implicit GEMM (the packed family, i.e. CPUs, all operands f32): clai_conv_igemm (cl/matmul_packed.cl)
 *   computes an RM x NR tile of [positions, output channels] per work-item over every tap, its A operand
 *   read straight from a zero-padded copy of a chunk of images (clai_conv_pad) and its B from the weights
 *   transposed into whole column tiles (clai_conv_wt); bias and activation are applied as the tile is
 *   stored into out. The im2col route below writes the unfolded input (KH*KW times the input), packs it
 *   and reads it back: 80 MB a step for the CNN's second layer, more time than the products themselves
 *   took on POCL (2 cores, batch 128: that layer's forward 22.6 ms against 13.0 now, the product at
 *   ~200 GFLOP/s either way). The data gradient of stride 1 is this same convolution, of the padded output
 *   gradient with the window turned around; the weight gradient has its own kernel (op-conv-backward.c).
 * - im2col + GEMM (the other families, i.e. GPUs, and f16): a chunk of nb images is unfolded into a dense
 *   f32 workspace col [G, Cg*KH*KW, nb*OH*OW] (clai__im2col, kept apart so that col2im for the backward
 *   pass can sit next to it), one clai_matmul batched over the G groups computes acc[g] = w[g] x col[g]
 *   with the weight seen as [G, O/G, Cg*KH*KW], and the epilogue kernel adds the bias, applies the
 *   activation and scatters acc [O, nb, OH*OW] into out's [nb, O, OH, OW] view (any strides, f32 or f16).
 *   Putting the nb images side by side makes one wide GEMM (N = nb*OH*OW) instead of nb narrow ones, and
 *   the reordering costs nothing extra because the epilogue pass is needed for bias and activation
 *   anyway. The chunk size comes from a byte budget, so the workspaces stay bounded whatever N is.
 * - direct: one kernel does everything, a work-item per output row. It wins where groups have few output
 *   channels (depthwise): there the GEMM's M is 1 or 2 and im2col writes KH*KW times the input for it.
 *   Measured on POCL 3.1 (2 cores), depthwise 3x3 on [32, 64, 28, 28]: direct 4.4 ms, im2col + GEMM 17 ms;
 *   the CNN's 5x5 layers: im2col + GEMM 2.6 (1 -> 32 channels) and 6 (32 -> 64) times faster than a direct
 *   kernel; two register-tiled direct kernels for the first layer were slower still on POCL. */
#include <limits.h>
#include <string.h>

#include "internal.h"

/* Bytes of workspace (col and acc, or the gradients' column buffers) for one chunk of images; when one image
 * needs more, a chunk is one image. On CPUs small enough that the column buffer is still in cache when the
 * GEMM's packing (or col2im) reads it, elsewhere large (wide GEMMs for GPUs). On POCL (2 cores, batch 128)
 * the CNN's second layer took, with 4 MiB against 32: forward 53-61 against 67-83 ms of kernel time (the
 * packing pass halved), weight and data gradients 58 and 69 against 67 and 75 ms; 2 MiB was no better. */
#define COL_BUDGET_CPU ((uint64_t)4 << 20)
#define COL_BUDGET ((uint64_t)32 << 20)
uint64_t clai__conv_col_budget(const clai_context *ctx) { return ctx->caps.is_cpu ? COL_BUDGET_CPU : COL_BUDGET; }
/* Convolutions whose groups have fewer output channels than this run the direct kernel (depthwise). */
#define DIRECT_MAX_OG 4

clai_status clai__conv_need_4d(clai_context *ctx, const char *fn, const clai_tensor *t, const char *what) {
  char s[160];
  if (t->ndim != 4)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: %s must be 4-D [N, C, H, W], is %s", fn, what,
                       clai__shape_str(t->ndim, t->shape, s, sizeof s));
  return CLAI_OK;
}

clai_status clai__conv_need_dtype(clai_context *ctx, const char *fn, const clai_tensor *t, const char *what,
                                  clai_dtype want, const char *whose) {
  if (t->dtype != want || (want != CLAI_DTYPE_F32 && want != CLAI_DTYPE_F16))
    return clai__error(ctx, CLAI_E_DTYPE, "%s: %s is %s, expected %s (%s's dtype; f32 or f16)", fn, what,
                       clai_dtype_name(t->dtype), clai_dtype_name(want), whose);
  return CLAI_OK;
}

int64_t clai__conv_out_len(int64_t in, int64_t pa, int64_t pb, int64_t k, int64_t d, int64_t s) {
  int64_t num = in + pa + pb - (d * (k - 1) + 1);
  return num < 0 ? 0 : num / s + 1;
}

static int big(int64_t v) { return v > INT_MAX; }

clai_status clai__row_too_long(clai_context *ctx, const char *what, int64_t n) {
  return clai__error(ctx, CLAI_E_UNSUPPORTED,
                     "%s: a row of %lld elements is more than one work-item of this device may walk (its loops stop "
                     "after %lld iterations)", what, (long long)n, (long long)ctx->caps.loop_limit);
}

clai_status clai__im2col(clai_context *ctx, cl_mem col, const clai_tensor *x, int64_t n0, int64_t nb,
                         const clai__conv_geom *g) {
  const cl_long xoff = x->offset + n0 * x->strides[0], sn = x->strides[0], sc = x->strides[1],
                sh = x->strides[2], sw = x->strides[3];
  const cl_int cnb = (cl_int)nb, C = (cl_int)g->C, H = (cl_int)g->H, W = (cl_int)g->W, KH = (cl_int)g->KH,
               KW = (cl_int)g->KW, OH = (cl_int)g->OH, OW = (cl_int)g->OW, sth = (cl_int)g->sh,
               stw = (cl_int)g->sw, pt = (cl_int)g->pt, pl = (cl_int)g->pl, dh = (cl_int)g->dh,
               dw = (cl_int)g->dw;
  const cl_int rb = clai__band_rows(ctx, g->OH, g->OW + 3);
  if (rb == 0) return clai__row_too_long(ctx, "clai_conv2d (its im2col)", g->OW);
  size_t global[2] = {(size_t)nb * (size_t)((OH + rb - 1) / rb), (size_t)(g->C * g->KH * g->KW)};
  int k = x->dtype == CLAI_DTYPE_F16 ? CLAI__K_IM2COL_F16 : CLAI__K_IM2COL_F32;
  return clai__launch(ctx, k, global, 22, CLAI__ARG(col), CLAI__ARG(x->buf->mem), CLAI__ARG(xoff), CLAI__ARG(sn),
                      CLAI__ARG(sc), CLAI__ARG(sh), CLAI__ARG(sw), CLAI__ARG(cnb), CLAI__ARG(C), CLAI__ARG(H),
                      CLAI__ARG(W), CLAI__ARG(KH), CLAI__ARG(KW), CLAI__ARG(OH), CLAI__ARG(OW), CLAI__ARG(sth),
                      CLAI__ARG(stw), CLAI__ARG(pt), CLAI__ARG(pl), CLAI__ARG(dh), CLAI__ARG(dw), CLAI__ARG(rb));
}

/* out[n0 .. n0+nb) = act(acc + bias), acc dense f32 [O, nb, OH*OW] at element aoff of `acc`. */
static clai_status epilogue(clai_context *ctx, clai_tensor *out, cl_mem acc, int64_t aoff, const clai_tensor *bias,
                            int64_t n0, int64_t nb, const clai__conv_geom *g, int act) {
  const cl_long ooff = out->offset + n0 * out->strides[0], son = out->strides[0], soc = out->strides[1],
                soh = out->strides[2], sow = out->strides[3], ao = aoff,
                boff = bias != NULL ? bias->offset : 0, sb = bias != NULL ? bias->strides[0] : 0;
  const cl_int cnb = (cl_int)nb, O = (cl_int)g->O, OH = (cl_int)g->OH, OW = (cl_int)g->OW,
               has_bias = bias != NULL, cact = act;
  cl_mem bmem = bias != NULL ? bias->buf->mem : acc;
  const cl_int rb = clai__band_rows(ctx, g->OH, g->OW);
  if (rb == 0) return clai__row_too_long(ctx, "clai_conv2d", g->OW);
  size_t global[2] = {(size_t)g->O, (size_t)nb * (size_t)((OH + rb - 1) / rb)};
  int k = out->dtype == CLAI_DTYPE_F16 ? CLAI__K_CONV_EPILOGUE_F16 : CLAI__K_CONV_EPILOGUE_F32;
  return clai__launch(ctx, k, global, 18, CLAI__ARG(out->buf->mem), CLAI__ARG(acc), CLAI__ARG(bmem),
                      CLAI__ARG(ooff), CLAI__ARG(son), CLAI__ARG(soc), CLAI__ARG(soh), CLAI__ARG(sow), CLAI__ARG(ao),
                      CLAI__ARG(boff), CLAI__ARG(sb), CLAI__ARG(cnb), CLAI__ARG(O), CLAI__ARG(OH), CLAI__ARG(OW),
                      CLAI__ARG(has_bias), CLAI__ARG(cact), CLAI__ARG(rb));
}

static clai_status conv_direct(clai_context *ctx, clai_tensor *out, const clai_tensor *x, const clai_tensor *w,
                               const clai_tensor *bias, const clai__conv_geom *g, int act) {
  const int k = x->dtype == CLAI_DTYPE_F16 ? CLAI__K_CONV_DIRECT_F16 : CLAI__K_CONV_DIRECT_F32;
  const cl_long xoff = x->offset, sxn = x->strides[0], sxc = x->strides[1], sxh = x->strides[2], sxw = x->strides[3];
  const cl_long woff = w->offset, swo = w->strides[0], swc = w->strides[1], swh = w->strides[2], sww = w->strides[3];
  const cl_long ooff = out->offset, son = out->strides[0], soc = out->strides[1], soh = out->strides[2],
                sow = out->strides[3];
  const cl_long boff = bias != NULL ? bias->offset : 0, sb = bias != NULL ? bias->strides[0] : 0;
  const cl_int N = (cl_int)g->N, C = (cl_int)g->C, H = (cl_int)g->H, W = (cl_int)g->W, O = (cl_int)g->O,
               KH = (cl_int)g->KH, KW = (cl_int)g->KW, OH = (cl_int)g->OH, OW = (cl_int)g->OW,
               sth = (cl_int)g->sh, stw = (cl_int)g->sw, pt = (cl_int)g->pt, pl = (cl_int)g->pl,
               dh = (cl_int)g->dh, dw = (cl_int)g->dw, groups = (cl_int)g->groups, has_bias = bias != NULL,
               cact = act;
  cl_mem bmem = bias != NULL ? bias->buf->mem : w->buf->mem;
  size_t global[3] = {(size_t)g->OH, (size_t)g->O, (size_t)g->N};
  return clai__launch(ctx, k, global, 39, CLAI__ARG(out->buf->mem), CLAI__ARG(x->buf->mem), CLAI__ARG(w->buf->mem),
                      CLAI__ARG(bmem), CLAI__ARG(xoff), CLAI__ARG(sxn), CLAI__ARG(sxc), CLAI__ARG(sxh), CLAI__ARG(sxw),
                      CLAI__ARG(woff), CLAI__ARG(swo), CLAI__ARG(swc), CLAI__ARG(swh), CLAI__ARG(sww), CLAI__ARG(ooff),
                      CLAI__ARG(son), CLAI__ARG(soc), CLAI__ARG(soh), CLAI__ARG(sow), CLAI__ARG(boff), CLAI__ARG(sb),
                      CLAI__ARG(N), CLAI__ARG(C), CLAI__ARG(H), CLAI__ARG(W), CLAI__ARG(O), CLAI__ARG(KH),
                      CLAI__ARG(KW), CLAI__ARG(OH), CLAI__ARG(OW), CLAI__ARG(sth), CLAI__ARG(stw), CLAI__ARG(pt),
                      CLAI__ARG(pl), CLAI__ARG(dh), CLAI__ARG(dw), CLAI__ARG(groups), CLAI__ARG(has_bias),
                      CLAI__ARG(cact));
}


clai_status clai__pool_geom(clai_context *ctx, const char *fn, const clai_tensor *x, const clai_pool2d_params *p,
                            clai__conv_geom *out) {
  clai__conv_geom g;
  memset(&g, 0, sizeof g);
  g.N = x->shape[0], g.C = x->shape[1], g.H = x->shape[2], g.W = x->shape[3];
  g.KH = p->kernel_h, g.KW = p->kernel_w;
  g.sh = p->stride_h ? p->stride_h : p->kernel_h, g.sw = p->stride_w ? p->stride_w : p->kernel_w;
  g.pt = p->pad_top, g.pb = p->pad_bottom, g.pl = p->pad_left, g.pr = p->pad_right;
  g.dh = g.dw = 1;
  if (big(g.N) || big(g.C) || big(g.H) || big(g.W) || big(g.KH) || big(g.KW) || big(g.sh) || big(g.sw) ||
      big(g.H * g.W))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: every size and parameter must be below 2^31", fn);
  g.OH = clai__conv_out_len(g.H, g.pt, g.pb, g.KH, 1, g.sh);
  g.OW = clai__conv_out_len(g.W, g.pl, g.pr, g.KW, 1, g.sw);
  if (g.OH < 1 || g.OW < 1)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: output size would be %lldx%lld: the window %lldx%lld does not fit the "
                       "padded input %lldx%lld", fn, (long long)g.OH, (long long)g.OW, (long long)g.KH, (long long)g.KW,
                       (long long)(g.H + g.pt + g.pb), (long long)(g.W + g.pl + g.pr));
  *out = g;
  return CLAI_OK;
}

int64_t clai__conv_chunk_images(const clai__conv_geom *g, uint64_t per_image, uint64_t budget) {
  int64_t nb = per_image > 0 ? (int64_t)(budget / per_image) : g->N;
  if (nb < 1) nb = 1;
  if (nb > g->N) nb = g->N;
  const int64_t P = g->OH * g->OW;
  if (big(nb * P)) nb = INT_MAX / P;
  return nb;
}

/* ---- the implicit GEMM (the packed family: CPUs) ------------------------------------------------------- */

int clai__conv_igemm_ok(const clai_context *ctx, const clai_tensor *x, const clai_tensor *w, const clai_tensor *out,
                        const clai_tensor *bias) {
  return ctx->gemm.family == CLAI__GEMM_PACKED && x->dtype == CLAI_DTYPE_F32 && w->dtype == CLAI_DTYPE_F32 &&
         out->dtype == CLAI_DTYPE_F32 && (bias == NULL || bias->dtype == CLAI_DTYPE_F32);
}

clai_status clai__conv_wt(clai_context *ctx, clai_tensor **bt, const clai_tensor *w, const clai__conv_geom *g,
                          int flip, int64_t *colsp) {
  const int64_t G = g->groups, Og = g->O / G, Cg = g->C / G, taps = g->KH * g->KW;
  const int64_t nr = (int64_t)ctx->gemm.packed.cn * ctx->gemm.packed.vw, cols = flip ? Cg : Og;
  const int64_t K = (flip ? Og : Cg) * taps;
  *colsp = (cols + nr - 1) / nr * nr;
  if (K > INT_MAX || *colsp > INT_MAX)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "convolution: %s*KH*KW = %lld must be below 2^31",
                       flip ? "O/groups" : "C/groups", (long long)K);
  const int64_t shape[3] = {G, K, *colsp};
  clai_status st = clai_tensor_init(ctx, bt, CLAI_DTYPE_F32, 3, shape);
  if (st != CLAI_OK) return st;
  const cl_long woff = w->offset, swo = w->strides[0], swc = w->strides[1], swh = w->strides[2], sww = w->strides[3];
  const cl_int og = (cl_int)Og, cg = (cl_int)Cg, KH = (cl_int)g->KH, KW = (cl_int)g->KW, ccols = (cl_int)cols,
               ccolsp = (cl_int)*colsp, cflip = flip;
  size_t global[3] = {(size_t)*colsp, (size_t)K, (size_t)G};
  return clai__launch(ctx, CLAI__K_CONV_WT, global, 14, CLAI__ARG((*bt)->buf->mem), CLAI__ARG(w->buf->mem),
                      CLAI__ARG(woff), CLAI__ARG(swo), CLAI__ARG(swc), CLAI__ARG(swh), CLAI__ARG(sww), CLAI__ARG(og),
                      CLAI__ARG(cg), CLAI__ARG(KH), CLAI__ARG(KW), CLAI__ARG(ccols), CLAI__ARG(ccolsp),
                      CLAI__ARG(cflip));
}

clai_status clai__conv_padded_bytes(clai_context *ctx, const char *fn, const clai__conv_geom *g, uint64_t *bytes) {
  const int64_t Hp = g->H + g->pt + g->pb, Wp = g->W + g->pl + g->pr;
  if (!clai__mul_ok((uint64_t)g->C * (uint64_t)Hp, (uint64_t)Wp * 4, bytes) || Hp > INT_MAX || Wp > INT_MAX)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: the zero-padded input (%lld x %lld per plane) is too large", fn,
                       (long long)Hp, (long long)Wp);
  return CLAI_OK;
}

clai_status clai__conv_pad(clai_context *ctx, cl_mem xp, const clai_tensor *in, int64_t n0, int64_t nb,
                          const clai__conv_geom *g) {
  const int64_t Hp = g->H + g->pt + g->pb, Wp = g->W + g->pl + g->pr;
  const cl_long ioff = in->offset + n0 * in->strides[0], isn = in->strides[0], isc = in->strides[1],
                ish = in->strides[2], isw = in->strides[3];
  const cl_int cnb = (cl_int)nb, C = (cl_int)g->C, H = (cl_int)g->H, W = (cl_int)g->W, chp = (cl_int)Hp,
               cwp = (cl_int)Wp, pt = (cl_int)g->pt, pl = (cl_int)g->pl;
  size_t gpad[2] = {(size_t)g->C, (size_t)nb};
  return clai__launch(ctx, CLAI__K_CONV_PAD, gpad, 15, CLAI__ARG(xp), CLAI__ARG(in->buf->mem), CLAI__ARG(ioff),
                      CLAI__ARG(isn), CLAI__ARG(isc), CLAI__ARG(ish), CLAI__ARG(isw), CLAI__ARG(cnb), CLAI__ARG(C),
                      CLAI__ARG(H), CLAI__ARG(W), CLAI__ARG(chp), CLAI__ARG(cwp), CLAI__ARG(pt), CLAI__ARG(pl));
}

clai_status clai__conv_igemm(clai_context *ctx, const char *fn, clai_tensor *out, const clai_tensor *in,
                             const clai_tensor *bt, int64_t colsp, const clai_tensor *bias,
                             const clai__conv_geom *g, int act) {
  const int64_t G = g->groups, Cg = g->C / G, Og = g->O / G, P = g->OH * g->OW;
  const int64_t Hp = g->H + g->pt + g->pb, Wp = g->W + g->pl + g->pr;
  uint64_t per_image;
  clai_status st = clai__conv_padded_bytes(ctx, fn, g, &per_image);
  if (st != CLAI_OK) return st;
  const int64_t nbmax = clai__conv_chunk_images(g, per_image, clai__conv_col_budget(ctx));
  const struct clai__gemm_packed *pk = &ctx->gemm.packed;
  const int64_t nr = (int64_t)pk->cn * pk->vw;
  clai_tensor *xp = NULL;
  const int64_t xshape[4] = {nbmax, g->C, Hp, Wp};
  st = clai_tensor_init(ctx, &xp, CLAI_DTYPE_F32, 4, xshape);
  const cl_long son = out->strides[0], soc = out->strides[1], soh = out->strides[2], sow = out->strides[3],
                boff = bias != NULL ? bias->offset : 0, sb = bias != NULL ? bias->strides[0] : 0,
                sxn = g->C * Hp * Wp;
  const cl_int has_bias = bias != NULL, cact = act, cg = (cl_int)Cg, chp = (cl_int)Hp, cwp = (cl_int)Wp,
               KH = (cl_int)g->KH, KW = (cl_int)g->KW, OH = (cl_int)g->OH, OW = (cl_int)g->OW, sth = (cl_int)g->sh,
               stw = (cl_int)g->sw, dh = (cl_int)g->dh, dw = (cl_int)g->dw, og = (cl_int)Og, ogp = (cl_int)colsp;
  cl_mem bmem = bias != NULL ? bias->buf->mem : bt->buf->mem;
  for (int64_t n0 = 0; st == CLAI_OK && n0 < g->N; n0 += nbmax) {
    const int64_t nb = g->N - n0 < nbmax ? g->N - n0 : nbmax;
    const cl_long ooff = out->offset + n0 * son;
    const cl_int np = (cl_int)(nb * P);
    st = clai__conv_pad(ctx, xp->buf->mem, in, n0, nb, g);
    size_t global[3] = {(size_t)((nb * P + pk->rm - 1) / pk->rm), (size_t)((Og + nr - 1) / nr), (size_t)G};
    if (st == CLAI_OK)
      st = clai__launch(ctx, CLAI__K_CONV_IGEMM, global, 28, CLAI__ARG(out->buf->mem), CLAI__ARG(xp->buf->mem),
                        CLAI__ARG(bt->buf->mem), CLAI__ARG(bmem), CLAI__ARG(ooff), CLAI__ARG(son), CLAI__ARG(soc),
                        CLAI__ARG(soh), CLAI__ARG(sow), CLAI__ARG(boff), CLAI__ARG(sb), CLAI__ARG(has_bias),
                        CLAI__ARG(cact), CLAI__ARG(np), CLAI__ARG(cg), CLAI__ARG(chp), CLAI__ARG(cwp), CLAI__ARG(KH),
                        CLAI__ARG(KW), CLAI__ARG(OH), CLAI__ARG(OW), CLAI__ARG(sth), CLAI__ARG(stw), CLAI__ARG(dh),
                        CLAI__ARG(dw), CLAI__ARG(og), CLAI__ARG(ogp), CLAI__ARG(sxn));
  }
  clai_tensor_free(xp);
  return st;
}

static clai_status conv_igemm_fwd(clai_context *ctx, clai_tensor *out, const clai_tensor *x, const clai_tensor *w,
                                  const clai_tensor *bias, const clai__conv_geom *g, int act) {
  clai_tensor *bt = NULL;
  int64_t colsp;
  clai_status st = clai__conv_wt(ctx, &bt, w, g, 0, &colsp);
  if (st == CLAI_OK) st = clai__conv_igemm(ctx, "clai_conv2d", out, x, bt, colsp, bias, g, act);
  clai_tensor_free(bt);
  return st;
}

clai_status clai__conv_weight_groups(clai_context *ctx, const char *fn, const clai_tensor *w,
                                     const clai__conv_geom *g, clai_tensor **wt, clai_tensor **va) {
  const int64_t G = g->groups, Og = g->O / G, K = g->C / G * g->KH * g->KW;
  clai_status st = CLAI_OK;
  clai_tensor *src = (clai_tensor *)w;
  *wt = *va = NULL;
  if (w->dtype != CLAI_DTYPE_F32 || !clai_tensor_is_contiguous(w)) {
    /* the GEMM needs the weight as f32 rows of K with unit stride */
    st = clai_tensor_init(ctx, wt, CLAI_DTYPE_F32, 4, w->shape);
    if (st == CLAI_OK) st = clai__copy(ctx, *wt, w, fn);
    src = *wt;
  }
  const int64_t shape[3] = {G, Og, K}, strides[3] = {Og * K, K, 1};
  if (st == CLAI_OK) st = clai_tensor_view(src, va, 3, shape, strides, 0);
  return st;
}
static clai_status conv_gemm(clai_context *ctx, clai_tensor *out, const clai_tensor *x, const clai_tensor *w,
                             const clai_tensor *bias, const clai__conv_geom *g, int act) {
  const int64_t G = g->groups, Og = g->O / G, K = g->C / G * g->KH * g->KW, P = g->OH * g->OW, O = g->O;
  /* col has C*KH*KW rows (counted with int in the kernel) of nb*P columns (the GEMM's N, an int) */
  uint64_t rows, colel, per_image;
  if (!clai__mul_ok((uint64_t)g->C, (uint64_t)(g->KH * g->KW), &rows) || rows > INT_MAX ||
      !clai__mul_ok(rows, (uint64_t)P, &colel) || !clai__mul_ok(colel + (uint64_t)(O * P), 4, &per_image))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "clai_conv2d: C*KH*KW = %lld*%lld*%lld must be below 2^31",
                       (long long)g->C, (long long)g->KH, (long long)g->KW);
  const int64_t nbmax = clai__conv_chunk_images(g, per_image, clai__conv_col_budget(ctx));
  clai_tensor *wt = NULL, *col = NULL, *acc = NULL, *va = NULL, *vb = NULL, *vc = NULL;
  clai_status st = clai__conv_weight_groups(ctx, "clai_conv2d", w, g, &wt, &va);
  const int64_t colshape[2] = {G * K, nbmax * P}, accshape[2] = {O, nbmax * P};
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &col, CLAI_DTYPE_F32, 2, colshape);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &acc, CLAI_DTYPE_F32, 2, accshape);
  for (int64_t n0 = 0; st == CLAI_OK && n0 < g->N; n0 += nbmax) {
    const int64_t nb = g->N - n0 < nbmax ? g->N - n0 : nbmax;
    const int64_t bshape[3] = {G, K, nb * P}, bstr[3] = {K * nb * P, nb * P, 1};
    const int64_t cshape[3] = {G, Og, nb * P}, cstr[3] = {Og * nb * P, nb * P, 1};
    st = clai__im2col(ctx, col->buf->mem, x, n0, nb, g);
    if (st == CLAI_OK) st = clai_tensor_view(col, &vb, 3, bshape, bstr, 0);
    if (st == CLAI_OK) st = clai_tensor_view(acc, &vc, 3, cshape, cstr, 0);
    if (st == CLAI_OK) st = clai_matmul(ctx, vc, va, 0, vb, 0, 1.0f, 0.0f);
    if (st == CLAI_OK) st = epilogue(ctx, out, acc->buf->mem, acc->offset, bias, n0, nb, g, act);
    clai_tensor_free(vb);
    clai_tensor_free(vc);
    vb = vc = NULL;
  }
  clai_tensor_free(va);
  clai_tensor_free(acc);
  clai_tensor_free(col);
  clai_tensor_free(wt);
  return st;
}

clai_status clai_conv2d(clai_context *ctx, clai_tensor *out, const clai_tensor *x, const clai_tensor *w,
                        const clai_tensor *bias, const clai_conv2d_params *params) {
  const char *fn = "clai_conv2d";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, out, fn, "out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, w, fn, "w");
  if (s == CLAI_OK && bias != NULL) s = clai__check_tensor(ctx, bias, fn, "bias");
  if (s != CLAI_OK) return s;
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
  if ((int)p.activation < 0 || (int)p.activation > CLAI_ACT_SILU)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %d is not a clai_activation", fn, (int)p.activation);
  s = clai__conv_need_4d(ctx, fn, x, "x");
  if (s == CLAI_OK) s = clai__conv_need_4d(ctx, fn, w, "w");
  if (s == CLAI_OK) s = clai__conv_need_4d(ctx, fn, out, "out");
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, x, "x", x->dtype == CLAI_DTYPE_F16 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, "x");
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, w, "w", x->dtype, "x");
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, out, "out", x->dtype, "x");
  if (s == CLAI_OK && bias != NULL) s = clai__conv_need_dtype(ctx, fn, bias, "bias", x->dtype, "x");
  if (s != CLAI_OK) return s;
  clai__conv_geom g;
  g.N = x->shape[0], g.C = x->shape[1], g.H = x->shape[2], g.W = x->shape[3];
  g.O = w->shape[0], g.KH = w->shape[2], g.KW = w->shape[3];
  g.sh = p.stride_h ? p.stride_h : 1, g.sw = p.stride_w ? p.stride_w : 1;
  g.dh = p.dilation_h ? p.dilation_h : 1, g.dw = p.dilation_w ? p.dilation_w : 1;
  g.pt = p.pad_top, g.pb = p.pad_bottom, g.pl = p.pad_left, g.pr = p.pad_right;
  g.groups = p.groups ? p.groups : 1;
  char a[160], b[160];
  if (big(g.N) || big(g.C) || big(g.H) || big(g.W) || big(g.O) || big(g.KH) || big(g.KW) || big(g.sh) ||
      big(g.sw) || big(g.dh) || big(g.dw) || big(g.pt) || big(g.pb) || big(g.pl) || big(g.pr) || big(g.groups))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: every size and parameter must be below 2^31", fn);
  if (g.C % g.groups != 0 || g.O % g.groups != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: groups %lld must divide the channels of x (%lld) and of out (%lld)", fn,
                       (long long)g.groups, (long long)g.C, (long long)g.O);
  if (w->shape[1] * g.groups != g.C)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: channel mismatch: w %s has %lld input channels per group, x %s has %lld "
                       "channels in %lld groups", fn, clai__shape_str(4, w->shape, a, sizeof a), (long long)w->shape[1],
                       clai__shape_str(4, x->shape, b, sizeof b), (long long)g.C, (long long)g.groups);
  if (g.KH < 1 || g.KW < 1)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: w %s has an empty window", fn, clai__shape_str(4, w->shape, a, sizeof a));
  if (bias != NULL && (bias->ndim != 1 || bias->shape[0] != g.O))
    return clai__error(ctx, CLAI_E_SHAPE, "%s: bias is %s, expected [%lld] (one per output channel)", fn,
                       clai__shape_str(bias->ndim, bias->shape, a, sizeof a), (long long)g.O);
  g.OH = clai__conv_out_len(g.H, g.pt, g.pb, g.KH, g.dh, g.sh);
  g.OW = clai__conv_out_len(g.W, g.pl, g.pr, g.KW, g.dw, g.sw);
  if (g.OH < 1 || g.OW < 1)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: output size would be %lldx%lld: the window (%lldx%lld, dilation %lldx%lld) "
                       "does not fit the padded input %lldx%lld", fn, (long long)g.OH, (long long)g.OW, (long long)g.KH,
                       (long long)g.KW, (long long)g.dh, (long long)g.dw, (long long)(g.H + g.pt + g.pb),
                       (long long)(g.W + g.pl + g.pr));
  const int64_t want[4] = {g.N, g.O, g.OH, g.OW};
  if (memcmp(out->shape, want, sizeof want) != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: out is %s, expected %s", fn, clai__shape_str(4, out->shape, a, sizeof a),
                       clai__shape_str(4, want, b, sizeof b));
  if (big(g.OH * g.OW))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: an output plane of 2^31 elements or more", fn);
  if (clai__tensors_overlap(out, x) || clai__tensors_overlap(out, w) ||
      (bias != NULL && clai__tensors_overlap(out, bias)))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps x, w or bias in memory", fn);
  if (g.N == 0 || g.O == 0) return CLAI_OK;
  const int64_t Og = g.O / g.groups;
  /* (the direct kernel's row walks OW * C / groups * KH * KW taps: past a device's loop budget, the GEMM) */
  if (Og < DIRECT_MAX_OG && g.OW * (g.C / g.groups) * g.KH * g.KW <= clai__loop_cap(ctx, 2))
    return conv_direct(ctx, out, x, w, bias, &g, (int)p.activation);
  if (clai__conv_igemm_ok(ctx, x, w, out, bias))
    return conv_igemm_fwd(ctx, out, x, w, bias, &g, (int)p.activation);
  return conv_gemm(ctx, out, x, w, bias, &g, (int)p.activation);
}

/* ---- pooling ------------------------------------------------------------------------------------------ */

static clai_status pool2d(clai_context *ctx, const char *fn, clai_tensor *out, clai_tensor *indices,
                          const clai_tensor *x, const clai_pool2d_params *params, int avg) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, out, fn, "out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s == CLAI_OK && indices != NULL) s = clai__check_out(ctx, indices, fn, "indices");
  if (s != CLAI_OK) return s;
  if (params == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: params is NULL (the kernel size is required)", fn);
  const clai_pool2d_params *p = params;
  if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 0 || p->stride_w < 0)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: kernel %lldx%lld must be at least 1x1 and stride %lldx%lld not negative",
                       fn, (long long)p->kernel_h, (long long)p->kernel_w, (long long)p->stride_h, (long long)p->stride_w);
  if (p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0 || p->pad_top >= p->kernel_h ||
      p->pad_bottom >= p->kernel_h || p->pad_left >= p->kernel_w || p->pad_right >= p->kernel_w)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: padding t%lld b%lld l%lld r%lld must be in [0, kernel) for kernel %lldx%lld",
                       fn, (long long)p->pad_top, (long long)p->pad_bottom, (long long)p->pad_left,
                       (long long)p->pad_right, (long long)p->kernel_h, (long long)p->kernel_w);
  s = clai__conv_need_4d(ctx, fn, x, "x");
  if (s == CLAI_OK) s = clai__conv_need_4d(ctx, fn, out, "out");
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, x, "x", x->dtype == CLAI_DTYPE_F16 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, "x");
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, out, "out", x->dtype, "x");
  if (s != CLAI_OK) return s;
  if (indices != NULL && indices->dtype != CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: indices is %s, expected i32", fn, clai_dtype_name(indices->dtype));
  clai__conv_geom g;
  s = clai__pool_geom(ctx, fn, x, p, &g);
  if (s != CLAI_OK) return s;
  char a[160], b[160];
  const int64_t want[4] = {g.N, g.C, g.OH, g.OW};
  if (memcmp(out->shape, want, sizeof want) != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: out is %s, expected %s", fn, clai__shape_str(4, out->shape, a, sizeof a),
                       clai__shape_str(4, want, b, sizeof b));
  if (indices != NULL && (indices->ndim != 4 || memcmp(indices->shape, want, sizeof want) != 0))
    return clai__error(ctx, CLAI_E_SHAPE, "%s: indices is %s, expected out's shape %s", fn,
                       clai__shape_str(indices->ndim, indices->shape, a, sizeof a), clai__shape_str(4, want, b, sizeof b));
  if (clai__tensors_overlap(out, x) || (indices != NULL && (clai__tensors_overlap(indices, x) ||
                                                            clai__tensors_overlap(indices, out))))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out, indices and x must not overlap in memory", fn);
  const cl_long xoff = x->offset, sxn = x->strides[0], sxc = x->strides[1], sxh = x->strides[2], sxw = x->strides[3];
  const cl_long ooff = out->offset, son = out->strides[0], soc = out->strides[1], soh = out->strides[2],
                sow = out->strides[3];
  const cl_long ioff = indices ? indices->offset : 0, sin_ = indices ? indices->strides[0] : 0,
                sic = indices ? indices->strides[1] : 0, sih = indices ? indices->strides[2] : 0,
                siw = indices ? indices->strides[3] : 0;
  const cl_int N = (cl_int)g.N, C = (cl_int)g.C, H = (cl_int)g.H, W = (cl_int)g.W, OH = (cl_int)g.OH,
               OW = (cl_int)g.OW, KH = (cl_int)g.KH, KW = (cl_int)g.KW, sth = (cl_int)g.sh, stw = (cl_int)g.sw,
               pt = (cl_int)g.pt, pl = (cl_int)g.pl;
  const cl_int mode = avg ? (p->count_include_pad ? 2 : 3) : (indices != NULL ? 1 : 0);
  cl_mem imem = indices != NULL ? indices->buf->mem : out->buf->mem;
  const cl_int rb = clai__band_rows(ctx, g.OH, g.OW * (g.KH * g.KW + 1));
  if (rb == 0) return clai__row_too_long(ctx, fn, g.OW);
  size_t global[2] = {(size_t)g.C, (size_t)g.N * (size_t)((OH + rb - 1) / rb)};
  int k = x->dtype == CLAI_DTYPE_F16 ? CLAI__K_POOL2D_F16 : CLAI__K_POOL2D_F32;
  return clai__launch(ctx, k, global, 32, CLAI__ARG(out->buf->mem), CLAI__ARG(imem), CLAI__ARG(x->buf->mem),
                      CLAI__ARG(xoff), CLAI__ARG(sxn), CLAI__ARG(sxc), CLAI__ARG(sxh), CLAI__ARG(sxw), CLAI__ARG(ooff),
                      CLAI__ARG(son), CLAI__ARG(soc), CLAI__ARG(soh), CLAI__ARG(sow), CLAI__ARG(ioff), CLAI__ARG(sin_),
                      CLAI__ARG(sic), CLAI__ARG(sih), CLAI__ARG(siw), CLAI__ARG(N), CLAI__ARG(C), CLAI__ARG(H),
                      CLAI__ARG(W), CLAI__ARG(OH), CLAI__ARG(OW), CLAI__ARG(KH), CLAI__ARG(KW), CLAI__ARG(sth),
                      CLAI__ARG(stw), CLAI__ARG(pt), CLAI__ARG(pl), CLAI__ARG(mode), CLAI__ARG(rb));
}

clai_status clai_max_pool2d(clai_context *ctx, clai_tensor *out, clai_tensor *indices, const clai_tensor *x,
                            const clai_pool2d_params *params) {
  return pool2d(ctx, "clai_max_pool2d", out, indices, x, params, 0);
}

clai_status clai_avg_pool2d(clai_context *ctx, clai_tensor *out, const clai_tensor *x, const clai_pool2d_params *params) {
  return pool2d(ctx, "clai_avg_pool2d", out, NULL, x, params, 1);
}

clai_status clai_global_avg_pool2d(clai_context *ctx, clai_tensor *out, const clai_tensor *x) {
  const char *fn = "clai_global_avg_pool2d";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, out, fn, "out");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, x, fn, "x");
  if (s == CLAI_OK) s = clai__conv_need_4d(ctx, fn, x, "x");
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, x, "x", x->dtype == CLAI_DTYPE_F16 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, "x");
  if (s == CLAI_OK) s = clai__conv_need_dtype(ctx, fn, out, "out", x->dtype, "x");
  if (s != CLAI_OK) return s;
  char a[160], b[160];
  const int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int ok = (out->ndim == 2 || (out->ndim == 4 && out->shape[2] == 1 && out->shape[3] == 1)) && out->shape[0] == N &&
           out->shape[1] == C;
  if (!ok)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: out is %s, expected [%lld, %lld] or [%lld, %lld, 1, 1] for x %s", fn,
                       clai__shape_str(out->ndim, out->shape, a, sizeof a), (long long)N, (long long)C, (long long)N,
                       (long long)C, clai__shape_str(4, x->shape, b, sizeof b));
  if (H * W < 1)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: x %s has an empty plane", fn, clai__shape_str(4, x->shape, a, sizeof a));
  if (big(N) || big(C) || big(H) || big(W))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: every size must be below 2^31", fn);
  if (clai__tensors_overlap(out, x)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps x in memory", fn);
  if (H * W > clai__loop_cap(ctx, 1)) { /* a plane past a device's loop budget: the reduction ops' chunks */
    const int64_t s4[4] = {N, C, 1, 1}, st4[4] = {out->strides[0], out->strides[1], 0, 0};
    clai_tensor *sum = NULL, *o4 = NULL;
    s = clai_tensor_init(ctx, &sum, CLAI_DTYPE_F32, 4, s4);
    if (s == CLAI_OK) s = clai_sum_to(ctx, sum, x);
    if (s == CLAI_OK) s = clai_tensor_view(out, &o4, 4, s4, st4, 0);
    if (s == CLAI_OK && out->dtype == CLAI_DTYPE_F32) s = clai_scale(ctx, o4, sum, (float)(1.0 / (double)(H * W)));
    else if (s == CLAI_OK) { /* f16: the mean in f32, rounded once */
      s = clai_scale(ctx, sum, sum, (float)(1.0 / (double)(H * W)));
      if (s == CLAI_OK) s = clai_copy(ctx, o4, sum);
    }
    clai_tensor_free(o4);
    clai_tensor_free(sum);
    return s;
  }
  const cl_long xoff = x->offset, sxn = x->strides[0], sxc = x->strides[1], sxh = x->strides[2], sxw = x->strides[3];
  const cl_long ooff = out->offset, son = out->strides[0], soc = out->strides[1];
  const cl_int cn = (cl_int)N, cc = (cl_int)C, ch = (cl_int)H, cw = (cl_int)W;
  size_t global = (size_t)(N * C);
  int k = x->dtype == CLAI_DTYPE_F16 ? CLAI__K_GLOBAL_AVG_POOL_F16 : CLAI__K_GLOBAL_AVG_POOL_F32;
  return clai__launch(ctx, k, &global, 14, CLAI__ARG(out->buf->mem), CLAI__ARG(x->buf->mem), CLAI__ARG(xoff),
                      CLAI__ARG(sxn), CLAI__ARG(sxc), CLAI__ARG(sxh), CLAI__ARG(sxw), CLAI__ARG(ooff), CLAI__ARG(son),
                      CLAI__ARG(soc), CLAI__ARG(cn), CLAI__ARG(cc), CLAI__ARG(ch), CLAI__ARG(cw));
}
