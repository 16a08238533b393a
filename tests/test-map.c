/* test-map - host access to device tensors (clai_tensor_map / clai_tensor_map_wait / clai_tensor_unmap): a
 * read mapping shows what ops wrote, a write mapping reaches the ops enqueued after the unmap, write-only
 * mappings, views at an offset (the flat-gradient case: two disjoint views of one buffer mapped at once),
 * asynchronous maps with ops on another buffer running meanwhile, 0-element tensors, freeing a mapped tensor,
 * and every misuse as a status with a message (unmap twice, map twice, overlapping views, strided views,
 * bad flags), after which the context still works. */
#include "testutil.h"

static clai_tensor *vec(clai_context *ctx, int64_t n) {
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 1, &n));
  return t;
}

static void test_read_write(void **state) {
  clai_context *ctx = *state;
  const int64_t n = 1031;
  clai_tensor *t = vec(ctx, n), *u = vec(ctx, n);
  CLAIT_OK(ctx, clai_fill(ctx, t, 1.5));
  float *p = NULL;
  CLAIT_OK(ctx, clai_tensor_map(t, CLAI_MAP_READ | CLAI_MAP_WRITE, (void **)&p));
  assert_non_null(p);
  for (int64_t i = 0; i < n; i++) {
    if (p[i] != 1.5f) fail_msg("element %lld is %g after clai_fill(1.5)", (long long)i, p[i]);
    p[i] = (float)i;
  }
  CLAIT_OK(ctx, clai_tensor_unmap(t));
  CLAIT_OK(ctx, clai_scale(ctx, u, t, 2.0f)); /* an op after the unmap sees the host's writes */
  float *h = malloc((size_t)n * sizeof *h);
  assert_non_null(h);
  CLAIT_OK(ctx, clai_tensor_read(u, h, (size_t)n * sizeof *h));
  for (int64_t i = 0; i < n; i++)
    if (h[i] != 2.0f * (float)i) fail_msg("u[%lld] = %g, expected %g", (long long)i, h[i], 2.0 * i);
  /* write-only: every element written, then read back through clai_tensor_read */
  CLAIT_OK(ctx, clai_tensor_map(u, CLAI_MAP_WRITE, (void **)&p));
  for (int64_t i = 0; i < n; i++) p[i] = -(float)i;
  CLAIT_OK(ctx, clai_tensor_unmap(u));
  CLAIT_OK(ctx, clai_tensor_read(u, h, (size_t)n * sizeof *h));
  for (int64_t i = 0; i < n; i++)
    if (h[i] != -(float)i) fail_msg("u[%lld] = %g after a write-only mapping", (long long)i, h[i]);
  free(h);
  clai_tensor_free(t), clai_tensor_free(u);
}

/* Two disjoint views of one flat buffer, mapped together (as buckets of a flat gradient), one of them
 * asynchronously while an op on another buffer is enqueued. */
static void test_views_async(void **state) {
  clai_context *ctx = *state;
  const int64_t n = 1000, cut = 357;
  clai_tensor *flat = vec(ctx, n), *a = NULL, *b = NULL, *other = vec(ctx, 4096), *all = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(flat, &a, 0, 0, cut, 1));
  CLAIT_OK(ctx, clai_tensor_slice(flat, &b, 0, cut, n, 1));
  CLAIT_OK(ctx, clai_fill(ctx, a, 3.0));
  CLAIT_OK(ctx, clai_fill(ctx, b, 4.0));
  float *pa = NULL, *pb = NULL;
  CLAIT_OK(ctx, clai_tensor_map(b, CLAI_MAP_READ | CLAI_MAP_WRITE | CLAI_MAP_ASYNC, (void **)&pb));
  assert_non_null(pb);
  CLAIT_OK(ctx, clai_fill(ctx, other, 7.0)); /* another buffer: allowed while b is mapped */
  CLAIT_OK(ctx, clai_tensor_map_wait(b));
  CLAIT_OK(ctx, clai_tensor_map_wait(b)); /* a second wait returns at once */
  CLAIT_OK(ctx, clai_tensor_map(a, CLAI_MAP_READ | CLAI_MAP_WRITE, (void **)&pa));
  CLAIT_OK(ctx, clai_tensor_map_wait(a)); /* blocking map: nothing to wait for */
  for (int64_t i = 0; i < cut; i++) {
    if (pa[i] != 3.0f) fail_msg("a[%lld] = %g", (long long)i, pa[i]);
    pa[i] = 10.0f;
  }
  for (int64_t i = 0; i < n - cut; i++) {
    if (pb[i] != 4.0f) fail_msg("b[%lld] = %g", (long long)i, pb[i]);
    pb[i] = 20.0f;
  }
  /* the whole buffer overlaps both mappings */
  CLAIT_OK(ctx, clai_tensor_slice(flat, &all, 0, 0, n, 1));
  void *q = &q;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps", clai_tensor_map(all, CLAI_MAP_READ, &q));
  assert_null(q);
  CLAIT_OK(ctx, clai_tensor_unmap(b));
  CLAIT_OK(ctx, clai_tensor_unmap(a));
  float *h = malloc((size_t)n * sizeof *h);
  assert_non_null(h);
  CLAIT_OK(ctx, clai_tensor_read(flat, h, (size_t)n * sizeof *h));
  for (int64_t i = 0; i < n; i++)
    if (h[i] != (i < cut ? 10.0f : 20.0f)) fail_msg("flat[%lld] = %g", (long long)i, h[i]);
  free(h);
  clai_tensor_free(all), clai_tensor_free(a), clai_tensor_free(b), clai_tensor_free(flat), clai_tensor_free(other);
}

static void test_misuse(void **state) {
  clai_context *ctx = *state;
  const int64_t shape[2] = {8, 6};
  clai_tensor *m = NULL, *tr = NULL, *col = NULL, *e = NULL, *z = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &m, CLAI_DTYPE_F32, 2, shape));
  void *p = NULL;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not mapped", clai_tensor_unmap(m));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not mapped", clai_tensor_map_wait(m));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "flags", clai_tensor_map(m, 0, &p));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "flags", clai_tensor_map(m, CLAI_MAP_ASYNC, &p));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "flags", clai_tensor_map(m, CLAI_MAP_READ | 64, &p));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "ptr is NULL", clai_tensor_map(m, CLAI_MAP_READ, NULL));
  assert_int_equal(clai_tensor_map(NULL, CLAI_MAP_READ, &p), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_tensor_unmap(NULL), CLAI_E_INVALID_ARG);
  CLAIT_OK(ctx, clai_tensor_transpose(m, &tr, 0, 1));
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "not dense", clai_tensor_map(tr, CLAI_MAP_READ, &p));
  assert_null(p);
  CLAIT_OK(ctx, clai_tensor_slice(m, &col, 1, 2, 3, 1));
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "not dense", clai_tensor_map(col, CLAI_MAP_WRITE, &p));
  const int64_t one = 1, big[2] = {8, 6}, estr[2] = {0, 0};
  clai_tensor *s = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &s, CLAI_DTYPE_F32, 1, &one));
  CLAIT_OK(ctx, clai_tensor_view(s, &e, 2, big, estr, 0));
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "not dense", clai_tensor_map(e, CLAI_MAP_READ, &p));
  /* map twice, unmap twice */
  CLAIT_OK(ctx, clai_tensor_map(m, CLAI_MAP_READ, &p));
  void *p2 = &p2;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "mapped already", clai_tensor_map(m, CLAI_MAP_READ, &p2));
  assert_null(p2);
  CLAIT_OK(ctx, clai_tensor_unmap(m));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "not mapped", clai_tensor_unmap(m));
  /* 0 elements: NULL, and the mapping still has to be ended */
  const int64_t zs[2] = {0, 5};
  CLAIT_OK(ctx, clai_tensor_init(ctx, &z, CLAI_DTYPE_F32, 2, zs));
  p = &p;
  CLAIT_OK(ctx, clai_tensor_map(z, CLAI_MAP_READ | CLAI_MAP_WRITE, &p));
  assert_null(p);
  CLAIT_OK(ctx, clai_tensor_unmap(z));
  /* a tensor freed while mapped is unmapped, its writes kept for the other views of its buffer */
  clai_tensor *v = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(m, &v, 0, 0, 8, 1));
  float *pf = NULL;
  CLAIT_OK(ctx, clai_tensor_map(v, CLAI_MAP_WRITE, (void **)&pf));
  for (int i = 0; i < 48; i++) pf[i] = (float)i;
  clai_tensor_free(v);
  float h[48];
  CLAIT_OK(ctx, clai_tensor_read(m, h, sizeof h));
  for (int i = 0; i < 48; i++)
    if (h[i] != (float)i) fail_msg("m[%d] = %g after its mapped view was freed", i, h[i]);
  /* the context still works */
  CLAIT_OK(ctx, clai_fill(ctx, m, 2.0));
  CLAIT_OK(ctx, clai_tensor_read(m, h, sizeof h));
  assert_true(h[47] == 2.0f);
  /* a tensor left mapped when the context is freed: the teardown frees it (no leak, no crash) */
  CLAIT_OK(ctx, clai_tensor_map(s, CLAI_MAP_READ, &p));
  clai_tensor_free(tr), clai_tensor_free(col), clai_tensor_free(e), clai_tensor_free(z), clai_tensor_free(m);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clait_setup, clait_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_read_write),
      T(test_views_async),
      T(test_misuse),
  };
  return CLAIT_MAIN("map", tests, 1);
}
