/* test-views.c - every output of every op honours its view: offset and strides.
 *
 * Each case runs an op twice or more with the same inputs and the same initial output contents: once into
 * dense tensors of their own, then into views of larger 1-d buffers prefilled with a sentinel, the view
 * (1) dense at a non-zero offset, (2) with padded rows (unit inner stride, every outer stride longer than
 * dense) and (3) with an inner stride of 2 as well, for the outputs the op accepts as such. The view runs
 * must give the dense run's values in the view (the per-op tests check those against double-precision
 * references; here the question is where they land), and every element of the buffer outside the view
 * must still hold the sentinel. Initial contents matter for the ops that accumulate or update in place
 * (beta, accumulate, optimizers), so every output starts with the same random values in every run.
 * Matmul cases run once per GEMM family (CLAI_GEMM) that this libclai can select, CLBlast included; the
 * convolution cases take each route (im2col + GEMM, chunked, direct, per-image partial gradients).
 * test_conv_weight_issue10 is the reproduction of defect 1 of issue 10 with its exact numbers. */
#include "internal.h" /* clai__loss_cross_entropy: both cross-entropy row kernels on any device */
#include "testutil.h"

#define SENTINEL (-777.0) /* exact in f32, f16 and i32 */
#define MAXIO 6

enum { MODE_OFFSET = 0, MODE_PADDED = 1, MODE_STRIDED = 2, MODES = 3 };
static const char *const mode_names[MODES] = {"dense at an offset", "padded rows", "inner stride 2"};

typedef struct tdesc {
  clai_dtype dt;
  int ndim;
  int64_t shape[4];
  float lo, hi;   /* random contents in [lo, hi) (i32: truncated) */
  int dense_only; /* outputs: the op requires a contiguous tensor, so only MODE_OFFSET */
} tdesc;

typedef clai_status (*run_fn)(clai_context *ctx, clai_tensor **out, clai_tensor **in);

typedef struct vcase {
  const char *name;
  run_fn run;
  int nin, nout;
  tdesc in[MAXIO], out[MAXIO];
} vcase;

static int64_t numel_of(const tdesc *d) {
  int64_t n = 1;
  for (int i = 0; i < d->ndim; i++) n *= d->shape[i];
  return n;
}

static double *random_values(clait_rng *r, const tdesc *d) {
  const int64_t n = numel_of(d);
  double *v = malloc((size_t)n * sizeof *v + 8);
  assert_non_null(v);
  for (int64_t i = 0; i < n; i++) {
    double x = clait_uniform(r, d->lo, d->hi);
    v[i] = d->dt == CLAI_DTYPE_I32 ? floor(x) : x;
  }
  return v;
}

/* An output view of layout `mode` inside a 1-d buffer *base (prefilled with SENTINEL); strides/offset out. */
static clai_tensor *make_view(clai_context *ctx, const tdesc *d, int mode, clai_tensor **base, int64_t *strides,
                              int64_t *offset, int64_t *total) {
  const int64_t off = 5;
  int64_t s = mode == MODE_STRIDED ? 2 : 1, extent = 0;
  for (int i = d->ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s = s * (d->shape[i] > 0 ? d->shape[i] : 1) + (mode == MODE_OFFSET ? 0 : 3);
    extent += (d->shape[i] > 0 ? d->shape[i] - 1 : 0) * strides[i];
  }
  *offset = off;
  *total = off + extent + 1 + 7;
  CLAIT_OK(ctx, clai_tensor_init(ctx, base, d->dt, 1, total));
  CLAIT_OK(ctx, clai_fill(ctx, *base, SENTINEL));
  clai_tensor *v = NULL;
  CLAIT_OK(ctx, clai_tensor_view(*base, &v, d->ndim, d->shape, strides, off));
  return v;
}

static void check_case(clai_context *ctx, const vcase *c, const char *family) {
  clait_rng r = {0x5eed0001u};
  for (const char *p = c->name; *p; p++) r.s = r.s * 31 + (unsigned char)*p;
  clai_tensor *in[MAXIO] = {0}, *out[MAXIO] = {0}, *base[MAXIO] = {0};
  double *init[MAXIO] = {0}, *want[MAXIO] = {0};
  for (int i = 0; i < c->nin; i++) {
    in[i] = clait_tensor(ctx, c->in[i].dt, c->in[i].ndim, c->in[i].shape);
    double *v = random_values(&r, &c->in[i]);
    clait_put(ctx, in[i], v);
    free(v);
  }
  /* the dense run gives the values every layout must reproduce */
  for (int o = 0; o < c->nout; o++) {
    init[o] = random_values(&r, &c->out[o]);
    out[o] = clait_tensor(ctx, c->out[o].dt, c->out[o].ndim, c->out[o].shape);
    clait_put(ctx, out[o], init[o]);
  }
  clai_status st = c->run(ctx, out, in);
  if (st != CLAI_OK) fail_msg("%s [%s] dense: %s: %s", c->name, family, clai_status_name(st), clai_errmsg(ctx));
  for (int o = 0; o < c->nout; o++) {
    want[o] = clait_fetch(ctx, out[o]);
    clai_tensor_free(out[o]);
    out[o] = NULL;
  }
  /* In small mode (a simulator) a case with more than 64 Ki input elements (the shapes that reach the
   * chunked convolution routes) checks one layout, the strided one: the other two take a minute there. */
  int64_t in_elems = 0;
  int viewable = 0; /* outputs that take every layout */
  for (int i = 0; i < c->nin; i++) in_elems += numel_of(&c->in[i]);
  for (int o = 0; o < c->nout; o++) viewable += !c->out[o].dense_only;
  const int first_mode = clait_small() && in_elems > 65536 && viewable ? MODE_STRIDED : 0;
  for (int mode = first_mode; mode < MODES; mode++) {
    int64_t strides[MAXIO][4], offset[MAXIO], total[MAXIO];
    int any = 0;
    for (int o = 0; o < c->nout; o++) {
      const int m = c->out[o].dense_only ? MODE_OFFSET : mode;
      any |= m == mode;
      out[o] = make_view(ctx, &c->out[o], m, &base[o], strides[o], &offset[o], &total[o]);
      clait_put(ctx, out[o], init[o]);
    }
    if (any) {
      st = c->run(ctx, out, in);
      if (st != CLAI_OK)
        fail_msg("%s [%s] outputs %s: %s: %s", c->name, family, mode_names[mode], clai_status_name(st),
                 clai_errmsg(ctx));
    }
    for (int o = 0; any && o < c->nout; o++) {
      const tdesc *d = &c->out[o];
      double *all = clait_fetch(ctx, base[o]);
      char *inside = calloc((size_t)total[o], 1);
      assert_non_null(inside);
      const int64_t n = numel_of(d);
      const double tol = d->dt == CLAI_DTYPE_F16 ? 2e-3 : d->dt == CLAI_DTYPE_I32 ? 0.0 : 1e-5;
      for (int64_t e = 0; e < n; e++) {
        int64_t rem = e, at = offset[o];
        for (int k = d->ndim - 1; k >= 0; k--) {
          at += rem % d->shape[k] * strides[o][k];
          rem /= d->shape[k];
        }
        inside[at] = 1;
        const double g = all[at], w = want[o][e];
        if (!(isnan(g) && isnan(w)) && g != w && !(fabs(g - w) <= tol + tol * fabs(w)))
          fail_msg("%s [%s] output %d as %s: element %lld is %.9g, the dense run gave %.9g", c->name, family, o,
                   mode_names[d->dense_only ? MODE_OFFSET : mode], (long long)e, g, w);
      }
      for (int64_t a = 0; a < total[o]; a++)
        if (!inside[a] && all[a] != SENTINEL)
          fail_msg("%s [%s] output %d as %s: buffer element %lld outside the view (offset %lld) was overwritten "
                   "with %.9g", c->name, family, o, mode_names[d->dense_only ? MODE_OFFSET : mode], (long long)a,
                   (long long)offset[o], all[a]);
      free(inside);
      free(all);
    }
    for (int o = 0; o < c->nout; o++) {
      clai_tensor_free(out[o]);
      clai_tensor_free(base[o]);
      out[o] = base[o] = NULL;
    }
  }
  for (int i = 0; i < c->nin; i++) clai_tensor_free(in[i]);
  for (int o = 0; o < c->nout; o++) {
    free(init[o]);
    free(want[o]);
  }
}

#define F32 CLAI_DTYPE_F32
#define F16 CLAI_DTYPE_F16
#define I32 CLAI_DTYPE_I32
#define T(dt, nd, ...) {dt, nd, {__VA_ARGS__}, -1.0f, 1.0f, 0}
#define TR(dt, lo, hi, nd, ...) {dt, nd, {__VA_ARGS__}, lo, hi, 0}
#define TD(dt, nd, ...) {dt, nd, {__VA_ARGS__}, -1.0f, 1.0f, 1}

/* ---- elementwise, copy, fill, host writes ---- */
static clai_status r_copy(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_copy(c, o[0], i[0]); }
static clai_status r_fill(clai_context *c, clai_tensor **o, clai_tensor **i) {
  (void)i;
  return clai_fill(c, o[0], 2.5);
}
static clai_status r_write(clai_context *c, clai_tensor **o, clai_tensor **i) {
  (void)i;
  float v[3 * 7];
  for (int k = 0; k < 21; k++) v[k] = 0.25f * (float)k - 2.0f;
  return clai_tensor_write(o[0], v, sizeof v);
}
static clai_status r_add(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_binary(c, CLAI_ADD, o[0], i[0], i[1]); }
static clai_status r_mul(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_binary(c, CLAI_MUL, o[0], i[0], i[1]); }
static clai_status r_gelu(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_unary(c, CLAI_GELU, o[0], i[0]); }
static clai_status r_neg(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_unary(c, CLAI_NEG, o[0], i[0]); }
static clai_status r_affine(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_affine(c, o[0], i[0], 1.5f, -0.25f); }

/* ---- matmul ---- */
static clai_status r_mm(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_matmul(c, o[0], i[0], 0, i[1], 0, 1.0f, 0.5f);
}
static clai_status r_mm_t(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_matmul(c, o[0], i[0], 1, i[1], 1, 0.75f, 0.0f);
}
static clai_status r_mm_ep(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_matmul_epilogue ep = {i[2], CLAI_ACT_RELU};
  return clai_matmul_ex(c, o[0], i[0], 0, i[1], 0, 1.0f, 0.0f, &ep);
}

/* ---- random, optimizers, losses ---- */
static clai_status r_uniform(clai_context *c, clai_tensor **o, clai_tensor **i) {
  (void)i;
  return clai_rand_uniform(c, o[0], 42, 3, -2.0f, 2.0f);
}
static clai_status r_normal(clai_context *c, clai_tensor **o, clai_tensor **i) {
  (void)i;
  return clai_rand_normal(c, o[0], 42, 3, 0.0f, 1.0f);
}
static clai_status r_kaiming(clai_context *c, clai_tensor **o, clai_tensor **i) {
  (void)i;
  return clai_init_kaiming_uniform(c, o[0], 7, 0, 0.0f, 0);
}
static clai_status r_dropout(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_dropout(c, o[0], o[1], i[0], 0.3f, 9, 1);
}
static clai_status r_sgd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_sgd_params hp = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f};
  return clai_optim_sgd(c, o[0], o[1], i[0], 2, &hp);
}
static clai_status r_adamw(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_adam_params hp = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f};
  return clai_optim_adamw(c, o[0], o[1], o[2], i[0], 3, &hp);
}
static clai_status r_clip(clai_context *c, clai_tensor **o, clai_tensor **i) {
  (void)i;
  clai_tensor *g[2] = {o[0], o[1]};
  return clai_clip_grad_norm(c, g, 2, 0.5f, o[2]);
}
static clai_status r_xent1(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai__loss_cross_entropy(c, o[0], o[1], i[0], i[1], -100, 1);
}
static clai_status r_xent2(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai__loss_cross_entropy(c, o[0], o[1], i[0], i[1], -100, 2);
}
static clai_status r_mse(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_loss_mse(c, o[0], o[1], i[0], i[1]); }
static clai_status r_unary_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_unary_backward(c, CLAI_SILU, o[0], i[0], i[1]);
}
static clai_status r_binary_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_binary_backward(c, CLAI_MUL, o[0], o[1], i[0], i[1], i[2]);
}

/* ---- convolution and pooling ---- */
static clai_status r_conv(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_conv2d_params p = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .activation = CLAI_ACT_RELU};
  return clai_conv2d(c, o[0], i[0], i[1], i[2], &p);
}
static clai_status r_conv_dw(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_conv2d_params p = {.pad_top = 1, .pad_left = 1, .groups = 3};
  return clai_conv2d(c, o[0], i[0], i[1], i[2], &p);
}
static clai_status r_conv_bd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_conv2d_params p = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  return clai_conv2d_backward_data(c, o[0], i[0], i[1], &p);
}
static clai_status r_conv_bd_dw(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_conv2d_params p = {.pad_top = 1, .pad_left = 1, .groups = 3};
  return clai_conv2d_backward_data(c, o[0], i[0], i[1], &p);
}
static clai_status r_conv_bw(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_conv2d_params p = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  return clai_conv2d_backward_weight(c, o[0], o[1], i[0], i[1], &p);
}
static clai_status r_conv_bw_dw(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_conv2d_params p = {.pad_top = 1, .pad_left = 1, .groups = 3};
  return clai_conv2d_backward_weight(c, o[0], o[1], i[0], i[1], &p);
}
static const clai_pool2d_params pool_p = {.kernel_h = 2, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_left = 1};
static const clai_pool2d_params pool22 = {.kernel_h = 2, .kernel_w = 2};
static clai_status r_maxpool22(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_max_pool2d(c, o[0], o[1], i[0], &pool22); }
static clai_status r_maxpool22_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_max_pool2d_backward(c, o[0], i[0], i[1], &pool22);
}
static clai_status r_maxpool(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_max_pool2d(c, o[0], o[1], i[0], &pool_p); }
static clai_status r_avgpool(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_avg_pool2d(c, o[0], i[0], &pool_p); }
static clai_status r_gap(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_global_avg_pool2d(c, o[0], i[0]); }
static clai_status r_maxpool_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_max_pool2d_backward(c, o[0], i[0], i[1], &pool_p);
}
static clai_status r_avgpool_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_avg_pool2d_backward(c, o[0], i[0], &pool_p);
}
static clai_status r_gap_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_global_avg_pool2d_backward(c, o[0], i[0]);
}

/* ---- layout ---- */
static clai_status r_concat(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_tensor *xs[2] = {i[0], i[1]};
  return clai_concat(c, o[0], 2, xs, 1);
}
static clai_status r_gather(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_gather_rows(c, o[0], i[0], i[1]); }
static clai_status r_one_hot(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_one_hot(c, o[0], i[0]); }
static clai_status r_where(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_where(c, o[0], i[0], i[1], i[2]); }
static clai_status r_gather_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_gather_rows_backward(c, o[0], i[0], i[1], 0);
}
static clai_status r_gather_bwd_acc(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_gather_rows_backward(c, o[0], i[0], i[1], 1);
}

/* ---- attention ---- */
static clai_status r_attention(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_attention(c, o[0], o[1], i[0], i[1], i[2], 0.0f, 1);
}
static clai_status r_rope(clai_context *c, clai_tensor **o, clai_tensor **i) {
  const clai_rope_params p = {.mode = CLAI_ROPE_HALVES, .rot_dims = 4, .pos_offset = 3};
  return clai_rope(c, o[0], i[0], &p);
}
static clai_status r_attention_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_attention_backward(c, o[0], o[1], o[2], i[0], i[1], i[2], i[3], i[4], i[5], 0.0f, 0);
}

/* ---- reductions and norms ---- */
static clai_status r_sum1(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_reduce(c, CLAI_REDUCE_SUM, o[0], i[0], 1, 0); }
static clai_status r_max0(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_reduce(c, CLAI_REDUCE_MAX, o[0], i[0], 0, 1); }
static clai_status r_mean_all(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_reduce(c, CLAI_REDUCE_MEAN, o[0], i[0], CLAI_AXIS_ALL, 0);
}
static clai_status r_sum_long(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_reduce(c, CLAI_REDUCE_SUM, o[0], i[0], 1, 0); }
static clai_status r_var(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_var(c, o[0], i[0], -1, 0, 1); }
static clai_status r_argmax(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_argmax(c, o[0], i[0], 1, 0); }
static clai_status r_sum_to(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_sum_to(c, o[0], i[0]); }
static const clai_softmax_opts sm_causal = {0.5f, 1};
static clai_status r_softmax(clai_context *c, clai_tensor **o, clai_tensor **i) { return clai_softmax(c, o[0], i[0], NULL); }
static clai_status r_log_softmax(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_log_softmax(c, o[0], i[0], &sm_causal);
}
static clai_status r_layernorm(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_layernorm(c, o[0], i[0], i[1], i[2], 1e-5f, o[1], o[2]);
}
static clai_status r_rmsnorm(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_rmsnorm(c, o[0], i[0], i[1], 1e-5f, o[1]);
}
static clai_status r_softmax_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_softmax_backward(c, o[0], i[0], i[1], NULL);
}
static clai_status r_log_softmax_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_log_softmax_backward(c, o[0], i[0], i[1], &sm_causal);
}
static clai_status r_layernorm_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_layernorm_backward(c, o[0], o[1], o[2], i[0], i[1], i[2], i[3], i[4]);
}
static clai_status r_rmsnorm_bwd(clai_context *c, clai_tensor **o, clai_tensor **i) {
  return clai_rmsnorm_backward(c, o[0], o[1], i[0], i[1], i[2], i[3]);
}

/* Every op but clai_matmul (which runs per family below). */
static const vcase cases[] = {
    {"copy f32 -> f16", r_copy, 1, 1, {T(F32, 2, 3, 5)}, {T(F16, 2, 3, 5)}},
    {"copy f32 (dense runs)", r_copy, 1, 1, {T(F32, 2, 6, 5)}, {T(F32, 2, 6, 5)}},
    {"copy broadcast", r_copy, 1, 1, {T(F32, 1, 5)}, {T(F32, 2, 4, 5)}},
    {"fill f32", r_fill, 0, 1, {{0}}, {T(F32, 2, 4, 6)}},
    {"fill i32", r_fill, 0, 1, {{0}}, {TR(I32, 0, 5, 3, 2, 3, 2)}},
    {"clai_tensor_write", r_write, 0, 1, {{0}}, {T(F32, 2, 3, 7)}},
    {"add", r_add, 2, 1, {T(F32, 2, 3, 7), T(F32, 2, 3, 7)}, {T(F32, 2, 3, 7)}},
    {"mul row broadcast", r_mul, 2, 1, {T(F32, 2, 3, 7), T(F32, 1, 7)}, {T(F32, 2, 3, 7)}},
    {"add f16", r_add, 2, 1, {T(F16, 3, 2, 3, 4), T(F16, 1, 4)}, {T(F16, 3, 2, 3, 4)}},
    {"add i32", r_add, 2, 1, {TR(I32, -9, 9, 2, 4, 3), TR(I32, -9, 9, 2, 4, 3)}, {TR(I32, 0, 3, 2, 4, 3)}},
    {"gelu", r_gelu, 1, 1, {T(F32, 2, 4, 9)}, {T(F32, 2, 4, 9)}},
    {"neg i32", r_neg, 1, 1, {TR(I32, -9, 9, 1, 10)}, {TR(I32, 0, 3, 1, 10)}},
    {"gelu f16", r_gelu, 1, 1, {T(F16, 2, 5, 3)}, {T(F16, 2, 5, 3)}},
    {"affine", r_affine, 1, 1, {T(F32, 3, 2, 2, 5)}, {T(F32, 3, 2, 2, 5)}},
    {"rand_uniform", r_uniform, 0, 1, {{0}}, {T(F32, 2, 5, 6)}},
    {"rand_normal f16", r_normal, 0, 1, {{0}}, {T(F16, 2, 5, 6)}},
    {"init_kaiming_uniform", r_kaiming, 0, 1, {{0}}, {T(F32, 2, 6, 4)}},
    {"dropout", r_dropout, 1, 2, {T(F32, 2, 6, 5)}, {T(F32, 2, 6, 5), T(F32, 2, 6, 5)}},
    {"optim_sgd", r_sgd, 1, 2, {T(F32, 2, 4, 5)}, {TD(F32, 2, 4, 5), TD(F32, 2, 4, 5)}},
    {"optim_adamw", r_adamw, 1, 3, {T(F32, 1, 13)}, {TD(F32, 1, 13), TD(F32, 1, 13), {F32, 1, {13}, 0.0f, 1.0f, 1}}},
    {"clip_grad_norm", r_clip, 0, 3, {{0}}, {TD(F32, 2, 3, 4), TD(F16, 1, 7), T(F32, 1, 1)}},
    {"loss_cross_entropy (row per work-item)", r_xent1, 2, 2, {T(F32, 2, 5, 7), TR(I32, 0, 7, 1, 5)},
     {T(F32, 0, 0), T(F32, 2, 5, 7)}},
    {"loss_cross_entropy (row per work-group)", r_xent2, 2, 2, {T(F16, 2, 4, 9), TR(I32, 0, 9, 1, 4)},
     {T(F32, 1, 1), T(F16, 2, 4, 9)}},
    {"loss_mse", r_mse, 2, 2, {T(F32, 2, 3, 5), T(F32, 2, 3, 5)}, {T(F32, 0, 0), T(F32, 2, 3, 5)}},
    {"unary_backward", r_unary_bwd, 2, 1, {T(F32, 2, 4, 6), T(F32, 2, 4, 6)}, {T(F32, 2, 4, 6)}},
    {"binary_backward broadcast", r_binary_bwd, 3, 2, {T(F32, 2, 3, 7), T(F32, 2, 3, 7), T(F32, 1, 7)},
     {T(F32, 2, 3, 7), T(F32, 1, 7)}},
    {"conv2d im2col", r_conv, 3, 1, {T(F32, 4, 2, 3, 6, 5), T(F32, 4, 8, 3, 3, 3), T(F32, 1, 8)},
     {T(F32, 4, 2, 8, 6, 5)}},
    /* 4 MiB of columns per chunk on CPUs: 6 images a chunk here, so 2 chunks */
    {"conv2d im2col chunked", r_conv, 3, 1, {T(F32, 4, 7, 16, 32, 32), T(F32, 4, 8, 16, 3, 3), T(F32, 1, 8)},
     {T(F32, 4, 7, 8, 32, 32)}},
    {"conv2d f16", r_conv, 3, 1, {T(F16, 4, 1, 2, 5, 5), T(F16, 4, 4, 2, 3, 3), T(F16, 1, 4)}, {T(F16, 4, 1, 4, 5, 5)}},
    {"conv2d direct (depthwise)", r_conv_dw, 3, 1, {T(F32, 4, 2, 3, 5, 6), T(F32, 4, 3, 1, 2, 2), T(F32, 1, 3)},
     {T(F32, 4, 2, 3, 5, 6)}},
    {"max_pool2d", r_maxpool, 1, 2, {T(F32, 4, 2, 3, 6, 7)}, {T(F32, 4, 2, 3, 3, 3), TR(I32, 0, 3, 4, 2, 3, 3, 3)}},
    {"max_pool2d 2x2", r_maxpool22, 1, 2, {T(F32, 4, 2, 3, 6, 8)}, {T(F32, 4, 2, 3, 3, 4), TR(I32, 0, 3, 4, 2, 3, 3, 4)}},
    /* indices of the 2x2 windows as the forward gives them would be best; any in-plane index is valid */
    {"max_pool2d_backward 2x2 (a plane per work-item)", r_maxpool22_bwd, 2, 1,
     {T(F32, 4, 2, 3, 3, 4), TR(I32, 0, 48, 4, 2, 3, 3, 4)}, {T(F32, 4, 2, 3, 6, 8)}},
    {"avg_pool2d f16", r_avgpool, 1, 1, {T(F16, 4, 2, 3, 6, 7)}, {T(F16, 4, 2, 3, 3, 3)}},
    {"global_avg_pool2d", r_gap, 1, 1, {T(F32, 4, 3, 4, 5, 2)}, {T(F32, 4, 3, 4, 1, 1)}},
    {"conv2d_backward_data gemm", r_conv_bd, 2, 1, {T(F32, 4, 2, 8, 6, 5), T(F32, 4, 8, 3, 3, 3)},
     {T(F32, 4, 2, 3, 6, 5)}},
    {"conv2d_backward_data direct", r_conv_bd_dw, 2, 1, {T(F32, 4, 2, 3, 5, 6), T(F32, 4, 3, 1, 2, 2)},
     {T(F32, 4, 2, 3, 5, 6)}},
    /* O*8 > OH*OW: one GEMM per chunk accumulating into grad_w */
    {"conv2d_backward_weight gemm", r_conv_bw, 2, 2, {T(F32, 4, 3, 2, 3, 2), T(F32, 4, 3, 8, 3, 2)},
     {T(F32, 4, 8, 2, 3, 3), T(F32, 1, 8)}},
    /* O*8 <= OH*OW, grad_out dense f32: partial gradients per image, summed into grad_w in 2 chunks */
    {"conv2d_backward_weight per image", r_conv_bw, 2, 2, {T(F32, 4, 8, 16, 32, 32), T(F32, 4, 8, 4, 32, 32)},
     {T(F32, 4, 4, 16, 3, 3), T(F32, 1, 4)}},
    /* the same route in one chunk on every device (O*8 = 32 <= OH*OW = 64) */
    {"conv2d_backward_weight per image, one chunk", r_conv_bw, 2, 2, {T(F32, 4, 2, 3, 8, 8), T(F32, 4, 2, 4, 8, 8)},
     {T(F32, 4, 4, 3, 3, 3), T(F32, 1, 4)}},
    {"conv2d_backward_weight f16 (f32 accumulator)", r_conv_bw, 2, 2, {T(F16, 4, 2, 2, 8, 8), T(F16, 4, 2, 4, 8, 8)},
     {T(F16, 4, 4, 2, 3, 3), T(F16, 1, 4)}},
    {"conv2d_backward_weight direct", r_conv_bw_dw, 2, 2, {T(F32, 4, 2, 3, 5, 6), T(F32, 4, 2, 3, 5, 6)},
     {T(F32, 4, 3, 1, 2, 2), T(F32, 1, 3)}},
    {"max_pool2d_backward", r_maxpool_bwd, 2, 1, {T(F32, 4, 2, 3, 3, 3), TR(I32, 0, 42, 4, 2, 3, 3, 3)},
     {T(F32, 4, 2, 3, 6, 7)}},
    {"avg_pool2d_backward", r_avgpool_bwd, 1, 1, {T(F32, 4, 2, 3, 3, 3)}, {T(F32, 4, 2, 3, 6, 7)}},
    {"global_avg_pool2d_backward", r_gap_bwd, 1, 1, {T(F32, 2, 3, 4)}, {T(F32, 4, 3, 4, 5, 2)}},
    {"concat", r_concat, 2, 1, {T(F32, 2, 3, 2), T(F32, 2, 3, 4)}, {T(F32, 2, 3, 6)}},
    {"gather_rows f16", r_gather, 2, 1, {T(F16, 2, 6, 5), TR(I32, 0, 6, 2, 2, 3)}, {T(F16, 3, 2, 3, 5)}},
    {"one_hot", r_one_hot, 1, 1, {TR(I32, 0, 4, 1, 5)}, {T(F32, 2, 5, 4)}},
    {"where", r_where, 3, 1, {TR(I32, 0, 2, 2, 3, 4), T(F32, 2, 3, 4), T(F32, 1, 4)}, {T(F32, 2, 3, 4)}},
    {"gather_rows_backward", r_gather_bwd, 2, 1, {T(F32, 3, 2, 3, 5), TR(I32, 0, 4, 2, 2, 3)}, {T(F32, 2, 4, 5)}},
    {"gather_rows_backward accumulate", r_gather_bwd_acc, 2, 1, {T(F32, 3, 2, 3, 5), TR(I32, 0, 4, 2, 2, 3)},
     {T(F32, 2, 4, 5)}},
    {"attention", r_attention, 3, 2, {T(F32, 4, 1, 2, 5, 4), T(F32, 4, 1, 1, 6, 4), T(F32, 4, 1, 1, 6, 3)},
     {T(F32, 4, 1, 2, 5, 3), T(F32, 3, 1, 2, 5)}},
    {"rope", r_rope, 1, 1, {T(F32, 4, 1, 2, 3, 6)}, {T(F32, 4, 1, 2, 3, 6)}},
    {"attention_backward", r_attention_bwd, 6, 3,
     {T(F32, 4, 1, 2, 5, 3), T(F32, 4, 1, 2, 5, 4), T(F32, 4, 1, 1, 6, 4), T(F32, 4, 1, 1, 6, 3),
      T(F32, 4, 1, 2, 5, 3), TR(F32, 1.0f, 2.0f, 3, 1, 2, 5)},
     {T(F32, 4, 1, 2, 5, 4), T(F32, 4, 1, 1, 6, 4), T(F32, 4, 1, 1, 6, 3)}},
    {"reduce sum", r_sum1, 1, 1, {T(F32, 3, 3, 5, 4)}, {T(F32, 2, 3, 4)}},
    {"reduce max keepdim", r_max0, 1, 1, {T(F32, 2, 5, 4)}, {T(F32, 2, 1, 4)}},
    {"reduce mean all", r_mean_all, 1, 1, {T(F32, 2, 5, 4)}, {T(F32, 0, 0)}},
    /* a long strided axis: chunks reduced in parallel, then merged */
    {"reduce sum chunked", r_sum_long, 1, 1, {T(F32, 2, 3, 5000)}, {T(F32, 1, 3)}},
    {"reduce sum chunked columns", r_sum_long, 1, 1, {T(F32, 3, 2, 3000, 9)}, {T(F32, 2, 2, 9)}},
    {"var f16", r_var, 1, 1, {T(F32, 2, 4, 6)}, {T(F16, 1, 4)}},
    {"argmax", r_argmax, 1, 1, {T(F32, 3, 2, 5, 3)}, {TR(I32, 0, 3, 2, 2, 3)}},
    {"sum_to", r_sum_to, 1, 1, {T(F32, 3, 2, 3, 4)}, {T(F32, 2, 3, 1)}},
    {"softmax", r_softmax, 1, 1, {T(F32, 2, 3, 7)}, {T(F32, 2, 3, 7)}},
    {"log_softmax causal f16", r_log_softmax, 1, 1, {T(F32, 3, 2, 3, 4)}, {T(F16, 3, 2, 3, 4)}},
    {"layernorm", r_layernorm, 3, 3, {T(F32, 2, 3, 6), T(F32, 1, 6), T(F32, 1, 6)},
     {T(F32, 2, 3, 6), TD(F32, 1, 3), TD(F32, 2, 3, 1)}},
    {"rmsnorm", r_rmsnorm, 2, 2, {T(F32, 3, 2, 2, 5), T(F32, 1, 5)}, {T(F32, 3, 2, 2, 5), TD(F32, 2, 2, 2)}},
    {"softmax_backward", r_softmax_bwd, 2, 1, {T(F32, 2, 3, 6), T(F32, 2, 3, 6)}, {T(F32, 2, 3, 6)}},
    {"log_softmax_backward causal", r_log_softmax_bwd, 2, 1, {T(F32, 3, 2, 3, 4), T(F32, 3, 2, 3, 4)},
     {T(F32, 3, 2, 3, 4)}},
    {"layernorm_backward", r_layernorm_bwd, 5, 3,
     {T(F32, 2, 70, 6), T(F32, 2, 70, 6), T(F32, 1, 6), T(F32, 1, 70), TR(F32, 0.5f, 2.0f, 1, 70)},
     {T(F32, 2, 70, 6), T(F32, 1, 6), T(F32, 1, 6)}},
    {"rmsnorm_backward f16 grads", r_rmsnorm_bwd, 4, 2,
     {T(F32, 2, 3, 5), T(F32, 2, 3, 5), T(F32, 1, 5), TR(F32, 0.5f, 2.0f, 1, 3)}, {T(F32, 2, 3, 5), T(F16, 1, 5)}},
};

/* The cases sized to cut their batch into chunks of images (clai__conv_col_budget) on CPUs, and their routes. */
enum { CHUNKS_NONE = 0, CHUNKS_CONV_IM2COL = 1, CHUNKS_WGRAD_PER_IMAGE = 2 };
static int chunked_route(const vcase *c) {
  if (strcmp(c->name, "conv2d im2col chunked") == 0) return CHUNKS_CONV_IM2COL;
  if (strcmp(c->name, "conv2d_backward_weight per image") == 0) return CHUNKS_WGRAD_PER_IMAGE;
  return CHUNKS_NONE;
}

/* Whether case c's batch is cut into chunks of images on ctx's device: the bytes of its route's workspace per
 * image (as lib/op-conv.c and lib/op-conv-backward.c count them, groups 1) times its images, against the
 * device's budget (4 MiB on CPUs, 32 MiB elsewhere). */
static int cut_into_chunks(const clai_context *ctx, const vcase *c) {
  const int route = chunked_route(c);
  const tdesc *x = &c->in[0], *o = route == CHUNKS_CONV_IM2COL ? &c->out[0] : &c->in[1];
  const int64_t N = x->shape[0], C = x->shape[1], P = o->shape[2] * o->shape[3], O = o->shape[1];
  const int64_t KHW = route == CHUNKS_CONV_IM2COL ? c->in[1].shape[2] * c->in[1].shape[3]
                                                  : c->out[0].shape[2] * c->out[0].shape[3];
  const uint64_t per_image = (uint64_t)(C * KHW * P + (route == CHUNKS_CONV_IM2COL ? O * P : O * C * KHW)) * 4;
  return (uint64_t)N * per_image > clai__conv_col_budget(ctx);
}

static void test_every_op(void **state) {
  clai_context *ctx = *state;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    /* In small mode (a simulator), a case sized to cut its batch into chunks is left out where its batch fits
     * one chunk anyway (devices other than CPUs): there it takes the very route of the smaller cases above and
     * below it ("conv2d im2col", "conv2d_backward_weight per image, one chunk") with 100 times their work,
     * which was most of this test's time on Oclgrind. */
    if (clait_small() && chunked_route(&cases[k]) != CHUNKS_NONE && !cut_into_chunks(ctx, &cases[k])) {
      print_message("# %s: one chunk on this device, the route of a smaller case; not run in small mode\n",
                    cases[k].name);
      continue;
    }
    check_case(ctx, &cases[k], "default");
  }
}

/* Products that reach each kernel of a family: skinny (M <= 16) and not, batched, transposed operands,
 * beta, the fused epilogue, f16. */
static const vcase mm_cases[] = {
    {"matmul batched beta", r_mm, 2, 1, {T(F32, 3, 2, 5, 3), T(F32, 3, 2, 3, 7)}, {T(F32, 3, 2, 5, 7)}},
    {"matmul large", r_mm, 2, 1, {T(F32, 2, 37, 21), T(F32, 2, 21, 19)}, {T(F32, 2, 37, 19)}},
    {"matmul transposed", r_mm_t, 2, 1, {T(F32, 2, 9, 33), T(F32, 2, 6, 9)}, {T(F32, 2, 33, 6)}},
    {"matmul epilogue", r_mm_ep, 3, 1, {T(F32, 2, 20, 8), T(F32, 2, 8, 11), T(F32, 1, 11)}, {T(F32, 2, 20, 11)}},
    {"matmul f16", r_mm, 2, 1, {T(F16, 2, 18, 8), T(F16, 2, 8, 5)}, {T(F16, 2, 18, 5)}},
    /* K = 0: C = act(beta * C + bias) through the elementwise ops */
    {"matmul K = 0 beta", r_mm, 2, 1, {T(F32, 2, 6, 0), T(F32, 2, 0, 5)}, {T(F32, 2, 6, 5)}},
    {"matmul K = 0 epilogue", r_mm_ep, 3, 1, {T(F32, 2, 6, 0), T(F32, 2, 0, 5), T(F32, 1, 5)}, {T(F32, 2, 6, 5)}},
};

static void test_matmul_families(void **state) {
  (void)state;
  static const char *const families[] = {"packed", "generic", "gpu", "clblast"};
  const char *saved = getenv("CLAI_GEMM");
  for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
    setenv("CLAI_GEMM", families[f], 1);
    char err[4096];
    clai_context *ctx = NULL;
    clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
    if (st != CLAI_OK && strstr(err, "without CLBlast") != NULL) continue; /* not built with CLBlast */
    if (st != CLAI_OK) fail_msg("CLAI_GEMM=%s: %s: %s", families[f], clai_status_name(st), err);
    if (strcmp(families[f], "clblast") == 0) { /* the bridge really runs these products */
      const int64_t sa[2] = {37, 21}, sb[2] = {21, 19}, sc[2] = {37, 19};
      clai_tensor *a = clait_tensor(ctx, F32, 2, sa), *b = clait_tensor(ctx, F32, 2, sb), *c = clait_tensor(ctx, F32, 2, sc);
      char what[256];
      CLAIT_OK(ctx, clai_matmul_describe(ctx, c, a, 0, b, 0, what, sizeof what));
      if (strncmp(what, "clblast", 7) != 0) fail_msg("CLAI_GEMM=clblast runs \"%s\"", what);
      clai_tensor_free(c);
      clai_tensor_free(b);
      clai_tensor_free(a);
    }
    for (size_t k = 0; k < sizeof mm_cases / sizeof mm_cases[0]; k++) check_case(ctx, &mm_cases[k], families[f]);
    clai_context_free(ctx);
  }
  if (saved != NULL) setenv("CLAI_GEMM", saved, 1);
  else unsetenv("CLAI_GEMM");
}

/* Issue 10, defect 1: x [1,1,8,8] of ones, grad_out [1,4,8,8] with channel o all o+1, a 1x1 kernel, grad_w a
 * [4,1,1,1] view at offset 4 of an 8-float buffer of -1 (the per-image route: O*8 <= OH*OW). */
static void test_conv_weight_issue10(void **state) {
  clai_context *ctx = *state;
  const int64_t xs[4] = {1, 1, 8, 8}, ys[4] = {1, 4, 8, 8}, ws[4] = {4, 1, 1, 1}, wst[4] = {1, 1, 1, 1}, eight = 8;
  float xv[64], yv[256], buf[8];
  for (int i = 0; i < 64; i++) xv[i] = 1.0f;
  for (int i = 0; i < 256; i++) yv[i] = (float)(i / 64 + 1);
  clai_tensor *x = clait_upload_floats(ctx, F32, 4, xs, xv), *gy = clait_upload_floats(ctx, F32, 4, ys, yv);
  clai_tensor *flat = clait_tensor(ctx, F32, 1, &eight), *gw = NULL;
  CLAIT_OK(ctx, clai_fill(ctx, flat, -1.0));
  CLAIT_OK(ctx, clai_tensor_view(flat, &gw, 4, ws, wst, 4));
  CLAIT_OK(ctx, clai_conv2d_backward_weight(ctx, gw, NULL, x, gy, NULL));
  CLAIT_OK(ctx, clai_tensor_read(flat, buf, sizeof buf));
  const double want[8] = {-1, -1, -1, -1, 64, 128, 192, 256};
  clait_expect_close("grad_w's buffer", buf, want, 8, 0.0, 0.0);
  clai_tensor_free(gw);
  clai_tensor_free(flat);
  clai_tensor_free(gy);
  clai_tensor_free(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_conv_weight_issue10, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_every_op, clait_setup, clait_teardown),
      CLAIT_TIMED(test_matmul_families),
  };
  return CLAIT_MAIN("views", tests, 1);
}
