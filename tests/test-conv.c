/* test-conv.c - clai_conv2d against a direct convolution computed in double on the host: odd sizes, kernels
 * 1x1 to 5x5 and 2x3, strides, dilation, asymmetric padding, groups and depthwise, bias and every
 * activation, f32 and f16 storage, inputs, weights and outputs given as non-contiguous views, a batch that
 * the im2col route and the implicit GEMM split into chunks; then every kind of bad argument.
 *
 * Host values are doubles exactly representable in the tensor's dtype (f16 inputs are rounded before
 * upload), so the reference sees what the device sees. The tolerance scales with the sum of |products|
 * of each output (the f32 rounding of a long sum), plus the f16 rounding of the result for f16 storage. */
#include "internal.h" /* clai__conv_col_budget: the bytes of columns a chunk of images may take */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

typedef struct conv_case {
  int64_t N, C, H, W, O, KH, KW;
  int64_t sh, sw, pt, pb, pl, pr, dh, dw, groups;
  int bias;
  clai_activation act;
} conv_case;

static double act_ref(clai_activation act, double v) {
  switch (act) {
  case CLAI_ACT_RELU: return v > 0 ? v : 0;
  case CLAI_ACT_GELU: return 0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
  case CLAI_ACT_SILU: return v / (1.0 + exp(-v));
  default: return v;
  }
}

static void randv(clait_rng *r, clai_dtype dt, double *v, size_t n) {
  for (size_t i = 0; i < n; i++) v[i] = clait_as_dtype(dt, clait_uniform(r, -1.0f, 1.0f));
}

/* out and the magnitude sum |w*x| per output, in double. */
static void conv_ref(const conv_case *c, const double *x, const double *w, const double *b, double *out,
                     double *mag) {
  const int64_t G = c->groups, Cg = c->C / G, Og = c->O / G;
  const int64_t OH = clait_out_len(c->H, c->pt, c->pb, c->KH, c->dh, c->sh), OW = clait_out_len(c->W, c->pl, c->pr, c->KW, c->dw, c->sw);
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t o = 0; o < c->O; o++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          double s = b != NULL ? b[o] : 0.0, m = fabs(s);
          int64_t g = o / Og;
          for (int64_t ci = 0; ci < Cg; ci++)
            for (int64_t kh = 0; kh < c->KH; kh++)
              for (int64_t kw = 0; kw < c->KW; kw++) {
                int64_t ih = oh * c->sh - c->pt + kh * c->dh, iw = ow * c->sw - c->pl + kw * c->dw;
                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                double p = w[((o * Cg + ci) * c->KH + kh) * c->KW + kw] *
                           x[((n * c->C + g * Cg + ci) * c->H + ih) * c->W + iw];
                s += p;
                m += fabs(p);
              }
          size_t i = (size_t)(((n * c->O + o) * OH + oh) * OW + ow);
          out[i] = act_ref(c->act, s);
          mag[i] = m;
        }
}

static void run_case(clai_context *ctx, const conv_case *c, clai_dtype dt, int layout, uint64_t seed) {
  clait_rng rng = {seed};
  const int64_t OH = clait_out_len(c->H, c->pt, c->pb, c->KH, c->dh, c->sh), OW = clait_out_len(c->W, c->pl, c->pr, c->KW, c->dw, c->sw);
  const int64_t xs[4] = {c->N, c->C, c->H, c->W}, ws[4] = {c->O, c->C / c->groups, c->KH, c->KW},
                os[4] = {c->N, c->O, OH, OW}, bs[1] = {c->O};
  size_t nx = (size_t)(xs[0] * xs[1] * xs[2] * xs[3]), nw = (size_t)(ws[0] * ws[1] * ws[2] * ws[3]),
         no = (size_t)(os[0] * os[1] * os[2] * os[3]);
  double *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc((size_t)c->O * sizeof *b);
  double *want = malloc(no * sizeof *want), *mag = malloc(no * sizeof *mag), *got = malloc(no * sizeof *got);
  assert_true(x && w && b && want && mag && got);
  randv(&rng, dt, x, nx);
  randv(&rng, dt, w, nw);
  randv(&rng, dt, b, (size_t)c->O);
  conv_ref(c, x, w, c->bias ? b : NULL, want, mag);

  clai_tensor *xb, *wb, *ob, *bt = NULL;
  clai_tensor *xt = clait_make4(ctx, dt, xs, layout, &xb);
  clai_tensor *wt = clait_make4(ctx, dt, ws, layout, &wb);
  clai_tensor *ot = clait_make4(ctx, dt, os, layout == CLAIT_PERMUTED ? CLAIT_SLICED : layout, &ob);
  clait_put(ctx, xt, x);
  clait_put(ctx, wt, w);
  if (c->bias) {
    CLAIT_OK(ctx, clai_tensor_init(ctx, &bt, dt, 1, bs));
    clait_put(ctx, bt, b);
  }
  clai_conv2d_params p = {c->sh, c->sw, c->pt, c->pb, c->pl, c->pr, c->dh, c->dw, c->groups, c->act};
  CLAIT_OK(ctx, clai_conv2d(ctx, ot, xt, wt, bt, &p));
  clait_read(ctx, ot, got);
  for (size_t i = 0; i < no; i++) {
    double tol = dt == CLAI_DTYPE_F16 ? 2e-3 * fabs(want[i]) + 1e-4 * mag[i] + 1e-4 : 2e-6 * mag[i] + 1e-6;
    if (!(fabs(got[i] - want[i]) <= tol))
      fail_msg("conv N%lld C%lld %lldx%lld O%lld k%lldx%lld s%lldx%lld pad %lld/%lld/%lld/%lld d%lldx%lld g%lld bias %d "
               "act %d %s layout %d: element %zu is %.9g, expected %.9g (tol %.3g)",
               (long long)c->N, (long long)c->C, (long long)c->H, (long long)c->W, (long long)c->O, (long long)c->KH,
               (long long)c->KW, (long long)c->sh, (long long)c->sw, (long long)c->pt, (long long)c->pb,
               (long long)c->pl, (long long)c->pr, (long long)c->dh, (long long)c->dw, (long long)c->groups, c->bias,
               (int)c->act, clai_dtype_name(dt), layout, i, got[i], want[i], tol);
  }
  clait_free4(xt, xb);
  clait_free4(wt, wb);
  clait_free4(ot, ob);
  clai_tensor_free(bt);
  free(x), free(w), free(b), free(want), free(mag), free(got);
}

/* N C H W O KH KW | sh sw pt pb pl pr dh dw groups | bias act */
static const conv_case cases[] = {
    {1, 1, 7, 7, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, CLAI_ACT_NONE},       /* 1x1, one channel (direct) */
    {3, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, CLAI_ACT_RELU},      /* 3x3 pad 1 (im2col) */
    {2, 7, 13, 10, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, CLAI_ACT_GELU},     /* 5x5 pad 2 */
    {3, 3, 11, 9, 4, 2, 3, 2, 2, 1, 0, 2, 1, 1, 1, 1, 1, CLAI_ACT_SILU},      /* 2x3, stride 2, asymmetric pad */
    {1, 4, 15, 13, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 2, 1, CLAI_ACT_NONE},     /* dilation 2, groups 2 (Og 3: direct) */
    {2, 4, 12, 9, 8, 3, 3, 2, 1, 1, 1, 0, 2, 1, 2, 2, 1, CLAI_ACT_RELU},      /* groups 2 (Og 4: im2col), mixed */
    {3, 7, 9, 9, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 7, 1, CLAI_ACT_RELU},       /* depthwise */
    {1, 3, 11, 70, 6, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 3, 1, CLAI_ACT_SILU},     /* depthwise x2, stride 2, wide rows */
    {2, 3, 5, 131, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0, CLAI_ACT_GELU},     /* depthwise, rows over 2 chunks of 64 */
    {2, 7, 9, 9, 16, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1, CLAI_ACT_NONE},      /* 1x1 stride 2 */
    {1, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, CLAI_ACT_RELU},    /* the CNN's first layer */
    {2, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, CLAI_ACT_RELU},   /* the CNN's second layer */
    {3, 5, 6, 6, 4, 6, 6, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, CLAI_ACT_NONE},       /* window = image: 1x1 output */
    {2, 3, 10, 11, 5, 4, 2, 1, 1, 1, 2, 0, 1, 1, 1, 1, 1, CLAI_ACT_RELU},     /* "same" size, asymmetric padding */
    {2, 3, 9, 8, 5, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1, CLAI_ACT_NONE},       /* "same" size with dilation 2 */
};
#define NCASES (sizeof cases / sizeof cases[0])

/* cases[i]; in small mode (CLAI_TEST_SIZE=small) the CNN's second layer has 4 -> 32 channels (still an
 * im2col GEMM with M over the skinny kernel's 16 rows) on 9 x 9 images, and the first layer 17 x 17 images
 * (5 x 5 "same" on odd sizes, the same routes; on 28 x 28 and 14 x 14 they took two fifths of test_conv_f32,
 * _f16 and _views on Oclgrind). */
static const conv_case *sized(size_t i) {
  static conv_case c;
  c = cases[i];
  if (clait_small() && c.C == 32 && c.O == 64) c.C = 4, c.O = 32, c.H = c.W = 9;
  if (clait_small() && c.C == 1 && c.O == 32 && c.H == 28) c.H = c.W = 17;
  return &c;
}

static void test_conv_f32(void **state) {
  for (size_t i = 0; i < NCASES; i++) run_case(CTX(state), sized(i), CLAI_DTYPE_F32, CLAIT_DENSE, 100 + i);
}

static void test_conv_f16(void **state) {
  for (size_t i = 0; i < NCASES; i++) run_case(CTX(state), sized(i), CLAI_DTYPE_F16, CLAIT_DENSE, 200 + i);
}

/* x and w permuted views (non-unit column stride), out a slice; x sliced (padded rows). Small mode: the two
 * layouts by turns, each on every other case (as in test-conv-backward). */
static void test_conv_views(void **state) {
  for (size_t i = 0; i < NCASES; i++) {
    if (!clait_small() || i % 2 == 0) run_case(CTX(state), sized(i), CLAI_DTYPE_F32, CLAIT_PERMUTED, 300 + i);
    if (!clait_small() || i % 2 == 1) run_case(CTX(state), sized(i), CLAI_DTYPE_F32, CLAIT_SLICED, 400 + i);
  }
  run_case(CTX(state), &cases[2], CLAI_DTYPE_F16, CLAIT_PERMUTED, 500);
  run_case(CTX(state), &cases[6], CLAI_DTYPE_F16, CLAIT_SLICED, 501);
}

/* The im2col route (GPUs, llvmpipe, and CPUs under conv-generic.sh): one image's workspace (1600 x 4096
 * floats) fills the budget, three chunks of one image. Then CPUs' implicit GEMM (below). */
static void test_conv_chunks(void **state) {
  const conv_case c = {3, 64, 64, 64, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, CLAI_ACT_RELU};
  /* small: 1.7 MB per image, chunks of 2 + 1 images under the 4 MiB budget of CPU devices (llvmpipe); one
   * chunk under a GPU's 32 MiB (Oclgrind reports a GPU) */
  const conv_case s = {3, 20, 48, 48, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, CLAI_ACT_RELU};
  /* Small mode, where the batch fits one chunk (im2col's columns and the GEMM's output, as lib/op-conv.c
   * counts them, against the device's budget): the route of cases[1] (3x3 pad 1, bias, ReLU, f32, im2col +
   * GEMM) on 300 times its work, which took 46 s on Oclgrind; not run there. */
  const uint64_t per_image = (uint64_t)(s.C * s.KH * s.KW + s.O) * (uint64_t)(s.H * s.W) * 4;
  if (clait_small() && (uint64_t)s.N * per_image <= clai__conv_col_budget(CTX(state)))
    print_message("# test_conv_chunks: the batch is one chunk on this device, the route of cases[1]; not run in "
                  "small mode\n");
  else
    run_case(CTX(state), clait_small() ? &s : &c, CLAI_DTYPE_F32, CLAIT_DENSE, 600);
  /* CPUs' implicit GEMM chunks its zero-padded copy of x: 732 x 732 floats (2.1 MB) per image, so one image
   * per chunk under the 4 MiB budget; x a slice at an offset (the copy's reads), out a slice (its writes) */
  const conv_case big = {3, 1, 730, 730, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, CLAI_ACT_RELU};
  if (!clait_small()) run_case(CTX(state), &big, CLAI_DTYPE_F32, CLAIT_SLICED, 601);
}

/* Planes of 300 x 300: on llvmpipe, whose kernels' loops stop after 65535 iterations a work-item, im2col and
 * the epilogue walk their planes in bands of rows, and the direct kernel's rows hand over to the GEMM where
 * they would pass that (lib/op-conv.c). Elsewhere the same cases; not in small mode on a simulator. */
static void test_conv_loop_budget(void **state) {
  if (!clait_budget_sizes(CTX(state), "test_conv_loop_budget")) return;
  const conv_case gemm = {1, 2, 300, 300, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, CLAI_ACT_RELU},
                  direct = {2, 2, 300, 300, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, CLAI_ACT_NONE},
                  wide = {1, 1, 4, 9000, 2, 1, 3, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, CLAI_ACT_NONE};
  run_case(CTX(state), &gemm, CLAI_DTYPE_F32, CLAIT_SLICED, 620);
  run_case(CTX(state), &direct, CLAI_DTYPE_F32, CLAIT_DENSE, 621);
  run_case(CTX(state), &gemm, CLAI_DTYPE_F16, CLAIT_DENSE, 622);
  run_case(CTX(state), &wide, CLAI_DTYPE_F32, CLAIT_DENSE, 623); /* rows of 9000: the direct rows pass it */
}

/* On a device with a loop budget (llvmpipe's, or CLAI_LOOP_LIMIT's): a row of 40000 outputs is more than
 * one work-item may walk even alone, so the convolution (f16: im2col's route on every device) and max
 * pooling refuse it with CLAI_E_UNSUPPORTED, and the context goes on. */
static void test_conv_row_refused(void **state) {
  clai_context *ctx = CTX(state);
  if (!clait_loop_limited(ctx)) {
    print_message("# test_conv_row_refused: for devices with a loop budget (CLAI_LOOP_LIMIT); not run\n");
    return;
  }
  const int64_t xs[4] = {1, 1, 3, 40000}, ws[4] = {8, 1, 3, 3}, os[4] = {1, 8, 3, 40000}, ps[4] = {1, 1, 1, 20000};
  clai_tensor *x = clait_tensor(ctx, CLAI_DTYPE_F16, 4, xs), *w = clait_tensor(ctx, CLAI_DTYPE_F16, 4, ws),
              *o = clait_tensor(ctx, CLAI_DTYPE_F16, 4, os), *x32 = clait_tensor(ctx, CLAI_DTYPE_F32, 4, xs),
              *p = clait_tensor(ctx, CLAI_DTYPE_F32, 4, ps);
  /* (their contents do not matter: nothing is launched) */
  const clai_conv2d_params cp = {1, 1, 1, 1, 1, 1, 1, 1, 1, CLAI_ACT_NONE};
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "loops stop", clai_conv2d(ctx, o, x, w, NULL, &cp));
  const clai_pool2d_params pp = {2, 2, 2, 2, 0, 0, 0, 0, 0};
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "loops stop", clai_max_pool2d(ctx, p, NULL, x32, &pp));
  clai_tensor_free(x), clai_tensor_free(w), clai_tensor_free(o), clai_tensor_free(x32), clai_tensor_free(p);
  run_case(ctx, &cases[1], CLAI_DTYPE_F16, CLAIT_DENSE, 624); /* the context goes on */
}

/* A NULL params struct is the zero value: stride 1, no padding, dilation 1, one group. */
static void test_conv_defaults(void **state) {
  clai_context *ctx = CTX(state);
  const conv_case c = {2, 3, 8, 7, 5, 3, 2, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, CLAI_ACT_NONE};
  clait_rng rng = {77};
  const int64_t xs[4] = {2, 3, 8, 7}, ws[4] = {5, 3, 3, 2}, os[4] = {2, 5, 6, 6};
  double x[336], w[90], want[360], mag[360], got[360];
  randv(&rng, CLAI_DTYPE_F32, x, 336);
  randv(&rng, CLAI_DTYPE_F32, w, 90);
  conv_ref(&c, x, w, NULL, want, mag);
  clai_tensor *xt, *wt, *ot;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &xt, CLAI_DTYPE_F32, 4, xs));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &wt, CLAI_DTYPE_F32, 4, ws));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &ot, CLAI_DTYPE_F32, 4, os));
  clait_put(ctx, xt, x);
  clait_put(ctx, wt, w);
  CLAIT_OK(ctx, clai_conv2d(ctx, ot, xt, wt, NULL, NULL));
  clait_read(ctx, ot, got);
  for (int i = 0; i < 360; i++) assert_true(fabs(got[i] - want[i]) <= 2e-6 * mag[i] + 1e-6);
  clai_tensor_free(xt);
  clai_tensor_free(wt);
  clai_tensor_free(ot);
}

static clai_tensor *t4(clai_context *ctx, clai_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d) {
  const int64_t s[4] = {a, b, c, d};
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, 4, s));
  CLAIT_OK(ctx, clai_fill(ctx, t, 0.5));
  return t;
}

static void test_conv_errors(void **state) {
  clai_context *ctx = CTX(state);
  const clai_dtype F = CLAI_DTYPE_F32;
  clai_tensor *x = t4(ctx, F, 2, 4, 8, 8), *w = t4(ctx, F, 6, 4, 3, 3), *out = t4(ctx, F, 2, 6, 6, 6);
  clai_tensor *w3 = t4(ctx, F, 6, 3, 3, 3), *w2 = t4(ctx, F, 6, 2, 3, 3), *wbig = t4(ctx, F, 6, 4, 9, 9);
  clai_tensor *xi = t4(ctx, CLAI_DTYPE_I32, 2, 4, 8, 8), *wh = t4(ctx, CLAI_DTYPE_F16, 6, 4, 3, 3);
  clai_tensor *bias5 = NULL, *bias6 = NULL;
  const int64_t b5[1] = {5}, b6[1] = {6};
  CLAIT_OK(ctx, clai_tensor_init(ctx, &bias5, F, 1, b5));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &bias6, F, 1, b6));
  clai_conv2d_params p = {0};

  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "channel mismatch", clai_conv2d(ctx, out, x, w3, NULL, NULL));
  p.groups = 3;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "groups 3 must divide", clai_conv2d(ctx, out, x, w, NULL, &p));
  p.groups = 2;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "channel mismatch", clai_conv2d(ctx, out, x, w, NULL, &p));
  CLAIT_OK(ctx, clai_conv2d(ctx, out, x, w2, NULL, &p));
  p.groups = 0;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "output size would be 0x0", clai_conv2d(ctx, out, x, wbig, NULL, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "bias is [5]", clai_conv2d(ctx, out, x, w, bias5, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "x is i32", clai_conv2d(ctx, out, xi, w, NULL, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "w is f16", clai_conv2d(ctx, out, x, wh, NULL, NULL));
  p.pad_top = p.pad_bottom = 1;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "expected [2, 6, 8, 6]", clai_conv2d(ctx, out, x, w, NULL, &p));
  p.pad_top = -1;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "negative", clai_conv2d(ctx, out, x, w, NULL, &p));
  memset(&p, 0, sizeof p);
  p.stride_w = -2;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "negative", clai_conv2d(ctx, out, x, w, NULL, &p));
  memset(&p, 0, sizeof p);
  p.activation = (clai_activation)9;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_activation", clai_conv2d(ctx, out, x, w, NULL, &p));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "must be 4-D", clai_conv2d(ctx, out, x, bias6, NULL, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "x is NULL", clai_conv2d(ctx, out, NULL, w, NULL, NULL));
  /* out written over its own input */
  clai_tensor *xo = t4(ctx, F, 2, 6, 8, 8), *xv = NULL, *ov = NULL;
  const int64_t xs[4] = {2, 4, 8, 8}, xst[4] = {384, 64, 8, 1}, os[4] = {2, 6, 6, 6}, ost[4] = {384, 64, 8, 1};
  CLAIT_OK(ctx, clai_tensor_view(xo, &xv, 4, xs, xst, 0));
  CLAIT_OK(ctx, clai_tensor_view(xo, &ov, 4, os, ost, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_conv2d(ctx, ov, xv, w, NULL, NULL));

  /* the context still works: all 0.5, 36 taps, bias 0.5 */
  CLAIT_OK(ctx, clai_fill(ctx, bias6, 0.5));
  CLAIT_OK(ctx, clai_conv2d(ctx, out, x, w, bias6, NULL));
  float got[432];
  CLAIT_OK(ctx, clai_tensor_read(out, got, sizeof got));
  for (int i = 0; i < 432; i++) assert_true(fabsf(got[i] - 9.5f) < 1e-5f);
  clai_tensor *all[] = {x, w, out, w3, w2, wbig, xi, wh, bias5, bias6, xo, xv, ov};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clai_tensor_free(all[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_conv_f32, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_f16, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_chunks, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_loop_budget, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_row_refused, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_defaults, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_conv_errors, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("conv", tests, 1);
}
