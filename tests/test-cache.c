/* test-cache - the on-disk kernel binary cache: a cold start builds and writes one entry per program, a
 * warm start loads them all, and a corrupt, truncated, emptied or foreign entry is rejected and rebuilt
 * (never trusted, never a crash), and so is every one of thousands of random mutations of an entry that
 * leaves it other than one the cache could have written. An unwritable directory only costs speed; the
 * cache can be turned off.
 * These tests run with CLAI_CACHE_BINARIES=1, so that programs go through libclai's cache on every
 * implementation, POCL's CPU devices included; test_own_kernel_cache checks what happens there without it
 * (programs left to POCL's own kernel cache, nothing but the copy kernels written to libclai's).
 * test_program_info and test_first_launch_time check the per-program build times that `clai devices` and
 * the trainer print. test_share_claims and test_share_builds check compiling once for several processes
 * (clai_context_share_builds): the claims, a helper that runs nothing, a leader that computes.
 * What contexts do is asserted through clai_context_stats_get, never by timing; the mutations go straight
 * to the entry reader, clai__cache_load. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char base[1024];
static int counter;

/* A fresh, empty directory for one test. */
static void fresh_dir(char *dir, size_t cap) {
  snprintf(dir, cap, "%s/c%d", base, counter++);
  assert_int_equal(mkdir(dir, 0700), 0);
}

/* An eager context (every program at init), so the counts below cover all programs. */
static clai_context *open_ctx_mode(const char *dir, clai_context_stats *s, int eager) {
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.cache_dir = dir;
  p.cache = 1;
  p.eager = eager;
  char err[4096];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, &p, err, sizeof err);
  if (st != CLAI_OK) fail_msg("init: %s: %s", clai_status_name(st), err);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, s));
  assert_int_equal(s->programs, s->programs_built + s->programs_cached);
  return ctx;
}

/* Eager, except under the sanitizers: there a lazy context builds the copy program only (and the two more that
 * check_kernels needs, when it runs) - the same host code, where building every kernel of every program cold
 * under ASan took 23 minutes. The assertions after it hold for both. */
static clai_context *open_ctx(const char *dir, clai_context_stats *s) {
  return open_ctx_mode(dir, s, clait_sanitized() ? -1 : 1);
}

/* The kernels of a context loaded from the cache must work: a matmul and a unary op, checked. */
static void check_kernels(clai_context *ctx) {
  float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, -1, 2, 0.5f, 3}, c[4], e[6];
  int64_t sa[2] = {2, 3}, sb[2] = {3, 2}, sc[2] = {2, 2};
  clai_tensor *ta, *tb, *tc;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &ta, CLAI_DTYPE_F32, 2, sa));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tb, CLAI_DTYPE_F32, 2, sb));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &tc, CLAI_DTYPE_F32, 2, sc));
  CLAIT_OK(ctx, clai_tensor_write(ta, a, sizeof a));
  CLAIT_OK(ctx, clai_tensor_write(tb, b, sizeof b));
  CLAIT_OK(ctx, clai_matmul(ctx, tc, ta, 0, tb, 0, 1.0f, 0.0f));
  CLAIT_OK(ctx, clai_tensor_read(tc, c, sizeof c));
  const float want[4] = {1 * 1 + 2 * -1 + 3 * 0.5f, 1 * 0 + 2 * 2 + 3 * 3, 4 * 1 + 5 * -1 + 6 * 0.5f,
                         4 * 0 + 5 * 2 + 6 * 3};
  for (int i = 0; i < 4; i++) assert_float_equal(c[i], want[i], 1e-5);
  CLAIT_OK(ctx, clai_unary(ctx, CLAI_EXP, ta, ta));
  CLAIT_OK(ctx, clai_tensor_read(ta, e, sizeof e));
  for (int i = 0; i < 6; i++) assert_float_equal(e[i], expf(a[i]), 1e-5 * expf(a[i]));
  clai_tensor_free(ta);
  clai_tensor_free(tb);
  clai_tensor_free(tc);
}

/* The entries in dir (sorted names), at most CACHE_MAX (more than the programs libclai has). */
#define CACHE_MAX 64
static int entries(const char *dir, char names[][512]) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len > 6 && strcmp(e->d_name + len - 6, ".clbin") == 0 && n < CACHE_MAX)
      snprintf(names[n++], 512, "%s/%s", dir, e->d_name);
    else if (e->d_name[0] != '.')
      fail_msg("unexpected file %s in the cache (a temporary file left behind?)", e->d_name);
  }
  closedir(d);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (strcmp(names[i], names[j]) > 0) {
        char t[512];
        memcpy(t, names[i], 512);
        memcpy(names[i], names[j], 512);
        memcpy(names[j], t, 512);
      }
  return n;
}

static long file_size(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (long)st.st_size;
}

static void test_cold_then_warm(void **state) {
  (void)state;
  const int mode = clait_sanitized() ? -1 : 1; /* lazy under the sanitizers, as open_ctx */
  char dir[1100];
  fresh_dir(dir, sizeof dir);
  clai_context_stats s;
  clai_context *ctx = open_ctx_mode(dir, &s, mode);
  check_kernels(ctx);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
  assert_true(s.programs >= 3);
  assert_int_equal(s.programs_built, s.programs);
  assert_int_equal(s.programs_cached, 0);
  assert_int_equal(s.cache_writes, s.programs);
  assert_int_equal(s.cache_rejected, 0);
  assert_string_equal(clai_context_cache_dir(ctx), dir);
  clai_context_free(ctx);
  char names[CACHE_MAX][512];
  assert_int_equal(entries(dir, names), (int)s.programs);
  const uint32_t programs = s.programs;

  ctx = open_ctx_mode(dir, &s, mode);
  check_kernels(ctx);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
  assert_int_equal(s.programs, programs);
  assert_int_equal(s.programs_cached, s.programs);
  assert_int_equal(s.programs_built, 0);
  assert_int_equal(s.cache_writes, 0);
  assert_int_equal(s.cache_rejected, 0);
  clai_context_free(ctx);
}

/* A lazy context builds the copy program at init and each other program when an op first needs it; the
 * cache fills as programs are built, and a later lazy context loads them from it on first use. */
static void test_lazy(void **state) {
  (void)state;
  char dir[1100];
  fresh_dir(dir, sizeof dir);
  clai_context_stats s;
  clai_context *ctx = open_ctx_mode(dir, &s, -1);
  assert_int_equal(s.programs, 1);
  assert_int_equal(s.programs_built, 1);
  check_kernels(ctx); /* matmul + unary: two more programs */
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
  assert_int_equal(s.programs, 3);
  assert_int_equal(s.programs_built, 3);
  assert_int_equal(s.cache_writes, 3);
  clai_context_free(ctx);
  char names[CACHE_MAX][512];
  assert_int_equal(entries(dir, names), 3);

  ctx = open_ctx_mode(dir, &s, -1);
  assert_int_equal(s.programs, 1);
  assert_int_equal(s.programs_cached, 1);
  check_kernels(ctx);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
  assert_int_equal(s.programs_cached, 3);
  assert_int_equal(s.programs_built, 0);
  clai_context_free(ctx);

  /* CLAI_EAGER=1 makes a context that leaves the choice to the environment eager. (Not under the sanitizers,
   * where building every program cold is most of an hour; the plain runs check it.) */
  if (clait_sanitized()) return;
  setenv("CLAI_EAGER", "1", 1);
  ctx = open_ctx_mode(dir, &s, 0);
  unsetenv("CLAI_EAGER");
  assert_true(s.programs >= 3); /* every program the device uses, the ones check_kernels never needed too */
  assert_int_equal(s.programs_cached, 3);
  assert_int_equal(s.programs_built, s.programs - 3);
  check_kernels(ctx);
  clai_context_free(ctx);
}

typedef enum damage { FLIP_PAYLOAD, FLIP_HEADER, TRUNCATE_HALF, TRUNCATE_HEADER, EMPTY, APPEND, FOREIGN } damage;

static void damage_entry(char names[][512], int n, damage how) {
  const char *path = names[0];
  long size = file_size(path);
  if (how == FOREIGN) { /* another program's entry under this one's name */
    assert_true(n >= 2);
    FILE *in = fopen(names[1], "rb"), *out = fopen(path, "wb");
    assert_non_null(in);
    assert_non_null(out);
    int c;
    while ((c = fgetc(in)) != EOF) fputc(c, out);
    fclose(in);
    fclose(out);
    return;
  }
  if (how == TRUNCATE_HALF || how == TRUNCATE_HEADER || how == EMPTY) {
    long keep = how == TRUNCATE_HALF ? size / 2 : how == TRUNCATE_HEADER ? 13 : 0;
    assert_int_equal(truncate(path, keep), 0);
    return;
  }
  FILE *f = fopen(path, how == APPEND ? "ab" : "r+b");
  assert_non_null(f);
  if (how == APPEND) {
    fputs("trailing garbage", f);
  } else {
    long at = how == FLIP_HEADER ? 30 : size / 2 + 7;
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x5a, f);
  }
  fclose(f);
}

static void test_damaged_entries(void **state) {
  (void)state;
  const damage kinds[] = {FLIP_PAYLOAD, FLIP_HEADER, TRUNCATE_HALF, TRUNCATE_HEADER, EMPTY, APPEND, FOREIGN};
  const int mode = clait_sanitized() ? -1 : 1; /* lazy under the sanitizers, as open_ctx */
  char dir[1100];
  fresh_dir(dir, sizeof dir);
  clai_context_stats s;
  clai_context *ctx = open_ctx_mode(dir, &s, mode); /* populate */
  check_kernels(ctx);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
  clai_context_free(ctx);
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    char names[CACHE_MAX][512];
    int n = entries(dir, names);
    assert_int_equal(n, (int)s.programs);
    damage_entry(names, n, kinds[k]);
    ctx = open_ctx_mode(dir, &s, mode);
    check_kernels(ctx); /* a lazy context loads (and rejects) the entry here if not at init */
    CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
    if (s.cache_rejected != 1 || s.programs_built != 1 || s.cache_writes != 1)
      fail_msg("damage %d: rejected %u, built %u, written %u (want 1, 1, 1)", (int)kinds[k], s.cache_rejected,
               s.programs_built, s.cache_writes);
    assert_int_equal(s.programs_cached, s.programs - 1);
    clai_context_free(ctx);
    /* The rebuilt entry replaced the damaged one: the next start is warm again. */
    ctx = open_ctx_mode(dir, &s, mode);
    check_kernels(ctx);
    CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
    assert_int_equal(s.programs_cached, s.programs);
    assert_int_equal(s.cache_rejected, 0);
    clai_context_free(ctx);
  }
}

/* Random mutations of a cache entry, read back with clai__cache_load (in-process, thousands per run: see
 * CLAI_TEST_FUZZ_ITERS). The payload checksum is recomputed after 7 in 8 mutations, so that the header
 * checks are reached with a matching checksum. An entry must load exactly when it is still one that
 * clai__cache_store could have written for the key (magic, the key's two hashes, a length equal to what
 * follows the header, the payload's checksum), and then give exactly its payload; anything else is -1
 * with nothing returned. */
static void test_entry_fuzz(void **state) {
  (void)state;
  /* In /dev/shm where there is one: rewriting a file thousands of times takes seconds on a slow disk. */
  char dir[1100];
  snprintf(dir, sizeof dir, "/dev/shm/clai-cache-fuzz.XXXXXX");
  const int in_shm = access("/dev/shm", W_OK) == 0 && mkdtemp(dir) != NULL;
  if (!in_shm) fresh_dir(dir, sizeof dir);
  const char *key = "libclai fuzz\nprogram fuzz\noptions -DX=1\n";
  unsigned char payload[301];
  clait_rng rng = {0xcac4eULL};
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (unsigned char)clait_next(&rng);
  assert_int_equal(clai__cache_store(dir, key, payload, sizeof payload), 0);
  char *path = clai__cache_path(dir, key);
  assert_non_null(path);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  unsigned char orig[40 + sizeof payload + 1], buf[sizeof orig + 64];
  const size_t len = fread(orig, 1, sizeof orig, f);
  fclose(f);
  assert_int_equal(len, 40 + sizeof payload);
  /* magic 8, key hash 8, key hash 8, payload length 8, payload checksum 8 (cache.c). */
  const clait_layout lay = {{0, 8, 16, 24, 32, 40}, {8, 8, 8, 8, 8, 4}, 6};
  const char *s = getenv("CLAI_TEST_FUZZ_ITERS");
  const int iters = s != NULL && atoi(s) > 0 ? atoi(s) : 3000;
  int loaded = 0, rejected = 0;
  for (int it = 0; it < iters; it++) {
    size_t n = len;
    memcpy(buf, orig, len);
    clait_mutate(&rng, buf, &n, sizeof buf, &lay);
    uint64_t field[5] = {0};
    if (n >= 40) {
      if (clait_next(&rng) % 8 != 0) {
        uint64_t h = clai__hash64(buf + 40, n - 40, 3);
        for (int i = 0; i < 8; i++) buf[32 + i] = (unsigned char)(h >> (8 * i));
      }
      for (int k = 0; k < 5; k++)
        for (int i = 7; i >= 0; i--) field[k] = field[k] << 8 | buf[8 * k + i];
    }
    /* Valid: what cache.c's header says, read independently of cache.c. */
    const int valid = n > 40 && memcmp(buf, orig, 24) == 0 && field[3] == n - 40 &&
                      field[4] == clai__hash64(buf + 40, n - 40, 3);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    unsigned char *data = (unsigned char *)&rng; /* any non-NULL value: the call must overwrite it */
    size_t got = 12345;
    int rc = clai__cache_load(dir, key, &data, &got);
    if (rc == 1) {
      if (!valid) fail_msg("mutation %d: a damaged entry of %zu bytes was loaded", it, n);
      assert_int_equal(got, n - 40);
      assert_memory_equal(data, buf + 40, got);
      free(data);
      loaded++;
    } else {
      if (rc != -1) fail_msg("mutation %d: clai__cache_load returned %d for a present entry", it, rc);
      if (valid) fail_msg("mutation %d: a valid entry of %zu bytes was rejected", it, n);
      assert_null(data);
      assert_int_equal(got, 0);
      rejected++;
    }
  }
  print_message("# %d mutated entries: %d loaded (payload only, checksum right), %d rejected\n", iters, loaded,
                rejected);
  assert_true(rejected > iters / 2);
  if (in_shm) {
    unlink(path);
    rmdir(dir);
  }
  free(path);
}

static void test_unwritable_and_off(void **state) {
  (void)state;
  /* A directory below a regular file can never be created. */
  char file[1100], dir[1200];
  snprintf(file, sizeof file, "%s/plain-file", base);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  snprintf(dir, sizeof dir, "%s/sub", file);
  clai_context_stats s;
  clai_context *ctx = open_ctx(dir, &s);
  assert_int_equal(s.programs_built, s.programs);
  assert_int_equal(s.cache_writes, 0);
  check_kernels(ctx);
  clai_context_free(ctx);

  /* Off through params and through CLAI_CACHE=0. */
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.cache = -1;
  ctx = NULL;
  CLAIT_OK(ctx, clai_context_init(&ctx, &p));
  assert_null(clai_context_cache_dir(ctx));
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
  assert_int_equal(s.programs_cached, 0);
  assert_int_equal(s.cache_writes, 0);
  clai_context_free(ctx);
  setenv("CLAI_CACHE", "0", 1);
  ctx = NULL;
  CLAIT_OK(ctx, clai_context_init(&ctx, NULL));
  unsetenv("CLAI_CACHE");
  assert_null(clai_context_cache_dir(ctx));
  check_kernels(ctx);
  clai_context_free(ctx);
}

static void test_directory_resolution(void **state) {
  (void)state;
  char old[1100], xdg[1100], want[1200];
  const char *env = getenv("CLAI_CACHE_DIR");
  snprintf(old, sizeof old, "%s", env != NULL ? env : "");
  /* CLAI_CACHE_DIR wins over XDG_CACHE_HOME; without it, $XDG_CACHE_HOME/clai is used. */
  fresh_dir(xdg, sizeof xdg);
  setenv("XDG_CACHE_HOME", xdg, 1);
  setenv("CLAI_CACHE_DIR", xdg, 1);
  clai_context *ctx = NULL;
  CLAIT_OK(ctx, clai_context_init(&ctx, NULL));
  assert_string_equal(clai_context_cache_dir(ctx), xdg);
  clai_context_free(ctx);
  unsetenv("CLAI_CACHE_DIR");
  ctx = NULL;
  CLAIT_OK(ctx, clai_context_init(&ctx, NULL));
  snprintf(want, sizeof want, "%s/clai", xdg);
  assert_string_equal(clai_context_cache_dir(ctx), want);
  clai_context_free(ctx);
  char names[CACHE_MAX][512];
  assert_true(entries(want, names) >= 1); /* the directory was created and filled (lazy: the copy program) */
  unsetenv("XDG_CACHE_HOME");
  if (old[0]) setenv("CLAI_CACHE_DIR", old, 1);
}

/* Without CLAI_CACHE_BINARIES, a device whose implementation caches compiled kernels itself (POCL's CPU
 * devices, unless POCL_KERNEL_CACHE=0) builds every program but the copy kernels from source, cold or warm,
 * and writes only the copy kernels' entry into libclai's cache; any other device keeps using libclai's
 * cache for every program. */
static void test_own_kernel_cache(void **state) {
  (void)state;
  unsetenv("CLAI_CACHE_BINARIES");
  char dir[1100];
  fresh_dir(dir, sizeof dir);
  char names[CACHE_MAX][512];
  clai_context_stats s;
  clai_context *ctx = open_ctx_mode(dir, &s, 1); /* eager: from source, without warm-ups, cheap */
  const int own = ctx->caps.own_kernel_cache;
  printf("# test_own_kernel_cache: the device %s\n",
         own ? "caches compiled kernels itself (POCL)" : "keeps libclai's binary cache");
  assert_true(s.programs >= 3);
  assert_int_equal(s.programs_built, s.programs);
  assert_int_equal(s.cache_writes, own ? 1 : s.programs);
  assert_int_equal(entries(dir, names), own ? 1 : (int)s.programs);
  check_kernels(ctx);
  clai_context_free(ctx);
  /* warm: from source again there (POCL's cache makes it cheap), from libclai's cache elsewhere */
  ctx = open_ctx_mode(dir, &s, 1);
  assert_int_equal(s.programs_built, own ? s.programs - 1 : 0);
  assert_int_equal(s.programs_cached, own ? 1 : s.programs);
  assert_int_equal(s.cache_rejected, 0);
  assert_int_equal(s.cache_writes, 0);
  clai_program_info info;
  for (int i = 0; i < clai_context_program_count(ctx); i++) {
    CLAIT_OK(ctx, clai_context_program_info(ctx, i, &info));
    if (info.state != 0) assert_int_equal(info.state, !own || strcmp(info.name, "copy") == 0 ? 2 : 1);
  }
  check_kernels(ctx);
  clai_context_free(ctx);
  if (own) {
    /* POCL_KERNEL_CACHE=0 turns POCL's cache off: then libclai's cache serves the programs */
    char sub[1200];
    snprintf(sub, sizeof sub, "%s/pocl-cache-off", dir);
    setenv("POCL_KERNEL_CACHE", "0", 1);
    ctx = open_ctx(sub, &s);
    unsetenv("POCL_KERNEL_CACHE");
    assert_int_equal(ctx->caps.own_kernel_cache, 0);
    check_kernels(ctx);
    CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
    assert_int_equal(s.cache_writes, s.programs);
    assert_int_equal(entries(sub, names), (int)s.programs);
    clai_context_free(ctx);
  }
  setenv("CLAI_CACHE_BINARIES", "1", 1);
}

/* clai_context_program_info: every program by name, which are built and how (in a lazy context, the copy
 * kernels at init and an op family's program at its first op), build times that add up to
 * clai_context_stats.build_seconds, and the errors of bad arguments. */
static void test_program_info(void **state) {
  (void)state;
  char dir[1100];
  fresh_dir(dir, sizeof dir);
  clai_context_stats s;
  for (int round = 0; round < 2; round++) { /* cold, then warm */
    clai_context *ctx = open_ctx_mode(dir, &s, -1);
    const int n = clai_context_program_count(ctx);
    assert_int_equal(n, CLAI__P_COUNT);
    assert_int_equal(clai_context_program_count(NULL), 0);
    clai_program_info info;
    for (int pass = 0; pass < 2; pass++) { /* at init, then after a matmul and a unary op */
      double sum = 0;
      int built = 0, copy = 0, core = 0;
      for (int i = 0; i < n; i++) {
        CLAIT_OK(ctx, clai_context_program_info(ctx, i, &info));
        assert_string_equal(info.name, clai__program_stem(i));
        assert_true(info.state >= 0 && info.state <= 2);
        assert_true(info.build_seconds >= 0);
        if (info.state == 0) continue;
        built++;
        sum += info.build_seconds;
        assert_true(info.build_seconds > 0);
        /* warm, a program comes from libclai's cache unless the implementation caches kernels itself (the
         * copy kernels always do) */
        assert_int_equal(info.state, round == 1 && (ctx->binaries || strcmp(info.name, "copy") == 0) ? 2 : 1);
        if (strcmp(info.name, "copy") == 0) copy = 1;
        if (strcmp(info.name, "core") == 0) core = 1; /* cl/core.cl: elementwise.cl and other small families */
      }
      CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
      assert_int_equal(built, (int)s.programs);
      assert_true(copy);
      assert_int_equal(core, pass);
      assert_true(fabs(sum - s.build_seconds) <= 1e-9 * (1 + sum));
      assert_true(s.build_seconds <= s.init_seconds || pass == 1);
      if (pass == 0) {
        assert_int_equal(s.programs, 1);
        check_kernels(ctx); /* the matmul family's program and core (the elementwise ops) */
      } else {
        assert_true(s.programs >= 2); /* 3, or 2 where CLAI_GEMM=clblast takes the product */
      }
    }
    /* bad arguments: CLAI_E_INVALID_ARG with a message naming the argument, *info unchanged */
    memset(&info, 0x5a, sizeof info);
    clai_program_info same;
    memcpy(&same, &info, sizeof same);
    assert_int_equal(clai_context_program_info(ctx, -1, &info), CLAI_E_INVALID_ARG);
    assert_non_null(strstr(clai_errmsg(ctx), "index -1 out of range"));
    assert_int_equal(clai_context_program_info(ctx, n, &info), CLAI_E_INVALID_ARG);
    assert_non_null(strstr(clai_errmsg(ctx), "out of range"));
    assert_memory_equal(&info, &same, sizeof info);
    assert_int_equal(clai_context_program_info(ctx, 0, NULL), CLAI_E_INVALID_ARG);
    assert_non_null(strstr(clai_errmsg(ctx), "info is NULL"));
    assert_int_equal(clai_context_program_info(NULL, 0, &info), CLAI_E_INVALID_ARG);
    check_kernels(ctx); /* still usable */
    clai_context_free(ctx);
  }
}

/* How many launch shapes each kernel has been compiled for (clai_context.kvariant), summed, and which kernel
 * changed since `before`. */
static int shapes_added(const clai_context *ctx, const unsigned char *before, int *which) {
  int added = 0;
  for (int k = 0; k < CLAI__K_COUNT; k++)
    if (ctx->klaunched[k] != before[k]) added += ctx->klaunched[k] - before[k], *which = k;
  return added;
}

/* POCL compiles a kernel again for each work-group size and for grids of 65535 work-items or more along a
 * dimension: each such first launch is timed apart (a new shape of the kernel), a repeat is not; and the
 * packed GEMM keeps one group size for every M, so a training loop's last, shorter batch compiles
 * nothing new. */
static void launch_shapes(clai_context *ctx) {
  unsigned char before[CLAI__K_COUNT];
  int which = -1;
  /* an i32 sum (one work-item per element) on a small grid, then on a big one, then the big one again */
  const int64_t sizes[3] = {5, 1 << 17, 1 << 17};
  for (int i = 0; i < 3; i++) {
    clai_tensor *t = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &sizes[i]);
    CLAIT_OK(ctx, clai_fill(ctx, t, 3.0));
    memcpy(before, ctx->klaunched, sizeof before);
    CLAIT_OK(ctx, clai_binary(ctx, CLAI_ADD, t, t, t));
    const int added = shapes_added(ctx, before, &which);
    if (added != (i < 2)) fail_msg("an i32 sum of %lld: %d new shapes", (long long)sizes[i], added);
    if (added) assert_int_equal(which, CLAI__K_BINARY_I32);
    int32_t *v = malloc((size_t)sizes[i] * sizeof *v);
    assert_non_null(v);
    CLAIT_OK(ctx, clai_tensor_read(t, v, (size_t)sizes[i] * sizeof *v));
    for (int64_t j = 0; j < sizes[i]; j++)
      if (v[j] != 6) fail_msg("an i32 sum of %lld: element %lld is %d, not 6", (long long)sizes[i], (long long)j, v[j]);
    free(v);
    clai_tensor_free(t);
  }
  if (ctx->gemm.family != CLAI__GEMM_PACKED) return;
  const struct clai__gemm_packed *g = &ctx->gemm.packed;
  /* A long M (more A panels than one group takes), then lx * ly panels, one fewer and lx + 1 (short M: the
   * group's work-items take more A panels, in the same group size), and lx * ly + 1: only the first
   * compiles anything. M up to packed.skinny takes the skinny kernel (B wider than a panel), a kernel of
   * its own: those sizes are left out. */
  const int64_t K = g->kb + 3, N = 40, rm = g->rm, lw = g->lx * g->ly, sk = g->skinny;
  const int64_t mt0 = 2 * lw + 1 > sk / rm + 2 ? 2 * lw + 1 : sk / rm + 2;
  /* the smallest regrouping: lx + 1 panels, or the fewest past packed.skinny (AVX2: 6-row tiles, M > 16) */
  const int64_t mt3 = g->lx + 1 > sk / rm + 2 ? g->lx + 1 : sk / rm + 2;
  const int64_t mts[5] = {mt0, lw, lw - 1, mt3, lw + 1};
  int64_t ms[5];
  for (int i = 0; i < 5; i++) ms[i] = rm * (mts[i] - 1) + 1 + (i % 2 ? rm / 2 : 0); /* inside the last panel */
  /* the same with the packed kernel (direct off) and with A and B read in place (clai_gemm_direct, which
   * takes the packed kernel's work-groups): neither compiles anything after the first */
  const int direct = ctx->gemm.packed.direct;
  for (int k = 0; k < 10; k++) {
    const int i = k % 5, kern = k < 5 ? CLAI__K_GEMM_PACKED : CLAI__K_GEMM_DIRECT;
    ctx->gemm.packed.direct = k < 5 ? 0 : 1 << 24;
    if (i > 0 && (mts[i] < 1 || ms[i] <= sk)) continue;
    const int64_t sa[2] = {ms[i], K}, sb[2] = {K, N}, sc[2] = {ms[i], N};
    clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sa), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sb),
                *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sc);
    CLAIT_OK(ctx, clai_fill(ctx, a, 0.5));
    CLAIT_OK(ctx, clai_fill(ctx, b, 0.25));
    memcpy(before, ctx->klaunched, sizeof before);
    CLAIT_OK(ctx, clai_matmul(ctx, c, a, 0, b, 0, 1.0f, 0.0f));
    const int added = shapes_added(ctx, before, &which);
    if (i == 0) assert_true(ctx->klaunched[kern] >= 1);
    else if (added != 0) fail_msg("M = %lld compiled %s in a new shape", (long long)ms[i], clai__kernel_name(which));
    float *v = malloc((size_t)(ms[i] * N) * sizeof *v);
    assert_non_null(v);
    CLAIT_OK(ctx, clai_tensor_read(c, v, (size_t)(ms[i] * N) * sizeof *v));
    for (int64_t j = 0; j < ms[i] * N; j++) assert_float_equal(v[j], 0.125 * (double)K, 1e-4 * K);
    free(v);
    clai_tensor_free(a), clai_tensor_free(b), clai_tensor_free(c);
  }
  ctx->gemm.packed.direct = direct;
}

/* Where the implementation compiles each kernel at its first launch and libclai leaves caching to it, that
 * compilation is build time: the first launch of a kernel of an already built program adds to the
 * program's build_seconds, and a second launch does not. Elsewhere the program's warm-up compiled it. */
static void test_first_launch_time(void **state) {
  (void)state;
  unsetenv("CLAI_CACHE_BINARIES");
  char dir[1100];
  fresh_dir(dir, sizeof dir);
  clai_context_stats s;
  clai_context *ctx = open_ctx_mode(dir, &s, -1);
  const int timed = !ctx->binaries;
  int ew = -1;
  for (int i = 0; i < clai_context_program_count(ctx); i++)
    if (strcmp(clai__program_stem(i), "core") == 0) ew = i; /* cl/elementwise.cl is part of core */
  assert_true(ew >= 0);
  float x[5] = {-2, -1, 0, 1, 2}, y[5];
  int64_t shape[1] = {5};
  clai_tensor *t;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 1, shape));
  CLAIT_OK(ctx, clai_tensor_write(t, x, sizeof x));
  CLAIT_OK(ctx, clai_unary(ctx, CLAI_EXP, t, t)); /* builds core (cl/elementwise.cl among its files) */
  clai_program_info a, b, c;
  CLAIT_OK(ctx, clai_context_program_info(ctx, ew, &a));
  assert_int_not_equal(a.state, 0);
  CLAIT_OK(ctx, clai_binary(ctx, CLAI_ADD, t, t, t)); /* another kernel of it: its first launch */
  CLAIT_OK(ctx, clai_context_program_info(ctx, ew, &b));
  CLAIT_OK(ctx, clai_binary(ctx, CLAI_ADD, t, t, t)); /* its second launch */
  CLAIT_OK(ctx, clai_context_program_info(ctx, ew, &c));
  CLAIT_OK(ctx, clai_tensor_read(t, y, sizeof y));
  for (int i = 0; i < 5; i++) assert_float_equal(y[i], 4 * expf(x[i]), 1e-5 * 4 * expf(x[i]));
  if (timed)
    assert_true(b.build_seconds > a.build_seconds);
  else
    assert_true(b.build_seconds == a.build_seconds);
  assert_true(c.build_seconds == b.build_seconds);
  CLAIT_OK(ctx, clai_context_stats_get(ctx, &s));
  printf("# test_first_launch_time: first launches %s; build %.3f s of which elementwise %.3f s\n",
         timed ? "timed as build time" : "compiled at the warm-up", s.build_seconds, c.build_seconds);
  clai_tensor_free(t);
  if (timed) launch_shapes(ctx);
  clai_context_free(ctx);
  setenv("CLAI_CACHE_BINARIES", "1", 1);
}

/* A kernel that does not compile gives CLAI_E_BUILD with the compiler's log, and the #line marker that
 * the build puts in front of every embedded file makes the log name that file and line. */
static void test_build_error_log(void **state) {
  (void)state;
  clai_context *ctx = clait_ctx();
  const char *bad = "#line 1 \"cl/broken.cl\"\n"
                    "__kernel void k(__global float *x) {\n"
                    "  x[0] = undefined_thing;\n"
                    "}\n";
  cl_program prog = (cl_program)1;
  assert_int_equal(clai__program_build(ctx, bad, "-cl-std=CL1.2", "cl/broken.cl", &prog), CLAI_E_BUILD);
  assert_null(prog);
  const char *m = clai_errmsg(ctx);
  assert_non_null(strstr(m, "building cl/broken.cl failed"));
  assert_non_null(strstr(m, "undefined_thing"));
  if (clait_oclgrind(ctx) && strstr(m, "broken.cl:2") == NULL) {
    /* Oclgrind 21.10's compiler ignores #line: its log names "input.cl" and the physical line (3). */
    printf("# test_build_error_log: the file and line check needs a compiler that honours #line; "
           "Oclgrind's log names input.cl:3\n");
    assert_non_null(strstr(m, "input.cl:3"));
  } else {
    assert_non_null(strstr(m, "broken.cl:2")); /* the file and line of the error */
  }
  /* The embedded sources carry the same markers: a program's source starts with cl/common.cl's. */
  char *src = clai__program_source(0);
  assert_non_null(src);
  const char *first = "#line 1 \"cl/common.cl\"\n";
  assert_true(strncmp(src, first, strlen(first)) == 0);
  char want[64];
  snprintf(want, sizeof want, "#line 1 \"cl/%s.cl\"", clai__program_stem(0));
  assert_non_null(strstr(src, want));
  free(src);
  check_kernels(ctx); /* still usable */
  clai_context_free(ctx);
}

/* ---- clai_context_share_builds --------------------------------------------------------------------- */

/* The claims themselves (share.c): a new claim is the taker's; released unfinished it is the next taker's,
 * finished it is done for everyone; another holder makes it busy, or makes a waiter wait (leaving its mark)
 * until the holder finishes or dies. */
static void test_share_claims(void **state) {
  (void)state;
  char dir[1100];
  fresh_dir(dir, sizeof dir);
  int fd = -1, fd2 = -1;
  assert_int_equal(clai__claim_take(dir, "a", 0, &fd), CLAI__CLAIM_MINE);
  assert_true(fd >= 0);
  assert_int_equal(clai__claim_take(dir, "a", 0, &fd2), CLAI__CLAIM_BUSY); /* another open file: held */
  assert_int_equal(fd2, -1);
  assert_false(clai__claim_wanted(dir, "a"));
  clai__claim_release(fd, 0); /* the compilation failed: not done */
  assert_int_equal(clai__claim_take(dir, "a", 1, &fd), CLAI__CLAIM_MINE);
  clai__claim_release(fd, 1);
  assert_int_equal(clai__claim_take(dir, "a", 0, &fd), CLAI__CLAIM_DONE);
  assert_int_equal(fd, -1);
  assert_int_equal(clai__claim_take(dir, "a", 1, &fd), CLAI__CLAIM_DONE);
  /* Held by another process that finishes it (then done), or that dies holding it (then the waiter's). The
   * child only takes the claim, sleeps and exits: no OpenCL after fork(). */
  for (int finish = 0; finish < 2; finish++) {
    const char *name = finish ? "finished" : "died";
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      int f = -1;
      const char mine = clai__claim_take(dir, name, 0, &f) == CLAI__CLAIM_MINE;
      if (write(p[1], &mine, 1) != 1) _exit(2);
      const struct timespec pause = {0, 300000000};
      nanosleep(&pause, NULL);
      if (finish) clai__claim_release(f, 1);
      _exit(0);
    }
    close(p[1]);
    char mine = 0;
    assert_int_equal(read(p[0], &mine, 1), 1);
    close(p[0]);
    assert_int_equal(mine, 1);
    assert_int_equal(clai__claim_take(dir, name, 0, &fd), CLAI__CLAIM_BUSY);
    const int c = clai__claim_take(dir, name, 1, &fd); /* waits for the child */
    assert_int_equal(c, finish ? CLAI__CLAIM_DONE : CLAI__CLAIM_MINE);
    if (c == CLAI__CLAIM_MINE) clai__claim_release(fd, 1);
    assert_true(clai__claim_wanted(dir, name));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  /* A directory that is not there: no claim, the caller compiles alone. */
  char gone[1200];
  snprintf(gone, sizeof gone, "%s/not-there", dir);
  assert_int_equal(clai__claim_take(gone, "a", 1, &fd), CLAI__CLAIM_NONE);
  assert_int_equal(fd, -1);
}

/* Whether dir holds a claim whose name contains `part`. */
static int has_claim(const char *dir, const char *part) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int found = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) found |= strstr(e->d_name, part) != NULL;
  closedir(d);
  return found;
}

/* A helper context builds and compiles what its ops need and runs nothing; a leader sharing its directory
 * computes right; bad arguments are refused with a message and leave the context usable. */
static void test_share_builds(void **state) {
  (void)state;
  unsetenv("CLAI_CACHE_BINARIES"); /* each implementation's own way: POCL's kernels then have claims */
  char dir[1100], share[1100], file[1200];
  fresh_dir(dir, sizeof dir);
  fresh_dir(share, sizeof share);
  clai_context_stats s;
  clai_context *lead = open_ctx_mode(dir, &s, -1);
  clai_context *help = open_ctx_mode(dir, &s, -2);
  assert_int_equal(s.programs, 0); /* eager -2: not even the copy kernels at init */
  assert_int_equal(clai_context_share_builds(NULL, share, CLAI_SHARE_LEAD), CLAI_E_INVALID_ARG);
  CLAIT_FAILS(lead, CLAI_E_INVALID_ARG, "role is 7", clai_context_share_builds(lead, share, (clai_share_role)7));
  snprintf(file, sizeof file, "%s/not-there", share);
  CLAIT_FAILS(lead, CLAI_E_INVALID_ARG, "not-there", clai_context_share_builds(lead, file, CLAI_SHARE_LEAD));
  snprintf(file, sizeof file, "%s/a-file", dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  CLAIT_FAILS(lead, CLAI_E_INVALID_ARG, "is not a directory", clai_context_share_builds(lead, file, CLAI_SHARE_LEAD));
  unlink(file);

  CLAIT_OK(help, clai_context_share_builds(help, share, CLAI_SHARE_HELP));
  float x[6] = {-1, 0, 0.5f, 1, 2, 3}, sentinel[6] = {7, 7, 7, 7, 7, 7}, y[6];
  int64_t shape[2] = {2, 3};
  clai_tensor *hx, *hy;
  CLAIT_OK(help, clai_tensor_init(help, &hx, CLAI_DTYPE_F32, 2, shape));
  CLAIT_OK(help, clai_tensor_init(help, &hy, CLAI_DTYPE_F32, 2, shape));
  CLAIT_OK(help, clai_tensor_write(hx, x, sizeof x));
  CLAIT_OK(help, clai_tensor_write(hy, sentinel, sizeof sentinel));
  CLAIT_OK(help, clai_unary(help, CLAI_EXP, hy, hx));
  CLAIT_OK(help, clai_fill(help, hy, 1.0));
  CLAIT_OK(help, clai_tensor_read(hy, y, sizeof y));
  for (int i = 0; i < 6; i++) assert_float_equal(y[i], 7.0f, 0.0f); /* nothing ran */
  CLAIT_FAILS(help, CLAI_E_UNSUPPORTED, "helper", clai_tune(help, NULL, NULL, 0));
  assert_true(has_claim(share, "-core")); /* the program's front end */
  if (!help->binaries) assert_true(has_claim(share, "-clai_unary")); /* the kernel's first launch shape */
  assert_false(has_claim(share, "-copy")); /* the fill: the copy kernels are every context's own */

  /* The leapfrog, where kernels have claims (POCL): a helper that compiled a kernel shape a leader waited
   * for (the claim's .want mark) leaves the next kernel shape to the leader, and claims the one after. A
   * second helper compiles the unary kernel again (its claim removed, a mark left) and then adds twice. */
  if (!help->binaries) {
    char unary[512] = "", path[1700];
    DIR *d = opendir(share);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
      if (strstr(e->d_name, "-clai_unary") != NULL && strstr(e->d_name, ".want") == NULL)
        snprintf(unary, sizeof unary, "%s", e->d_name);
    closedir(d);
    assert_true(unary[0] != '\0');
    snprintf(path, sizeof path, "%s/%s", share, unary);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/%s.want", share, unary);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    clai_context *help2 = open_ctx_mode(dir, &s, -2);
    CLAIT_OK(help2, clai_context_share_builds(help2, share, CLAI_SHARE_HELP));
    clai_tensor *x2, *y2;
    CLAIT_OK(help2, clai_tensor_init(help2, &x2, CLAI_DTYPE_F32, 2, shape));
    CLAIT_OK(help2, clai_tensor_init(help2, &y2, CLAI_DTYPE_F32, 2, shape));
    CLAIT_OK(help2, clai_unary(help2, CLAI_EXP, y2, x2));
    snprintf(path, sizeof path, "%s/%s", share, unary);
    assert_true(file_size(path) > 0); /* compiled again, and done */
    assert_false(has_claim(share, "-clai_binary"));
    CLAIT_OK(help2, clai_binary(help2, CLAI_ADD, y2, x2, x2)); /* left to the leader: no claim */
    assert_false(has_claim(share, "-clai_binary"));
    CLAIT_OK(help2, clai_binary(help2, CLAI_MUL, y2, x2, x2)); /* the same shape, passed already */
    assert_false(has_claim(share, "-clai_binary"));
    CLAIT_OK(help, clai_binary(help, CLAI_ADD, hy, hx, hx)); /* the first helper, without a mark: claimed */
    assert_true(has_claim(share, "-clai_binary"));
    clai_tensor_free(x2), clai_tensor_free(y2);
    clai_context_free(help2);
  }

  /* The leader finds the helper's work and computes. */
  CLAIT_OK(lead, clai_context_share_builds(lead, share, CLAI_SHARE_LEAD));
  clai_tensor *lx, *ly;
  CLAIT_OK(lead, clai_tensor_init(lead, &lx, CLAI_DTYPE_F32, 2, shape));
  CLAIT_OK(lead, clai_tensor_init(lead, &ly, CLAI_DTYPE_F32, 2, shape));
  CLAIT_OK(lead, clai_tensor_write(lx, x, sizeof x));
  CLAIT_OK(lead, clai_unary(lead, CLAI_EXP, ly, lx));
  CLAIT_OK(lead, clai_tensor_read(ly, y, sizeof y));
  for (int i = 0; i < 6; i++) assert_float_equal(y[i], expf(x[i]), 1e-6 * expf(x[i]));
  check_kernels(lead);
  CLAIT_OK(lead, clai_context_share_builds(lead, NULL, CLAI_SHARE_LEAD));
  check_kernels(lead);

  /* Sharing stopped, the helper computes like any context (its copy kernels built on first use). */
  CLAIT_OK(help, clai_context_share_builds(help, NULL, CLAI_SHARE_HELP));
  CLAIT_OK(help, clai_unary(help, CLAI_EXP, hy, hx));
  CLAIT_OK(help, clai_tensor_read(hy, y, sizeof y));
  for (int i = 0; i < 6; i++) assert_float_equal(y[i], expf(x[i]), 1e-6 * expf(x[i]));
  CLAIT_OK(help, clai_fill(help, hy, 1.0));
  CLAIT_OK(help, clai_tensor_read(hy, y, sizeof y));
  for (int i = 0; i < 6; i++) assert_float_equal(y[i], 1.0f, 0.0f);
  clai_tensor_free(hx), clai_tensor_free(hy), clai_tensor_free(lx), clai_tensor_free(ly);
  clai_context_free(help);
  clai_context_free(lead);
  setenv("CLAI_CACHE_BINARIES", "1", 1);
}

int main(void) {
  const char *tmp = getenv("CLAI_TEST_TMP");
  snprintf(base, sizeof base, "%s/tmp-cache-%ld", tmp != NULL ? tmp : "/tmp", (long)getpid());
  if (mkdir(base, 0700) != 0) {
    perror(base);
    return 1;
  }
  setenv("CLAI_CACHE_BINARIES", "1", 1); /* libclai's cache on every implementation (see the top) */
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(test_share_claims), /* first: its fork() happens before any OpenCL thread exists */
      CLAIT_TIMED(test_cold_then_warm),
      CLAIT_TIMED(test_lazy),
      CLAIT_TIMED(test_damaged_entries),
      CLAIT_TIMED(test_entry_fuzz),
      CLAIT_TIMED(test_unwritable_and_off),
      CLAIT_TIMED(test_directory_resolution),
      CLAIT_TIMED(test_build_error_log),
      CLAIT_TIMED(test_own_kernel_cache),
      CLAIT_TIMED(test_program_info),
      CLAIT_TIMED(test_first_launch_time),
      CLAIT_TIMED(test_share_builds),
  };
  int rc = CLAIT_MAIN("cache", tests, 1);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  if (rc == 0 && system(cmd) != 0) rc = 1;
  return rc;
}
