/* test-gather-backward.c - clai_gather_rows_backward (the embedding's weight gradient) against a double-
 * precision scatter-add on the host: awkward table sizes (1 x 1, 7 x 3, 129 x 80, 1000 x 129), index shapes
 * (0-d, 1-d, 2-d, empty), an index repeated a thousand times, overwrite and accumulate, f32 and f16 in any
 * mix, strided views of all three operands, identical bits run after run, out-of-range indices (status,
 * message, the other positions still summed) and bad inputs with a usable context after. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

typedef struct gcase {
  int64_t rows, cols;
  int ind;
  int64_t ish[3];
  int repeat; /* every index the same row (1), or uniform over the rows (0) */
} gcase;

/* views: bit 0 grad_table a transposed view, bit 1 grad_out a stepped last dim, bit 2 index a stepped view.
 * Returns the device result (caller frees) when keep is set. */
static float *check(clai_context *ctx, clait_rng *r, const gcase *c, clai_dtype tdt, clai_dtype gdt, int accumulate,
                    int views, int keep) {
  size_t ni = 1;
  for (int i = 0; i < c->ind; i++) ni *= (size_t)c->ish[i];
  const size_t nt = (size_t)(c->rows * c->cols), ng = ni * (size_t)c->cols;
  double *old = malloc(nt * 8 + 8), *g = malloc(ng * 8 + 8), *iv = malloc(ni * 8 + 8), *want = malloc(nt * 8 + 8);
  float *got = malloc(nt * 4 + 4);
  for (size_t i = 0; i < nt; i++) old[i] = clait_as_dtype(tdt, clait_uniform(r, -1, 1));
  for (size_t i = 0; i < ng; i++) g[i] = clait_as_dtype(gdt, clait_uniform(r, -1, 1));
  for (size_t i = 0; i < ni; i++)
    iv[i] = c->repeat ? (double)(c->rows / 2) : (double)(clait_next(r) % (uint64_t)c->rows);
  /* grad_table */
  clai_tensor *tb = NULL, *tt = NULL;
  const int64_t ts[2] = {c->rows, c->cols};
  if (views & 1) {
    const int64_t bs[2] = {c->cols, c->rows};
    double *tr = malloc(nt * 8 + 8);
    for (int64_t i = 0; i < c->rows; i++)
      for (int64_t j = 0; j < c->cols; j++) tr[j * c->rows + i] = old[i * c->cols + j];
    CLAIT_OK(ctx, clai_tensor_init(ctx, &tb, tdt, 2, bs));
    clait_put(ctx, tb, tr);
    free(tr);
    CLAIT_OK(ctx, clai_tensor_transpose(tb, &tt, 0, 1));
  } else {
    CLAIT_OK(ctx, clai_tensor_init(ctx, &tt, tdt, 2, ts));
    clait_put(ctx, tt, old);
  }
  /* grad_out: S + [cols] */
  int64_t gs[4];
  memcpy(gs, c->ish, sizeof gs[0] * (size_t)c->ind);
  gs[c->ind] = c->cols;
  clai_tensor *gb = NULL, *tg = NULL;
  if (views & 2) {
    int64_t bs[4];
    memcpy(bs, gs, sizeof bs);
    bs[c->ind] = 2 * c->cols;
    CLAIT_OK(ctx, clai_tensor_init(ctx, &gb, gdt, c->ind + 1, bs));
    CLAIT_OK(ctx, clai_tensor_slice(gb, &tg, c->ind, 1, bs[c->ind], 2));
  } else {
    CLAIT_OK(ctx, clai_tensor_init(ctx, &tg, gdt, c->ind + 1, gs));
  }
  clait_put(ctx, tg, g);
  /* index */
  clai_tensor *ib = NULL, *ti = NULL;
  if ((views & 4) && c->ind >= 1) {
    int64_t bs[3];
    memcpy(bs, c->ish, sizeof bs);
    bs[0] = 3 * c->ish[0];
    CLAIT_OK(ctx, clai_tensor_init(ctx, &ib, CLAI_DTYPE_I32, c->ind, bs));
    CLAIT_OK(ctx, clai_fill(ctx, ib, -1)); /* the skipped elements would be out of range */
    CLAIT_OK(ctx, clai_tensor_slice(ib, &ti, 0, 2, bs[0], 3));
  } else {
    CLAIT_OK(ctx, clai_tensor_init(ctx, &ti, CLAI_DTYPE_I32, c->ind, c->ish));
  }
  clait_put(ctx, ti, iv);
  CLAIT_OK(ctx, clai_gather_rows_backward(ctx, tt, tg, ti, accumulate));
  clait_read_floats(ctx, tt, got);
  size_t maxc = 1;
  for (size_t i = 0; i < nt; i++) want[i] = accumulate ? old[i] : 0.0;
  for (size_t p = 0; p < ni; p++)
    for (size_t j = 0; j < (size_t)c->cols; j++) want[(size_t)iv[p] * (size_t)c->cols + j] += g[p * (size_t)c->cols + j];
  if (c->repeat) maxc = ni;
  char what[200];
  snprintf(what, sizeof what,
           "gather backward [%lld, %lld], %zu indices%s, %s table, %s grad_out, accumulate %d, views %d",
           (long long)c->rows, (long long)c->cols, ni, c->repeat ? " all alike" : "", clai_dtype_name(tdt),
           clai_dtype_name(gdt), accumulate, views);
  /* f32 sums of up to maxc terms of size 1 in order: a rounding each; f16 tables round the result */
  const double atol = tdt == CLAI_DTYPE_F16 ? 2e-3 : 1e-6 * (double)(maxc + 4),
               rtol = tdt == CLAI_DTYPE_F16 ? 1e-3 : 1e-6;
  clait_expect_close(what, got, want, nt, atol, rtol);
  clai_tensor *list[] = {tt, tb, tg, gb, ti, ib};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  free(old);
  free(g);
  free(iv);
  free(want);
  if (keep) return got;
  free(got);
  return NULL;
}

static const gcase cases[] = {
    {1, 1, 1, {1}, 0},        {7, 3, 2, {2, 5}, 0},   {10, 64, 0, {0}, 0},       {129, 80, 1, {31}, 0},
    {1000, 129, 2, {4, 33}, 0}, {33, 7, 1, {1000}, 1}, {5, 16, 3, {2, 3, 4}, 0}, {7, 3, 1, {0}, 0},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* cases[i]; in small mode (CLAI_TEST_SIZE=small) 1000 rows or indices become 200. */
static const gcase *sized(size_t i) {
  static gcase c;
  c = cases[i];
  if (c.rows == 1000) c.rows = CLAIT_SIZE(1000, 200);
  if (c.ind == 1 && c.ish[0] == 1000) c.ish[0] = CLAIT_SIZE(1000, 200);
  return &c;
}

static void test_gather_backward(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x9e3779b97f4a7c15ULL};
  for (size_t i = 0; i < NCASES; i++)
    for (int acc = 0; acc < 2; acc++) check(ctx, &r, sized(i), CLAI_DTYPE_F32, CLAI_DTYPE_F32, acc, 0, 0);
}

static void test_gather_backward_f16(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xbf58476d1ce4e5b9ULL};
  for (size_t i = 0; i < NCASES; i++) {
    check(ctx, &r, sized(i), CLAI_DTYPE_F32, CLAI_DTYPE_F16, (int)(i % 2), 0, 0);
    check(ctx, &r, sized(i), CLAI_DTYPE_F16, CLAI_DTYPE_F32, (int)(i % 2), 0, 0);
    check(ctx, &r, sized(i), CLAI_DTYPE_F16, CLAI_DTYPE_F16, 1 - (int)(i % 2), 0, 0);
  }
}

static void test_gather_backward_views(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x94d049bb133111ebULL};
  for (size_t i = 0; i < NCASES; i++)
    for (int views = 1; views < 8; views++)
      if (!clait_small() || (i + (size_t)views) % 3 == 0) /* small: a third of the view sets, by turns */
        check(ctx, &r, sized(i), CLAI_DTYPE_F32, CLAI_DTYPE_F32, views % 2, views, 0);
}

/* A thousand repeats of one row, summed twice: the same bits. */
static void test_gather_backward_deterministic(void **state) {
  clai_context *ctx = CTX(state);
  const gcase c = {50, 129, 1, {CLAIT_SIZE(3000, 500)}, 1}, c2 = {50, 129, 2, {30, 100}, 0};
  const gcase *cs[2] = {&c, &c2};
  for (int k = 0; k < 2; k++) {
    clait_rng r1 = {77}, r2 = {77};
    float *a = check(ctx, &r1, cs[k], CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 1);
    float *b = check(ctx, &r2, cs[k], CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 1);
    assert_memory_equal(a, b, 50 * 129 * 4);
    free(a);
    free(b);
  }
}

/* One row named by 70001 positions: on llvmpipe, whose kernels' loops stop after 65535 iterations a
 * work-item, its run is summed in passes (lib/op-layout.c; one pass summed 65534 of 1000000 there).
 * Overwrite and accumulate, f32 and f16 tables; not on the simulator (a work-item's 70001 steps). */
static void test_gather_backward_long_runs(void **state) {
  clai_context *ctx = CTX(state);
  if (clait_oclgrind(ctx)) {
    print_message("# test_gather_backward_long_runs: 70001 positions of one row are too slow to simulate; not run\n");
    return;
  }
  const gcase c = {5, 3, 1, {70001}, 1};
  clait_rng r = {0x70001};
  free(check(ctx, &r, &c, CLAI_DTYPE_F32, CLAI_DTYPE_F32, 0, 0, 0));
  free(check(ctx, &r, &c, CLAI_DTYPE_F32, CLAI_DTYPE_F16, 1, 2, 0));
  free(check(ctx, &r, &c, CLAI_DTYPE_F16, CLAI_DTYPE_F32, 1, 0, 0));
}

/* Out-of-range indices add nothing, the others are summed, and the first bad one is reported. */
static void test_gather_backward_out_of_range(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t ts[2] = {4, 2}, is[1] = {6}, gs[2] = {6, 2};
  const double idx[6] = {1, 4, 1, -1, 3, 1000}, g[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  clai_tensor *t = NULL, *gi = NULL, *ti = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 2, ts));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &ti, CLAI_DTYPE_I32, 1, is));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &gi, CLAI_DTYPE_F32, 2, gs));
  clait_put(ctx, ti, idx);
  clait_put(ctx, gi, g);
  CLAIT_OK(ctx, clai_fill(ctx, t, 100));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "index[1] = 4 is outside [0, 4)", clai_gather_rows_backward(ctx, t, gi, ti, 1));
  float got[8];
  clait_read_floats(ctx, t, got);
  const float want[8] = {100, 100, 100 + 1 + 5, 100 + 2 + 6, 100, 100, 100 + 9, 100 + 10};
  assert_memory_equal(got, want, sizeof want);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "index[1] = 4", clai_gather_rows_backward(ctx, t, gi, ti, 0));
  clait_read_floats(ctx, t, got);
  const float want0[8] = {0, 0, 1 + 5, 2 + 6, 0, 0, 9, 10};
  assert_memory_equal(got, want0, sizeof want0);
  clai_tensor_free(t);
  clai_tensor_free(ti);
  clai_tensor_free(gi);
  clait_rng r = {3};
  check(ctx, &r, &cases[1], CLAI_DTYPE_F32, CLAI_DTYPE_F32, 1, 0, 0); /* usable */
}

static void test_gather_backward_errors(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t ts[2] = {4, 3}, t3s[3] = {4, 3, 1}, is[1] = {5}, gs[2] = {5, 3}, gbs[2] = {5, 2}, g1s[1] = {5};
  clai_tensor *t = NULL, *t3 = NULL, *ti = NULL, *tf = NULL, *g = NULL, *gbad = NULL, *g1 = NULL, *gi = NULL,
              *tiv = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 2, ts));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t3, CLAI_DTYPE_F32, 3, t3s));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &ti, CLAI_DTYPE_I32, 1, is));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tf, CLAI_DTYPE_F32, 1, is));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &g, CLAI_DTYPE_F32, 2, gs));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &gi, CLAI_DTYPE_I32, 2, gs));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &gbad, CLAI_DTYPE_F32, 2, gbs));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &g1, CLAI_DTYPE_F32, 1, g1s));
  const int64_t vs[2] = {4, 3}, vst[2] = {3, 1};
  CLAIT_OK(ctx, clai_tensor_view(g, &tiv, 2, vs, vst, 0)); /* grad_table inside grad_out's buffer */
  const double zeros[5] = {0};
  clait_put(ctx, ti, zeros);
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "must be i32", clai_gather_rows_backward(ctx, t, g, tf, 0));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "grad_out i32", clai_gather_rows_backward(ctx, t, gi, ti, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "2-d", clai_gather_rows_backward(ctx, t3, g, ti, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "has 3 cols", clai_gather_rows_backward(ctx, t, gbad, ti, 0));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "plus one last dim", clai_gather_rows_backward(ctx, t, g1, ti, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "accumulate is 2", clai_gather_rows_backward(ctx, t, g, ti, 2));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_gather_rows_backward(ctx, tiv, g, ti, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "index is NULL", clai_gather_rows_backward(ctx, t, g, NULL, 0));
  assert_int_equal(clai_gather_rows_backward(NULL, t, g, ti, 0), CLAI_E_INVALID_ARG);
  clai_tensor *list[] = {t, t3, ti, tf, g, gi, gbad, g1, tiv};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  clait_rng r = {4};
  check(ctx, &r, &cases[3], CLAI_DTYPE_F16, CLAI_DTYPE_F32, 0, 3, 0); /* usable */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_gather_backward, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather_backward_f16, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather_backward_views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather_backward_deterministic, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather_backward_long_runs, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather_backward_out_of_range, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_gather_backward_errors, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("gather-backward", tests, 1);
}
