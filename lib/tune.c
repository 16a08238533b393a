/* tune.c - the matmul parameters of a device: stored tuning results (clai__tune_apply) and the search that
 * produces them (clai_tune).
 *
 * The result is a cache entry (cache.c: checksummed, written atomically) whose key starts like a kernel
 * binary's (clai__device_key: libclai version, device, driver, platform) and whose payload is text, one
 * "name=value" per line, e.g. "packed.kb=256". Values are checked by clai__gemm_config_valid before a context
 * uses them; an entry that does not parse or validate is ignored (and counted as rejected), never trusted.
 * The family itself is not stored: it stays the device class's (or CLAI_GEMM's), so tuning a forced family
 * for a comparison never changes what later contexts run; each family's own values are kept side by side.
 *
 * The search is a coordinate search from the current values: each round tries every value of one parameter
 * at a time and keeps a change that is at least 2% faster. Every candidate is built from source (not
 * cached), checked against a double-precision reference on awkward shapes (odd sizes, transposes, batch,
 * f16 inputs, bias + activation, the skinny path) and only then timed. clai_tune_params.max_candidates ends
 * the search early, with the best so far. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Every stored field, by name. */
static const struct {
  const char *name;
  size_t off;
} fields[] = {
#define CLAI__F_(n) {#n, offsetof(clai__gemm_config, n)}
    CLAI__F_(generic.rm), CLAI__F_(generic.vw), CLAI__F_(generic.kb), CLAI__F_(generic.lx),
    CLAI__F_(generic.ly), CLAI__F_(packed.rm),  CLAI__F_(packed.vw),  CLAI__F_(packed.kb),  CLAI__F_(packed.uk),
    CLAI__F_(packed.pk),  CLAI__F_(packed.cn),  CLAI__F_(packed.lx),  CLAI__F_(packed.ly),  CLAI__F_(packed.skinny),
    CLAI__F_(packed.srm), CLAI__F_(packed.pack_lx), CLAI__F_(packed.direct), CLAI__F_(gpu.rm), CLAI__F_(gpu.vw),
    CLAI__F_(gpu.kb),
    CLAI__F_(gpu.lx),     CLAI__F_(gpu.ly),     CLAI__F_(gpu.srm),    CLAI__F_(gpu.slx),    CLAI__F_(gpu.sly),
    CLAI__F_(clblast),
#undef CLAI__F_
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static int *field(clai__gemm_config *cfg, size_t i) { return (int *)((char *)cfg + fields[i].off); }

static char *tune_key(clai_context *ctx) { return clai__device_key(ctx, "matmul tuning", 0); }

/* Parses the stored text over *cfg; 0 if a line is not "known-name=integer". */
static int parse_config(const char *text, size_t len, clai__gemm_config *cfg) {
  size_t pos = 0;
  while (pos < len) {
    size_t end = pos;
    while (end < len && text[end] != '\n') end++;
    char line[128];
    size_t n = end - pos;
    if (n >= sizeof line) return 0;
    memcpy(line, text + pos, n);
    line[n] = '\0';
    pos = end + 1;
    if (n == 0) continue;
    char *eq = strchr(line, '=');
    if (eq == NULL) return 0;
    *eq = '\0';
    char *stop = NULL;
    long v = strtol(eq + 1, &stop, 10);
    /* any int: each field's range is clai__gemm_config_valid's to judge */
    if (stop == eq + 1 || *stop != '\0' || v < INT_MIN || v > INT_MAX) return 0;
    size_t i = 0;
    while (i < NFIELDS && strcmp(fields[i].name, line) != 0) i++;
    if (i == NFIELDS) return 0;
    *field(cfg, i) = (int)v;
  }
  return 1;
}

int clai__gemm_params_parse(const char *text, clai__gemm_config *cfg, char *why, size_t cap) {
  clai__gemm_config out = *cfg;
  const char *s = text;
  while (*s != '\0') {
    const size_t n = strcspn(s, ", \n");
    if (n > 0) {
      if (n >= 128 /* parse_config's longest line */ || !parse_config(s, n, &out)) {
        snprintf(why, cap, "\"%.*s\" is not NAME=INTEGER with a NAME `clai tune` stores (such as packed.rm)",
                 (int)(n < 60 ? n : 60), s);
        return 0;
      }
    }
    s += n;
    if (*s != '\0') s++;
  }
  *cfg = out;
  return 1;
}

void clai__tune_apply(clai_context *ctx) {
  const char *env = getenv("CLAI_TUNE");
  if (ctx->cache_dir == NULL || (env != NULL && strcmp(env, "0") == 0)) return;
  char *key = tune_key(ctx);
  if (key == NULL) return;
  unsigned char *data = NULL;
  size_t len = 0;
  int found = clai__cache_load(ctx->cache_dir, key, &data, &len);
  free(key);
  if (found <= 0) {
    if (found < 0) ctx->stats.cache_rejected++;
    return;
  }
  clai__gemm_config cfg = ctx->gemm;
  char why[256];
  if (parse_config((const char *)data, len, &cfg) && clai__gemm_config_valid(&cfg, &ctx->caps, why, sizeof why)) {
#ifndef HAVE_CLBLAST
    cfg.clblast = 0; /* tuned by a libclai with CLBlast; this one has none */
#endif
    cfg.tuned = 1;
    ctx->gemm = cfg;
  } else {
    ctx->stats.cache_rejected++;
  }
  free(data);
}

/* ---- the search -------------------------------------------------------------------------------------- */

/* One tunable parameter: the fields it sets together (up to 3) and its candidate values. */
typedef struct tunable {
  const char *name;
  int nf;
  const char *f[3];
  int nv;
  int v[8][3];
} tunable;

static const tunable packed_space[] = {
    {"rm", 1, {"packed.rm"}, 3, {{4}, {6}, {8}}},
    /* rm x cn tiles of several vectors per row, for CPUs with AVX-512's 32 registers: the search tries
     * only those that fit them (clai__packed_tile_fits), and none on other devices */
    {"tile", 2, {"packed.rm", "packed.cn"}, 8, {{6, 1}, {6, 2}, {8, 2}, {10, 2}, {12, 2}, {14, 2}, {6, 3}, {8, 3}}},
    {"vw", 1, {"packed.vw"}, 2, {{8}, {16}}},
    {"kb", 1, {"packed.kb"}, 5, {{128}, {256}, {512}, {1024}, {4096}}},
    {"uk", 1, {"packed.uk"}, 3, {{1}, {4}, {8}}},
    {"local", 2, {"packed.lx", "packed.ly"}, 4, {{2, 8}, {4, 4}, {1, 16}, {2, 4}}},
};
static const tunable gpu_space[] = {
    {"rm", 1, {"gpu.rm"}, 3, {{2}, {4}, {8}}},
    {"vw", 1, {"gpu.vw"}, 3, {{2}, {4}, {8}}},
    {"kb", 1, {"gpu.kb"}, 3, {{8}, {16}, {32}}},
    {"local", 2, {"gpu.lx", "gpu.ly"}, 4, {{8, 8}, {16, 16}, {8, 16}, {16, 8}}},
    {"skinny", 3, {"gpu.srm", "gpu.slx", "gpu.sly"}, 3, {{1, 16, 16}, {2, 8, 16}, {4, 4, 16}}},
};
static const tunable generic_space[] = {
    {"rm", 1, {"generic.rm"}, 3, {{4}, {6}, {8}}},
    {"vw", 1, {"generic.vw"}, 3, {{4}, {8}, {16}}},
    {"kb", 1, {"generic.kb"}, 3, {{64}, {128}, {256}}},
    {"local", 2, {"generic.lx", "generic.ly"}, 4, {{8, 2}, {4, 4}, {16, 1}, {16, 16}}},
};

static int *field_named(clai__gemm_config *cfg, const char *name) {
  for (size_t i = 0; i < NFIELDS; i++)
    if (strcmp(fields[i].name, name) == 0) return field(cfg, i);
  return NULL;
}

static const char *const family_names[] = {"generic", "packed", "gpu"};

/* The fields of cfg's family as "rm=6 vw=16 ..." (for progress lines and the report). */
static void config_text(const clai__gemm_config *cfg, char *buf, size_t cap) {
  const char *fam = family_names[cfg->family];
  size_t len = 0, flen = strlen(fam);
  buf[0] = '\0';
  clai__appendf(buf, cap, &len, "%s", fam);
  for (size_t i = 0; i < NFIELDS; i++)
    if (strncmp(fields[i].name, fam, flen) == 0 && fields[i].name[flen] == '.')
      clai__appendf(buf, cap, &len, " %s=%d", fields[i].name + flen + 1, *field((clai__gemm_config *)cfg, i));
}

/* Host data for the checks: values on a grid of 1/8 so that f16 holds them exactly. */
static void fill_grid(float *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (float)((int)((seed >> 16) % 33) - 16) / 8.0f;
  }
}

typedef struct check_case {
  int64_t batch, M, N, K;
  int ta, tb, f16, bias;
  clai_activation act;
} check_case;

/* Runs one product with the context's current kernels and compares it with a double reference. */
static clai_status check_one(clai_context *ctx, const check_case *cc, const char *what) {
  const int64_t B = cc->batch, M = cc->M, N = cc->N, K = cc->K;
  const size_t na = (size_t)(B * M * K), nb = (size_t)(B * K * N), nc = (size_t)(B * M * N);
  float *ha = malloc(na * 4), *hb = malloc(nb * 4), *hbias = malloc((size_t)N * 4), *hc = malloc(nc * 4);
  clai_tensor *a = NULL, *b = NULL, *c = NULL, *bias = NULL, *a16 = NULL, *b16 = NULL;
  clai_status st = CLAI_OK;
  if (ha == NULL || hb == NULL || hbias == NULL || hc == NULL) {
    st = clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "clai_tune: out of host memory");
    goto done;
  }
  fill_grid(ha, na, 1), fill_grid(hb, nb, 2), fill_grid(hbias, (size_t)N, 3);
  /* stored as op(X) asks: A is [B, K, M] when transposed, B is [B, N, K] */
  const int64_t sa[3] = {B, cc->ta ? K : M, cc->ta ? M : K}, sb[3] = {B, cc->tb ? N : K, cc->tb ? K : N},
                sc[3] = {B, M, N}, sbias[1] = {N};
  st = clai_tensor_init(ctx, &a, CLAI_DTYPE_F32, 3, sa);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &b, CLAI_DTYPE_F32, 3, sb);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 3, sc);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &bias, CLAI_DTYPE_F32, 1, sbias);
  if (st == CLAI_OK) st = clai_tensor_write(a, ha, na * 4);
  if (st == CLAI_OK) st = clai_tensor_write(b, hb, nb * 4);
  if (st == CLAI_OK) st = clai_tensor_write(bias, hbias, (size_t)N * 4);
  if (st == CLAI_OK && cc->f16) {
    st = clai_tensor_init(ctx, &a16, CLAI_DTYPE_F16, 3, sa);
    if (st == CLAI_OK) st = clai_tensor_init(ctx, &b16, CLAI_DTYPE_F16, 3, sb);
    if (st == CLAI_OK) st = clai_copy(ctx, a16, a);
    if (st == CLAI_OK) st = clai_copy(ctx, b16, b);
  }
  clai_matmul_epilogue ep = {cc->bias ? bias : NULL, cc->act};
  if (st == CLAI_OK)
    st = clai_matmul_ex(ctx, c, cc->f16 ? a16 : a, cc->ta, cc->f16 ? b16 : b, cc->tb, 1.0f, 0.0f, &ep);
  if (st == CLAI_OK) st = clai_tensor_read(c, hc, nc * 4);
  for (int64_t z = 0; st == CLAI_OK && z < B; z++)
    for (int64_t m = 0; m < M && st == CLAI_OK; m++)
      for (int64_t n = 0; n < N; n++) {
        double s = 0, mag = 0;
        for (int64_t k = 0; k < K; k++) {
          const double x = ha[z * M * K + (cc->ta ? k * M + m : m * K + k)];
          const double y = hb[z * K * N + (cc->tb ? n * K + k : k * N + n)];
          s += x * y;
          mag += fabs(x * y);
        }
        if (cc->bias) s += hbias[n], mag += fabs(hbias[n]);
        if (cc->act == CLAI_ACT_RELU) s = s > 0 ? s : 0;
        if (cc->act == CLAI_ACT_SILU) s = s / (1 + exp(-s));
        if (cc->act == CLAI_ACT_GELU) s = 0.5 * s * (1 + tanh(0.7978845608028654 * (s + 0.044715 * s * s * s)));
        const double got = hc[(z * M + m) * N + n];
        if (!(fabs(got - s) <= 1e-5 * mag + 1e-4)) {
          st = clai__error(ctx, CLAI_E_OPENCL,
                           "clai_tune: %s gives %g at (%lld, %lld, %lld) of %lldx%lldx%lldx%lld, expected %g", what, got,
                           (long long)z, (long long)m, (long long)n, (long long)B, (long long)M, (long long)N,
                           (long long)K, s);
          break;
        }
      }
done:
  clai_tensor_free(a), clai_tensor_free(b), clai_tensor_free(c), clai_tensor_free(bias);
  clai_tensor_free(a16), clai_tensor_free(b16);
  free(ha), free(hb), free(hbias), free(hc);
  return st;
}

static clai_status check_all(clai_context *ctx, const char *what) {
  static const check_case cases[] = {
      {1, 37, 53, 71, 0, 0, 0, 0, CLAI_ACT_NONE},   {2, 29, 41, 300, 1, 1, 0, 1, CLAI_ACT_RELU},
      {1, 5, 77, 33, 0, 1, 0, 1, CLAI_ACT_GELU},    {3, 11, 19, 23, 1, 0, 1, 1, CLAI_ACT_SILU},
      {1, 70, 97, 130, 0, 0, 1, 0, CLAI_ACT_NONE},  {1, 1, 131, 17, 0, 0, 0, 0, CLAI_ACT_NONE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clai_status st = check_one(ctx, &cases[i], what);
    if (st != CLAI_OK) return st;
  }
  return CLAI_OK;
}

/* GFLOP/s of the best of a few runs of one f32 product (after one warm-up run). */
static clai_status time_one(clai_context *ctx, const int64_t *mnk, double *gflops) {
  const int64_t sa[2] = {mnk[0], mnk[2]}, sb[2] = {mnk[2], mnk[1]}, sc[2] = {mnk[0], mnk[1]};
  clai_tensor *a = NULL, *b = NULL, *c = NULL;
  clai_status st = clai_tensor_init(ctx, &a, CLAI_DTYPE_F32, 2, sa);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &b, CLAI_DTYPE_F32, 2, sb);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 2, sc);
  if (st == CLAI_OK) st = clai_fill(ctx, a, 0.5);
  if (st == CLAI_OK) st = clai_fill(ctx, b, 0.25);
  if (st == CLAI_OK) st = clai_matmul(ctx, c, a, 0, b, 0, 1.0f, 0.0f);
  if (st == CLAI_OK) st = clai_sync(ctx);
  double best = 1e30, spent = 0;
  for (int run = 0; st == CLAI_OK && (run < 3 || (spent < 0.2 && run < 50)); run++) {
    const double t0 = clai__now();
    st = clai_matmul(ctx, c, a, 0, b, 0, 1.0f, 0.0f);
    if (st == CLAI_OK) st = clai_sync(ctx);
    const double t = clai__now() - t0;
    spent += t;
    if (t < best) best = t;
  }
  *gflops = st == CLAI_OK ? 2.0 * (double)mnk[0] * (double)mnk[1] * (double)mnk[2] / best * 1e-9 : 0.0;
  clai_tensor_free(a), clai_tensor_free(b), clai_tensor_free(c);
  return st;
}

typedef struct search {
  clai_context *ctx;
  const int64_t (*shapes)[3];
  int nshapes;
  const clai_tune_params *params;
  double *per_shape; /* GFLOP/s of the last evaluated candidate, per shape */
} search;

static void progress(const search *s, const char *fmt, ...) CLAI__PRINTF(2, 3);
static void progress(const search *s, const char *fmt, ...) {
  if (s->params == NULL || s->params->progress == NULL) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  s->params->progress(s->params->user, line);
}

/* Builds the kernels for cfg, checks them, and scores them (geometric mean of GFLOP/s over the shapes). */
static clai_status evaluate(search *s, const clai__gemm_config *cfg, double *score) {
  clai_context *ctx = s->ctx;
  char what[256];
  config_text(cfg, what, sizeof what);
  ctx->gemm = *cfg;
  clai_status st = clai__programs_reload_gemm(ctx, 0);
  if (st == CLAI_OK) st = check_all(ctx, what);
  double logsum = 0;
  for (int i = 0; st == CLAI_OK && i < s->nshapes; i++) {
    st = time_one(ctx, s->shapes[i], &s->per_shape[i]);
    logsum += log(s->per_shape[i] > 0 ? s->per_shape[i] : 1e-9);
  }
  *score = st == CLAI_OK ? exp(logsum / s->nshapes) : 0.0;
  if (st == CLAI_OK) progress(s, "%s: %.1f GFLOP/s", what, *score);
  return st;
}

clai_status clai_tune(clai_context *ctx, const clai_tune_params *params, char *report, size_t cap) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  const char *fn = "clai_tune";
  if (ctx->cache_dir == NULL)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: the context's cache is off, so there is nowhere to store results", fn);
  if (ctx->share_dir != NULL && ctx->share_role == CLAI_SHARE_HELP)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: a helper context (clai_context_share_builds) runs no kernel to time", fn);
  static const int64_t cpu_shapes[][3] = {{512, 512, 512}, {1024, 1024, 1024}, {1000, 1000, 1000}, {8, 4096, 4096}};
  static const int64_t gpu_shapes[][3] = {{1024, 1024, 1024}, {2048, 2048, 2048}, {1000, 1000, 1000}, {8, 4096, 4096}};
  search s = {ctx, ctx->caps.is_cpu ? cpu_shapes : gpu_shapes, 4, params, NULL};
  if (params != NULL && params->shapes != NULL) {
    if (params->nshapes <= 0) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: nshapes is %d", fn, params->nshapes);
    for (int i = 0; i < params->nshapes; i++)
      if (params->shapes[i][0] < 1 || params->shapes[i][1] < 1 || params->shapes[i][2] < 1 ||
          params->shapes[i][0] > 65536 || params->shapes[i][1] > 65536 || params->shapes[i][2] > 65536)
        return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: shape %d is not within 1..65536 in each of M, N, K", fn, i);
    s.shapes = params->shapes;
    s.nshapes = params->nshapes;
  }
  const int rounds = params != NULL && params->rounds > 0 ? params->rounds : 2;
  if (params != NULL && params->max_candidates < 0)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: max_candidates is %d", fn, params->max_candidates);
  const int max_tried = params != NULL && params->max_candidates > 0 ? params->max_candidates : INT_MAX;
  s.per_shape = calloc((size_t)s.nshapes, sizeof *s.per_shape);
  double *own = calloc((size_t)s.nshapes, sizeof *own);
  if (s.per_shape == NULL || own == NULL) {
    free(s.per_shape), free(own);
    return clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "%s: out of host memory", fn);
  }

  const clai__gemm_config saved = ctx->gemm;
  clai__gemm_config best = saved;
  best.clblast = 0;
  best.tuned = 0;
  const tunable *space = best.family == CLAI__GEMM_PACKED ? packed_space
                         : best.family == CLAI__GEMM_GPU  ? gpu_space
                                                          : generic_space;
  const int nspace = best.family == CLAI__GEMM_PACKED ? (int)(sizeof packed_space / sizeof packed_space[0])
                     : best.family == CLAI__GEMM_GPU  ? (int)(sizeof gpu_space / sizeof gpu_space[0])
                                                      : (int)(sizeof generic_space / sizeof generic_space[0]);
  double best_score = 0;
  int tried = 1;
  clai_status st = evaluate(&s, &best, &best_score);
  if (st == CLAI_OK) memcpy(own, s.per_shape, (size_t)s.nshapes * sizeof *own);
  const double start_score = best_score;
  for (int round = 0; st == CLAI_OK && round < rounds && tried < max_tried; round++) {
    int changed = 0;
    for (int t = 0; st == CLAI_OK && t < nspace && tried < max_tried; t++) {
      for (int v = 0; st == CLAI_OK && v < space[t].nv && tried < max_tried; v++) {
        clai__gemm_config cand = best;
        int same = 1;
        for (int f = 0; f < space[t].nf; f++) {
          int *p = field_named(&cand, space[t].f[f]);
          same &= *p == space[t].v[v][f];
          *p = space[t].v[v][f];
        }
        char why[256];
        if (same || !clai__gemm_config_valid(&cand, &ctx->caps, why, sizeof why)) continue;
        /* tiles of several vectors per row only on CPUs with 32 vector registers, and only those that fit
         * them (elsewhere the search is what it was: "rm" alone) */
        if (strcmp(space[t].name, "tile") == 0 &&
            (clai__cpu_vector_regs(&ctx->caps) < 32 ||
             !clai__packed_tile_fits(&ctx->caps, cand.packed.rm, cand.packed.cn, cand.packed.vw)))
          continue;
        double score = 0;
        st = evaluate(&s, &cand, &score);
        tried++;
        if (st == CLAI_OK && score > best_score * 1.02) {
          best = cand, best_score = score, changed = 1;
          memcpy(own, s.per_shape, (size_t)s.nshapes * sizeof *own);
        }
      }
    }
    if (!changed) break;
  }

#ifdef HAVE_CLBLAST
  /* CLBlast, shape by shape, against the winner: a class goes to CLBlast when it is 10% faster there. */
  if (st == CLAI_OK) {
    ctx->gemm = best;
    st = clai__programs_reload_gemm(ctx, 0);
    for (int i = 0; st == CLAI_OK && i < s.nshapes; i++) {
      double g = 0;
      ctx->gemm.clblast = CLAI__SHAPE_ALL;
      clai_status cs = time_one(ctx, s.shapes[i], &g);
      ctx->gemm.clblast = best.clblast;
      const int cls = clai__gemm_shape_class(s.shapes[i][0], s.shapes[i][1], s.shapes[i][2], 1);
      if (cs == CLAI_OK) {
        progress(&s, "clblast %lldx%lldx%lld: %.1f GFLOP/s (libclai %.1f)", (long long)s.shapes[i][0],
                 (long long)s.shapes[i][1], (long long)s.shapes[i][2], g, own[i]);
        if (g > own[i] * 1.1) best.clblast |= cls;
      } else {
        progress(&s, "clblast %lldx%lldx%lld: failed (%s)", (long long)s.shapes[i][0], (long long)s.shapes[i][1],
                 (long long)s.shapes[i][2], clai_errmsg(ctx));
        clai__clear_error(ctx);
      }
    }
  }
#endif

  /* Store the winner, then give the context its own kernels back (from the cache: they were built at init). */
  if (st == CLAI_OK) {
    char text[1024];
    size_t len = 0;
    for (size_t i = 0; i < NFIELDS; i++) clai__appendf(text, sizeof text, &len, "%s=%d\n", fields[i].name, *field(&best, i));
    char *key = tune_key(ctx);
    if (key == NULL || clai__cache_store(ctx->cache_dir, key, (const unsigned char *)text, len) != 0)
      st = clai__error(ctx, CLAI_E_INVALID_ARG, "%s: could not write the result into %s", fn, ctx->cache_dir);
    free(key);
  }
  clai_status failed = st;
  char msg[1024] = "";
  if (failed != CLAI_OK) snprintf(msg, sizeof msg, "%s", clai_errmsg(ctx));
  ctx->gemm = saved;
  st = clai__programs_reload_gemm(ctx, 1);
  if (failed != CLAI_OK) st = clai__error(ctx, failed, "%s", msg);
  if (st == CLAI_OK && report != NULL && cap > 0) {
    char what[256];
    config_text(&best, what, sizeof what);
    snprintf(report, cap, "%s (%.1f GFLOP/s; the defaults %.1f; %d candidate%s)", what, best_score, start_score,
             tried, tried == 1 ? "" : "s");
    if (best.clblast) {
      size_t len = strlen(report);
      clai__appendf(report, cap, &len, "; CLBlast for shape classes:");
      if (best.clblast & CLAI__SHAPE_SKINNY) clai__appendf(report, cap, &len, " skinny");
      if (best.clblast & CLAI__SHAPE_SMALL) clai__appendf(report, cap, &len, " small");
      if (best.clblast & CLAI__SHAPE_LARGE) clai__appendf(report, cap, &len, " large");
    }
  }
  free(s.per_shape), free(own);
  return st;
}
