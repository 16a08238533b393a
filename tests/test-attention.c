/* test-attention.c - clai_attention against a double-precision reference: awkward lengths (1, 7, 33, 100, a
 * row of 1000 keys) and head dims (1, 3, 16, 64, 80, 128, 200, 256), Lq != Lk both ways, causal masks
 * (including rows that see no key), grouped-query heads, a custom scale, the logsumexp output, f16
 * storage of inputs and output, strided views ([B, L, H, D] permuted, a stepped last dim) for inputs and
 * output, run-to-run identical results, and bad inputs with status, message and a usable context after. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

typedef struct att_case {
  int64_t B, H, Hk, Lq, Lk, D, Dv;
  int causal;
  float scale;
} att_case;

/* Reference: out [B, H, Lq, Dv] and lse [B, H, Lq] from dense logical q, k, v. */
static void ref_attention(const att_case *c, const float *q, const float *k, const float *v, double *out,
                          double *lse) {
  const int64_t G = c->H / c->Hk;
  double sc = c->scale != 0.0f ? (double)c->scale : 1.0 / sqrt((double)c->D);
  double *s = malloc((size_t)(c->Lk > 0 ? c->Lk : 1) * sizeof *s);
  assert_non_null(s);
  for (int64_t b = 0; b < c->B; b++)
    for (int64_t h = 0; h < c->H; h++)
      for (int64_t i = 0; i < c->Lq; i++) {
        const int64_t hk = h / G;
        const float *qr = q + ((b * c->H + h) * c->Lq + i) * c->D;
        int64_t kend = c->causal ? i + (c->Lk - c->Lq) + 1 : c->Lk;
        if (kend > c->Lk) kend = c->Lk;
        if (kend < 0) kend = 0;
        double m = -INFINITY;
        for (int64_t j = 0; j < kend; j++) {
          const float *kr = k + ((b * c->Hk + hk) * c->Lk + j) * c->D;
          double acc = 0;
          for (int64_t d = 0; d < c->D; d++) acc += (double)qr[d] * kr[d];
          s[j] = acc * sc;
          if (s[j] > m) m = s[j];
        }
        double l = 0;
        for (int64_t j = 0; j < kend; j++) l += exp(s[j] - m);
        double *o = out + ((b * c->H + h) * c->Lq + i) * c->Dv;
        for (int64_t d = 0; d < c->Dv; d++) {
          double acc = 0;
          for (int64_t j = 0; j < kend; j++) acc += exp(s[j] - m) * v[((b * c->Hk + hk) * c->Lk + j) * c->Dv + d];
          o[d] = kend > 0 ? acc / l : 0.0;
        }
        lse[(b * c->H + h) * c->Lq + i] = kend > 0 ? m + log(l) : -INFINITY;
      }
  free(s);
}

#define SENTINEL -77.0f

/* For an output of layout 2 or 3: checks that the elements of its base outside the view still hold the
 * sentinel the base was filled with (nothing is written outside the output). */
static void expect_untouched(clai_context *ctx, clai_tensor *base, int layout, const char *what) {
  if (layout != 2 && layout != 3) return;
  size_t n = (size_t)clai_tensor_numel(base), last = (size_t)clai_tensor_dim(base, clai_tensor_ndim(base) - 1);
  float *all = malloc(n * 4 + 4);
  assert_non_null(all);
  clait_read_floats(ctx, base, all);
  for (size_t i = 0; i < n; i++) {
    int outside = layout == 2 ? (i % last) % 2 == 0 : (i < CLAIT_MARGIN || i >= n - CLAIT_MARGIN);
    if (outside && all[i] != SENTINEL) fail_msg("%s: element %zu of the output's base was written (%g)", what, i, all[i]);
  }
  free(all);
}

/* Writes the dense logical values v (float; rounded to half for f16) into t through any view. */
/* Runs one case and compares out (and lse) with the reference. in_layout applies to q, k and v. */
static void check(clai_context *ctx, clait_rng *r, const att_case *c, clai_dtype in_dt, clai_dtype out_dt, int in_layout,
                  int out_layout, int with_lse) {
  const int64_t qs[4] = {c->B, c->H, c->Lq, c->D}, ks[4] = {c->B, c->Hk, c->Lk, c->D}, vs[4] = {c->B, c->Hk, c->Lk, c->Dv},
                os[4] = {c->B, c->H, c->Lq, c->Dv}, ls[3] = {c->B, c->H, c->Lq};
  size_t nq = (size_t)(c->B * c->H * c->Lq * c->D), nk = (size_t)(c->B * c->Hk * c->Lk * c->D),
         nv = (size_t)(c->B * c->Hk * c->Lk * c->Dv), no = (size_t)(c->B * c->H * c->Lq * c->Dv),
         nl = (size_t)(c->B * c->H * c->Lq);
  float *q = malloc(nq * 4 + 4), *k = malloc(nk * 4 + 4), *v = malloc(nv * 4 + 4), *got = malloc(no * 4 + 4),
        *lgot = malloc(nl * 4 + 4);
  double *want = malloc(no * 8 + 8), *lwant = malloc(nl * 8 + 8);
  assert_true(q && k && v && got && lgot && want && lwant);
  /* scores of a few units: q, k in [-1, 1] scaled by D^-1/4 each, so softmax rows are neither flat nor one-hot */
  float amp = 2.0f / sqrtf(sqrtf((float)c->D));
  clait_fill(r, q, nq, -amp, amp);
  clait_fill(r, k, nk, -amp, amp);
  clait_fill(r, v, nv, -1.0f, 1.0f);
  if (in_dt == CLAI_DTYPE_F16) {
    clait_round_f16(q, nq);
    clait_round_f16(k, nk);
    clait_round_f16(v, nv);
  }
  clai_tensor *bq, *bk, *bv, *bo, *tl = NULL;
  clai_tensor *tq = clait_make_bhld(ctx, in_dt, qs, in_layout, &bq), *tk = clait_make_bhld(ctx, in_dt, ks, in_layout, &bk),
              *tv = clait_make_bhld(ctx, in_dt, vs, in_layout, &bv), *to = clait_make_bhld(ctx, out_dt, os, out_layout, &bo);
  clait_put_floats(ctx, tq, q);
  clait_put_floats(ctx, tk, k);
  clait_put_floats(ctx, tv, v);
  if (bo != NULL) CLAIT_OK(ctx, clai_fill(ctx, bo, SENTINEL));
  if (with_lse) CLAIT_OK(ctx, clai_tensor_init(ctx, &tl, CLAI_DTYPE_F32, 3, ls));
  CLAIT_OK(ctx, clai_attention(ctx, to, tl, tq, tk, tv, c->scale, c->causal));
  clait_read_floats(ctx, to, got);
  ref_attention(c, q, k, v, want, lwant);
  char what[200];
  snprintf(what, sizeof what,
           "attention B%lld H%lld Hk%lld Lq%lld Lk%lld D%lld Dv%lld causal %d, %s in (layout %d), %s out (layout %d)",
           (long long)c->B, (long long)c->H, (long long)c->Hk, (long long)c->Lq, (long long)c->Lk, (long long)c->D,
           (long long)c->Dv, c->causal, clai_dtype_name(in_dt), in_layout, clai_dtype_name(out_dt), out_layout);
  /* f32 arithmetic on O(1) values: a few ulps of the row length; an f16 output adds half an ulp of half. */
  double atol = out_dt == CLAI_DTYPE_F16 ? 1e-3 : 2e-6, rtol = out_dt == CLAI_DTYPE_F16 ? 1e-3 : 1e-4;
  clait_expect_close(what, got, want, no, atol, rtol);
  expect_untouched(ctx, bo, out_layout, what);
  if (with_lse) {
    CLAIT_OK(ctx, clai_tensor_read(tl, lgot, nl * 4));
    for (size_t i = 0; i < nl; i++) {
      if (isinf(lwant[i])) {
        if (!(isinf(lgot[i]) && lgot[i] < 0)) fail_msg("%s: lse[%zu] is %g, expected -inf", what, i, lgot[i]);
        continue;
      }
      if (!(fabs(lgot[i] - lwant[i]) <= 1e-5 + 1e-5 * fabs(lwant[i])))
        fail_msg("%s: lse[%zu] is %.9g, expected %.9g", what, i, lgot[i], lwant[i]);
    }
  }
  clai_tensor *list[] = {tq, tk, tv, to, bq, bk, bv, bo, tl};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  free(q);
  free(k);
  free(v);
  free(got);
  free(lgot);
  free(want);
  free(lwant);
}

static const att_case cases[] = {
    /* B  H  Hk  Lq   Lk    D    Dv  causal scale */
    {1, 1, 1, 1, 1, 1, 1, 0, 0},
    {1, 1, 1, 1, 1, 1, 1, 1, 0},
    {2, 3, 3, 7, 7, 3, 3, 1, 0},
    {1, 2, 2, 33, 100, 64, 64, 0, 0},
    {1, 2, 2, 33, 100, 64, 64, 1, 0},    /* causal, Lq < Lk: the queries are the last 33 positions */
    {1, 2, 1, 100, 33, 80, 80, 1, 0},    /* causal, Lq > Lk: the first 67 rows see no key; grouped heads */
    {2, 2, 2, 7, 33, 128, 64, 0, 0.3f},  /* D != Dv, explicit scale */
    {1, 1, 1, 100, 100, 128, 128, 1, 0},
    {1, 2, 2, 33, 7, 256, 256, 0, 0},
    {1, 4, 2, 1, 100, 64, 64, 1, 0},     /* one decoding step over a cache of 100 */
    {1, 6, 2, 4, 50, 64, 64, 1, 0},      /* the most queries a group of one work-item takes on CPUs */
    {2, 3, 1, 5, 37, 32, 32, 1, 0},      /* one more: a full group again */
    {1, 1, 1, 65, 130, 16, 8, 1, 0},     /* crosses the key block and the work-group size */
    {1, 1, 1, 7, 1000, 1, 1, 0, 0},      /* a long row */
    {1, 4, 2, 3, 1500, 64, 64, 1, 0},    /* past llvmpipe's loop budget for the fused kernel (wrong there from
                                            Lk ~ 1000 at D 64), so there attention runs in its three parts */
    {1, 1, 1, 33, 100, 200, 3, 1, 0},
    {1, 3, 3, 100, 1, 32, 32, 0, 0},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* cases[i]; in small mode (CLAI_TEST_SIZE=small) a sequence of 100 is 40 (the 65 x 130 case still crosses the
 * key block and the work-group size) and one of 1500 is 300. */
static const att_case *sized(size_t i) {
  static att_case c;
  c = cases[i];
  if (c.Lq == 100) c.Lq = CLAIT_SIZE(100, 40);
  if (c.Lk == 100) c.Lk = CLAIT_SIZE(100, 40);
  if (c.Lk == 1500) c.Lk = CLAIT_SIZE(1500, 300); /* still past clai__attention_in_parts' line on llvmpipe */
  return &c;
}

static void test_attention_f32(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x243f6a8885a308d3ULL};
  for (size_t i = 0; i < NCASES; i++) check(ctx, &r, sized(i), CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 3, 1);
}

static void test_attention_f16(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x13198a2e03707344ULL};
  for (size_t i = 0; i < NCASES; i++) {
    /* small mode: the two outputs on alternate cases, by turns ((i + i / 4) % 2): each still meets both kernel
     * widths (D up to 64 and past it), causal and not, and each value of lse (f32) or of the layouts (f16) */
    const int turn = (int)((i + i / 4) % 2);
    if (!clait_small() || turn == 0) check(ctx, &r, sized(i), CLAI_DTYPE_F16, CLAI_DTYPE_F32, 0, 0, i % 2);
    if (!clait_small() || turn == 1) check(ctx, &r, sized(i), CLAI_DTYPE_F16, CLAI_DTYPE_F16, i % 4, 3 - i % 4, 0);
  }
  check(ctx, &r, sized(3), CLAI_DTYPE_F32, CLAI_DTYPE_F16, 0, 1, 1);
}

static void test_attention_views(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xa4093822299f31d0ULL};
  for (size_t i = 0; i < NCASES; i++)
    for (int in_layout = 1; in_layout <= 2; in_layout++)
      if (!clait_small() || (i + (size_t)in_layout) % 2 == 0) /* small: the layouts by turns */
        check(ctx, &r, sized(i), CLAI_DTYPE_F32, CLAI_DTYPE_F32, in_layout, 3 - in_layout, 1);
}

/* No keys at all: zero rows and lse = -inf. */
static void test_attention_empty(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {7};
  const att_case c0 = {1, 2, 2, 5, 0, 8, 8, 0, 0}, c1 = {1, 2, 2, 5, 0, 8, 8, 1, 0}, c2 = {0, 2, 2, 5, 3, 8, 8, 0, 0};
  check(ctx, &r, &c0, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 1);
  check(ctx, &r, &c1, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 1);
  check(ctx, &r, &c2, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 1);
}

/* The same call twice gives the same bits (no atomics, fixed reduction order). */
static void test_attention_deterministic(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {11};
  const int64_t s[4] = {1, 4, CLAIT_SIZE(100, 40), 64};
  size_t n = (size_t)(4 * s[2] * 64);
  float *x = malloc(n * 4), *a = malloc(n * 4), *b = malloc(n * 4);
  clai_tensor *q = NULL, *o = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &q, CLAI_DTYPE_F32, 4, s));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &o, CLAI_DTYPE_F32, 4, s));
  clait_fill(&r, x, n, -1, 1);
  CLAIT_OK(ctx, clai_tensor_write(q, x, n * 4));
  CLAIT_OK(ctx, clai_attention(ctx, o, NULL, q, q, q, 0, 1));
  CLAIT_OK(ctx, clai_tensor_read(o, a, n * 4));
  CLAIT_OK(ctx, clai_attention(ctx, o, NULL, q, q, q, 0, 1));
  CLAIT_OK(ctx, clai_tensor_read(o, b, n * 4));
  assert_memory_equal(a, b, n * 4);
  clai_tensor_free(q);
  clai_tensor_free(o);
  free(x);
  free(a);
  free(b);
}

static clai_tensor *mk(clai_context *ctx, clai_dtype dt, int nd, int64_t a, int64_t b, int64_t c, int64_t d) {
  const int64_t s[4] = {a, b, c, d};
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, nd, s));
  return t;
}

static void test_attention_errors(void **state) {
  clai_context *ctx = CTX(state);
  const clai_dtype F = CLAI_DTYPE_F32, H = CLAI_DTYPE_F16, I = CLAI_DTYPE_I32;
  clai_tensor *q = mk(ctx, F, 4, 1, 3, 5, 8), *k = mk(ctx, F, 4, 1, 3, 6, 8), *v = mk(ctx, F, 4, 1, 3, 6, 4);
  clai_tensor *o = mk(ctx, F, 4, 1, 3, 5, 4), *lse = mk(ctx, F, 3, 1, 3, 5, 0);
  clai_tensor *k2 = mk(ctx, F, 4, 1, 2, 6, 8), *v2 = mk(ctx, F, 4, 1, 2, 6, 4);
  clai_tensor *kd = mk(ctx, F, 4, 1, 3, 6, 7), *kh = mk(ctx, H, 4, 1, 3, 6, 8), *qi = mk(ctx, I, 4, 1, 3, 5, 8);
  clai_tensor *oi = mk(ctx, I, 4, 1, 3, 5, 4), *lh = mk(ctx, H, 3, 1, 3, 5, 0), *lbad = mk(ctx, F, 3, 1, 3, 6, 0);
  clai_tensor *q3 = mk(ctx, F, 3, 3, 5, 8, 0), *vlen = mk(ctx, F, 4, 1, 3, 7, 4);
  clai_tensor *qbig = mk(ctx, F, 4, 1, 1, 2, 300), *kbig = mk(ctx, F, 4, 1, 1, 2, 300), *obig = mk(ctx, F, 4, 1, 1, 2, 4);
  clai_tensor *vbig = mk(ctx, F, 4, 1, 1, 2, 4);
  clai_tensor *ov = NULL;
  const int64_t ovs[4] = {1, 3, 5, 4}, ovst[4] = {0, 40, 8, 1};
  CLAIT_OK(ctx, clai_tensor_view(q, &ov, 4, ovs, ovst, 0)); /* out placed inside q's buffer */
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "not a multiple of 2 key/value heads", clai_attention(ctx, o, NULL, q, k2, v2, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "shapes do not fit", clai_attention(ctx, o, NULL, q, kd, v, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "shapes do not fit", clai_attention(ctx, o, NULL, q, k, vlen, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "shapes do not fit", clai_attention(ctx, o, NULL, q, k, k, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "4-d", clai_attention(ctx, o, NULL, q3, k, v, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "share one dtype", clai_attention(ctx, o, NULL, q, kh, v, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "share one dtype", clai_attention(ctx, o, NULL, qi, k, v, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "out is i32", clai_attention(ctx, oi, NULL, q, k, v, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "lse is f16", clai_attention(ctx, o, lh, q, k, v, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "lse [1, 3, 6]", clai_attention(ctx, o, lbad, q, k, v, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "D = 300", clai_attention(ctx, obig, NULL, qbig, kbig, vbig, 0, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "causal is 2", clai_attention(ctx, o, NULL, q, k, v, 0, 2));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not finite", clai_attention(ctx, o, NULL, q, k, v, NAN, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_attention(ctx, ov, NULL, q, k, v, 0, 0));
  clai_tensor *lov = NULL;
  const int64_t lvs[3] = {1, 3, 5}, lvst[3] = {15, 5, 1};
  CLAIT_OK(ctx, clai_tensor_view(o, &lov, 3, lvs, lvst, 0)); /* lse placed inside out's buffer */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "lse overlaps out", clai_attention(ctx, o, lov, q, k, v, 0, 0));
  clai_tensor_free(lov);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "v is NULL", clai_attention(ctx, o, NULL, q, k, NULL, 0, 0));
  assert_int_equal(clai_attention(NULL, o, NULL, q, k, v, 0, 0), CLAI_E_INVALID_ARG);
  clai_tensor *list[] = {q, k, v, o, lse, k2, v2, kd, kh, qi, oi, lh, lbad, q3, vlen, qbig, kbig, obig, vbig, ov};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  clait_rng r = {5};
  check(ctx, &r, &cases[4], CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 1); /* usable */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_attention_f32, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_attention_f16, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_attention_views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_attention_empty, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_attention_deterministic, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_attention_errors, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("attention", tests, 1);
}
