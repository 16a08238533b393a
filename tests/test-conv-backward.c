/* test-conv-backward.c - clai_conv2d_backward_data / _weight (with the bias gradient) and the pooling
 * gradients against references computed in double on the host, derived from the forward's definition:
 * strides, dilation, asymmetric padding, groups (GEMM and direct routes), depthwise, 1x1, 5x5 pad 2 (the
 * Fashion-MNIST CNN's layers), a batch the GEMM routes split into chunks; f32 and f16 storage;
 * non-contiguous grad_out, x, w, grad_x and grad_w. A finite-difference check ties the reference to the
 * forward: with L = sum(grad_out * conv(x, w)), computed in double, dL/dx and dL/dw by central differences
 * must match what the device returns. Pooling: overlapping windows (3x3 stride 2), padding, both average
 * divisors, ties (the stored index decides, including indices the test chooses itself). Runs are repeated
 * to check that the results are the same bits. Then every bad argument, and the context still works. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

typedef struct conv_case {
  int64_t N, C, H, W, O, KH, KW;
  int64_t sh, sw, pt, pb, pl, pr, dh, dw, groups;
} conv_case;

/* Layout variants: dense, permuted ([a, c, d, b] storage seen as [a, b, c, d]), sliced (padded rows). */
static void randv(clait_rng *r, clai_dtype dt, double *v, size_t n) {
  for (size_t i = 0; i < n; i++) v[i] = clait_as_dtype(dt, clait_uniform(r, -1.0f, 1.0f));
}

/* Calls f(ctx, n, o, oh, ow, c, ih, iw, wi) for every term of the forward convolution: out[n][o][oh][ow]
 * gets w[wi] * x[n][c][ih][iw]. Every gradient reference below is a sum over these terms. */
#define FOR_TERMS(c, BODY)                                                                                       \
  do {                                                                                                       \
    const int64_t G_ = (c)->groups, Cg_ = (c)->C / G_, Og_ = (c)->O / G_;                                    \
    const int64_t OH_ = clait_out_len((c)->H, (c)->pt, (c)->pb, (c)->KH, (c)->dh, (c)->sh);                           \
    const int64_t OW_ = clait_out_len((c)->W, (c)->pl, (c)->pr, (c)->KW, (c)->dw, (c)->sw);                           \
    for (int64_t n = 0; n < (c)->N; n++)                                                                     \
      for (int64_t o = 0; o < (c)->O; o++)                                                                   \
        for (int64_t oh = 0; oh < OH_; oh++)                                                                 \
          for (int64_t ow = 0; ow < OW_; ow++)                                                               \
            for (int64_t cg = 0; cg < Cg_; cg++)                                                             \
              for (int64_t kh = 0; kh < (c)->KH; kh++)                                                       \
                for (int64_t kw = 0; kw < (c)->KW; kw++) {                                                   \
                  const int64_t ih = oh * (c)->sh - (c)->pt + kh * (c)->dh;                                  \
                  const int64_t iw = ow * (c)->sw - (c)->pl + kw * (c)->dw;                                  \
                  if (ih < 0 || ih >= (c)->H || iw < 0 || iw >= (c)->W) continue;                            \
                  const size_t yi = (size_t)(((n * (c)->O + o) * OH_ + oh) * OW_ + ow);                      \
                  const size_t xi = (size_t)(((n * (c)->C + o / Og_ * Cg_ + cg) * (c)->H + ih) * (c)->W + iw); \
                  const size_t wi = (size_t)(((o * Cg_ + cg) * (c)->KH + kh) * (c)->KW + kw);                \
                  BODY;                                                                                      \
                }                                                                                            \
  } while (0)

/* The forward in double: L = sum(gy * conv(x, w)), for the finite differences. */
static double loss_ref(const conv_case *c, const double *x, const double *w, const double *gy) {
  double L = 0;
  FOR_TERMS(c, L += gy[yi] * w[wi] * x[xi]);
  return L;
}

/* gx = dL/dx, gw = dL/dw, gb = dL/db, with the sums of |terms| for the tolerances. */
static void grads_ref(const conv_case *c, const double *x, const double *w, const double *gy, double *gx,
                      double *mx, double *gw, double *mw, double *gb, double *mb, size_t nx, size_t nw, size_t no) {
  memset(gx, 0, nx * sizeof *gx), memset(mx, 0, nx * sizeof *mx);
  memset(gw, 0, nw * sizeof *gw), memset(mw, 0, nw * sizeof *mw);
  FOR_TERMS(c, {
    gx[xi] += w[wi] * gy[yi];
    mx[xi] += fabs(w[wi] * gy[yi]);
    gw[wi] += gy[yi] * x[xi];
    mw[wi] += fabs(gy[yi] * x[xi]);
  });
  const int64_t P = (int64_t)no / (c->N * c->O);
  memset(gb, 0, (size_t)c->O * sizeof *gb), memset(mb, 0, (size_t)c->O * sizeof *mb);
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t o = 0; o < c->O; o++)
      for (int64_t p = 0; p < P; p++) {
        gb[o] += gy[(n * c->O + o) * P + p];
        mb[o] += fabs(gy[(n * c->O + o) * P + p]);
      }
}

static void expect_grad(const char *what, const conv_case *c, clai_dtype dt, int layout, const double *got,
                        const double *want, const double *mag, size_t n, double rel) {
  for (size_t i = 0; i < n; i++) {
    double tol = dt == CLAI_DTYPE_F16 ? 2e-3 * fabs(want[i]) + 1e-4 * mag[i] + 1e-4 : rel * mag[i] + 1e-6;
    if (!(fabs(got[i] - want[i]) <= tol))
      fail_msg("%s N%lld C%lld %lldx%lld O%lld k%lldx%lld s%lldx%lld pad %lld/%lld/%lld/%lld d%lldx%lld g%lld %s "
               "layout %d: element %zu is %.9g, expected %.9g (tol %.3g)",
               what, (long long)c->N, (long long)c->C, (long long)c->H, (long long)c->W, (long long)c->O,
               (long long)c->KH, (long long)c->KW, (long long)c->sh, (long long)c->sw, (long long)c->pt,
               (long long)c->pb, (long long)c->pl, (long long)c->pr, (long long)c->dh, (long long)c->dw,
               (long long)c->groups, clai_dtype_name(dt), layout, i, got[i], want[i], tol);
  }
}

/* Runs both gradients of one case; with fd, also checks the device's gradients against central
 * differences of loss_ref at a few elements. Layout applies to grad_out and x (permuted or sliced) and to
 * grad_x, w and grad_w (sliced, permuted). */
static void run_case(clai_context *ctx, const conv_case *c, clai_dtype dt, int layout, uint64_t seed, int fd) {
  clait_rng rng = {seed};
  const int64_t OH = clait_out_len(c->H, c->pt, c->pb, c->KH, c->dh, c->sh), OW = clait_out_len(c->W, c->pl, c->pr, c->KW, c->dw, c->sw);
  const int64_t xs[4] = {c->N, c->C, c->H, c->W}, ws[4] = {c->O, c->C / c->groups, c->KH, c->KW},
                os[4] = {c->N, c->O, OH, OW}, bs[1] = {c->O};
  const size_t nx = (size_t)(xs[0] * xs[1] * xs[2] * xs[3]), nw = (size_t)(ws[0] * ws[1] * ws[2] * ws[3]),
               no = (size_t)(os[0] * os[1] * os[2] * os[3]), nb = (size_t)c->O;
  double *x = malloc(nx * 8), *w = malloc(nw * 8), *gy = malloc(no * 8);
  double *gx = malloc(nx * 8), *mx = malloc(nx * 8), *gw = malloc(nw * 8), *mw = malloc(nw * 8);
  double *gb = malloc(nb * 8), *mb = malloc(nb * 8), *got = malloc((nx > nw ? nx : nw) * 8 + nb * 8);
  assert_true(x && w && gy && gx && mx && gw && mw && gb && mb && got);
  randv(&rng, dt, x, nx);
  randv(&rng, dt, w, nw);
  randv(&rng, dt, gy, no);
  grads_ref(c, x, w, gy, gx, mx, gw, mw, gb, mb, nx, nw, no);

  const int other = layout == CLAIT_PERMUTED ? CLAIT_SLICED : layout == CLAIT_SLICED ? CLAIT_PERMUTED : CLAIT_DENSE;
  clai_tensor *xb, *wb, *yb, *gxb, *gwb, *gbt = NULL;
  clai_tensor *xt = clait_make4(ctx, dt, xs, layout, &xb), *wt = clait_make4(ctx, dt, ws, other, &wb);
  clai_tensor *yt = clait_make4(ctx, dt, os, layout, &yb);
  clai_tensor *gxt = clait_make4(ctx, dt, xs, other, &gxb), *gwt = clait_make4(ctx, dt, ws, layout, &gwb);
  CLAIT_OK(ctx, clai_tensor_init(ctx, &gbt, dt, 1, bs));
  clait_put(ctx, xt, x);
  clait_put(ctx, wt, w);
  clait_put(ctx, yt, gy);
  /* the zero params' activation is NONE; a fused activation must be ignored by the gradients */
  clai_conv2d_params p = {c->sh, c->sw, c->pt, c->pb, c->pl, c->pr, c->dh, c->dw, c->groups, CLAI_ACT_RELU};
  CLAIT_OK(ctx, clai_conv2d_backward_data(ctx, gxt, yt, wt, &p));
  clait_read(ctx, gxt, got);
  expect_grad("grad_x", c, dt, layout, got, gx, mx, nx, 4e-6);
  if (fd) { /* dL/dx[i] by central differences of the double forward; L is linear in x, so h can be large */
    for (size_t k = 0; k < 6; k++) {
      size_t i = (size_t)(clait_next(&rng) % nx);
      const double h = 0.5, x0 = x[i];
      x[i] = x0 + h;
      double lp = loss_ref(c, x, w, gy);
      x[i] = x0 - h;
      double lm = loss_ref(c, x, w, gy);
      x[i] = x0;
      double d = (lp - lm) / (2 * h);
      if (!(fabs(got[i] - d) <= 1e-5 * mx[i] + 1e-6)) fail_msg("grad_x[%zu] = %.9g, finite difference %.9g", i, got[i], d);
    }
  }
  CLAIT_OK(ctx, clai_conv2d_backward_weight(ctx, gwt, gbt, xt, yt, &p));
  clait_read(ctx, gwt, got);
  expect_grad("grad_w", c, dt, layout, got, gw, mw, nw, 1e-5);
  if (fd) {
    for (size_t k = 0; k < 6; k++) {
      size_t i = (size_t)(clait_next(&rng) % nw);
      const double h = 0.5, w0 = w[i];
      w[i] = w0 + h;
      double lp = loss_ref(c, x, w, gy);
      w[i] = w0 - h;
      double lm = loss_ref(c, x, w, gy);
      w[i] = w0;
      double d = (lp - lm) / (2 * h);
      if (!(fabs(got[i] - d) <= 1e-5 * mw[i] + 1e-6)) fail_msg("grad_w[%zu] = %.9g, finite difference %.9g", i, got[i], d);
    }
  }
  clait_read(ctx, gbt, got);
  expect_grad("grad_bias", c, dt, layout, got, gb, mb, nb, 1e-5);
  clait_free4(xt, xb), clait_free4(wt, wb), clait_free4(yt, yb), clait_free4(gxt, gxb), clait_free4(gwt, gwb);
  clai_tensor_free(gbt);
  free(x), free(w), free(gy), free(gx), free(mx), free(gw), free(mw), free(gb), free(mb), free(got);
}

/* N C H W O KH KW | sh sw pt pb pl pr dh dw groups */
static const conv_case cases[] = {
    {2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},    /* 3x3 pad 1 (GEMM) */
    {3, 3, 11, 9, 4, 2, 3, 2, 2, 1, 0, 2, 1, 1, 1, 1},    /* 2x3, stride 2, asymmetric padding */
    {2, 4, 15, 13, 8, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1},   /* dilation 2 */
    {1, 4, 12, 9, 8, 3, 3, 2, 1, 1, 1, 0, 2, 1, 2, 2},    /* groups 2 (Og 4: GEMM), mixed stride/dilation */
    {2, 4, 10, 9, 6, 3, 3, 1, 2, 2, 1, 1, 2, 2, 1, 2},    /* groups 2 (Og 3: direct) */
    {2, 4, 16, 15, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},   /* groups 2, O*8 <= OH*OW: per-image weight partials */
    {3, 7, 9, 9, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 7},     /* depthwise */
    {2, 3, 11, 70, 6, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 3},   /* depthwise x2, stride 2, wide rows */
    {1, 3, 5, 131, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},   /* depthwise, rows over 3 chunks of 64 */
    {2, 7, 9, 9, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},    /* 1x1 */
    {2, 7, 9, 9, 16, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1},    /* 1x1 stride 2 (rows and columns no window reads) */
    {1, 2, 3, 70, 4, 1, 3, 1, 1, 0, 0, 1, 1, 1, 1, 1},    /* rows over 2 chunks of 64 (GEMM route) */
    {2, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1},  /* the CNN's first layer */
    {2, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1}, /* the CNN's second layer */
    {3, 5, 6, 6, 4, 6, 6, 1, 1, 0, 0, 0, 0, 1, 1, 1},     /* window = image: 1x1 output */
    {2, 3, 10, 11, 5, 4, 2, 1, 1, 1, 2, 0, 1, 1, 1, 1},   /* "same" size with asymmetric padding (plane route) */
    {2, 3, 7, 8, 5, 1, 3, 1, 1, 1, 2, 3, 0, 1, 1, 1},     /* padding past the window (rows, left): on CPUs the
                                                              data gradient's im2col route, not a convolution */
};
#define NCASES (sizeof cases / sizeof cases[0])

/* cases[i]; in small mode (CLAI_TEST_SIZE=small) the CNN's layers on smaller images, by the same routes: the
 * first on 17 x 17 (O * 8 <= OH * OW still: the weight gradient's partials per image; 5 x 5 "same": the data
 * gradient's plane col2im in f32), the second with 4 -> 32 channels on 9 x 9 (O * 8 > OH * OW: the GEMM
 * with the images in K). On 28 x 28 and 14 x 14 they took two thirds of test_conv_bwd_f32, _f16 and _views
 * on Oclgrind. */
static const conv_case *sized(size_t i) {
  static conv_case c;
  c = cases[i];
  if (clait_small() && c.C == 32 && c.O == 64) c.C = 4, c.O = 32, c.H = c.W = 9;
  if (clait_small() && c.C == 1 && c.O == 32 && c.H == 28) c.H = c.W = 17;
  return &c;
}

static void test_conv_bwd_f32(void **state) {
  for (size_t i = 0; i < NCASES; i++) run_case(CTX(state), sized(i), CLAI_DTYPE_F32, CLAIT_DENSE, 100 + i, 0);
}

static void test_conv_bwd_f16(void **state) {
  for (size_t i = 0; i < NCASES; i++) run_case(CTX(state), sized(i), CLAI_DTYPE_F16, CLAIT_DENSE, 200 + i, 0);
}

static void test_conv_bwd_views(void **state) {
  for (size_t i = 0; i < NCASES; i++) {
    if (!clait_small() || i % 2 == 0) /* small: the two layouts by turns */
      run_case(CTX(state), sized(i), CLAI_DTYPE_F32, CLAIT_PERMUTED, 300 + i, 0);
    if (!clait_small() || i % 2 == 1)
      run_case(CTX(state), sized(i), CLAI_DTYPE_F32, CLAIT_SLICED, 400 + i, 0);
  }
  run_case(CTX(state), &cases[0], CLAI_DTYPE_F16, CLAIT_PERMUTED, 500, 0);
  run_case(CTX(state), &cases[6], CLAI_DTYPE_F16, CLAIT_SLICED, 501, 0);
}

/* Finite differences of the double forward on tiny shapes of every route. */
static void test_conv_bwd_fd(void **state) {
  static const conv_case tiny[] = {
      {2, 2, 5, 6, 4, 3, 2, 2, 1, 1, 0, 0, 1, 1, 2, 1}, /* GEMM, stride, dilation, asymmetric padding */
      {1, 4, 6, 5, 8, 3, 3, 1, 2, 1, 1, 1, 1, 2, 1, 2}, /* groups 2, GEMM */
      {2, 3, 6, 6, 3, 3, 3, 2, 2, 1, 2, 1, 0, 1, 1, 3}, /* depthwise, direct */
      {1, 3, 5, 5, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, /* 1x1 */
  };
  for (size_t i = 0; i < sizeof tiny / sizeof tiny[0]; i++)
    run_case(CTX(state), &tiny[i], CLAI_DTYPE_F32, CLAIT_DENSE, 700 + i, 1);
}

/* Batches the GEMM routes split into chunks (accumulation over chunks, a short last chunk). The budget is
 * 4 MiB on CPUs and 32 MiB elsewhere: the first case has chunks on both (one image's columns take 14.7
 * MB), the others on CPUs (about 0.9 and 0.25 MB per image): the per-image and the K = images route of
 * the weight gradient. */
static void test_conv_bwd_chunks(void **state) {
  /* the last: CPUs' implicit GEMMs take one image per chunk (a zero-padded 732 x 732 plane of x is 2.1 MB, of
   * grad_out's 8 channels 17 MB; the weight gradient's positions-by-channels copy of grad_out 34 MB) */
  const conv_case c[4] = {{3, 64, 48, 48, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1},
                          {5, 16, 24, 24, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1},
                          {20, 16, 12, 12, 32, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1},
                          {3, 1, 730, 730, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
  if (clait_small()) { /* 9 to 88 million multiply-adds per GEMM: minutes on Oclgrind */
    print_message("# test_conv_bwd_chunks: batches the GEMM routes split into chunks (4.6 MB of columns and more) "
                  "need more work than small mode does; not run\n");
    return;
  }
  for (int i = 0; i < 3; i++) run_case(CTX(state), &c[i], CLAI_DTYPE_F32, CLAIT_DENSE, 600 + (uint64_t)i, 0);
  run_case(CTX(state), &c[3], CLAI_DTYPE_F32, CLAIT_SLICED, 603, 0);
  run_case(CTX(state), &c[2], CLAI_DTYPE_F16, CLAIT_SLICED, 610, 0);
}

/* Planes of 300 x 300: on llvmpipe, whose kernels' loops stop after 65535 iterations a work-item, col2im and
 * the 2x2 max-pooling gradient leave their plane routes for rows, grad_out's copy walks bands of rows, the
 * bias gradient goes through the reductions and the direct weight gradient through the GEMM
 * (lib/op-conv-backward.c). Elsewhere the same cases; not in small mode on a simulator. */
static void test_conv_bwd_loop_budget(void **state) {
  clai_context *ctx = CTX(state);
  if (!clait_budget_sizes(ctx, "test_conv_bwd_loop_budget")) return;
  const conv_case gemm = {1, 2, 300, 300, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                  direct = {2, 2, 300, 300, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  run_case(ctx, &gemm, CLAI_DTYPE_F32, CLAIT_DENSE, 630, 0);
  run_case(ctx, &direct, CLAI_DTYPE_F32, CLAIT_SLICED, 631, 0);
  run_case(ctx, &gemm, CLAI_DTYPE_F16, CLAIT_DENSE, 632, 0);
}

/* The same inputs give the same bits (no atomics), on every route. */
static void test_conv_bwd_deterministic(void **state) {
  clai_context *ctx = CTX(state);
  /* Oclgrind: the three routes run there in test_conv_bwd_f32 (these very cases, dense f32), where the
   * simulator checks every access and reports any data race, and a kernel without races or atomics gives the
   * same bits on every run; the repeats here took 38 s of its 149. They run on every other device. */
  if (clait_oclgrind(ctx)) {
    print_message("# test_conv_bwd_deterministic: not repeated on Oclgrind (its kernels run in test_conv_bwd_f32, "
                  "checked for data races)\n");
    return;
  }
  for (int route = 0; route < 3; route++) { /* K = images GEMM, direct (depthwise), per-image partials */
    const conv_case c = route == 0 ? *sized(13) : route == 1 ? cases[6] : *sized(12);
    const int64_t OH = clait_out_len(c.H, c.pt, c.pb, c.KH, c.dh, c.sh), OW = clait_out_len(c.W, c.pl, c.pr, c.KW, c.dw, c.sw);
    const int64_t xs[4] = {c.N, c.C, c.H, c.W}, ws[4] = {c.O, c.C / c.groups, c.KH, c.KW}, os[4] = {c.N, c.O, OH, OW};
    clai_tensor *x, *w, *y, *gx, *gw, *gb;
    const int64_t bs[1] = {c.O};
    CLAIT_OK(ctx, clai_tensor_init(ctx, &x, CLAI_DTYPE_F32, 4, xs));
    CLAIT_OK(ctx, clai_tensor_init(ctx, &w, CLAI_DTYPE_F32, 4, ws));
    CLAIT_OK(ctx, clai_tensor_init(ctx, &y, CLAI_DTYPE_F32, 4, os));
    CLAIT_OK(ctx, clai_tensor_init(ctx, &gx, CLAI_DTYPE_F32, 4, xs));
    CLAIT_OK(ctx, clai_tensor_init(ctx, &gw, CLAI_DTYPE_F32, 4, ws));
    CLAIT_OK(ctx, clai_tensor_init(ctx, &gb, CLAI_DTYPE_F32, 1, bs));
    CLAIT_OK(ctx, clai_rand_uniform(ctx, x, 1, 0, -1.0f, 1.0f));
    CLAIT_OK(ctx, clai_rand_uniform(ctx, w, 2, 0, -1.0f, 1.0f));
    CLAIT_OK(ctx, clai_rand_uniform(ctx, y, 3, 0, -1.0f, 1.0f));
    const size_t nx = (size_t)clai_tensor_numel(x), nw = (size_t)clai_tensor_numel(w);
    float *a = malloc((nx + nw + (size_t)c.O) * 4), *b = malloc((nx + nw + (size_t)c.O) * 4);
    assert_true(a && b);
    const clai_conv2d_params p = {c.sh, c.sw, c.pt, c.pb, c.pl, c.pr, c.dh, c.dw, c.groups, CLAI_ACT_NONE};
    for (int r = 0; r < 2; r++) {
      float *d = r == 0 ? a : b;
      CLAIT_OK(ctx, clai_conv2d_backward_data(ctx, gx, y, w, &p));
      CLAIT_OK(ctx, clai_conv2d_backward_weight(ctx, gw, gb, x, y, &p));
      CLAIT_OK(ctx, clai_tensor_read(gx, d, nx * 4));
      CLAIT_OK(ctx, clai_tensor_read(gw, d + nx, nw * 4));
      CLAIT_OK(ctx, clai_tensor_read(gb, d + nx + nw, (size_t)c.O * 4));
    }
    assert_memory_equal(a, b, (nx + nw + (size_t)c.O) * 4);
    free(a), free(b);
    clai_tensor *all[] = {x, w, y, gx, gw, gb};
    for (size_t i = 0; i < 6; i++) clai_tensor_free(all[i]);
  }
}

/* ---- pooling -------------------------------------------------------------------------------------------- */

typedef struct pool_case {
  int64_t N, C, H, W, KH, KW, sh, sw, pt, pb, pl, pr;
} pool_case;

static const pool_case pcases[] = {
    {2, 3, 9, 11, 3, 3, 2, 2, 0, 0, 0, 0},  /* overlapping windows: kernel 3 stride 2 */
    {1, 2, 10, 9, 3, 3, 2, 2, 1, 1, 1, 1},  /* overlapping, padded */
    {2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 0, 0},   /* the CNN's 2x2 stride 2 */
    {2, 3, 7, 9, 2, 2, 2, 2, 0, 0, 0, 0},   /* 2x2 stride 2 with a last row and column no window reads */
    {2, 3, 7, 9, 2, 2, 2, 2, 0, 1, 0, 1},   /* 2x2 stride 2, the last row and column in windows over the edge */
    {1, 3, 7, 13, 2, 3, 3, 4, 1, 0, 0, 2},  /* stride above the kernel: elements no window reads */
    {2, 2, 6, 7, 3, 2, 1, 1, 2, 0, 1, 1},   /* stride 1, asymmetric padding */
};
#define NPCASES (sizeof pcases / sizeof pcases[0])

/* mode 0 max (argmax from idx), 1 avg with the padding counted, 2 avg over input elements */
static void pool_bwd_ref(const pool_case *c, int mode, const double *gy, const double *idx, double *gx) {
  const int64_t OH = (c->H + c->pt + c->pb - c->KH) / c->sh + 1, OW = (c->W + c->pl + c->pr - c->KW) / c->sw + 1;
  memset(gx, 0, (size_t)(c->N * c->C * c->H * c->W) * sizeof *gx);
  for (int64_t nc = 0; nc < c->N * c->C; nc++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        const size_t yi = (size_t)((nc * OH + oh) * OW + ow);
        const int64_t h0 = oh * c->sh - c->pt, w0 = ow * c->sw - c->pl;
        if (mode == 0) {
          const int64_t e = (int64_t)idx[yi], ih = e / c->W, iw = e % c->W;
          if (ih >= h0 && ih < h0 + c->KH && iw >= w0 && iw < w0 + c->KW) gx[nc * c->H * c->W + e] += gy[yi];
          continue;
        }
        int64_t cnt = 0;
        for (int64_t ih = h0; ih < h0 + c->KH; ih++)
          for (int64_t iw = w0; iw < w0 + c->KW; iw++) cnt += ih >= 0 && ih < c->H && iw >= 0 && iw < c->W;
        const double div = mode == 1 ? (double)(c->KH * c->KW) : (double)cnt;
        for (int64_t ih = h0; ih < h0 + c->KH; ih++)
          for (int64_t iw = w0; iw < w0 + c->KW; iw++)
            if (ih >= 0 && ih < c->H && iw >= 0 && iw < c->W) gx[(nc * c->H + ih) * c->W + iw] += gy[yi] / div;
      }
}

/* idx_mode 0: indices from clai_max_pool2d on inputs with many ties; 1: indices the test picks inside each
 * window; 2: like 1 but some indices outside their window (they must contribute nothing). strided 0: dense
 * operands; 1: grad_x permuted, grad_out a slice; 2: grad_x a slice of padded rows whose padding must keep
 * what it held (a window over the right edge once wrote one column past the row). */
static void run_pool(clai_context *ctx, const pool_case *c, clai_dtype dt, int mode, int idx_mode, int strided,
                     uint64_t seed) {
  clait_rng rng = {seed};
  const int64_t OH = (c->H + c->pt + c->pb - c->KH) / c->sh + 1, OW = (c->W + c->pl + c->pr - c->KW) / c->sw + 1;
  const int64_t xs[4] = {c->N, c->C, c->H, c->W}, os[4] = {c->N, c->C, OH, OW};
  const size_t nx = (size_t)(c->N * c->C * c->H * c->W), no = (size_t)(c->N * c->C * OH * OW);
  double *x = malloc(nx * 8), *gy = malloc(no * 8), *idx = malloc(no * 8), *want = malloc(nx * 8), *got = malloc(nx * 8);
  assert_true(x && gy && idx && want && got);
  for (size_t i = 0; i < nx; i++) x[i] = (double)(clait_next(&rng) % 4); /* ties everywhere */
  randv(&rng, dt, gy, no);
  clai_pool2d_params p = {c->KH, c->KW, c->sh, c->sw, c->pt, c->pb, c->pl, c->pr, mode == 1};
  const int gl = strided == 1 ? CLAIT_PERMUTED : strided == 2 ? CLAIT_SLICED : CLAIT_DENSE;
  clai_tensor *gxb, *yb, *gxt = clait_make4(ctx, dt, xs, gl, &gxb);
  clai_tensor *yt = clait_make4(ctx, dt, os, strided == 1 ? CLAIT_SLICED : CLAIT_DENSE, &yb);
  clai_tensor *it = NULL;
  clait_put(ctx, yt, gy);
  if (strided == 2) CLAIT_OK(ctx, clai_fill(ctx, gxb, -777.0));
  if (mode == 0) {
    CLAIT_OK(ctx, clai_tensor_init(ctx, &it, CLAI_DTYPE_I32, 4, os));
    if (idx_mode == 0) {
      clai_tensor *xt = NULL, *ot = NULL;
      CLAIT_OK(ctx, clai_tensor_init(ctx, &xt, dt, 4, xs));
      CLAIT_OK(ctx, clai_tensor_init(ctx, &ot, dt, 4, os));
      clait_put(ctx, xt, x);
      CLAIT_OK(ctx, clai_max_pool2d(ctx, ot, it, xt, &p));
      clait_read(ctx, it, idx);
      clai_tensor_free(xt);
      clai_tensor_free(ot);
    } else {
      for (int64_t nc = 0; nc < c->N * c->C; nc++)
        for (int64_t oh = 0; oh < OH; oh++)
          for (int64_t ow = 0; ow < OW; ow++) {
            const int64_t h0 = oh * c->sh - c->pt, w0 = ow * c->sw - c->pl;
            int64_t ih, iw;
            do {
              ih = h0 + (int64_t)(clait_next(&rng) % (uint64_t)c->KH);
              iw = w0 + (int64_t)(clait_next(&rng) % (uint64_t)c->KW);
            } while (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W);
            if (idx_mode == 2 && clait_next(&rng) % 4 == 0) ih = (ih + c->KH) % c->H; /* outside the window */
            idx[(nc * OH + oh) * OW + ow] = (double)(ih * c->W + iw);
          }
      clait_put(ctx, it, idx);
    }
    CLAIT_OK(ctx, clai_max_pool2d_backward(ctx, gxt, yt, it, &p));
  } else {
    CLAIT_OK(ctx, clai_avg_pool2d_backward(ctx, gxt, yt, &p));
  }
  clait_read(ctx, gxt, got);
  pool_bwd_ref(c, mode, gy, idx, want);
  const double rtol = dt == CLAI_DTYPE_F16 ? 2e-3 : 1e-6;
  for (size_t i = 0; i < nx; i++)
    if (!(fabs(got[i] - want[i]) <= rtol * fabs(want[i]) + 1e-6))
      fail_msg("pool backward mode %d idx %d case %lldx%lld k%lldx%lld s%lldx%lld %s: element %zu is %.9g, expected "
               "%.9g", mode, idx_mode, (long long)c->H, (long long)c->W, (long long)c->KH, (long long)c->KW,
               (long long)c->sh, (long long)c->sw, clai_dtype_name(dt), i, got[i], want[i]);
  if (strided == 2) { /* the base is [N, C, H, W + 3], the view its columns 1 .. W */
    const size_t nb = nx / (size_t)c->W * (size_t)(c->W + 3);
    double *b = malloc(nb * 8);
    assert_non_null(b);
    clait_read(ctx, gxb, b);
    for (size_t i = 0; i < nb; i++) {
      const int64_t col = (int64_t)(i % (size_t)(c->W + 3));
      if ((col == 0 || col > c->W) && b[i] != -777.0)
        fail_msg("pool backward mode %d case %lldx%lld k%lldx%lld s%lldx%lld pad b%lld r%lld: the padding column %lld "
                 "of row %zu changed to %.9g", mode, (long long)c->H, (long long)c->W, (long long)c->KH,
                 (long long)c->KW, (long long)c->sh, (long long)c->sw, (long long)c->pb, (long long)c->pr,
                 (long long)col, i / (size_t)(c->W + 3), b[i]);
    }
    free(b);
  }
  clait_free4(gxt, gxb), clait_free4(yt, yb);
  clai_tensor_free(it);
  free(x), free(gy), free(idx), free(want), free(got);
}

static void test_pool_bwd(void **state) {
  clai_context *ctx = CTX(state);
  for (size_t i = 0; i < NPCASES; i++) {
    for (int mode = 0; mode < 3; mode++) {
      run_pool(ctx, &pcases[i], CLAI_DTYPE_F32, mode, 0, 0, 800 + i * 10 + (size_t)mode);
      run_pool(ctx, &pcases[i], CLAI_DTYPE_F16, mode, 0, 1, 850 + i * 10 + (size_t)mode);
    }
    run_pool(ctx, &pcases[i], CLAI_DTYPE_F32, 0, 1, 1, 900 + i);
    run_pool(ctx, &pcases[i], CLAI_DTYPE_F32, 0, 2, 0, 950 + i);
    run_pool(ctx, &pcases[i], CLAI_DTYPE_F32, 0, 0, 2, 980 + i);
    run_pool(ctx, &pcases[i], CLAI_DTYPE_F16, 1, 0, 2, 990 + i);
  }
}

/* The pooling gradients on planes of 300 x 300 (see test_conv_bwd_loop_budget): 2x2 max pooling leaves its
 * plane route for rows on llvmpipe; the 3x3 windows of stride 1 are rows everywhere. */
static void test_pool_bwd_loop_budget(void **state) {
  clai_context *ctx = CTX(state);
  if (!clait_budget_sizes(ctx, "test_pool_bwd_loop_budget")) return;
  const pool_case k2 = {1, 2, 300, 300, 2, 2, 2, 2, 0, 0, 0, 0}, k3 = {1, 1, 300, 300, 3, 3, 1, 1, 1, 1, 1, 1};
  for (int mode = 0; mode < 3; mode++) {
    run_pool(ctx, &k2, CLAI_DTYPE_F32, mode, 0, 0, 640 + (uint64_t)mode);
    run_pool(ctx, &k3, CLAI_DTYPE_F32, mode, 0, 0, 650 + (uint64_t)mode);
  }
}

/* On a device with a loop budget (llvmpipe's, or CLAI_LOOP_LIMIT's): a row of 40000 is more than one
 * work-item may walk even alone, so the data gradient (f16: the GEMM route on every device) and the max
 * pooling gradient refuse it with CLAI_E_UNSUPPORTED, and the context goes on. */
static void test_bwd_row_refused(void **state) {
  clai_context *ctx = CTX(state);
  if (!clait_loop_limited(ctx)) {
    print_message("# test_bwd_row_refused: for devices with a loop budget (CLAI_LOOP_LIMIT); not run\n");
    return;
  }
  const int64_t xs[4] = {1, 1, 3, 40000}, ws[4] = {8, 1, 3, 3}, ys[4] = {1, 8, 3, 40000}, x2[4] = {1, 1, 2, 40000},
                y2[4] = {1, 1, 1, 20000};
  clai_tensor *gx = clait_tensor(ctx, CLAI_DTYPE_F16, 4, xs), *w = clait_tensor(ctx, CLAI_DTYPE_F16, 4, ws),
              *gy = clait_tensor(ctx, CLAI_DTYPE_F16, 4, ys), *px = clait_tensor(ctx, CLAI_DTYPE_F32, 4, x2),
              *py = clait_tensor(ctx, CLAI_DTYPE_F32, 4, y2), *idx = clait_tensor(ctx, CLAI_DTYPE_I32, 4, y2);
  /* (their contents do not matter: nothing is launched) */
  const clai_conv2d_params cp = {1, 1, 1, 1, 1, 1, 1, 1, 1, CLAI_ACT_NONE};
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "loops stop", clai_conv2d_backward_data(ctx, gx, gy, w, &cp));
  const clai_pool2d_params pp = {2, 2, 2, 2, 0, 0, 0, 0, 0};
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "loops stop", clai_max_pool2d_backward(ctx, px, py, idx, &pp));
  clai_tensor_free(gx), clai_tensor_free(w), clai_tensor_free(gy), clai_tensor_free(px), clai_tensor_free(py);
  clai_tensor_free(idx);
  run_case(ctx, &cases[0], CLAI_DTYPE_F16, CLAIT_DENSE, 660, 0); /* the context goes on */
}

static void test_global_avg_pool_bwd(void **state) {
  clai_context *ctx = CTX(state);
  for (int variant = 0; variant < 3; variant++) {
    const clai_dtype dt = variant == 2 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
    const int64_t N = 3, C = 5, H = 7, W = 9, xs[4] = {N, C, H, W}, ys2[2] = {N, C}, ys4[4] = {N, C, 1, 1};
    clai_tensor *gxb, *gxt = clait_make4(ctx, dt, xs, variant == 1 ? CLAIT_SLICED : CLAIT_DENSE, &gxb), *yt = NULL, *yv = NULL;
    CLAIT_OK(ctx, clai_tensor_init(ctx, &yt, dt, variant == 1 ? 4 : 2, variant == 1 ? ys4 : ys2));
    double gy[15], want[945], got[945];
    clait_rng rng = {1000 + (uint64_t)variant};
    randv(&rng, dt, gy, 15);
    clait_put(ctx, yt, gy);
    if (variant == 0) { /* grad_out a [N, C] view of a [C, N] buffer */
      clai_tensor *tb = NULL;
      const int64_t ts[2] = {C, N};
      CLAIT_OK(ctx, clai_tensor_init(ctx, &tb, dt, 2, ts));
      double tv[15];
      for (int n = 0; n < N; n++)
        for (int cc = 0; cc < C; cc++) tv[cc * N + n] = gy[n * C + cc];
      clait_put(ctx, tb, tv);
      CLAIT_OK(ctx, clai_tensor_transpose(tb, &yv, 0, 1));
      clai_tensor_free(tb);
    }
    CLAIT_OK(ctx, clai_global_avg_pool2d_backward(ctx, gxt, yv != NULL ? yv : yt));
    clait_read(ctx, gxt, got);
    for (int i = 0; i < 945; i++) want[i] = gy[i / (H * W)] / (double)(H * W);
    for (int i = 0; i < 945; i++)
      if (!(fabs(got[i] - want[i]) <= (dt == CLAI_DTYPE_F16 ? 2e-3 : 1e-6) * fabs(want[i]) + 1e-7))
        fail_msg("global avg pool backward variant %d: element %d is %.9g, expected %.9g", variant, i, got[i], want[i]);
    clai_tensor_free(yv);
    clai_tensor_free(yt);
    clait_free4(gxt, gxb);
  }
}

/* ---- bad arguments -------------------------------------------------------------------------------------- */

static clai_tensor *t4(clai_context *ctx, clai_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d) {
  const int64_t s[4] = {a, b, c, d};
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, 4, s));
  CLAIT_OK(ctx, clai_fill(ctx, t, 0.5));
  return t;
}

static void test_errors(void **state) {
  clai_context *ctx = CTX(state);
  const clai_dtype F = CLAI_DTYPE_F32;
  clai_tensor *x = t4(ctx, F, 2, 4, 8, 8), *w = t4(ctx, F, 6, 4, 3, 3), *gy = t4(ctx, F, 2, 6, 6, 6);
  clai_tensor *gx = t4(ctx, F, 2, 4, 8, 8), *gw = t4(ctx, F, 6, 4, 3, 3), *w3 = t4(ctx, F, 6, 3, 3, 3);
  clai_tensor *gy7 = t4(ctx, F, 2, 6, 7, 6), *wh = t4(ctx, CLAI_DTYPE_F16, 6, 4, 3, 3);
  clai_tensor *xi = t4(ctx, CLAI_DTYPE_I32, 2, 4, 8, 8), *gb5 = NULL, *gb6 = NULL;
  const int64_t b5[1] = {5}, b6[1] = {6};
  CLAIT_OK(ctx, clai_tensor_init(ctx, &gb5, F, 1, b5));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &gb6, F, 1, b6));
  clai_conv2d_params p = {0};

  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "channel mismatch", clai_conv2d_backward_data(ctx, gx, gy, w3, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "grad_out is [2, 6, 7, 6], expected [2, 6, 6, 6]",
              clai_conv2d_backward_data(ctx, gx, gy7, w, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "grad_out is [2, 6, 7, 6]", clai_conv2d_backward_weight(ctx, gw, NULL, x, gy7, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "grad_bias is [5]", clai_conv2d_backward_weight(ctx, gw, gb5, x, gy, NULL));
  p.groups = 3;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "groups 3 must divide", clai_conv2d_backward_data(ctx, gx, gy, w, &p));
  p.groups = 0;
  p.dilation_h = -1;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "negative", clai_conv2d_backward_weight(ctx, gw, NULL, x, gy, &p));
  p.dilation_h = 0;
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "w is f16", clai_conv2d_backward_data(ctx, gx, gy, wh, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "x is i32", clai_conv2d_backward_weight(ctx, gw, NULL, xi, gy, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "must be 4-D", clai_conv2d_backward_data(ctx, gx, gb6, w, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grad_out is NULL", clai_conv2d_backward_data(ctx, gx, NULL, w, NULL));
  /* grad_x written over grad_out; grad_w over x */
  clai_tensor *big = t4(ctx, F, 2, 6, 8, 8), *gxv = NULL, *gyv = NULL;
  const int64_t xs[4] = {2, 4, 8, 8}, ys[4] = {2, 6, 6, 6}, st[4] = {384, 64, 8, 1};
  CLAIT_OK(ctx, clai_tensor_view(big, &gxv, 4, xs, st, 0));
  CLAIT_OK(ctx, clai_tensor_view(big, &gyv, 4, ys, st, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grad_x overlaps", clai_conv2d_backward_data(ctx, gxv, gyv, w, NULL));
  clai_tensor *gbv = NULL; /* grad_bias inside grad_w */
  const int64_t bsh[1] = {6}, bst[1] = {1};
  CLAIT_OK(ctx, clai_tensor_view(gw, &gbv, 1, bsh, bst, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_conv2d_backward_weight(ctx, gw, gbv, x, gy, NULL));
  clai_tensor_free(gbv);
  /* pooling */
  const clai_pool2d_params pp = {2, 2, 0, 0, 0, 0, 0, 0, 0};
  clai_pool2d_params bad = pp;
  clai_tensor *px = t4(ctx, F, 2, 3, 8, 8), *py = t4(ctx, F, 2, 3, 4, 4), *py5 = t4(ctx, F, 2, 3, 5, 4);
  clai_tensor *pi = t4(ctx, CLAI_DTYPE_I32, 2, 3, 4, 4), *pif = t4(ctx, F, 2, 3, 4, 4), *pi5 = t4(ctx, CLAI_DTYPE_I32, 2, 3, 5, 4);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "grad_out is [2, 3, 5, 4]", clai_max_pool2d_backward(ctx, px, py5, pi, &pp));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "indices is [2, 3, 5, 4]", clai_max_pool2d_backward(ctx, px, py, pi5, &pp));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "indices is f32", clai_max_pool2d_backward(ctx, px, py, pif, &pp));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "indices is NULL", clai_max_pool2d_backward(ctx, px, py, NULL, &pp));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "params is NULL", clai_avg_pool2d_backward(ctx, px, py, NULL));
  bad.pad_top = 2;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "padding", clai_avg_pool2d_backward(ctx, px, py, &bad));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "grad_out is f16", clai_avg_pool2d_backward(ctx, gx, wh, &pp));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "expected [2, 3] or [2, 3, 1, 1]", clai_global_avg_pool2d_backward(ctx, px, py));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_avg_pool2d_backward(ctx, px, px, &(clai_pool2d_params){1, 1, 0, 0, 0, 0, 0, 0, 0}));

  /* the context still works: all 0.5, 3x3 taps over 6 output channels / 36 positions x 2 images */
  CLAIT_OK(ctx, clai_conv2d_backward_weight(ctx, gw, gb6, x, gy, NULL));
  float got[384];
  CLAIT_OK(ctx, clai_tensor_read(gw, got, 216 * 4));
  for (int i = 0; i < 216; i++) assert_true(fabsf(got[i] - 18.0f) < 1e-4f);
  CLAIT_OK(ctx, clai_tensor_read(gb6, got, 6 * 4));
  for (int i = 0; i < 6; i++) assert_true(fabsf(got[i] - 36.0f) < 1e-4f);
  CLAIT_OK(ctx, clai_avg_pool2d_backward(ctx, px, py, &pp));
  CLAIT_OK(ctx, clai_tensor_read(px, got, 384 * 4));
  for (int i = 0; i < 384; i++) assert_true(got[i] == 0.125f);
  clai_tensor *more[] = {big, gxv, gyv, px, py, py5, pi, pif, pi5};
  for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) clai_tensor_free(more[i]);
  clai_tensor *all[] = {x, w, gy, gx, gw, w3, gy7, wh, xi, gb5, gb6};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clai_tensor_free(all[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_conv_bwd_f32, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_bwd_f16, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_bwd_views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_bwd_fd, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_bwd_chunks, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_bwd_loop_budget, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_bwd_deterministic, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_pool_bwd, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_pool_bwd_loop_budget, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_bwd_row_refused, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_global_avg_pool_bwd, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_errors, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("conv-backward", tests, 1);
}
