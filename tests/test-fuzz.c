/* test-fuzz.c - a randomized differential test of every op and every backward op of include/clai.h.
 *
 * Each op has a descriptor in the table at the end of this file: a name and a function that draws one
 * random case (shapes that include 0, 1 and primes; dtypes; parameters), makes its operands, calls the op,
 * computes the expected result in double precision on the host and checks it with explicit tolerances per
 * op and per dtype (relative to the sum of |terms| where the op sums).
 *
 * Every operand is a view of a larger 1-d buffer: its dims stored in a random order (transposed), with gaps
 * between rows and elements (strided), at a random offset, and, for some inputs, broadcast along a dim
 * (stride 0). Input buffers hold NaN wherever the view does not reach, so a kernel that reads outside its
 * view shows it; output buffers are prefilled with a sentinel and read back whole (not through the
 * library's strided read), so a kernel that writes outside its view, or ignores its offset or strides,
 * shows it too. Some cases run in place (out is x itself, where the header allows it), and some get an
 * output of a wrong shape: the call must then fail with CLAI_E_SHAPE, a message naming the output, and
 * the output untouched (the next case shows that the context still works). Inputs include special values
 * (NaN, +-inf; -1e30, -FLT_MAX and -inf masks; logits around 1e4 and 1e6), with the results PyTorch gives.
 *
 * Every case is a pure function of (seed, op, case number): a failure prints the seed, the op, the case
 * number, every operand (dtype, shape, strides, offset), the parameters and the first bad element with the
 * value got and expected, and the command line that reruns that case alone. Failures are counted, not
 * fatal, so one run lists them all (at most FZ_PRINT printed per op); each op is one cmocka test.
 *
 * Environment:
 *   CLAI_TEST_SEED=S     the seed (default 1)
 *   CLAI_TEST_CASES=N    cases in all, spread over the ops by weight (default 20000; 200 with
 *                        CLAI_TEST_SIZE=small); an op run alone gets its share of N
 *   CLAI_TEST_SIZE=small small shapes and few cases, for slow simulators such as Oclgrind
 *   CLAI_TEST_OPS=a,b    run only the ops whose names are listed (tests/fuzz-*.sh use it)
 *   CLAI_TEST_CASE=i     run only case i of each selected op (to reproduce one failure)
 *   CLAI_TEST_DUMP=1     print every operand's values (inputs; expected values of outputs) with a failure
 * CLAI_GEMM (the matmul family) and CLAI_ROWS (the row-kernel variant) are read by the library itself;
 * tests/fuzz-gemm-*.sh and tests/fuzz-rows-*.sh set them. */
#include <float.h>
#include <time.h>

#include "testutil.h"

#define FZ_MAX_OPND 16
#ifndef FZ_PRINT
#define FZ_PRINT 4 /* failures printed per op; the rest are counted */
#endif
#define FZ_SENTINEL (-777.5) /* exactly representable in f32, f16 and (as -777) i32 */

enum { FZ_IN = 0, FZ_OUT = 1, FZ_INOUT = 2 };
/* FZ_DENSE: contiguous, but still at a random offset; FZ_NOBCAST: any layout but no stride of 0. */
enum { FZ_ANY = 0, FZ_DENSE = 1, FZ_NOBCAST = 2 };

/* One operand: a view t of the 1-d buffer base. */
typedef struct fz_opnd {
  const char *name;
  clai_tensor *base, *t;
  clai_dtype dt;
  int ndim, kind;
  int64_t shape[CLAI_MAX_DIMS], stride[CLAI_MAX_DIMS], offset, blen;
  size_t n;
  double *v;    /* inputs: the values as stored; outputs: the expected values (FZ_INOUT: the old ones first) */
  double *m;    /* outputs: the magnitude each tolerance is relative to (sum of |terms|); NULL: |v| */
  double *base_host; /* what the whole buffer held when written */
} fz_opnd;

/* Tolerance: |got - want| <= atol + rtol * magnitude, per dtype of the output. */
typedef struct fz_tol {
  double atol32, rtol32, atol16, rtol16;
} fz_tol;

typedef struct fz {
  clai_context *ctx;
  clait_rng rng;
  uint64_t seed;
  long ci;
  const char *op;
  int small;
  char desc[3072];
  size_t dlen;
  fz_opnd o[FZ_MAX_OPND];
  int no;
  long failed_cases, printed;
  int case_failed;
} fz;

static clai_context *g_ctx;
static uint64_t g_seed = 1;
static long g_cases = 20000, g_only_case = -1; /* 20000: a few seconds on POCL, once its kernels are built */
static int g_small, g_dump;

/* ---- case description and failures ------------------------------------------------------------------ */

static void fz_note(fz *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (f->dlen < sizeof f->desc) {
    int k = vsnprintf(f->desc + f->dlen, sizeof f->desc - f->dlen, fmt, ap);
    if (k > 0) f->dlen += (size_t)k;
    if (f->dlen > sizeof f->desc) f->dlen = sizeof f->desc;
  }
  va_end(ap);
}

static void fz_fail(fz *f, const char *fmt, ...) {
  if (!f->case_failed) f->failed_cases++;
  f->case_failed = 1;
  if (f->printed >= FZ_PRINT) return;
  f->printed++;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  printf("# FAIL %s seed=%llu case=%ld: %s\n#   %s\n#   rerun: CLAI_TEST_SEED=%llu CLAI_TEST_OPS=%s CLAI_TEST_CASE=%ld%s "
         "tests/test-fuzz\n",
         f->op, (unsigned long long)f->seed, f->ci, msg, f->desc, (unsigned long long)f->seed, f->op, f->ci,
         f->small ? " CLAI_TEST_SIZE=small" : "");
  if (g_dump)
    for (int k = 0; k < f->no; k++) {
      const fz_opnd *o = &f->o[k];
      printf("#   %s%s:", o->name, o->kind == FZ_IN ? "" : " (expected)");
      for (size_t i = 0; i < o->n && i < 4096; i++) printf(" %.9g", o->v[i]);
      printf("\n");
    }
  fflush(stdout);
}

/* Records a failure when a call that should succeed did not; returns 1 when it succeeded. */
static int fz_ok(fz *f, const char *call, clai_status st) {
  if (st == CLAI_OK) return 1;
  fz_fail(f, "%s returned %s: %s", call, clai_status_name(st), clai_errmsg(f->ctx));
  return 0;
}

/* Checks that a call failed with `want` and a message; the outputs must then be untouched (checked by the
 * caller with fz_untouched). Returns 1 when it failed as it should. */
static int fz_fails(fz *f, const char *call, clai_status st, clai_status want) {
  if (st == want && clai_errmsg(f->ctx)[0] != '\0') return 1;
  if (st == want)
    fz_fail(f, "%s returned %s with an empty message", call, clai_status_name(st));
  else
    fz_fail(f, "%s returned %s, expected %s (%s)", call, clai_status_name(st), clai_status_name(want),
            clai_errmsg(f->ctx));
  return 0;
}

/* ---- random shapes ------------------------------------------------------------------------------------ */

/* The cases draw from SplitMix64: consecutive draws of xorshift64* (clait_next) showed correlations here
 * (the low bits that a modulo keeps), e.g. one seed whose 132 relu cases had no NaN input at all. */
static uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
static uint64_t fz_next(fz *f) {
  f->rng.s += 0x9e3779b97f4a7c15ULL;
  return splitmix(f->rng.s);
}
static int64_t fz_int(fz *f, int64_t lo, int64_t hi) { /* uniform in [lo, hi] */
  return lo + (int64_t)(fz_next(f) % (uint64_t)(hi - lo + 1));
}
static int fz_chance(fz *f, double p) { return (double)(fz_next(f) >> 11) * (1.0 / 9007199254740992.0) < p; }
static double fz_unif(fz *f, double lo, double hi) {
  return lo + (hi - lo) * (double)(fz_next(f) >> 11) * (1.0 / 9007199254740992.0);
}

/* A dimension in [lo, hi] (hi shrinks in small mode), favouring the edges: 0 or 1, primes, then anything. */
static int64_t fz_dim_in(fz *f, int64_t lo, int64_t hi) {
  static const int64_t primes[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 31, 37, 61, 67, 127, 131};
  const int r = (int)fz_int(f, 0, 9);
  if (r == 0) return lo;
  if (r == 1 && lo <= 1 && hi >= 1) return 1;
  if (r <= 5) {
    int64_t cand[16];
    int nc = 0;
    for (size_t i = 0; i < sizeof primes / sizeof primes[0]; i++)
      if (primes[i] >= lo && primes[i] <= hi) cand[nc++] = primes[i];
    if (nc > 0) return cand[fz_int(f, 0, nc - 1)];
  }
  return fz_int(f, lo, hi);
}

static int64_t fz_dim(fz *f, int64_t lo, int64_t hi) {
  if (f->small && hi > 9) hi = lo > 9 ? lo : 9;
  return fz_dim_in(f, lo, hi);
}

/* A wide dimension for the matmul kernels' tiles, in [lo, hi] (small mode: small_hi): half the time one at or
 * next to a multiple of 16 (the widths of vector tiles, 14 and 28 the rows of AVX-512's packed tiles), so that
 * cases meet both sides of one tile, of two, and of a tile and one row or column more. */
static int64_t fz_dim_wide(fz *f, int64_t lo, int64_t hi, int64_t small_hi) {
  static const int64_t edges[] = {13, 14, 15, 16, 17, 27, 28, 29, 31, 32, 33, 47, 48, 49, 63, 64, 65, 95, 96, 97, 127, 128, 129};
  if (f->small) hi = small_hi;
  if (fz_chance(f, 0.5)) {
    int64_t cand[sizeof edges / sizeof edges[0]];
    int nc = 0;
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
      if (edges[i] >= lo && edges[i] <= hi) cand[nc++] = edges[i];
    if (nc > 0) return cand[fz_int(f, 0, nc - 1)];
  }
  return fz_dim_in(f, lo, hi);
}

static clai_dtype fz_fdtype(fz *f) { return fz_chance(f, 0.35) ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32; }

static size_t fz_count(int nd, const int64_t *s) {
  size_t n = 1;
  for (int i = 0; i < nd; i++) n *= (size_t)s[i];
  return n;
}

/* The row-major index of element i of shape s, split per dim into idx. */
static void fz_unravel(size_t i, int nd, const int64_t *s, int64_t *idx) {
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = s[d] == 0 ? 0 : (int64_t)(i % (size_t)s[d]);
    if (s[d] != 0) i /= (size_t)s[d];
  }
}

/* The row-major index into shape s (nd dims, right-aligned with the ond-dim index idx) of the element that
 * broadcasting reads for idx. */
static size_t fz_bidx(const int64_t *idx, int ond, int nd, const int64_t *s) {
  size_t li = 0;
  for (int d = 0; d < nd; d++) li = li * (size_t)s[d] + (size_t)(s[d] == 1 ? 0 : idx[ond - nd + d]);
  return li;
}

/* A shape that broadcasts to out (ond dims): some leading dims dropped, some dims set to 1. */
static int fz_bshape(fz *f, int ond, const int64_t *out, int64_t *s) {
  int nd = ond - (int)(fz_chance(f, 0.3) ? fz_int(f, 0, ond) : 0);
  for (int d = 0; d < nd; d++) s[d] = fz_chance(f, 0.3) ? 1 : out[ond - nd + d];
  return nd;
}

static void fz_shape_str(char *buf, size_t cap, int nd, const int64_t *s) {
  size_t k = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < nd && k < cap; d++) k += (size_t)snprintf(buf + k, cap - k, d ? ",%lld" : "%lld", (long long)s[d]);
  if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* ---- operands ----------------------------------------------------------------------------------------- */

static double fz_filler(clai_dtype dt, int kind) {
  if (kind != FZ_IN) return dt == CLAI_DTYPE_I32 ? trunc(FZ_SENTINEL) : FZ_SENTINEL;
  return dt == CLAI_DTYPE_I32 ? 1073741823.0 : NAN;
}

static void fz_host_put(clai_dtype dt, void *buf, size_t i, double v) {
  switch (dt) {
  case CLAI_DTYPE_F32: ((float *)buf)[i] = (float)v; break;
  case CLAI_DTYPE_F16: ((uint16_t *)buf)[i] = clait_f32_to_f16((float)v); break;
  default: ((int32_t *)buf)[i] = (int32_t)v; break;
  }
}

/* The buffer address of element i of o. */
static int64_t fz_addr(const fz_opnd *o, size_t i) {
  int64_t idx[CLAI_MAX_DIMS], a = o->offset;
  fz_unravel(i, o->ndim, o->shape, idx);
  for (int d = 0; d < o->ndim; d++) a += idx[d] * o->stride[d];
  return a;
}

/* Makes an operand of a random layout. v: the values (inputs and FZ_INOUT; rounded to dt and kept), or NULL
 * for outputs. */
static fz_opnd *fz_make(fz *f, const char *name, clai_dtype dt, int nd, const int64_t *shape, int kind, int flags,
                        const double *v) {
  assert_true(f->no < FZ_MAX_OPND);
  fz_opnd *o = &f->o[f->no++];
  memset(o, 0, sizeof *o);
  o->name = name, o->dt = dt, o->ndim = nd, o->kind = kind;
  memcpy(o->shape, shape, (size_t)nd * sizeof *shape);
  o->n = fz_count(nd, shape);
  /* Layout: dims stored in a random order, each padded, the innermost stepped, at an offset. */
  int perm[CLAI_MAX_DIMS];
  int64_t pad[CLAI_MAX_DIMS] = {0}, step = 1;
  for (int d = 0; d < nd; d++) perm[d] = d;
  const int dense = flags == FZ_DENSE || fz_chance(f, 0.25);
  if (!dense) {
    if (fz_chance(f, 0.5))
      for (int d = nd - 1; d > 0; d--) {
        int j = (int)fz_int(f, 0, d), t = perm[d];
        perm[d] = perm[j], perm[j] = t;
      }
    for (int d = 0; d < nd; d++) pad[d] = fz_chance(f, 0.3) ? fz_int(f, 1, 3) : 0;
    step = fz_chance(f, 0.3) ? 2 : 1;
  }
  o->offset = fz_chance(f, 0.7) ? fz_int(f, 1, 19) : 0;
  int64_t acc = step;
  for (int k = nd - 1; k >= 0; k--) {
    const int d = perm[k];
    o->stride[d] = acc;
    acc *= (shape[d] > 0 ? shape[d] : 1) + pad[d];
  }
  /* An input may also be broadcast along one dim (stride 0: every index reads the same elements). */
  if (kind == FZ_IN && !dense && flags != FZ_NOBCAST && nd > 0 && fz_chance(f, 0.15)) {
    const int d = (int)fz_int(f, 0, nd - 1);
    if (shape[d] > 1) o->stride[d] = 0;
  }
  int64_t last = o->offset;
  if (o->n > 0)
    for (int d = 0; d < nd; d++) last += (shape[d] - 1) * o->stride[d];
  o->blen = last + 1 + fz_int(f, 0, 5);

  char sh[128], st[128];
  fz_shape_str(sh, sizeof sh, nd, shape);
  fz_shape_str(st, sizeof st, nd, o->stride);
  fz_note(f, "%s %s %s strides %s offset %lld (buffer %lld); ", name, clai_dtype_name(dt), sh, st,
          (long long)o->offset, (long long)o->blen);

  CLAIT_OK(f->ctx, clai_tensor_init(f->ctx, &o->base, dt, 1, &o->blen));
  CLAIT_OK(f->ctx, clai_tensor_view(o->base, &o->t, nd, shape, o->stride, o->offset));
  o->v = calloc(o->n + 1, sizeof *o->v);
  o->base_host = malloc((size_t)o->blen * sizeof *o->base_host);
  assert_non_null(o->v);
  assert_non_null(o->base_host);
  for (int64_t i = 0; i < o->blen; i++) o->base_host[i] = fz_filler(dt, kind);
  if (v != NULL) {
    for (size_t i = 0; i < o->n; i++)
      o->base_host[fz_addr(o, i)] = clait_as_dtype(dt, dt == CLAI_DTYPE_I32 ? trunc(v[i]) : v[i]);
    /* What each element reads (with a stride of 0, the last value written to its address). */
    for (size_t i = 0; i < o->n; i++) o->v[i] = o->base_host[fz_addr(o, i)];
  }
  const size_t es = clai_dtype_size(dt);
  void *buf = malloc((size_t)o->blen * es);
  assert_non_null(buf);
  for (int64_t i = 0; i < o->blen; i++) fz_host_put(dt, buf, (size_t)i, o->base_host[i]);
  clai_status s = clai_tensor_write(o->base, buf, (size_t)o->blen * es);
  free(buf);
  CLAIT_OK(f->ctx, s);
  return o;
}

/* Random values in [lo, hi) for an operand of n elements (caller frees). */
static double *fz_rand(fz *f, size_t n, double lo, double hi) {
  double *v = malloc((n + 1) * sizeof *v);
  assert_non_null(v);
  for (size_t i = 0; i < n; i++) v[i] = fz_unif(f, lo, hi);
  return v;
}

static fz_opnd *fz_in(fz *f, const char *name, clai_dtype dt, int nd, const int64_t *shape, double lo, double hi) {
  double *v = fz_rand(f, fz_count(nd, shape), lo, hi);
  fz_opnd *o = fz_make(f, name, dt, nd, shape, FZ_IN, FZ_ANY, v);
  free(v);
  return o;
}
static fz_opnd *fz_in_v(fz *f, const char *name, clai_dtype dt, int nd, const int64_t *shape, const double *v) {
  return fz_make(f, name, dt, nd, shape, FZ_IN, FZ_ANY, v);
}
static fz_opnd *fz_out(fz *f, const char *name, clai_dtype dt, int nd, const int64_t *shape) {
  return fz_make(f, name, dt, nd, shape, FZ_OUT, FZ_ANY, NULL);
}

/* An input with the values v that is, in about one case in 8, also the op's output (*inplace set): the op
 * is then called with the same view as input and output, its buffer holds the sentinel outside the view,
 * and the reference must read each old value before it writes the new one. */
static fz_opnd *fz_in_or_inplace(fz *f, const char *name, clai_dtype dt, int nd, const int64_t *shape, const double *v,
                                 int *inplace) {
  *inplace = fz_chance(f, 0.12);
  if (!*inplace) return fz_in_v(f, name, dt, nd, shape, v);
  fz_note(f, "in place: %s is also the output; ", name);
  return fz_make(f, name, dt, nd, shape, FZ_INOUT, FZ_NOBCAST, v);
}

/* Reads the whole buffer of o back (as doubles). */
static double *fz_read_base(fz *f, fz_opnd *o) {
  double *b = malloc((size_t)o->blen * sizeof *b);
  assert_non_null(b);
  clait_read(f->ctx, o->base, b);
  return b;
}

static void fz_index_str(char *buf, size_t cap, const fz_opnd *o, size_t i) {
  int64_t idx[CLAI_MAX_DIMS];
  fz_unravel(i, o->ndim, o->shape, idx);
  fz_shape_str(buf, cap, o->ndim, idx);
}

/* Compares the output o with its expected values o->v (magnitudes o->m) and checks that nothing outside its
 * view changed. Reads the buffer directly, so the library's own strided read is not trusted. */
static void fz_check(fz *f, fz_opnd *o, fz_tol tol) {
  double *b = fz_read_base(f, o);
  char *hit = calloc((size_t)o->blen + 1, 1);
  assert_non_null(hit);
  const double atol = o->dt == CLAI_DTYPE_F16 ? tol.atol16 : tol.atol32;
  const double rtol = o->dt == CLAI_DTYPE_F16 ? tol.rtol16 : tol.rtol32;
  int bad = 0;
  for (size_t i = 0; i < o->n; i++) {
    const int64_t a = fz_addr(o, i);
    hit[a] = 1;
    const double g = b[a], w = o->v[i], m = o->m != NULL ? o->m[i] : fabs(w);
    int ok;
    if (o->dt == CLAI_DTYPE_I32)
      ok = g == w;
    else if (isnan(w))
      ok = isnan(g);
    else if (isinf(w))
      ok = g == w;
    else {
      /* f16: plus the rounding of the result to half (and the f16 overflow to inf of a finite value). */
      double lim = atol + rtol * m;
      if (o->dt == CLAI_DTYPE_F16) {
        lim += fabs(w) * (1.0 / 2048) + 6e-8;
        ok = fabs(g - w) <= lim || (fabs(w) > 65504 && isinf(g) && (g > 0) == (w > 0));
      } else {
        /* an exact value past f32's range (e.g. log_softmax of -FLT_MAX scaled by 1.5) is inf in f32 */
        ok = fabs(g - w) <= lim || (fabs(w) + lim > FLT_MAX && isinf(g) && (g > 0) == (w > 0));
      }
    }
    if (!ok && !bad) {
      char is[128];
      fz_index_str(is, sizeof is, o, i);
      fz_fail(f, "%s element %zu (index %s, buffer address %lld) is %.9g, expected %.9g (atol %g, rtol %g of %g)",
              o->name, i, is, (long long)a, g, w, atol, rtol, m);
      bad = 1;
    }
  }
  for (int64_t a = 0; a < o->blen && !bad; a++)
    if (!hit[a] && !(b[a] == o->base_host[a] || (isnan(b[a]) && isnan(o->base_host[a])))) {
      fz_fail(f, "%s: buffer address %lld, outside the view, changed from %.9g to %.9g", o->name, (long long)a,
              o->base_host[a], b[a]);
      bad = 1;
    }
  free(hit);
  free(b);
}

/* After a call that must fail: nothing of o's buffer changed. */
static void fz_untouched(fz *f, fz_opnd *o) {
  double *b = fz_read_base(f, o);
  for (int64_t a = 0; a < o->blen; a++)
    if (!(b[a] == o->base_host[a] || (isnan(b[a]) && isnan(o->base_host[a])))) {
      fz_fail(f, "%s: a failed call changed buffer address %lld from %.9g to %.9g", o->name, (long long)a,
              o->base_host[a], b[a]);
      break;
    }
  free(b);
}

/* In about one case in 25, makes dim d (first <= d < nd) of an output's shape one too large, so that the call
 * must fail. Returns 1 when it did. */
static int fz_spoil(fz *f, int nd, int64_t *s, int first) {
  if (nd <= first || !fz_chance(f, 0.04)) return 0;
  const int d = (int)fz_int(f, first, nd - 1);
  s[d]++;
  fz_note(f, "dim %d of the output made wrong: must fail with CLAI_E_SHAPE; ", d);
  return 1;
}

/* After a call with a spoiled output shape: CLAI_E_SHAPE, a message that names the output, and the output
 * untouched. */
static void fz_refused(fz *f, const char *call, clai_status st, fz_opnd *out) {
  if (!fz_fails(f, call, st, CLAI_E_SHAPE)) return;
  if (strstr(clai_errmsg(f->ctx), out->name) == NULL)
    fz_fail(f, "%s: the message \"%s\" does not name %s", call, clai_errmsg(f->ctx), out->name);
  fz_untouched(f, out);
}

/* The magnitude array of o (allocated on first use, zeroed). */
static double *fz_mag(fz_opnd *o) {
  if (o->m == NULL) {
    o->m = calloc(o->n + 1, sizeof *o->m);
    assert_non_null(o->m);
  }
  return o->m;
}

static void fz_end(fz *f) {
  for (int i = f->no - 1; i >= 0; i--) {
    fz_opnd *o = &f->o[i];
    if (o->t != o->base) clai_tensor_free(o->t);
    clai_tensor_free(o->base);
    free(o->v), free(o->m), free(o->base_host);
  }
  f->no = 0;
}

/* Tolerances. Elementwise ops are a few roundings of the result; reductions and products are relative to
 * the sum of |terms| (their error grows with the length, here at most a few hundred). */
static const fz_tol TOL_EXACT = {0, 0, 0, 0};
static const fz_tol TOL_ELEM = {1e-7, 2e-6, 1e-4, 1e-3};
static const fz_tol TOL_SUM = {1e-6, 1e-5, 1e-3, 2e-3};
static const fz_tol TOL_TRANS = {2e-6, 1e-5, 1e-3, 2e-3}; /* exp, log, tanh, ... */

/* With probability p, replaces a few elements by special values: a NaN, then maybe more NaN or (where
 * `inf`) +-inf. */
static void fz_specials(fz *f, double *v, size_t n, int inf, double p) {
  if (n == 0 || !fz_chance(f, p)) return;
  for (int k = (int)fz_int(f, 1, 3); k > 0; k--) {
    const int r = inf && k > 1 ? (int)fz_int(f, 0, 2) : 0;
    v[fz_int(f, 0, (int64_t)n - 1)] = r == 0 ? NAN : r == 1 ? INFINITY : -INFINITY;
  }
}

/* A random shape of nd dims (each in [lo, hi]), its largest dims halved until it has at most 4096
 * elements (512 in small mode), so that a case stays cheap. */
static void fz_shape(fz *f, int nd, int64_t *s, int64_t lo, int64_t hi) {
  for (int d = 0; d < nd; d++) s[d] = fz_dim(f, lo, hi);
  const size_t cap = f->small ? 512 : 4096;
  while (fz_count(nd, s) > cap) {
    int big = 0;
    for (int d = 1; d < nd; d++)
      if (s[d] > s[big]) big = d;
    s[big] = (s[big] + 1) / 2;
  }
}

/* =========================================================================================================
 * Elementwise ops.
 */

static const char *const unary_names[] = {"neg", "abs", "exp", "log", "sqrt", "relu", "gelu", "silu", "sigmoid", "tanh"};

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* The derivative, as clai_unary_backward documents it. */
static double ref_unary_d(clai_unary_op op, double x) {
  switch (op) {
  case CLAI_NEG: return -1;
  case CLAI_ABS: return x > 0 ? 1 : x < 0 ? -1 : 0;
  case CLAI_EXP: return exp(x);
  case CLAI_LOG: return 1 / x;
  case CLAI_SQRT: return 1 / (2 * sqrt(x));
  case CLAI_RELU: return isnan(x) ? x : x > 0 ? 1 : 0;
  case CLAI_GELU: {
    const double c = sqrt(2.0 / M_PI), u = c * (x + 0.044715 * x * x * x), t = tanh(u);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x);
  }
  case CLAI_SILU: {
    const double s = ref_sigmoid(x);
    return s * (1 + x * (1 - s));
  }
  case CLAI_SIGMOID: {
    const double s = ref_sigmoid(x);
    return s * (1 - s);
  }
  case CLAI_TANH: return 1 - tanh(x) * tanh(x);
  }
  return NAN;
}

static void unary_domain(clai_unary_op op, double *lo, double *hi) {
  *lo = -4, *hi = 4;
  if (op == CLAI_LOG || op == CLAI_SQRT) *lo = 0.05;
  if (op == CLAI_EXP) *lo = -6;
}

static void op_unary(fz *f) {
  const clai_unary_op op = (clai_unary_op)fz_int(f, 0, 9);
  const int int_ok = op == CLAI_NEG || op == CLAI_ABS || op == CLAI_RELU;
  const clai_dtype dt = int_ok && fz_chance(f, 0.2) ? CLAI_DTYPE_I32 : fz_fdtype(f);
  int64_t s[4];
  const int nd = (int)fz_int(f, 0, 4);
  fz_shape(f, nd, s, 0, 40);
  const size_t n = fz_count(nd, s);
  double lo, hi;
  unary_domain(op, &lo, &hi);
  if (dt == CLAI_DTYPE_I32) lo = -1000, hi = 1000;
  double *v = fz_rand(f, n, lo, hi);
  if (dt != CLAI_DTYPE_I32)
    fz_specials(f, v, n, op != CLAI_GELU && op != CLAI_SILU, 0.35);
  fz_note(f, "op %s; ", unary_names[op]);
  int inplace;
  fz_opnd *x = fz_in_or_inplace(f, "x", dt, nd, s, v, &inplace);
  free(v);
  const int spoiled = !inplace && fz_spoil(f, nd, s, 0);
  fz_opnd *out = inplace ? x : fz_out(f, "out", dt, nd, s);
  const clai_status st = clai_unary(f->ctx, op, out->t, x->t);
  if (spoiled) {
    fz_refused(f, "clai_unary", st, out);
    return;
  }
  if (!fz_ok(f, "clai_unary", st)) return;
  for (size_t i = 0; i < n; i++) out->v[i] = clait_ref_unary(op, x->v[i]);
  fz_check(f, out, TOL_TRANS);
}

static void op_unary_backward(fz *f) {
  const clai_unary_op op = (clai_unary_op)fz_int(f, 0, 9);
  const clai_dtype dt = fz_fdtype(f);
  int64_t s[4];
  const int nd = (int)fz_int(f, 0, 4);
  fz_shape(f, nd, s, 0, 40);
  const size_t n = fz_count(nd, s);
  double lo, hi;
  unary_domain(op, &lo, &hi);
  if (op == CLAI_LOG || op == CLAI_SQRT) lo = 0.25;
  fz_note(f, "op %s; ", unary_names[op]);
  fz_opnd *gy = fz_in(f, "grad_out", dt, nd, s, -2, 2), *x = fz_in(f, "x", dt, nd, s, lo, hi);
  fz_opnd *gx = fz_out(f, "grad_x", dt, nd, s);
  if (!fz_ok(f, "clai_unary_backward", clai_unary_backward(f->ctx, op, gx->t, gy->t, x->t))) return;
  for (size_t i = 0; i < n; i++) gx->v[i] = gy->v[i] * ref_unary_d(op, x->v[i]);
  fz_check(f, gx, TOL_TRANS);
}

static const char *const binary_names[] = {"add", "sub", "mul", "div", "maximum", "minimum"};

static double ref_binary(clai_binary_op op, clai_dtype dt, double a, double b) {
  switch (op) {
  case CLAI_ADD: return a + b;
  case CLAI_SUB: return a - b;
  case CLAI_MUL: return a * b;
  case CLAI_DIV:
    if (dt == CLAI_DTYPE_I32) return b == 0 ? 0 : trunc(a / b);
    return a / b;
  case CLAI_MAXIMUM: return fmax(a, b);
  case CLAI_MINIMUM: return fmin(a, b);
  }
  return NAN;
}

/* out, a and b: out's shape random, a's and b's broadcasting to it. */
static int fz_binary_shapes(fz *f, int64_t *so, int64_t *sa, int *nda, int64_t *sb, int *ndb) {
  const int nd = (int)fz_int(f, 0, 4);
  fz_shape(f, nd, so, 0, 23);
  *nda = fz_bshape(f, nd, so, sa);
  *ndb = fz_bshape(f, nd, so, sb);
  return nd;
}

/* Values for binary ops: integers for i32, divisors kept away from 0 for floats. */
static double *binary_values(fz *f, clai_binary_op op, clai_dtype dt, size_t n, int divisor) {
  double *v = fz_rand(f, n, dt == CLAI_DTYPE_I32 ? -1000 : -4, dt == CLAI_DTYPE_I32 ? 1000 : 4);
  for (size_t i = 0; i < n; i++) {
    if (dt == CLAI_DTYPE_I32) v[i] = trunc(v[i]) / (divisor ? 10 : 1);
    if (divisor && op == CLAI_DIV && dt != CLAI_DTYPE_I32 && fabs(v[i]) < 0.25) v[i] = v[i] < 0 ? -0.25 : 0.25;
  }
  return v;
}

static void op_binary(fz *f) {
  const clai_binary_op op = (clai_binary_op)fz_int(f, 0, 5);
  const clai_dtype dt = fz_chance(f, 0.2) ? CLAI_DTYPE_I32 : fz_fdtype(f);
  int64_t so[4], sa[4], sb[4];
  int nda, ndb;
  const int nd = fz_binary_shapes(f, so, sa, &nda, sb, &ndb);
  fz_note(f, "op %s; ", binary_names[op]);
  double *va = binary_values(f, op, dt, fz_count(nda, sa), 0), *vb = binary_values(f, op, dt, fz_count(ndb, sb), 1);
  int inplace = 0;
  fz_opnd *a = nda == nd && memcmp(sa, so, (size_t)nd * sizeof *so) == 0 ? fz_in_or_inplace(f, "a", dt, nda, sa, va, &inplace)
                                                                        : fz_in_v(f, "a", dt, nda, sa, va);
  fz_opnd *b = fz_in_v(f, "b", dt, ndb, sb, vb);
  free(va), free(vb);
  fz_opnd *out = inplace ? a : fz_out(f, "out", dt, nd, so);
  if (!fz_ok(f, "clai_binary", clai_binary(f->ctx, op, out->t, a->t, b->t))) return;
  int64_t idx[CLAI_MAX_DIMS];
  for (size_t i = 0; i < out->n; i++) {
    fz_unravel(i, nd, so, idx);
    out->v[i] = ref_binary(op, dt, a->v[fz_bidx(idx, nd, nda, sa)], b->v[fz_bidx(idx, nd, ndb, sb)]);
  }
  fz_check(f, out, TOL_ELEM);
}

/* Gradients of a OP b, with ties of maximum/minimum split in halves, summed over broadcast dims. */
static void op_binary_backward(fz *f) {
  const clai_binary_op op = (clai_binary_op)fz_int(f, 0, 5);
  const clai_dtype dt = fz_fdtype(f);
  int64_t so[4], sa[4], sb[4];
  int nda, ndb;
  const int nd = fz_binary_shapes(f, so, sa, &nda, sb, &ndb);
  fz_note(f, "op %s; ", binary_names[op]);
  double *va = binary_values(f, op, dt, fz_count(nda, sa), 0), *vb = binary_values(f, op, dt, fz_count(ndb, sb), 1);
  if (op == CLAI_MAXIMUM || op == CLAI_MINIMUM) /* some ties */
    for (size_t i = 0; i < fz_count(nda, sa) && i < fz_count(ndb, sb); i++)
      if (fz_chance(f, 0.2)) va[i] = vb[i];
  fz_opnd *gy = fz_in(f, "grad_out", dt, nd, so, -2, 2);
  fz_opnd *a = fz_in_v(f, "a", dt, nda, sa, va), *b = fz_in_v(f, "b", dt, ndb, sb, vb);
  free(va), free(vb);
  const int want_a = fz_chance(f, 0.85), want_b = !want_a || fz_chance(f, 0.85);
  fz_opnd *ga = want_a ? fz_out(f, "grad_a", dt, nda, sa) : NULL, *gb = want_b ? fz_out(f, "grad_b", dt, ndb, sb) : NULL;
  if (!fz_ok(f, "clai_binary_backward",
             clai_binary_backward(f->ctx, op, ga ? ga->t : NULL, gb ? gb->t : NULL, gy->t, a->t, b->t)))
    return;
  double *ma = ga ? fz_mag(ga) : NULL, *mb = gb ? fz_mag(gb) : NULL;
  int64_t idx[CLAI_MAX_DIMS];
  for (size_t i = 0; i < gy->n; i++) {
    fz_unravel(i, nd, so, idx);
    const size_t ia = fz_bidx(idx, nd, nda, sa), ib = fz_bidx(idx, nd, ndb, sb);
    const double x = a->v[ia], y = b->v[ib], g = gy->v[i];
    double da = 0, db = 0;
    switch (op) {
    case CLAI_ADD: da = 1, db = 1; break;
    case CLAI_SUB: da = 1, db = -1; break;
    case CLAI_MUL: da = y, db = x; break;
    case CLAI_DIV: da = 1 / y, db = -x / (y * y); break;
    case CLAI_MAXIMUM: da = x > y ? 1 : x == y ? 0.5 : 0, db = 1 - da; break;
    case CLAI_MINIMUM: da = x < y ? 1 : x == y ? 0.5 : 0, db = 1 - da; break;
    }
    if (ga) ga->v[ia] += g * da, ma[ia] += fabs(g * da);
    if (gb) gb->v[ib] += g * db, mb[ib] += fabs(g * db);
  }
  if (ga) fz_check(f, ga, TOL_SUM);
  if (gb) fz_check(f, gb, TOL_SUM);
}

static void op_affine(fz *f) {
  const clai_dtype dt = fz_fdtype(f);
  int64_t s[4];
  const int nd = (int)fz_int(f, 0, 4);
  fz_shape(f, nd, s, 0, 40);
  const int which = (int)fz_int(f, 0, 2);
  const float alpha = which == 2 ? 1.0f : (float)fz_unif(f, -3, 3), beta = which == 1 ? 0.0f : (float)fz_unif(f, -3, 3);
  fz_note(f, "%s alpha %.9g beta %.9g; ", which == 0 ? "clai_affine" : which == 1 ? "clai_scale" : "clai_add_scalar",
          alpha, beta);
  int inplace;
  double *v = fz_rand(f, fz_count(nd, s), -4, 4);
  fz_opnd *x = fz_in_or_inplace(f, "x", dt, nd, s, v, &inplace);
  free(v);
  const int spoiled = !inplace && fz_spoil(f, nd, s, 0);
  fz_opnd *out = inplace ? x : fz_out(f, "out", dt, nd, s);
  clai_status st = which == 0   ? clai_affine(f->ctx, out->t, x->t, alpha, beta)
                   : which == 1 ? clai_scale(f->ctx, out->t, x->t, alpha)
                                : clai_add_scalar(f->ctx, out->t, x->t, beta);
  if (spoiled) {
    fz_refused(f, "affine", st, out);
    return;
  }
  if (!fz_ok(f, "affine", st)) return;
  double *m = fz_mag(out);
  for (size_t i = 0; i < out->n; i++) out->v[i] = (double)alpha * x->v[i] + beta, m[i] = fabs(alpha * x->v[i]) + fabs(beta);
  fz_check(f, out, TOL_ELEM);
}

static clai_dtype fz_anydtype(fz *f) { return (clai_dtype)fz_int(f, 0, 2); }

static double as_stored(clai_dtype dt, double v) { return dt == CLAI_DTYPE_I32 ? trunc(v) : clait_as_dtype(dt, v); }

static void op_copy(fz *f) {
  const clai_dtype sd = fz_anydtype(f), dd = fz_anydtype(f);
  int64_t so[4], ss[4];
  const int nd = (int)fz_int(f, 0, 4);
  fz_shape(f, nd, so, 0, 23);
  const int nds = fz_bshape(f, nd, so, ss);
  fz_opnd *src = fz_in(f, "src", sd, nds, ss, -1000, 1000), *dst = fz_out(f, "dst", dd, nd, so);
  if (!fz_ok(f, "clai_copy", clai_copy(f->ctx, dst->t, src->t))) return;
  int64_t idx[CLAI_MAX_DIMS];
  for (size_t i = 0; i < dst->n; i++) {
    fz_unravel(i, nd, so, idx);
    dst->v[i] = as_stored(dd, src->v[fz_bidx(idx, nd, nds, ss)]);
  }
  fz_check(f, dst, TOL_EXACT);
}

static void op_fill(fz *f) {
  const clai_dtype dt = fz_anydtype(f);
  int64_t s[4];
  const int nd = (int)fz_int(f, 0, 4);
  fz_shape(f, nd, s, 0, 40);
  double value = fz_unif(f, -1000, 1000);
  if (dt == CLAI_DTYPE_I32) value = trunc(value);
  fz_note(f, "value %.17g; ", value);
  fz_opnd *dst = fz_out(f, "dst", dt, nd, s);
  if (!fz_ok(f, "clai_fill", clai_fill(f->ctx, dst->t, value))) return;
  for (size_t i = 0; i < dst->n; i++) dst->v[i] = as_stored(dt, value);
  fz_check(f, dst, TOL_EXACT);
}

static void op_where(fz *f) {
  const clai_dtype dt = fz_anydtype(f), mdt = fz_anydtype(f);
  int64_t so[4], sm[4], sa[4], sb[4];
  const int nd = (int)fz_int(f, 0, 4);
  fz_shape(f, nd, so, 0, 23);
  const int ndm = fz_bshape(f, nd, so, sm), nda = fz_bshape(f, nd, so, sa), ndb = fz_bshape(f, nd, so, sb);
  const size_t nm = fz_count(ndm, sm);
  double *mv = fz_rand(f, nm, -2, 2);
  for (size_t i = 0; i < nm; i++) {
    const int r = (int)fz_int(f, 0, 5);
    mv[i] = r == 0 ? 0.0 : r == 1 ? -0.0 : r == 2 && mdt != CLAI_DTYPE_I32 ? NAN : r == 3 ? 0.0 : mv[i] + (mv[i] > 0 ? 1 : -1);
  }
  fz_opnd *mask = fz_in_v(f, "mask", mdt, ndm, sm, mv);
  free(mv);
  fz_opnd *a = fz_in(f, "a", dt, nda, sa, -100, 100), *b = fz_in(f, "b", dt, ndb, sb, -100, 100);
  fz_opnd *out = fz_out(f, "out", dt, nd, so);
  if (!fz_ok(f, "clai_where", clai_where(f->ctx, out->t, mask->t, a->t, b->t))) return;
  int64_t idx[CLAI_MAX_DIMS];
  for (size_t i = 0; i < out->n; i++) {
    fz_unravel(i, nd, so, idx);
    const double m = mask->v[fz_bidx(idx, nd, ndm, sm)];
    out->v[i] = m != 0 || isnan(m) ? a->v[fz_bidx(idx, nd, nda, sa)] : b->v[fz_bidx(idx, nd, ndb, sb)];
  }
  fz_check(f, out, TOL_EXACT);
}

/* clai_contiguous: the result is the library's own tensor (no sentinel), so it is read and compared. */
static void op_contiguous(fz *f) {
  const clai_dtype dt = fz_anydtype(f);
  int64_t s[4];
  const int nd = (int)fz_int(f, 0, 4);
  fz_shape(f, nd, s, 0, 23);
  fz_opnd *x = fz_in(f, "x", dt, nd, s, -1000, 1000);
  clai_tensor *out = NULL;
  if (!fz_ok(f, "clai_contiguous", clai_contiguous(f->ctx, &out, x->t))) return;
  if (!clai_tensor_is_contiguous(out)) fz_fail(f, "the result is not contiguous");
  double *got = calloc(x->n + 1, sizeof *got);
  assert_non_null(got);
  clait_read(f->ctx, out, got);
  for (size_t i = 0; i < x->n; i++)
    if (!(got[i] == x->v[i])) {
      fz_fail(f, "out element %zu is %.9g, expected %.9g", i, got[i], x->v[i]);
      break;
    }
  free(got);
  clai_tensor_free(out);
}

/* =========================================================================================================
 * Matrix products.
 */

static const char *const act_names[] = {"none", "relu", "gelu", "silu"};

static double ref_act(clai_activation act, double x) {
  switch (act) {
  case CLAI_ACT_RELU: return clait_ref_unary(CLAI_RELU, x);
  case CLAI_ACT_GELU: return clait_ref_unary(CLAI_GELU, x);
  case CLAI_ACT_SILU: return clait_ref_unary(CLAI_SILU, x);
  default: return x;
  }
}

static void op_matmul(fz *f) {
  const int nb = (int)fz_int(f, 0, 2), ta = fz_chance(f, 0.5), tb = fz_chance(f, 0.5);
  int64_t sc[4], sa[4], sbb[4];
  fz_shape(f, nb, sc, 0, 3);
  /* A quarter of the cases are wide (up to 150 x 150 x 300; small mode 33 x 40 x 40): several tiles of the
   * CPUs' packed kernels (14 x 32 on AVX-512) and of the in-place one, which takes M and N of a tile or more;
   * the others keep to 70, where 0, 1 and primes come up more often. */
  const int wide = fz_chance(f, 0.25);
  const int64_t M = wide ? fz_dim_wide(f, 0, 150, 33) : fz_dim(f, 0, 70),
                N = wide ? fz_dim_wide(f, 0, 150, 40) : fz_dim(f, 0, 70),
                K = wide ? fz_dim_wide(f, 0, 300, 40) : fz_dim(f, 0, 70);
  int nba = fz_bshape(f, nb, sc, sa), nbb = fz_bshape(f, nb, sc, sbb);
  sa[nba] = ta ? K : M, sa[nba + 1] = ta ? M : K;
  sbb[nbb] = tb ? N : K, sbb[nbb + 1] = tb ? K : N;
  sc[nb] = M, sc[nb + 1] = N;
  const clai_dtype abt = fz_fdtype(f), cdt = fz_fdtype(f);
  const float alpha = fz_chance(f, 0.5) ? 1.0f : (float)fz_unif(f, -2, 2);
  const float beta = fz_chance(f, 0.5) ? 0.0f : (float)fz_unif(f, -2, 2);
  const int ex = fz_chance(f, 0.6);
  const clai_activation act = ex ? (clai_activation)fz_int(f, 0, 3) : CLAI_ACT_NONE;
  const int bias_kind = ex ? (int)fz_int(f, 0, 3) : 0; /* none, [N], [M, 1], [M, N] */
  fz_note(f, "trans_a %d trans_b %d alpha %.9g beta %.9g act %s; ", ta, tb, alpha, beta, act_names[act]);
  double *va = fz_rand(f, fz_count(nba + 2, sa), -1, 1);
  fz_specials(f, va, fz_count(nba + 2, sa), 0, 0.17);
  fz_opnd *a = fz_in_v(f, "a", abt, nba + 2, sa, va);
  free(va);
  fz_opnd *b = fz_in(f, "b", abt, nbb + 2, sbb, -1, 1);
  fz_opnd *bias = NULL;
  if (bias_kind) {
    const int64_t bs[2] = {bias_kind == 1 ? N : M, bias_kind == 2 ? 1 : N};
    bias = fz_in(f, "bias", fz_fdtype(f), bias_kind == 1 ? 1 : 2, bias_kind == 1 ? bs + 0 : bs, -1, 1);
  }
  /* C is read only when beta is not 0; otherwise its view holds NaN, which must not propagate. */
  const size_t nc = fz_count(nb + 2, sc);
  double *vc = fz_rand(f, nc, -1, 1);
  if (beta == 0)
    for (size_t i = 0; i < nc; i++) vc[i] = NAN;
  const int spoiled = fz_spoil(f, nb + 2, sc, nb);
  fz_opnd *c = fz_make(f, "c", cdt, nb + 2, sc, spoiled ? FZ_OUT : FZ_INOUT, FZ_ANY, spoiled ? NULL : vc);
  free(vc);
  const clai_matmul_epilogue ep = {bias ? bias->t : NULL, act};
  clai_status st = ex ? clai_matmul_ex(f->ctx, c->t, a->t, ta, b->t, tb, alpha, beta, &ep)
                      : clai_matmul(f->ctx, c->t, a->t, ta, b->t, tb, alpha, beta);
  if (spoiled) {
    fz_refused(f, ex ? "clai_matmul_ex" : "clai_matmul", st, c);
    return;
  }
  if (!fz_ok(f, ex ? "clai_matmul_ex" : "clai_matmul", st)) return;
  double *m = fz_mag(c);
  int64_t idx[CLAI_MAX_DIMS];
  for (size_t i = 0; i < nc; i++) {
    fz_unravel(i, nb + 2, sc, idx);
    const int64_t r = idx[nb], col = idx[nb + 1];
    /* The batch entry of a and b (their own leading dims broadcast to C's). */
    idx[nb] = 0, idx[nb + 1] = 0;
    const size_t ba = fz_bidx(idx, nb, nba, sa) * (size_t)(M * K), bb = fz_bidx(idx, nb, nbb, sbb) * (size_t)(K * N);
    double acc = 0, mag = 0;
    for (int64_t k = 0; k < K; k++) {
      const double x = a->v[ba + (size_t)(ta ? k * M + r : r * K + k)];
      const double y = b->v[bb + (size_t)(tb ? col * K + k : k * N + col)];
      acc += x * y, mag += fabs(x * y);
    }
    double z = alpha * acc, mz = fabs(alpha) * mag;
    if (beta != 0) z += beta * c->v[i], mz += fabs(beta * c->v[i]);
    if (bias) {
      const double bv = bias->v[bias_kind == 1 ? (size_t)col : bias_kind == 2 ? (size_t)r : (size_t)(r * N + col)];
      z += bv, mz += fabs(bv);
    }
    c->v[i] = ref_act(act, z), m[i] = mz;
  }
  fz_check(f, c, TOL_SUM);
}

/* =========================================================================================================
 * Reductions.
 */

static const char *const reduce_names[] = {"sum", "mean", "max", "min", "var"};

/* Splits x's shape around axis (CLAI_AXIS_ALL: one row of everything): outer x len x inner. */
static void fz_split(int nd, const int64_t *s, int axis, size_t *outer, size_t *len, size_t *inner) {
  if (axis == CLAI_AXIS_ALL) {
    *outer = 1, *len = fz_count(nd, s), *inner = 1;
    return;
  }
  *outer = fz_count(axis, s), *len = (size_t)s[axis], *inner = fz_count(nd - axis - 1, s + axis + 1);
}

/* The reduced shape of x for axis/keepdim. */
static int fz_reduced(int nd, const int64_t *s, int axis, int keepdim, int64_t *out) {
  int k = 0;
  for (int d = 0; d < nd; d++) {
    if (axis == CLAI_AXIS_ALL || d == axis) {
      if (keepdim) out[k++] = 1;
    } else {
      out[k++] = s[d];
    }
  }
  return k;
}

/* kind: 0 clai_reduce, 1 clai_var, 2 clai_argmax, 3 clai_argmin. */
static void reduce_case(fz *f, int kind) {
  const int nd = (int)fz_int(f, 0, 4);
  int64_t s[4], so[4];
  fz_shape(f, nd, s, 0, 37);
  const int all = nd == 0 || fz_chance(f, 0.2);
  const int axis = all ? CLAI_AXIS_ALL : (int)fz_int(f, 0, nd - 1), keepdim = fz_chance(f, 0.5);
  const int api_axis = axis != CLAI_AXIS_ALL && fz_chance(f, 0.3) ? axis - nd : axis;
  const clai_reduce_op op = kind == 0 ? (clai_reduce_op)fz_int(f, 0, 4) : CLAI_REDUCE_VAR;
  const int correction = kind == 1 ? (int)fz_int(f, 0, 2) : 0;
  const int arg = kind >= 2, want_max = kind == 2 || (kind == 0 && op == CLAI_REDUCE_MAX);
  const clai_dtype xdt = fz_fdtype(f), odt = arg ? CLAI_DTYPE_I32 : fz_fdtype(f);
  const int ndo = fz_reduced(nd, s, axis, keepdim, so);
  fz_note(f, "%s axis %d keepdim %d correction %d; ",
          kind == 0 ? reduce_names[op] : kind == 1 ? "var" : kind == 2 ? "argmax" : "argmin", api_axis, keepdim,
          correction);
  double *v = fz_rand(f, fz_count(nd, s), -3, 3);
  fz_specials(f, v, fz_count(nd, s), 0, 0.17);
  fz_opnd *x = fz_in_v(f, "x", xdt, nd, s, v);
  free(v);
  const int spoiled = fz_spoil(f, ndo, so, 0);
  fz_opnd *out = fz_out(f, "out", odt, ndo, so);
  size_t outer, len, inner;
  fz_split(nd, s, axis, &outer, &len, &inner);
  clai_status st = kind == 0   ? clai_reduce(f->ctx, op, out->t, x->t, api_axis, keepdim)
                   : kind == 1 ? clai_var(f->ctx, out->t, x->t, api_axis, keepdim, correction)
                   : kind == 2 ? clai_argmax(f->ctx, out->t, x->t, api_axis, keepdim)
                               : clai_argmin(f->ctx, out->t, x->t, api_axis, keepdim);
  if (spoiled) {
    fz_refused(f, "reduction", st, out);
    return;
  }
  const int refuses = len == 0 && (arg || op == CLAI_REDUCE_MAX || op == CLAI_REDUCE_MIN) && kind != 1;
  if (refuses) {
    if (out->n > 0 && fz_fails(f, "reduction over an empty axis", st, CLAI_E_SHAPE)) fz_untouched(f, out);
    return;
  }
  if (!fz_ok(f, "reduction", st)) return;
  double *m = fz_mag(out);
  for (size_t o = 0; o < outer; o++)
    for (size_t in = 0; in < inner; in++) {
      const size_t oi = o * inner + in;
      double sum = 0, mag = 0, best = 0;
      size_t besti = 0;
      int nan = 0;
      for (size_t k = 0; k < len; k++) {
        const double xv = x->v[(o * len + k) * inner + in];
        sum += xv, mag += fabs(xv);
        if (isnan(xv) && !nan) nan = 1, besti = k, best = xv;
        if (!nan && (k == 0 || (want_max ? xv > best : xv < best))) best = xv, besti = k;
      }
      if (arg) {
        out->v[oi] = (double)besti;
        continue;
      }
      const double mean = sum / (double)len;
      switch (kind == 1 ? CLAI_REDUCE_VAR : op) {
      case CLAI_REDUCE_SUM: out->v[oi] = sum, m[oi] = mag; break;
      case CLAI_REDUCE_MEAN: out->v[oi] = len ? mean : NAN, m[oi] = len ? mag / (double)len : 0; break;
      case CLAI_REDUCE_MAX:
      case CLAI_REDUCE_MIN: out->v[oi] = best; break;
      case CLAI_REDUCE_VAR: {
        double ss = 0, sq = 0;
        for (size_t k = 0; k < len; k++) {
          const double xv = x->v[(o * len + k) * inner + in];
          ss += (xv - mean) * (xv - mean), sq += xv * xv;
        }
        const double den = (double)len - correction;
        out->v[oi] = den <= 0 ? NAN : ss / den;
        m[oi] = den <= 0 ? 0 : sq / den;
        break;
      }
      }
    }
  fz_check(f, out, TOL_SUM);
}
static void op_reduce(fz *f) { reduce_case(f, 0); }
static void op_var(fz *f) { reduce_case(f, 1); }
static void op_argmax(fz *f) { reduce_case(f, 2); }
static void op_argmin(fz *f) { reduce_case(f, 3); }

static void op_sum_to(fz *f) {
  int64_t sx[4], so[4];
  const int nd = (int)fz_int(f, 0, 4);
  fz_shape(f, nd, sx, 0, 23);
  const int ndo = fz_bshape(f, nd, sx, so);
  fz_opnd *x = fz_in(f, "x", fz_fdtype(f), nd, sx, -2, 2), *out = fz_out(f, "out", fz_fdtype(f), ndo, so);
  if (!fz_ok(f, "clai_sum_to", clai_sum_to(f->ctx, out->t, x->t))) return;
  double *m = fz_mag(out);
  int64_t idx[CLAI_MAX_DIMS];
  for (size_t i = 0; i < x->n; i++) {
    fz_unravel(i, nd, sx, idx);
    const size_t oi = fz_bidx(idx, nd, ndo, so);
    out->v[oi] += x->v[i], m[oi] += fabs(x->v[i]);
  }
  fz_check(f, out, TOL_SUM);
}

/* =========================================================================================================
 * Softmax and normalisation along the last axis, and the losses.
 */

/* Logits for a row-wise op in one of four regimes: plain; large (1e4 or 1e6 plus small integers, where
 * `max + log(sum)` loses digits); additive masks (-1e30, -FLT_MAX, -inf, some rows wholly masked); NaN. */
static double *fz_logits(fz *f, clai_dtype dt, size_t rows, size_t len, int *regime, int nan_ok) {
  double *v = fz_rand(f, rows * len, -5, 5);
  *regime = (int)fz_int(f, 0, 9) < 6 ? 0 : (int)fz_int(f, 1, nan_ok ? 3 : 2);
  if (*regime == 1) {
    const double base = fz_chance(f, 0.5) ? 1e4 : fz_chance(f, 0.5) || dt == CLAI_DTYPE_F16 ? -1e4 : 1e6;
    for (size_t i = 0; i < rows * len; i++) v[i] = base + (double)fz_int(f, 0, 7);
  } else if (*regime == 2) {
    static const double masks[] = {-1e30, -FLT_MAX, -INFINITY};
    for (size_t r = 0; r < rows; r++) {
      const int whole = fz_chance(f, 0.3);
      const double mv = masks[fz_int(f, 0, 2)];
      for (size_t j = 0; j < len; j++)
        if (whole || fz_chance(f, 0.4)) v[r * len + j] = mv;
    }
  } else if (*regime == 3) {
    fz_specials(f, v, rows * len, 0, 1.0);
  }
  return v;
}

static const double softmax_scales[] = {0, 1, 1.5, 0.11180339887498948 /* 1/sqrt(80) */, 0.125, -0.7};

/* One row of softmax (logsm 0) or log_softmax (1) of the f32 products s = x * scale: masked[j] elements,
 * and rows with nothing to weigh, are 0 / -inf. m receives the tolerance magnitudes. */
static void ref_softmax_row(const double *s, const int *masked, size_t len, int logsm, double *y, double *m) {
  double mx = -INFINITY;
  int nan = 0;
  for (size_t j = 0; j < len; j++)
    if (!masked[j]) {
      if (isnan(s[j])) nan = 1;
      if (s[j] > mx) mx = s[j];
    }
  double sum = 0;
  if (mx != -INFINITY)
    for (size_t j = 0; j < len; j++)
      if (!masked[j]) sum += exp(s[j] - mx);
  for (size_t j = 0; j < len; j++) {
    if (nan) {
      y[j] = NAN, m[j] = 0;
    } else if (masked[j] || mx == -INFINITY || s[j] == -INFINITY) {
      y[j] = logsm ? -INFINITY : 0, m[j] = 0;
    } else if (logsm) {
      y[j] = (s[j] - mx) - log(sum), m[j] = fabs(s[j] - mx) + fabs(log(sum)) + 1;
    } else {
      y[j] = exp(s[j] - mx) / sum, m[j] = y[j] + 1e-3;
    }
  }
}

typedef struct rows_shape {
  int nd;
  int64_t s[4];
  size_t rows, len, lq; /* lq: the size of dim nd-2 (the queries of a causal mask), 1 for 1-d */
} rows_shape;

static void fz_rows(fz *f, rows_shape *r, int min_nd, int64_t min_len, int64_t max_len) {
  r->nd = (int)fz_int(f, min_nd, 4);
  fz_shape(f, r->nd - 1, r->s, 0, 9);
  r->s[r->nd - 1] = fz_dim(f, min_len, max_len);
  r->len = (size_t)r->s[r->nd - 1], r->rows = fz_count(r->nd - 1, r->s);
  r->lq = r->nd >= 2 ? (size_t)r->s[r->nd - 2] : 1;
}

/* Causal masking of element j of row `row` (its query index is row mod Lq). */
static void fz_causal_mask(const rows_shape *r, size_t row, int causal, int *masked) {
  const int64_t i = r->lq ? (int64_t)(row % r->lq) : 0, shift = (int64_t)r->len - (int64_t)r->lq;
  for (size_t j = 0; j < r->len; j++) masked[j] = causal && (int64_t)j > i + shift;
}

static void softmax_case(fz *f, int logsm) {
  rows_shape r;
  fz_rows(f, &r, 1, 0, 70);
  const int causal = r.nd >= 2 && fz_chance(f, 0.3);
  const double scale_d = softmax_scales[fz_int(f, 0, 5)];
  const float scale = (float)scale_d, eff = scale != 0 ? scale : 1.0f;
  int regime;
  const clai_dtype dt = fz_fdtype(f);
  double *v = fz_logits(f, dt, r.rows, r.len, &regime, !causal);
  fz_note(f, "%s scale %.9g causal %d regime %d; ", logsm ? "log_softmax" : "softmax", scale, causal, regime);
  int inplace;
  fz_opnd *x = fz_in_or_inplace(f, "x", dt, r.nd, r.s, v, &inplace);
  free(v);
  int64_t so[4];
  memcpy(so, r.s, sizeof so);
  const int spoiled = !inplace && fz_spoil(f, r.nd, so, 0);
  fz_opnd *out = inplace ? x : fz_out(f, "out", fz_fdtype(f), r.nd, so);
  const clai_softmax_opts opts = {scale, causal};
  const clai_status st = logsm ? clai_log_softmax(f->ctx, out->t, x->t, &opts) : clai_softmax(f->ctx, out->t, x->t, &opts);
  if (spoiled) {
    fz_refused(f, logsm ? "clai_log_softmax" : "clai_softmax", st, out);
    return;
  }
  if (!fz_ok(f, logsm ? "clai_log_softmax" : "clai_softmax", st)) return;
  double *m = fz_mag(out), *s = calloc(r.len + 1, sizeof *s);
  int *masked = calloc(r.len + 1, sizeof *masked);
  for (size_t row = 0; row < r.rows; row++) {
    /* the exact product: the kernels subtract the maximum before scaling (clai.h), so no rounded x * scale
     * enters the result */
    for (size_t j = 0; j < r.len; j++) s[j] = (double)(float)x->v[row * r.len + j] * (double)eff;
    fz_causal_mask(&r, row, causal, masked);
    ref_softmax_row(s, masked, r.len, logsm, out->v + row * r.len, m + row * r.len);
  }
  free(s), free(masked);
  const fz_tol tol = {2e-6, 3e-6, 2e-4, 2e-3};
  fz_check(f, out, tol);
}
static void op_softmax(fz *f) { softmax_case(f, 0); }
static void op_log_softmax(fz *f) { softmax_case(f, 1); }

static void softmax_backward_case(fz *f, int logsm) {
  rows_shape r;
  fz_rows(f, &r, 1, 1, 70);
  const int causal = r.nd >= 2 && fz_chance(f, 0.3);
  const float scale = (float)softmax_scales[fz_int(f, 0, 5)], eff = scale != 0 ? scale : 1.0f;
  fz_note(f, "%s scale %.9g causal %d; ", logsm ? "log_softmax" : "softmax", scale, causal);
  /* y: the forward's output of random logits. */
  double *y = calloc(r.rows * r.len + 1, sizeof *y), *mm = calloc(r.len + 1, sizeof *mm), *s = calloc(r.len + 1, sizeof *s);
  int *masked = calloc(r.len + 1, sizeof *masked);
  for (size_t row = 0; row < r.rows; row++) {
    for (size_t j = 0; j < r.len; j++) s[j] = fz_unif(f, -4, 4);
    fz_causal_mask(&r, row, causal, masked);
    ref_softmax_row(s, masked, r.len, logsm, y + row * r.len, mm);
  }
  const clai_dtype dt = fz_fdtype(f);
  fz_opnd *gy = fz_in(f, "grad_y", fz_fdtype(f), r.nd, r.s, -2, 2), *yo = fz_in_v(f, "y", dt, r.nd, r.s, y);
  fz_opnd *gx = fz_out(f, "grad_x", fz_fdtype(f), r.nd, r.s);
  const clai_softmax_opts opts = {scale, causal};
  const clai_status st = logsm ? clai_log_softmax_backward(f->ctx, gx->t, gy->t, yo->t, &opts)
                               : clai_softmax_backward(f->ctx, gx->t, gy->t, yo->t, &opts);
  if (fz_ok(f, logsm ? "clai_log_softmax_backward" : "clai_softmax_backward", st)) {
    double *m = fz_mag(gx);
    for (size_t row = 0; row < r.rows; row++) {
      const double *yr = yo->v + row * r.len, *g = gy->v + row * r.len;
      fz_causal_mask(&r, row, causal, masked);
      double dot = 0, sg = 0, mdot = 0;
      for (size_t j = 0; j < r.len; j++)
        if (!masked[j]) dot += g[j] * (logsm ? 1 : yr[j]), sg += g[j], mdot += fabs(g[j] * (logsm ? 1 : yr[j]));
      for (size_t j = 0; j < r.len; j++) {
        double *o = gx->v + row * r.len + j, *mo = m + row * r.len + j;
        if (masked[j]) {
          *o = 0;
        } else if (logsm) {
          const double p = yr[j] == -INFINITY ? 0 : exp(yr[j]);
          *o = eff * (g[j] - p * sg), *mo = fabs(eff) * (fabs(g[j]) + p * mdot);
        } else {
          *o = eff * yr[j] * (g[j] - dot), *mo = fabs(eff) * yr[j] * (fabs(g[j]) + mdot);
        }
      }
    }
    fz_check(f, gx, TOL_SUM);
  }
  free(y), free(mm), free(s), free(masked);
}
static void op_softmax_backward(fz *f) { softmax_backward_case(f, 0); }
static void op_log_softmax_backward(fz *f) { softmax_backward_case(f, 1); }

/* The statistics' shape: x's without the last dim, or with it as 1. */
static int stat_shape(fz *f, const rows_shape *r, int64_t *s) {
  memcpy(s, r->s, sizeof r->s);
  if (fz_chance(f, 0.5)) {
    s[r->nd - 1] = 1;
    return r->nd;
  }
  return r->nd - 1;
}

static void norm_case(fz *f, int rms) {
  rows_shape r;
  fz_rows(f, &r, 1, 0, 70);
  const float eps = (float)fz_unif(f, 1e-5, 1e-2);
  const clai_dtype dt = fz_fdtype(f);
  int64_t ss[4];
  fz_opnd *x = fz_in(f, "x", dt, r.nd, r.s, -2, 2), *out = fz_out(f, "out", fz_fdtype(f), r.nd, r.s);
  fz_opnd *gamma = fz_chance(f, 0.7) ? fz_in(f, "gamma", fz_fdtype(f), 1, &r.s[r.nd - 1], -2, 2) : NULL;
  fz_opnd *beta = !rms && fz_chance(f, 0.7) ? fz_in(f, "beta", fz_fdtype(f), 1, &r.s[r.nd - 1], -2, 2) : NULL;
  fz_opnd *mean = NULL, *rstd = NULL;
  const int nds = stat_shape(f, &r, ss);
  if (!rms && fz_chance(f, 0.6)) mean = fz_make(f, "mean_out", CLAI_DTYPE_F32, nds, ss, FZ_OUT, FZ_DENSE, NULL);
  if (fz_chance(f, 0.6)) rstd = fz_make(f, "rstd_out", CLAI_DTYPE_F32, nds, ss, FZ_OUT, FZ_DENSE, NULL);
  fz_note(f, "%s eps %.9g; ", rms ? "rmsnorm" : "layernorm", eps);
  const clai_status st =
      rms ? clai_rmsnorm(f->ctx, out->t, x->t, gamma ? gamma->t : NULL, eps, rstd ? rstd->t : NULL)
          : clai_layernorm(f->ctx, out->t, x->t, gamma ? gamma->t : NULL, beta ? beta->t : NULL, eps,
                           mean ? mean->t : NULL, rstd ? rstd->t : NULL);
  /* An empty last dim: the statistics are NaN (as a mean over nothing), or the shape is refused. */
  if (r.len == 0 && st == CLAI_E_SHAPE) {
    if (mean) fz_untouched(f, mean);
    if (rstd) fz_untouched(f, rstd);
    return;
  }
  if (!fz_ok(f, rms ? "clai_rmsnorm" : "clai_layernorm", st)) return;
  double *m = fz_mag(out);
  for (size_t row = 0; row < r.rows; row++) {
    const double *xr = x->v + row * r.len;
    double mu = 0, var = 0;
    for (size_t j = 0; j < r.len; j++) mu += rms ? 0 : xr[j];
    mu /= (double)r.len;
    for (size_t j = 0; j < r.len; j++) var += (xr[j] - (rms ? 0 : mu)) * (xr[j] - (rms ? 0 : mu));
    var /= (double)r.len;
    const double rs = 1 / sqrt(var + eps);
    for (size_t j = 0; j < r.len; j++) {
      const double g = gamma ? gamma->v[j] : 1, b = beta ? beta->v[j] : 0, xh = (xr[j] - (rms ? 0 : mu)) * rs;
      /* x - mean cancels: its f32 error (relative to |mean|) is multiplied by rstd, which is up to
       * 1/sqrt(eps) for a constant row. */
      out->v[row * r.len + j] = xh * g + b;
      m[row * r.len + j] = fabs(xh * g) + fabs(b) + fabs(g) * (0.1 + 4 * fabs(mu) * rs);
    }
    if (mean) mean->v[row] = r.len ? mu : NAN;
    if (rstd) rstd->v[row] = r.len ? rs : NAN;
  }
  const fz_tol tol = {1e-5, 1e-5, 1e-3, 2e-3};
  fz_check(f, out, tol);
  if (mean) fz_check(f, mean, tol);
  if (rstd) fz_check(f, rstd, tol);
}
static void op_layernorm(fz *f) { norm_case(f, 0); }
static void op_rmsnorm(fz *f) { norm_case(f, 1); }

static void norm_backward_case(fz *f, int rms) {
  rows_shape r;
  fz_rows(f, &r, 1, 1, 70);
  int64_t ss[4];
  const int nds = stat_shape(f, &r, ss);
  double *xv = fz_rand(f, r.rows * r.len, -2, 2), *mv = calloc(r.rows + 1, sizeof *mv), *rv = calloc(r.rows + 1, sizeof *rv);
  const clai_dtype dt = fz_fdtype(f);
  for (size_t i = 0; i < r.rows * r.len; i++) xv[i] = clait_as_dtype(dt, xv[i]);
  for (size_t row = 0; row < r.rows; row++) {
    double mu = 0, var = 0;
    for (size_t j = 0; j < r.len; j++) mu += rms ? 0 : xv[row * r.len + j];
    mu /= (double)r.len;
    for (size_t j = 0; j < r.len; j++) var += (xv[row * r.len + j] - mu) * (xv[row * r.len + j] - mu);
    mv[row] = mu, rv[row] = 1 / sqrt(var / (double)r.len + 1e-5);
  }
  fz_opnd *gy = fz_in(f, "grad_y", fz_fdtype(f), r.nd, r.s, -2, 2), *x = fz_in_v(f, "x", dt, r.nd, r.s, xv);
  fz_opnd *gamma = fz_chance(f, 0.7) ? fz_in(f, "gamma", fz_fdtype(f), 1, &r.s[r.nd - 1], -2, 2) : NULL;
  fz_opnd *mean = rms ? NULL : fz_make(f, "mean", CLAI_DTYPE_F32, nds, ss, FZ_IN, FZ_DENSE, mv);
  fz_opnd *rstd = fz_make(f, "rstd", CLAI_DTYPE_F32, nds, ss, FZ_IN, FZ_DENSE, rv);
  free(xv), free(mv), free(rv);
  fz_opnd *gx = fz_out(f, "grad_x", fz_fdtype(f), r.nd, r.s);
  fz_opnd *gg = fz_chance(f, 0.6) ? fz_out(f, "grad_gamma", fz_fdtype(f), 1, &r.s[r.nd - 1]) : NULL;
  fz_opnd *gb = !rms && fz_chance(f, 0.6) ? fz_out(f, "grad_beta", fz_fdtype(f), 1, &r.s[r.nd - 1]) : NULL;
  fz_note(f, "%s; ", rms ? "rmsnorm_backward" : "layernorm_backward");
  const clai_status st =
      rms ? clai_rmsnorm_backward(f->ctx, gx->t, gg ? gg->t : NULL, gy->t, x->t, gamma ? gamma->t : NULL, rstd->t)
          : clai_layernorm_backward(f->ctx, gx->t, gg ? gg->t : NULL, gb ? gb->t : NULL, gy->t, x->t,
                                    gamma ? gamma->t : NULL, mean->t, rstd->t);
  if (!fz_ok(f, rms ? "clai_rmsnorm_backward" : "clai_layernorm_backward", st)) return;
  double *m = fz_mag(gx), *mg = gg ? fz_mag(gg) : NULL, *mb = gb ? fz_mag(gb) : NULL;
  for (size_t row = 0; row < r.rows; row++) {
    const double mu = rms ? 0 : mean->v[row], rs = rstd->v[row];
    double sg = 0, sgx = 0, msg = 0, msgx = 0;
    for (size_t j = 0; j < r.len; j++) {
      const size_t i = row * r.len + j;
      const double xh = (x->v[i] - mu) * rs, g = gy->v[i] * (gamma ? gamma->v[j] : 1);
      sg += g, sgx += g * xh, msg += fabs(g), msgx += fabs(g * xh);
      if (gg) gg->v[j] += gy->v[i] * xh, mg[j] += fabs(gy->v[i] * xh);
      if (gb) gb->v[j] += gy->v[i], mb[j] += fabs(gy->v[i]);
    }
    const double L = (double)r.len;
    for (size_t j = 0; j < r.len; j++) {
      const size_t i = row * r.len + j;
      const double xh = (x->v[i] - mu) * rs, g = gy->v[i] * (gamma ? gamma->v[j] : 1);
      gx->v[i] = rs * (g - (rms ? 0 : sg / L) - xh * sgx / L);
      m[i] = rs * (fabs(g) + msg / L + fabs(xh) * msgx / L);
    }
  }
  fz_check(f, gx, TOL_SUM);
  if (gg) fz_check(f, gg, TOL_SUM);
  if (gb) fz_check(f, gb, TOL_SUM);
}
static void op_layernorm_backward(fz *f) { norm_backward_case(f, 0); }
static void op_rmsnorm_backward(fz *f) { norm_backward_case(f, 1); }

/* A 1-element f32 loss tensor: 0-d, [1] or [1, 1]. */
static fz_opnd *fz_scalar_out(fz *f, const char *name) {
  static const int64_t one[2] = {1, 1};
  return fz_out(f, name, CLAI_DTYPE_F32, (int)fz_int(f, 0, 2), one);
}

static void op_cross_entropy(fz *f) {
  const int64_t N = fz_dim(f, 0, 40), C = fz_dim(f, 1, 70), s[2] = {N, C};
  const int ignore = fz_chance(f, 0.5) ? -100 : (int)fz_int(f, 0, C - 1);
  const clai_dtype dt = fz_fdtype(f);
  int regime;
  double *lv = fz_logits(f, dt, (size_t)N, (size_t)C, &regime, 0);
  double *labv = fz_rand(f, (size_t)N, 0, (double)C);
  for (int64_t r = 0; r < N; r++) {
    labv[r] = floor(labv[r]);
    if (fz_chance(f, 0.15)) labv[r] = ignore;
    /* Masks (-1e30, -FLT_MAX, -inf) elsewhere, but the label's own logit stays finite. */
    if (labv[r] != ignore) lv[r * C + (int64_t)labv[r]] = regime == 1 ? lv[r * C] : fz_unif(f, -5, 5);
  }
  fz_note(f, "ignore_index %d regime %d; ", ignore, regime);
  /* Not broadcast: that would spread a mask over a row's label logit (the loss is then +inf, or overflows). */
  fz_opnd *logits = fz_make(f, "logits", dt, 2, s, FZ_IN, FZ_NOBCAST, lv);
  fz_opnd *labels = fz_make(f, "labels", CLAI_DTYPE_I32, 1, &N, FZ_IN, FZ_NOBCAST, labv);
  free(lv), free(labv);
  fz_opnd *loss = fz_scalar_out(f, "loss"), *grad = fz_chance(f, 0.7) ? fz_out(f, "grad", dt, 2, s) : NULL;
  if (!fz_ok(f, "clai_loss_cross_entropy",
             clai_loss_cross_entropy(f->ctx, loss->t, grad ? grad->t : NULL, logits->t, labels->t, ignore)))
    return;
  double total = 0, mag = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < N; r++) count += labels->v[r] != ignore;
  double *gm = grad ? fz_mag(grad) : NULL;
  for (int64_t r = 0; r < N; r++) {
    const double *x = logits->v + r * C;
    if (labels->v[r] == ignore) continue;
    const int64_t lab = (int64_t)labels->v[r];
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < C; j++) mx = fmax(mx, x[j]);
    for (int64_t j = 0; j < C; j++) sum += exp(x[j] - mx);
    total += log(sum) - (x[lab] - mx), mag += fabs(log(sum)) + fabs(x[lab] - mx);
    if (grad)
      for (int64_t j = 0; j < C; j++) {
        const double p = exp(x[j] - mx) / sum;
        grad->v[r * C + j] = (p - (j == lab)) / (double)count, gm[r * C + j] = (p + (j == lab)) / (double)count;
      }
  }
  loss->v[0] = count ? total / (double)count : NAN;
  fz_mag(loss)[0] = count ? mag / (double)count : 0;
  fz_check(f, loss, TOL_SUM);
  if (grad) fz_check(f, grad, TOL_SUM);
}

static void op_mse(fz *f) {
  const int nd = (int)fz_int(f, 0, 4);
  int64_t s[4];
  fz_shape(f, nd, s, 0, 23);
  const clai_dtype dt = fz_fdtype(f);
  fz_opnd *x = fz_in(f, "x", dt, nd, s, -3, 3), *y = fz_in(f, "y", dt, nd, s, -3, 3);
  fz_opnd *loss = fz_scalar_out(f, "loss"), *grad = fz_chance(f, 0.7) ? fz_out(f, "grad", dt, nd, s) : NULL;
  if (!fz_ok(f, "clai_loss_mse", clai_loss_mse(f->ctx, loss->t, grad ? grad->t : NULL, x->t, y->t))) return;
  double sum = 0;
  const double n = (double)x->n;
  for (size_t i = 0; i < x->n; i++) {
    const double d = x->v[i] - y->v[i];
    sum += d * d;
    if (grad) grad->v[i] = 2 * d / n;
  }
  loss->v[0] = x->n ? sum / n : NAN;
  fz_check(f, loss, TOL_SUM);
  if (grad) fz_check(f, grad, TOL_ELEM);
}

/* =========================================================================================================
 * Convolution and pooling (NCHW).
 */

typedef struct conv_p {
  int64_t N, C, H, W, O, KH, KW, sh, sw, pt, pb, pl, pr, dh, dw, G, OH, OW;
  clai_conv2d_params api;
} conv_p;

/* A random valid convolution. One case in three has the shape of a layer whose weight gradient takes the
 * "partial gradient per image" route (O/groups >= 4, O * 8 <= OH * OW). */
static void conv_draw(fz *f, conv_p *c) {
  memset(c, 0, sizeof *c);
  const int route = fz_chance(f, 0.33), depthwise = !route && fz_chance(f, 0.25);
  c->N = fz_dim(f, 0, 3);
  c->G = route ? 1 : fz_int(f, 1, 3);
  const int64_t Cg = depthwise ? 1 : fz_int(f, 1, 4);
  c->C = depthwise ? fz_int(f, 1, 5) : c->G * Cg;
  if (depthwise) c->G = c->C;
  c->O = c->G * (route ? fz_int(f, 4, 6) : fz_int(f, 1, depthwise ? 2 : 6));
  c->KH = fz_int(f, 1, route ? 3 : 4), c->KW = fz_int(f, 1, route ? 3 : 4);
  c->sh = route ? 1 : fz_int(f, 1, 3), c->sw = route ? 1 : fz_int(f, 1, 3);
  c->dh = route ? 1 : fz_int(f, 1, 2), c->dw = route ? 1 : fz_int(f, 1, 2);
  c->pt = fz_int(f, 0, 2), c->pb = fz_int(f, 0, 2), c->pl = fz_int(f, 0, 2), c->pr = fz_int(f, 0, 2);
  const int64_t minh = c->dh * (c->KH - 1) + 1 - c->pt - c->pb, minw = c->dw * (c->KW - 1) + 1 - c->pl - c->pr;
  c->H = (minh > 1 ? minh : 1) + (route ? fz_int(f, 8, 11) : fz_int(f, 0, 9));
  c->W = (minw > 1 ? minw : 1) + (route ? fz_int(f, 8, 11) : fz_int(f, 0, 9));
  if (f->small) c->H = c->H > 12 ? 12 : c->H, c->W = c->W > 12 ? 12 : c->W;
  c->OH = clait_out_len(c->H, c->pt, c->pb, c->KH, c->dh, c->sh);
  c->OW = clait_out_len(c->W, c->pl, c->pr, c->KW, c->dw, c->sw);
  /* The zero value means 1 for stride, dilation and groups: use it now and then. */
  c->api.stride_h = c->sh == 1 && fz_chance(f, 0.5) ? 0 : c->sh, c->api.stride_w = c->sw;
  c->api.dilation_h = c->dh, c->api.dilation_w = c->dw == 1 && fz_chance(f, 0.5) ? 0 : c->dw;
  c->api.pad_top = c->pt, c->api.pad_bottom = c->pb, c->api.pad_left = c->pl, c->api.pad_right = c->pr;
  c->api.groups = c->G == 1 && fz_chance(f, 0.5) ? 0 : c->G;
  fz_note(f, "conv N %lld C %lld H %lld W %lld O %lld K %lldx%lld stride %lldx%lld pad %lld,%lld,%lld,%lld dilation "
          "%lldx%lld groups %lld -> %lldx%lld; ",
          (long long)c->N, (long long)c->C, (long long)c->H, (long long)c->W, (long long)c->O, (long long)c->KH,
          (long long)c->KW, (long long)c->sh, (long long)c->sw, (long long)c->pt, (long long)c->pb, (long long)c->pl,
          (long long)c->pr, (long long)c->dh, (long long)c->dw, (long long)c->G, (long long)c->OH, (long long)c->OW);
}

/* Runs BODY for every term w[wi] * x[xi] of out[yi] of the convolution c. */
#define CONV_TERMS(c, BODY)                                                                                  \
  do {                                                                                                       \
    const int64_t Cg_ = (c)->C / (c)->G, Og_ = (c)->O / (c)->G;                                              \
    for (int64_t n = 0; n < (c)->N; n++)                                                                     \
      for (int64_t o = 0; o < (c)->O; o++)                                                                   \
        for (int64_t oh = 0; oh < (c)->OH; oh++)                                                             \
          for (int64_t ow = 0; ow < (c)->OW; ow++)                                                           \
            for (int64_t cg = 0; cg < Cg_; cg++)                                                             \
              for (int64_t kh = 0; kh < (c)->KH; kh++)                                                       \
                for (int64_t kw = 0; kw < (c)->KW; kw++) {                                                   \
                  const int64_t ih = oh * (c)->sh - (c)->pt + kh * (c)->dh;                                  \
                  const int64_t iw = ow * (c)->sw - (c)->pl + kw * (c)->dw;                                  \
                  if (ih < 0 || ih >= (c)->H || iw < 0 || iw >= (c)->W) continue;                            \
                  const size_t yi = (size_t)(((n * (c)->O + o) * (c)->OH + oh) * (c)->OW + ow);              \
                  const size_t xi = (size_t)(((n * (c)->C + o / Og_ * Cg_ + cg) * (c)->H + ih) * (c)->W + iw); \
                  const size_t wi = (size_t)(((o * Cg_ + cg) * (c)->KH + kh) * (c)->KW + kw);                \
                  BODY;                                                                                      \
                }                                                                                            \
  } while (0)

static void op_conv2d(fz *f) {
  conv_p c;
  conv_draw(f, &c);
  c.api.activation = (clai_activation)fz_int(f, 0, 3);
  fz_note(f, "activation %s; ", act_names[c.api.activation]);
  const clai_dtype dt = fz_fdtype(f);
  const int64_t sx[4] = {c.N, c.C, c.H, c.W}, sw[4] = {c.O, c.C / c.G, c.KH, c.KW}, so[4] = {c.N, c.O, c.OH, c.OW};
  fz_opnd *x = fz_in(f, "x", dt, 4, sx, -1, 1), *w = fz_in(f, "w", dt, 4, sw, -1, 1);
  fz_opnd *bias = fz_chance(f, 0.6) ? fz_in(f, "bias", dt, 1, &c.O, -1, 1) : NULL;
  int64_t sbad[4] = {so[0], so[1], so[2], so[3]};
  const int spoiled = fz_spoil(f, 4, sbad, 0);
  fz_opnd *out = fz_out(f, "out", dt, 4, sbad);
  const clai_status st = clai_conv2d(f->ctx, out->t, x->t, w->t, bias ? bias->t : NULL, &c.api);
  if (spoiled) {
    fz_refused(f, "clai_conv2d", st, out);
    return;
  }
  if (!fz_ok(f, "clai_conv2d", st)) return;
  double *m = fz_mag(out);
  CONV_TERMS(&c, (out->v[yi] += w->v[wi] * x->v[xi], m[yi] += fabs(w->v[wi] * x->v[xi])));
  for (size_t i = 0; i < out->n; i++) {
    const double b = bias ? bias->v[(i / (size_t)(c.OH * c.OW)) % (size_t)c.O] : 0;
    out->v[i] = ref_act(c.api.activation, out->v[i] + b), m[i] += fabs(b);
  }
  fz_check(f, out, TOL_SUM);
}

static void op_conv2d_backward_data(fz *f) {
  conv_p c;
  conv_draw(f, &c);
  const clai_dtype dt = fz_fdtype(f);
  const int64_t sx[4] = {c.N, c.C, c.H, c.W}, sw[4] = {c.O, c.C / c.G, c.KH, c.KW}, so[4] = {c.N, c.O, c.OH, c.OW};
  fz_opnd *gy = fz_in(f, "grad_out", dt, 4, so, -1, 1), *w = fz_in(f, "w", dt, 4, sw, -1, 1);
  fz_opnd *gx = fz_out(f, "grad_x", dt, 4, sx);
  if (!fz_ok(f, "clai_conv2d_backward_data", clai_conv2d_backward_data(f->ctx, gx->t, gy->t, w->t, &c.api))) return;
  double *m = fz_mag(gx);
  CONV_TERMS(&c, (gx->v[xi] += w->v[wi] * gy->v[yi], m[xi] += fabs(w->v[wi] * gy->v[yi])));
  fz_check(f, gx, TOL_SUM);
}

static void op_conv2d_backward_weight(fz *f) {
  conv_p c;
  conv_draw(f, &c);
  const clai_dtype dt = fz_fdtype(f);
  const int64_t sx[4] = {c.N, c.C, c.H, c.W}, sw[4] = {c.O, c.C / c.G, c.KH, c.KW}, so[4] = {c.N, c.O, c.OH, c.OW};
  fz_opnd *gy = fz_in(f, "grad_out", dt, 4, so, -1, 1), *x = fz_in(f, "x", dt, 4, sx, -1, 1);
  /* grad_w is often a dense slice of a flat gradient buffer (at an offset), as a training loop keeps it. */
  fz_opnd *gw = fz_make(f, "grad_w", dt, 4, sw, FZ_OUT, fz_chance(f, 0.5) ? FZ_DENSE : FZ_ANY, NULL);
  fz_opnd *gb = fz_chance(f, 0.5) ? fz_make(f, "grad_bias", dt, 1, &c.O, FZ_OUT, FZ_ANY, NULL) : NULL;
  if (!fz_ok(f, "clai_conv2d_backward_weight",
             clai_conv2d_backward_weight(f->ctx, gw->t, gb ? gb->t : NULL, x->t, gy->t, &c.api)))
    return;
  double *m = fz_mag(gw);
  CONV_TERMS(&c, (gw->v[wi] += x->v[xi] * gy->v[yi], m[wi] += fabs(x->v[xi] * gy->v[yi])));
  if (gb) {
    double *mb = fz_mag(gb);
    for (size_t i = 0; i < gy->n; i++) {
      const size_t o = (i / (size_t)(c.OH * c.OW)) % (size_t)c.O;
      gb->v[o] += gy->v[i], mb[o] += fabs(gy->v[i]);
    }
  }
  fz_check(f, gw, TOL_SUM);
  if (gb) fz_check(f, gb, TOL_SUM);
}

typedef struct pool_p {
  int64_t N, C, H, W, KH, KW, sh, sw, pt, pb, pl, pr, OH, OW;
  clai_pool2d_params api;
} pool_p;

static void pool_draw(fz *f, pool_p *p) {
  memset(p, 0, sizeof *p);
  p->N = fz_dim(f, 0, 3), p->C = fz_dim(f, 1, 5);
  p->KH = fz_int(f, 1, 4), p->KW = fz_int(f, 1, 4);
  const int dflt = fz_chance(f, 0.3);
  p->sh = dflt ? p->KH : fz_int(f, 1, 3), p->sw = dflt ? p->KW : fz_int(f, 1, 3);
  p->pt = fz_int(f, 0, p->KH - 1), p->pb = fz_int(f, 0, p->KH - 1);
  p->pl = fz_int(f, 0, p->KW - 1), p->pr = fz_int(f, 0, p->KW - 1);
  const int64_t minh = p->KH - p->pt - p->pb, minw = p->KW - p->pl - p->pr;
  p->H = (minh > 1 ? minh : 1) + fz_int(f, 0, f->small ? 6 : 14);
  p->W = (minw > 1 ? minw : 1) + fz_int(f, 0, f->small ? 6 : 14);
  p->OH = clait_out_len(p->H, p->pt, p->pb, p->KH, 1, p->sh), p->OW = clait_out_len(p->W, p->pl, p->pr, p->KW, 1, p->sw);
  p->api.kernel_h = p->KH, p->api.kernel_w = p->KW;
  p->api.stride_h = dflt ? 0 : p->sh, p->api.stride_w = dflt ? 0 : p->sw;
  p->api.pad_top = p->pt, p->api.pad_bottom = p->pb, p->api.pad_left = p->pl, p->api.pad_right = p->pr;
  p->api.count_include_pad = fz_chance(f, 0.5);
  fz_note(f, "pool N %lld C %lld H %lld W %lld K %lldx%lld stride %lldx%lld pad %lld,%lld,%lld,%lld include_pad %d "
          "-> %lldx%lld; ",
          (long long)p->N, (long long)p->C, (long long)p->H, (long long)p->W, (long long)p->KH, (long long)p->KW,
          (long long)p->sh, (long long)p->sw, (long long)p->pt, (long long)p->pb, (long long)p->pl, (long long)p->pr,
          p->api.count_include_pad, (long long)p->OH, (long long)p->OW);
}

/* For output position (plane, oh, ow): the max and its index (ih * W + iw, first in row-major order), the
 * sum and the divisor. */
static void pool_window(const pool_p *p, const double *plane, int64_t oh, int64_t ow, double *mx, int64_t *arg,
                        double *sum, double *div) {
  *mx = -INFINITY, *arg = -1, *sum = 0;
  int64_t cnt = 0;
  for (int64_t kh = 0; kh < p->KH; kh++)
    for (int64_t kw = 0; kw < p->KW; kw++) {
      const int64_t ih = oh * p->sh - p->pt + kh, iw = ow * p->sw - p->pl + kw;
      if (ih < 0 || ih >= p->H || iw < 0 || iw >= p->W) continue;
      const double v = plane[ih * p->W + iw];
      if (*arg < 0 || v > *mx) *mx = v, *arg = ih * p->W + iw;
      *sum += v, cnt++;
    }
  *div = p->api.count_include_pad ? (double)(p->KH * p->KW) : (double)cnt;
}

static void op_max_pool2d(fz *f) {
  pool_p p;
  pool_draw(f, &p);
  const clai_dtype dt = fz_fdtype(f);
  const int64_t sx[4] = {p.N, p.C, p.H, p.W}, so[4] = {p.N, p.C, p.OH, p.OW};
  fz_opnd *x = fz_in(f, "x", dt, 4, sx, -4, 4), *out = fz_out(f, "out", dt, 4, so);
  fz_opnd *ind = fz_chance(f, 0.6) ? fz_out(f, "indices", CLAI_DTYPE_I32, 4, so) : NULL;
  if (!fz_ok(f, "clai_max_pool2d", clai_max_pool2d(f->ctx, out->t, ind ? ind->t : NULL, x->t, &p.api))) return;
  for (size_t i = 0; i < out->n; i++) {
    const size_t plane = i / (size_t)(p.OH * p.OW), pos = i % (size_t)(p.OH * p.OW);
    double mx, sum, div;
    int64_t arg;
    pool_window(&p, x->v + plane * (size_t)(p.H * p.W), (int64_t)pos / p.OW, (int64_t)pos % p.OW, &mx, &arg, &sum, &div);
    out->v[i] = mx;
    if (ind) ind->v[i] = (double)arg;
  }
  fz_check(f, out, TOL_EXACT);
  if (ind) fz_check(f, ind, TOL_EXACT);
}

static void op_avg_pool2d(fz *f) {
  pool_p p;
  pool_draw(f, &p);
  const clai_dtype dt = fz_fdtype(f);
  const int64_t sx[4] = {p.N, p.C, p.H, p.W}, so[4] = {p.N, p.C, p.OH, p.OW};
  fz_opnd *x = fz_in(f, "x", dt, 4, sx, -4, 4), *out = fz_out(f, "out", dt, 4, so);
  if (!fz_ok(f, "clai_avg_pool2d", clai_avg_pool2d(f->ctx, out->t, x->t, &p.api))) return;
  double *m = fz_mag(out);
  for (size_t i = 0; i < out->n; i++) {
    const size_t plane = i / (size_t)(p.OH * p.OW), pos = i % (size_t)(p.OH * p.OW);
    double mx, sum, div;
    int64_t arg;
    pool_window(&p, x->v + plane * (size_t)(p.H * p.W), (int64_t)pos / p.OW, (int64_t)pos % p.OW, &mx, &arg, &sum, &div);
    out->v[i] = sum / div, m[i] = 4;
  }
  fz_check(f, out, TOL_SUM);
}

/* The pooling gradients: max with indices the reference chose (so ties cannot differ), avg, global avg. */
static void pool_backward_case(fz *f, int avg) {
  pool_p p;
  pool_draw(f, &p);
  const clai_dtype dt = fz_fdtype(f);
  const int64_t sx[4] = {p.N, p.C, p.H, p.W}, so[4] = {p.N, p.C, p.OH, p.OW};
  const size_t nx = fz_count(4, sx), no = fz_count(4, so);
  double *xv = fz_rand(f, nx, -4, 4), *iv = calloc(no + 1, sizeof *iv), *dv = calloc(no + 1, sizeof *dv);
  for (size_t i = 0; i < nx; i++) xv[i] = clait_as_dtype(dt, xv[i]);
  for (size_t i = 0; i < no; i++) {
    const size_t plane = i / (size_t)(p.OH * p.OW), pos = i % (size_t)(p.OH * p.OW);
    double mx, sum;
    int64_t arg;
    pool_window(&p, xv + plane * (size_t)(p.H * p.W), (int64_t)pos / p.OW, (int64_t)pos % p.OW, &mx, &arg, &sum, &dv[i]);
    iv[i] = (double)arg;
  }
  fz_opnd *gy = fz_in(f, "grad_out", dt, 4, so, -2, 2);
  fz_opnd *ind = avg ? NULL : fz_in_v(f, "indices", CLAI_DTYPE_I32, 4, so, iv);
  fz_opnd *gx = fz_out(f, "grad_x", dt, 4, sx);
  const clai_status st = avg ? clai_avg_pool2d_backward(f->ctx, gx->t, gy->t, &p.api)
                             : clai_max_pool2d_backward(f->ctx, gx->t, gy->t, ind->t, &p.api);
  if (fz_ok(f, avg ? "clai_avg_pool2d_backward" : "clai_max_pool2d_backward", st)) {
    double *m = fz_mag(gx);
    for (size_t i = 0; i < no; i++) {
      const size_t plane = i / (size_t)(p.OH * p.OW), pos = i % (size_t)(p.OH * p.OW);
      const int64_t oh = (int64_t)pos / p.OW, ow = (int64_t)pos % p.OW;
      double *g = gx->v + plane * (size_t)(p.H * p.W), *gm = m + plane * (size_t)(p.H * p.W);
      if (!avg) { /* an index outside its own window (a broadcast indices view) adds nothing */
        const int64_t at = (int64_t)ind->v[i], ih = at / p.W, iw = at % p.W;
        if (at >= 0 && at < p.H * p.W && ih >= oh * p.sh - p.pt && ih < oh * p.sh - p.pt + p.KH &&
            iw >= ow * p.sw - p.pl && iw < ow * p.sw - p.pl + p.KW)
          g[at] += gy->v[i], gm[at] += fabs(gy->v[i]);
        continue;
      }
      for (int64_t kh = 0; kh < p.KH; kh++)
        for (int64_t kw = 0; kw < p.KW; kw++) {
          const int64_t ih = oh * p.sh - p.pt + kh, iw = ow * p.sw - p.pl + kw;
          if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
          g[ih * p.W + iw] += gy->v[i] / dv[i], gm[ih * p.W + iw] += fabs(gy->v[i] / dv[i]);
        }
    }
    fz_check(f, gx, TOL_SUM);
  }
  free(xv), free(iv), free(dv);
}
static void op_max_pool2d_backward(fz *f) { pool_backward_case(f, 0); }
static void op_avg_pool2d_backward(fz *f) { pool_backward_case(f, 1); }

static void op_global_avg_pool2d(fz *f) {
  const int64_t N = fz_dim(f, 0, 3), C = fz_dim(f, 0, 7), H = fz_dim(f, 1, 13), W = fz_dim(f, 1, 13);
  const int64_t sx[4] = {N, C, H, W}, so[4] = {N, C, 1, 1};
  const clai_dtype dt = fz_fdtype(f);
  const int backward = fz_chance(f, 0.5), nd_o = fz_chance(f, 0.5) ? 2 : 4;
  fz_note(f, "%s; ", backward ? "backward" : "forward");
  if (!backward) {
    fz_opnd *x = fz_in(f, "x", dt, 4, sx, -2, 2), *out = fz_out(f, "out", dt, nd_o, so);
    if (!fz_ok(f, "clai_global_avg_pool2d", clai_global_avg_pool2d(f->ctx, out->t, x->t))) return;
    double *m = fz_mag(out);
    for (size_t i = 0; i < x->n; i++) out->v[i / (size_t)(H * W)] += x->v[i] / (double)(H * W);
    for (size_t i = 0; i < out->n; i++) m[i] = 2;
    fz_check(f, out, TOL_SUM);
  } else {
    fz_opnd *gy = fz_in(f, "grad_out", dt, nd_o, so, -2, 2), *gx = fz_out(f, "grad_x", dt, 4, sx);
    if (!fz_ok(f, "clai_global_avg_pool2d_backward", clai_global_avg_pool2d_backward(f->ctx, gx->t, gy->t))) return;
    for (size_t i = 0; i < gx->n; i++) gx->v[i] = gy->v[i / (size_t)(H * W)] / (double)(H * W);
    fz_check(f, gx, TOL_ELEM);
  }
}

/* =========================================================================================================
 * Attention and rotary embedding.
 */

typedef struct attn_p {
  int64_t B, H, Hk, Lq, Lk, D, Dv;
  double scale;
  int causal;
} attn_p;

static void attn_draw(fz *f, attn_p *a) {
  a->B = fz_dim(f, 0, 2), a->Hk = fz_int(f, 1, 2), a->H = a->Hk * fz_int(f, 1, 3);
  a->Lq = fz_dim(f, 0, 19), a->Lk = fz_dim(f, 0, 23), a->D = fz_dim(f, 1, 40), a->Dv = fz_dim(f, 1, 40);
  a->scale = fz_chance(f, 0.5) ? 0 : (double)(float)fz_unif(f, 0.05, 0.5);
  a->causal = fz_chance(f, 0.4);
  fz_note(f, "attention B %lld H %lld Hk %lld Lq %lld Lk %lld D %lld Dv %lld scale %.9g causal %d; ", (long long)a->B,
          (long long)a->H, (long long)a->Hk, (long long)a->Lq, (long long)a->Lk, (long long)a->D, (long long)a->Dv,
          a->scale, a->causal);
}

static int attn_sees(const attn_p *a, int64_t i, int64_t j) { return !a->causal || j <= i + a->Lk - a->Lq; }

/* The forward in double: out [B, H, Lq, Dv], lse [B, H, Lq], magnitudes of out in mo. */
static void ref_attention(const attn_p *a, const double *q, const double *k, const double *v, double *out,
                          double *mo, double *lse) {
  const double sc = a->scale != 0 ? a->scale : 1 / sqrt((double)a->D);
  double *s = calloc((size_t)a->Lk + 1, sizeof *s);
  for (int64_t b = 0; b < a->B; b++)
    for (int64_t h = 0; h < a->H; h++) {
      const int64_t kh = h / (a->H / a->Hk);
      const double *kb = k + (size_t)((b * a->Hk + kh) * a->Lk * a->D), *vb = v + (size_t)((b * a->Hk + kh) * a->Lk * a->Dv);
      for (int64_t i = 0; i < a->Lq; i++) {
        const double *qi = q + (size_t)(((b * a->H + h) * a->Lq + i) * a->D);
        const size_t row = (size_t)((b * a->H + h) * a->Lq + i);
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < a->Lk; j++) {
          if (!attn_sees(a, i, j)) continue;
          double d = 0;
          for (int64_t e = 0; e < a->D; e++) d += qi[e] * kb[j * a->D + e];
          s[j] = sc * d, mx = fmax(mx, s[j]);
        }
        for (int64_t j = 0; j < a->Lk; j++)
          if (attn_sees(a, i, j)) sum += exp(s[j] - mx);
        if (lse) lse[row] = mx == -INFINITY ? -INFINITY : mx + log(sum);
        for (int64_t e = 0; e < a->Dv; e++) {
          double acc = 0, mag = 0;
          for (int64_t j = 0; j < a->Lk; j++)
            if (attn_sees(a, i, j)) {
              const double p = exp(s[j] - mx) / sum;
              acc += p * vb[j * a->Dv + e], mag += p * fabs(vb[j * a->Dv + e]);
            }
          out[row * (size_t)a->Dv + (size_t)e] = mx == -INFINITY ? 0 : acc;
          if (mo) mo[row * (size_t)a->Dv + (size_t)e] = mag + 1e-2;
        }
      }
    }
  free(s);
}

static void op_attention(fz *f) {
  attn_p a;
  attn_draw(f, &a);
  const clai_dtype dt = fz_fdtype(f);
  const int64_t sq[4] = {a.B, a.H, a.Lq, a.D}, sk[4] = {a.B, a.Hk, a.Lk, a.D}, sv[4] = {a.B, a.Hk, a.Lk, a.Dv};
  const int64_t so[4] = {a.B, a.H, a.Lq, a.Dv};
  fz_opnd *q = fz_in(f, "q", dt, 4, sq, -1, 1), *k = fz_in(f, "k", dt, 4, sk, -1, 1), *v = fz_in(f, "v", dt, 4, sv, -1, 1);
  int64_t sbad[4] = {so[0], so[1], so[2], so[3]};
  const int spoiled = fz_spoil(f, 4, sbad, 0);
  fz_opnd *out = fz_out(f, "out", fz_fdtype(f), 4, sbad);
  fz_opnd *lse = fz_chance(f, 0.6) ? fz_out(f, "lse", CLAI_DTYPE_F32, 3, so) : NULL;
  const clai_status st = clai_attention(f->ctx, out->t, lse ? lse->t : NULL, q->t, k->t, v->t, (float)a.scale, a.causal);
  if (spoiled) {
    fz_refused(f, "clai_attention", st, out);
    if (lse) fz_untouched(f, lse);
    return;
  }
  if (!fz_ok(f, "clai_attention", st)) return;
  ref_attention(&a, q->v, k->v, v->v, out->v, fz_mag(out), lse ? lse->v : NULL);
  fz_check(f, out, TOL_SUM);
  if (lse) {
    double *m = fz_mag(lse);
    for (size_t i = 0; i < lse->n; i++) m[i] = fabs(lse->v[i]) + 1;
    fz_check(f, lse, TOL_SUM);
  }
}

static void op_attention_backward(fz *f) {
  attn_p a;
  attn_draw(f, &a);
  const clai_dtype dt = fz_fdtype(f);
  const int64_t sq[4] = {a.B, a.H, a.Lq, a.D}, sk[4] = {a.B, a.Hk, a.Lk, a.D}, sv[4] = {a.B, a.Hk, a.Lk, a.Dv};
  const int64_t so[4] = {a.B, a.H, a.Lq, a.Dv};
  fz_opnd *q = fz_in(f, "q", dt, 4, sq, -1, 1), *k = fz_in(f, "k", dt, 4, sk, -1, 1), *v = fz_in(f, "v", dt, 4, sv, -1, 1);
  fz_opnd *gy = fz_in(f, "grad_out", fz_fdtype(f), 4, so, -1, 1);
  const size_t no = fz_count(4, so), nl = fz_count(3, so);
  double *ov = calloc(no + 1, sizeof *ov), *lv = calloc(nl + 1, sizeof *lv);
  ref_attention(&a, q->v, k->v, v->v, ov, NULL, lv);
  fz_opnd *out = fz_in_v(f, "out", fz_fdtype(f), 4, so, ov), *lse = fz_make(f, "lse", CLAI_DTYPE_F32, 3, so, FZ_IN, FZ_ANY, lv);
  free(ov), free(lv);
  fz_opnd *gq = fz_out(f, "grad_q", fz_fdtype(f), 4, sq), *gk = fz_out(f, "grad_k", fz_fdtype(f), 4, sk);
  fz_opnd *gv = fz_out(f, "grad_v", fz_fdtype(f), 4, sv);
  if (!fz_ok(f, "clai_attention_backward",
             clai_attention_backward(f->ctx, gq->t, gk->t, gv->t, gy->t, q->t, k->t, v->t, out->t, lse->t,
                                     (float)a.scale, a.causal)))
    return;
  const double sc = a.scale != 0 ? a.scale : 1 / sqrt((double)a.D);
  double *mq = fz_mag(gq), *mk = fz_mag(gk), *mv = fz_mag(gv);
  for (int64_t b = 0; b < a.B; b++)
    for (int64_t h = 0; h < a.H; h++) {
      const int64_t kh = h / (a.H / a.Hk);
      const size_t kb = (size_t)((b * a.Hk + kh) * a.Lk);
      for (int64_t i = 0; i < a.Lq; i++) {
        const size_t row = (size_t)((b * a.H + h) * a.Lq + i);
        const double *qi = q->v + row * (size_t)a.D, *gi = gy->v + row * (size_t)a.Dv, *oi = out->v + row * (size_t)a.Dv;
        if (lse->v[row] == -INFINITY) continue;
        double Di = 0, mDi = 0;
        for (int64_t e = 0; e < a.Dv; e++) Di += gi[e] * oi[e], mDi += fabs(gi[e] * oi[e]);
        for (int64_t j = 0; j < a.Lk; j++) {
          if (!attn_sees(&a, i, j)) continue;
          const double *kj = k->v + (kb + (size_t)j) * (size_t)a.D, *vj = v->v + (kb + (size_t)j) * (size_t)a.Dv;
          double d = 0, dp = 0, mdp = 0;
          for (int64_t e = 0; e < a.D; e++) d += qi[e] * kj[e];
          const double p = exp(sc * d - lse->v[row]);
          for (int64_t e = 0; e < a.Dv; e++) {
            dp += gi[e] * vj[e], mdp += fabs(gi[e] * vj[e]);
            gv->v[(kb + (size_t)j) * (size_t)a.Dv + (size_t)e] += p * gi[e];
            mv[(kb + (size_t)j) * (size_t)a.Dv + (size_t)e] += p * fabs(gi[e]) + 1e-3;
          }
          const double ds = p * (dp - Di), mds = p * (mdp + mDi) + 1e-3;
          for (int64_t e = 0; e < a.D; e++) {
            gq->v[row * (size_t)a.D + (size_t)e] += sc * ds * kj[e];
            mq[row * (size_t)a.D + (size_t)e] += sc * mds * fabs(kj[e]);
            gk->v[(kb + (size_t)j) * (size_t)a.D + (size_t)e] += sc * ds * qi[e];
            mk[(kb + (size_t)j) * (size_t)a.D + (size_t)e] += sc * mds * fabs(qi[e]);
          }
        }
      }
    }
  /* out and lse come rounded from the host, so the recomputed probabilities carry their rounding. */
  const fz_tol tol = {1e-5, 1e-4, 2e-3, 1e-2};
  fz_check(f, gq, tol);
  fz_check(f, gk, tol);
  fz_check(f, gv, tol);
}

static void op_rope(fz *f) {
  clai_rope_params rp;
  memset(&rp, 0, sizeof rp);
  rp.layout = fz_chance(f, 0.5) ? CLAI_ROPE_BHLD : CLAI_ROPE_BLHD;
  rp.mode = fz_chance(f, 0.5) ? CLAI_ROPE_INTERLEAVED : CLAI_ROPE_HALVES;
  const int nd = (int)fz_int(f, rp.layout == CLAI_ROPE_BLHD ? 3 : 2, 4);
  int64_t s[4];
  fz_shape(f, nd - 1, s, 0, 9);
  const int64_t D = fz_dim(f, 2, 40);
  s[nd - 1] = D;
  rp.rot_dims = D % 2 == 0 && fz_chance(f, 0.5) ? 0 : 2 * fz_int(f, 1, D / 2);
  rp.pos_offset = fz_chance(f, 0.5) ? 0 : fz_int(f, 1, 60);
  rp.theta = fz_chance(f, 0.5) ? 0.0f : (float)fz_unif(f, 100, 20000);
  rp.inverse = fz_chance(f, 0.3);
  const int pdim = rp.layout == CLAI_ROPE_BLHD ? nd - 3 : nd - 2;
  fz_note(f, "rope mode %d layout %d pos_offset %lld theta %.9g rot_dims %lld inverse %d; ", rp.mode, rp.layout,
          (long long)rp.pos_offset, rp.theta, (long long)rp.rot_dims, rp.inverse);
  const clai_dtype dt = fz_fdtype(f);
  int inplace;
  double *v = fz_rand(f, fz_count(nd, s), -2, 2);
  fz_opnd *x = fz_in_or_inplace(f, "x", dt, nd, s, v, &inplace);
  free(v);
  fz_opnd *out = inplace ? x : fz_out(f, "out", dt, nd, s);
  if (!fz_ok(f, "clai_rope", clai_rope(f->ctx, out->t, x->t, &rp))) return;
  const int64_t n = rp.rot_dims ? rp.rot_dims : D;
  const double theta = rp.theta != 0 ? rp.theta : 10000.0;
  double *m = fz_mag(out);
  int64_t idx[CLAI_MAX_DIMS];
  for (size_t r = 0; r < out->n / (size_t)D; r++) {
    fz_unravel(r * (size_t)D, nd, s, idx);
    const double p = (double)(rp.pos_offset + idx[pdim]);
    double xr[64]; /* the row's old values (out may be x itself) */
    memcpy(xr, x->v + r * (size_t)D, (size_t)D * sizeof *xr);
    double *o = out->v + r * (size_t)D, *mo = m + r * (size_t)D;
    for (int64_t e = n; e < D; e++) o[e] = xr[e];
    for (int64_t i = 0; i < n / 2; i++) {
      const int64_t ia = rp.mode == CLAI_ROPE_INTERLEAVED ? 2 * i : i, ib = rp.mode == CLAI_ROPE_INTERLEAVED ? 2 * i + 1 : i + n / 2;
      const double t = (rp.inverse ? -p : p) * pow(theta, -2.0 * (double)i / (double)n), c = cos(t), sn = sin(t);
      o[ia] = xr[ia] * c - xr[ib] * sn, o[ib] = xr[ia] * sn + xr[ib] * c;
      /* The angle is rounded in f32 (about p * 6e-8 radians of error). */
      mo[ia] = mo[ib] = (fabs(xr[ia]) + fabs(xr[ib])) * (1 + 0.05 * p);
    }
  }
  fz_check(f, out, TOL_SUM);
}

/* =========================================================================================================
 * Layout ops.
 */

static void op_concat(fz *f) {
  const int nd = (int)fz_int(f, 1, 4), n = (int)fz_int(f, 1, 4), axis = (int)fz_int(f, 0, nd - 1);
  const int api_axis = fz_chance(f, 0.3) ? axis - nd : axis;
  const clai_dtype dt = fz_anydtype(f);
  int64_t so[4], sx[4];
  fz_shape(f, nd, so, 0, 11);
  so[axis] = 0;
  fz_opnd *xs[4];
  const clai_tensor *xt[4];
  int64_t start[5] = {0};
  for (int i = 0; i < n; i++) {
    memcpy(sx, so, sizeof sx);
    sx[axis] = fz_dim(f, 0, 9);
    start[i + 1] = start[i] + sx[axis];
    static const char *const names[] = {"xs[0]", "xs[1]", "xs[2]", "xs[3]"};
    xs[i] = fz_in(f, names[i], dt, nd, sx, -1000, 1000);
    xt[i] = xs[i]->t;
  }
  so[axis] = start[n];
  fz_note(f, "n %d axis %d; ", n, api_axis);
  fz_opnd *out = fz_out(f, "out", dt, nd, so);
  if (!fz_ok(f, "clai_concat", clai_concat(f->ctx, out->t, n, xt, api_axis))) return;
  int64_t idx[CLAI_MAX_DIMS];
  for (size_t i = 0; i < out->n; i++) {
    fz_unravel(i, nd, so, idx);
    int k = 0;
    while (idx[axis] >= start[k + 1]) k++;
    idx[axis] -= start[k];
    size_t li = 0;
    for (int d = 0; d < nd; d++) li = li * (size_t)xs[k]->shape[d] + (size_t)idx[d];
    out->v[i] = xs[k]->v[li];
  }
  fz_check(f, out, TOL_EXACT);
}

/* Indices in [0, rows), with one outside now and then (bad != NULL: set when so). */
static double *fz_indices(fz *f, size_t n, int64_t rows, int *bad) {
  double *v = fz_rand(f, n, 0, (double)rows);
  for (size_t i = 0; i < n; i++) v[i] = floor(v[i]);
  if (bad) *bad = 0;
  if (bad && n > 0 && fz_chance(f, 0.1)) {
    v[fz_int(f, 0, (int64_t)n - 1)] = fz_chance(f, 0.5) ? -1 : (double)rows + (double)fz_int(f, 0, 3);
    *bad = 1;
  }
  return v;
}

static void op_gather_rows(fz *f) {
  const int64_t rows = fz_dim(f, 1, 23), cols = fz_dim(f, 0, 23), st[2] = {rows, cols};
  const int ndi = (int)fz_int(f, 0, 3);
  int64_t si[4];
  fz_shape(f, ndi, si, 0, 7);
  si[ndi] = cols;
  const clai_dtype dt = fz_anydtype(f);
  int bad;
  double *iv = fz_indices(f, fz_count(ndi, si), rows, &bad);
  fz_opnd *table = fz_in(f, "table", dt, 2, st, -1000, 1000), *index = fz_in_v(f, "index", CLAI_DTYPE_I32, ndi, si, iv);
  free(iv);
  bad = 0; /* what the view holds decides (a stride of 0 may repeat or hide the bad index) */
  for (size_t p = 0; p < index->n; p++) bad |= index->v[p] < 0 || index->v[p] >= (double)rows;
  fz_opnd *out = fz_out(f, "out", dt, ndi + 1, si);
  const clai_status s = clai_gather_rows(f->ctx, out->t, table->t, index->t);
  if (bad) { /* every row is still written: good rows gathered, bad rows zero */
    if (!fz_fails(f, "clai_gather_rows with an index out of range", s, CLAI_E_INVALID_ARG)) return;
  } else if (!fz_ok(f, "clai_gather_rows", s)) {
    return;
  }
  for (size_t p = 0; p < index->n; p++)
    for (int64_t c = 0; c < cols; c++) {
      const double r = index->v[p];
      out->v[p * (size_t)cols + (size_t)c] = r >= 0 && r < rows ? table->v[(size_t)r * (size_t)cols + (size_t)c] : 0;
    }
  fz_check(f, out, TOL_EXACT);
}

static void op_gather_rows_backward(fz *f) {
  const int64_t rows = fz_dim(f, 1, 23), cols = fz_dim(f, 0, 23), st[2] = {rows, cols};
  const int ndi = (int)fz_int(f, 0, 3), accumulate = fz_chance(f, 0.4);
  int64_t si[4];
  fz_shape(f, ndi, si, 0, 7);
  si[ndi] = cols;
  double *iv = fz_indices(f, fz_count(ndi, si), rows, NULL);
  fz_opnd *index = fz_in_v(f, "index", CLAI_DTYPE_I32, ndi, si, iv), *gy = fz_in(f, "grad_out", fz_fdtype(f), ndi + 1, si, -2, 2);
  free(iv);
  double *old = fz_rand(f, (size_t)(rows * cols), -2, 2);
  fz_opnd *gt = fz_make(f, "grad_table", fz_fdtype(f), 2, st, accumulate ? FZ_INOUT : FZ_OUT, FZ_ANY, accumulate ? old : NULL);
  free(old);
  fz_note(f, "accumulate %d; ", accumulate);
  if (!fz_ok(f, "clai_gather_rows_backward", clai_gather_rows_backward(f->ctx, gt->t, gy->t, index->t, accumulate)))
    return;
  double *m = fz_mag(gt);
  for (size_t i = 0; i < gt->n; i++) m[i] = fabs(gt->v[i]);
  for (size_t p = 0; p < index->n; p++)
    for (int64_t c = 0; c < cols; c++) {
      const size_t ti = (size_t)index->v[p] * (size_t)cols + (size_t)c;
      gt->v[ti] += gy->v[p * (size_t)cols + (size_t)c], m[ti] += fabs(gy->v[p * (size_t)cols + (size_t)c]);
    }
  fz_check(f, gt, TOL_SUM);
}

static void op_one_hot(fz *f) {
  const int nd = (int)fz_int(f, 0, 3);
  int64_t s[4];
  fz_shape(f, nd, s, 0, 9);
  const int64_t classes = fz_dim(f, 0, 13);
  s[nd] = classes;
  double *lv = fz_rand(f, fz_count(nd, s), -1, (double)classes + 1);
  for (size_t i = 0; i < fz_count(nd, s); i++) lv[i] = floor(lv[i]);
  fz_opnd *labels = fz_in_v(f, "labels", CLAI_DTYPE_I32, nd, s, lv), *out = fz_out(f, "out", fz_anydtype(f), nd + 1, s);
  free(lv);
  if (!fz_ok(f, "clai_one_hot", clai_one_hot(f->ctx, out->t, labels->t))) return;
  for (size_t i = 0; i < out->n; i++) out->v[i] = labels->v[i / (size_t)classes] == (double)(i % (size_t)classes);
  fz_check(f, out, TOL_EXACT);
}

/* =========================================================================================================
 * Training: optimizer steps, gradient clipping, random numbers, dropout.
 */

static void op_optim(fz *f) {
  const int which = (int)fz_int(f, 0, 2); /* sgd, adam, adamw */
  const int nd = (int)fz_int(f, 0, 3);
  int64_t s[4];
  fz_shape(f, nd, s, 0, 23);
  const size_t n = fz_count(nd, s);
  const clai_dtype dt = fz_fdtype(f);
  const int64_t step = fz_int(f, 1, 5);
  double *pv = fz_rand(f, n, -2, 2), *gv = fz_rand(f, n, -1, 1), *s1 = fz_rand(f, n, -1, 1), *s2 = fz_rand(f, n, 0, 0.5);
  fz_opnd *param = fz_make(f, "param", dt, nd, s, FZ_INOUT, FZ_DENSE, pv);
  fz_opnd *grad = fz_make(f, "grad", dt, nd, s, FZ_IN, FZ_DENSE, gv);
  free(pv), free(gv);
  clai_status st;
  fz_opnd *b1 = NULL, *b2 = NULL;
  double *old = calloc(n + 1, sizeof *old);
  memcpy(old, param->v, n * sizeof *old);
  double *m = fz_mag(param);
  if (which == 0) {
    clai_sgd_params hp = {(float)fz_unif(f, 0, 0.5), 0, 0, 0, 0};
    if (fz_chance(f, 0.7)) hp.momentum = (float)fz_unif(f, 0.1, 0.95);
    if (hp.momentum != 0 && fz_chance(f, 0.4)) hp.nesterov = 1;
    else if (fz_chance(f, 0.4)) hp.dampening = (float)fz_unif(f, 0, 0.5);
    if (fz_chance(f, 0.5)) hp.weight_decay = (float)fz_unif(f, 0, 0.1);
    fz_note(f, "sgd step %lld lr %.9g momentum %.9g dampening %.9g weight_decay %.9g nesterov %d; ", (long long)step,
            hp.lr, hp.momentum, hp.dampening, hp.weight_decay, hp.nesterov);
    if (hp.momentum != 0 || fz_chance(f, 0.5)) b1 = fz_make(f, "momentum_buf", CLAI_DTYPE_F32, nd, s, FZ_INOUT, FZ_DENSE, s1);
    st = clai_optim_sgd(f->ctx, param->t, b1 ? b1->t : NULL, grad->t, step, &hp);
    if (fz_ok(f, "clai_optim_sgd", st)) {
      for (size_t i = 0; i < n; i++) {
        double g = grad->v[i] + (double)hp.weight_decay * old[i];
        if (hp.momentum != 0) {
          const double buf = step == 1 ? g : hp.momentum * b1->v[i] + (1 - (double)hp.dampening) * g;
          b1->v[i] = buf;
          g = hp.nesterov ? g + hp.momentum * buf : buf;
        }
        param->v[i] = old[i] - hp.lr * g, m[i] = fabs(old[i]) + fabs(hp.lr * g) * 4;
      }
      fz_check(f, param, TOL_SUM);
      if (b1) fz_check(f, b1, TOL_SUM);
    }
  } else {
    clai_adam_params hp = {(float)fz_unif(f, 0, 0.1), (float)fz_unif(f, 0, 0.95), (float)fz_unif(f, 0.5, 0.999),
                           fz_chance(f, 0.5) ? 1e-8f : (float)fz_unif(f, 0, 0.1), fz_chance(f, 0.5) ? 0.0f : (float)fz_unif(f, 0, 0.1)};
    fz_note(f, "%s step %lld lr %.9g beta1 %.9g beta2 %.9g eps %.9g weight_decay %.9g; ", which == 1 ? "adam" : "adamw",
            (long long)step, hp.lr, hp.beta1, hp.beta2, hp.eps, hp.weight_decay);
    b1 = fz_make(f, "exp_avg", CLAI_DTYPE_F32, nd, s, FZ_INOUT, FZ_DENSE, s1);
    b2 = fz_make(f, "exp_avg_sq", CLAI_DTYPE_F32, nd, s, FZ_INOUT, FZ_DENSE, s2);
    st = which == 1 ? clai_optim_adam(f->ctx, param->t, b1->t, b2->t, grad->t, step, &hp)
                    : clai_optim_adamw(f->ctx, param->t, b1->t, b2->t, grad->t, step, &hp);
    if (fz_ok(f, which == 1 ? "clai_optim_adam" : "clai_optim_adamw", st)) {
      const double c1 = 1 - pow(hp.beta1, (double)step), c2 = 1 - pow(hp.beta2, (double)step);
      double *m1 = fz_mag(b1), *m2 = fz_mag(b2);
      for (size_t i = 0; i < n; i++) {
        double p = old[i], g = grad->v[i];
        if (which == 2) p *= 1 - (double)hp.lr * hp.weight_decay;
        else g += (double)hp.weight_decay * p;
        b1->v[i] = hp.beta1 * b1->v[i] + (1 - (double)hp.beta1) * g, m1[i] = fabs(b1->v[i]) + fabs(g);
        b2->v[i] = hp.beta2 * b2->v[i] + (1 - (double)hp.beta2) * g * g, m2[i] = fabs(b2->v[i]) + g * g;
        const double upd = hp.lr / c1 * b1->v[i] / (sqrt(b2->v[i]) / sqrt(c2) + hp.eps);
        param->v[i] = p - upd, m[i] = fabs(p) + fabs(upd) * 10;
      }
      fz_check(f, param, TOL_SUM);
      fz_check(f, b1, TOL_SUM);
      fz_check(f, b2, TOL_SUM);
    }
  }
  free(s1), free(s2), free(old);
}

static void op_clip_grad_norm(fz *f) {
  const int n = (int)fz_int(f, 1, 3);
  fz_opnd *g[3];
  clai_tensor *gt[3];
  double sq = 0;
  for (int i = 0; i < n; i++) {
    int64_t s[3];
    const int nd = (int)fz_int(f, 0, 3);
    fz_shape(f, nd, s, 0, 23);
    double *v = fz_rand(f, fz_count(nd, s), -2, 2);
    static const char *const names[] = {"grads[0]", "grads[1]", "grads[2]"};
    g[i] = fz_make(f, names[i], fz_fdtype(f), nd, s, FZ_INOUT, FZ_DENSE, v);
    free(v);
    gt[i] = g[i]->t;
    for (size_t j = 0; j < g[i]->n; j++) sq += g[i]->v[j] * g[i]->v[j];
  }
  const float max_norm = (float)fz_unif(f, 0.1, 10);
  fz_note(f, "max_norm %.9g; ", max_norm);
  fz_opnd *norm = fz_chance(f, 0.7) ? fz_scalar_out(f, "norm_out") : NULL;
  if (!fz_ok(f, "clai_clip_grad_norm", clai_clip_grad_norm(f->ctx, gt, n, max_norm, norm ? norm->t : NULL))) return;
  const double total = sqrt(sq), factor = fmin(1.0, max_norm / (total + 1e-6));
  for (int i = 0; i < n; i++) {
    for (size_t j = 0; j < g[i]->n; j++) g[i]->v[j] *= factor;
    fz_check(f, g[i], TOL_SUM);
  }
  if (norm) {
    norm->v[0] = total;
    fz_check(f, norm, TOL_SUM);
  }
}

/* Counter-based random ops: a strided view gets what a dense tensor of its shape gets (bit for bit), the
 * values lie in their range, and nothing outside the view is written. */
static void op_random(fz *f) {
  const int which = (int)fz_int(f, 0, 5); /* uniform, normal, kaiming u/n, xavier u/n */
  const int nd = (int)fz_int(f, which >= 2 ? 2 : 0, 4);
  int64_t s[4];
  fz_shape(f, nd, s, which >= 2 ? 1 : 0, 13);
  const clai_dtype dt = fz_fdtype(f);
  const uint64_t seed = fz_next(f), offset = (uint64_t)fz_int(f, 0, 1000);
  const float lo = (float)fz_unif(f, -3, 1), hi = lo + (float)fz_unif(f, 0, 4), gain = (float)fz_unif(f, 0, 2);
  const int fan_out = fz_chance(f, 0.5);
  fz_note(f, "kind %d seed %llu offset %llu lo %.9g hi %.9g gain %.9g fan_out %d; ", which, (unsigned long long)seed,
          (unsigned long long)offset, lo, hi, gain, fan_out);
  fz_opnd *out = fz_out(f, "out", dt, nd, s);
  clai_tensor *dense = clait_tensor(f->ctx, dt, nd, s);
  clai_status st = CLAI_OK;
  for (int pass = 0; pass < 2 && st == CLAI_OK; pass++) {
    clai_tensor *t = pass ? out->t : dense;
    switch (which) {
    case 0: st = clai_rand_uniform(f->ctx, t, seed, offset, lo, hi); break;
    case 1: st = clai_rand_normal(f->ctx, t, seed, offset, lo, hi - lo); break;
    case 2: st = clai_init_kaiming_uniform(f->ctx, t, seed, offset, gain, fan_out); break;
    case 3: st = clai_init_kaiming_normal(f->ctx, t, seed, offset, gain, fan_out); break;
    case 4: st = clai_init_xavier_uniform(f->ctx, t, seed, offset, gain); break;
    default: st = clai_init_xavier_normal(f->ctx, t, seed, offset, gain); break;
    }
  }
  if (fz_ok(f, "random op", st)) {
    clait_read(f->ctx, dense, out->v);
    double bound = INFINITY;
    if (which == 0) bound = 0;
    if (which == 2 || which == 4) {
      int64_t fi, fo;
      CLAIT_OK(f->ctx, clai_init_fans(dense, &fi, &fo));
      const double g = which == 2 ? (gain != 0 ? gain : sqrt(2.0)) : (gain != 0 ? gain : 1.0);
      bound = which == 2 ? sqrt(3.0) * g / sqrt((double)(fan_out ? fo : fi)) : g * sqrt(6.0 / (double)(fi + fo));
    }
    for (size_t i = 0; i < out->n; i++) {
      const double v = out->v[i];
      const int in = which == 0 ? v >= clait_as_dtype(dt, lo) && v <= clait_as_dtype(dt, hi) && (v < hi || dt == CLAI_DTYPE_F16 || lo == hi)
                                : isfinite(v) && fabs(v) <= clait_as_dtype(dt, bound) * (1 + 1e-6);
      if (!in) {
        fz_fail(f, "element %zu = %.9g is outside its range (bound %.9g)", i, v, bound);
        break;
      }
    }
    fz_check(f, out, TOL_EXACT);
  }
  clai_tensor_free(dense);
}

static void op_dropout(fz *f) {
  const int nd = (int)fz_int(f, 0, 4);
  int64_t s[4];
  fz_shape(f, nd, s, 0, 23);
  const clai_dtype dt = fz_fdtype(f);
  const int r = (int)fz_int(f, 0, 9);
  const float p = r == 0 ? 0.0f : r == 1 ? 1.0f : (float)fz_unif(f, 0.05, 0.95);
  const uint64_t seed = fz_next(f), offset = (uint64_t)fz_int(f, 0, 1000);
  fz_note(f, "p %.9g seed %llu offset %llu; ", p, (unsigned long long)seed, (unsigned long long)offset);
  fz_opnd *x = fz_in(f, "x", dt, nd, s, -2, 2), *out = fz_out(f, "out", dt, nd, s);
  fz_opnd *mask = fz_chance(f, 0.6) ? fz_out(f, "mask", dt, nd, s) : NULL;
  /* The same draw into a dense mask tells which elements were kept. */
  clai_tensor *dx = clait_tensor(f->ctx, dt, nd, s), *dout = clait_tensor(f->ctx, dt, nd, s), *dmask = clait_tensor(f->ctx, dt, nd, s);
  clait_put(f->ctx, dx, x->v);
  clai_status st = clai_dropout(f->ctx, dout, dmask, dx, p, seed, offset);
  if (st == CLAI_OK) st = clai_dropout(f->ctx, out->t, mask ? mask->t : NULL, x->t, p, seed, offset);
  if (fz_ok(f, "clai_dropout", st)) {
    double *mv = calloc(x->n + 1, sizeof *mv);
    clait_read(f->ctx, dmask, mv);
    const double keep = p >= 1 ? 0 : clait_as_dtype(dt, 1.0 / (1.0 - p));
    for (size_t i = 0; i < x->n; i++) {
      if (!(mv[i] == 0 || fabs(mv[i] - keep) <= keep * 1e-6)) {
        fz_fail(f, "dense mask element %zu is %.9g, neither 0 nor %.9g", i, mv[i], keep);
        break;
      }
      out->v[i] = x->v[i] * mv[i];
      if (mask) mask->v[i] = mv[i];
    }
    if (p == 0 || p == 1)
      for (size_t i = 0; i < x->n; i++)
        if (mv[i] != (p == 0 ? 1 : 0)) {
          fz_fail(f, "p = %g: mask element %zu is %.9g", p, i, mv[i]);
          break;
        }
    fz_check(f, out, TOL_ELEM);
    if (mask) fz_check(f, mask, TOL_EXACT);
    free(mv);
  }
  clai_tensor_free(dx), clai_tensor_free(dout), clai_tensor_free(dmask);
}

/* =========================================================================================================
 * The table of ops, and the driver.
 */

typedef struct fz_op {
  const char *name;
  void (*run)(fz *f);
  int weight; /* relative number of cases */
} fz_op;

static const fz_op ops[] = {
    {"unary", op_unary, 3},
    {"unary_backward", op_unary_backward, 2},
    {"binary", op_binary, 3},
    {"binary_backward", op_binary_backward, 2},
    {"affine", op_affine, 1},
    {"copy", op_copy, 2},
    {"fill", op_fill, 1},
    {"where", op_where, 1},
    {"contiguous", op_contiguous, 1},
    {"matmul", op_matmul, 4},
    {"reduce", op_reduce, 3},
    {"var", op_var, 1},
    {"argmax", op_argmax, 1},
    {"argmin", op_argmin, 1},
    {"sum_to", op_sum_to, 1},
    {"softmax", op_softmax, 2},
    {"log_softmax", op_log_softmax, 2},
    {"softmax_backward", op_softmax_backward, 1},
    {"log_softmax_backward", op_log_softmax_backward, 1},
    {"layernorm", op_layernorm, 2},
    {"rmsnorm", op_rmsnorm, 1},
    {"layernorm_backward", op_layernorm_backward, 1},
    {"rmsnorm_backward", op_rmsnorm_backward, 1},
    {"cross_entropy", op_cross_entropy, 2},
    {"mse", op_mse, 1},
    {"conv2d", op_conv2d, 2},
    {"conv2d_backward_data", op_conv2d_backward_data, 2},
    {"conv2d_backward_weight", op_conv2d_backward_weight, 2},
    {"max_pool2d", op_max_pool2d, 1},
    {"avg_pool2d", op_avg_pool2d, 1},
    {"max_pool2d_backward", op_max_pool2d_backward, 1},
    {"avg_pool2d_backward", op_avg_pool2d_backward, 1},
    {"global_avg_pool2d", op_global_avg_pool2d, 1},
    {"attention", op_attention, 2},
    {"attention_backward", op_attention_backward, 2},
    {"rope", op_rope, 1},
    {"concat", op_concat, 1},
    {"gather_rows", op_gather_rows, 1},
    {"gather_rows_backward", op_gather_rows_backward, 1},
    {"one_hot", op_one_hot, 1},
    {"optim", op_optim, 2},
    {"clip_grad_norm", op_clip_grad_norm, 1},
    {"random", op_random, 1},
    {"dropout", op_dropout, 1},
};
#define NOPS (sizeof ops / sizeof ops[0])

/* Case i of an op draws from a generator seeded by (seed, op name, i) alone, so it reproduces by itself. */
static uint64_t case_seed(const char *name, long i) {
  uint64_t h = 1469598103934665603ULL;
  for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
  return splitmix(splitmix(g_seed) ^ splitmix(h) ^ (uint64_t)i);
}

static long cases_for(const fz_op *op) {
  int total = 0;
  for (size_t i = 0; i < NOPS; i++) total += ops[i].weight;
  const long n = g_cases * op->weight / total;
  return n > 0 ? n : 1;
}

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run_op(void **state) {
  const fz_op *op = *state;
  fz *f = calloc(1, sizeof *f);
  assert_non_null(f);
  f->ctx = g_ctx, f->seed = g_seed, f->op = op->name, f->small = g_small;
  const long n = cases_for(op);
  long run = 0;
  const double t0 = seconds();
  /* CLAI_TEST_CASE=i runs case i even past this run's count (it depends on the seed, the op and i alone). */
  for (long i = g_only_case >= 0 ? g_only_case : 0; i < (g_only_case >= 0 ? g_only_case + 1 : n); i++) {
    f->rng.s = case_seed(op->name, i);
    f->ci = i, f->dlen = 0, f->desc[0] = '\0', f->case_failed = 0;
    op->run(f);
    fz_end(f);
    run++;
  }
  const long failed = f->failed_cases;
  free(f);
  printf("# %s: %ld cases, %.2f s\n", op->name, run, seconds() - t0);
  if (failed > 0) fail_msg("%s: %ld of %ld cases failed (seed %llu)", op->name, failed, run, (unsigned long long)g_seed);
}

static int selected(const char *name, const char *list) {
  if (list == NULL || *list == '\0') return 1;
  const size_t len = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    const size_t k = e ? (size_t)(e - p) : strlen(p);
    if (k == len && strncmp(p, name, k) == 0) return 1;
    p += k + (e != NULL);
  }
  return 0;
}

int main(void) {
  const char *e;
  g_small = clait_small();
  g_dump = (e = getenv("CLAI_TEST_DUMP")) != NULL && strcmp(e, "1") == 0;
  if (g_small) g_cases = 200;
  if ((e = getenv("CLAI_TEST_SEED")) != NULL && *e) g_seed = strtoull(e, NULL, 10);
  if ((e = getenv("CLAI_TEST_CASES")) != NULL && *e) g_cases = strtol(e, NULL, 10);
  if ((e = getenv("CLAI_TEST_CASE")) != NULL && *e) g_only_case = strtol(e, NULL, 10);
  const char *only = getenv("CLAI_TEST_OPS");
  struct CMUnitTest tests[NOPS];
  size_t nt = 0;
  for (size_t i = 0; i < NOPS; i++) {
    if (!selected(ops[i].name, only)) continue;
    memset(&tests[nt], 0, sizeof tests[nt]);
    tests[nt].name = ops[i].name;
    tests[nt].test_func = run_op;
    tests[nt].initial_state = (void *)&ops[i];
    nt++;
  }
  if (nt == 0) {
    printf("1..0 # SKIP CLAI_TEST_OPS=\"%s\" names no op\n", only);
    return 0;
  }
  char err[4096];
  clai_status st = clai_context_init_ex(&g_ctx, NULL, err, sizeof err);
  if (st == CLAI_E_NO_DEVICE && strstr(err, "every candidate failed") == NULL) {
    printf("1..0 # SKIP no OpenCL device: %s\n", err);
    return 0;
  }
  if (st != CLAI_OK) {
    printf("Bail out! clai_context_init: %s: %s\n", clai_status_name(st), err);
    return 1;
  }
  clai_device_info info;
  if (clai_context_device_info(g_ctx, -1, &info) != CLAI_OK) snprintf(info.name, sizeof info.name, "?");
  printf("# test-fuzz: seed %llu, %ld cases in all%s, on %s (CLAI_TEST_SEED, CLAI_TEST_CASES, CLAI_TEST_SIZE)\n",
         (unsigned long long)g_seed, g_cases, g_small ? ", small shapes" : "", info.name);
  cmocka_set_message_output(CM_OUTPUT_TAP);
  const double t0 = seconds();
  const int rc = _cmocka_run_group_tests("test-fuzz", tests, nt, NULL, NULL);
  clai_context_stats cs;
  if (clai_context_stats_get(g_ctx, &cs) == CLAI_OK)
    printf("# test-fuzz: %.1f s; kernel programs: %u built, %u from the cache\n", seconds() - t0, cs.programs_built,
           cs.programs_cached);
  /* Freed here, not in an atexit handler: that would run after the OpenCL runtime's own teardown
   * (Oclgrind aborts then). */
  clai_context_free(g_ctx);
  return rc;
}
