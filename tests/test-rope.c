/* test-rope.c - clai_rope (and its inverse, the backward) against a double-precision reference: interleaved
 * and half-split pairs, [B, H, L, D] and [B, L, H, D] layouts, position offsets, partial rotation, theta,
 * awkward sizes (L = 1, 7, 33, 100; D = 2, 6, 64, 80, 128), f16 storage, strided views, in place, and bad
 * inputs. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

/* Reference on dense x of shape sh (ndim nd) with the position at dim pd. */
static void ref_rope(const float *x, double *out, int nd, const int64_t *sh, int pd, const clai_rope_params *p) {
  const int64_t D = sh[nd - 1], rot = p->rot_dims ? p->rot_dims : D;
  const double theta = p->theta != 0.0f ? p->theta : 10000.0;
  int64_t rows = 1, inner = 1;
  for (int i = 0; i < nd - 1; i++) rows *= sh[i];
  for (int i = pd + 1; i < nd - 1; i++) inner *= sh[i];
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * D;
    double *o = out + r * D;
    const double pos = (double)((r / inner) % sh[pd] + p->pos_offset);
    for (int64_t d = rot; d < D; d++) o[d] = xr[d];
    for (int64_t i = 0; i < rot / 2; i++) {
      int64_t a = p->mode == CLAI_ROPE_HALVES ? i : 2 * i, b = p->mode == CLAI_ROPE_HALVES ? i + rot / 2 : 2 * i + 1;
      double t = (p->inverse ? -pos : pos) * pow(theta, -2.0 * (double)i / (double)rot);
      o[a] = xr[a] * cos(t) - xr[b] * sin(t);
      o[b] = xr[a] * sin(t) + xr[b] * cos(t);
    }
  }
}

static void write_f(clai_context *ctx, clai_tensor *t, const float *v) {
  size_t n = (size_t)clai_tensor_numel(t);
  if (clai_tensor_dtype(t) == CLAI_DTYPE_F32) {
    CLAIT_OK(ctx, clai_tensor_write(t, v, n * 4));
    return;
  }
  uint16_t *h = malloc(n * 2 + 2);
  for (size_t i = 0; i < n; i++) h[i] = clait_f32_to_f16(v[i]);
  clai_status st = clai_tensor_write(t, h, n * 2);
  free(h);
  CLAIT_OK(ctx, st);
}

static void read_f(clai_context *ctx, clai_tensor *t, float *v) {
  size_t n = (size_t)clai_tensor_numel(t);
  if (clai_tensor_dtype(t) == CLAI_DTYPE_F32) {
    CLAIT_OK(ctx, clai_tensor_read(t, v, n * 4));
    return;
  }
  uint16_t *h = malloc(n * 2 + 2);
  clai_status st = clai_tensor_read(t, h, n * 2);
  for (size_t i = 0; i < n; i++) v[i] = clait_f16_to_f32(h[i]);
  free(h);
  CLAIT_OK(ctx, st);
}

/* kind: 0 dense out-of-place, 1 in place, 2 x a permuted view (from the other layout) and out dense,
 * 3 out a stepped view of a wider last dim */
static void check(clai_context *ctx, clait_rng *r, clai_dtype dt, int nd, const int64_t *sh, const clai_rope_params *p,
                  int kind) {
  size_t n = 1;
  for (int i = 0; i < nd; i++) n *= (size_t)sh[i];
  float *x = malloc(n * 4 + 4), *got = malloc(n * 4 + 4);
  double *want = malloc(n * 8 + 8);
  clait_fill(r, x, n, -2, 2);
  if (dt == CLAI_DTYPE_F16) clait_round_f16(x, n);
  int pd = nd - (p->layout == CLAI_ROPE_BLHD ? 3 : 2);
  clai_tensor *tx = NULL, *xb = NULL, *to = NULL, *ob = NULL;
  if (kind == 2) { /* x as a permutation of a tensor with dims pd and pd+1 swapped */
    int64_t bs[CLAI_MAX_DIMS];
    memcpy(bs, sh, sizeof bs[0] * (size_t)nd);
    bs[pd] = sh[pd + 1];
    bs[pd + 1] = sh[pd];
    CLAIT_OK(ctx, clai_tensor_init(ctx, &xb, dt, nd, bs));
    CLAIT_OK(ctx, clai_tensor_transpose(xb, &tx, pd, pd + 1));
    assert_false(clai_tensor_is_contiguous(tx) && sh[pd] > 1 && sh[pd + 1] > 1);
  } else {
    CLAIT_OK(ctx, clai_tensor_init(ctx, &tx, dt, nd, sh));
  }
  write_f(ctx, tx, x);
  if (kind == 1) {
    to = tx;
  } else if (kind == 3) {
    int64_t bs[CLAI_MAX_DIMS];
    memcpy(bs, sh, sizeof bs[0] * (size_t)nd);
    bs[nd - 1] = 2 * sh[nd - 1];
    CLAIT_OK(ctx, clai_tensor_init(ctx, &ob, dt, nd, bs));
    CLAIT_OK(ctx, clai_tensor_slice(ob, &to, nd - 1, 0, bs[nd - 1], 2));
  } else {
    CLAIT_OK(ctx, clai_tensor_init(ctx, &to, dt, nd, sh));
  }
  CLAIT_OK(ctx, clai_rope(ctx, to, tx, p));
  read_f(ctx, to, got);
  ref_rope(x, want, nd, sh, pd, p);
  /* the angle is an f32 product: its error grows with the position */
  int64_t maxpos = p->pos_offset + sh[pd];
  double atol = (dt == CLAI_DTYPE_F16 ? 4e-3 : 2e-6) + 3.0 * (double)maxpos * 1.2e-7;
  char what[160];
  snprintf(what, sizeof what, "rope %s %s layout %d, mode %d, offset %lld, rot %lld, theta %g, kind %d",
           clai_dtype_name(dt), nd == 4 ? "4-d" : "n-d", (int)p->layout, (int)p->mode, (long long)p->pos_offset,
           (long long)p->rot_dims, (double)p->theta, kind);
  clait_expect_close(what, got, want, n, atol, dt == CLAI_DTYPE_F16 ? 1e-3 : 1e-6);
  if (to != tx) clai_tensor_free(to);
  clai_tensor_free(tx);
  clai_tensor_free(xb);
  clai_tensor_free(ob);
  free(x);
  free(got);
  free(want);
}

static void test_rope(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x452821e638d01377ULL};
  static const int64_t shapes[][4] = {{1, 2, 1, 2}, {2, 3, 7, 6}, {1, 2, 33, 64}, {1, 4, 100, 80}, {1, 1, 7, 128}};
  const clai_dtype dts[2] = {CLAI_DTYPE_F32, CLAI_DTYPE_F16};
  for (int di = 0; di < 2; di++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
      for (int mode = 0; mode < 2; mode++)
        for (int layout = 0; layout < 2; layout++) {
          clai_rope_params p = {0};
          p.mode = (clai_rope_mode)mode;
          p.layout = (clai_rope_layout)layout;
          p.pos_offset = (int64_t)(s * 37);
          check(ctx, &r, dts[di], 4, shapes[s], &p, (int)((s + (size_t)mode) % 4));
        }
}

static void test_rope_params(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xbe5466cf34e90c6cULL};
  const int64_t s4[4] = {2, 33, 3, 80}, s2[2] = {100, 64}, s3[3] = {2, 7, 10};
  clai_rope_params p = {0};
  p.rot_dims = 20; /* partial rotation, NeoX-style */
  p.mode = CLAI_ROPE_HALVES;
  p.layout = CLAI_ROPE_BLHD;
  for (int kind = 0; kind < 4; kind++) check(ctx, &r, CLAI_DTYPE_F32, 4, s4, &p, kind);
  p.mode = CLAI_ROPE_INTERLEAVED;
  p.theta = 500000.0f; /* LLaMA 3 */
  p.pos_offset = 1000;
  check(ctx, &r, CLAI_DTYPE_F32, 4, s4, &p, 1);
  clai_rope_params q = {0};
  check(ctx, &r, CLAI_DTYPE_F32, 2, s2, &q, 0); /* [L, D] */
  check(ctx, &r, CLAI_DTYPE_F16, 3, s3, &q, 1); /* [B, L, D] in place */
  q.rot_dims = 4;
  check(ctx, &r, CLAI_DTYPE_F16, 3, s3, &q, 3);
  /* NULL params: all defaults, the same as a zeroed struct */
  const int64_t s[4] = {1, 2, 7, 8};
  float x[112], a[112], b[112];
  clait_fill(&r, x, 112, -1, 1);
  clai_tensor *tx = NULL, *ta = NULL, *tb = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tx, CLAI_DTYPE_F32, 4, s));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &ta, CLAI_DTYPE_F32, 4, s));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tb, CLAI_DTYPE_F32, 4, s));
  CLAIT_OK(ctx, clai_tensor_write(tx, x, sizeof x));
  clai_rope_params z = {0};
  CLAIT_OK(ctx, clai_rope(ctx, ta, tx, NULL));
  CLAIT_OK(ctx, clai_rope(ctx, tb, tx, &z));
  CLAIT_OK(ctx, clai_tensor_read(ta, a, sizeof a));
  CLAIT_OK(ctx, clai_tensor_read(tb, b, sizeof b));
  assert_memory_equal(a, b, sizeof a);
  clai_tensor_free(tx);
  clai_tensor_free(ta);
  clai_tensor_free(tb);
}

/* The backward: inverse = 1 rotates by -t (checked against the reference like the forward), it is the
 * transpose of the forward (<rope(x), w> = <x, rope_inverse(w)>, so it is the gradient of sum(w * rope(x))),
 * and it undoes the forward. */
static void test_rope_backward(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x3f84d5b5b5470917ULL};
  static const int64_t shapes[][4] = {{1, 1, 1, 2}, {2, 3, 7, 6}, {1, 2, 33, 80}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int mode = 0; mode < 2; mode++) {
      clai_rope_params p = {0};
      p.mode = (clai_rope_mode)mode;
      p.layout = (clai_rope_layout)(s % 2);
      p.pos_offset = (int64_t)(s * 11);
      p.rot_dims = s == 2 ? 64 : 0;
      p.inverse = 1;
      check(ctx, &r, s == 1 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32, 4, shapes[s], &p, (int)((s + (size_t)mode) % 4));
    }
  const int64_t sh[4] = {2, 4, 33, 64};
  const size_t n = 2 * 4 * 33 * 64;
  float *x = malloc(n * 4), *w = malloc(n * 4), *rx = malloc(n * 4), *rw = malloc(n * 4), *back = malloc(n * 4);
  clait_fill(&r, x, n, -1, 1);
  clait_fill(&r, w, n, -1, 1);
  clai_tensor *tx = NULL, *tw = NULL, *trx = NULL, *trw = NULL, *tb = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tx, CLAI_DTYPE_F32, 4, sh));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tw, CLAI_DTYPE_F32, 4, sh));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &trx, CLAI_DTYPE_F32, 4, sh));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &trw, CLAI_DTYPE_F32, 4, sh));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tb, CLAI_DTYPE_F32, 4, sh));
  CLAIT_OK(ctx, clai_tensor_write(tx, x, n * 4));
  CLAIT_OK(ctx, clai_tensor_write(tw, w, n * 4));
  clai_rope_params f = {0}, b = {0};
  f.mode = b.mode = CLAI_ROPE_HALVES;
  f.pos_offset = b.pos_offset = 5;
  f.rot_dims = b.rot_dims = 48;
  b.inverse = 1;
  CLAIT_OK(ctx, clai_rope(ctx, trx, tx, &f));
  CLAIT_OK(ctx, clai_rope(ctx, trw, tw, &b));
  CLAIT_OK(ctx, clai_rope(ctx, tb, trx, &b));
  CLAIT_OK(ctx, clai_tensor_read(trx, rx, n * 4));
  CLAIT_OK(ctx, clai_tensor_read(trw, rw, n * 4));
  CLAIT_OK(ctx, clai_tensor_read(tb, back, n * 4));
  double lhs = 0, rhs = 0, mag = 0;
  for (size_t i = 0; i < n; i++) {
    lhs += (double)rx[i] * w[i];
    rhs += (double)x[i] * rw[i];
    mag += fabs((double)x[i] * w[i]);
  }
  if (!(fabs(lhs - rhs) <= 1e-6 * mag)) fail_msg("rope: <rope(x), w> = %.9g but <x, rope_inverse(w)> = %.9g", lhs, rhs);
  double *xd = malloc(n * 8);
  for (size_t i = 0; i < n; i++) xd[i] = x[i];
  clait_expect_close("rope_inverse(rope(x)) = x", back, xd, n, 1e-5, 1e-5);
  free(xd);
  clai_tensor *list[] = {tx, tw, trx, trw, tb};
  for (size_t i = 0; i < 5; i++) clai_tensor_free(list[i]);
  free(x);
  free(w);
  free(rx);
  free(rw);
  free(back);
}

static void test_rope_errors(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t s[4] = {1, 2, 5, 8}, so[4] = {1, 2, 5, 7}, s1[1] = {8}, s2[2] = {5, 8};
  clai_tensor *x = NULL, *o = NULL, *odd = NULL, *x16 = NULL, *xi = NULL, *x1 = NULL, *x2 = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &x, CLAI_DTYPE_F32, 4, s));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &o, CLAI_DTYPE_F32, 4, s));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &odd, CLAI_DTYPE_F32, 4, so));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &x16, CLAI_DTYPE_F16, 4, s));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &xi, CLAI_DTYPE_I32, 4, s));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &x1, CLAI_DTYPE_F32, 1, s1));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &x2, CLAI_DTYPE_F32, 2, s2));
  clai_rope_params p = {0};
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "share one dtype", clai_rope(ctx, o, x16, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "share one dtype", clai_rope(ctx, xi, xi, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "differ in shape", clai_rope(ctx, odd, x, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "must be even", clai_rope(ctx, odd, odd, NULL));
  p.rot_dims = 10;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "rotating 10 of D = 8", clai_rope(ctx, o, x, &p));
  p.rot_dims = 3; /* odd: a bad parameter whatever x is */
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "rot_dims 3 must be even", clai_rope(ctx, o, x, &p));
  p.rot_dims = -2;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "rot_dims -2", clai_rope(ctx, o, x, &p));
  p.rot_dims = 0;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "no position dim", clai_rope(ctx, x1, x1, NULL));
  p.layout = CLAI_ROPE_BLHD;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "no position dim", clai_rope(ctx, x2, x2, &p));
  p.layout = (clai_rope_layout)7;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "layout 7", clai_rope(ctx, o, x, &p));
  p.layout = CLAI_ROPE_BHLD;
  p.mode = (clai_rope_mode)-1;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "mode -1", clai_rope(ctx, o, x, &p));
  p.mode = CLAI_ROPE_INTERLEAVED;
  p.theta = -1;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "theta", clai_rope(ctx, o, x, &p));
  p.theta = 0;
  p.inverse = 2;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "inverse is 2", clai_rope(ctx, o, x, &p));
  p.inverse = 0;
  p.pos_offset = -5;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "pos_offset -5", clai_rope(ctx, o, x, &p));
  /* out one element after x in the same buffer: overlap that is not element for element */
  const int64_t sm[4] = {1, 2, 5, 7};
  clai_tensor *xa = NULL, *xb = NULL;
  CLAIT_OK(ctx, clai_tensor_view(x, &xa, 4, sm, (const int64_t[4]){80, 40, 8, 1}, 0));
  CLAIT_OK(ctx, clai_tensor_view(x, &xb, 4, sm, (const int64_t[4]){80, 40, 8, 1}, 1));
  p.pos_offset = 0;
  p.rot_dims = 6;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_rope(ctx, xb, xa, &p));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "x is NULL", clai_rope(ctx, o, NULL, NULL));
  clai_tensor *list[] = {x, o, odd, x16, xi, x1, x2, xa, xb};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  clait_rng r = {3};
  clai_rope_params d = {0};
  check(ctx, &r, CLAI_DTYPE_F32, 4, s, &d, 0); /* usable */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_rope, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_rope_params, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_rope_backward, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_rope_errors, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("rope", tests, 1);
}
