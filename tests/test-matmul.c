/* test-matmul.c - clai_matmul, C = alpha * op(A) * op(B) + beta * C, against a double-precision reference.
 *
 * Every operand is a view (shape, strides, offset) of a 1-d device buffer whose dense host copy the test
 * keeps; the reference reads and writes the host copies through the same layouts, and the whole buffer of C
 * is compared afterwards, so elements outside C's view must come back untouched. Inputs are uniform in
 * [-1, 1] and rounded to the operand's dtype on the host (f16 inputs hold exactly what the device sees), so
 * only the f32 accumulation error (and the rounding of an f16 output) remains. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

/* ---- host helpers ----------------------------------------------------------------------------------- */

static double as_dtype(clai_dtype dt, double v) {
  if (dt == CLAI_DTYPE_F16) return clait_f16_to_f32(clait_f32_to_f16((float)v));
  return (float)v;
}

/* A layout: the view of a 1-d buffer of `len` elements that an operand is. */
typedef struct layout {
  int nd;
  int64_t sh[CLAI_MAX_DIMS], st[CLAI_MAX_DIMS], off;
  size_t len;
} layout;

static size_t numel_of(const layout *l) {
  size_t n = 1;
  for (int i = 0; i < l->nd; i++) n *= (size_t)l->sh[i];
  return n;
}

/* A strided layout; the buffer reaches `slack` elements past the last one it addresses. */
static layout strided(int nd, const int64_t *sh, const int64_t *st, int64_t off, size_t slack) {
  layout l;
  memset(&l, 0, sizeof l);
  l.nd = nd;
  l.off = off;
  int64_t hi = off;
  for (int i = 0; i < nd; i++) {
    l.sh[i] = sh[i];
    l.st[i] = st[i];
    hi += (sh[i] > 0 ? sh[i] - 1 : 0) * st[i];
  }
  l.len = (size_t)hi + 1 + slack;
  return l;
}

static layout dense(int nd, const int64_t *sh) {
  int64_t st[CLAI_MAX_DIMS], s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    st[i] = s;
    s *= sh[i] > 0 ? sh[i] : 1;
  }
  return strided(nd, sh, st, 0, 0);
}

/* The layout of the matrix [r, c] stored transposed ([c, r], dense), as a view: strides (1, r). */
static layout transposed(int64_t r, int64_t c) {
  const int64_t sh[2] = {r, c}, st[2] = {1, r};
  return strided(2, sh, st, 0, 0);
}

static clai_tensor *upload(clai_context *ctx, clai_dtype dt, const double *v, size_t n) {
  clai_tensor *t = NULL;
  const int64_t len = (int64_t)n;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, 1, &len));
  size_t es = clai_dtype_size(dt);
  void *buf = malloc(n * es + 1);
  assert_non_null(buf);
  for (size_t i = 0; i < n; i++) {
    if (dt == CLAI_DTYPE_F16) ((uint16_t *)buf)[i] = clait_f32_to_f16((float)v[i]);
    else ((float *)buf)[i] = (float)v[i];
  }
  clai_status st = clai_tensor_write(t, buf, n * es);
  free(buf);
  CLAIT_OK(ctx, st);
  return t;
}

static void download(clai_context *ctx, clai_tensor *t, float *v, size_t n) {
  clai_dtype dt = clai_tensor_dtype(t);
  if (dt == CLAI_DTYPE_F32) {
    CLAIT_OK(ctx, clai_tensor_read(t, v, n * sizeof *v));
    return;
  }
  uint16_t *h = malloc(n * sizeof *h + 1);
  assert_non_null(h);
  clai_status st = clai_tensor_read(t, h, n * sizeof *h);
  for (size_t i = 0; i < n; i++) v[i] = clait_f16_to_f32(h[i]);
  free(h);
  CLAIT_OK(ctx, st);
}

/* The reference: C = alpha * op(A) * op(B) + beta * C on host buffers through the layouts, in double, with
 * the batch dims of A and B broadcast to C's. When beta is 0, C is not read. */
static void ref_matmul(double *c, const layout *lc, const double *a, const layout *la, int ta, const double *b,
                       const layout *lb, int tb, double alpha, double beta) {
  int nbd = lc->nd - 2;
  size_t batches = 1;
  for (int i = 0; i < nbd; i++) batches *= (size_t)lc->sh[i];
  int64_t M = lc->sh[lc->nd - 2], N = lc->sh[lc->nd - 1];
  int64_t K = ta ? la->sh[la->nd - 2] : la->sh[la->nd - 1];
  int64_t sam = la->st[la->nd - (ta ? 1 : 2)], sak = la->st[la->nd - (ta ? 2 : 1)];
  int64_t sbk = lb->st[lb->nd - (tb ? 1 : 2)], sbn = lb->st[lb->nd - (tb ? 2 : 1)];
  int64_t scm = lc->st[lc->nd - 2], scn = lc->st[lc->nd - 1];
  for (size_t z = 0; z < batches; z++) {
    int64_t oc = lc->off, oa = la->off, ob = lb->off;
    size_t rem = z;
    for (int d = nbd - 1; d >= 0; d--) {
      int64_t i = (int64_t)(rem % (size_t)lc->sh[d]);
      rem /= (size_t)lc->sh[d];
      oc += i * lc->st[d];
      int da = la->nd - 2 - nbd + d, db = lb->nd - 2 - nbd + d;
      if (da >= 0 && la->sh[da] != 1) oa += i * la->st[da];
      if (db >= 0 && lb->sh[db] != 1) ob += i * lb->st[db];
    }
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) acc += a[oa + m * sam + k * sak] * b[ob + k * sbk + n * sbn];
        double *cp = &c[oc + m * scm + n * scn];
        *cp = alpha * acc + (beta != 0 ? beta * *cp : 0.0);
      }
  }
}

/* The view of a 1-d buffer tensor that layout l describes. */
static clai_tensor *view_of(clai_context *ctx, clai_tensor *buf, const layout *l) {
  clai_tensor *v = NULL;
  CLAIT_OK(ctx, clai_tensor_view(buf, &v, l->nd, l->sh, l->st, l->off));
  return v;
}

typedef struct mm_case {
  clai_dtype dab, dc;
  layout a, b, c;
  int ta, tb;
  float alpha, beta;
  int nan_c; /* fill C's buffer with NaN (only with beta == 0) */
  /* the epilogue: bias 0 none, 1 [N], 2 [M, 1], 3 [M, N] (dense, dtype dbias); act */
  int bias;
  clai_dtype dbias;
  clai_activation act;
  /* 2-d A only: op(A) gets a NaN at row 1, k = K / 2 and +inf at row M - 2, k = 0 (rows of NaN and of
   * infinities in C) */
  int special;
} mm_case;

static double activate(clai_activation act, double x) {
  switch (act) {
  case CLAI_ACT_RELU: return x < 0 ? 0 : x; /* NaN passes through, as documented */
  case CLAI_ACT_GELU: return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  case CLAI_ACT_SILU: return x / (1 + exp(-x));
  default: return x;
  }
}

/* Runs one product on the device and compares C's whole buffer with the reference. */
static void run_case(clai_context *ctx, clait_rng *r, const char *what, const mm_case *mc) {
  double *a = malloc(mc->a.len * sizeof *a + 1), *b = malloc(mc->b.len * sizeof *b + 1),
         *c = malloc(mc->c.len * sizeof *c + 1);
  float *got = malloc(mc->c.len * sizeof *got + 1);
  assert_true(a && b && c && got);
  for (size_t i = 0; i < mc->a.len; i++) a[i] = as_dtype(mc->dab, clait_uniform(r, -1, 1));
  for (size_t i = 0; i < mc->b.len; i++) b[i] = as_dtype(mc->dab, clait_uniform(r, -1, 1));
  for (size_t i = 0; i < mc->c.len; i++) c[i] = mc->nan_c ? NAN : as_dtype(mc->dc, clait_uniform(r, -1, 1));
  if (mc->special) {
    assert_int_equal(mc->a.nd, 2);
    const int64_t sm = mc->ta ? mc->a.st[1] : mc->a.st[0], sk = mc->ta ? mc->a.st[0] : mc->a.st[1];
    const int64_t Ma = mc->a.sh[mc->ta ? 1 : 0], Ka = mc->a.sh[mc->ta ? 0 : 1];
    assert_true(Ma >= 3 && Ka >= 1);
    a[mc->a.off + 1 * sm + Ka / 2 * sk] = NAN;
    a[mc->a.off + (Ma - 2) * sm] = INFINITY;
  }
  clai_tensor *ba = upload(ctx, mc->dab, a, mc->a.len), *bb = upload(ctx, mc->dab, b, mc->b.len),
              *bc = upload(ctx, mc->dc, c, mc->c.len);
  clai_tensor *va = view_of(ctx, ba, &mc->a), *vb = view_of(ctx, bb, &mc->b), *vc = view_of(ctx, bc, &mc->c);
  const int64_t M = mc->c.sh[mc->c.nd - 2], N = mc->c.sh[mc->c.nd - 1];
  double *hbias = NULL;
  clai_tensor *bias = NULL;
  if (mc->bias) {
    const size_t nb = (size_t)(mc->bias == 1 ? N : mc->bias == 2 ? M : M * N);
    hbias = malloc(nb * sizeof *hbias + 1);
    assert_non_null(hbias);
    for (size_t i = 0; i < nb; i++) hbias[i] = as_dtype(mc->dbias, clait_uniform(r, -1, 1));
    clai_tensor *flat = upload(ctx, mc->dbias, hbias, nb);
    const int64_t shapes[3][2] = {{N, 0}, {M, 1}, {M, N}};
    CLAIT_OK(ctx, clai_tensor_reshape(flat, &bias, mc->bias == 1 ? 1 : 2, shapes[mc->bias - 1]));
    clai_tensor_free(flat);
  }
  if (mc->bias || mc->act) {
    clai_matmul_epilogue ep = {bias, mc->act};
    CLAIT_OK(ctx, clai_matmul_ex(ctx, vc, va, mc->ta, vb, mc->tb, mc->alpha, mc->beta, &ep));
  } else {
    CLAIT_OK(ctx, clai_matmul(ctx, vc, va, mc->ta, vb, mc->tb, mc->alpha, mc->beta));
  }
  download(ctx, bc, got, mc->c.len);
  ref_matmul(c, &mc->c, a, &mc->a, mc->ta, b, &mc->b, mc->tb, mc->alpha, mc->beta);
  if (mc->bias || mc->act) { /* the epilogue on every element of C's view */
    size_t nbatch = numel_of(&mc->c) / (size_t)(M * N > 0 ? M * N : 1);
    for (size_t z = 0; z < nbatch && M * N > 0; z++) {
      int64_t oc = mc->c.off;
      size_t rem = z;
      for (int d = mc->c.nd - 3; d >= 0; d--) {
        oc += (int64_t)(rem % (size_t)mc->c.sh[d]) * mc->c.st[d];
        rem /= (size_t)mc->c.sh[d];
      }
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
          double *cp = &c[oc + m * mc->c.st[mc->c.nd - 2] + n * mc->c.st[mc->c.nd - 1]];
          double bv = mc->bias == 1 ? hbias[n] : mc->bias == 2 ? hbias[m] : mc->bias == 3 ? hbias[m * N + n] : 0;
          *cp = activate(mc->act, *cp + bv);
        }
    }
  }
  free(hbias);
  clai_tensor_free(bias);

  /* f32 accumulation over K terms of size <= 1: the error grows about like sqrt(K); an f16 output adds
   * its rounding (half an ulp, 2^-11 relative). */
  int64_t K = mc->ta ? mc->a.sh[mc->a.nd - 2] : mc->a.sh[mc->a.nd - 1];
  double atol = 1e-5 * sqrt((double)K) * fabs(mc->alpha) + 1e-6 * (1 + fabs(mc->beta));
  double rtol = mc->dc == CLAI_DTYPE_F16 ? 1e-3 : 1e-4;
  if (mc->dc == CLAI_DTYPE_F16) atol += 1e-4;
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s x %s -> %s, trans %d%d, alpha %g, beta %g", what, clai_dtype_name(mc->dab),
           clai_dtype_name(mc->dab), clai_dtype_name(mc->dc), mc->ta, mc->tb, mc->alpha, mc->beta);
  clait_expect_close(msg, got, c, mc->c.len, atol, rtol);
  if (mc->nan_c) { /* every element of the view must have been written (NaN == NaN passes above) */
    size_t n = numel_of(&mc->c), nnan = 0;
    for (size_t i = 0; i < mc->c.len; i++) nnan += isnan(got[i]);
    if (nnan != mc->c.len - n) fail_msg("%s: %zu NaNs in C's buffer, expected %zu", msg, nnan, mc->c.len - n);
  }
  clai_tensor *list[] = {va, vb, vc, ba, bb, bc};
  for (size_t k = 0; k < sizeof list / sizeof list[0]; k++) clai_tensor_free(list[k]);
  free(a);
  free(b);
  free(c);
  free(got);
}

/* A plain 2-d case: dense operands, A stored [K, M] when ta, B stored [N, K] when tb. */
static mm_case plain(int64_t M, int64_t N, int64_t K, int ta, int tb, float alpha, float beta) {
  mm_case mc;
  memset(&mc, 0, sizeof mc);
  mc.dab = mc.dc = CLAI_DTYPE_F32;
  const int64_t sa[2] = {ta ? K : M, ta ? M : K}, sb[2] = {tb ? N : K, tb ? K : N}, sc[2] = {M, N};
  mc.a = dense(2, sa);
  mc.b = dense(2, sb);
  mc.c = dense(2, sc);
  mc.ta = ta;
  mc.tb = tb;
  mc.alpha = alpha;
  mc.beta = beta;
  return mc;
}

/* Small mode (CLAI_TEST_SIZE=small, for slow devices): a dimension of 1000 becomes 100, which is still past a
 * 64-wide tile and ragged. */
static int64_t dim(int64_t d) { return d == 1000 ? CLAIT_SIZE(d, 100) : d; }

/* ---- tests -------------------------------------------------------------------------------------------- */

/* Each of M, N and K takes 1, 7, 31, 129 and 1000 somewhere, with tiles that are whole and ragged. */
static const int64_t triples[][3] = {
    {1, 1, 1},      {7, 31, 129},  {129, 7, 31},  {31, 129, 1},  {1000, 7, 129}, {7, 1000, 31},
    {64, 64, 64},   {129, 129, 1000}, {1, 1000, 7}, {1000, 1, 31}, {31, 1, 1000},  {1, 7, 1000},
    {129, 1000, 7}, {1000, 31, 1}, {16, 32, 128}, {9, 17, 257},
    /* K at and just past a k-block of 256 (the packed default on AVX2; 4096 on AVX-512, whose k-blocks
     * test_sizes adds): one block takes the barrier-free kernel, more the barrier one */
    {40, 50, 256},  {40, 50, 257}, {40, 50, 512}, {40, 50, 513},
};
#define NTRIPLES (sizeof triples / sizeof triples[0])

/* The k-block of the family that runs a 17 x 20 product (the "kb=" of its description), 0 if none is named. */
static int64_t family_kblock(clai_context *ctx) {
  const int64_t sa[2] = {17, 8}, sb[2] = {8, 20}, sc[2] = {17, 20};
  clai_tensor *a = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sa), *b = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sb),
              *c = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sc);
  char desc[256];
  CLAIT_OK(ctx, clai_matmul_describe(ctx, c, a, 0, b, 0, desc, sizeof desc));
  const char *kb = strstr(desc, " kb=");
  clai_tensor_free(a), clai_tensor_free(b), clai_tensor_free(c);
  return kb != NULL ? strtoll(kb + 4, NULL, 10) : 0;
}

static void test_sizes(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x9e3779b97f4a7c15ULL};
  /* small: the k-block cases (M 40) on 17 x 20, just past the skinny kernels, and at the k-block of the family
   * that runs (packed 256 or the 128 of a tile forced in tests/matmul-packed-tiles.sh, generic 64 on GPUs and
   * the simulator, gpu 16): K = kb, kb + 1, 2 kb and 2 kb + 1 as 256, 257, 512 and 513 are to the packed
   * default's, one block, one and a ragged one, two, two and a ragged one. Multiply-adds are most of this
   * test's time on a simulator, and K 256 to 513 took 12 of its 28 s there at the gpu family's kb of 16.
   * Full size runs the four at K 256 to 513 and, where the family's k-block is another (4096 on AVX-512),
   * the four at its own kb, kb + 1, 2 kb and 2 kb + 1 as well. */
  const int64_t kb = family_kblock(ctx);
  /* pass 0: the triples (small: the k-block ones at the family's kb); pass 1, full size only: the k-block
   * ones again at a family kb other than 256 */
  const int passes = !clait_small() && kb > 0 && kb != 256 ? 2 : 1;
  char what[64];
  for (int pass = 0; pass < passes; pass++)
    for (size_t t = 0; t < NTRIPLES; t++) {
      const int kblock = triples[t][0] == 40;
      if (pass == 1 && !kblock) continue;
      int64_t m = dim(triples[t][0]), n = dim(triples[t][1]), k = dim(triples[t][2]);
      if (kblock && clait_small()) m = 17, n = 20;
      if (kblock && (clait_small() || pass == 1) && kb > 0) k = k / 256 * kb + k % 256;
      mm_case mc = plain(m, n, k, 0, 0, 1.0f, 0.0f);
      snprintf(what, sizeof what, "M %lld N %lld K %lld", (long long)m, (long long)n, (long long)k);
      run_case(ctx, &r, what, &mc);
    }
  /* Long B panels: with the AVX-512 tile (14 x 32, kb 4096) a group's four B panels of K = 2049 pass
   * lib/op-matmul.c's budget (CLAI__GROUP_B_BYTES), so its 2 x 4 work-items take 8 A panels of one B panel;
   * M = 113 leaves the second group 1 panel (a row) and 7 idle work-items, N = 33 a ragged B panel. */
  mm_case lb = plain(113, 33, 2049, 0, 0, 1.0f, 0.0f);
  run_case(ctx, &r, "M 113 N 33 K 2049", &lb);
  /* The last band of B panels in a launch of its own (lib/op-matmul.c, tile_launches): N = 161 is 6 panels
   * of 32 columns (AVX-512) or 11 of 16, past the bands of a group's B panels; M = 113 leaves the last
   * group of A panels short. In place (A and B read by the kernel), packed (A transposed), and both over a
   * batch of 2 with beta, so each launch finds its own batch entries and B panels. */
  for (int ta = 0; ta < 2; ta++) {
    mm_case e = plain(113, 161, 37, ta, 0, 1.0f, 0.0f);
    snprintf(what, sizeof what, "M 113 N 161 K 37 ta %d", ta);
    run_case(ctx, &r, what, &e);
    const int64_t sa[3] = {2, ta ? 37 : 113, ta ? 113 : 37}, sb[3] = {2, 37, 161}, sc[3] = {2, 113, 161};
    mm_case eb = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, dense(3, sa), dense(3, sb), dense(3, sc), ta, 0, 1.0f, 0.5f, 0, 0,
                  CLAI_DTYPE_F32, CLAI_ACT_NONE, 0};
    snprintf(what, sizeof what, "batch 2 M 113 N 161 K 37 ta %d", ta);
    run_case(ctx, &r, what, &eb);
  }
}

static void test_transposes(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x243f6a8885a308d3ULL};
  static const int64_t tt[][3] = {{7, 31, 129}, {129, 7, 31}, {31, 129, 1}, {1, 1000, 7},
                                  {1000, 1, 31}, {33, 65, 1000}, {64, 64, 64}};
  char what[64];
  for (size_t t = 0; t < sizeof tt / sizeof tt[0]; t++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        /* small: two of the four on each shape, by turns (both values of ta and of tb on each; each of the four
         * on the skinny shapes, 7 x 31 and 1 x 100, and on at least two of the others) */
        if (clait_small() && (t + (size_t)ta + (size_t)tb) % 2) continue;
        mm_case mc = plain(dim(tt[t][0]), dim(tt[t][1]), dim(tt[t][2]), ta, tb, 1.25f, 0.0f);
        snprintf(what, sizeof what, "M %lld N %lld K %lld", (long long)dim(tt[t][0]), (long long)dim(tt[t][1]),
                 (long long)dim(tt[t][2]));
        run_case(ctx, &r, what, &mc);
      }
}

/* Strided views: sub-matrices of bigger matrices (row stride > cols, an offset), column slices with step 2,
 * transposed views passed with trans 0 (and with trans 1, which undoes them), and C as a transposed view,
 * a slice and a column-strided view. The views are made with clai_tensor_view from layouts computed here;
 * the first checks also build them with clai_tensor_slice / clai_tensor_transpose and compare. */
static void test_views(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x13198a2e03707344ULL};

  /* The library's own slice and transpose give the layouts used below. */
  {
    const int64_t big[2] = {40, 50};
    clai_tensor *t = NULL, *s0 = NULL, *s1 = NULL, *tr = NULL;
    CLAIT_OK(ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 2, big));
    CLAIT_OK(ctx, clai_tensor_slice(t, &s0, 0, 2, 33, 1));
    CLAIT_OK(ctx, clai_tensor_slice(s0, &s1, 1, 3, 20, 1));
    assert_int_equal(clai_tensor_stride(s1, 0), 50);
    assert_int_equal(clai_tensor_stride(s1, 1), 1);
    assert_int_equal(clai_tensor_offset(s1), 2 * 50 + 3);
    CLAIT_OK(ctx, clai_tensor_transpose(t, &tr, 0, 1));
    assert_int_equal(clai_tensor_stride(tr, 0), 1);
    assert_int_equal(clai_tensor_stride(tr, 1), 50);
    clai_tensor_free(tr);
    clai_tensor_free(s1);
    clai_tensor_free(s0);
    clai_tensor_free(t);
  }

  /* 37 x 45 x 29 is small enough for the packed family's in-place kernel (packed.direct) with M and N off the
   * tiles; variants 5 and 6 give it A and B rows of wider matrices at offsets */
  static const int64_t mnk[][3] = {{31, 17, 33}, {7, 129, 31}, {129, 31, 7}, {1, 40, 100}, {40, 1, 100}, {37, 45, 29}};
  /* small: half of the variants on each of the first five shapes, by turns: those of the parity phase[t], so
   * that each variant meets a skinny shape (7 x 129 or 1 x 40) and at least one of the others; every variant on
   * the last, the smallest */
  static const int phase[] = {0, 1, 1, 0, 0, -1};
  char what[96];
  for (size_t t = 0; t < sizeof mnk / sizeof mnk[0]; t++) {
    int64_t M = mnk[t][0], N = mnk[t][1], K = mnk[t][2];
    const int64_t sa[2] = {M, K}, sb[2] = {K, N}, sc[2] = {M, N};
    for (int variant = 0; variant < 7; variant++) {
      if (clait_small() && phase[t] >= 0 && (variant + phase[t]) % 2) continue;
      mm_case mc;
      memset(&mc, 0, sizeof mc);
      mc.dab = mc.dc = CLAI_DTYPE_F32;
      mc.alpha = 0.75f;
      mc.beta = variant % 2 ? 0.5f : 0.0f;
      mc.a = dense(2, sa);
      mc.b = dense(2, sb);
      mc.c = dense(2, sc);
      switch (variant) {
      case 0: { /* A rows 2.., cols 3.. of a [M+5, K+9] matrix; B cols 1, 3, .. of a [K, 2N+1] matrix */
        const int64_t ast[2] = {K + 9, 1}, bst[2] = {2 * N + 1, 2};
        mc.a = strided(2, sa, ast, 2 * (K + 9) + 3, 4 * (K + 9));
        mc.b = strided(2, sb, bst, 1, 0);
        break;
      }
      case 1: /* A and B transposed views with trans 0; C a transposed view */
        mc.a = transposed(M, K);
        mc.b = transposed(K, N);
        mc.c = transposed(M, N);
        break;
      case 2: { /* transposed views with trans 1: op() undoes the view, so A is [K, M] viewed as [M, K]^T */
        mc.a = transposed(K, M);
        mc.b = transposed(N, K);
        mc.ta = mc.tb = 1;
        const int64_t cst[2] = {N + 3, 1}; /* C rows of a [M, N+3] matrix at column 2 */
        mc.c = strided(2, sc, cst, 2, 1);
        break;
      }
      case 3: { /* C: columns 0, 3, 6, .. with rows M apart, and an offset */
        const int64_t cst[2] = {3 * N + 1, 3};
        mc.c = strided(2, sc, cst, 5, 7);
        const int64_t bst[2] = {1, K + 2}; /* B a transposed sub-matrix */
        mc.b = strided(2, sb, bst, 1, 0);
        break;
      }
      case 4: { /* A with both strides > 1 (every other row and column) */
        const int64_t ast[2] = {4 * K, 2};
        mc.a = strided(2, sa, ast, 0, 0);
        mc.c = transposed(M, N);
        break;
      }
      case 5: { /* A and B rows of wider matrices at offsets, unit column strides */
        const int64_t ast[2] = {K + 9, 1}, bst[2] = {N + 7, 1};
        mc.a = strided(2, sa, ast, 5, 1);
        mc.b = strided(2, sb, bst, 2, 3);
        break;
      }
      default: { /* B sub-matrix with an odd offset and unit column stride (vector loads, unaligned) */
        const int64_t bst[2] = {N + 5, 1};
        mc.b = strided(2, sb, bst, 3, 2);
        const int64_t cst[2] = {N + 1, 1};
        mc.c = strided(2, sc, cst, 1, 3);
        break;
      }
      }
      snprintf(what, sizeof what, "views variant %d, M %lld N %lld K %lld", variant, (long long)M, (long long)N,
               (long long)K);
      run_case(ctx, &r, what, &mc);
    }
  }
}

/* Batched products and broadcasting of the batch dims. */
static void test_batched(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0xa4093822299f31d0ULL};
  const int64_t M = 19, N = 23, K = 37;
  char what[96];
  /* small: two of the four batch layouts below with each transpose, by turns, so that each layout meets two
   * of the transposes (both values of ta, and of tb) */
#define BATCH_TURN(i) (!clait_small() || (ta + tb + (i)) % 2 == 0)
  for (int tr = 0; tr < 4; tr++) {
    int ta = tr & 1, tb = tr >> 1;
    /* [3, M, K] x [3, K, N] -> [3, M, N] */
    if (BATCH_TURN(0)) {
      const int64_t sa[3] = {3, ta ? K : M, ta ? M : K}, sb[3] = {3, tb ? N : K, tb ? K : N}, sc[3] = {3, M, N};
      mm_case mc = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, dense(3, sa), dense(3, sb), dense(3, sc), ta, tb, 1.0f, 0.5f, 0, 0, CLAI_DTYPE_F32, CLAI_ACT_NONE, 0};
      run_case(ctx, &r, "batch 3", &mc);
    }
    /* A [2, 1, M, K] with B [3, K, N] -> C [2, 3, M, N] */
    if (BATCH_TURN(1)) {
      const int64_t sa[4] = {2, 1, ta ? K : M, ta ? M : K}, sb[3] = {3, tb ? N : K, tb ? K : N},
                    sc[4] = {2, 3, M, N};
      mm_case mc = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, dense(4, sa), dense(3, sb), dense(4, sc), ta, tb, -1.0f, 0.0f, 0, 0, CLAI_DTYPE_F32, CLAI_ACT_NONE, 0};
      run_case(ctx, &r, "A [2,1,M,K] x B [3,K,N]", &mc);
    }
    /* A [M, K] (no batch dims) with B [4, K, N] -> C [4, M, N]; and A [4, M, K] with B [1, K, N] */
    {
      const int64_t sa[2] = {ta ? K : M, ta ? M : K}, sb[3] = {4, tb ? N : K, tb ? K : N}, sc[3] = {4, M, N};
      mm_case mc = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, dense(2, sa), dense(3, sb), dense(3, sc), ta, tb, 1.0f, 0.0f, 0, 0, CLAI_DTYPE_F32, CLAI_ACT_NONE, 0};
      if (BATCH_TURN(2)) run_case(ctx, &r, "A [M,K] x B [4,K,N]", &mc);
      const int64_t sa2[3] = {4, ta ? K : M, ta ? M : K}, sb2[3] = {1, tb ? N : K, tb ? K : N};
      mm_case mc2 = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, dense(3, sa2), dense(3, sb2), dense(3, sc), ta, tb, 1.0f, 1.0f, 0, 0, CLAI_DTYPE_F32, CLAI_ACT_NONE, 0};
      if (BATCH_TURN(3)) run_case(ctx, &r, "A [4,M,K] x B [1,K,N]", &mc2);
    }
  }
#undef BATCH_TURN
  /* Strided batches: A [3, M, K] as a permuted view of [M, 3, K] storage; B broadcast with a stride-0 batch
   * dim ([3, K, N] expanded from one matrix); C [2, 3, M, N] as a permuted view of [3, M, 2, N] storage. */
  {
    const int64_t ash[3] = {3, M, K}, ast[3] = {K, 3 * K, 1};
    const int64_t bsh[3] = {3, K, N}, bst[3] = {0, N, 1};
    const int64_t csh[4] = {2, 3, M, N}, cst[4] = {N, M * 2 * N, 2 * N, 1};
    mm_case mc = {CLAI_DTYPE_F32, CLAI_DTYPE_F32, strided(3, ash, ast, 0, 0), strided(3, bsh, bst, 0, 0),
                  strided(4, csh, cst, 0, 0), 0, 0, 1.0f, 0.25f, 0, 0, CLAI_DTYPE_F32, CLAI_ACT_NONE, 0};
    snprintf(what, sizeof what, "permuted batch views, stride-0 batch of B");
    run_case(ctx, &r, what, &mc);
  }
  /* Batched f16 with broadcasting. */
  {
    const int64_t sa[4] = {2, 1, K, M}, sb[3] = {3, K, N}, sc[4] = {2, 3, M, N};
    mm_case mc = {CLAI_DTYPE_F16, CLAI_DTYPE_F16, dense(4, sa), dense(3, sb), dense(4, sc), 1, 0, 1.0f, 0.5f, 0, 0, CLAI_DTYPE_F32, CLAI_ACT_NONE, 0};
    run_case(ctx, &r, "f16 A [2,1,K,M]^T x B [3,K,N]", &mc);
  }
}

/* alpha and beta: beta != 0 accumulates into C, beta == 0 ignores (NaN) contents of C, alpha == 0 with
 * beta == 1 leaves C as it was. */
static void test_alpha_beta(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x082efa98ec4e6c89ULL};
  static const float ab[][2] = {{1.0f, 1.0f}, {0.5f, -2.0f}, {-1.5f, 0.25f}, {2.0f, 0.0f}, {0.0f, 1.0f}, {0.0f, 0.0f}};
  static const int64_t mnk[][3] = {{7, 31, 129}, {64, 64, 64}, {129, 7, 31}, {33, 17, 1}};
  char what[64];
  for (size_t t = 0; t < sizeof mnk / sizeof mnk[0]; t++)
    for (size_t p = 0; p < sizeof ab / sizeof ab[0]; p++)
      for (int dc = 0; dc < 2; dc++) {
        if (clait_small() && (t + p + (size_t)dc) % 2) continue; /* small: half of the cases, by turns */
        mm_case mc = plain(mnk[t][0], mnk[t][1], mnk[t][2], (int)(p & 1), (int)(t & 1), ab[p][0], ab[p][1]);
        mc.dc = dc ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
        snprintf(what, sizeof what, "M %lld N %lld K %lld", (long long)mnk[t][0], (long long)mnk[t][1],
                 (long long)mnk[t][2]);
        run_case(ctx, &r, what, &mc);
        if (ab[p][1] == 0.0f) { /* the same with C full of NaN: not read */
          mc.nan_c = 1;
          run_case(ctx, &r, what, &mc);
          mc.c = transposed(mnk[t][0], mnk[t][1]); /* ... also through the element-wise store path */
          run_case(ctx, &r, what, &mc);
        }
      }

  /* alpha 0, beta 1: C is exactly what it was. */
  const int64_t M = 13, N = 20, K = 9, sa[2] = {M, K}, sb[2] = {K, N}, sc[2] = {M, N};
  float c0[13 * 20], c1[13 * 20];
  clait_fill(&r, c0, (size_t)(M * N), -3, 3);
  float c0i[13 * 20]; /* integer-valued copy for the exact accumulation check below */
  for (int i = 0; i < M * N; i++) c0i[i] = floorf(c0[i]);
  clai_tensor *a = NULL, *b = NULL, *c = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &a, CLAI_DTYPE_F32, 2, sa));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &b, CLAI_DTYPE_F32, 2, sb));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 2, sc));
  CLAIT_OK(ctx, clai_fill(ctx, a, 1.0));
  CLAIT_OK(ctx, clai_fill(ctx, b, 2.0));
  CLAIT_OK(ctx, clai_tensor_write(c, c0, sizeof c0));
  CLAIT_OK(ctx, clai_matmul(ctx, c, a, 0, b, 0, 0.0f, 1.0f));
  CLAIT_OK(ctx, clai_tensor_read(c, c1, sizeof c1));
  assert_memory_equal(c0, c1, sizeof c0);
  /* C = 1 * A B + 1 * C, twice: accumulation, exactly (small integers). */
  CLAIT_OK(ctx, clai_tensor_write(c, c0i, sizeof c0i));
  CLAIT_OK(ctx, clai_matmul(ctx, c, a, 0, b, 0, 1.0f, 1.0f));
  CLAIT_OK(ctx, clai_matmul(ctx, c, a, 0, b, 0, 1.0f, 1.0f));
  CLAIT_OK(ctx, clai_tensor_read(c, c1, sizeof c1));
  for (int i = 0; i < M * N; i++)
    if (c1[i] != c0i[i] + 2 * 2 * K)
      fail_msg("C += AB twice: element %d is %g, expected %g", i, c1[i], c0i[i] + 4 * K);
  /* C may not overlap A or B. */
  clai_tensor *cc = NULL;
  const int64_t sq[2] = {K, K};
  CLAIT_OK(ctx, clai_tensor_view(a, &cc, 2, sq, (const int64_t[]){K, 1}, 0));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlap", clai_matmul(ctx, cc, a, 1, a, 0, 1.0f, 0.0f));
  clai_tensor_free(cc);
  clai_tensor_free(a);
  clai_tensor_free(b);
  clai_tensor_free(c);
}

/* K = 0: C = beta * C (op(A) op(B) is a zero matrix); with beta 0, C = 0 even over NaN. M or N = 0: a no-op. */
static void test_k0(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x452821e638d01377ULL};
  static const int64_t mn[][2] = {{1, 1}, {7, 31}, {129, 7}, {64, 64}};
  static const float betas[] = {0.5f, 1.0f, 0.0f, -2.0f};
  char what[64];
  for (size_t t = 0; t < sizeof mn / sizeof mn[0]; t++)
    for (size_t p = 0; p < sizeof betas / sizeof betas[0]; p++)
      for (int tr = 0; tr < 4; tr++) {
        mm_case mc = plain(mn[t][0], mn[t][1], 0, tr & 1, tr >> 1, 1.5f, betas[p]);
        mc.nan_c = betas[p] == 0.0f;
        snprintf(what, sizeof what, "K 0, M %lld N %lld", (long long)mn[t][0], (long long)mn[t][1]);
        run_case(ctx, &r, what, &mc);
      }
  /* Batched K = 0 with f16 output */
  const int64_t sa[3] = {3, 5, 0}, sb[3] = {3, 0, 6}, sc[3] = {3, 5, 6};
  mm_case mc = {CLAI_DTYPE_F16, CLAI_DTYPE_F16, dense(3, sa), dense(3, sb), dense(3, sc), 0, 0, 1.0f, -0.5f, 0, 0, CLAI_DTYPE_F32, CLAI_ACT_NONE, 0};
  run_case(ctx, &r, "batched K 0", &mc);

  /* M = 0 or N = 0: nothing to compute, nothing touched. */
  const int64_t a0[2] = {0, 4}, b0[2] = {4, 3}, c0[2] = {0, 3};
  clai_tensor *a = NULL, *b = NULL, *c = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &a, CLAI_DTYPE_F32, 2, a0));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &b, CLAI_DTYPE_F32, 2, b0));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 2, c0));
  CLAIT_OK(ctx, clai_fill(ctx, b, 1.0));
  CLAIT_OK(ctx, clai_matmul(ctx, c, a, 0, b, 0, 1.0f, 0.0f));
  CLAIT_OK(ctx, clai_sync(ctx));
  clai_tensor_free(a);
  clai_tensor_free(b);
  clai_tensor_free(c);
}

/* f16 inputs with f32 output, f16 inputs with f16 output, f32 inputs with f16 output. */
static void test_f16(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x0badc0ffee0ddf00ULL};
  static const int64_t tt[][3] = {{1, 1, 1}, {7, 31, 129}, {129, 7, 31}, {31, 129, 1000},
                                  {64, 64, 64}, {1000, 7, 31}, {1, 1000, 7}};
  static const clai_dtype combos[][2] = {
      {CLAI_DTYPE_F16, CLAI_DTYPE_F32}, {CLAI_DTYPE_F16, CLAI_DTYPE_F16}, {CLAI_DTYPE_F32, CLAI_DTYPE_F16}};
  char what[64];
  for (size_t t = 0; t < sizeof tt / sizeof tt[0]; t++)
    for (size_t k = 0; k < 3; k++)
      for (int tr = 0; tr < 4; tr++) {
        /* small: a third of the cases, by turns; each dtype mix still meets each transpose on two or three of
         * the shapes, and each shape each mix */
        if (clait_small() && (t + k + (size_t)tr) % 3) continue;
        mm_case mc = plain(dim(tt[t][0]), dim(tt[t][1]), dim(tt[t][2]), tr & 1, tr >> 1, tr == 3 ? -0.5f : 1.0f,
                           tr == 2 ? 0.0f : 0.75f);
        mc.dab = combos[k][0];
        mc.dc = combos[k][1];
        snprintf(what, sizeof what, "M %lld N %lld K %lld", (long long)dim(tt[t][0]), (long long)dim(tt[t][1]),
                 (long long)dim(tt[t][2]));
        run_case(ctx, &r, what, &mc);
      }
  /* f16 with strided views: A a column slice, C a transposed view. */
  const int64_t M = 31, N = 45, K = 66, sa[2] = {M, K}, ast[2] = {2 * K, 2};
  mm_case mc = plain(M, N, K, 0, 0, 1.0f, 0.5f);
  mc.dab = mc.dc = CLAI_DTYPE_F16;
  mc.a = strided(2, sa, ast, 1, 0), mc.b = transposed(K, N), mc.c = transposed(M, N);
  run_case(ctx, &r, "f16 views", &mc);

  /* The result of f16 inputs is exact when every partial sum is representable: integers. */
  const int64_t sq[2] = {16, 16};
  uint16_t ha[256], hb[256];
  float want[256], got[256];
  for (int i = 0; i < 256; i++) {
    ha[i] = clait_f32_to_f16((float)((i * 7) % 11 - 5));
    hb[i] = clait_f32_to_f16((float)((i * 5) % 9 - 4));
  }
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      float s = 0;
      for (int k = 0; k < 16; k++) s += clait_f16_to_f32(ha[i * 16 + k]) * clait_f16_to_f32(hb[k * 16 + j]);
      want[i * 16 + j] = s;
    }
  clai_tensor *a = NULL, *b = NULL, *c = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &a, CLAI_DTYPE_F16, 2, sq));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &b, CLAI_DTYPE_F16, 2, sq));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 2, sq));
  CLAIT_OK(ctx, clai_tensor_write(a, ha, sizeof ha));
  CLAIT_OK(ctx, clai_tensor_write(b, hb, sizeof hb));
  CLAIT_OK(ctx, clai_matmul(ctx, c, a, 0, b, 0, 1.0f, 0.0f));
  CLAIT_OK(ctx, clai_tensor_read(c, got, sizeof got));
  assert_memory_equal(got, want, sizeof got);
  clai_tensor_free(a);
  clai_tensor_free(b);
  clai_tensor_free(c);
}

/* clai_matmul_describe names the kernel that would run, after the same checks as clai_matmul. */
/* The fused epilogue: bias as [N], [M, 1] and [M, N] in f32 and f16, each activation, with and without
 * beta, f16 C, a batch, transposes and a strided C; skinny M (1, 5, 16) and shapes with ragged tiles.
 * Small mode (a simulator): every (bias, activation) pair still runs on 1 x 33 x 17 and 16 x 64 x 64 (skinny);
 * on the three shapes past the skinny kernels' M, 17 x 129 x 31, 129 x 7 x 65 (tiles ragged in rows and in
 * columns) and the largest, 70 x 97 x 130 (two by two 64 x 64 tiles), every third pair, a different third on
 * each, so that each pair runs on one of them, through the same kernels and the same store (clai_store_tile,
 * cl/common.cl); on 5 x 77 x 300 (skinny, K past a k-block of 256) the first third. Each bias kind and each
 * activation still meet every shape. Those four shapes took 95% of this test's time on Oclgrind. */
static void test_epilogue(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x5851f42d4c957f2dULL};
  static const int64_t tt[][3] = {{1, 33, 17}, {5, 77, 300}, {16, 64, 64}, {17, 129, 31}, {129, 7, 65}, {70, 97, 130}};
  static const int turn[] = {-1, 0, -1, 0, 1, 2}; /* small mode: the pairs (bias * 4 + act) % 3 == turn[t] */
  char what[96];
  int variant = 0;
  for (size_t t = 0; t < sizeof tt / sizeof tt[0]; t++)
    for (int bias = 0; bias < 4; bias++)
      for (int act = 0; act < 4; act++, variant++) {
        if (bias == 0 && act == 0) continue;
        if (clait_small() && turn[t] >= 0 && (bias * 4 + act) % 3 != turn[t]) continue; /* small: by turns */
        mm_case mc = plain(tt[t][0], tt[t][1], tt[t][2], variant % 3 == 1, variant % 5 == 2, variant % 2 ? 0.5f : 1.0f,
                           variant % 4 == 3 ? 0.25f : 0.0f);
        mc.bias = bias;
        mc.dbias = variant % 3 == 2 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
        mc.act = (clai_activation)act;
        if (variant % 7 == 4) mc.dc = CLAI_DTYPE_F16;
        if (variant % 7 == 5) mc.dab = CLAI_DTYPE_F16;
        if (variant % 11 == 6) mc.c = transposed(tt[t][0], tt[t][1]);
        snprintf(what, sizeof what, "epilogue bias %d act %d: M %lld N %lld K %lld", bias, act, (long long)tt[t][0],
                 (long long)tt[t][1], (long long)tt[t][2]);
        run_case(ctx, &r, what, &mc);
      }
  /* NaN and infinities through the epilogue (a row of NaN, a row of +-inf): whole 14 x 32 tiles and a last
   * partial row panel (M 29, N 64), and partial column tiles (N 45), each activation and bias kind, alpha and
   * beta; ReLU keeps NaN and makes -inf 0 */
  static const int64_t ts[][3] = {{29, 64, 40}, {31, 45, 19}};
  for (size_t t = 0; t < sizeof ts / sizeof ts[0]; t++)
    for (int act = 0; act < 4; act++) {
      mm_case sp = plain(ts[t][0], ts[t][1], ts[t][2], act == 3, 0, act == 2 ? 0.5f : 1.0f, act == 1 ? 0.25f : 0.0f);
      sp.special = 1;
      sp.bias = act, sp.dbias = CLAI_DTYPE_F32, sp.act = (clai_activation)act;
      snprintf(what, sizeof what, "epilogue NaN and inf, bias %d act %d: M %lld N %lld K %lld", act, act,
               (long long)ts[t][0], (long long)ts[t][1], (long long)ts[t][2]);
      run_case(ctx, &r, what, &sp);
    }
  /* a batch of 3 with one bias row for all */
  const int64_t sa[3] = {3, 9, 40}, sb[3] = {3, 40, 21}, sc[3] = {3, 9, 21};
  mm_case mc = plain(9, 21, 40, 0, 0, 1.0f, 0.0f);
  mc.a = dense(3, sa), mc.b = dense(3, sb), mc.c = dense(3, sc);
  mc.bias = 1, mc.dbias = CLAI_DTYPE_F32, mc.act = CLAI_ACT_GELU;
  run_case(ctx, &r, "epilogue batch", &mc);
  /* K = 0: C = act(beta * C + bias), here with a bias of another dtype than C */
  mm_case k0 = plain(7, 5, 0, 0, 0, 1.0f, 0.5f);
  k0.bias = 2, k0.dbias = CLAI_DTYPE_F16, k0.act = CLAI_ACT_RELU;
  run_case(ctx, &r, "epilogue K = 0", &k0);

  /* GELU and SiLU of large negative and positive values: no NaN or overflow. */
  const int64_t s1[2] = {1, 1}, s4[2] = {1, 4};
  clai_tensor *a = NULL, *b = NULL, *c = NULL;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &a, CLAI_DTYPE_F32, 2, s1));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &b, CLAI_DTYPE_F32, 2, s4));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 2, s4));
  const float one = 1.0f, big[4] = {-200.0f, -90.0f, 90.0f, 200.0f};
  CLAIT_OK(ctx, clai_tensor_write(a, &one, sizeof one));
  CLAIT_OK(ctx, clai_tensor_write(b, big, sizeof big));
  for (int act = CLAI_ACT_GELU; act <= CLAI_ACT_SILU; act++) {
    clai_matmul_epilogue ep = {NULL, (clai_activation)act};
    float got[4];
    CLAIT_OK(ctx, clai_matmul_ex(ctx, c, a, 0, b, 0, 1.0f, 0.0f, &ep));
    CLAIT_OK(ctx, clai_tensor_read(c, got, sizeof got));
    for (int i = 0; i < 4; i++) {
      const float want = big[i] < 0 ? 0.0f : big[i];
      if (!(fabsf(got[i] - want) <= 1e-4f * fabsf(want))) fail_msg("act %d of %g gave %g", act, big[i], got[i]);
    }
  }
  clai_tensor_free(a), clai_tensor_free(b), clai_tensor_free(c);
}

/* Long K with everything else at once. On a device whose loops stop after a number of iterations
 * (llvmpipe), lib/op-matmul.c runs these in slices of K (k_slices): beta only on the first, the epilogue
 * only on the last, an f16 C summed in f32 and rounded once; elsewhere they are plain products. */
static void test_long_k(void **state) {
  clai_context *ctx = CTX(state);
  clait_rng r = {0x3c6ef372fe94f82bULL};
  /* Oclgrind has no loop limit and simulates every multiply-add (these took 170 s there, and 340 s with the
   * generic family): one short case there */
  const int sim = clait_oclgrind(ctx);
  mm_case mc = plain(17, 20, sim ? 1100 : 3000, 1, 0, 0.5f, 0.25f); /* A stored [K, M], a ragged last slice */
  mc.dc = CLAI_DTYPE_F16, mc.bias = 1, mc.dbias = CLAI_DTYPE_F32, mc.act = CLAI_ACT_RELU;
  run_case(ctx, &r, "long K, f16 C, bias, relu", &mc);
  if (sim) {
    print_message("# Oclgrind: the other long-K cases are left out (they are for devices with a loop limit)\n");
    return;
  }
  mm_case mt = plain(9, 33, 2049, 0, 1, 1.0f, 0.0f); /* B stored [N, K] */
  mt.special = 1, mt.bias = 2, mt.dbias = CLAI_DTYPE_F16, mt.act = CLAI_ACT_GELU;
  run_case(ctx, &r, "long K, NaN and inf, column bias, gelu", &mt);
  const int64_t sa[3] = {2, 9, 2500}, sb[2] = {2500, 21}, sc[3] = {2, 9, 21};
  mm_case mb = plain(9, 21, 2500, 0, 0, -1.0f, 0.0f); /* a batch of A with one B for both; NaN in C ignored */
  mb.a = dense(3, sa), mb.b = dense(2, sb), mb.c = dense(3, sc), mb.nan_c = 1;
  run_case(ctx, &r, "long K, batch of 2 with a shared B", &mb);
  /* past llvmpipe's 65535 loop iterations even at one a k (its generic family: a sum 65 off without slices) */
  mm_case ml = plain(2, 3, 70000, 0, 0, 1.0f, 0.0f);
  run_case(ctx, &r, "K 70000", &ml);
}

static void test_epilogue_errors(void **state) {
  clai_context *ctx = CTX(state);
  const int64_t sa[2] = {7, 5}, sb[2] = {5, 9}, sc[2] = {7, 9}, s9[1] = {9}, s8[1] = {8}, s7x9x1[3] = {7, 9, 1};
  clai_tensor *a, *b, *c, *bias, *bias8, *bias3, *bi32, *cview;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &a, CLAI_DTYPE_F32, 2, sa));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &b, CLAI_DTYPE_F32, 2, sb));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 2, sc));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &bias, CLAI_DTYPE_F32, 1, s9));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &bias8, CLAI_DTYPE_F32, 1, s8));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &bias3, CLAI_DTYPE_F32, 3, s7x9x1));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &bi32, CLAI_DTYPE_I32, 1, s9));
  CLAIT_OK(ctx, clai_tensor_slice(c, &cview, 0, 0, 1, 1)); /* row 0 of C: [1, 9] */
  CLAIT_OK(ctx, clai_fill(ctx, a, 1.0));
  CLAIT_OK(ctx, clai_fill(ctx, b, 1.0));
  CLAIT_OK(ctx, clai_fill(ctx, bias, 0.5));
  clai_matmul_epilogue ep = {bias8, CLAI_ACT_NONE};
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "bias", clai_matmul_ex(ctx, c, a, 0, b, 0, 1.0f, 0.0f, &ep));
  ep.bias = bias3;
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "bias", clai_matmul_ex(ctx, c, a, 0, b, 0, 1.0f, 0.0f, &ep));
  ep.bias = bi32;
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "bias", clai_matmul_ex(ctx, c, a, 0, b, 0, 1.0f, 0.0f, &ep));
  ep.bias = cview;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "overlaps bias", clai_matmul_ex(ctx, c, a, 0, b, 0, 1.0f, 0.0f, &ep));
  ep.bias = bias;
  ep.act = (clai_activation)9;
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "clai_activation", clai_matmul_ex(ctx, c, a, 0, b, 0, 1.0f, 0.0f, &ep));
  /* the context still works: 5 ones times ones plus 0.5, through relu */
  ep.act = CLAI_ACT_RELU;
  CLAIT_OK(ctx, clai_matmul_ex(ctx, c, a, 0, b, 0, 1.0f, 0.0f, &ep));
  float got[63];
  CLAIT_OK(ctx, clai_tensor_read(c, got, sizeof got));
  for (int i = 0; i < 63; i++) assert_float_equal(got[i], 5.5f, 1e-6f);
  clai_tensor *list[] = {a, b, c, bias, bias8, bias3, bi32, cview};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
}

static void test_describe(void **state) {
  clai_context *ctx = *state;
  int64_t sa[2] = {7, 5}, sb[2] = {5, 9}, sc[2] = {7, 9}, bad[2] = {7, 8};
  clai_tensor *a, *b, *c, *d;
  CLAIT_OK(ctx, clai_tensor_init(ctx, &a, CLAI_DTYPE_F32, 2, sa));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &b, CLAI_DTYPE_F32, 2, sb));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 2, sc));
  CLAIT_OK(ctx, clai_tensor_init(ctx, &d, CLAI_DTYPE_F32, 2, bad));
  char buf[256];
  CLAIT_OK(ctx, clai_matmul_describe(ctx, c, a, 0, b, 0, buf, sizeof buf));
  if (strncmp(buf, "clblast", 7) != 0) {
    assert_non_null(strstr(buf, "rm="));
    assert_non_null(strstr(buf, "local="));
  }
  /* tests/matmul-family.sh runs this program once per family (CLAI_GEMM); the description starts with it */
  const char *family = getenv("CLAI_GEMM");
  if (family != NULL && family[0] != '\0' && strncmp(buf, family, strlen(family)) != 0)
    fail_msg("CLAI_GEMM=%s but clai_matmul_describe says \"%s\"", family, buf);
  if (family == NULL || family[0] == '\0') { /* the device's default family: generic on llvmpipe only */
    clai_device_info info;
    CLAIT_OK(ctx, clai_context_device_info(ctx, -1, &info)); /* the chosen device */
    const int llvmpipe = strstr(info.name, "llvmpipe") != NULL;
    if (!(strncmp(buf, llvmpipe ? "generic" : "packed", llvmpipe ? 7 : 6) == 0 || strncmp(buf, "gpu", 3) == 0))
      fail_msg("default family on %s: \"%s\"", info.name, buf);
  }
  if (strncmp(buf, "packed", 6) == 0) {
    /* skinny M reads B in place only when B is more than one packed panel wide: M = 7 with N = 1 takes the
     * packed kernels, with N = 200 the skinny one */
    int64_t s1[2] = {5, 1}, sc1[2] = {7, 1}, s2[2] = {5, 200}, sc2[2] = {7, 200};
    clai_tensor *b1 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s1), *c1 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sc1);
    clai_tensor *b2 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, s2), *c2 = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sc2);
    CLAIT_OK(ctx, clai_matmul_describe(ctx, c1, a, 0, b1, 0, buf, sizeof buf));
    if (strstr(buf, "skinny") != NULL) fail_msg("M 7 N 1: \"%s\"", buf);
    CLAIT_OK(ctx, clai_matmul_describe(ctx, c2, a, 0, b2, 0, buf, sizeof buf));
    if (strstr(buf, "skinny") == NULL) fail_msg("M 7 N 200: \"%s\"", buf);
    clai_tensor_free(b1), clai_tensor_free(c1), clai_tensor_free(b2), clai_tensor_free(c2);
    /* a small f32 product with contiguous rows reads A and B in place (packed.direct); a transposed A, f16
     * operands or a larger product are packed */
    int64_t sd[2] = {40, 50}, sdt[2] = {50, 40}, se[2] = {50, 70}, sf[2] = {40, 70}, sl[2] = {300, 300};
    clai_tensor *da = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sd), *dat = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sdt),
                *db = clait_tensor(ctx, CLAI_DTYPE_F32, 2, se), *dc = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sf),
                *dh = clait_tensor(ctx, CLAI_DTYPE_F16, 2, se), *la = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sl),
                *lc = clait_tensor(ctx, CLAI_DTYPE_F32, 2, sl), *ha = clait_tensor(ctx, CLAI_DTYPE_F16, 2, sd);
    const char *params = getenv("CLAI_GEMM_PARAMS");
    const int off = params != NULL && strstr(params, "packed.direct=0") != NULL;
    CLAIT_OK(ctx, clai_matmul_describe(ctx, dc, da, 0, db, 0, buf, sizeof buf));
    if ((strstr(buf, "direct") == NULL) != off) fail_msg("40 x 70 x 50 (CLAI_GEMM_PARAMS %s): \"%s\"", params, buf);
    CLAIT_OK(ctx, clai_matmul_describe(ctx, dc, dat, 1, db, 0, buf, sizeof buf));
    if (strstr(buf, "direct") != NULL) fail_msg("40 x 70 x 50, A transposed: \"%s\"", buf);
    CLAIT_OK(ctx, clai_matmul_describe(ctx, dc, ha, 0, dh, 0, buf, sizeof buf));
    if (strstr(buf, "direct") != NULL) fail_msg("40 x 70 x 50, f16: \"%s\"", buf);
    CLAIT_OK(ctx, clai_matmul_describe(ctx, lc, la, 0, la, 0, buf, sizeof buf));
    if (strstr(buf, "direct") != NULL) fail_msg("300^3: \"%s\"", buf);
    clai_tensor *list[] = {da, dat, db, dc, dh, la, lc, ha};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) clai_tensor_free(list[i]);
  }
  char small[8];
  CLAIT_OK(ctx, clai_matmul_describe(ctx, c, a, 0, b, 0, small, sizeof small));
  assert_int_equal(strlen(small), sizeof small - 1);
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "op(a)", clai_matmul_describe(ctx, d, a, 0, b, 0, buf, sizeof buf));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "buf", clai_matmul_describe(ctx, c, a, 0, b, 0, NULL, 0));
  clai_tensor_free(a);
  clai_tensor_free(b);
  clai_tensor_free(c);
  clai_tensor_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sizes, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_transposes, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_views, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_batched, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_alpha_beta, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_k0, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_f16, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_epilogue, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_long_k, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_epilogue_errors, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(test_describe, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("matmul", tests, 1);
}
