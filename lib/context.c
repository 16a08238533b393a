/* context.c - clai_context: device choice with fallback, the queue, and the context's reports.
 *
 * The policy: rank every device (device.c), keep those an override selects, and take the first on which
 * a context, a queue and every kernel can be created. Each device passed over gets a note saying why, so
 * that `clai devices` and clai_context_device_info() can explain the choice. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NO_DEVICE_HELP                                                                                   \
  "no OpenCL device found. libclai needs an OpenCL driver: for a GPU, its vendor's OpenCL ICD; for the " \
  "CPU fallback, POCL (Debian/Ubuntu: apt-get install pocl-opencl-icd ocl-icd-libopencl1)"

static void release_device_objects(clai_context *ctx) {
  clai__profile_free(ctx);
  clai__programs_free(ctx);
  if (ctx->queue != NULL) clReleaseCommandQueue(ctx->queue);
  if (ctx->cl != NULL) clReleaseContext(ctx->cl);
  ctx->queue = NULL;
  ctx->cl = NULL;
}

static uint64_t env_u64(const char *name);

/* Creates the OpenCL context, queue and programs on one device, with the matmul family gemm_family (-1:
 * the device's default or its tuned choice, else an enum clai__gemm_family, or CLAI__GEMM_FAMILIES for
 * CLBlast wherever it can run; see CLAI_GEMM) and the row kernels `rows` (-1: by device, 0 one work-item per
 * row, 1 one work-group per row; see CLAI_ROWS), libclai's binary cache for every program where binaries_forced
 * is 1 (CLAI_CACHE_BINARIES=1; see program.c) and the matmul parameters gemm_params sets (CLAI_GEMM_PARAMS, or
 * NULL). On failure everything it made is released and ctx->errmsg says why. */
static clai_status try_device(clai_context *ctx, const clai__candidate *c, int gemm_family, int rows,
                              int binaries_forced, const char *gemm_params) {
  cl_int err;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)c->platform, 0};
  ctx->platform = c->platform;
  ctx->device = c->device;
  clai__devcaps_query(c->device, &ctx->caps);
  /* CLAI_LOOP_LIMIT=N: the routes of a device whose kernels' loops stop after N iterations a work-item
   * (llvmpipe's budget, emulated for tests/loop-budget.sh: the bands, slices and passes then run on any
   * device, POCL under the sanitizers and Oclgrind with its access checks among them) */
  const uint64_t emulated = env_u64("CLAI_LOOP_LIMIT");
  if (emulated > 0) ctx->caps.loop_limit = emulated < INT32_MAX ? (int64_t)emulated : INT32_MAX;
  memset(&ctx->stats, 0, sizeof ctx->stats); /* counts of this device's start only */
  memset(ctx->prog_seconds, 0, sizeof ctx->prog_seconds);
  memset(ctx->prog_state, 0, sizeof ctx->prog_state);
  memset(ctx->klaunched, 0, sizeof ctx->klaunched);
  ctx->binaries = binaries_forced || !ctx->caps.own_kernel_cache;
  clai__gemm_config_default(&ctx->caps, &ctx->gemm);
  clai__tune_apply(ctx);
  if (gemm_family == CLAI__GEMM_FAMILIES)
    ctx->gemm.clblast = CLAI__SHAPE_ALL;
  else if (gemm_family >= 0)
    ctx->gemm.family = gemm_family;
  if (gemm_params != NULL) {
    char why[256];
    clai__gemm_config cfg = ctx->gemm;
    if (!clai__gemm_params_parse(gemm_params, &cfg, why, sizeof why) ||
        !clai__gemm_config_valid(&cfg, &ctx->caps, why, sizeof why))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "CLAI_GEMM_PARAMS=\"%s\": %s", gemm_params, why);
    ctx->gemm = cfg;
  }
  /* Work-group-per-row kernels leave no GPU lane idle; on CPUs (POCL runs a work-group's items in a loop
   * on one core) one work-item per row keeps the row in L1 between its passes. */
  ctx->rows_forced = rows >= 0;
  ctx->rows_wg = rows >= 0 ? rows : !ctx->caps.is_cpu;
  ctx->local_1d = ctx->caps.is_cpu ? 64 : 256;
  if (ctx->local_1d > ctx->caps.max_wg_size) ctx->local_1d = ctx->caps.max_wg_size;

  ctx->cl = clCreateContext(props, 1, &c->device, NULL, NULL, &err);
  if (ctx->cl == NULL) return clai__cl_error(ctx, err, "clCreateContext failed");
  ctx->queue = clCreateCommandQueue(ctx->cl, c->device, ctx->prof.on ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  if (ctx->queue == NULL) {
    clai_status st = clai__cl_error(ctx, err, "clCreateCommandQueue failed");
    release_device_objects(ctx);
    return st;
  }
  clai_status st = clai__programs_init(ctx);
  if (st != CLAI_OK) release_device_objects(ctx);
  return st;
}

/* CLAI_TEST_FAIL_DEVICE, a testing aid: a comma-separated list of ranked device indices whose start-up is
 * made to fail, so that the tests can exercise the fallback to the next device on any machine. */
static int failure_injected(int index) {
  const char *s = getenv("CLAI_TEST_FAIL_DEVICE");
  while (s != NULL && *s != '\0') {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s) return 0;
    if (v == index) return 1;
    s = *end == ',' ? end + 1 : NULL;
  }
  return 0;
}

static uint64_t env_u64(const char *name) {
  const char *s = getenv(name);
  if (s == NULL || *s == '\0') return 0;
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || v < 0) return 0;
  switch (*end) {
  case 'k': case 'K': v *= 1024.0; break;
  case 'm': case 'M': v *= 1024.0 * 1024.0; break;
  case 'g': case 'G': v *= 1024.0 * 1024.0 * 1024.0; break;
  default: break;
  }
  return v >= 1.8e19 ? UINT64_MAX : (uint64_t)v;
}

/* A variable that picks one of two words: -1 when it is unset or empty, 0 for word0, 1 for word1, and -2 for
 * anything else, with the message in errbuf (the variable, its value, what it picks, the two words). */
static int env_pick(const char *name, const char *what, const char *word0, const char *word1, char *errbuf,
                    size_t cap) {
  const char *v = getenv(name);
  if (v == NULL || *v == '\0') return -1;
  if (strcmp(v, word0) == 0) return 0;
  if (strcmp(v, word1) == 0) return 1;
  snprintf(errbuf, cap, "%s=\"%s\" is not %s; use \"%s\" or \"%s\"", name, v, what, word0, word1);
  return -2;
}

static void list_devices(const clai_device_info *infos, int n, char *buf, size_t cap, size_t *len) {
  for (int i = 0; i < n; i++)
    clai__appendf(buf, cap, len, "\n  %d: %s / %s", i, infos[i].platform, infos[i].name);
}

static const char *type_word(clai_device_type t) {
  switch (t) {
  case CLAI_DEVICE_DISCRETE_GPU: return "discrete GPU";
  case CLAI_DEVICE_INTEGRATED_GPU: return "integrated GPU";
  case CLAI_DEVICE_ACCELERATOR: return "accelerator";
  case CLAI_DEVICE_CPU: return "CPU";
  default: return "other device";
  }
}

clai_status clai_context_init_ex(clai_context **out, const clai_context_params *params, char *errbuf,
                                 size_t errbuf_size) {
  char dummy[1];
  if (errbuf == NULL || errbuf_size == 0) {
    errbuf = dummy;
    errbuf_size = sizeof dummy;
  }
  errbuf[0] = '\0';
  if (out == NULL) {
    snprintf(errbuf, errbuf_size, "clai_context_init: out is NULL");
    return CLAI_E_INVALID_ARG;
  }
  *out = NULL;
  const double t0 = clai__now();
  clai_context_params defaults;
  memset(&defaults, 0, sizeof defaults);
  if (params == NULL) params = &defaults;

  clai_context *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) {
    snprintf(errbuf, errbuf_size, "clai_context_init: out of host memory");
    return CLAI_E_OUT_OF_MEMORY;
  }
  clai__candidate *cands = NULL;
  int *order = NULL;
  clai_status st = clai__devices_enumerate(&ctx->devices, &cands, &ctx->ndevices, errbuf, errbuf_size);
  if (st != CLAI_OK) goto fail;
  if (ctx->ndevices == 0) {
    snprintf(errbuf, errbuf_size, "%s", NO_DEVICE_HELP);
    st = CLAI_E_NO_DEVICE;
    goto fail;
  }

  const char *spec = params->device;
  const char *spec_from = "params.device";
  if (spec == NULL || *spec == '\0') {
    spec = getenv("CLAI_DEVICE");
    spec_from = "CLAI_DEVICE";
  }
  if (spec != NULL && *spec == '\0') spec = NULL;
  order = calloc((size_t)ctx->ndevices, sizeof *order);
  if (order == NULL) {
    st = CLAI_E_OUT_OF_MEMORY;
    snprintf(errbuf, errbuf_size, "clai_context_init: out of host memory");
    goto fail;
  }
  int norder = clai__devices_match(ctx->devices, ctx->ndevices, spec, order);
  if (norder <= 0) {
    size_t len = 0;
    clai__appendf(errbuf, errbuf_size, &len,
                  "%s=\"%s\" matches no device; use \"gpu\", \"cpu\", an index or part of a name. Devices:",
                  spec_from, spec);
    list_devices(ctx->devices, ctx->ndevices, errbuf, errbuf_size, &len);
    st = CLAI_E_DEVICE_NOT_FOUND;
    goto fail;
  }
  for (int i = 0; i < ctx->ndevices; i++)
    snprintf(ctx->devices[i].note, sizeof ctx->devices[i].note, "not selected by %s=\"%s\"", spec_from,
             spec != NULL ? spec : "");

  /* CLAI_GEMM forces the matmul kernel family on any device (for tests and comparisons): "generic",
   * "packed" (CPU-shaped, the default on CPUs), "gpu" (local-memory tiles, the default on GPUs) or
   * "clblast" (CLBlast for every shape it can run, the device's own family for the rest). */
  int gemm_family = -1;
  const char *family = getenv("CLAI_GEMM");
  if (family != NULL && *family != '\0') {
    static const char *const names[] = {"generic", "packed", "gpu", "clblast"};
    for (int i = 0; i < 4; i++)
      if (strcmp(family, names[i]) == 0) gemm_family = i;
    if (gemm_family < 0) {
      snprintf(errbuf, errbuf_size,
               "CLAI_GEMM=\"%s\" is not a matmul family; use \"generic\", \"packed\", \"gpu\" or \"clblast\"", family);
      st = CLAI_E_INVALID_ARG;
      goto fail;
    }
#ifndef HAVE_CLBLAST
    if (gemm_family == CLAI__GEMM_FAMILIES) {
      snprintf(errbuf, errbuf_size, "CLAI_GEMM=clblast: this libclai was built without CLBlast (--with-clblast)");
      st = CLAI_E_UNSUPPORTED;
      goto fail;
    }
#endif
  }
  /* CLAI_GEMM_PARAMS sets matmul parameters by the names `clai tune` stores (for tests and comparisons),
   * over the defaults or the tuned values; a name or value that does not parse stops here, a value out of
   * range for a device fails that device. */
  const char *gemm_params = getenv("CLAI_GEMM_PARAMS");
  if (gemm_params != NULL && *gemm_params == '\0') gemm_params = NULL;
  if (gemm_params != NULL) {
    clai__gemm_config scratch;
    char why[256];
    memset(&scratch, 0, sizeof scratch);
    if (!clai__gemm_params_parse(gemm_params, &scratch, why, sizeof why)) {
      snprintf(errbuf, errbuf_size, "CLAI_GEMM_PARAMS=\"%s\": %s", gemm_params, why);
      st = CLAI_E_INVALID_ARG;
      goto fail;
    }
  }
  /* CLAI_ROWS forces the shape of the row kernels (softmax, norms, their gradients, reductions,
   * cross-entropy) on any device: "wg" (a work-group per row, the default on GPUs) or "item" (a work-item
   * per row, the default on CPUs). */
  const int rows_pick = env_pick("CLAI_ROWS", "a row-kernel shape", "wg", "item", errbuf, errbuf_size);
  if (rows_pick == -2) {
    st = CLAI_E_INVALID_ARG;
    goto fail;
  }
  const int rows = rows_pick < 0 ? -1 : rows_pick == 0; /* 1: a work-group per row */
  /* CLAI_PROLOGUE: clai_matmul_pro's prologue "fused" into the decode kernel (the default on GPUs) or run as
   * "separate" ops (the default on CPUs, where every work-group repeating it made the fused kernel no faster
   * on POCL, and each group width another compilation of it). */
  const int pro_pick = env_pick("CLAI_PROLOGUE", "a way to run a prologue", "fused", "separate", errbuf,
                                errbuf_size);
  if (pro_pick == -2) {
    st = CLAI_E_INVALID_ARG;
    goto fail;
  }
  const int prologue = pro_pick < 0 ? -1 : pro_pick == 0; /* 1: fused */
  ctx->cache_dir = clai__cache_dir_resolve(params);
  uint64_t limit = params->pool_limit != 0 ? params->pool_limit : env_u64("CLAI_POOL_LIMIT");
  const char *eager = getenv("CLAI_EAGER");
  ctx->eager = params->eager == -2 ? -1
               : params->eager != 0 ? params->eager > 0
                                    : (eager != NULL && strcmp(eager, "1") == 0);
  /* CLAI_CACHE_BINARIES=1: program binaries go through libclai's cache on every implementation, also where
   * the implementation caches compiled kernels itself (POCL's CPU devices; device.c), as the cache's tests
   * need. */
  const char *binaries = getenv("CLAI_CACHE_BINARIES");
  const int binaries_forced = binaries != NULL && strcmp(binaries, "1") == 0;
  const char *profile = getenv("CLAI_PROFILE");
  ctx->prof.on = params->profile != 0 ? params->profile > 0 : (profile != NULL && strcmp(profile, "1") == 0);
  const char *check = getenv("CLAI_CHECK_ARGS");
  ctx->check_args = params->check_args != 0 ? params->check_args > 0 : (check != NULL && strcmp(check, "1") == 0);

  ctx->chosen = -1;
  for (int k = 0; k < norder; k++) {
    clai_device_info *d = &ctx->devices[order[k]];
    if (ctx->chosen >= 0) {
      const char *why = clai__device_rank_note(d);
      snprintf(d->note, sizeof d->note, "ranked below the chosen device %d%s%s", ctx->chosen, why ? ": " : "",
               why ? why : "");
      continue;
    }
    st = failure_injected(order[k])
             ? clai__error(ctx, CLAI_E_OPENCL, "start-up failure injected by CLAI_TEST_FAIL_DEVICE")
             : try_device(ctx, &cands[order[k]], gemm_family, rows, binaries_forced, gemm_params);
    if (st == CLAI_OK) {
      ctx->chosen = order[k];
      d->chosen = 1;
      d->fallback = d->type == CLAI_DEVICE_CPU || k > 0;
      if (k > 0)
        snprintf(d->note, sizeof d->note, "chosen: better devices failed, this is the next %s", type_word(d->type));
      else if (spec != NULL)
        snprintf(d->note, sizeof d->note, "chosen: selected by %s=\"%s\"", spec_from, spec);
      else
        snprintf(d->note, sizeof d->note, "chosen: the highest-ranked device (%s)", type_word(d->type));
    } else {
      /* Keep the first line of the failure (a build log can be long; errmsg keeps it whole). */
      const char *m = clai_errmsg(ctx);
      size_t n = strcspn(m, "\n");
      snprintf(d->note, sizeof d->note, "failed: %s: %.*s", clai_status_name(st), (int)n, m);
    }
  }
  if (ctx->chosen < 0) {
    size_t len = 0;
    clai__appendf(errbuf, errbuf_size, &len, "no usable OpenCL device; every candidate failed:");
    for (int k = 0; k < norder; k++)
      clai__appendf(errbuf, errbuf_size, &len, "\n  %d: %s: %s", order[k], ctx->devices[order[k]].name,
                    ctx->devices[order[k]].note);
    if (st == CLAI_E_BUILD) clai__appendf(errbuf, errbuf_size, &len, "\n%s", clai_errmsg(ctx));
    if (st != CLAI_E_BUILD) st = CLAI_E_NO_DEVICE;
    goto fail;
  }
  ctx->prologue_fused = prologue >= 0 ? prologue : !ctx->caps.is_cpu;
  if (limit == 0) limit = ctx->caps.global_mem / 4;
  clai__pool_init(&ctx->pool, limit);
  free(cands);
  free(order);
  clai__clear_error(ctx);
  ctx->stats.init_seconds = clai__now() - t0;
  *out = ctx;
  return CLAI_OK;

fail:
  free(cands);
  free(order);
  free(ctx->devices);
  free(ctx->cache_dir);
  free(ctx->errmsg);
  free(ctx);
  return st;
}

clai_status clai_context_init(clai_context **out, const clai_context_params *params) {
  return clai_context_init_ex(out, params, NULL, 0);
}

void clai_context_free(clai_context *ctx) {
  if (ctx == NULL) return;
  if (ctx->queue != NULL) clFinish(ctx->queue);
  while (ctx->tensors != NULL) clai_tensor_free(ctx->tensors);
  clai__pool_trim(&ctx->pool);
  release_device_objects(ctx);
  free(ctx->devices);
  free(ctx->cache_dir);
  free(ctx->share_dir);
  free(ctx->errmsg);
  free(ctx);
}

clai_status clai_sync(clai_context *ctx) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  cl_int err = clFinish(ctx->queue);
  if (err != CL_SUCCESS) return clai__cl_error(ctx, err, "clai_sync: clFinish failed");
  return ctx->prof.on ? clai__profile_flush(ctx) : CLAI_OK;
}

int clai_context_device_count(const clai_context *ctx) { return ctx != NULL ? ctx->ndevices : 0; }

clai_status clai_context_device_info(const clai_context *ctx, int i, clai_device_info *info) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (info == NULL) return clai__error((clai_context *)ctx, CLAI_E_INVALID_ARG, "clai_context_device_info: info is NULL");
  if (i == -1) i = ctx->chosen;
  if (i < 0 || i >= ctx->ndevices)
    return clai__error((clai_context *)ctx, CLAI_E_INVALID_ARG,
                       "clai_context_device_info: index %d out of range [-1, %d)", i, ctx->ndevices);
  *info = ctx->devices[i];
  return CLAI_OK;
}

clai_status clai_context_stats_get(const clai_context *ctx, clai_context_stats *stats) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (stats == NULL) return clai__error((clai_context *)ctx, CLAI_E_INVALID_ARG, "clai_context_stats_get: stats is NULL");
  *stats = ctx->stats;
  clai__pool_stats(&ctx->pool, stats);
  return CLAI_OK;
}

int clai_context_program_count(const clai_context *ctx) { return ctx != NULL ? CLAI__P_COUNT : 0; }

clai_status clai_context_program_info(const clai_context *ctx, int i, clai_program_info *info) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (info == NULL)
    return clai__error((clai_context *)ctx, CLAI_E_INVALID_ARG, "clai_context_program_info: info is NULL");
  if (i < 0 || i >= CLAI__P_COUNT)
    return clai__error((clai_context *)ctx, CLAI_E_INVALID_ARG,
                       "clai_context_program_info: index %d out of range [0, %d)", i, CLAI__P_COUNT);
  memset(info, 0, sizeof *info);
  snprintf(info->name, sizeof info->name, "%s", clai__program_stem(i));
  info->state = ctx->prog_state[i];
  info->build_seconds = ctx->prog_seconds[i];
  return CLAI_OK;
}

const char *clai_context_cache_dir(const clai_context *ctx) { return ctx != NULL ? ctx->cache_dir : NULL; }

void clai_context_trim(clai_context *ctx) {
  if (ctx != NULL) clai__pool_trim(&ctx->pool);
}
