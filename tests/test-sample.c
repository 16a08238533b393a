/* test-sample.c - clai_sample: greedy ids against a host argmax (awkward widths, ties, NaN and infinities,
 * strided and offset views, f16, several rows), sampled ids against a double-precision host reference of
 * the procedure clai.h documents with the same uniform draw (regenerated with clai_rand_uniform), the same
 * ids for every work-group size and run after run, the distribution of many draws, and bad arguments. */
#include <float.h>

#include "internal.h" /* clai__sample: the work-group size chosen by the test */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

/* A u within this fraction of the total from a boundary of the reference's running sums (or a top_p or
 * min_p cut) is a near-tie: the f32 device may land on either side. Reported, not failed. */
#define NEAR 1e-5

/* ---- the host reference (clai.h, clai_sample), in double ---------------------------------------------- */

static double val(float x) { return isnan(x) ? -INFINITY : (double)x; }

static int ref_argmax(const float *x, int n) {
  int bi = 0;
  for (int i = 1; i < n; i++)
    if (val(x[i]) > val(x[bi])) bi = i;
  return bi;
}

static const float *sort_x; /* qsort's context */
static int by_value(const void *pa, const void *pb) {
  const int a = *(const int *)pa, b = *(const int *)pb;
  const double va = val(sort_x[a]), vb = val(sort_x[b]);
  if (va != vb) return va > vb ? -1 : 1;
  return a < b ? -1 : 1;
}

/* The id for row x of n logits with draw u; *near is set when the reference's sums pass within NEAR of a
 * decision. */
static int ref_sample(const float *x, int n, const clai_sample_params *p, double u, int *near) {
  *near = 0;
  if (p == NULL || p->temperature <= 0.0f || p->top_k == 1) return ref_argmax(x, n);
  const int am = ref_argmax(x, n);
  const double m = val(x[am]), T = p->temperature;
  if (isinf(m)) return am;
  double *e = malloc((size_t)n * sizeof *e);
  int *ord = malloc((size_t)n * sizeof *ord);
  assert_true(e != NULL && ord != NULL);
  double z = 0.0;
  for (int i = 0; i < n; i++) {
    e[i] = exp((val(x[i]) - m) / T);
    z += e[i];
  }
  const int has_p = p->top_p > 0.0f && p->top_p < 1.0f, has_min = p->min_p > 0.0f;
  int id = -1;
  if (p->top_k == 0 && !has_p && !has_min) { /* the whole row in index order */
    const double th = u * z;
    double c = 0.0, prev = 0.0;
    for (int i = 0; i < n && id < 0; i++) {
      prev = c;
      c += e[i];
      if (c > th) id = i;
    }
    if (id < 0) id = n - 1;
    *near = th - prev <= NEAR * z || c - th <= NEAR * z;
  } else {
    for (int i = 0; i < n; i++) ord[i] = i;
    sort_x = x;
    qsort(ord, (size_t)n, sizeof *ord, by_value);
    int kc = p->top_k > 0 ? p->top_k : CLAI_SAMPLE_MAX_CANDIDATES;
    if (kc > n) kc = n;
    if (p->top_k > 0) {
      z = 0.0;
      for (int i = 0; i < kc; i++) z += e[ord[i]];
    }
    int cut = kc;
    if (has_p) { /* near: the sums on either side of the cut */
      const double lim = p->top_p * z;
      double c = 0.0, prev = 0.0;
      for (int i = 0; i < kc; i++) {
        prev = c;
        c += e[ord[i]];
        if (c >= lim) {
          cut = i + 1;
          break;
        }
      }
      if (fabs(c - lim) <= NEAR * z || fabs(prev - lim) <= NEAR * z) *near = 1;
    }
    if (has_min) { /* near: the e on either side of the cut */
      int c2 = 1;
      while (c2 < cut && e[ord[c2]] >= p->min_p) c2++;
      if (fabs(e[ord[c2 - 1]] - p->min_p) <= NEAR || (c2 < cut && fabs(e[ord[c2]] - p->min_p) <= NEAR)) *near = 1;
      cut = c2;
    }
    double s = 0.0;
    for (int i = 0; i < cut; i++) s += e[ord[i]];
    const double th = u * s;
    double c = 0.0, prev = 0.0;
    for (int i = 0; i < cut && id < 0; i++) {
      prev = c;
      c += e[ord[i]];
      if (c > th) id = ord[i];
    }
    if (id < 0) id = ord[cut - 1];
    if (th - prev <= NEAR * s || c - th <= NEAR * s) *near = 1;
  }
  free(e);
  free(ord);
  return id;
}

/* The draws of rows 0 .. R-1 for (seed, offset), as clai.h says: clai_rand_uniform over [0, 1). */
static double *draws(clai_context *ctx, uint64_t seed, uint64_t offset, int64_t R) {
  clai_tensor *t = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &R);
  CLAIT_OK(ctx, clai_rand_uniform(ctx, t, seed, offset, 0.0f, 1.0f));
  double *u = clait_fetch(ctx, t);
  clai_tensor_free(t);
  return u;
}

static int32_t *read_ids(clai_context *ctx, clai_tensor *ids) {
  size_t n = (size_t)clai_tensor_numel(ids);
  int32_t *v = malloc(n * 4 + 4);
  assert_non_null(v);
  CLAIT_OK(ctx, clai_tensor_read(ids, v, n * 4));
  return v;
}

/* Runs clai__sample on dense logits [R, n] of dtype dt holding x (rounded to half for f16) with work-group
 * size local (0: the device's), into a fresh ids [R]; returns the ids. */
static int32_t *run(clai_context *ctx, clai_dtype dt, const float *x, int64_t R, int64_t n,
                    const clai_sample_params *p, int local) {
  const int64_t shape[2] = {R, n};
  clai_tensor *lg = clait_upload_floats(ctx, dt, 2, shape, x);
  clai_tensor *ids = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &R);
  CLAIT_OK(ctx, clai__sample(ctx, ids, lg, p, local));
  int32_t *got = read_ids(ctx, ids);
  clai_tensor_free(ids);
  clai_tensor_free(lg);
  return got;
}

/* The work-group sizes to compare: the device's choice, 1, and the largest the kernel takes (in
 * sampled_match_reference also 16, the largest with a histogram per work-item, and 32, the smallest without). */
static int largest_local(clai_context *ctx) {
  size_t l = 0;
  CLAIT_OK(ctx, clai__rows_local(ctx, CLAI__K_SAMPLE_TOPK, &l));
  return (int)l;
}

/* Whether the device's own work-group size is largest_local for every sampling kernel: on devices other than
 * CPUs clai_sample takes the largest each kernel allows (lib/op-sample.c). */
static int own_is_largest(clai_context *ctx) {
  if (ctx->caps.is_cpu) return 0;
  const int kernels[3] = {CLAI__K_SAMPLE_TOPK, CLAI__K_SAMPLE_TOPP, CLAI__K_SAMPLE_FULL};
  for (int i = 0; i < 3; i++) {
    size_t l = 0;
    CLAIT_OK(ctx, clai__rows_local(ctx, kernels[i], &l));
    if ((int)l != largest_local(ctx)) return 0;
  }
  return 1;
}

/* ---- data ---------------------------------------------------------------------------------------------- */
enum { DATA_UNIFORM, DATA_PEAKED, DATA_TIES };

/* Logits of one row: uniform in [-5, 5]; LLM-like (a few tokens far above a broad bulk); or coarse (steps
 * of 0.5, so that many tokens share a value and the tie-break by index decides). */
static void fill_row(clait_rng *rng, float *x, int64_t n, int kind) {
  for (int64_t i = 0; i < n; i++) {
    float v = clait_uniform(rng, -5.0f, 5.0f);
    if (kind == DATA_PEAKED) {
      v = (clait_uniform(rng, -1.0f, 1.0f) + clait_uniform(rng, -1.0f, 1.0f) + clait_uniform(rng, -1.0f, 1.0f)) * 2.0f;
      if (clait_next(rng) % 512 == 0) v += 12.0f;
    } else if (kind == DATA_TIES) {
      v = floorf(v * 2.0f) * 0.5f;
    }
    x[i] = v;
  }
}

/* ---- greedy -------------------------------------------------------------------------------------------- */

static void greedy_widths(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t widths[] = {1, 7, 129, 4097, 49152};
  const int nw = clait_small() ? 4 : 5;
  const int big = largest_local(ctx), locals[3] = {0, 1, big};
  clait_rng rng = {0x5a3e1ull};
  const clai_sample_params zero_t = {0}, topk1 = {.temperature = 1.0f, .top_k = 1, .seed = 9};
  const clai_sample_params *ps[3] = {NULL, &zero_t, &topk1};
  for (int w = 0; w < nw; w++) {
    const int64_t n = widths[w], R = 3;
    float *x = malloc((size_t)(R * n) * sizeof *x);
    assert_non_null(x);
    for (int64_t r = 0; r < R; r++) {
      fill_row(&rng, x + r * n, n, r == 2 ? DATA_TIES : DATA_UNIFORM);
      if (n > 2) { /* the maximum twice: the first one is the answer */
        const int64_t a = (int64_t)(clait_next(&rng) % (uint64_t)(n - 1)), b = a + 1 + (int64_t)(clait_next(&rng) % (uint64_t)(n - 1 - a));
        x[r * n + a] = x[r * n + b] = 9.5f;
      }
    }
    for (int dt = 0; dt < 2; dt++) {
      const clai_dtype d = dt ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
      float *xr = malloc((size_t)(R * n) * sizeof *xr);
      assert_non_null(xr);
      memcpy(xr, x, (size_t)(R * n) * sizeof *xr);
      if (dt) clait_round_f16(xr, (size_t)(R * n));
      for (int k = 0; k < 3; k++)
        for (int l = 0; l < 3; l++) {
          if (clait_small() && (k + l + w) % 3 != 0) continue; /* by turns under Oclgrind */
          int32_t *got = run(ctx, d, x, R, n, ps[k], locals[l]);
          for (int64_t r = 0; r < R; r++) {
            const int want = ref_argmax(xr + r * n, (int)n);
            if (got[r] != want)
              fail_msg("greedy %s n=%lld row %lld params %d local %d: id %d, expected %d", clai_dtype_name(d),
                       (long long)n, (long long)r, k, locals[l], got[r], want);
          }
          free(got);
        }
      free(xr);
    }
    free(x);
  }
}

/* NaN counts as -inf, -0 as +0; a row of -inf and NaN gives 0; a +inf is the greedy answer when sampling. */
static void special_values(void **state) {
  clai_context *ctx = CTX(state);
  const float inf = INFINITY, nan = NAN;
  enum { R = 6, N = 9 };
  const float x[R][N] = {
      {nan, 1.0f, 3.0f, nan, 3.0f, -inf, 0.0f, 2.0f, nan},    /* NaN ignored: the first 3 (index 2) */
      {nan, nan, nan, nan, nan, nan, nan, nan, nan},          /* all NaN: 0 */
      {-inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf}, /* all -inf: 0 */
      {nan, -inf, nan, -inf, -inf, -inf, -inf, -inf, nan},    /* both: 0 */
      {1.0f, 2.0f, inf, 3.0f, inf, nan, -inf, 0.0f, 1.0f},    /* +inf: index 2 */
      {-0.0f, 0.0f, -0.0f, -1.0f, -2.0f, -3.0f, -inf, nan, -0.0f}, /* -0 == +0: index 0 */
  };
  const int want_greedy[R] = {2, 0, 0, 0, 2, 0};
  const clai_sample_params ps[] = {
      {0},
      {.temperature = 1.0f, .top_k = 3, .seed = 4},
      {.temperature = 1.0f, .top_p = 0.5f, .seed = 5},
      {.temperature = 1.0f, .seed = 6},
      {.temperature = 1.0f, .min_p = 0.5f, .seed = 7},
  };
  const int big = largest_local(ctx), locals[3] = {0, 1, big};
  const int64_t R64 = R;
  for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
    double *u = draws(ctx, ps[k].seed, ps[k].offset, R64);
    for (int l = 0; l < 3; l++) {
      int32_t *got = run(ctx, CLAI_DTYPE_F32, &x[0][0], R, N, &ps[k], locals[l]);
      for (int r = 0; r < R; r++) {
        int near;
        const int want = ref_sample(x[r], N, &ps[k], u[r], &near);
        if (k == 0) assert_int_equal(want, want_greedy[r]);
        if (r != 0 && r != 5 && got[r] != want) /* rows 0 and 5 are drawn from; the others are decided */
          fail_msg("special row %d params %zu local %d: id %d, expected %d", r, k, locals[l], got[r], want);
        if ((r == 0 || r == 5) && !near && got[r] != want)
          fail_msg("special row %d params %zu local %d: id %d, expected %d", r, k, locals[l], got[r], want);
        /* a drawn id is never a NaN or -inf logit */
        assert_false(isnan(x[r][got[r]]) && !(r >= 1 && r <= 3));
        assert_false(x[r][got[r]] == -inf && !(r >= 1 && r <= 3));
      }
      free(got);
    }
    free(u);
  }
}

/* Strided and offset views of logits and ids, a transposed logits, broadcast rows, 1-d logits with a 0-d
 * and a [1] ids, and more dims. */
static void views(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng rng = {0xbeefull};
  const int64_t R = 5, n = 300;
  float *x = malloc((size_t)(R * n) * sizeof *x);
  assert_non_null(x);
  for (int64_t r = 0; r < R; r++) fill_row(&rng, x + r * n, n, r % 2 ? DATA_TIES : DATA_PEAKED);
  const clai_sample_params ps[2] = {{0}, {.temperature = 0.9f, .top_k = 20, .top_p = 0.9f, .seed = 77, .offset = 3}};
  for (int k = 0; k < 2; k++) {
    double *u = draws(ctx, ps[k].seed, ps[k].offset, R);
    int want[5], nearv[5];
    for (int r = 0; r < R; r++) want[r] = ref_sample(x + r * n, (int)n, &ps[k], u[r], &nearv[r]);
    for (int layout = 0; layout < 3; layout++) {
      /* 0: every other element of [R, 2n + 1] from 1, ids every third of [3R] at 2; 1: [n, R] transposed;
       * 2: dense inside a 1-d buffer at an offset */
      clai_tensor *base = NULL, *lg = NULL, *ibase = NULL, *ids = NULL;
      float *buf = NULL;
      if (layout == 0) {
        const int64_t bs[2] = {R, 2 * n + 1};
        base = clait_tensor(ctx, CLAI_DTYPE_F32, 2, bs);
        CLAIT_OK(ctx, clai_tensor_slice(base, &lg, 1, 1, 2 * n + 1, 2));
        const int64_t is = 3 * R;
        ibase = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &is);
        CLAIT_OK(ctx, clai_fill(ctx, ibase, -7.0));
        CLAIT_OK(ctx, clai_tensor_slice(ibase, &ids, 0, 2, 3 * R, 3));
        clait_put_floats(ctx, lg, x);
      } else if (layout == 1) {
        const int64_t bs[2] = {n, R};
        base = clait_tensor(ctx, CLAI_DTYPE_F32, 2, bs);
        buf = malloc((size_t)(R * n) * sizeof *buf);
        assert_non_null(buf);
        for (int64_t r = 0; r < R; r++)
          for (int64_t i = 0; i < n; i++) buf[i * R + r] = x[r * n + i];
        clait_put_floats(ctx, base, buf);
        CLAIT_OK(ctx, clai_tensor_transpose(base, &lg, 0, 1));
        ids = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &R);
      } else {
        const int64_t bs = R * n + 37, shape[2] = {R, n}, st[2] = {n, 1};
        base = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &bs);
        CLAIT_OK(ctx, clai_tensor_view(base, &lg, 2, shape, st, 29));
        clait_put_floats(ctx, lg, x);
        ids = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &R);
      }
      CLAIT_OK(ctx, clai_sample(ctx, ids, lg, &ps[k]));
      int32_t *got = read_ids(ctx, ids);
      for (int r = 0; r < R; r++)
        if (got[r] != want[r] && !nearv[r])
          fail_msg("views layout %d params %d row %d: id %d, expected %d", layout, k, r, got[r], want[r]);
      if (layout == 0) { /* the other elements of ids' buffer are untouched */
        int32_t all[15];
        CLAIT_OK(ctx, clai_tensor_read(ibase, all, sizeof all));
        for (int i = 0; i < 15; i++)
          if (i % 3 != 2) assert_int_equal(all[i], -7);
      }
      free(got);
      free(buf);
      clai_tensor_free(ids);
      clai_tensor_free(ibase);
      clai_tensor_free(lg);
      clai_tensor_free(base);
    }
    /* one row, 1-d logits: ids 0-d and [1] */
    const int64_t one = 1;
    clai_tensor *lg = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, &n, x + 2 * n);
    clai_tensor *i0 = clait_tensor(ctx, CLAI_DTYPE_I32, 0, NULL), *i1 = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &one);
    CLAIT_OK(ctx, clai_sample(ctx, i0, lg, &ps[k]));
    CLAIT_OK(ctx, clai_sample(ctx, i1, lg, &ps[k]));
    int32_t a = -1, b = -1;
    CLAIT_OK(ctx, clai_tensor_read(i0, &a, 4));
    CLAIT_OK(ctx, clai_tensor_read(i1, &b, 4));
    int nr;
    const int w1 = ref_sample(x + 2 * n, (int)n, &ps[k], u[0], &nr); /* row 0 of the draws */
    if (!nr) {
      assert_int_equal(a, w1);
      assert_int_equal(b, w1);
    }
    clai_tensor_free(i0);
    clai_tensor_free(i1);
    /* broadcast rows: [n] expanded to [R, n] (row stride 0), each row its own draw; [2, R, n] logits */
    clai_tensor *ex = NULL, *ids = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &R);
    const int64_t es[2] = {R, n};
    CLAIT_OK(ctx, clai_tensor_expand(lg, &ex, 2, es));
    CLAIT_OK(ctx, clai_sample(ctx, ids, ex, &ps[k]));
    int32_t *got = read_ids(ctx, ids);
    for (int r = 0; r < R; r++) {
      const int w = ref_sample(x + 2 * n, (int)n, &ps[k], u[r], &nr);
      if (!nr && got[r] != w) fail_msg("expanded row %d params %d: id %d, expected %d", r, k, got[r], w);
    }
    free(got);
    clai_tensor_free(ex);
    clai_tensor_free(ids);
    clai_tensor_free(lg);
    const int64_t s3[3] = {2, R, n}, s2[2] = {2, R};
    float *x2 = malloc((size_t)(2 * R * n) * sizeof *x2);
    assert_non_null(x2);
    memcpy(x2, x, (size_t)(R * n) * sizeof *x2);
    memcpy(x2 + R * n, x, (size_t)(R * n) * sizeof *x2);
    lg = clait_upload_floats(ctx, CLAI_DTYPE_F32, 3, s3, x2);
    ids = clait_tensor(ctx, CLAI_DTYPE_I32, 2, s2);
    CLAIT_OK(ctx, clai_sample(ctx, ids, lg, &ps[k]));
    got = read_ids(ctx, ids);
    double *u2 = draws(ctx, ps[k].seed, ps[k].offset, 2 * R);
    for (int r = 0; r < 2 * R; r++) {
      const int w = ref_sample(x2 + r * n, (int)n, &ps[k], u2[r], &nr);
      if (!nr && got[r] != w) fail_msg("3-d row %d params %d: id %d, expected %d", r, k, got[r], w);
    }
    free(u2);
    free(got);
    free(x2);
    clai_tensor_free(ids);
    clai_tensor_free(lg);
    free(u);
  }
  free(x);
}

/* ---- sampling against the reference ------------------------------------------------------------------- */

static void sampled_match_reference(void **state) {
  clai_context *ctx = CTX(state);
  const clai_sample_params ps[] = {
      {.temperature = 1.0f, .top_k = 40, .seed = 1, .offset = 0},
      {.temperature = 0.7f, .top_k = 40, .top_p = 0.95f, .seed = 2, .offset = 17},
      {.temperature = 1.3f, .top_p = 0.9f, .seed = 3, .offset = 5},
      {.temperature = 1.0f, .min_p = 0.05f, .seed = 4, .offset = 6},
      {.temperature = 0.8f, .seed = 5, .offset = 7},
      {.temperature = 1.0f, .top_k = 1000, .top_p = 0.5f, .seed = 6, .offset = 8},
      {.temperature = 2.0f, .top_k = 5, .seed = 7, .offset = 9},
      {.temperature = 1.0f, .top_k = 1024, .seed = 8, .offset = 10},
      {.temperature = 0.5f, .top_k = 3, .top_p = 0.99f, .min_p = 0.2f, .seed = 9, .offset = 11},
  };
  const int np = (int)(sizeof ps / sizeof ps[0]);
  const int64_t widths[] = {1, 7, 129, 1024, 1500, 4097, 49152};
  const int nw = clait_small() ? 5 : 7;
  const int big = largest_local(ctx), locals[5] = {0, 1, big, big >= 16 ? 16 : big, big >= 32 ? 32 : big};
  /* small mode: not the largest size again where it is the device's own (on Oclgrind each row's 256 items ran
   * twice, two fifths of this test's time) */
  const int skip_largest = clait_small() && own_is_largest(ctx);
  clait_rng rng = {0x1234567ull};
  int cases = 0, nears = 0;
  for (int w = 0; w < nw; w++) {
    const int64_t n = widths[w], R = 4;
    float *x = malloc((size_t)(R * n) * sizeof *x), *xr = malloc((size_t)(R * n) * sizeof *xr);
    assert_true(x != NULL && xr != NULL);
    for (int64_t r = 0; r < R; r++) fill_row(&rng, x + r * n, n, (int)(r % 3));
    for (int k = 0; k < np; k++) {
      if (clait_small() && (k + w) % 4 != 0) continue; /* by turns under Oclgrind */
      if (n == 49152 && k % 2 != 0) continue; /* the widest rows: half of the parameter sets */
      double *u = draws(ctx, ps[k].seed, ps[k].offset, R);
      for (int dt = 0; dt < 2; dt++) {
        const clai_dtype d = dt ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
        if (dt && (k + w) % 2 != 0) continue; /* f16 on half of the cases */
        memcpy(xr, x, (size_t)(R * n) * sizeof *xr);
        if (dt) clait_round_f16(xr, (size_t)(R * n));
        int want[4], nearv[4];
        for (int r = 0; r < R; r++) want[r] = ref_sample(xr + r * n, (int)n, &ps[k], u[r], &nearv[r]);
        int32_t *first = NULL;
        for (int l = 0; l < 5; l++) {
          if (clait_small() && (l == 1 || l > 2) && n > 1024) continue; /* slow on Oclgrind */
          /* small mode, where the largest size is the device's own (GPUs, Oclgrind): l = 0 ran it */
          if (l == 2 && skip_largest) continue;
          if (l > 2 && (k + w) % 2 != 0) continue;
          int32_t *got = run(ctx, d, x, R, n, &ps[k], locals[l]);
          for (int r = 0; r < R; r++) {
            if (got[r] < 0 || got[r] >= n)
              fail_msg("n=%lld params %d row %d: id %d out of range", (long long)n, k, r, got[r]);
            if (first != NULL && got[r] != first[r]) /* the work-group size never changes the id */
              fail_msg("n=%lld params %d row %d %s: id %d with local %d, %d with the device's", (long long)n, k, r,
                       clai_dtype_name(d), got[r], locals[l], first[r]);
            if (l > 0) continue;
            cases++;
            if (nearv[r]) {
              nears++;
              printf("# near-tie: n=%lld params %d row %d %s: id %d, reference %d (u = %.9f)\n", (long long)n, k, r,
                     clai_dtype_name(d), got[r], want[r], u[r]);
            } else if (got[r] != want[r]) {
              fail_msg("n=%lld params %d row %d %s: id %d, expected %d (u = %.9f)", (long long)n, k, r,
                       clai_dtype_name(d), got[r], want[r], u[r]);
            }
          }
          if (first == NULL)
            first = got;
          else
            free(got);
        }
        free(first);
      }
      free(u);
    }
    free(x);
    free(xr);
  }
  printf("# %d sampled ids checked against the reference, %d near-ties\n", cases, nears);
  assert_true(nears * 10 <= cases); /* near-ties are rare; many would mean a wrong tolerance */
}

/* ---- statistics ---------------------------------------------------------------------------------------- */

/* Many draws of one row of 6 logits (as broadcast rows, each with its own draw, over several offsets)
 * against the expected distribution: chi-square below the 1e-4 quantile of its degrees of freedom.
 * Under Oclgrind the rows take work-groups of 32 instead of the device's 256: the smallest with the shared
 * histogram that 256 takes, and 26 idle items a row instead of 250, each of which the simulator runs through
 * every step of the kernel's trees and scans (the id never depends on the work-group's size, which
 * sampled_match_reference checks with the device's size among others). */
static void statistics(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t n = 6, R = CLAIT_SIZE(20000, 250);
  const int local = clait_oclgrind(ctx) && largest_local(ctx) > 32 ? 32 : 0;
  const float x[6] = {1.0f, 2.5f, 0.5f, 2.0f, -1.0f, 1.5f};
  const clai_sample_params ps[] = {
      {.temperature = 1.0f, .seed = 11},               /* every token */
      {.temperature = 1.0f, .top_k = 4, .seed = 12},   /* 2.5, 2.0, 1.5, 1.0 */
      {.temperature = 0.8f, .top_p = 0.8f, .seed = 13},
      {.temperature = 1.5f, .min_p = 0.3f, .seed = 14},
  };
  /* chi-square 1e-4 quantiles for 1 .. 5 degrees of freedom */
  const double crit[6] = {0, 15.14, 18.42, 21.11, 23.51, 25.74};
  clai_tensor *lg = clait_upload_floats(ctx, CLAI_DTYPE_F32, 1, &n, x), *ex = NULL;
  const int64_t es[2] = {R, n};
  CLAIT_OK(ctx, clai_tensor_expand(lg, &ex, 2, es));
  clai_tensor *ids = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &R);
  for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
    /* the expected distribution: the reference's kept set, renormalised */
    double e[6], pr[6] = {0}, z = 0.0;
    int ord[6] = {1, 3, 5, 0, 2, 4}; /* x by value, descending */
    for (int i = 0; i < 6; i++) e[i] = exp((x[i] - 2.5) / ps[k].temperature);
    int cut = ps[k].top_k > 0 ? ps[k].top_k : 6;
    for (int i = 0; i < cut; i++) z += e[ord[i]];
    if (ps[k].top_p > 0.0f) {
      double c = 0.0;
      for (int i = 0; i < cut; i++) {
        c += e[ord[i]];
        if (c >= ps[k].top_p * z) {
          cut = i + 1;
          break;
        }
      }
    }
    if (ps[k].min_p > 0.0f) {
      int c2 = 1;
      while (c2 < cut && e[ord[c2]] >= ps[k].min_p) c2++;
      cut = c2;
    }
    double s = 0.0;
    for (int i = 0; i < cut; i++) s += e[ord[i]];
    for (int i = 0; i < cut; i++) pr[ord[i]] = e[ord[i]] / s;
    long count[6] = {0};
    const int calls = CLAIT_SIZE(4, 2);
    for (int c = 0; c < calls; c++) {
      clai_sample_params p = ps[k];
      p.offset = (uint64_t)c * 1000003u;
      CLAIT_OK(ctx, clai__sample(ctx, ids, ex, &p, local));
      int32_t *got = read_ids(ctx, ids);
      for (int64_t r = 0; r < R; r++) {
        assert_true(got[r] >= 0 && got[r] < 6);
        count[got[r]]++;
      }
      free(got);
    }
    const double total = (double)(R * calls);
    double chi = 0.0;
    int dof = -1;
    for (int i = 0; i < 6; i++) {
      if (pr[i] == 0.0) {
        if (count[i] != 0) fail_msg("params %zu: token %d was drawn %ld times; it is outside the kept set", k, i, count[i]);
        continue;
      }
      const double want = pr[i] * total;
      chi += (count[i] - want) * (count[i] - want) / want;
      dof++;
    }
    printf("# statistics params %zu: %d tokens kept, chi-square %.2f (%d dof, limit %.2f)\n", k, dof + 1, chi, dof,
           dof > 0 ? crit[dof] : 0.0);
    if (dof > 0 && chi > crit[dof]) fail_msg("params %zu: chi-square %.2f above %.2f", k, chi, crit[dof]);
  }
  clai_tensor_free(ids);
  clai_tensor_free(ex);
  clai_tensor_free(lg);
}

/* ---- determinism --------------------------------------------------------------------------------------- */

static void deterministic(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t R = 8, n = CLAIT_SIZE(32000, 600);
  float *x = malloc((size_t)(R * n) * sizeof *x);
  assert_non_null(x);
  clait_rng rng = {0x77ull};
  for (int64_t r = 0; r < R; r++) fill_row(&rng, x + r * n, n, DATA_PEAKED);
  const clai_sample_params p = {.temperature = 1.0f, .top_k = 50, .top_p = 0.97f, .seed = 42, .offset = 100};
  int32_t *a = run(ctx, CLAI_DTYPE_F32, x, R, n, &p, 0);
  int32_t *b = run(ctx, CLAI_DTYPE_F32, x, R, n, &p, 0);
  for (int r = 0; r < R; r++) assert_int_equal(a[r], b[r]);
  /* another offset draws other numbers: over 8 rows and 8 offsets, some id changes */
  int changed = 0;
  for (uint64_t off = 101; off < 109 && !changed; off++) {
    clai_sample_params q = p;
    q.offset = off;
    int32_t *c = run(ctx, CLAI_DTYPE_F32, x, R, n, &q, 0);
    for (int r = 0; r < R; r++) changed |= c[r] != a[r];
    free(c);
  }
  assert_true(changed);
  free(a);
  free(b);
  free(x);
}

/* ---- bad arguments ------------------------------------------------------------------------------------- */

static void bad_arguments(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t s2[2] = {3, 10}, s1 = 3, e2[2] = {3, 0}, two = 2;
  clai_tensor *lg = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s2), *ids = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &s1);
  float x[30];
  for (int i = 0; i < 30; i++) x[i] = (float)(i % 10);
  clait_put_floats(ctx, lg, x);
  const int32_t before[3] = {-7, -7, -7};
  CLAIT_OK(ctx, clai_tensor_write(ids, before, sizeof before));
  clai_tensor *fids = clait_tensor(ctx, CLAI_DTYPE_F32, 1, &s1), *ilg = clait_tensor(ctx, CLAI_DTYPE_I32, 2, s2);
  clai_tensor *wrong = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &two), *scalar = clait_tensor(ctx, CLAI_DTYPE_F32, 0, NULL);
  clai_tensor *empty = clait_tensor(ctx, CLAI_DTYPE_F32, 2, e2), *one = NULL, *bc = NULL;
  const int64_t o1 = 1;
  one = clait_tensor(ctx, CLAI_DTYPE_I32, 1, &o1);
  CLAIT_OK(ctx, clai_tensor_expand(one, &bc, 1, &s1));
  clai_sample_params p = {.temperature = 1.0f};

  assert_int_equal(clai_sample(NULL, ids, lg, NULL), CLAI_E_INVALID_ARG);
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "ids is f32", clai_sample(ctx, fids, lg, NULL));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "logits is i32", clai_sample(ctx, ids, ilg, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "ids is [2]", clai_sample(ctx, wrong, lg, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "0-d", clai_sample(ctx, ids, scalar, NULL));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "no tokens", clai_sample(ctx, ids, empty, NULL));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "ids", clai_sample(ctx, bc, lg, NULL));
  p.temperature = NAN;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "temperature", clai_sample(ctx, ids, lg, &p));
  p.temperature = INFINITY;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "temperature", clai_sample(ctx, ids, lg, &p));
  p.temperature = 1.0f;
  p.top_k = -1;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "top_k -1 is negative", clai_sample(ctx, ids, lg, &p));
  p.top_k = CLAI_SAMPLE_MAX_CANDIDATES + 1;
  CLAIT_FAILS(ctx, CLAI_E_UNSUPPORTED, "top_k 1025", clai_sample(ctx, ids, lg, &p));
  p.top_k = 0;
  p.top_p = NAN;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "top_p", clai_sample(ctx, ids, lg, &p));
  p.top_p = -0.5f;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "top_p", clai_sample(ctx, ids, lg, &p));
  p.top_p = 0.0f;
  p.min_p = 1.5f;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "min_p", clai_sample(ctx, ids, lg, &p));
  p.min_p = NAN;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "min_p", clai_sample(ctx, ids, lg, &p));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "work-group", clai__sample(ctx, ids, lg, NULL, 3));
  /* nothing was written */
  int32_t after[3];
  CLAIT_OK(ctx, clai_tensor_read(ids, after, sizeof after));
  assert_memory_equal(after, before, sizeof before);
  /* and the context still works: negative temperature is greedy, a top_k above the row length is the row */
  p = (clai_sample_params){.temperature = -1.0f};
  CLAIT_OK(ctx, clai_sample(ctx, ids, lg, &p));
  CLAIT_OK(ctx, clai_tensor_read(ids, after, sizeof after));
  for (int r = 0; r < 3; r++) assert_int_equal(after[r], 9);
  p = (clai_sample_params){.temperature = 1e-30f, .top_k = 1000};
  CLAIT_OK(ctx, clai_sample(ctx, ids, lg, &p));
  CLAIT_OK(ctx, clai_tensor_read(ids, after, sizeof after));
  for (int r = 0; r < 3; r++) assert_int_equal(after[r], 9); /* a tiny temperature is nearly greedy */
  clai_tensor_free(bc);
  clai_tensor_free(one);
  clai_tensor_free(empty);
  clai_tensor_free(scalar);
  clai_tensor_free(wrong);
  clai_tensor_free(ilg);
  clai_tensor_free(fids);
  clai_tensor_free(ids);
  clai_tensor_free(lg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(greedy_widths, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(special_values, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(sampled_match_reference, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(statistics, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(deterministic, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(bad_arguments, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("sample", tests, 1);
}
