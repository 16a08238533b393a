/* program.c - the kernel programs: embedded sources -> built programs and kernels for the context's device,
 * served from the on-disk binary cache (cache.c) when an entry for the same key exists.
 *
 * Some GPU drivers generate machine code for a kernel at its first launch, not at clBuildProgram. A binary
 * taken right after the build would then lack that code and every later start would pay for it again at
 * first launch. So after a cold build every kernel is launched once with its real work-group size on empty
 * sizes (the "warm-up"; every kernel does nothing when its sizes are zero) and the binary is taken after
 * that.
 *
 * POCL's CPU devices (caps.own_kernel_cache) are the exception. POCL, too, compiles a kernel at its first
 * launch, for that work-group size, but it keeps the code in its own kernel cache; and taking a program
 * binary makes it compile every kernel of the program a second time, for any work-group size, which a
 * cold start measured at more than the first compilation (BENCHMARKS.md). There programs are built from
 * source (a repeat build is served by POCL's cache), never warmed up and never stored in libclai's cache:
 * each kernel is compiled once, at its first launch, and only the kernels an application launches are
 * compiled at all. The copy kernels, built at init, are the exception (uses_binaries). CLAI_CACHE_BINARIES=1
 * brings back libclai's cache for every program there (its tests use it). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The generated kernels-cl.c (from the files in cl/, see Makefile.am): one string per file. The program
 * `core` is cl/core.cl (a comment) and the files of CLAI__CORE_FILES. */
#define CLAI__CORE_FILES(X) X(elementwise) X(layout) X(loss) X(backward) X(optim) X(random)
#define CLAI__SRC_DECL_(stem) extern const char clai__cl_##stem[];
#define CLAI__SRC_DECL2_(id, stem) CLAI__SRC_DECL_(stem)
CLAI__SRC_DECL_(common)
CLAI__SRC_DECL_(philox)
CLAI__CORE_FILES(CLAI__SRC_DECL_)
CLAI__PROGRAMS(CLAI__SRC_DECL2_)
#undef CLAI__SRC_DECL2_
#undef CLAI__SRC_DECL_

static void release_program(clai_context *ctx, int prog);

static const char *const program_stems[CLAI__P_COUNT] = {
#define CLAI__STEM_(id, stem) #stem,
    CLAI__PROGRAMS(CLAI__STEM_)
#undef CLAI__STEM_
};

static const char *const program_sources[CLAI__P_COUNT] = {
#define CLAI__SRC_(id, stem) clai__cl_##stem,
    CLAI__PROGRAMS(CLAI__SRC_)
#undef CLAI__SRC_
};

typedef struct kernel_desc {
  int program;
  const char *name;
  const char *sig;
  int dims;
} kernel_desc;

static const kernel_desc kernel_descs[CLAI__K_COUNT] = {
#define CLAI__KDESC_(id, prog, name, sig, dims) {CLAI__P_##prog, name, sig, dims},
    CLAI__KERNELS(CLAI__KDESC_)
#undef CLAI__KDESC_
};

const char *clai__program_stem(int prog) { return program_stems[prog]; }

void clai__index_pack(const clai__index *ix, cl_long8 out[5]) {
  memset(out, 0, 5 * sizeof *out);
  for (int op = 0; op < CLAI__IDX_OPS; op++) out[0].s[op] = ix->offset[op];
  out[0].s[3] = ix->ndim;
  out[0].s[4] = ix->numel;
  for (int j = 0; j < 8; j++) out[1].s[j] = 1;
  const int nd = ix->ndim < 0 ? 0 : ix->ndim > CLAI_MAX_DIMS ? CLAI_MAX_DIMS : (int)ix->ndim;
  for (int d = 0; d < nd; d++) {
    const int j = CLAI_MAX_DIMS - nd + d;
    out[1].s[j] = ix->shape[d];
    for (int op = 0; op < CLAI__IDX_OPS; op++) out[2 + op].s[j] = ix->stride[op][d];
  }
}

/* ---- check mode: every kernel argument against its declaration ----------------------------------------
 * POCL accepts any size for any argument, so a launch that passes a wrong size works there and fails (or
 * reads garbage) on drivers that check. In check mode (CLAI_CHECK_ARGS=1, on in every test run) programs
 * are built with -cl-kernel-arg-info, each kernel's signature in CLAI__KERNELS is compared with the
 * declared arguments when the kernel is created (clGetKernelArgInfo, OpenCL 1.2 section 5.7.3), and each
 * clSetKernelArg with the declared size (a buffer's handle cannot be told from a long of the same size by
 * any portable query, so a buffer is checked by size only). */
/* The size of a declared scalar or vector type name ("int", "long8", "half"), 0 if it is neither. */
static size_t type_size(const char *t) {
  static const struct {
    const char *name;
    size_t size;
  } base[] = {{"char", 1}, {"uchar", 1}, {"short", 2}, {"ushort", 2}, {"half", 2},  {"int", 4},
              {"uint", 4}, {"float", 4}, {"long", 8},  {"ulong", 8},  {"double", 8}};
  static const struct {
    const char *suffix;
    size_t lanes; /* a 3-vector is stored as a 4-vector (OpenCL 1.2 section 6.1.5) */
  } width[] = {{"", 1}, {"2", 2}, {"3", 4}, {"4", 4}, {"8", 8}, {"16", 16}};
  for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
    const size_t n = strlen(base[i].name);
    if (strncmp(t, base[i].name, n) != 0) continue;
    for (size_t w = 0; w < sizeof width / sizeof width[0]; w++)
      if (strcmp(t + n, width[w].suffix) == 0) return base[i].size * width[w].lanes;
  }
  return 0;
}

clai_status clai__kernel_args_check(clai_context *ctx, cl_kernel kern, const char *name, const char *sig,
                                    clai__karg **out, int *nout) {
  *out = NULL;
  *nout = 0;
  cl_uint n = 0;
  cl_int err = clGetKernelInfo(kern, CL_KERNEL_NUM_ARGS, sizeof n, &n, NULL);
  if (err != CL_SUCCESS) return clai__cl_error(ctx, err, "%s: clGetKernelInfo(CL_KERNEL_NUM_ARGS) failed", name);
  clai__karg *args = calloc(n > 0 ? n : 1, sizeof *args);
  if (args == NULL) return clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "out of host memory");
  clai_status st = CLAI_OK;
  cl_uint a = 0;
  for (const char *c = sig; *c != '\0' && st == CLAI_OK; c++) {
    const int reps = *c == 'x' ? 5 : 1; /* a clai__index is five long8 */
    for (int r = 0; r < reps && st == CLAI_OK; r++, a++) {
      const char *want = *c == 'b'   ? "a __global pointer"
                         : *c == 'i' ? "int"
                         : *c == 'l' ? "long"
                         : *c == 'f' ? "float"
                         : *c == 'v' || *c == 'x' ? "long8"
                                                  : "?";
      if (a >= n) {
        st = clai__error(ctx, CLAI_E_BUILD, "%s: its signature \"%s\" has more arguments than the kernel's %u", name,
                         sig, (unsigned)n);
        break;
      }
      cl_kernel_arg_address_qualifier aq = 0;
      char type[64] = "";
      err = clGetKernelArgInfo(kern, a, CL_KERNEL_ARG_ADDRESS_QUALIFIER, sizeof aq, &aq, NULL);
      if (err == CL_SUCCESS) err = clGetKernelArgInfo(kern, a, CL_KERNEL_ARG_TYPE_NAME, sizeof type, type, NULL);
      if (err != CL_SUCCESS) {
        st = clai__cl_error(ctx, err, "%s: clGetKernelArgInfo(argument %u) failed (built without -cl-kernel-arg-info?)",
                            name, (unsigned)a);
        break;
      }
      type[sizeof type - 1] = '\0';
      clai__karg *g = &args[a];
      snprintf(g->type, sizeof g->type, "%s", type);
      g->pointer = strchr(type, '*') != NULL;
      g->size = g->pointer ? sizeof(cl_mem) : type_size(type);
      const int ok = *c == 'b' ? g->pointer && (aq == CL_KERNEL_ARG_ADDRESS_GLOBAL || aq == CL_KERNEL_ARG_ADDRESS_CONSTANT)
                               : !g->pointer && aq == CL_KERNEL_ARG_ADDRESS_PRIVATE && strcmp(type, want) == 0;
      if (!ok)
        st = clai__error(ctx, CLAI_E_BUILD, "%s: argument %u is declared %s%s but the host passes %s (signature \"%s\")",
                         name, (unsigned)a, type, aq == CL_KERNEL_ARG_ADDRESS_LOCAL ? " (__local)" : "", want, sig);
    }
  }
  if (st == CLAI_OK && a != n)
    st = clai__error(ctx, CLAI_E_BUILD, "%s: the kernel has %u arguments, its signature \"%s\" names %u", name,
                     (unsigned)n, sig, (unsigned)a);
  if (st != CLAI_OK) {
    free(args);
    return st;
  }
  *out = args;
  *nout = (int)n;
  return CLAI_OK;
}

/* Check mode: the argument a launch passes against the declaration. */
static clai_status check_arg(clai_context *ctx, int kernel, cl_uint a, size_t size) {
  const char *name = kernel_descs[kernel].name;
  if ((int)a >= ctx->knargs[kernel])
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: argument %u is passed but the kernel has only %d", name,
                       (unsigned)a, ctx->knargs[kernel]);
  const clai__karg *g = &ctx->kargs[kernel][a];
  if (size != g->size)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: argument %u is declared %s (%zu bytes) but %zu bytes are passed",
                       name, (unsigned)a, g->type, g->size, size);
  return CLAI_OK;
}

/* cl/common.cl, then cl/philox.cl for the programs that draw random numbers, then the program's file (and
 * for core, the files of CLAI__CORE_FILES). */
char *clai__program_source(int prog) {
  const char *parts[16];
  int n = 0;
  parts[n++] = clai__cl_common;
  if (prog == CLAI__P_CORE || prog == CLAI__P_SAMPLE) parts[n++] = clai__cl_philox;
  parts[n++] = program_sources[prog];
  if (prog == CLAI__P_CORE) {
#define CLAI__CORE_PART_(stem) parts[n++] = clai__cl_##stem;
    CLAI__CORE_FILES(CLAI__CORE_PART_)
#undef CLAI__CORE_PART_
  }
  size_t len = 0;
  for (int i = 0; i < n; i++) len += strlen(parts[i]);
  char *s = malloc(len + 1), *w = s;
  if (s == NULL) return NULL;
  for (int i = 0; i < n; i++) {
    const size_t l = strlen(parts[i]);
    memcpy(w, parts[i], l);
    w += l;
  }
  *w = '\0';
  return s;
}

/* How messages name a program's source: "cl/<stem>.cl", for core with the list of its files. */
static const char *program_files(int prog, char *buf, size_t cap) {
  if (prog == CLAI__P_CORE)
    return "cl/core.cl ("
#define CLAI__CORE_NAME_(stem) " cl/" #stem ".cl"
        CLAI__CORE_FILES(CLAI__CORE_NAME_)
#undef CLAI__CORE_NAME_
        " )";
  snprintf(buf, cap, "cl/%s.cl", program_stems[prog]);
  return buf;
}

void clai__program_options(int prog, const clai__devcaps *caps, const clai__gemm_config *gemm, char *buf,
                           size_t cap) {
  size_t len = 0;
  buf[0] = '\0';
  /* -w: POCL prints the compiler's warnings to stderr on every cold build (ABI notes on float16 vectors
   * without AVX-512); errors still come back in the build log. */
  clai__appendf(buf, cap, &len, "-cl-std=CL1.2 -w -DCLAI_FP16=%d -DCLAI_CPU=%d -DCLAI_HW_FMA=%d%s%s",
                caps->has_fp16 ? 1 : 0, caps->is_cpu ? 1 : 0, caps->has_fma ? 1 : 0,
                caps->bit_half ? " -DCLAI_BITHALF=1" : "", caps->assume ? " -DCLAI_ASSUMES=1" : "");
  if (prog == CLAI__P_MATMUL)
    clai__appendf(buf, cap, &len, " -DRM=%d -DVW=%d -DKB=%d -DKBAR=%d", gemm->generic.rm, gemm->generic.vw,
                  gemm->generic.kb, caps->lanes_cpu ? 0 : 1);
  if (prog == CLAI__P_MATMUL_PACKED)
    clai__appendf(buf, cap, &len, " -DRM=%d -DVW=%d -DCN=%d -DKB=%d -DUK=%d -DPK=%d -DSRM=%d", gemm->packed.rm,
                  gemm->packed.vw, gemm->packed.cn, gemm->packed.kb, gemm->packed.uk, gemm->packed.pk,
                  gemm->packed.srm);
  if ((prog == CLAI__P_NORM || prog == CLAI__P_COPY) && caps->nt_store)
    clai__appendf(buf, cap, &len, " -DCLAI_NTSTORE=1");
  if (prog == CLAI__P_REDUCE) clai__appendf(buf, cap, &len, " -DCLAI_COLT=%d", clai__reduce_cols_tile(caps));
  if (prog == CLAI__P_ATTENTION) clai__appendf(buf, cap, &len, " -DATT_RQ=%d", clai__attention_rq(caps));
  if (prog == CLAI__P_MATMUL_GPU)
    clai__appendf(buf, cap, &len, " -DRM=%d -DVW=%d -DKB=%d -DLX=%d -DLY=%d -DSRM=%d -DSLX=%d -DSLY=%d",
                  gemm->gpu.rm, gemm->gpu.vw, gemm->gpu.kb, gemm->gpu.lx, gemm->gpu.ly, gemm->gpu.srm, gemm->gpu.slx,
                  gemm->gpu.sly);
}

char *clai__device_key(clai_context *ctx, const char *what, size_t extra) {
  char pver[256] = "";
  clGetPlatformInfo(ctx->platform, CL_PLATFORM_VERSION, sizeof pver, pver, NULL);
  pver[sizeof pver - 1] = '\0';
  char dname[256] = "", dver[256] = "", drv[256] = "";
  clGetDeviceInfo(ctx->device, CL_DEVICE_NAME, sizeof dname, dname, NULL);
  clGetDeviceInfo(ctx->device, CL_DEVICE_VERSION, sizeof dver, dver, NULL);
  clGetDeviceInfo(ctx->device, CL_DRIVER_VERSION, sizeof drv, drv, NULL);
  dname[255] = dver[255] = drv[255] = '\0';
  size_t cap = 2048 + strlen(what) + extra;
  char *key = malloc(cap);
  if (key == NULL) return NULL;
  size_t len = 0;
  clai__appendf(key, cap, &len, "libclai %s\n%s\ndevice %s\ndevice-version %s\ndriver %s\nplatform %s\n",
                PACKAGE_VERSION, what, dname, dver, drv, pver);
  return key;
}

/* The text a cache entry is keyed by: everything that can change the binary. */
static char *cache_key(clai_context *ctx, int prog, const char *source, const char *options) {
  char what[64];
  snprintf(what, sizeof what, "program %s", program_stems[prog]);
  char *key = clai__device_key(ctx, what, strlen(options) + 128);
  if (key == NULL) return NULL;
  size_t len = strlen(key), cap = len + 1 + strlen(options) + 128;
  clai__appendf(key, cap, &len, "options %s\nsource %016llx%016llx\n", options,
                (unsigned long long)clai__hash64(source, strlen(source), 11),
                (unsigned long long)clai__hash64(source, strlen(source), 12));
  return key;
}

/* A program's build options as this context passes them: clai__program_options, and argument information in
 * check mode. */
static void context_options(const clai_context *ctx, int prog, char *buf, size_t cap) {
  clai__program_options(prog, &ctx->caps, &ctx->gemm, buf, cap);
  if (ctx->check_args) strncat(buf, " -cl-kernel-arg-info", cap - strlen(buf) - 1);
}

/* The name of a claim (clai_context_share_builds, share.c) on program prog's front end (kernel < 0) or on
 * one launch shape (variant, see variant_key) of one of its kernels: a hash of the program's cache key
 * (device, driver, libclai's version, options, source), so that processes share only what would build the
 * same binary. source and options may be NULL (then made here). 0, or -1 when out of memory. */
static int share_name(clai_context *ctx, int prog, const char *source, const char *options, int kernel,
                      uint64_t variant, char *out, size_t cap) {
  if (!ctx->share_key_set[prog]) {
    char opts[512];
    char *own = NULL;
    if (options == NULL) {
      context_options(ctx, prog, opts, sizeof opts);
      options = opts;
    }
    if (source == NULL && (source = own = clai__program_source(prog)) == NULL) return -1;
    char *key = cache_key(ctx, prog, source, options);
    free(own);
    if (key == NULL) return -1;
    ctx->share_key[prog][0] = clai__hash64(key, strlen(key), 21);
    ctx->share_key[prog][1] = clai__hash64(key, strlen(key), 22);
    ctx->share_key_set[prog] = 1;
    free(key);
  }
  const unsigned long long h0 = (unsigned long long)ctx->share_key[prog][0],
                           h1 = (unsigned long long)ctx->share_key[prog][1];
  if (kernel < 0)
    snprintf(out, cap, "%016llx%016llx-%s", h0, h1, program_stems[prog]);
  else
    snprintf(out, cap, "%016llx%016llx-%s-%llx", h0, h1, kernel_descs[kernel].name, (unsigned long long)variant);
  return 0;
}

/* Releases a claim this context held (cfd >= 0; else nothing), done when ok. A helper whose claim a leader
 * waited for leaves the next kernel shape to that leader (share.c). */
static void share_release(clai_context *ctx, int cfd, const char *name, int ok) {
  if (cfd < 0) return;
  clai__claim_release(cfd, ok);
  if (ctx->share_role == CLAI_SHARE_HELP && clai__claim_wanted(ctx->share_dir, name)) ctx->share_skip = 1;
}

clai_status clai__program_build(clai_context *ctx, const char *source, const char *options, const char *what,
                               cl_program *out) {
  cl_int err;
  *out = clCreateProgramWithSource(ctx->cl, 1, &source, NULL, &err);
  if (*out == NULL) return clai__cl_error(ctx, err, "clCreateProgramWithSource(%s) failed", what);
  err = clBuildProgram(*out, 1, &ctx->device, options, NULL, NULL);
  if (err == CL_SUCCESS) return CLAI_OK;
  size_t n = 0;
  char *log = NULL;
  if (clGetProgramBuildInfo(*out, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS && n > 0) {
    log = malloc(n + 1);
    if (log != NULL && clGetProgramBuildInfo(*out, ctx->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS)
      log[n] = '\0';
    else if (log != NULL)
      log[0] = '\0';
  }
  clai_status st = clai__error(ctx, CLAI_E_BUILD, "building %s failed (OpenCL error %s, %d); build log:\n%s", what,
                               clai__cl_errname(err), (int)err, log != NULL && log[0] ? log : "(empty)");
  free(log);
  clReleaseProgram(*out);
  *out = NULL;
  return st;
}

/* Loads the program from a cache entry; NULL if there is none or it does not build (then rejected). */
static cl_program load_cached(clai_context *ctx, const char *key, const char *options) {
  unsigned char *bin = NULL;
  size_t len = 0;
  int found = clai__cache_load(ctx->cache_dir, key, &bin, &len);
  if (found <= 0) {
    if (found < 0) ctx->stats.cache_rejected++;
    return NULL;
  }
  cl_int err, bin_status = CL_SUCCESS;
  const unsigned char *bins[1] = {bin};
  cl_program p = clCreateProgramWithBinary(ctx->cl, 1, &ctx->device, &len, bins, &bin_status, &err);
  free(bin);
  if (p != NULL && err == CL_SUCCESS && bin_status == CL_SUCCESS &&
      clBuildProgram(p, 1, &ctx->device, options, NULL, NULL) == CL_SUCCESS)
    return p;
  if (p != NULL) clReleaseProgram(p);
  ctx->stats.cache_rejected++; /* the driver refused it: a foreign or damaged binary that passed our checks */
  return NULL;
}

static clai_status create_kernels(clai_context *ctx, int prog) {
  for (int k = 0; k < CLAI__K_COUNT; k++) {
    const kernel_desc *kd = &kernel_descs[k];
    if (kd->program != prog) continue;
    cl_int err;
    ctx->kernels[k] = clCreateKernel(ctx->programs[prog], kd->name, &err);
    if (ctx->kernels[k] == NULL) return clai__cl_error(ctx, err, "clCreateKernel(%s) failed", kd->name);
    if (ctx->check_args) {
      clai_status st = clai__kernel_args_check(ctx, ctx->kernels[k], kd->name, kd->sig, &ctx->kargs[k], &ctx->knargs[k]);
      if (st != CLAI_OK) return st;
    }
    size_t *l = ctx->klocal[k];
    l[0] = l[1] = l[2] = 1;
    const clai__gemm_config *g = &ctx->gemm;
    int fixed = 0; /* the kernel declares reqd_work_group_size: its local size cannot shrink */
    if (k == CLAI__K_ATTENTION_D64 || k == CLAI__K_ATTENTION_D256) {
      l[0] = ctx->caps.is_cpu ? 16 : 64; /* rows per work-group: 4 per work-item on CPUs (cl/attention.cl) */
    } else if (k == CLAI__K_ATTENTION_BWD_KV_D64 || k == CLAI__K_ATTENTION_BWD_Q_D64 ||
               k == CLAI__K_ATTENTION_BWD_KV_D256 || k == CLAI__K_ATTENTION_BWD_Q_D256) {
      l[0] = ctx->caps.is_cpu ? 8 : 32; /* 16 rows per work-item (cl/attention_backward.cl) */
    } else if (k == CLAI__K_REDUCE_COLS && ctx->caps.is_cpu && !ctx->caps.lanes_cpu) {
      /* a tile of 512 columns and a chunk of the reduced axis per work-item, and few of them (about four per
       * core, cl/reduce.cl): a work-group each, so that every core gets some */
      l[0] = 1;
    } else if (kd->dims == 1) {
      l[0] = ctx->local_1d;
    } else if (k == CLAI__K_QMATMUL_F32 ||
               k == CLAI__K_QGEMV_Q8_0 || k == CLAI__K_QGEMV_Q4_0 || k == CLAI__K_QGEMV_Q4_1 ||
               k == CLAI__K_QGEMV8_Q8_0 || k == CLAI__K_QGEMV8_Q4_0 || k == CLAI__K_QGEMV8_Q4_1 ||
               k == CLAI__K_QGEMV_Q4_K || k == CLAI__K_QGEMV_Q6_K || k == CLAI__K_QGEMV8_Q4_K ||
               k == CLAI__K_QGEMV8_Q6_K || k == CLAI__K_QGEMVP_Q8_0 || k == CLAI__K_QGEMVP_Q4_0 ||
               k == CLAI__K_QGEMVP_Q4_1 || k == CLAI__K_QGEMVP_Q4_K || k == CLAI__K_QGEMVP_Q6_K) {
      l[0] = ctx->caps.is_cpu ? 16 : 64; /* columns of C per work-group */
    } else if (k == CLAI__K_PACK_AB_F32 || k == CLAI__K_PACK_AB_F16) {
      l[0] = (size_t)g->packed.pack_lx;
    } else if (k == CLAI__K_CONV_IGEMM) {
      /* tiles of positions side by side that share one tile of channels: the group's work-items (run one
       * after another on POCL) read the same B panel, which stays in cache */
      l[0] = (size_t)(g->packed.lx * g->packed.ly);
    } else if (k == CLAI__K_GEMM_PACKED || k == CLAI__K_GEMM_PACKED_SHORT || k == CLAI__K_GEMM_DIRECT) {
      l[0] = (size_t)g->packed.lx;
      l[1] = (size_t)g->packed.ly;
    } else if (k == CLAI__K_GEMM_APACKED_F32 || k == CLAI__K_GEMM_APACKED_F16) {
      /* every A panel of a skinny M in one group, so a k-block of B's column tile, read from memory by the
       * first panel's work-item, is still in cache for the others (POCL runs them one after another) */
      l[0] = (size_t)((g->packed.skinny + g->packed.srm - 1) / g->packed.srm);
      l[1] = (size_t)g->packed.ly;
    } else if (k == CLAI__K_GEMM_GPU_F32 || k == CLAI__K_GEMM_GPU_F16) {
      l[0] = (size_t)g->gpu.lx;
      l[1] = (size_t)g->gpu.ly;
      fixed = 1;
    } else if (k == CLAI__K_GEMM_GPU_SKINNY_F32 || k == CLAI__K_GEMM_GPU_SKINNY_F16) {
      l[0] = (size_t)g->gpu.slx;
      l[1] = (size_t)g->gpu.sly;
      fixed = 1;
    } else if (k == CLAI__K_IM2COL_F32 || k == CLAI__K_IM2COL_F16 || k == CLAI__K_CONV_EPILOGUE_F32 ||
               k == CLAI__K_CONV_EPILOGUE_F16 || k == CLAI__K_CONV_DIRECT_F32 || k == CLAI__K_CONV_DIRECT_F16 ||
               k == CLAI__K_POOL2D_F32 || k == CLAI__K_POOL2D_F16) {
      /* cl/conv.cl: a whole row or plane per work-item, and groups of 64 (POCL pays per work-group) */
      l[0] = 8;
      l[1] = 8;
    } else if (k == CLAI__K_CONV_PAD) {
      l[0] = 8, l[1] = 8; /* a plane per work-item, groups of 64 (as cl/conv.cl's kernels) */
    } else if (k == CLAI__K_COL2IM_F32 || k == CLAI__K_COL2IM_F16 || k == CLAI__K_CONV_BWD_DATA_F32 ||
               k == CLAI__K_CONV_BWD_DATA_F16 || k == CLAI__K_POOL2D_BWD_F32 || k == CLAI__K_POOL2D_BWD_F16 ||
               k == CLAI__K_CONV_ROWS_F32 || k == CLAI__K_CONV_ROWS_F16) {
      /* cl/conv_backward.cl: (row, channel, image), a whole row per work-item, groups of 64 */
      l[0] = 8;
      l[1] = 8;
    } else if (k == CLAI__K_CONV_BWD_WEIGHT_F32 || k == CLAI__K_CONV_BWD_WEIGHT_F16 ||
               k == CLAI__K_CONV_BWD_BIAS_F32 || k == CLAI__K_CONV_BWD_BIAS_F16) {
      /* a long reduction per work-item and few work-items (one per weight or channel): on CPUs small
       * groups, so that every core gets some */
      l[0] = ctx->caps.is_cpu ? 4 : 64;
    } else {
      l[0] = (size_t)g->generic.lx;
      l[1] = (size_t)g->generic.ly;
    }
    /* A kernel may allow fewer work-items than the device (register pressure on GPUs): shrink to fit. */
    size_t kmax = 0;
    if (clGetKernelWorkGroupInfo(ctx->kernels[k], ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax,
                                 NULL) == CL_SUCCESS &&
        kmax > 0) {
      if (fixed && l[0] * l[1] * l[2] > kmax) {
        ctx->fixed_wg_limit = kmax;
        return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s needs %zu work-items per group; the device allows %zu",
                           kd->name, l[0] * l[1] * l[2], kmax);
      }
      while (l[0] * l[1] * l[2] > kmax) {
        if (l[0] >= l[1] && l[0] > 1)
          l[0] /= 2;
        else if (l[1] > 1)
          l[1] /= 2;
        else
          break;
      }
    }
    /* Within the device's limits per dimension and of local memory, which lenient implementations do not
     * enforce (OpenCL 1.2 section 5.8: CL_INVALID_WORK_ITEM_SIZE, CL_OUT_OF_RESOURCES). */
    size_t dims_max[3] = {0, 0, 0};
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof dims_max, dims_max, NULL) == CL_SUCCESS)
      for (int d = 0; d < kd->dims; d++)
        if (dims_max[d] > 0 && l[d] > dims_max[d])
          return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s needs %zu work-items along dimension %d; the device allows %zu",
                             kd->name, l[d], d, dims_max[d]);
    cl_ulong lmem = 0;
    if (clGetKernelWorkGroupInfo(ctx->kernels[k], ctx->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL) ==
            CL_SUCCESS &&
        ctx->caps.local_mem > 0 && (ctx->caps.local_mem_reported_x2 ? lmem / 2 : lmem) > ctx->caps.local_mem)
      return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s needs %llu bytes of local memory; the device has %llu", kd->name,
                         (unsigned long long)(ctx->caps.local_mem_reported_x2 ? lmem / 2 : lmem),
                         (unsigned long long)ctx->caps.local_mem);
  }
  return CLAI_OK;
}

/* Enqueues kernel k on empty sizes (every size argument 0, every buffer `dummy`) with work-groups of
 * `local` over `global` work-items (NULL: one group): it computes nothing, but the implementation compiles
 * its code for that shape. */
static cl_int launch_empty(clai_context *ctx, int k, cl_mem dummy, const size_t *local, const size_t *global) {
  const kernel_desc *kd = &kernel_descs[k];
  clai__index idx;
  memset(&idx, 0, sizeof idx);
  cl_long8 zx[5]; /* an empty index: numel 0 */
  clai__index_pack(&idx, zx);
  const cl_int zi = 0;
  const cl_long zl = 0;
  const cl_float zf = 0.0f;
  cl_long8 zl8;
  memset(&zl8, 0, sizeof zl8);
  cl_int err = CL_SUCCESS;
  cl_uint a = 0;
  for (const char *c = kd->sig; *c != '\0' && err == CL_SUCCESS; c++) {
    switch (*c) {
    case 'b': err = clSetKernelArg(ctx->kernels[k], a++, sizeof dummy, &dummy); break;
    case 'i': err = clSetKernelArg(ctx->kernels[k], a++, sizeof zi, &zi); break;
    case 'l': err = clSetKernelArg(ctx->kernels[k], a++, sizeof zl, &zl); break;
    case 'f': err = clSetKernelArg(ctx->kernels[k], a++, sizeof zf, &zf); break;
    case 'x':
      for (int r = 0; r < 5 && err == CL_SUCCESS; r++) err = clSetKernelArg(ctx->kernels[k], a++, sizeof zx[r], &zx[r]);
      break;
    case 'v': err = clSetKernelArg(ctx->kernels[k], a++, sizeof zl8, &zl8); break;
    default: err = CL_INVALID_ARG_INDEX; break;
    }
  }
  if (err == CL_SUCCESS)
    err = clEnqueueNDRangeKernel(ctx->queue, ctx->kernels[k], (cl_uint)kd->dims, NULL, global != NULL ? global : local,
                                 local, 0, NULL, NULL);
  return err;
}

/* Launches every kernel of `prog` once on empty sizes (see the top of this file). */
static clai_status warm_up(clai_context *ctx, int prog) {
  cl_int err;
  cl_mem dummy = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, 256, NULL, &err);
  if (dummy == NULL) return clai__cl_error(ctx, err, "warm-up: clCreateBuffer failed");
  clai_status st = CLAI_OK;
  for (int k = 0; k < CLAI__K_COUNT && st == CLAI_OK; k++) {
    if (kernel_descs[k].program != prog) continue;
    err = launch_empty(ctx, k, dummy, ctx->klocal[k], NULL);
    if (err != CL_SUCCESS) st = clai__cl_error(ctx, err, "warm-up launch of %s failed", kernel_descs[k].name);
  }
  if (st == CLAI_OK) {
    err = clFinish(ctx->queue);
    char files[128];
    if (err != CL_SUCCESS)
      st = clai__cl_error(ctx, err, "warm-up of %s failed", program_files(prog, files, sizeof files));
  }
  clReleaseMemObject(dummy);
  return st;
}

/* Whether program `prog` goes through libclai's binary cache (warm-up, binary taken and stored): everywhere
 * but on implementations that cache compiled kernels themselves (see the top of this file), and there too
 * for the copy kernels, the one program every context builds at init, so that a warm start-up stays a
 * file read (POCL's path from source costs ~40 ms even when its cache holds the program; the copy
 * kernels are small, so their second compilation on a cold start is cheap). */
static int uses_binaries(const clai_context *ctx, int prog) { return ctx->binaries || prog == CLAI__P_COPY; }

/* POCL (3.1) compiles a kernel once per launch shape: per work-group size, and apart for grids with a
 * dimension of 65535 work-items or more ("smallgrid" in the names of its cache's entries, measured). The
 * shape's key: the local sizes and that bit. */
#define CLAI__BIG_GRID 65535
static uint64_t variant_key(int dims, const size_t *global, const size_t *local) {
  uint64_t key = 0;
  for (int d = 0; d < dims; d++) {
    key |= (uint64_t)(local[d] & 0xffff) << (16 * d);
    if (global[d] >= CLAI__BIG_GRID) key |= (uint64_t)1 << 48;
  }
  return key;
}

/* Before the first launch of each shape of a kernel whose program was not warmed up because the
 * implementation compiles and caches kernels itself (uses_binaries 0): the same empty launch in the same
 * shape class (the work-group size, and a dimension of 65535 work-items or more where the real grid has
 * one), alone on the queue, so that the compilation it triggers (POCL compiles in its worker thread, when
 * the launch runs, not when it is enqueued) is timed as build time, not as the run time of whatever op
 * happens to come first. Shapes past the first CLAI__KVARIANTS are no longer timed. */
static clai_status first_launch(clai_context *ctx, int kernel, const size_t *global, const size_t *local) {
  if (uses_binaries(ctx, kernel_descs[kernel].program)) { /* compiled at the program's warm-up, or cache off */
    ctx->klaunched[kernel] = CLAI__KVARIANTS + 1;
    return CLAI_OK;
  }
  const int dims = kernel_descs[kernel].dims;
  const uint64_t key = variant_key(dims, global, local);
  for (int i = 0; i < ctx->klaunched[kernel]; i++)
    if (ctx->kvariant[kernel][i] == key) return CLAI_OK;
  size_t g[3];
  for (int d = 0; d < dims; d++)
    g[d] = global[d] >= CLAI__BIG_GRID ? (CLAI__BIG_GRID + local[d] - 1) / local[d] * local[d] : local[d];
  cl_int err = clFinish(ctx->queue); /* the work before it is run time */
  if (err != CL_SUCCESS) return clai__cl_error(ctx, err, "%s: clFinish failed", kernel_descs[kernel].name);
  const double t0 = clai__now();
  /* Shared with other processes: a leader waits for whoever compiles this shape (then its real launch
   * finds the code in the implementation's cache), a helper passes on. */
  int cfd = -1, compile = 1;
  char name[160];
  if (ctx->share_dir != NULL && share_name(ctx, kernel_descs[kernel].program, NULL, NULL, kernel, key, name,
                                           sizeof name) == 0) {
    const int helper = ctx->share_role == CLAI_SHARE_HELP;
    const int c = helper && ctx->share_skip ? CLAI__CLAIM_BUSY : clai__claim_take(ctx->share_dir, name, !helper, &cfd);
    ctx->share_skip = 0;
    compile = c != CLAI__CLAIM_DONE && c != CLAI__CLAIM_BUSY;
  }
  if (compile) {
    cl_mem dummy = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, 256, NULL, &err);
    if (dummy != NULL) {
      err = launch_empty(ctx, kernel, dummy, local, g);
      if (err == CL_SUCCESS) err = clFinish(ctx->queue);
      clReleaseMemObject(dummy);
    }
    share_release(ctx, cfd, name, err == CL_SUCCESS); /* clCreateBuffer failing set err too */
    if (dummy == NULL)
      return clai__cl_error(ctx, err, "first launch of %s: clCreateBuffer failed", kernel_descs[kernel].name);
    if (err != CL_SUCCESS)
      return clai__cl_error(ctx, err, "first launch of %s (its compilation) failed", kernel_descs[kernel].name);
  }
  ctx->kvariant[kernel][ctx->klaunched[kernel]++] = key;
  const double dt = clai__now() - t0;
  ctx->prog_seconds[kernel_descs[kernel].program] += dt;
  ctx->stats.build_seconds += dt;
  return CLAI_OK;
}

static void store_binary(clai_context *ctx, int prog, const char *key) {
  size_t size = 0;
  if (clGetProgramInfo(ctx->programs[prog], CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS ||
      size == 0)
    return;
  unsigned char *bin = malloc(size);
  if (bin == NULL) return;
  unsigned char *bins[1] = {bin};
  if (clGetProgramInfo(ctx->programs[prog], CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS &&
      clai__cache_store(ctx->cache_dir, key, bin, size) == 0)
    ctx->stats.cache_writes++;
  /* A cache that cannot be written only costs speed next time. */
  free(bin);
}

static clai_status init_program(clai_context *ctx, int prog, int use_cache) {
  const double t0 = clai__now();
  char options[512];
  context_options(ctx, prog, options, sizeof options);
  char *source = clai__program_source(prog);
  char *key = NULL;
  clai_status st = CLAI_OK;
  if (source == NULL) return clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "out of host memory");
  if (ctx->cache_dir != NULL && use_cache && uses_binaries(ctx, prog)) {
    key = cache_key(ctx, prog, source, options);
    if (key != NULL) ctx->programs[prog] = load_cached(ctx, key, options);
  }
  /* Shared with other processes: whoever holds the program's claim builds it (and stores it in libclai's
   * cache where programs go there); the others wait, then load it from libclai's cache or, built from
   * source again, find its front end in the implementation's. */
  int cfd = -1;
  char name[160];
  if (ctx->programs[prog] == NULL && ctx->share_dir != NULL &&
      share_name(ctx, prog, source, options, -1, 0, name, sizeof name) == 0 &&
      clai__claim_take(ctx->share_dir, name, 1, &cfd) == CLAI__CLAIM_DONE && key != NULL)
    ctx->programs[prog] = load_cached(ctx, key, options);
  int from_source = ctx->programs[prog] == NULL;
  if (from_source) {
    char files[128];
    st = clai__program_build(ctx, source, options, program_files(prog, files, sizeof files), &ctx->programs[prog]);
    if (st != CLAI_OK) goto done;
    ctx->stats.programs_built++;
  } else {
    ctx->stats.programs_cached++;
  }
  st = create_kernels(ctx, prog);
  if (st != CLAI_OK) goto done;
  if (from_source && key != NULL) {
    st = warm_up(ctx, prog);
    if (st != CLAI_OK) goto done;
    store_binary(ctx, prog, key);
  }
  ctx->stats.programs++;
  ctx->prog_state[prog] = from_source ? 1 : 2;
done:
  share_release(ctx, cfd, name, st == CLAI_OK);
  free(key);
  free(source);
  const double dt = clai__now() - t0;
  ctx->prog_seconds[prog] += dt;
  ctx->stats.build_seconds += dt;
  return st;
}

/* The GPU family's kernels declare their work-group shape (reqd_work_group_size), and a device may allow
 * fewer work-items for a kernel than for the device as a whole (Mesa's llvmpipe: 32 for these, of 1024).
 * Halves the larger side of each shape that is over `limit`; 0 when nothing can shrink. */
static int shrink_gpu_config(struct clai__gemm_gpu *g, size_t limit) {
  int changed = 0;
  while ((size_t)(g->lx * g->ly) > limit && (g->lx > 1 || g->ly > 1)) {
    if (g->lx >= g->ly) g->lx /= 2; else g->ly /= 2;
    changed = 1;
  }
  while ((size_t)(g->slx * g->sly) > limit && (g->slx > 1 || g->sly > 1)) {
    if (g->sly >= g->slx) g->sly /= 2; else g->slx /= 2;
    changed = 1;
  }
  return changed;
}

/* init_program, and for the GPU matmul family a rebuild with work-groups the kernels allow, when they do
 * not allow the configured ones. */
static clai_status init_program_fit(clai_context *ctx, int prog, int use_cache) {
  for (int attempt = 0;; attempt++) {
    ctx->fixed_wg_limit = 0;
    clai_status st = init_program(ctx, prog, use_cache);
    if (st == CLAI_OK || prog != CLAI__P_MATMUL_GPU || ctx->fixed_wg_limit == 0 || attempt == 4 ||
        !shrink_gpu_config(&ctx->gemm.gpu, ctx->fixed_wg_limit))
      return st;
    release_program(ctx, prog);
    clai__clear_error(ctx);
  }
}

/* Of the matmul programs only the context's family is built (the other kernels stay NULL). */
static int program_wanted(const clai_context *ctx, int prog) {
  switch (prog) {
  case CLAI__P_MATMUL: return ctx->gemm.family == CLAI__GEMM_GENERIC;
  case CLAI__P_MATMUL_PACKED: return ctx->gemm.family == CLAI__GEMM_PACKED;
  case CLAI__P_MATMUL_GPU: return ctx->gemm.family == CLAI__GEMM_GPU;
  default: return 1;
  }
}

/* Every program but the copy kernels is built on first use unless the context is eager: drivers that
 * compile each kernel's machine code at the warm-up launch, and POCL, which serialises all compilation
 * behind one lock, would make a cold start that built every op family grow with the op set (seconds per
 * family) for families an application may never use. Loading from a cache is cheap either way. */
clai_status clai__programs_init(clai_context *ctx) {
  for (int p = 0; p < CLAI__P_COUNT; p++) {
    if (!program_wanted(ctx, p) || (ctx->eager <= 0 && (p != CLAI__P_COPY || ctx->eager < 0))) continue;
    clai_status st = init_program_fit(ctx, p, 1);
    if (st != CLAI_OK) return st;
  }
  return CLAI_OK;
}

static void release_program(clai_context *ctx, int prog) {
  ctx->share_key_set[prog] = 0; /* a rebuild may have other options */
  for (int k = 0; k < CLAI__K_COUNT; k++) {
    if (kernel_descs[k].program != prog) continue;
    if (ctx->kernels[k] != NULL) clReleaseKernel(ctx->kernels[k]);
    ctx->kernels[k] = NULL;
    ctx->klaunched[k] = 0;
    free(ctx->kargs[k]);
    ctx->kargs[k] = NULL;
    ctx->knargs[k] = 0;
  }
  if (ctx->programs[prog] != NULL) clReleaseProgram(ctx->programs[prog]);
  ctx->programs[prog] = NULL;
  ctx->prog_state[prog] = 0;
}

clai_status clai__programs_reload_gemm(clai_context *ctx, int use_cache) {
  clai_status st = clFinish(ctx->queue) == CL_SUCCESS ? CLAI_OK : clai__error(ctx, CLAI_E_OPENCL, "clFinish failed");
  for (int p = 0; p < CLAI__P_COUNT; p++) {
    if (p != CLAI__P_MATMUL && p != CLAI__P_MATMUL_PACKED && p != CLAI__P_MATMUL_GPU) continue;
    release_program(ctx, p);
    if (st == CLAI_OK && program_wanted(ctx, p) && (ctx->eager > 0 || !use_cache)) st = init_program_fit(ctx, p, use_cache);
  }
  return st;
}

void clai__programs_free(clai_context *ctx) {
  for (int k = 0; k < CLAI__K_COUNT; k++) {
    if (ctx->kernels[k] != NULL) clReleaseKernel(ctx->kernels[k]);
    ctx->kernels[k] = NULL;
    free(ctx->kargs[k]);
    ctx->kargs[k] = NULL;
  }
  for (int p = 0; p < CLAI__P_COUNT; p++) {
    if (ctx->programs[p] != NULL) clReleaseProgram(ctx->programs[p]);
    ctx->programs[p] = NULL;
  }
}

clai_status clai__kernel_ready(clai_context *ctx, int kernel) {
  if (ctx->kernels[kernel] != NULL) return CLAI_OK;
  const int prog = kernel_descs[kernel].program;
  char files[128];
  if (!program_wanted(ctx, prog)) /* a bug in the caller: a kernel of another matmul family */
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s belongs to %s, which this context does not use",
                       kernel_descs[kernel].name, program_files(prog, files, sizeof files));
  if (ctx->programs[prog] != NULL) /* built, but without this kernel: cannot happen after init_program */
    return clai__error(ctx, CLAI_E_OPENCL, "%s is missing from %s", kernel_descs[kernel].name,
                       program_files(prog, files, sizeof files));
  clai_status st = init_program_fit(ctx, prog, 1);
  if (st != CLAI_OK) release_program(ctx, prog);
  return st;
}

static clai_status launch_v(clai_context *ctx, int kernel, const size_t *global, const size_t *local, int nargs,
                            va_list ap) {
  const kernel_desc *kd = &kernel_descs[kernel];
  /* A helper (clai_context_share_builds) compiles for others and runs nothing, and the copy kernels are
   * every other context's to build at its init. */
  const int helper = ctx->share_role == CLAI_SHARE_HELP && ctx->share_dir != NULL;
  if (helper && kd->program == CLAI__P_COPY) return CLAI_OK;
  if (ctx->kernels[kernel] == NULL) {
    clai_status st = clai__kernel_ready(ctx, kernel);
    if (st != CLAI_OK) return st;
  }
  cl_kernel k = ctx->kernels[kernel];
  size_t g[3], l[3];
  for (int d = 0; d < kd->dims; d++) {
    if (global[d] == 0) return CLAI_OK; /* nothing to do */
    l[d] = local != NULL ? local[d] : ctx->klocal[kernel][d];
    g[d] = (global[d] + l[d] - 1) / l[d] * l[d];
  }
  if (ctx->klaunched[kernel] < CLAI__KVARIANTS) {
    clai_status st = first_launch(ctx, kernel, g, l);
    if (st != CLAI_OK) return st;
  }
  cl_uint a = 0;
  for (int i = 0; i < nargs; i++) {
    size_t size = va_arg(ap, size_t);
    const void *ptr = va_arg(ap, const void *);
    cl_long8 packed[5];
    int reps = 1;
    if (size == CLAI__IDX_MARK) { /* a clai__index: five long8 */
      clai__index_pack((const clai__index *)ptr, packed);
      reps = 5;
      size = sizeof packed[0];
    }
    for (int r = 0; r < reps; r++, a++) {
      const void *p = reps > 1 ? (const void *)&packed[r] : ptr;
      if (ctx->check_args) {
        clai_status st = check_arg(ctx, kernel, a, size);
        if (st != CLAI_OK) return st;
      }
      cl_int err = clSetKernelArg(k, a, size, p);
      if (err != CL_SUCCESS) return clai__cl_error(ctx, err, "%s: clSetKernelArg(%u) failed", kd->name, (unsigned)a);
    }
  }
  if (ctx->check_args && (int)a != ctx->knargs[kernel])
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %u arguments are passed, the kernel has %d", kd->name,
                       (unsigned)a, ctx->knargs[kernel]);
  if (helper) return CLAI_OK;
  cl_int err = clEnqueueNDRangeKernel(ctx->queue, k, (cl_uint)kd->dims, NULL, g, l, 0, NULL,
                                      clai__profile_event(ctx));
  clai__profile_launched(ctx, kernel, err);
  if (err != CL_SUCCESS) return clai__cl_error(ctx, err, "%s: clEnqueueNDRangeKernel failed", kd->name);
  return CLAI_OK;
}

clai_status clai__launch(clai_context *ctx, int kernel, const size_t *global, int nargs, ...) {
  va_list ap;
  va_start(ap, nargs);
  clai_status st = launch_v(ctx, kernel, global, NULL, nargs, ap);
  va_end(ap);
  return st;
}

clai_status clai__launch_local(clai_context *ctx, int kernel, const size_t *global, const size_t *local, int nargs,
                               ...) {
  va_list ap;
  va_start(ap, nargs);
  clai_status st = launch_v(ctx, kernel, global, local, nargs, ap);
  va_end(ap);
  return st;
}

const char *clai__kernel_name(int kernel) { return kernel_descs[kernel].name; }

clai_status clai__rows_local(clai_context *ctx, int kernel, size_t *local) {
  clai_status st = clai__kernel_ready(ctx, kernel);
  if (st != CLAI_OK) return st;
  size_t L = 1;
  while (L * 2 <= ctx->klocal[kernel][0] && L * 2 <= 256) L *= 2;
  *local = L;
  return CLAI_OK;
}

/* The most passes a row kernel makes over its row (softmax: max, sum, store; layernorm: mean, variance,
 * store), with one to spare. */
#define CLAI__ROW_PASSES 4

clai_status clai__rows_shape(clai_context *ctx, int kernel, int64_t n, int64_t units, cl_int *lanes, size_t *local,
                             size_t *global) {
  clai_status st = clai__rows_local(ctx, kernel, local);
  if (st != CLAI_OK) return st;
  size_t S = 1;
  while (S < *local && (int64_t)S < n) S *= 2;
  const uint64_t per_group = *local / S, groups = ((uint64_t)units + per_group - 1) / per_group;
  uint64_t items;
  if (units < 0 || !clai__mul_ok(groups, *local, &items) || items > (uint64_t)SIZE_MAX)
    return clai__error(ctx, CLAI_E_OVERFLOW, "%s: %lld rows need more work-items than a size_t holds",
                       kernel_descs[kernel].name, (long long)units);
  /* Each lane walks ceil(n / S) elements per pass over the row, and the row kernels make up to
   * CLAI__ROW_PASSES passes: past a device's loop limit (llvmpipe) the results would be wrong, so refuse. */
  const int64_t walk = (n + (int64_t)S - 1) / (int64_t)S;
  if (ctx->caps.loop_limit > 0 && walk > ctx->caps.loop_limit / CLAI__ROW_PASSES)
    return clai__error(ctx, CLAI_E_UNSUPPORTED,
                       "%s: rows of %lld elements in %zu lanes are %lld loop iterations a work-item, more than this "
                       "device runs (its kernels' loops stop after %lld in all: llvmpipe); at most %lld elements",
                       kernel_descs[kernel].name, (long long)n, S, (long long)(walk * CLAI__ROW_PASSES),
                       (long long)ctx->caps.loop_limit,
                       (long long)(ctx->caps.loop_limit / CLAI__ROW_PASSES * (int64_t)S));
  *lanes = (cl_int)S;
  *global = (size_t)items;
  return CLAI_OK;
}
