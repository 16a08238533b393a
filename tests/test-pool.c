/* test-pool - the caching device allocator: repeated allocations of one size (and of sizes in one size class)
 * reuse a single device buffer; the byte counters (in use, cached, peak) add up; clai_context_trim releases
 * the cache; a small pool_limit keeps larger buffers out of the cache; a reused buffer is safe while earlier
 * work on it is still queued; an allocation beyond the device's largest allocation fails cleanly and leaves
 * the context usable; clai_context_free releases tensors still alive. Every test gets a fresh context, so
 * the counters start at zero. */
#include "testutil.h"

static clai_context_stats stats(clai_context *ctx) {
  clai_context_stats s;
  memset(&s, 0xee, sizeof s);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
  return s;
}

static clai_tensor *mk1(clai_context *ctx, clai_dtype dt, int64_t n) {
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, 1, &n));
  assert_non_null(t);
  return t;
}

/* The pool rounds a request up by at most a quarter (and to at least 256 bytes). */
static void expect_class_bound(uint64_t got, uint64_t asked) {
  if (got < asked || got > asked + asked / 4 + 256)
    fail_msg("%llu bytes held for a request of %llu", (unsigned long long)got, (unsigned long long)asked);
}

/* Peak is the largest in_use + cached ever seen, so it can never be below the current total. */
static void expect_sane(const clai_context_stats *s) {
  if (s->bytes_peak < s->bytes_in_use + s->bytes_cached)
    fail_msg("bytes_peak %llu < in use %llu + cached %llu", (unsigned long long)s->bytes_peak,
             (unsigned long long)s->bytes_in_use, (unsigned long long)s->bytes_cached);
  assert_true(s->device_frees <= s->device_allocs);
}

/* Writes a pattern into t (n f32 elements) and reads it back. */
static void roundtrip(clai_context *ctx, clai_tensor *t, int64_t n, float seed) {
  float *w = malloc((size_t)n * 4), *r = malloc((size_t)n * 4);
  assert_non_null(w);
  assert_non_null(r);
  for (int64_t i = 0; i < n; i++) w[i] = seed + (float)i;
  CLAIT_OK(ctx, clai_tensor_write(t, w, (size_t)n * 4));
  CLAIT_OK(ctx, clai_tensor_read(t, r, (size_t)n * 4));
  assert_memory_equal(r, w, (size_t)n * 4);
  free(w);
  free(r);
}

static void test_fresh_context(void **state) {
  clai_context *ctx = *state;
  clai_context_stats s = stats(ctx);
  assert_int_equal(s.bytes_in_use, 0);
  assert_int_equal(s.bytes_cached, 0);
  assert_int_equal(s.bytes_peak, 0);
  assert_int_equal(s.device_allocs, 0);
  assert_int_equal(s.device_frees, 0);
  assert_int_equal(s.pool_hits, 0);
  /* Trimming an empty pool is harmless; so are NULL arguments. */
  clai_context_trim(ctx);
  clai_context_trim(NULL);
  assert_int_equal(clai_context_stats_get(NULL, &s), CLAI_E_INVALID_ARG);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "stats", clai_context_stats_get(ctx, NULL));
  s = stats(ctx);
  assert_int_equal(s.device_frees, 0);
}

static void test_same_size_cycles(void **state) {
  clai_context *ctx = *state;
  const int64_t n = 1000;
  uint64_t max_cached = 0;
  for (int i = 0; i < 10000; i++) {
    clai_tensor *t = mk1(ctx, CLAI_DTYPE_F32, n);
    if (i % 2500 == 0) roundtrip(ctx, t, n, (float)i); /* the reused buffer really works */
    clai_tensor_free(t);
    clai_context_stats s = stats(ctx);
    if (s.bytes_cached > max_cached) max_cached = s.bytes_cached;
  }
  clai_context_stats s = stats(ctx);
  if (s.device_allocs > 4 || s.device_allocs < 1)
    fail_msg("10000 allocations of one size made %llu device allocations", (unsigned long long)s.device_allocs);
  assert_true(s.pool_hits >= 10000 - 4);
  assert_int_equal(s.pool_hits + s.device_allocs, 10000);
  assert_int_equal(s.device_frees, 0);
  assert_int_equal(s.bytes_in_use, 0);
  expect_class_bound(s.bytes_cached, (uint64_t)n * 4);
  assert_int_equal(max_cached, s.bytes_cached); /* never more than the one buffer */
  assert_int_equal(s.bytes_peak, s.bytes_cached);
  expect_sane(&s);

  /* Other dtypes and shapes of the same byte size take the same buffer. */
  clai_tensor *h = NULL, *m = NULL;
  const int64_t h2000 = 2000, shape[3] = {8, 5, 25};
  CLAIT_OK(ctx, clai_tensor_init(ctx, &h, CLAI_DTYPE_F16, 1, &h2000));
  clai_tensor_free(h);
  CLAIT_OK(ctx, clai_tensor_init(ctx, &m, CLAI_DTYPE_I32, 3, shape));
  clai_tensor_free(m);
  clai_context_stats s2 = stats(ctx);
  assert_int_equal(s2.device_allocs, s.device_allocs);
  assert_int_equal(s2.pool_hits, s.pool_hits + 2);
}

static void test_size_class_reuse(void **state) {
  clai_context *ctx = *state;
  /* 1028 ... 1280 bytes: one size class (1024 < n <= 1280, see pool.c). */
  for (int64_t n = 257; n <= 320; n++) {
    clai_tensor *t = mk1(ctx, CLAI_DTYPE_F32, n);
    if (n % 16 == 0) roundtrip(ctx, t, n, -(float)n);
    clai_tensor_free(t);
  }
  clai_context_stats s = stats(ctx);
  assert_int_equal(s.device_allocs, 1);
  assert_int_equal(s.pool_hits, 63);
  expect_class_bound(s.bytes_cached, 1028);
  assert_true(s.bytes_cached >= 1280);
  /* f16 and i32 tensors of sizes in the same class, and 2-D shapes, reuse it as well. */
  for (int64_t n = 513; n <= 640; n += 7) {
    clai_tensor *t = mk1(ctx, CLAI_DTYPE_F16, n);
    clai_tensor_free(t);
  }
  clai_tensor *t = NULL;
  const int64_t sh[2] = {15, 19}; /* 285 i32 = 1140 bytes */
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_I32, 2, sh));
  clai_tensor_free(t);
  s = stats(ctx);
  assert_int_equal(s.device_allocs, 1);

  /* A request that fits none of the cached buffers allocates, and a buffer too small is never handed out. */
  clai_tensor *big = mk1(ctx, CLAI_DTYPE_F32, 321); /* 1284 bytes: the next class */
  roundtrip(ctx, big, 321, 5.0f);
  clai_context_stats s2 = stats(ctx);
  assert_int_equal(s2.device_allocs, 2);
  assert_int_equal(s2.pool_hits, s.pool_hits);
  expect_class_bound(s2.bytes_in_use, 1284);
  /* Two live tensors of one class need two buffers. */
  clai_tensor *a = mk1(ctx, CLAI_DTYPE_F32, 300), *b = mk1(ctx, CLAI_DTYPE_F32, 300);
  s2 = stats(ctx);
  assert_int_equal(s2.device_allocs, 3);
  assert_int_equal(s2.pool_hits, s.pool_hits + 1);
  roundtrip(ctx, a, 300, 1.0f);
  roundtrip(ctx, b, 300, 2.0f);
  clai_tensor_free(a);
  clai_tensor_free(b);
  clai_tensor_free(big);

  /* Cycling through several classes allocates once per class and then only hits. */
  clai_context_trim(ctx);
  s = stats(ctx);
  assert_int_equal(s.bytes_cached, 0);
  const int64_t sizes[6] = {7, 129, 1000, 4097, 65537, 300000} /* six different classes */;
  for (int round = 0; round < 100; round++)
    for (int k = 0; k < 6; k++) clai_tensor_free(mk1(ctx, CLAI_DTYPE_F32, sizes[k]));
  s2 = stats(ctx);
  assert_int_equal(s2.device_allocs - s.device_allocs, 6);
  assert_int_equal(s2.pool_hits - s.pool_hits, 600 - 6);
  assert_int_equal(s2.bytes_in_use, 0);
  expect_sane(&s2);

  /* The temporaries of strided reads and writes come from the pool too. */
  clai_tensor *m = NULL, *mt = NULL;
  const int64_t ms[2] = {31, 7};
  CLAIT_OK(ctx, clai_tensor_init(ctx, &m, CLAI_DTYPE_F32, 2, ms));
  CLAIT_OK(ctx, clai_tensor_transpose(m, &mt, 0, 1));
  float buf[217];
  for (int i = 0; i < 217; i++) buf[i] = (float)i;
  s = stats(ctx);
  for (int i = 0; i < 200; i++) {
    CLAIT_OK(ctx, clai_tensor_write(mt, buf, sizeof buf));
    CLAIT_OK(ctx, clai_tensor_read(mt, buf, sizeof buf));
  }
  for (int i = 0; i < 217; i++) assert_true(buf[i] == (float)i);
  s2 = stats(ctx);
  assert_true(s2.device_allocs - s.device_allocs <= 1);
  assert_int_equal(s2.bytes_in_use, s.bytes_in_use);
  clai_tensor_free(mt);
  clai_tensor_free(m);
}

static void test_bytes_accounting(void **state) {
  clai_context *ctx = *state;
  clai_context_stats s = stats(ctx);
  assert_int_equal(s.bytes_in_use, 0);
  clai_tensor *a = mk1(ctx, CLAI_DTYPE_F32, 1000);
  clai_context_stats sa = stats(ctx);
  uint64_t da = sa.bytes_in_use;
  expect_class_bound(da, 4000);
  clai_tensor *b = mk1(ctx, CLAI_DTYPE_I32, 129);
  clai_context_stats sb = stats(ctx);
  uint64_t db = sb.bytes_in_use - da;
  expect_class_bound(db, 516);
  const int64_t cs[2] = {31, 7};
  clai_tensor *c = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &c, CLAI_DTYPE_F16, 2, cs));
  clai_context_stats sc = stats(ctx);
  uint64_t dc = sc.bytes_in_use - da - db;
  expect_class_bound(dc, 434);
  uint64_t total = da + db + dc;
  assert_int_equal(sc.bytes_cached, 0);
  assert_int_equal(sc.bytes_peak, total);
  assert_int_equal(sc.device_allocs, 3);
  assert_int_equal(sc.pool_hits, 0);

  /* Views and a zero-size tensor: views hold nothing new; the empty tensor holds the minimum. */
  clai_tensor *v = NULL, *z = NULL;
  CLAIT_OK(ctx, clai_tensor_transpose(c, &v, 0, 1));
  clai_context_stats sv = stats(ctx);
  assert_int_equal(sv.bytes_in_use, total);
  const int64_t zero = 0;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &z, CLAI_DTYPE_F32, 1, &zero));
  sv = stats(ctx);
  assert_true(sv.bytes_in_use > total && sv.bytes_in_use <= total + 256);
  clai_tensor_free(z);
  clai_context_trim(ctx);
  sv = stats(ctx);
  assert_int_equal(sv.bytes_in_use, total);
  assert_int_equal(sv.bytes_cached, 0);
  assert_int_equal(sv.device_frees, 1);
  uint64_t frees = sv.device_frees, peak = sv.bytes_peak;

  /* Freeing moves bytes from in use to cached; the peak does not move. */
  clai_tensor_free(a);
  s = stats(ctx);
  assert_int_equal(s.bytes_in_use, db + dc);
  assert_int_equal(s.bytes_cached, da);
  assert_int_equal(s.bytes_peak, peak);
  clai_tensor_free(b);
  clai_tensor_free(c); /* the view v still holds c's buffer */
  s = stats(ctx);
  assert_int_equal(s.bytes_in_use, dc);
  assert_int_equal(s.bytes_cached, da + db);
  clai_tensor_free(v);
  s = stats(ctx);
  assert_int_equal(s.bytes_in_use, 0);
  assert_int_equal(s.bytes_cached, total);
  assert_int_equal(s.bytes_peak, peak);
  assert_int_equal(s.device_frees, frees);
  expect_sane(&s);

  /* A hit moves bytes back; trim releases every cached buffer but not the live one. */
  a = mk1(ctx, CLAI_DTYPE_F32, 1000);
  s = stats(ctx);
  assert_int_equal(s.pool_hits, 1);
  assert_int_equal(s.bytes_in_use, da);
  assert_int_equal(s.bytes_cached, db + dc);
  clai_context_trim(ctx);
  s = stats(ctx);
  assert_int_equal(s.bytes_cached, 0);
  assert_int_equal(s.bytes_in_use, da);
  assert_int_equal(s.device_frees, frees + 2);
  assert_int_equal(s.bytes_peak, peak);
  roundtrip(ctx, a, 1000, 3.0f); /* untouched by the trim */
  clai_tensor_free(a);
  s = stats(ctx);
  assert_int_equal(s.bytes_cached, da);
  clai_context_trim(ctx);
  s = stats(ctx);
  assert_int_equal(s.bytes_cached, 0);
  assert_int_equal(s.bytes_in_use, 0);
  assert_int_equal(s.device_frees, frees + 3);
  assert_int_equal(s.device_frees, s.device_allocs); /* nothing left on the device */
  /* After a trim the next allocation goes to the device again. */
  uint64_t allocs = s.device_allocs, hits = s.pool_hits;
  a = mk1(ctx, CLAI_DTYPE_F32, 1000);
  roundtrip(ctx, a, 1000, 4.0f);
  s = stats(ctx);
  assert_int_equal(s.device_allocs, allocs + 1);
  assert_int_equal(s.pool_hits, hits);
  clai_tensor_free(a);
}

/* A buffer handed out again while earlier queued work still uses it: the in-order queue must run that work
 * first. Big enough that the copy is still running when the host writes the reused buffer. */
static void test_reuse_while_queued(void **state) {
  clai_context *ctx = *state;
  const int64_t n = CLAIT_SIZE(1 << 21, 1 << 14); /* small: on a slow device a short copy is still running */
  float *h = malloc((size_t)n * 4), *g = malloc((size_t)n * 4);
  assert_non_null(h);
  assert_non_null(g);
  for (int64_t i = 0; i < n; i++) h[i] = (float)(i % 4099) - 2000.0f;
  clai_tensor *a = mk1(ctx, CLAI_DTYPE_F32, n), *b = mk1(ctx, CLAI_DTYPE_F32, n);
  CLAIT_OK(ctx, clai_tensor_write(a, h, (size_t)n * 4));
  clai_context_stats s0 = stats(ctx);
  for (int rep = 0; rep < 3; rep++) {
    CLAIT_OK(ctx, clai_copy(ctx, b, a)); /* queued */
    clai_tensor_free(a);                 /* a's buffer goes back to the pool at once */
    a = mk1(ctx, CLAI_DTYPE_F32, n);     /* ...and comes straight out again */
    CLAIT_OK(ctx, clai_fill(ctx, a, -1.0));
    CLAIT_OK(ctx, clai_tensor_read(b, g, (size_t)n * 4));
    assert_memory_equal(g, h, (size_t)n * 4);
    CLAIT_OK(ctx, clai_tensor_read(a, g, (size_t)n * 4));
    for (int64_t i = 0; i < n; i += 997) assert_true(g[i] == -1.0f);
    CLAIT_OK(ctx, clai_tensor_write(a, h, (size_t)n * 4));
  }
  clai_context_stats s1 = stats(ctx);
  assert_int_equal(s1.device_allocs, s0.device_allocs); /* it really was the same buffer each time */
  assert_int_equal(s1.pool_hits, s0.pool_hits + 3);
  clai_tensor_free(a);
  clai_tensor_free(b);
  free(h);
  free(g);
}

static void test_pool_limit(void **state) {
  (void)state;
  char err[4096];
  clai_context *ctx = NULL;
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.pool_limit = 4096;
  clai_status st = clai_context_init_ex(&ctx, &p, err, sizeof err);
  if (st != CLAI_OK) fail_msg("clai_context_init_ex: %s: %s", clai_status_name(st), err);

  /* Larger than the limit: released at once. */
  clai_tensor *big = mk1(ctx, CLAI_DTYPE_F32, 4096); /* 16 KiB */
  roundtrip(ctx, big, 4096, 0.0f);
  clai_tensor_free(big);
  clai_context_stats s = stats(ctx);
  assert_int_equal(s.device_allocs, 1);
  assert_int_equal(s.device_frees, 1);
  assert_int_equal(s.bytes_cached, 0);
  assert_int_equal(s.bytes_in_use, 0);
  /* ...so the next one allocates again. */
  big = mk1(ctx, CLAI_DTYPE_F32, 4096);
  clai_tensor_free(big);
  s = stats(ctx);
  assert_int_equal(s.device_allocs, 2);
  assert_int_equal(s.device_frees, 2);
  assert_int_equal(s.pool_hits, 0);

  /* Small ones are cached while the total stays within the limit. */
  clai_tensor *small = mk1(ctx, CLAI_DTYPE_F32, 100);
  clai_tensor_free(small);
  s = stats(ctx);
  assert_int_equal(s.device_frees, 2);
  expect_class_bound(s.bytes_cached, 400);
  uint64_t small_bytes = s.bytes_cached;
  clai_tensor *x = mk1(ctx, CLAI_DTYPE_F32, 700), *y = mk1(ctx, CLAI_DTYPE_F32, 700); /* 2800 bytes each */
  clai_context_stats sxy = stats(ctx);
  uint64_t each = sxy.bytes_in_use / 2;
  assert_true(small_bytes + each <= 4096 && small_bytes + 2 * each > 4096);
  clai_tensor_free(x);
  clai_tensor_free(y);
  s = stats(ctx);
  assert_int_equal(s.bytes_cached, small_bytes + each); /* one cached, the other released */
  assert_int_equal(s.device_frees, 3);
  assert_true(s.bytes_cached <= 4096);
  expect_sane(&s);

  /* A buffer of exactly the limit fits an empty cache. */
  clai_context_trim(ctx);
  clai_tensor *exact = mk1(ctx, CLAI_DTYPE_F32, 1024);
  s = stats(ctx);
  assert_int_equal(s.bytes_in_use, 4096);
  clai_tensor_free(exact);
  s = stats(ctx);
  assert_int_equal(s.bytes_cached, 4096);
  uint64_t allocs = s.device_allocs;
  exact = mk1(ctx, CLAI_DTYPE_F32, 1024);
  roundtrip(ctx, exact, 1024, 9.0f);
  s = stats(ctx);
  assert_int_equal(s.device_allocs, allocs);
  clai_tensor_free(exact);
  clai_context_free(ctx);
}

static void test_too_large(void **state) {
  clai_context *ctx = *state;
  clai_device_info info;
  CLAIT_OK(ctx, clai_context_device_info(ctx, -1, &info));
  assert_true(info.max_alloc_bytes > 0);
  clai_tensor *keep = mk1(ctx, CLAI_DTYPE_F32, 129);
  roundtrip(ctx, keep, 129, 1.0f);
  clai_context_stats s0 = stats(ctx);

  char limit[32];
  snprintf(limit, sizeof limit, "%llu", (unsigned long long)info.max_alloc_bytes);
  const int64_t n = (int64_t)(info.max_alloc_bytes / 4) + 1; /* one f32 past the limit */
  const int64_t shape2[2] = {2, (int64_t)(info.max_alloc_bytes / 4)};
  const clai_dtype dts[3] = {CLAI_DTYPE_F32, CLAI_DTYPE_F16, CLAI_DTYPE_I32};
  for (int k = 0; k < 4; k++) {
    clai_tensor *t = (clai_tensor *)&t;
    if (k < 3) {
      int64_t m = dts[k] == CLAI_DTYPE_F16 ? 2 * n : n;
      CLAIT_FAILS(ctx, CLAI_E_OUT_OF_MEMORY, "clai_tensor_init", clai_tensor_init(ctx, &t, dts[k], 1, &m));
    } else {
      CLAIT_FAILS(ctx, CLAI_E_OUT_OF_MEMORY, "clai_tensor_init", clai_tensor_init(ctx, &t, CLAI_DTYPE_I32, 2, shape2));
    }
    assert_null(t);
    /* The message says what was asked for and what the device allows. */
    if (strstr(clai_errmsg(ctx), limit) == NULL)
      fail_msg("message \"%s\" does not mention the device's limit %s", clai_errmsg(ctx), limit);
    if (strstr(clai_errmsg(ctx), clai_dtype_name(k < 3 ? dts[k] : CLAI_DTYPE_I32)) == NULL)
      fail_msg("message \"%s\" does not name the dtype", clai_errmsg(ctx));
  }
  /* Nothing changed in the pool. */
  clai_context_stats s1 = stats(ctx);
  assert_int_equal(s1.device_allocs, s0.device_allocs);
  assert_int_equal(s1.bytes_in_use, s0.bytes_in_use);
  assert_int_equal(s1.bytes_cached, s0.bytes_cached);
  assert_int_equal(s1.bytes_peak, s0.bytes_peak);

  /* The context carries on: existing and new tensors work, ops run. */
  float g[129];
  CLAIT_OK(ctx, clai_tensor_read(keep, g, sizeof g));
  for (int i = 0; i < 129; i++) assert_true(g[i] == 1.0f + (float)i);
  clai_tensor *t = mk1(ctx, CLAI_DTYPE_F32, 129);
  CLAIT_OK(ctx, clai_copy(ctx, t, keep));
  CLAIT_OK(ctx, clai_fill(ctx, keep, 2.0));
  CLAIT_OK(ctx, clai_tensor_read(t, g, sizeof g));
  for (int i = 0; i < 129; i++) assert_true(g[i] == 1.0f + (float)i);
  CLAIT_OK(ctx, clai_tensor_read(keep, g, sizeof g));
  for (int i = 0; i < 129; i++) assert_true(g[i] == 2.0f);
  CLAIT_OK(ctx, clai_sync(ctx));
  clai_tensor_free(t);
  clai_tensor_free(keep);
  s1 = stats(ctx);
  assert_int_equal(s1.bytes_in_use, 0);
}

/* clai_context_free releases tensors that are still alive (and their pending work): with ASan/LSan or
 * valgrind a leak shows here. Uses its own context. */
static void test_context_free_releases_tensors(void **state) {
  (void)state;
  clai_context *ctx = clait_ctx();
  const int64_t na = CLAIT_SIZE(1 << 20, 1 << 14);
  clai_tensor *a = mk1(ctx, CLAI_DTYPE_F32, na), *b = mk1(ctx, CLAI_DTYPE_F16, 31), *v = NULL, *w = NULL;
  clai_tensor *freed = mk1(ctx, CLAI_DTYPE_I32, 7);
  clai_tensor_free(freed); /* a cached buffer, too */
  CLAIT_OK(ctx, clai_tensor_slice(a, &v, 0, 3, 100, 3));
  CLAIT_OK(ctx, clai_tensor_transpose(v, &w, 0, 0));
  clai_tensor_free(v); /* w still holds a's buffer */
  CLAIT_OK(ctx, clai_fill(ctx, a, 1.5)); /* still queued, probably, when the context goes */
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "broadcast", clai_copy(ctx, b, w)); /* [33] into [31]: refused */
  clai_context_stats s = stats(ctx);
  assert_true(s.bytes_in_use >= (uint64_t)na * 4 + 62);
  assert_true(s.bytes_cached > 0);
  clai_context_free(ctx);
  /* Nothing of the old context is needed by a new one. */
  ctx = clait_ctx();
  s = stats(ctx);
  assert_int_equal(s.bytes_in_use, 0);
  assert_int_equal(s.device_allocs, 0);
  clai_tensor *c = mk1(ctx, CLAI_DTYPE_F32, 31);
  roundtrip(ctx, c, 31, 7.0f);
  clai_context_free(ctx); /* c is freed by it */
}

#define T(f) cmocka_unit_test_setup_teardown(f, clait_setup, clait_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_fresh_context),
      T(test_same_size_cycles),
      T(test_size_class_reuse),
      T(test_bytes_accounting),
      T(test_reuse_while_queued),
      CLAIT_TIMED(test_pool_limit),
      T(test_too_large),
      CLAIT_TIMED(test_context_free_releases_tensors),
  };
  return CLAIT_MAIN("pool", tests, 1);
}
