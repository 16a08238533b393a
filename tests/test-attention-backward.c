/* test-attention-backward.c - clai_attention_backward against the gradients computed in double on the host
 * (and, on tiny shapes, against central finite differences of a double-precision forward): awkward lengths
 * (1, 7, 33, 100) and head dims (1, 3, 64, 80, 200), Lq != Lk both ways, causal masks with rows that see no
 * key, grouped-query heads, an explicit scale, f16 storage of inputs, saved tensors and gradients, strided
 * views, a chain with clai_attention's own out and lse, identical bits run after run, and bad inputs with
 * status, message and a usable context after. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

typedef struct att_case {
  int64_t B, H, Hk, Lq, Lk, D, Dv;
  int causal;
  float scale;
} att_case;

static double scale_of(const att_case *c) { return c->scale != 0.0f ? (double)c->scale : 1.0 / sqrt((double)c->D); }

static int64_t kend_of(const att_case *c, int64_t i) {
  int64_t e = c->causal ? i + (c->Lk - c->Lq) + 1 : c->Lk;
  return e < 0 ? 0 : e > c->Lk ? c->Lk : e;
}

/* Forward in double: out [B, H, Lq, Dv] and lse [B, H, Lq] (either may be NULL). */
static void ref_forward(const att_case *c, const double *q, const double *k, const double *v, double *out,
                        double *lse) {
  const int64_t G = c->H / c->Hk;
  const double sc = scale_of(c);
  double *s = malloc((size_t)(c->Lk + 1) * sizeof *s);
  for (int64_t b = 0; b < c->B; b++)
    for (int64_t h = 0; h < c->H; h++)
      for (int64_t i = 0; i < c->Lq; i++) {
        const int64_t hk = h / G, kend = kend_of(c, i), row = (b * c->H + h) * c->Lq + i;
        double m = -INFINITY, l = 0;
        for (int64_t j = 0; j < kend; j++) {
          double acc = 0;
          for (int64_t d = 0; d < c->D; d++) acc += q[row * c->D + d] * k[((b * c->Hk + hk) * c->Lk + j) * c->D + d];
          s[j] = acc * sc;
          m = s[j] > m ? s[j] : m;
        }
        for (int64_t j = 0; j < kend; j++) l += exp(s[j] - m);
        if (out != NULL)
          for (int64_t d = 0; d < c->Dv; d++) {
            double acc = 0;
            for (int64_t j = 0; j < kend; j++) acc += exp(s[j] - m) * v[((b * c->Hk + hk) * c->Lk + j) * c->Dv + d];
            out[row * c->Dv + d] = kend > 0 ? acc / l : 0.0;
          }
        if (lse != NULL) lse[row] = kend > 0 ? m + log(l) : -INFINITY;
      }
  free(s);
}

/* Gradients in double from the saved out and lse (as the device gets them). */
static void ref_backward(const att_case *c, const double *q, const double *k, const double *v, const double *out,
                         const double *lse, const double *dout, double *dq, double *dk, double *dv) {
  const int64_t G = c->H / c->Hk;
  const double sc = scale_of(c);
  memset(dq, 0, (size_t)(c->B * c->H * c->Lq * c->D) * sizeof *dq);
  memset(dk, 0, (size_t)(c->B * c->Hk * c->Lk * c->D) * sizeof *dk);
  memset(dv, 0, (size_t)(c->B * c->Hk * c->Lk * c->Dv) * sizeof *dv);
  for (int64_t b = 0; b < c->B; b++)
    for (int64_t h = 0; h < c->H; h++)
      for (int64_t i = 0; i < c->Lq; i++) {
        const int64_t hk = h / G, row = (b * c->H + h) * c->Lq + i;
        double Di = 0;
        for (int64_t d = 0; d < c->Dv; d++) Di += dout[row * c->Dv + d] * out[row * c->Dv + d];
        for (int64_t j = 0; j < kend_of(c, i); j++) {
          const int64_t kr = (b * c->Hk + hk) * c->Lk + j;
          double s = 0, dp = 0;
          for (int64_t d = 0; d < c->D; d++) s += q[row * c->D + d] * k[kr * c->D + d];
          for (int64_t d = 0; d < c->Dv; d++) dp += dout[row * c->Dv + d] * v[kr * c->Dv + d];
          const double p = exp(s * sc - lse[row]), ds = p * (dp - Di);
          for (int64_t d = 0; d < c->Dv; d++) dv[kr * c->Dv + d] += p * dout[row * c->Dv + d];
          for (int64_t d = 0; d < c->D; d++) {
            dq[row * c->D + d] += sc * ds * k[kr * c->D + d];
            dk[kr * c->D + d] += sc * ds * q[row * c->D + d];
          }
        }
      }
}

#define SENTINEL -77.0f

/* Values as the device holds them: rounded to half for f16. */
static void fill_dt(clait_rng *r, double *p, size_t n, double amp, clai_dtype dt) {
  for (size_t i = 0; i < n; i++) {
    float f = clait_uniform(r, (float)-amp, (float)amp);
    p[i] = dt == CLAI_DTYPE_F16 ? clait_f16_to_f32(clait_f32_to_f16(f)) : f;
  }
}

static void round_dt(double *p, size_t n, clai_dtype dt) {
  for (size_t i = 0; i < n; i++)
    p[i] = dt == CLAI_DTYPE_F16 ? clait_f16_to_f32(clait_f32_to_f16((float)p[i])) : (double)(float)p[i];
}

static void expect_untouched(clai_context *ctx, clai_tensor *base, int layout, const char *what) {
  if (layout != 2 && layout != 3) return;
  size_t n = (size_t)clai_tensor_numel(base), last = (size_t)clai_tensor_dim(base, clai_tensor_ndim(base) - 1);
  float *all = malloc(n * 4 + 4);
  clait_read_floats(ctx, base, all);
  for (size_t i = 0; i < n; i++) {
    int outside = layout == 2 ? (i % last) % 2 == 0 : (i < CLAIT_MARGIN || i >= n - CLAIT_MARGIN);
    if (outside && all[i] != SENTINEL)
      fail_msg("%s: element %zu outside the gradient was written (%g)", what, i, all[i]);
  }
  free(all);
}

/* Options of one run. */
typedef struct run_opts {
  clai_dtype in_dt, saved_dt, grad_dt; /* q/k/v; out and grad_out; the three gradients */
  int in_layout, grad_layout;
  int device_forward; /* out and lse from clai_attention (else from the double forward) */
} run_opts;

/* Runs one case; returns the three gradients (read back as float) in *g (caller frees) when g is not NULL. */
static void check(clai_context *ctx, clait_rng *r, const att_case *c, const run_opts *o, float **g) {
  const int64_t qs[4] = {c->B, c->H, c->Lq, c->D}, ks[4] = {c->B, c->Hk, c->Lk, c->D},
                vs[4] = {c->B, c->Hk, c->Lk, c->Dv}, os[4] = {c->B, c->H, c->Lq, c->Dv}, ls[3] = {c->B, c->H, c->Lq};
  const size_t nq = (size_t)(c->B * c->H * c->Lq * c->D), nk = (size_t)(c->B * c->Hk * c->Lk * c->D),
               nv = (size_t)(c->B * c->Hk * c->Lk * c->Dv), no = (size_t)(c->B * c->H * c->Lq * c->Dv),
               nl = (size_t)(c->B * c->H * c->Lq);
  double *q = malloc(nq * 8 + 8), *k = malloc(nk * 8 + 8), *v = malloc(nv * 8 + 8), *out = malloc(no * 8 + 8),
         *dout = malloc(no * 8 + 8), *lse = malloc(nl * 8 + 8), *wq = malloc(nq * 8 + 8), *wk = malloc(nk * 8 + 8),
         *wv = malloc(nv * 8 + 8);
  float *gq = malloc(nq * 4 + 4), *gk = malloc(nk * 4 + 4), *gv = malloc(nv * 4 + 4), *lf = malloc(nl * 4 + 4);
  const double amp = 2.0 / sqrt(sqrt((double)c->D));
  fill_dt(r, q, nq, amp, o->in_dt);
  fill_dt(r, k, nk, amp, o->in_dt);
  fill_dt(r, v, nv, 1.0, o->in_dt);
  fill_dt(r, dout, no, 1.0, o->saved_dt);
  clai_tensor *bq, *bk, *bv, *bgq, *bgk, *bgv, *tout = NULL, *tdo = NULL, *tl = NULL;
  clai_tensor *tq = clait_make_bhld(ctx, o->in_dt, qs, o->in_layout, &bq), *tk = clait_make_bhld(ctx, o->in_dt, ks, o->in_layout, &bk),
              *tv = clait_make_bhld(ctx, o->in_dt, vs, o->in_layout, &bv);
  clai_tensor *tgq = clait_make_bhld(ctx, o->grad_dt, qs, o->grad_layout, &bgq),
              *tgk = clait_make_bhld(ctx, o->grad_dt, ks, (o->grad_layout + 1) % 4, &bgk),
              *tgv = clait_make_bhld(ctx, o->grad_dt, vs, (o->grad_layout + 2) % 4, &bgv);
  /* out and grad_out in the inputs' layout (turned by one), lse a stepped view when the inputs are views */
  clai_tensor *bout, *bdo, *bl = NULL;
  tout = clait_make_bhld(ctx, o->saved_dt, os, o->in_layout, &bout);
  tdo = clait_make_bhld(ctx, o->saved_dt, os, (o->in_layout + 1) % 4 * (o->in_layout != 0), &bdo);
  if (o->in_layout == 0) {
    CLAIT_OK(ctx, clai_tensor_init(ctx, &tl, CLAI_DTYPE_F32, 3, ls));
  } else {
    const int64_t lb[3] = {c->B, c->H, 2 * c->Lq};
    CLAIT_OK(ctx, clai_tensor_init(ctx, &bl, CLAI_DTYPE_F32, 3, lb));
    CLAIT_OK(ctx, clai_tensor_slice(bl, &tl, 2, 1, 2 * c->Lq, 2));
  }
  clait_put(ctx, tq, q);
  clait_put(ctx, tk, k);
  clait_put(ctx, tv, v);
  clait_put(ctx, tdo, dout);
  clai_tensor *bases[3] = {bgq, bgk, bgv}, *grads[3] = {tgq, tgk, tgv};
  for (int i = 0; i < 3; i++) CLAIT_OK(ctx, clai_fill(ctx, bases[i] ? bases[i] : grads[i], SENTINEL));
  if (o->device_forward) {
    /* the saved tensors as the forward wrote them: the reference uses exactly those values */
    CLAIT_OK(ctx, clai_attention(ctx, tout, tl, tq, tk, tv, c->scale, c->causal));
    float *of = malloc(no * 4 + 4);
    clait_read_floats(ctx, tout, of);
    for (size_t i = 0; i < no; i++) out[i] = of[i];
    free(of);
    CLAIT_OK(ctx, clai_tensor_read(tl, lf, nl * 4 + 4));
    for (size_t i = 0; i < nl; i++) lse[i] = lf[i];
  } else {
    ref_forward(c, q, k, v, out, lse);
    round_dt(out, no, o->saved_dt);
    for (size_t i = 0; i < nl; i++) lf[i] = (float)lse[i], lse[i] = lf[i];
    clait_put(ctx, tout, out);
    CLAIT_OK(ctx, clai_tensor_write(tl, lf, nl * 4 + 0));
  }
  CLAIT_OK(ctx, clai_attention_backward(ctx, tgq, tgk, tgv, tdo, tq, tk, tv, tout, tl, c->scale, c->causal));
  clait_read_floats(ctx, tgq, gq);
  clait_read_floats(ctx, tgk, gk);
  clait_read_floats(ctx, tgv, gv);
  ref_backward(c, q, k, v, out, lse, dout, wq, wk, wv);
  char what[240];
  snprintf(what, sizeof what,
           "B%lld H%lld Hk%lld Lq%lld Lk%lld D%lld Dv%lld causal %d scale %g, %s in (layout %d), %s saved, %s grads "
           "(layout %d)%s",
           (long long)c->B, (long long)c->H, (long long)c->Hk, (long long)c->Lq, (long long)c->Lk, (long long)c->D,
           (long long)c->Dv, c->causal, (double)c->scale, clai_dtype_name(o->in_dt), o->in_layout,
           clai_dtype_name(o->saved_dt), clai_dtype_name(o->grad_dt), o->grad_layout,
           o->device_forward ? ", device forward" : "");
  /* f32: sums of up to a few hundred O(1) terms; f16 gradients add half an ulp of half. */
  const double atol = o->grad_dt == CLAI_DTYPE_F16 ? 2e-3 : 2e-5, rtol = o->grad_dt == CLAI_DTYPE_F16 ? 2e-3 : 2e-4;
  char w2[280];
  snprintf(w2, sizeof w2, "grad_q %s", what);
  clait_expect_close(w2, gq, wq, nq, atol, rtol);
  snprintf(w2, sizeof w2, "grad_k %s", what);
  clait_expect_close(w2, gk, wk, nk, atol, rtol);
  snprintf(w2, sizeof w2, "grad_v %s", what);
  clait_expect_close(w2, gv, wv, nv, atol, rtol);
  expect_untouched(ctx, bgq, o->grad_layout, "grad_q");
  expect_untouched(ctx, bgk, (o->grad_layout + 1) % 4, "grad_k");
  expect_untouched(ctx, bgv, (o->grad_layout + 2) % 4, "grad_v");
  if (g != NULL) {
    g[0] = gq, g[1] = gk, g[2] = gv;
    gq = gk = gv = NULL;
  }
  clai_tensor *list[] = {tq, tk, tv, bq, bk, bv, tgq, tgk, tgv, bgq, bgk, bgv, tout, tdo, tl, bout, bdo, bl};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  double *dl[] = {q, k, v, out, dout, lse, wq, wk, wv};
  for (size_t i = 0; i < sizeof dl / sizeof dl[0]; i++) free(dl[i]);
  free(gq);
  free(gk);
  free(gv);
  free(lf);
}

static const att_case cases[] = {
    /* B  H  Hk  Lq   Lk    D    Dv  causal scale */
    {1, 1, 1, 1, 1, 1, 1, 0, 0},
    {1, 1, 1, 1, 1, 1, 1, 1, 0},
    {2, 3, 3, 7, 7, 3, 3, 1, 0},
    {1, 2, 2, 33, 100, 64, 64, 0, 0},
    {1, 2, 2, 33, 100, 64, 64, 1, 0},  /* causal, Lq < Lk: the queries are the last 33 positions */
    {1, 2, 1, 100, 33, 80, 80, 1, 0},  /* causal, Lq > Lk: the first 67 rows see no key; grouped heads */
    {2, 2, 2, 7, 33, 80, 64, 0, 0.3f}, /* D != Dv, explicit scale */
    {1, 4, 2, 1, 100, 64, 64, 1, 0},   /* one decoding step over a cache of 100; grouped heads */
    {1, 1, 1, 65, 130, 16, 8, 1, 0},   /* crosses the 16-row blocks and the work-group sizes */
    {1, 6, 2, 33, 33, 3, 7, 1, 0},     /* three query heads per key/value head */
    {1, 1, 1, 7, 300, 200, 3, 0, 0},   /* the wide variant */
    {1, 4, 2, 3, 1500, 64, 64, 1, 0},  /* long keys, few queries (past llvmpipe's loop budget for the fused
                                          forward; see test-attention) */
    {1, 2, 1, 1500, 3, 64, 64, 0, 0},  /* long queries, few keys */
};
#define NCASES (sizeof cases / sizeof cases[0])

/* cases[i]; in small mode (CLAI_TEST_SIZE=small) a sequence of 100 is 40 and one of 300 is 60 (the 65 x 130
 * case still crosses the row blocks and the work-group sizes), and one of 1500 is 300. */
static const att_case *sized(size_t i) {
  static att_case c;
  c = cases[i];
  if (c.Lq == 100) c.Lq = CLAIT_SIZE(100, 40);
  if (c.Lk == 100) c.Lk = CLAIT_SIZE(100, 40);
  if (c.Lk == 300) c.Lk = CLAIT_SIZE(300, 60);
  if (c.Lk == 1500) c.Lk = CLAIT_SIZE(1500, 300); /* still past clai__attention_in_parts' line on llvmpipe */
  if (c.Lq == 1500) c.Lq = CLAIT_SIZE(1500, 300);
  return &c;
}

static void test_backward_f32(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x243f6a8885a308d3ULL};
  const run_opts o = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 0};
  for (size_t i = 0; i < NCASES; i++) check(ctx, &r, sized(i), &o, NULL);
}

static void test_backward_f16(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x13198a2e03707344ULL};
  for (size_t i = 0; i < NCASES; i++) {
    const run_opts a = {CLAI_DTYPE_F16, CLAI_DTYPE_F16, CLAI_DTYPE_F32, (int)(i % 3), 0, 0};
    const run_opts b = {CLAI_DTYPE_F16, CLAI_DTYPE_F32, CLAI_DTYPE_F16, 0, (int)(i % 4), 0};
    /* small mode: the two dtype mixes on alternate cases, by turns ((i + i / 4) % 2): each still meets both
     * kernel widths (D up to 64 and past it), causal and not, grouped heads, and each of its layouts */
    const int turn = (int)((i + i / 4) % 2);
    if (!clait_small() || turn == 0) check(ctx, &r, sized(i), &a, NULL);
    if (!clait_small() || turn == 1) check(ctx, &r, sized(i), &b, NULL);
  }
}

static void test_backward_views(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xa4093822299f31d0ULL};
  for (size_t i = 0; i < NCASES; i++)
    for (int layout = 1; layout <= 3; layout++) {
      if (clait_small() && (i + (size_t)layout) % 3 != 0) continue; /* small: the layouts by turns */
      const run_opts o = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, CLAI_DTYPE_F32, layout, layout, 0};
      check(ctx, &r, sized(i), &o, NULL);
    }
}

/* out and lse from clai_attention itself, as in training. */
static void test_backward_chain(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x082efa98ec4e6c89ULL};
  for (size_t i = 0; i < NCASES; i++) {
    const run_opts o = {i % 2 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 1};
    check(ctx, &r, sized(i), &o, NULL);
  }
}

/* Central differences of L = sum(w * attention(q, k, v)) computed in double, against the device gradient
 * (grad_out = w), on tiny shapes: the gradient formulas themselves are right, not only their coding. */
static void finite_diff(clai_context *ctx, const att_case *c) {
  clait_rng r = {99};
  const int64_t qs[4] = {c->B, c->H, c->Lq, c->D}, ks[4] = {c->B, c->Hk, c->Lk, c->D},
                vs[4] = {c->B, c->Hk, c->Lk, c->Dv}, os[4] = {c->B, c->H, c->Lq, c->Dv}, ls[3] = {c->B, c->H, c->Lq};
  const size_t n[3] = {(size_t)(c->B * c->H * c->Lq * c->D), (size_t)(c->B * c->Hk * c->Lk * c->D),
                       (size_t)(c->B * c->Hk * c->Lk * c->Dv)};
  const size_t no = (size_t)(c->B * c->H * c->Lq * c->Dv);
  double *x[3], *w = malloc(no * 8), *o1 = malloc(no * 8);
  for (int t = 0; t < 3; t++) {
    x[t] = malloc(n[t] * 8);
    fill_dt(&r, x[t], n[t], 1.0, CLAI_DTYPE_F32);
  }
  fill_dt(&r, w, no, 1.0, CLAI_DTYPE_F32);
  clai_tensor *tq = NULL, *tk = NULL, *tv = NULL, *to = NULL, *tl = NULL, *tw = NULL, *g[3] = {NULL, NULL, NULL};
  const int64_t *shp[3] = {qs, ks, vs};
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tq, CLAI_DTYPE_F32, 4, qs));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tk, CLAI_DTYPE_F32, 4, ks));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tv, CLAI_DTYPE_F32, 4, vs));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &to, CLAI_DTYPE_F32, 4, os));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tw, CLAI_DTYPE_F32, 4, os));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tl, CLAI_DTYPE_F32, 3, ls));
  for (int t = 0; t < 3; t++) CLAIT_OK(ctx, clai_tensor_init(ctx, &g[t], CLAI_DTYPE_F32, 4, shp[t]));
  clait_put(ctx, tq, x[0]);
  clait_put(ctx, tk, x[1]);
  clait_put(ctx, tv, x[2]);
  clait_put(ctx, tw, w);
  CLAIT_OK(ctx, clai_attention(ctx, to, tl, tq, tk, tv, c->scale, c->causal));
  CLAIT_OK(ctx, clai_attention_backward(ctx, g[0], g[1], g[2], tw, tq, tk, tv, to, tl, c->scale, c->causal));
  static const char *const names[3] = {"q", "k", "v"};
  for (int t = 0; t < 3; t++) {
    float *got = malloc(n[t] * 4 + 4);
    CLAIT_OK(ctx, clai_tensor_read(g[t], got, n[t] * 4));
    for (size_t e = 0; e < n[t]; e++) {
      const double keep = x[t][e], h = 1e-5;
      double lp = 0, lm = 0;
      x[t][e] = keep + h;
      ref_forward(c, x[0], x[1], x[2], o1, NULL);
      for (size_t i = 0; i < no; i++) lp += w[i] * o1[i];
      x[t][e] = keep - h;
      ref_forward(c, x[0], x[1], x[2], o1, NULL);
      for (size_t i = 0; i < no; i++) lm += w[i] * o1[i];
      x[t][e] = keep;
      const double fd = (lp - lm) / (2 * h);
      if (!(fabs(got[e] - fd) <= 1e-4 + 1e-3 * fabs(fd)))
        fail_msg("finite differences, causal %d Lq %lld Lk %lld: d/d%s[%zu] is %.9g, the difference quotient %.9g",
                 c->causal, (long long)c->Lq, (long long)c->Lk, names[t], e, got[e], fd);
    }
    free(got);
  }
  clai_tensor *list[] = {tq, tk, tv, to, tl, tw, g[0], g[1], g[2]};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  for (int t = 0; t < 3; t++) free(x[t]);
  free(w);
  free(o1);
}

static void test_backward_finite_differences(void **state) {
  clai_context *ctx = CTX(state);
  const att_case fd[] = {
      {1, 2, 1, 3, 4, 3, 2, 0, 0},   /* grouped heads */
      {1, 2, 2, 3, 4, 3, 2, 1, 0},   /* causal, Lq < Lk */
      {2, 1, 1, 5, 3, 2, 3, 1, 0.7f}, /* causal, Lq > Lk: rows that see no key have zero gradients */
      {1, 1, 1, 1, 1, 1, 1, 0, 0},   /* one key: softmax is constant, grad_q and grad_k are zero */
  };
  for (size_t i = 0; i < sizeof fd / sizeof fd[0]; i++) finite_diff(ctx, &fd[i]);
}

/* No keys, no queries, no batch: zero gradients where there is anything to write. */
static void test_backward_empty(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {7};
  const att_case c[] = {{1, 2, 2, 5, 0, 8, 8, 0, 0}, {1, 2, 2, 0, 5, 8, 8, 1, 0}, {0, 2, 2, 5, 3, 8, 8, 0, 0}};
  const run_opts o = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 0};
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) check(ctx, &r, &c[i], &o, NULL);
}

/* The same call twice gives the same bits (no atomics, fixed summation order), grouped heads included. */
static void test_backward_deterministic(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t L = CLAIT_SIZE(100, 40);
  const att_case c = {1, 4, 2, L, L, 64, 64, 1, 0};
  const run_opts o = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 1};
  float *g1[3], *g2[3];
  clait_rng r1 = {11}, r2 = {11};
  check(ctx, &r1, &c, &o, g1);
  check(ctx, &r2, &c, &o, g2);
  assert_memory_equal(g1[0], g2[0], 4 * L * 64 * 4);
  assert_memory_equal(g1[1], g2[1], 2 * L * 64 * 4);
  assert_memory_equal(g1[2], g2[2], 2 * L * 64 * 4);
  for (int i = 0; i < 3; i++) {
    free(g1[i]);
    free(g2[i]);
  }
}

static clai_tensor *mk(clai_context *ctx, clai_dtype dt, int nd, int64_t a, int64_t b, int64_t c, int64_t d) {
  const int64_t s[4] = {a, b, c, d};
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, nd, s));
  return t;
}

static void test_backward_errors(void **state) {
  clai_context *ctx = CTX(state);
  const clai_dtype F = CLAI_DTYPE_F32, Hf = CLAI_DTYPE_F16, I = CLAI_DTYPE_I32;
  clai_tensor *q = mk(ctx, F, 4, 1, 3, 5, 8), *k = mk(ctx, F, 4, 1, 3, 6, 8), *v = mk(ctx, F, 4, 1, 3, 6, 4);
  clai_tensor *o = mk(ctx, F, 4, 1, 3, 5, 4), *dout = mk(ctx, F, 4, 1, 3, 5, 4), *lse = mk(ctx, F, 3, 1, 3, 5, 0);
  clai_tensor *gq = mk(ctx, F, 4, 1, 3, 5, 8), *gk = mk(ctx, F, 4, 1, 3, 6, 8), *gv = mk(ctx, F, 4, 1, 3, 6, 4);
  clai_tensor *k2 = mk(ctx, F, 4, 1, 2, 6, 8), *v2 = mk(ctx, F, 4, 1, 2, 6, 4), *kh = mk(ctx, Hf, 4, 1, 3, 6, 8);
  clai_tensor *gqi = mk(ctx, I, 4, 1, 3, 5, 8), *lh = mk(ctx, Hf, 3, 1, 3, 5, 0), *lbad = mk(ctx, F, 3, 1, 3, 6, 0);
  clai_tensor *gkbad = mk(ctx, F, 4, 1, 3, 6, 7), *dobad = mk(ctx, F, 4, 1, 3, 5, 5), *q3 = mk(ctx, F, 3, 3, 5, 8, 0);
  clai_tensor *qb = mk(ctx, F, 4, 1, 1, 2, 300), *kb = mk(ctx, F, 4, 1, 1, 2, 300), *vb = mk(ctx, F, 4, 1, 1, 2, 4);
  clai_tensor *ob = mk(ctx, F, 4, 1, 1, 2, 4), *lb = mk(ctx, F, 3, 1, 1, 2, 0);
  clai_tensor *gqb = mk(ctx, F, 4, 1, 1, 2, 300), *gkb = mk(ctx, F, 4, 1, 1, 2, 300), *gvb = mk(ctx, F, 4, 1, 1, 2, 4);
  clai_tensor *vlen = mk(ctx, F, 4, 1, 3, 7, 4), *gqv = NULL;
  const int64_t vs[4] = {1, 3, 5, 8}, vst[4] = {0, 40, 8, 1};
  CLAIT_OK(ctx, clai_tensor_view(k, &gqv, 4, vs, vst, 0)); /* grad_q placed inside k's buffer */
#define BWD(gq_, gk_, gv_, do_, q_, k_, v_, o_, l_, sc, cz) \
  clai_attention_backward(ctx, gq_, gk_, gv_, do_, q_, k_, v_, o_, l_, sc, cz)
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "not a multiple of 2", BWD(gq, k2, v2, dout, q, k2, v2, o, lse, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "shapes do not fit", BWD(gq, gk, gv, dout, q, k, vlen, o, lse, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "4-d", BWD(gq, gk, gv, dout, q3, k, v, o, lse, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "grad_k [1, 3, 6, 7]", BWD(gq, gkbad, gv, dout, q, k, v, o, lse, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "grad_out [1, 3, 5, 5]", BWD(gq, gk, gv, dobad, q, k, v, o, lse, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "lse [1, 3, 6]", BWD(gq, gk, gv, dout, q, k, v, o, lbad, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "share one dtype", BWD(gq, gk, gv, dout, q, kh, v, o, lse, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "grad_q is i32", BWD(gqi, gk, gv, dout, q, k, v, o, lse, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "lse is f16", BWD(gq, gk, gv, dout, q, k, v, o, lh, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "D = 300", BWD(gqb, gkb, gvb, ob, qb, kb, vb, ob, lb, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "causal is 2", BWD(gq, gk, gv, dout, q, k, v, o, lse, 0, 2));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not finite", BWD(gq, gk, gv, dout, q, k, v, o, lse, INFINITY, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grad_q overlaps k", BWD(gqv, gk, gv, dout, q, k, v, o, lse, 0, 0));
  clai_tensor *gvv = NULL;
  const int64_t gvs[4] = {1, 3, 6, 4}, gvst[4] = {0, 24, 4, 1};
  CLAIT_OK(ctx, clai_tensor_view(gk, &gvv, 4, gvs, gvst, 0)); /* grad_v placed inside grad_k's buffer */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "grad_k overlaps grad_v", BWD(gq, gk, gvv, dout, q, k, v, o, lse, 0, 0));
  clai_tensor_free(gvv);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "lse is NULL", BWD(gq, gk, gv, dout, q, k, v, o, NULL, 0, 0));
  CLAIT_OK(ctx, BWD(gq, gk, gv, dout, q, k, v, o, lse, 0, 0)); /* the same tensors, right this time */
  assert_int_equal(clai_attention_backward(NULL, gq, gk, gv, dout, q, k, v, o, lse, 0, 0), CLAI_E_INVALID_ARG);
#undef BWD
  clai_tensor *list[] = {q, k, v, o, dout, lse, gq, gk, gv, k2, v2, kh, gqi, lh, lbad, gkbad, dobad, q3,
                         qb, kb, vb, ob, lb, gqb, gkb, gvb, vlen, gqv};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  clait_rng r = {5};
  const run_opts ok = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 1};
  check(ctx, &r, &cases[4], &ok, NULL); /* usable */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_backward_f32, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_backward_f16, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_backward_views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_backward_chain, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_backward_finite_differences, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_backward_empty, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_backward_deterministic, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_backward_errors, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("attention-backward", tests, 1);
}
