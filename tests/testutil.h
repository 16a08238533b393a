/* testutil.h - helpers shared by libclai's cmocka tests (header-only; every test is one program).
 *
 * - clait_main(): runs one cmocka group with TAP output; when no OpenCL device exists it prints
 *   "1..0 # SKIP" and exits 0 (automake's TAP driver counts cmocka 1.1.5's skip() as a failure).
 *   CLAI_TEST_FILTER=PATTERN runs only the cases whose names match it (cmocka's filter: * and ? wildcards).
 * - clait_setup()/clait_teardown(): each case's wall time, printed as a TAP comment before its result, so
 *   that a slow implementation's log says which case the time went to.
 * - clait_ctx(): a context on the default device with the kernel cache in the build tree.
 * - Random data from a fixed-seed generator, f16 round trips, and comparison with explicit tolerances.
 * - clait_mutate(): random damage to a file's bytes, for fuzzing the readers. */
#ifndef CLAI_TESTUTIL_H
#define CLAI_TESTUTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "clai.h"

/* Asserts that a call succeeded, printing the context's message when it did not. */
#define CLAIT_OK(ctx, call)                                                                            \
  do {                                                                                                 \
    clai_status st_ = (call);                                                                          \
    if (st_ != CLAI_OK)                                                                                \
      fail_msg("%s -> %s: %s", #call, clai_status_name(st_), clai_errmsg(ctx));                        \
  } while (0)

/* Asserts that a call failed with `want` and that the message contains `needle`. */
#define CLAIT_FAILS(ctx, want, needle, call)                                                           \
  do {                                                                                                 \
    clai_status st_ = (call);                                                                          \
    if (st_ != (want))                                                                                 \
      fail_msg("%s -> %s, expected %s (%s)", #call, clai_status_name(st_), clai_status_name(want),     \
               clai_errmsg(ctx));                                                                      \
    if (strstr(clai_errmsg(ctx), (needle)) == NULL)                                                    \
      fail_msg("%s: message \"%s\" does not mention \"%s\"", #call, clai_errmsg(ctx), (needle));       \
  } while (0)

static inline clai_context *clait_ctx(void) {
  char err[4096];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st != CLAI_OK) fail_msg("clai_context_init: %s: %s", clai_status_name(st), err);
  return ctx;
}

/* ---- row-kernel variants (CLAI_ROWS; tests/rows-wg-*.sh run the row-op tests with CLAI_ROWS=wg) ----------
 * clait_rows_wg(): 1 when ctx's row ops should run their work-group-per-row kernels: CLAI_ROWS=wg, or
 * CLAI_ROWS unset on a device that is not a CPU. clait_profiled_ctx(): a context like clait_ctx() with
 * kernel profiling on. clait_expect_kernel(): asserts that kernel `name` ran (ran = 1) or did not (0) in a
 * profiled context since its last clai_profile_reset(). */
static inline int clait_rows_wg(clai_context *ctx) {
  const char *v = getenv("CLAI_ROWS");
  if (v != NULL && *v != '\0') return strcmp(v, "wg") == 0;
  clai_device_info info;
  if (clai_context_device_info(ctx, -1, &info) != CLAI_OK) fail_msg("clai_context_device_info: %s", clai_errmsg(ctx));
  return info.type != CLAI_DEVICE_CPU;
}

static inline clai_context *clait_profiled_ctx(void) {
  char err[4096];
  clai_context *ctx = NULL;
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.profile = 1;
  clai_status st = clai_context_init_ex(&ctx, &p, err, sizeof err);
  if (st != CLAI_OK) fail_msg("clai_context_init (profiling on): %s: %s", clai_status_name(st), err);
  return ctx;
}

static inline void clait_expect_kernel(clai_context *ctx, const char *name, int ran) {
  clai_kernel_profile kp[64];
  int n = clai_profile_get(ctx, kp, 64), found = 0;
  if (n < 0) fail_msg("clai_profile_get: %s", clai_errmsg(ctx));
  char list[1024] = "";
  size_t len = 0;
  for (int i = 0; i < n && i < 64; i++) {
    if (strcmp(kp[i].kernel, name) == 0) found = 1;
    if (len < sizeof list) len += (size_t)snprintf(list + len, sizeof list - len, " %s", kp[i].kernel);
  }
  const char *rows = getenv("CLAI_ROWS");
  if (found != ran)
    fail_msg("CLAI_ROWS=%s: kernel %s %s, but the kernels that ran were:%s", rows != NULL ? rows : "(unset)", name,
             ran ? "did not run" : "ran", list);
}

/* cmocka setup/teardown that keep one context in *state for a whole group. */
static inline double clait_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static double clait_case_t0, clait_case_c0; /* when the running case's setup began */
static inline double clait_cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static inline int clait_setup(void **state) {
  clait_case_t0 = clait_now();
  clait_case_c0 = clait_cpu();
  *state = clait_ctx();
  return *state == NULL ? -1 : 0;
}
static inline int clait_teardown(void **state) {
  /* CLAI_PROFILE=1: the case's costliest kernels (device time, launches), for finding where a slow
   * implementation's time goes */
  clai_kernel_profile top[6];
  const int n = *state != NULL && getenv("CLAI_PROFILE") != NULL ? clai_profile_get(*state, top, 6) : -1;
  for (int i = 0; i < n && i < 6; i++)
    printf("# profile: %-28s %8.3f s %6llu launches\n", top[i].kernel, top[i].seconds,
           (unsigned long long)top[i].launches);
  clai_context_free(*state);
  printf("# case took %.1f s (cpu %.1f s)\n", clait_now() - clait_case_t0, clait_cpu() - clait_case_c0);
  return 0;
}
/* The same timing for cases that make their own contexts. */
static inline int clait_timed_setup(void **state) {
  (void)state;
  clait_case_t0 = clait_now();
  clait_case_c0 = clait_cpu();
  return 0;
}
static inline int clait_timed_teardown(void **state) {
  (void)state;
  printf("# case took %.1f s (cpu %.1f s)\n", clait_now() - clait_case_t0, clait_cpu() - clait_case_c0);
  return 0;
}
#define CLAIT_TIMED(f) cmocka_unit_test_setup_teardown(f, clait_timed_setup, clait_timed_teardown)

/* Deterministic random numbers (xorshift64*), uniform in [lo, hi). */
typedef struct clait_rng {
  uint64_t s;
} clait_rng;
static inline uint64_t clait_next(clait_rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ULL;
}
static inline float clait_uniform(clait_rng *r, float lo, float hi) {
  return lo + (hi - lo) * (float)((clait_next(r) >> 40) * (1.0 / 16777216.0));
}
static inline void clait_fill(clait_rng *r, float *p, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) p[i] = clait_uniform(r, lo, hi);
}

/* Where a file format keeps its integers: fields[i] is the offset of one of widths[i] bytes, so that
 * clait_mutate can replace a whole field rather than one byte of it. */
typedef struct clait_layout {
  size_t fields[64];
  int widths[64];
  int nfields;
} clait_layout;

/* Applies 1 to 4 random edits to buf (length *n, capacity cap), for fuzzing file readers: a random byte, a
 * flipped bit, an integer that breaks naive readers (0, 1, the signed and unsigned extremes, -5, ...)
 * written little-endian over a field of lay (or at a random offset, 8 bytes, when lay is NULL), a cut, an
 * appended tail of up to 16 bytes, or a byte deleted or inserted. */
static inline void clait_mutate(clait_rng *rng, unsigned char *buf, size_t *n, size_t cap, const clait_layout *lay) {
  static const uint64_t nasty[] = {0,          1,          2,           0x7f,      0x80,        0xff,
                                   0x7fffffff, 0x80000000, 0xffffffff,  0x100000000, INT64_MAX, (uint64_t)INT64_MIN,
                                   UINT64_MAX, (uint64_t)-5, 65536,     100001,    (uint64_t)-1 << 20};
  int edits = 1 + (int)(clait_next(rng) % 4);
  for (int k = 0; k < edits && *n > 0; k++) {
    size_t at = (size_t)(clait_next(rng) % *n);
    switch (clait_next(rng) % 8) {
    case 0:
      buf[at] = (unsigned char)clait_next(rng);
      break;
    case 1:
      buf[at] ^= (unsigned char)(1u << (clait_next(rng) % 8));
      break;
    case 2:
    case 3: {
      int w = 8;
      if (lay != NULL && lay->nfields > 0) {
        int f = (int)(clait_next(rng) % (uint64_t)lay->nfields);
        at = lay->fields[f], w = lay->widths[f];
      }
      uint64_t v = nasty[clait_next(rng) % (sizeof nasty / sizeof nasty[0])];
      for (int i = 0; i < w && at + (size_t)i < *n; i++) buf[at + (size_t)i] = (unsigned char)(v >> (8 * i));
      break;
    }
    case 4:
      *n = at; /* cut */
      break;
    case 5: { /* append */
      size_t add = 1 + (size_t)(clait_next(rng) % 16);
      if (*n + add > cap) break;
      for (size_t i = 0; i < add; i++) buf[*n + i] = (unsigned char)clait_next(rng);
      *n += add;
      break;
    }
    case 6: /* delete one byte */
      memmove(buf + at, buf + at + 1, *n - at - 1);
      (*n)--;
      break;
    default: /* insert one byte */
      if (*n + 1 > cap) break;
      memmove(buf + at + 1, buf + at, *n - at);
      buf[at] = (unsigned char)clait_next(rng);
      (*n)++;
      break;
    }
  }
}

/* IEEE half conversion on the host (round to nearest even), matching vstore_half. */
static inline uint16_t clait_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
  if (exp == 0xffu) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
  int e = (int)exp - 127 + 15;
  if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000u;
    int shift = 14 - e;
    uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (h & 1u))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
  return (uint16_t)h;
}
static inline float clait_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, x;
  if (exp == 0) {
    if (man == 0) {
      x = sign;
    } else {
      int e = -1;
      do {
        man <<= 1;
        e++;
      } while ((man & 0x400u) == 0);
      x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    x = sign | 0x7f800000u | (man << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &x, 4);
  return f;
}
/* Rounds every value to the nearest half, so a reference can use exactly what an f16 tensor holds. */
static inline void clait_round_f16(float *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = clait_f16_to_f32(clait_f32_to_f16(p[i]));
}

/* Checks |got - want| <= atol + rtol * |want| for every element; fails naming the first bad index. */
static inline void clait_expect_close(const char *what, const float *got, const double *want, size_t n, double atol,
                                      double rtol) {
  for (size_t i = 0; i < n; i++) {
    double g = got[i], w = want[i];
    if ((isnan(w) && isnan(g)) || (isinf(w) && g == w)) continue;
    if (!(fabs(g - w) <= atol + rtol * fabs(w)))
      fail_msg("%s: element %zu is %.9g, expected %.9g (atol %g, rtol %g)", what, i, g, w, atol, rtol);
  }
}

/* A new tensor; fails the test when it cannot be made. */
static inline clai_tensor *clait_tensor(clai_context *ctx, clai_dtype dt, int ndim, const int64_t *shape) {
  clai_tensor *t = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, ndim, shape));
  return t;
}

/* v rounded to what dtype dt holds: float for f32, half for f16; i32 values are left as given. */
static inline double clait_as_dtype(clai_dtype dt, double v) {
  if (dt == CLAI_DTYPE_F16) return clait_f16_to_f32(clait_f32_to_f16((float)v));
  return dt == CLAI_DTYPE_F32 ? (double)(float)v : v;
}

/* Writes numel(t) values, converted to t's dtype (f32, f16, or i32 by truncation), densely into t (any
 * view). */
static inline void clait_put(clai_context *ctx, clai_tensor *t, const double *v) {
  const clai_dtype dt = clai_tensor_dtype(t);
  size_t n = (size_t)clai_tensor_numel(t), es = clai_dtype_size(dt);
  void *buf = malloc(n * es + 4);
  assert_non_null(buf);
  for (size_t i = 0; i < n; i++) {
    if (dt == CLAI_DTYPE_F16)
      ((uint16_t *)buf)[i] = clait_f32_to_f16((float)v[i]);
    else if (dt == CLAI_DTYPE_I32)
      ((int32_t *)buf)[i] = (int32_t)v[i];
    else
      ((float *)buf)[i] = (float)v[i];
  }
  clai_status st = clai_tensor_write(t, buf, n * es);
  free(buf);
  CLAIT_OK(ctx, st);
}

/* Writes numel(t) floats, rounded to half for f16, densely into t (f32 or f16, any view). */
static inline void clait_put_floats(clai_context *ctx, clai_tensor *t, const float *v) {
  size_t n = (size_t)clai_tensor_numel(t);
  if (clai_tensor_dtype(t) == CLAI_DTYPE_F32) {
    CLAIT_OK(ctx, clai_tensor_write(t, v, n * 4));
    return;
  }
  uint16_t *h = malloc(n * 2 + 2);
  assert_non_null(h);
  for (size_t i = 0; i < n; i++) h[i] = clait_f32_to_f16(v[i]);
  clai_status st = clai_tensor_write(t, h, n * 2);
  free(h);
  CLAIT_OK(ctx, st);
}

/* Reads an f32 or f16 tensor (any view) into v as floats, dense row-major. */
static inline void clait_read_floats(clai_context *ctx, clai_tensor *t, float *v) {
  size_t n = (size_t)clai_tensor_numel(t);
  if (clai_tensor_dtype(t) == CLAI_DTYPE_F32) {
    CLAIT_OK(ctx, clai_tensor_read(t, v, n * 4));
    return;
  }
  uint16_t *h = malloc(n * 2 + 2);
  assert_non_null(h);
  clai_status st = clai_tensor_read(t, h, n * 2);
  if (st == CLAI_OK)
    for (size_t i = 0; i < n; i++) v[i] = clait_f16_to_f32(h[i]);
  free(h);
  CLAIT_OK(ctx, st);
}

/* As clait_read_floats, into a malloc'd array. */
static inline float *clait_get(clai_context *ctx, clai_tensor *t) {
  float *f = malloc((size_t)clai_tensor_numel(t) * 4 + 4);
  assert_non_null(f);
  clait_read_floats(ctx, t, f);
  return f;
}

/* A dense tensor of dtype dt (f32 or f16) holding the floats v, rounded to half for f16. */
static inline clai_tensor *clait_upload_floats(clai_context *ctx, clai_dtype dt, int ndim, const int64_t *shape,
                                               const float *v) {
  clai_tensor *t = clait_tensor(ctx, dt, ndim, shape);
  clait_put_floats(ctx, t, v);
  return t;
}

/* The elements of t (any view, any dtype) as doubles, dense row-major, into v (numel(t) of them). */
static inline void clait_read(clai_context *ctx, clai_tensor *t, double *v) {
  const clai_dtype dt = clai_tensor_dtype(t);
  size_t n = (size_t)clai_tensor_numel(t), es = clai_dtype_size(dt);
  void *buf = malloc(n * es + 4);
  assert_non_null(buf);
  clai_status st = clai_tensor_read(t, buf, n * es);
  if (st != CLAI_OK) free(buf);
  CLAIT_OK(ctx, st);
  for (size_t i = 0; i < n; i++) {
    switch (dt) {
    case CLAI_DTYPE_F32: v[i] = ((float *)buf)[i]; break;
    case CLAI_DTYPE_F16: v[i] = clait_f16_to_f32(((uint16_t *)buf)[i]); break;
    default: v[i] = ((int32_t *)buf)[i]; break;
    }
  }
  free(buf);
}

/* As clait_read, into a malloc'd array. */
static inline double *clait_fetch(clai_context *ctx, clai_tensor *t) {
  double *d = malloc((size_t)clai_tensor_numel(t) * sizeof *d + 8);
  assert_non_null(d);
  clait_read(ctx, t, d);
  return d;
}

/* ---- 4-D operands of the convolution tests ----
 * A tensor of logical shape [a, b, c, d] in one of the layouts: dense; stored as [a, c, d, b] and permuted
 * back (the second dim has the largest stride, the last dim a non-unit one); or a slice of a wider
 * [a, b, c, d + 3] tensor (rows padded). *base receives the tensor that owns the storage; clait_free4
 * releases both. */
enum { CLAIT_DENSE = 0, CLAIT_PERMUTED = 1, CLAIT_SLICED = 2 };
static inline clai_tensor *clait_make4(clai_context *ctx, clai_dtype dt, const int64_t *shape, int layout,
                                       clai_tensor **base) {
  clai_tensor *t = NULL;
  if (layout == CLAIT_PERMUTED) {
    int64_t s[4] = {shape[0], shape[2], shape[3], shape[1]};
    const int perm[4] = {0, 3, 1, 2};
    CLAIT_OK(ctx, clai_tensor_init(ctx, base, dt, 4, s));
    CLAIT_OK(ctx, clai_tensor_permute(*base, &t, perm));
  } else if (layout == CLAIT_SLICED) {
    int64_t s[4] = {shape[0], shape[1], shape[2], shape[3] + 3};
    CLAIT_OK(ctx, clai_tensor_init(ctx, base, dt, 4, s));
    CLAIT_OK(ctx, clai_tensor_slice(*base, &t, 3, 1, shape[3] + 1, 1));
  } else {
    CLAIT_OK(ctx, clai_tensor_init(ctx, base, dt, 4, shape));
    t = *base;
  }
  return t;
}
static inline void clait_free4(clai_tensor *t, clai_tensor *base) {
  if (t != base) clai_tensor_free(t);
  clai_tensor_free(base);
}

/* ---- [B, H, L, D] operands of the attention tests ----
 * Layout 0 dense; 1 a [B, L, H, D] tensor permuted; 2 every other element of the last dim of a
 * [B, H, L, 2D + 1] tensor starting at 1; 3 dense inside a 1-d tensor with CLAIT_MARGIN elements on each
 * side. *base owns the storage (NULL for layout 0). */
#define CLAIT_MARGIN 64
static inline clai_tensor *clait_make_bhld(clai_context *ctx, clai_dtype dt, const int64_t *shape, int layout,
                                           clai_tensor **base) {
  clai_tensor *t = NULL;
  *base = NULL;
  if (layout == 0) {
    CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, 4, shape));
  } else if (layout == 1) {
    const int64_t bs[4] = {shape[0], shape[2], shape[1], shape[3]};
    const int perm[4] = {0, 2, 1, 3};
    CLAIT_OK(ctx, clai_tensor_init(ctx, base, dt, 4, bs));
    CLAIT_OK(ctx, clai_tensor_permute(*base, &t, perm));
  } else if (layout == 2) {
    const int64_t bs[4] = {shape[0], shape[1], shape[2], 2 * shape[3] + 1};
    CLAIT_OK(ctx, clai_tensor_init(ctx, base, dt, 4, bs));
    CLAIT_OK(ctx, clai_tensor_slice(*base, &t, 3, 1, bs[3], 2));
  } else {
    const int64_t n = shape[0] * shape[1] * shape[2] * shape[3], bs[1] = {n + 2 * CLAIT_MARGIN};
    const int64_t st[4] = {shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1};
    CLAIT_OK(ctx, clai_tensor_init(ctx, base, dt, 1, bs));
    CLAIT_OK(ctx, clai_tensor_view(*base, &t, 4, shape, st, CLAIT_MARGIN));
  }
  return t;
}

/* The output length of a convolution or pooling axis: input in, padding pa + pb, window k, dilation d,
 * stride s. */
static inline int64_t clait_out_len(int64_t in, int64_t pa, int64_t pb, int64_t k, int64_t d, int64_t s) {
  return (in + pa + pb - d * (k - 1) - 1) / s + 1;
}

/* Runs the group with TAP output; skips the whole program (exit 0) when the machine has no OpenCL device. */
static inline int clait_main(const char *name, const struct CMUnitTest *tests, size_t n, int needs_device) {
  cmocka_set_message_output(CM_OUTPUT_TAP);
  if (needs_device) {
    char err[4096];
    clai_context *ctx = NULL;
    clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
    /* Only a machine without any device skips; devices that all fail to start are a failure. */
    if (st == CLAI_E_NO_DEVICE && strstr(err, "every candidate failed") == NULL) {
      printf("1..0 # SKIP no OpenCL device: %s\n", err);
      return 0;
    }
    clai_context_free(ctx);
  }
  const char *filter = getenv("CLAI_TEST_FILTER");
  if (filter != NULL && *filter != '\0') cmocka_set_test_filter(filter);
  return _cmocka_run_group_tests(name, tests, n, NULL, NULL);
}
#define CLAIT_MAIN(name, tests, needs_device) clait_main(name, tests, sizeof(tests) / sizeof((tests)[0]), needs_device)

/* clai_unary's ops in double precision as PyTorch defines them: NaN in, NaN out (ReLU included); GELU is
 * the tanh form 0.5x(1 + tanh(u)), written x * sigmoid(2u), which does not cancel for negative x. */
static inline double clait_ref_unary(clai_unary_op op, double x) {
  switch (op) {
  case CLAI_NEG: return -x;
  case CLAI_ABS: return fabs(x);
  case CLAI_EXP: return exp(x);
  case CLAI_LOG: return log(x);
  case CLAI_SQRT: return sqrt(x);
  case CLAI_RELU: return isnan(x) ? x : x > 0 ? x : 0.0;
  case CLAI_GELU: return x / (1.0 + exp(-2.0 * sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
  case CLAI_SILU: return x / (1.0 + exp(-x));
  case CLAI_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case CLAI_TANH: return tanh(x);
  }
  return NAN;
}

/* Whether the tests run under the sanitizers (CLAI_TEST_SANITIZED: the build's sanitizer flags, empty in a
 * plain build). */
static inline int clait_sanitized(void) {
  const char *v = getenv("CLAI_TEST_SANITIZED");
  return v != NULL && *v != '\0';
}

/* Test sizes. CLAI_TEST_SIZE=small (for slow devices: the Oclgrind simulator runs about 150 times slower
 * than POCL) shrinks the large shapes of the tests, so every kernel and every path still runs, on less
 * data. CLAIT_SIZE(full, small) picks one of two sizes. */
static inline int clait_small(void) {
  const char *s = getenv("CLAI_TEST_SIZE");
  return s != NULL && strcmp(s, "small") == 0;
}
#define CLAIT_SIZE(full, small) (clait_small() ? (small) : (full))

/* Whether ctx runs on the Oclgrind simulator, for the few checks that need something it lacks (each says
 * so by name in a TAP comment). */
static inline int clait_oclgrind(const clai_context *ctx) {
  clai_device_info di;
  return clai_context_device_info(ctx, -1, &di) == CLAI_OK && strstr(di.platform, "Oclgrind") != NULL;
}

/* Whether ctx runs on Mesa's llvmpipe, whose kernels' loops stop after 65535 iterations a work-item. */
static inline int clait_llvmpipe(const clai_context *ctx) {
  clai_device_info di;
  return clai_context_device_info(ctx, -1, &di) == CLAI_OK && strstr(di.name, "llvmpipe") != NULL;
}

/* Whether libclai keeps ctx's kernels within a loop budget: llvmpipe's, or one CLAI_LOOP_LIMIT emulates
 * (tests/loop-budget.sh), so a test expects what such a device does (refusals of rows past it, its sizes). */
static inline int clait_loop_limited(const clai_context *ctx) {
  const char *e = getenv("CLAI_LOOP_LIMIT");
  return clait_llvmpipe(ctx) || (e != NULL && atol(e) > 0);
}

/* The tests at sizes past llvmpipe's loop budget run there and at full size elsewhere; in small mode
 * elsewhere (a simulator) they say so and return 0. */
static inline int clait_budget_sizes(const clai_context *ctx, const char *test) {
  if (!clait_small() || clait_llvmpipe(ctx)) return 1;
  print_message("# %s: sizes past llvmpipe's loop budget run there and at full size; not run\n", test);
  return 0;
}

/* The whole file at path (malloc'd, *n bytes); fails the test when it cannot be read. */
static inline unsigned char *clait_read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = malloc((size_t)len + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return p;
}

/* A fresh directory for the files a fuzzing test writes by the thousand, named after tag: under /dev/shm when
 * there is one (thousands of small files cost a second there and half a minute on a slow disk: each file's
 * creation, not its bytes), else under $CLAI_TEST_TMP or /tmp. clait_rmtree removes it. Both return 0 on
 * success. (POSIX: declared here without <unistd.h>'s feature macros.) */
int access(const char *path, int mode);
char *mkdtemp(char *tmpl);
static inline int clait_mkdtemp(char *dir, size_t cap, const char *tag) {
  const char *base = getenv("CLAI_TEST_TMP");
  if (access("/dev/shm", 2 /* W_OK */) == 0) base = "/dev/shm";
  snprintf(dir, cap, "%s/tmp-%s.XXXXXX", base != NULL ? base : "/tmp", tag);
  return mkdtemp(dir) != NULL ? 0 : -1;
}
static inline int clait_rmtree(const char *dir) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

#endif /* CLAI_TESTUTIL_H */
