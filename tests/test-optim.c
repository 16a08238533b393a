/* test-optim.c - clai_optim_sgd, clai_optim_adam, clai_optim_adamw and clai_clip_grad_norm against
 * double-precision references written from the torch.optim / clip_grad_norm_ definitions: several steps on
 * sizes 1, 7, 1000 and 100003, weight decay on and off, momentum with dampening, nesterov, f16 parameters,
 * the state tensors after each step, state that would go subnormal stored as zeros, and every bad input with
 * its status and message. */
#include <float.h>

#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

static const int64_t sizes[] = {1, 7, 1000, 100003};
#define NSIZES (sizeof sizes / sizeof sizes[0])
/* sizes[s]; in small mode (CLAI_TEST_SIZE=small) the last one is 5003, still many work-groups and ragged. */
static int64_t size_at(size_t s) { return s == NSIZES - 1 ? CLAIT_SIZE(sizes[s], 5003) : sizes[s]; }

static clai_tensor *new_tensor(clai_context *ctx, clai_dtype dt, int64_t n) {
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, 1, &n));
  return t;
}

static double as(clai_dtype dt, double v) {
  return dt == CLAI_DTYPE_F16 ? clait_f16_to_f32(clait_f32_to_f16((float)v)) : (double)(float)v;
}

static void randv(clait_rng *r, clai_dtype dt, double *v, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) v[i] = as(dt, clait_uniform(r, (float)lo, (float)hi));
}

static void expect(const char *what, clai_context *ctx, clai_tensor *t, const double *want, double atol, double rtol) {
  float *got = clait_get(ctx, t);
  clait_expect_close(what, got, want, (size_t)clai_tensor_numel(t), atol, rtol);
  free(got);
}

/* ---- references (torch.optim's single-tensor definitions, in double) ---------------------------------- */

static void ref_sgd(double *p, double *buf, const double *grad, size_t n, int64_t step, const clai_sgd_params *h) {
  for (size_t i = 0; i < n; i++) {
    double g = grad[i];
    if (h->weight_decay != 0) g += h->weight_decay * p[i];
    if (h->momentum != 0) {
      buf[i] = step == 1 ? g : h->momentum * buf[i] + (1.0 - h->dampening) * g;
      g = h->nesterov ? g + h->momentum * buf[i] : buf[i];
    }
    p[i] -= h->lr * g;
  }
}

static void ref_adam(double *p, double *m, double *v, const double *grad, size_t n, int64_t step,
                     const clai_adam_params *h, int decoupled) {
  double bc1 = 1 - pow(h->beta1, (double)step), bc2 = 1 - pow(h->beta2, (double)step);
  for (size_t i = 0; i < n; i++) {
    double g = grad[i];
    if (h->weight_decay != 0) {
      if (decoupled)
        p[i] *= 1 - (double)h->lr * h->weight_decay;
      else
        g += h->weight_decay * p[i];
    }
    m[i] = h->beta1 * m[i] + (1 - h->beta1) * g;
    v[i] = h->beta2 * v[i] + (1 - h->beta2) * g * g;
    p[i] -= h->lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + h->eps);
  }
}

/* ---- tests ----------------------------------------------------------------------------------------- */

static void run_sgd(clai_context *ctx, clai_dtype dt, const clai_sgd_params *h, int steps, double atol, double rtol) {
  clait_rng r = {0x5d9};
  for (size_t s = 0; s < NSIZES; s++) {
    size_t n = (size_t)size_at(s);
    double *p = malloc(n * 8), *buf = calloc(n, 8), *g = malloc(n * 8);
    assert_non_null(p);
    assert_non_null(buf);
    assert_non_null(g);
    randv(&r, dt, p, n, -1, 1);
    clai_tensor *tp = new_tensor(ctx, dt, size_at(s)), *tg = new_tensor(ctx, dt, size_at(s)),
                *tb = new_tensor(ctx, CLAI_DTYPE_F32, size_at(s));
    clait_put(ctx, tp, p);
    CLAIT_OK(ctx, clai_fill(ctx, tb, 0.0));
    for (int step = 1; step <= steps; step++) {
      randv(&r, dt, g, n, -2, 2);
      clait_put(ctx, tg, g);
      CLAIT_OK(ctx, clai_optim_sgd(ctx, tp, h->momentum != 0 ? tb : NULL, tg, step, h));
      ref_sgd(p, buf, g, n, step, h);
      if (dt == CLAI_DTYPE_F16)
        for (size_t i = 0; i < n; i++) p[i] = as(dt, p[i]);
      char what[128];
      snprintf(what, sizeof what, "sgd %s n=%zu step %d mom %g nesterov %d wd %g", clai_dtype_name(dt), n, step,
               h->momentum, h->nesterov, h->weight_decay);
      expect(what, ctx, tp, p, atol, rtol);
      if (h->momentum != 0) expect(what, ctx, tb, buf, 1e-6, 1e-5);
    }
    clai_tensor_free(tp);
    clai_tensor_free(tg);
    clai_tensor_free(tb);
    free(p);
    free(buf);
    free(g);
  }
}

static void sgd(void **state) {
  clai_context *ctx = CTX(state);
  clai_sgd_params plain = {0.1f, 0, 0, 0, 0}, mom = {0.05f, 0.9f, 0.1f, 0.01f, 0}, nest = {0.02f, 0.8f, 0, 1e-3f, 1},
                  wd = {0.1f, 0, 0, 0.5f, 0};
  run_sgd(ctx, CLAI_DTYPE_F32, &plain, 3, 1e-6, 1e-5);
  run_sgd(ctx, CLAI_DTYPE_F32, &wd, 3, 1e-6, 1e-5);
  run_sgd(ctx, CLAI_DTYPE_F32, &mom, 5, 1e-6, 1e-5);
  run_sgd(ctx, CLAI_DTYPE_F32, &nest, 5, 1e-6, 1e-5);
  /* f16 parameters: the reference rounds to half after every step like the device; one half ulp apart */
  run_sgd(ctx, CLAI_DTYPE_F16, &nest, 3, 2e-3, 2e-3);
}

static void run_adam(clai_context *ctx, clai_dtype dt, const clai_adam_params *h, int decoupled, int steps,
                     double atol, double rtol) {
  clait_rng r = {0xada};
  for (size_t s = 0; s < NSIZES; s++) {
    size_t n = (size_t)size_at(s);
    double *p = malloc(n * 8), *m = calloc(n, 8), *v = calloc(n, 8), *g = malloc(n * 8);
    assert_non_null(p);
    assert_non_null(m);
    assert_non_null(v);
    assert_non_null(g);
    randv(&r, dt, p, n, -1, 1);
    clai_tensor *tp = new_tensor(ctx, dt, size_at(s)), *tg = new_tensor(ctx, dt, size_at(s)),
                *tm = new_tensor(ctx, CLAI_DTYPE_F32, size_at(s)), *tv = new_tensor(ctx, CLAI_DTYPE_F32, size_at(s));
    clait_put(ctx, tp, p);
    CLAIT_OK(ctx, clai_fill(ctx, tm, 0.0));
    CLAIT_OK(ctx, clai_fill(ctx, tv, 0.0));
    for (int step = 1; step <= steps; step++) {
      randv(&r, dt, g, n, -2, 2);
      clait_put(ctx, tg, g);
      if (decoupled)
        CLAIT_OK(ctx, clai_optim_adamw(ctx, tp, tm, tv, tg, step, h));
      else
        CLAIT_OK(ctx, clai_optim_adam(ctx, tp, tm, tv, tg, step, h));
      ref_adam(p, m, v, g, n, step, h, decoupled);
      if (dt == CLAI_DTYPE_F16)
        for (size_t i = 0; i < n; i++) p[i] = as(dt, p[i]);
      char what[128];
      snprintf(what, sizeof what, "%s %s n=%zu step %d wd %g", decoupled ? "adamw" : "adam", clai_dtype_name(dt), n,
               step, h->weight_decay);
      expect(what, ctx, tp, p, atol, rtol);
      expect(what, ctx, tm, m, 1e-6, 1e-5);
      expect(what, ctx, tv, v, 1e-6, 1e-5);
    }
    clai_tensor_free(tp);
    clai_tensor_free(tg);
    clai_tensor_free(tm);
    clai_tensor_free(tv);
    free(p);
    free(m);
    free(v);
    free(g);
  }
}

static void adam(void **state) {
  clai_context *ctx = CTX(state);
  clai_adam_params plain = {1e-2f, 0.9f, 0.999f, 1e-8f, 0}, wd = {1e-2f, 0.8f, 0.99f, 1e-6f, 0.1f},
                   w = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f};
  run_adam(ctx, CLAI_DTYPE_F32, &plain, 0, 5, 1e-6, 1e-5);
  run_adam(ctx, CLAI_DTYPE_F32, &wd, 0, 5, 1e-6, 1e-5);
  run_adam(ctx, CLAI_DTYPE_F32, &w, 1, 5, 1e-6, 1e-5);
  run_adam(ctx, CLAI_DTYPE_F32, &plain, 1, 3, 1e-6, 1e-5); /* AdamW without weight decay is Adam */
  run_adam(ctx, CLAI_DTYPE_F16, &w, 1, 3, 2e-3, 2e-3);
}

/* The optimizer state never goes subnormal (cl/optim.cl, clai_state_flush): momentum and exp_avg that decay
 * below FLT_MIN with a zero gradient are stored as zeros of their sign; exp_avg_sq likewise once exp_avg is
 * 0 and eps > 0 (the step is 0 either way), and never beside a normal exp_avg or with eps 0, where a flushed
 * one would change the step; values still normal, NaN and the parameter updates stay as the definitions
 * give them. Element by element: 0 a normal value just above FLT_MIN that one step takes below it, 1 the
 * same negative, 2 a value that stays normal, 3 a subnormal state (1e-39), which the step would keep
 * subnormal, 4 NaN, 5 a state that a gradient keeps normal, 6 a normal exp_avg beside a subnormal
 * exp_avg_sq. Devices that flush subnormals themselves (llvmpipe) give 0 for element 6's exp_avg_sq, and
 * skip the checks that need one kept. */
static void state_flush(void **state) {
  clai_context *ctx = CTX(state);
  const double lo = 1.05 * FLT_MIN, sub = 1e-39;
  const double buf0[7] = {lo, -lo, 1e-30, sub, NAN, lo, 1e-20}, grad[7] = {0, 0, 0, 0, 0, 1e-3, 0};
  const double pv[7] = {0.5, -0.25, 1, 2, 3, 4, 5};
  clai_tensor *p = new_tensor(ctx, CLAI_DTYPE_F32, 7), *g = new_tensor(ctx, CLAI_DTYPE_F32, 7),
              *b = new_tensor(ctx, CLAI_DTYPE_F32, 7), *v = new_tensor(ctx, CLAI_DTYPE_F32, 7);
  /* does the device keep a subnormal that arithmetic makes? 1e-20 * 1e-19 through clai_scale */
  clait_put(ctx, p, (const double[7]){1e-20, 0, 0, 0, 0, 0, 0});
  CLAIT_OK(ctx, clai_scale(ctx, b, p, 1e-19f));
  float *probe = clait_get(ctx, b);
  const int keeps = probe[0] != 0.0f;
  free(probe);
  /* SGD with momentum 0.9, dampening 0, step 2: buf = 0.9 buf + g */
  clai_sgd_params sgd = {0.1f, 0.9f, 0, 0, 0};
  clait_put(ctx, p, pv), clait_put(ctx, g, grad), clait_put(ctx, b, buf0);
  CLAIT_OK(ctx, clai_optim_sgd(ctx, p, b, g, 2, &sgd));
  float *gb = clait_get(ctx, b), *gp = clait_get(ctx, p);
  assert_true(gb[0] == 0.0f && !signbit(gb[0]));
  assert_true(gb[1] == 0.0f && signbit(gb[1]));
  assert_float_equal(gb[2], 0.9f * 1e-30f, 1e-36);
  assert_true(gb[3] == 0.0f);
  assert_true(isnan(gb[4]) && isnan(gp[4]));
  assert_float_equal(gb[5], (float)(0.9 * lo + 1e-3), 1e-9);
  assert_float_equal(gb[6], 0.9f * 1e-20f, 1e-26);
  for (int i = 0; i < 4; i++) assert_float_equal(gp[i], (float)pv[i], 0);
  assert_float_equal(gp[5], (float)(pv[5] - 0.1 * (0.9 * lo + 1e-3)), 1e-7);
  free(gb), free(gp);
  /* Adam, beta1 0.9 and beta2 0.999, eps 1e-8: exp_avg starts at buf0, exp_avg_sq at v0 */
  const double v0[7] = {1.0005 * FLT_MIN, 1.0005 * FLT_MIN, 1e-30, sub, NAN, 1.0005 * FLT_MIN, sub};
  clai_adam_params ad = {1e-2f, 0.9f, 0.999f, 1e-8f, 0};
  clait_put(ctx, p, pv), clait_put(ctx, b, buf0), clait_put(ctx, v, v0);
  CLAIT_OK(ctx, clai_optim_adam(ctx, p, b, v, g, 3, &ad));
  float *gm = clait_get(ctx, b), *gv = clait_get(ctx, v);
  gp = clait_get(ctx, p);
  assert_true(gm[0] == 0.0f && !signbit(gm[0]) && gv[0] == 0.0f);
  assert_true(gm[1] == 0.0f && signbit(gm[1]) && gv[1] == 0.0f);
  assert_float_equal(gm[2], 0.9f * 1e-30f, 1e-36);
  assert_float_equal(gv[2], 0.999f * 1e-30f, 1e-36);
  assert_true(gm[3] == 0.0f && gv[3] == 0.0f);
  assert_true(isnan(gm[4]) && isnan(gv[4]) && isnan(gp[4]));
  assert_float_equal(gm[5], (float)(0.9 * lo + 0.1e-3), 1e-10);
  /* 1 - beta2 is 0.00099998713 in f32 */
  assert_float_equal(gv[5], (float)(0.999 * 1.0005 * FLT_MIN + 0.001 * 1e-6), 1e-13);
  assert_float_equal(gm[6], 0.9f * 1e-20f, 1e-26);
  if (keeps) assert_float_equal(gv[6], (float)(0.999 * sub), 2e-45); /* kept beside a normal exp_avg */
  assert_float_equal(gp[0], 0.5f, 0), assert_float_equal(gp[1], -0.25f, 0), assert_float_equal(gp[3], 2.0f, 0);
  free(gm), free(gv), free(gp);
  /* eps 0: exp_avg_sq is never flushed, and a zero exp_avg beside a subnormal one steps by 0, not NaN */
  ad.eps = 0;
  clait_put(ctx, p, pv), clait_put(ctx, b, buf0), clait_put(ctx, v, v0);
  CLAIT_OK(ctx, clai_optim_adam(ctx, p, b, v, g, 3, &ad));
  gm = clait_get(ctx, b), gv = clait_get(ctx, v), gp = clait_get(ctx, p);
  assert_true(gm[0] == 0.0f && gm[3] == 0.0f);
  if (keeps) {
    assert_true(gv[0] > 0.0f && gv[0] < FLT_MIN && gv[3] > 0.0f);
    assert_float_equal(gp[0], 0.5f, 0), assert_float_equal(gp[3], 2.0f, 0);
  }
  free(gm), free(gv), free(gp);
  clai_tensor_free(p), clai_tensor_free(g), clai_tensor_free(b), clai_tensor_free(v);
}

/* Global-norm clipping of a list of gradients, compared with the double reference; the norm comes back in
 * norm_out; a large max_norm leaves the gradients alone; two runs give the same bits. */
static void clip(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xc11};
  enum { NG = 5 };
  const int64_t gs[NG] = {1, 7, 1000, CLAIT_SIZE(100003, 5003), 4099};
  const clai_dtype dts[NG] = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, CLAI_DTYPE_F32, CLAI_DTYPE_F32, CLAI_DTYPE_F16};
  double *host[NG];
  clai_tensor *g[NG];
  double ss = 0;
  for (int i = 0; i < NG; i++) {
    host[i] = malloc((size_t)gs[i] * 8);
    assert_non_null(host[i]);
    randv(&r, dts[i], host[i], (size_t)gs[i], -1, 1);
    g[i] = new_tensor(ctx, dts[i], gs[i]);
    for (int64_t k = 0; k < gs[i]; k++) ss += host[i][k] * host[i][k];
  }
  double norm = sqrt(ss);
  const int64_t one = 1;
  clai_tensor *tn = new_tensor(ctx, CLAI_DTYPE_F32, one);
  for (int pass = 0; pass < 2; pass++) {
    double max_norm = pass == 0 ? norm / 4 : norm * 2;
    for (int i = 0; i < NG; i++) clait_put(ctx, g[i], host[i]);
    CLAIT_OK(ctx, clai_clip_grad_norm(ctx, g, NG, (float)max_norm, tn));
    float got;
    CLAIT_OK(ctx, clai_tensor_read(tn, &got, 4));
    if (fabs(got - norm) > 1e-5 * norm) fail_msg("norm %.9g, expected %.9g", got, norm);
    double c = max_norm / (norm + 1e-6);
    if (c > 1) c = 1;
    for (int i = 0; i < NG; i++) {
      double *want = malloc((size_t)gs[i] * 8);
      assert_non_null(want);
      for (int64_t k = 0; k < gs[i]; k++) want[k] = host[i][k] * c;
      char what[64];
      snprintf(what, sizeof what, "clip pass %d grads[%d]", pass, i);
      expect(what, ctx, g[i], want, 1e-7, dts[i] == CLAI_DTYPE_F16 ? 2e-3 : 2e-6);
      free(want);
    }
  }
  /* determinism: the same inputs give the same bits; norm_out may be omitted */
  float *first[NG];
  for (int i = 0; i < NG; i++) clait_put(ctx, g[i], host[i]);
  CLAIT_OK(ctx, clai_clip_grad_norm(ctx, g, NG, 0.5f, NULL));
  for (int i = 0; i < NG; i++) first[i] = clait_get(ctx, g[i]);
  for (int i = 0; i < NG; i++) clait_put(ctx, g[i], host[i]);
  CLAIT_OK(ctx, clai_clip_grad_norm(ctx, g, NG, 0.5f, NULL));
  for (int i = 0; i < NG; i++) {
    float *again = clait_get(ctx, g[i]);
    assert_memory_equal(again, first[i], (size_t)gs[i] * 4);
    free(again);
    free(first[i]);
  }
  /* no gradients: norm 0 */
  CLAIT_OK(ctx, clai_clip_grad_norm(ctx, NULL, 0, 1.0f, tn));
  float z = -1;
  CLAIT_OK(ctx, clai_tensor_read(tn, &z, 4));
  assert_true(z == 0.0f);
  for (int i = 0; i < NG; i++) {
    clai_tensor_free(g[i]);
    free(host[i]);
  }
  clai_tensor_free(tn);
}

/* One gradient long enough that its 1024 partial sums of squares on a CPU would each pass llvmpipe's loop
 * budget (65535 iterations a work-item; 70M elements, there only): they stay within it (op-optim.c). The
 * old layout gave a norm of 2290 for 2339 there. Elsewhere 5M elements. */
static void clip_long(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t n = clait_loop_limited(ctx) ? 70000000 : CLAIT_SIZE(5000000, 100000), one = 1;
  float *h = malloc((size_t)n * 4);
  assert_non_null(h);
  double ss = 0;
  for (int64_t i = 0; i < n; i++) { /* exact in f32 */
    h[i] = (float)(i % 7) * 0.125f - 0.25f;
    ss += (double)h[i] * h[i];
  }
  const double norm = sqrt(ss), max_norm = norm / 3;
  clai_tensor *g = new_tensor(ctx, CLAI_DTYPE_F32, n), *tn = new_tensor(ctx, CLAI_DTYPE_F32, one);
  CLAIT_OK(ctx, clai_tensor_write(g, h, (size_t)n * 4));
  CLAIT_OK(ctx, clai_clip_grad_norm(ctx, &g, 1, (float)max_norm, tn));
  float got;
  CLAIT_OK(ctx, clai_tensor_read(tn, &got, 4));
  if (!(fabs(got - norm) <= 1e-5 * norm)) fail_msg("long gradient: norm %.9g, expected %.9g", got, norm);
  CLAIT_OK(ctx, clai_tensor_read(g, h, (size_t)n * 4));
  const double c = max_norm / (norm + 1e-6);
  /* every 997th element and the last 1000, scaled */
  for (int64_t i = 0; i < n; i = i + 997 < n - 1000 ? i + 997 : i + 1) {
    const double want = ((double)(i % 7) * 0.125 - 0.25) * c;
    if (!(fabs(h[i] - want) <= 2e-6 * fabs(want) + 1e-12))
      fail_msg("long gradient: element %lld is %.9g, want %.9g", (long long)i, h[i], want);
  }
  clai_tensor_free(g), clai_tensor_free(tn);
  free(h);
}

static void bad_arguments(void **state) {
  clai_context *ctx = CTX(state);
  clai_tensor *p = new_tensor(ctx, CLAI_DTYPE_F32, 7), *g = new_tensor(ctx, CLAI_DTYPE_F32, 7),
              *m = new_tensor(ctx, CLAI_DTYPE_F32, 7), *v = new_tensor(ctx, CLAI_DTYPE_F32, 7),
              *g8 = new_tensor(ctx, CLAI_DTYPE_F32, 8), *h = new_tensor(ctx, CLAI_DTYPE_F16, 7),
              *i32 = new_tensor(ctx, CLAI_DTYPE_I32, 7), *big = new_tensor(ctx, CLAI_DTYPE_F32, 14);
  clai_tensor *strided = NULL, *two = new_tensor(ctx, CLAI_DTYPE_F32, 2);
  CLAIT_OK(ctx, clai_tensor_slice(big, &strided, 0, 0, 14, 2));
  clai_sgd_params sp = {0.1f, 0.9f, 0, 0, 0};
  clai_adam_params ap = {1e-3f, 0.9f, 0.999f, 1e-8f, 0};
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "differ in shape", clai_optim_sgd(ctx, p, m, g8, 1, &sp));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "momentum_buf", clai_optim_sgd(ctx, p, g8, g, 1, &sp));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "needs momentum_buf", clai_optim_sgd(ctx, p, NULL, g, 1, &sp));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "optimizer state is f32", clai_optim_sgd(ctx, p, h, g, 1, &sp));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "the dtype of param", clai_optim_sgd(ctx, p, m, h, 1, &sp));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "f32 or f16", clai_optim_sgd(ctx, i32, m, i32, 1, &sp));
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "not contiguous", clai_optim_sgd(ctx, p, m, strided, 1, &sp));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps param", clai_optim_sgd(ctx, p, p, g, 1, &sp));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "step 0", clai_optim_sgd(ctx, p, m, g, 0, &sp));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "params is NULL", clai_optim_sgd(ctx, p, m, g, 1, NULL));
  sp.lr = -0.1f;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "lr -0.1", clai_optim_sgd(ctx, p, m, g, 1, &sp));
  sp.lr = 0.1f;
  sp.nesterov = 1;
  sp.dampening = 0.5f;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "nesterov", clai_optim_sgd(ctx, p, m, g, 1, &sp));
  sp.dampening = 0;
  sp.momentum = 0;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "nesterov", clai_optim_sgd(ctx, p, m, g, 1, &sp));
  sp.weight_decay = -1;
  sp.nesterov = 0;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "weight_decay", clai_optim_sgd(ctx, p, m, g, 1, &sp));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "exp_avg ", clai_optim_adam(ctx, p, g8, v, g, 1, &ap));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "exp_avg_sq", clai_optim_adamw(ctx, p, m, g8, g, 1, &ap));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "grad", clai_optim_adam(ctx, p, m, v, g8, 1, &ap));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "must not overlap", clai_optim_adam(ctx, p, m, m, g, 1, &ap));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "is NULL", clai_optim_adam(ctx, p, NULL, v, g, 1, &ap));
  ap.beta1 = 1.0f;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "betas", clai_optim_adam(ctx, p, m, v, g, 1, &ap));
  ap.beta1 = 0.9f;
  ap.beta2 = -0.1f;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "betas", clai_optim_adamw(ctx, p, m, v, g, 1, &ap));
  ap.beta2 = 0.999f;
  ap.lr = -1;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "lr", clai_optim_adamw(ctx, p, m, v, g, 1, &ap));
  ap.lr = 1e-3f;
  ap.eps = NAN;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "eps", clai_optim_adam(ctx, p, m, v, g, 1, &ap));
  ap.eps = 1e-8f;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "step -3", clai_optim_adam(ctx, p, m, v, g, -3, &ap));
  clai_tensor *list[3] = {p, g, p};
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grads[2] overlaps grads[0]", clai_clip_grad_norm(ctx, list, 3, 1.0f, NULL));
  list[2] = i32;
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "grads[2]", clai_clip_grad_norm(ctx, list, 3, 1.0f, NULL));
  list[2] = strided;
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "grads[2]", clai_clip_grad_norm(ctx, list, 3, 1.0f, NULL));
  list[2] = NULL;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grads[2] is NULL", clai_clip_grad_norm(ctx, list, 3, 1.0f, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "max_norm", clai_clip_grad_norm(ctx, list, 2, -1.0f, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "norm_out", clai_clip_grad_norm(ctx, list, 2, 1.0f, two));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "gradients", clai_clip_grad_norm(ctx, NULL, 2, 1.0f, NULL));
  /* no context */
  clai_sgd_params okp = {0.1f, 0, 0, 0, 0};
  assert_int_equal(clai_optim_sgd(NULL, p, NULL, g, 1, &okp), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_optim_adam(NULL, p, m, v, g, 1, &ap), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_optim_adamw(NULL, p, m, v, g, 1, &ap), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_clip_grad_norm(NULL, list, 2, 1.0f, NULL), CLAI_E_INVALID_ARG);
  /* the context still works: one plain SGD step */
  double pv[7] = {1, 2, 3, 4, 5, 6, 7}, gv[7] = {1, 1, 1, 1, 1, 1, 1}, want[7];
  clait_put(ctx, p, pv);
  clait_put(ctx, g, gv);
  clai_sgd_params ok = {0.5f, 0, 0, 0, 0};
  CLAIT_OK(ctx, clai_optim_sgd(ctx, p, NULL, g, 1, &ok));
  for (int i = 0; i < 7; i++) want[i] = pv[i] - 0.5;
  expect("after errors", ctx, p, want, 0, 0);
  clai_tensor *all[] = {p, g, m, v, g8, h, i32, big, strided, two};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clai_tensor_free(all[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(sgd, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(adam, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(state_flush, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(clip, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(clip_long, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(bad_arguments, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("optim", tests, 1);
}
