/* test-profile - per-kernel device times (clai_context_params.profile): a context with profiling on counts
 * every launch of every kernel it ran, reports them most time first, keeps counting correctly past the
 * internal batch of pending events, forgets them on clai_profile_reset, and says clearly when profiling is
 * off or the arguments are bad (the context stays usable). The figures themselves are the device's; the
 * test checks their consistency (non-negative, ordered), not their size. */
#include "testutil.h"

static clai_context *ctx_profiled(int profile) {
  char err[4096];
  clai_context *ctx = NULL;
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.profile = profile;
  clai_status st = clai_context_init_ex(&ctx, &p, err, sizeof err);
  if (st != CLAI_OK) fail_msg("clai_context_init: %s: %s", clai_status_name(st), err);
  return ctx;
}

static const clai_kernel_profile *find(const clai_kernel_profile *kp, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(kp[i].kernel, name) == 0) return &kp[i];
  return NULL;
}

static void test_counts(void **state) {
  (void)state;
  clai_context *ctx = ctx_profiled(1);
  const int64_t n = 1000, sq[2] = {37, 37};
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  clai_tensor *m = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sq), *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sq);
  CLAIT_OK(ctx, clai_fill(ctx, a, 1.0));
  CLAIT_OK(ctx, clai_fill(ctx, m, 0.5));
  CLAIT_OK(ctx, clai_sync(ctx));
  clai_profile_reset(ctx); /* start from nothing: only what follows is counted */
  assert_int_equal(clai_profile_get(ctx, NULL, 0), 0);
  /* more launches of one kernel than the batch of pending events (256), so batches are resolved on the way */
  const int adds = 600;
  for (int i = 0; i < adds; i++) CLAIT_OK(ctx, clai_binary(ctx, CLAI_ADD, b, a, a));
  CLAIT_OK(ctx, clai_matmul(ctx, c, m, 0, m, 0, 1.0f, 0.0f));
  clai_kernel_profile kp[64];
  int nk = clai_profile_get(ctx, kp, 64);
  assert_true(nk >= 2 && nk <= 64);
  uint64_t total = 0;
  for (int i = 0; i < nk; i++) {
    assert_non_null(kp[i].kernel);
    assert_true(kp[i].launches > 0);
    assert_true(kp[i].seconds >= 0.0);
    if (i > 0) assert_true(kp[i - 1].seconds >= kp[i].seconds);
    total += kp[i].launches;
  }
  /* the adds are one kernel, launched once each; the matmul adds at least one launch of its own */
  uint64_t most = 0;
  for (int i = 0; i < nk; i++)
    if (kp[i].launches > most) most = kp[i].launches;
  assert_int_equal(most, adds);
  assert_true(total > (uint64_t)adds);
  /* cap smaller than the count: the count is still the total, only cap entries are written */
  clai_kernel_profile one[1] = {{NULL, 0, 0}};
  assert_int_equal(clai_profile_get(ctx, one, 1), nk);
  assert_non_null(find(kp, nk, one[0].kernel));
  /* the result is right (profiling changes nothing in what runs) */
  float v[1000];
  CLAIT_OK(ctx, clai_tensor_read(b, v, sizeof v));
  for (int i = 0; i < 1000; i++) assert_float_equal(v[i], 2.0f, 0.0f);
  clai_profile_reset(ctx);
  assert_int_equal(clai_profile_get(ctx, kp, 64), 0);
  clai_tensor_free(a), clai_tensor_free(b), clai_tensor_free(m), clai_tensor_free(c);
  clai_context_free(ctx); /* events of unread launches are released here */
}

static void test_free_with_pending(void **state) {
  (void)state;
  clai_context *ctx = ctx_profiled(1);
  const int64_t n = 4096;
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  for (int i = 0; i < 10; i++) CLAIT_OK(ctx, clai_fill(ctx, a, (double)i));
  clai_context_free(ctx); /* pending events and the tensor go with the context (ASan/LSan would object) */
}

static void test_off_and_bad_args(void **state) {
  (void)state;
  clai_context *ctx = ctx_profiled(-1); /* off whatever CLAI_PROFILE says */
  clai_kernel_profile kp[4];
  assert_int_equal(clai_profile_get(ctx, kp, 4), -1);
  assert_non_null(strstr(clai_errmsg(ctx), "profiling is off"));
  clai_profile_reset(ctx); /* a no-op */
  clai_context_free(ctx);
  assert_int_equal(clai_profile_get(NULL, kp, 4), -1);
  clai_profile_reset(NULL);

  ctx = ctx_profiled(1);
  assert_int_equal(clai_profile_get(ctx, NULL, 4), -1);
  assert_non_null(strstr(clai_errmsg(ctx), "clai_profile_get"));
  assert_int_equal(clai_profile_get(ctx, kp, -1), -1);
  const int64_t n = 8;
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &n);
  CLAIT_OK(ctx, clai_fill(ctx, a, 3.0)); /* still usable */
  assert_true(clai_profile_get(ctx, kp, 4) >= 1);
  clai_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(test_counts),
      CLAIT_TIMED(test_free_with_pending),
      CLAIT_TIMED(test_off_and_bad_args),
  };
  return CLAIT_MAIN("profile", tests, 1);
}
