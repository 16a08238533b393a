/* test-tune - clai_tune: the search checks every candidate of a family's parameter space against a double
 * reference (a candidate that computed wrongly would fail the call), stores the winner in the cache
 * directory, and a later context on the same device uses it ("(tuned)" in clai_matmul_describe) and still
 * computes correctly. A damaged or invalid entry and CLAI_TUNE=0 leave the built-in defaults. Runs the
 * search for the packed family (POCL's default) and, forced, for the gpu and generic families, so every
 * parameter set that tuning can select is exercised on this machine. */
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char base[1024];
static int counter;

static void fresh_dir(char *dir, size_t cap) {
  snprintf(dir, cap, "%s/t%d", base, counter++);
  assert_int_equal(mkdir(dir, 0700), 0);
}

static clai_context *open_ctx(const char *dir) {
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.cache_dir = dir;
  p.cache = 1;
  char err[4096];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, &p, err, sizeof err);
  if (st != CLAI_OK) fail_msg("init: %s: %s", clai_status_name(st), err);
  return ctx;
}

/* 512 x 256 x 256: M large enough that the packed family uses its configured work-group (a short M groups its
 * panels otherwise, see lib/op-matmul.c), and a product too large for packed.direct's default, which reads
 * A and B in place without k-blocks. */
static void describe(clai_context *ctx, char *buf, size_t cap) {
  const int64_t sa[2] = {512, 256}, sb[2] = {256, 256}, sc[2] = {512, 256};
  clai_tensor *a, *b, *c;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &a, CLAI_DTYPE_F32, 2, sa));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &b, CLAI_DTYPE_F32, 2, sb));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 2, sc));
  CLAIT_OK(ctx, clai_matmul_describe(ctx, c, a, 0, b, 0, buf, cap));
  clai_tensor_free(a), clai_tensor_free(b), clai_tensor_free(c);
}

/* A 37 x 45 x 131 product with bias and relu against a double reference. */
static void check_product(clai_context *ctx) {
  enum { M = 37, N = 45, K = 131 };
  static float a[M * K], b[K * N], bias[N], c[M * N];
  clait_rng r = {42};
  for (int i = 0; i < M * K; i++) a[i] = (float)clait_uniform(&r, -1, 1);
  for (int i = 0; i < K * N; i++) b[i] = (float)clait_uniform(&r, -1, 1);
  for (int i = 0; i < N; i++) bias[i] = (float)clait_uniform(&r, -1, 1);
  const int64_t sa[2] = {M, K}, sb[2] = {K, N}, sc[2] = {M, N}, sn[1] = {N};
  clai_tensor *ta, *tb, *tc, *tbias;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &ta, CLAI_DTYPE_F32, 2, sa));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tb, CLAI_DTYPE_F32, 2, sb));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tc, CLAI_DTYPE_F32, 2, sc));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tbias, CLAI_DTYPE_F32, 1, sn));
  CLAIT_OK(ctx, clai_tensor_write(ta, a, sizeof a));
  CLAIT_OK(ctx, clai_tensor_write(tb, b, sizeof b));
  CLAIT_OK(ctx, clai_tensor_write(tbias, bias, sizeof bias));
  clai_matmul_epilogue ep = {tbias, CLAI_ACT_RELU};
  CLAIT_OK(ctx, clai_matmul_ex(ctx, tc, ta, 0, tb, 0, 1.0f, 0.0f, &ep));
  CLAIT_OK(ctx, clai_tensor_read(tc, c, sizeof c));
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double s = bias[n];
      for (int k = 0; k < K; k++) s += (double)a[m * K + k] * b[k * N + n];
      s = s > 0 ? s : 0;
      if (!(fabs(c[m * N + n] - s) <= 1e-4 + 1e-4 * fabs(s))) fail_msg("(%d, %d): %g, expected %g", m, n, c[m * N + n], s);
    }
  clai_tensor_free(ta), clai_tensor_free(tb), clai_tensor_free(tc), clai_tensor_free(tbias);
}

static int lines, wide_tiles;
static void count_line(void *user, const char *line) {
  (void)user;
  lines++;
  if (strncmp(line, "packed ", 7) == 0 && strstr(line, " cn=1 ") == NULL) wide_tiles++;
}

/* Tunes the family CLAI_GEMM names (or the default) into a fresh directory and checks the round trip. */
static void tune_family(const char *family, const char *prefix) {
  if (family != NULL) setenv("CLAI_GEMM", family, 1);
  char dir[1200];
  fresh_dir(dir, sizeof dir);
  clai_context *ctx = open_ctx(dir);
  char before[256], after[256], report[512];
  describe(ctx, before, sizeof before);
  assert_null(strstr(before, "(tuned)"));
  static const int64_t shapes[][3] = {{64, 48, 40}, {5, 96, 64}};
  clai_tune_params p;
  memset(&p, 0, sizeof p);
  p.shapes = shapes;
  p.nshapes = 2;
  p.rounds = 1;
  p.progress = count_line;
  /* small mode and sanitizers: two candidates (max_candidates: the start point and one change), each a build,
   * six checked products and timings, ~25 s apiece on Oclgrind */
  const int limited = clait_small() || clait_sanitized();
  p.max_candidates = limited ? 2 : 0;
  lines = wide_tiles = 0;
  CLAIT_OK(ctx, clai_tune(ctx, &p, report, sizeof report));
  assert_true(lines >= (limited ? 2 : 4)); /* the start point and at least one value of each parameter */
  if (limited && strstr(report, "; 2 candidates)") == NULL) fail_msg("max_candidates 2: %s", report);
  /* the packed search tries tiles of several vectors per row (rm x cn * vw) where the CPU has the 32
   * registers for them (AVX-512), and only there: elsewhere it is the search it was */
  if (strcmp(prefix, "packed") == 0 && !limited) {
    const int wide = ctx->caps.is_cpu && clai__cpu_vector_regs(&ctx->caps) >= 32;
    const int from_default = strstr(before, " cn=1 ") == NULL; /* the defaults are themselves wide */
    if (wide ? wide_tiles < 5 : wide_tiles != 0 && !from_default)
      fail_msg("%d candidates with cn > 1 tried (the device has %d vector registers)", wide_tiles,
               clai__cpu_vector_regs(&ctx->caps));
  }
  assert_non_null(strstr(report, prefix));
  /* the tuning context keeps its own kernels, which still work */
  describe(ctx, after, sizeof after);
  assert_string_equal(before, after);
  check_product(ctx);
  clai_context_free(ctx);

  ctx = open_ctx(dir);
  describe(ctx, after, sizeof after);
  /* the family's tuned kernels, or CLBlast where the search measured it faster for this shape class */
  if (strstr(after, "(tuned)") == NULL ||
      (strncmp(after, prefix, strlen(prefix)) != 0 && strncmp(after, "clblast", 7) != 0))
    fail_msg("after tuning: \"%s\"", after);
  check_product(ctx);
  clai_context_free(ctx);

  setenv("CLAI_TUNE", "0", 1);
  ctx = open_ctx(dir);
  describe(ctx, after, sizeof after);
  assert_null(strstr(after, "(tuned)"));
  clai_context_free(ctx);
  unsetenv("CLAI_TUNE");
  unsetenv("CLAI_GEMM");
}

/* In small mode (slow devices: every candidate is a build and a few checked products) only the device's own
 * family is tuned; the others' kernels are still checked by tests/matmul-*.sh there. Likewise under the
 * sanitizers (CLAI_TEST_SANITIZED): the search's host code is the same for every family, and there each
 * candidate's build is several times slower (the three searches took 733 s of a CI rehearsal, after which
 * LeakSanitizer's tracer crashed at exit scanning the hundreds of kernel modules POCL had loaded). There the
 * search also stops after two candidates (tune_family): the own family's whole search took 252 s under the
 * sanitizers and 111 s on Oclgrind in a CI rehearsal; four candidates still took 118 s on Oclgrind (on a
 * shared machine). */
static int skip_in_small_mode(const char *family) {
  if (!clait_small() && !clait_sanitized()) return 0;
  unsetenv("CLAI_GEMM"); /* the device's own family, even after a failed test that forced one */
  char dir[1200], own[256];
  fresh_dir(dir, sizeof dir);
  clai_context *ctx = open_ctx(dir);
  describe(ctx, own, sizeof own);
  clai_context_free(ctx);
  if (strncmp(own, family, strlen(family)) == 0) return 0;
  print_message("# small mode or sanitizers: tuning only the device's own matmul family (%s), not %s\n", own,
                family);
  return 1;
}

static void test_tune_packed(void **state) {
  (void)state;
  if (!skip_in_small_mode("packed")) tune_family("packed", "packed");
}
static void test_tune_gpu(void **state) {
  (void)state;
  if (!skip_in_small_mode("gpu")) tune_family("gpu", "gpu");
}
static void test_tune_generic(void **state) {
  (void)state;
  if (!skip_in_small_mode("generic")) tune_family("generic", "generic");
}

/* Stored values are checked before use: a damaged entry, a value out of range, an unknown name. The packed
 * family is forced (CLAI_GEMM), so the valid entry below is one the context's family reads on any device. */
static void test_bad_entries(void **state) {
  (void)state;
  setenv("CLAI_GEMM", "packed", 1);
  char dir[1200];
  fresh_dir(dir, sizeof dir);
  clai_context *ctx = open_ctx(dir);
  char *key = clai__device_key(ctx, "matmul tuning", 0);
  assert_non_null(key);
  static const char *const bodies[] = {"packed.rm=99\n", "packed.rm=6\nwarp.size=32\n", "packed.kb=abc\n",
                                       "gpu.kb=100000\n", "packed.kb=250\n", "packed.direct=-1\n"};
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    assert_int_equal(clai__cache_store(dir, key, (const unsigned char *)bodies[i], strlen(bodies[i])), 0);
    clai_context *c2 = open_ctx(dir);
    char buf[256];
    describe(c2, buf, sizeof buf);
    if (strstr(buf, "(tuned)") != NULL) fail_msg("entry \"%s\" was used: %s", bodies[i], buf);
    clai_context_stats s;
    CLAIT_OK(c2, clai_context_stats_get(c2, &s));
    assert_true(s.cache_rejected >= 1);
    check_product(c2);
    clai_context_free(c2);
  }
  /* a valid one is used */
  const char *good = "packed.kb=128\npacked.lx=4\npacked.ly=4\n";
  assert_int_equal(clai__cache_store(dir, key, (const unsigned char *)good, strlen(good)), 0);
  clai_context *c2 = open_ctx(dir);
  char buf[256];
  describe(c2, buf, sizeof buf);
  if (strstr(buf, "kb=128") == NULL || strstr(buf, "local=4x4") == NULL || strstr(buf, "(tuned)") == NULL)
    fail_msg("valid entry not used: %s", buf);
  check_product(c2);
  clai_context_free(c2);
  free(key);
  clai_context_free(ctx);
  unsetenv("CLAI_GEMM");
}

/* CLAI_GEMM_PARAMS: a text that does not parse stops clai_context_init with a message naming the variable
 * and the item; a value out of range fails each device, saying why; a valid one is what the kernels use. */
static void test_params_env(void **state) {
  (void)state;
  setenv("CLAI_GEMM", "packed", 1);
  char dir[1200], err[4096];
  fresh_dir(dir, sizeof dir);
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.cache_dir = dir;
  p.cache = 1;
  static const char *const bad_syntax[] = {"packed.rm=oops", "packed.nosuch=2", "packed.rm=6,,rm"};
  for (size_t i = 0; i < sizeof bad_syntax / sizeof bad_syntax[0]; i++) {
    setenv("CLAI_GEMM_PARAMS", bad_syntax[i], 1);
    clai_context *ctx = NULL;
    assert_int_equal(clai_context_init_ex(&ctx, &p, err, sizeof err), CLAI_E_INVALID_ARG);
    assert_null(ctx);
    if (strstr(err, "CLAI_GEMM_PARAMS") == NULL || strstr(err, "is not NAME=INTEGER") == NULL)
      fail_msg("%s: \"%s\"", bad_syntax[i], err);
  }
  setenv("CLAI_GEMM_PARAMS", "packed.rm=6,packed.cn=5", 1);
  clai_context *ctx = NULL;
  assert_int_not_equal(clai_context_init_ex(&ctx, &p, err, sizeof err), CLAI_OK);
  assert_null(ctx);
  if (strstr(err, "CLAI_GEMM_PARAMS") == NULL || strstr(err, "cn=5") == NULL || strstr(err, "out of range") == NULL)
    fail_msg("cn=5: \"%s\"", err);
  /* the skinny kernel's rows have a range of their own */
  setenv("CLAI_GEMM_PARAMS", "packed.srm=17", 1);
  assert_int_not_equal(clai_context_init_ex(&ctx, &p, err, sizeof err), CLAI_OK);
  assert_null(ctx);
  if (strstr(err, "srm=17") == NULL || strstr(err, "out of range") == NULL) fail_msg("srm=17: \"%s\"", err);
  /* values are judged by their field's range, not by the syntax: packed.direct takes up to 2^24 */
  setenv("CLAI_GEMM_PARAMS", "packed.direct=16777217", 1);
  assert_int_not_equal(clai_context_init_ex(&ctx, &p, err, sizeof err), CLAI_OK);
  assert_null(ctx);
  if (strstr(err, "direct=16777217") == NULL || strstr(err, "out of range") == NULL)
    fail_msg("direct=16777217: \"%s\"", err);
  setenv("CLAI_GEMM_PARAMS", "packed.direct=16777216", 1);
  ctx = open_ctx(dir);
  check_product(ctx);
  clai_context_free(ctx);
  ctx = NULL;
  setenv("CLAI_GEMM_PARAMS", "packed.rm=7 packed.cn=3,packed.kb=64\npacked.uk=2", 1);
  ctx = open_ctx(dir);
  char buf[256];
  describe(ctx, buf, sizeof buf);
  if (strstr(buf, "rm=7 ") == NULL || strstr(buf, "cn=3 ") == NULL || strstr(buf, "kb=64 ") == NULL ||
      strstr(buf, "uk=2 ") == NULL)
    fail_msg("CLAI_GEMM_PARAMS not used: %s", buf);
  check_product(ctx);
  clai_context_free(ctx);
  unsetenv("CLAI_GEMM_PARAMS");
  unsetenv("CLAI_GEMM");
}

/* The built-in packed defaults follow what the device reports: AVX2-class CPUs (8 floats per vector) keep
 * the 6 x 16 tile, AVX-512 ones (16 floats, 32 registers) get 14 x 32 in work-groups of 2 x 4, skinny tiles
 * of 8 rows, no k unrolling and k-blocks of 4096 (one pass up to K = 4096), shrunk when the reported cache
 * per compute unit is small; GPUs and llvmpipe are not touched. Every default is valid and its tile fits the
 * registers. */
static void test_defaults(void **state) {
  (void)state;
  static const struct {
    int is_cpu, lanes_cpu, vec_float, cus;
    uint64_t cache;
    int rm, cn, kb, uk, lx, ly, srm;
  } cases[] = {
      {1, 0, 8, 2, 32u << 20, 6, 1, 256, 4, 2, 8, 6},    /* AVX2 (POCL "pthread-haswell") */
      {1, 0, 8, 2, 0, 6, 1, 256, 4, 2, 8, 6},            /* no cache reported */
      {1, 0, 16, 2, 32u << 20, 14, 2, 4096, 1, 2, 4, 8}, /* AVX-512, 2 cores, 32 MiB: no k unrolling */
      {1, 0, 16, 4, 2u << 20, 14, 2, 128, 1, 2, 4, 8},   /* AVX-512, 512 KiB per compute unit */
      {1, 0, 16, 8, 1u << 20, 14, 2, 64, 1, 2, 4, 8},    /* a tiny cache: never below 64 */
      {1, 0, 16, 2, 0, 14, 2, 4096, 1, 2, 4, 8},         /* AVX-512, no cache reported */
      {1, 1, 16, 2, 32u << 20, 6, 1, 256, 4, 2, 8, 6},   /* llvmpipe: the generic family; packed values as they were */
      {0, 0, 1, 132, 50u << 20, 6, 1, 256, 4, 2, 8, 6},  /* a GPU */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clai__devcaps caps;
    memset(&caps, 0, sizeof caps);
    caps.is_cpu = cases[i].is_cpu, caps.lanes_cpu = cases[i].lanes_cpu, caps.vec_float = cases[i].vec_float;
    caps.compute_units = cases[i].cus, caps.cache_bytes = cases[i].cache;
    caps.max_wg_size = 4096, caps.local_mem = 65536;
    clai__gemm_config cfg;
    clai__gemm_config_default(&caps, &cfg);
    char why[256];
    if (!clai__gemm_config_valid(&cfg, &caps, why, sizeof why)) fail_msg("case %zu: %s", i, why);
    if (cfg.packed.rm != cases[i].rm || cfg.packed.cn != cases[i].cn || cfg.packed.kb != cases[i].kb ||
        cfg.packed.vw != 16 || cfg.packed.uk != cases[i].uk || cfg.packed.lx != cases[i].lx ||
        cfg.packed.ly != cases[i].ly || cfg.packed.srm != cases[i].srm)
      fail_msg("case %zu: rm=%d cn=%d kb=%d vw=%d uk=%d local=%dx%d srm=%d", i, cfg.packed.rm, cfg.packed.cn,
               cfg.packed.kb, cfg.packed.vw, cfg.packed.uk, cfg.packed.lx, cfg.packed.ly, cfg.packed.srm);
    if (caps.is_cpu && !clai__packed_tile_fits(&caps, cfg.packed.rm, cfg.packed.cn, cfg.packed.vw))
      fail_msg("case %zu: the default tile does not fit the registers", i);
  }
}

static void test_errors(void **state) {
  (void)state;
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.cache = -1;
  clai_context *ctx = NULL;
  char err[4096];
  assert_int_equal(clai_context_init_ex(&ctx, &p, err, sizeof err), CLAI_OK);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "cache", clai_tune(ctx, NULL, NULL, 0));
  clai_context_free(ctx);
  char dir[1200];
  fresh_dir(dir, sizeof dir);
  ctx = open_ctx(dir);
  static const int64_t bad[][3] = {{64, 0, 64}};
  clai_tune_params tp;
  memset(&tp, 0, sizeof tp);
  tp.shapes = bad;
  tp.nshapes = 1;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "shape 0", clai_tune(ctx, &tp, NULL, 0));
  tp.nshapes = 0;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "nshapes", clai_tune(ctx, &tp, NULL, 0));
  assert_int_equal(clai_tune(NULL, NULL, NULL, 0), CLAI_E_INVALID_ARG);
  memset(&tp, 0, sizeof tp);
  tp.max_candidates = -1;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "max_candidates is -1", clai_tune(ctx, &tp, NULL, 0));
  /* max_candidates 1: the current values alone are checked, timed and stored (not in small mode or under the
   * sanitizers, where the searches of test_tune_* stop early too) */
  if (!clait_small() && !clait_sanitized()) {
    static const int64_t small[][3] = {{64, 48, 40}};
    tp.shapes = small;
    tp.nshapes = 1;
    tp.max_candidates = 1;
    char report[512];
    CLAIT_OK(ctx, clai_tune(ctx, &tp, report, sizeof report));
    if (strstr(report, "; 1 candidate)") == NULL) fail_msg("max_candidates 1: %s", report);
  }
  check_product(ctx); /* still usable */
  clai_context_free(ctx);
}

int main(void) {
  const char *tmp = getenv("CLAI_TEST_TMP");
  snprintf(base, sizeof base, "%s/tmp-tune-%d", tmp != NULL ? tmp : "/tmp", (int)getpid());
  if (mkdir(base, 0700) != 0) {
    perror(base);
    return 1;
  }
  unsetenv("CLAI_GEMM");
  unsetenv("CLAI_GEMM_PARAMS"); /* the tests set it themselves */
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(test_defaults),
      CLAIT_TIMED(test_errors),
      CLAIT_TIMED(test_bad_entries),
      CLAIT_TIMED(test_params_env),
      CLAIT_TIMED(test_tune_packed),
      CLAIT_TIMED(test_tune_gpu),
      CLAIT_TIMED(test_tune_generic),
  };
  return CLAIT_MAIN("tune", tests, 1);
}
