/* internal.h - what the files of lib/ share. Nothing here is public; internal functions that are not static
 * are named clai__*. Layers (see DESIGN.md): context/device -> programs/cache -> pool -> tensors -> ops. */
#ifndef CLAI_INTERNAL_H
#define CLAI_INTERNAL_H

#include "config.h"

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "clai.h"

#if defined(__GNUC__)
#define CLAI__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLAI__PRINTF(f, a)
#endif

/* ---- kernel programs and kernels -------------------------------------------------------------------------
 * One program per cl/<name>.cl, each prefixed with cl/common.cl. X(ID, file stem). */
#define CLAI__PROGRAMS(X) \
  X(COPY, copy)           \
  X(ELEMENTWISE, elementwise) \
  X(MATMUL, matmul)       \
  X(MATMUL_PACKED, matmul_packed) \
  X(REDUCE, reduce)       \
  X(NORM, norm)

enum clai__program_id {
#define CLAI__P_ENUM_(id, stem) CLAI__P_##id,
  CLAI__PROGRAMS(CLAI__P_ENUM_)
#undef CLAI__P_ENUM_
  CLAI__P_COUNT
};

/* Every kernel: X(ID, program, "name", "argument signature", work dims).
 * The signature lists the arguments for the warm-up launch (see program.c): b = buffer, i = int, l = long,
 * f = float, x = struct clai__index by value. Every kernel must do nothing when its sizes are zero. */
#define CLAI__KERNELS(X)                                                          \
  X(COPY, COPY, "clai_copy", "bbxll", 1)                                          \
  X(COPY_DENSE4, COPY, "clai_copy_dense4", "bbllll", 1)                           \
  X(FILL_F32, COPY, "clai_fill_f32", "bxf", 1)                                    \
  X(FILL_F16, COPY, "clai_fill_f16", "bxf", 1)                                    \
  X(FILL_I32, COPY, "clai_fill_i32", "bxi", 1)                                    \
  X(BINARY_F32, ELEMENTWISE, "clai_binary_f32", "bbbxi", 1)                       \
  X(BINARY_F16, ELEMENTWISE, "clai_binary_f16", "bbbxi", 1)                       \
  X(BINARY_I32, ELEMENTWISE, "clai_binary_i32", "bbbxi", 1)                       \
  X(BINARY_CONTIG_F32, ELEMENTWISE, "clai_binary_contig_f32", "bbblllli", 1)      \
  X(BINARY_ROWS_F32, ELEMENTWISE, "clai_binary_rows_f32", "bbblllllllliii", 1)    \
  X(UNARY_F32, ELEMENTWISE, "clai_unary_f32", "bbxiff", 1)                        \
  X(UNARY_F16, ELEMENTWISE, "clai_unary_f16", "bbxiff", 1)                        \
  X(UNARY_I32, ELEMENTWISE, "clai_unary_i32", "bbxiff", 1)                        \
  X(UNARY_CONTIG_F32, ELEMENTWISE, "clai_unary_contig_f32", "bblllliff", 1)       \
  X(UNARY_ROWS_F32, ELEMENTWISE, "clai_unary_rows_f32", "bblllliff", 1)            \
  X(GEMM_F32_F32, MATMUL, "clai_gemm_f32_f32", "bbbxiiillllllff", 3)                     \
  X(GEMM_F32_F16, MATMUL, "clai_gemm_f32_f16", "bbbxiiillllllff", 3)                     \
  X(GEMM_F16_F32, MATMUL, "clai_gemm_f16_f32", "bbbxiiillllllff", 3)                     \
  X(GEMM_F16_F16, MATMUL, "clai_gemm_f16_f16", "bbbxiiillllllff", 3)            \
  X(PACK_AB, MATMUL_PACKED, "clai_pack_ab", "bbbbxiiiiillll", 3)                  \
  X(GEMM_PACKED, MATMUL_PACKED, "clai_gemm_packed", "bbbxiiiiillff", 3)          \
  X(GEMM_APACKED, MATMUL_PACKED, "clai_gemm_apacked", "bbbxiiiillllff", 3)  \
  X(REDUCE_ROWS, REDUCE, "clai_reduce_rows", "bbbxllliiiii", 1)                    \
  X(REDUCE_COLS, REDUCE, "clai_reduce_cols", "bbbxllliiii", 1)                    \
  X(REDUCE_MERGE, REDUCE, "clai_reduce_merge", "bbxlliiii", 1)                     \
  X(SOFTMAX, NORM, "clai_softmax", "bbxllllfiii", 1)                               \
  X(LAYERNORM, NORM, "clai_layernorm", "bbbbbbxlllllllllfii", 1)

enum clai__kernel_id {
#define CLAI__K_ENUM_(id, prog, name, sig, dims) CLAI__K_##id,
  CLAI__KERNELS(CLAI__K_ENUM_)
#undef CLAI__K_ENUM_
  CLAI__K_COUNT
};

/* Index metadata passed by value to strided kernels. All fields are 64-bit so host and device agree on
 * the layout without padding (OpenCL 1.2 section 6.9.k: struct arguments must match the host layout).
 * Dims are ordered outermost first; up to three operands (0 = output, 1 and 2 = inputs). Unused entries
 * are 0. `ndim` may be 0 for a scalar; `numel` is the product of shape. */
#define CLAI__IDX_OPS 3
typedef struct clai__index {
  cl_long ndim;
  cl_long numel;
  cl_long shape[CLAI_MAX_DIMS];
  cl_long stride[CLAI__IDX_OPS][CLAI_MAX_DIMS];
  cl_long offset[CLAI__IDX_OPS];
} clai__index;

/* The device facts that kernel specialisation depends on (so build options are a pure function of it). */
typedef struct clai__devcaps {
  int is_cpu;           /* CL_DEVICE_TYPE_CPU */
  int has_fp16;         /* cl_khr_fp16 */
  size_t max_wg_size;   /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
  uint64_t local_mem;   /* CL_DEVICE_LOCAL_MEM_SIZE */
  uint64_t max_alloc;   /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
  uint64_t global_mem;  /* CL_DEVICE_GLOBAL_MEM_SIZE */
  uint32_t mem_align;   /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes */
} clai__devcaps;

/* Work-group shape and tile parameters of the matmul kernels for a device (op-matmul.c). */
typedef struct clai__gemm_config {
  /* the generic register-tile kernels (cl/matmul.cl): any dtype, any strides, every device */
  int rm;     /* rows of C per work-item */
  int vw;     /* columns of C per work-item (vector width) */
  int kb;     /* k-block between barriers */
  int lx, ly; /* local size: lx along rows, ly along columns */
  /* the packed f32 kernels (cl/matmul_packed.cl), built on CPU devices only (packed = 0 elsewhere) */
  int packed;
  int p_rm, p_vw, p_kb, p_uk, p_pk; /* tile rows, tile columns, k-block, k-unroll, k per packing item */
  int p_lx, p_ly;                   /* local size of the compute kernel */
  int p_skinny;                     /* M up to this uses the skinny kernel (A packed, B read directly) */
  int p_pack_lx;                    /* local size (along k) of the packing kernel */
} clai__gemm_config;

/* ---- the memory pool (pool.c) -------------------------------------------------------------------------- */
typedef struct clai__buffer {
  cl_mem mem;
  uint64_t bytes;               /* capacity (the size class) */
  uint64_t size;                /* bytes asked for by the tensor it was allocated for: views stay inside */
  int cls;                      /* size class, -1: not pooled (released when free) */
  int refs;                     /* views using it */
  struct clai__buffer *next;    /* free list link */
} clai__buffer;

#define CLAI__POOL_CLASSES 256
typedef struct clai__pool {
  clai__buffer *free_list[CLAI__POOL_CLASSES];
  uint64_t limit;               /* most bytes kept cached */
  uint64_t bytes_in_use, bytes_cached, bytes_peak;
  uint64_t device_allocs, device_frees, hits;
} clai__pool;

/* ---- tensors (tensor.c) -------------------------------------------------------------------------------- */
struct clai_tensor {
  clai_context *ctx;
  clai__buffer *buf;
  clai_dtype dtype;
  int ndim;
  int64_t shape[CLAI_MAX_DIMS];
  int64_t strides[CLAI_MAX_DIMS]; /* in elements */
  int64_t offset;                 /* in elements */
  struct clai_tensor *prev, *next; /* the context's list of live tensors */
};

/* ---- the context (context.c) -------------------------------------------------------------------------- */
struct clai_context {
  cl_platform_id platform;
  cl_device_id device;
  cl_context cl;
  cl_command_queue queue;
  clai__devcaps caps;
  clai__gemm_config gemm;
  size_t local_1d;              /* work-group size of 1-D kernels */

  clai_device_info *devices;    /* every device seen, ranked */
  int ndevices;
  int chosen;                   /* index into devices */

  cl_program programs[CLAI__P_COUNT];
  cl_kernel kernels[CLAI__K_COUNT];
  size_t klocal[CLAI__K_COUNT][3]; /* work-group size of each kernel, fixed at init (see program.c) */

  char *cache_dir;              /* NULL: cache off */
  clai__pool pool;
  clai_context_stats stats;
  clai_tensor *tensors;         /* live tensors */

  char *errmsg;
  size_t errcap;
};

/* ---- errors (status.c) ---------------------------------------------------------------------------------
 * clai__error() records a message on ctx and returns status, so a check reads
 *   if (bad) return clai__error(ctx, CLAI_E_SHAPE, "clai_matmul: ...", ...);
 * clai__cl_error() also appends the OpenCL error's name. ctx may be NULL (nothing is recorded). */
clai_status clai__error(clai_context *ctx, clai_status status, const char *fmt, ...) CLAI__PRINTF(3, 4);
clai_status clai__cl_error(clai_context *ctx, cl_int err, const char *fmt, ...) CLAI__PRINTF(3, 4);
void clai__clear_error(clai_context *ctx);
const char *clai__cl_errname(cl_int err);
/* Maps an OpenCL error to a status: allocation failures to CLAI_E_OUT_OF_MEMORY, the rest to E_OPENCL. */
clai_status clai__cl_status(cl_int err);

/* ---- small utilities (util.c) ------------------------------------------------------------------------- */
uint64_t clai__hash64(const void *data, size_t len, uint64_t seed);
double clai__now(void);
/* a * b and a + b for non-negative sizes; return 0 and leave *out unchanged on overflow. */
int clai__mul_ok(uint64_t a, uint64_t b, uint64_t *out);
int clai__add_ok(uint64_t a, uint64_t b, uint64_t *out);
/* Case-insensitive substring search. */
int clai__contains_ci(const char *haystack, const char *needle);
/* snprintf that appends to buf (of capacity cap) at *len, truncating safely. */
void clai__appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...) CLAI__PRINTF(4, 5);

/* ---- devices (device.c) -------------------------------------------------------------------------------- */
typedef struct clai__candidate {
  cl_platform_id platform;
  cl_device_id device;
} clai__candidate;

/* Enumerates and ranks every device. On success *infos and *cands are malloc'd arrays of *n entries (n may
 * be 0). On failure returns a status with a message in errbuf. */
clai_status clai__devices_enumerate(clai_device_info **infos, clai__candidate **cands, int *n, char *errbuf,
                                    size_t errsize);
/* Index of the devices that `spec` selects, in rank order, into `order` (capacity n); returns the count,
 * or -1 if spec is not understood. spec NULL or "" selects all. */
int clai__devices_match(const clai_device_info *infos, int n, const char *spec, int *order);
void clai__devcaps_query(cl_device_id dev, clai__devcaps *caps);

/* ---- programs and the binary cache (program.c, cache.c) ------------------------------------------------ */
/* Builds (or loads from the cache) every program and creates every kernel for ctx's device. */
clai_status clai__programs_init(clai_context *ctx);
void clai__programs_free(clai_context *ctx);
/* The build options of program `prog` for a device with `caps` (pure: used by the SPIR test too). */
void clai__program_options(int prog, const clai__devcaps *caps, const clai__gemm_config *gemm, char *buf,
                           size_t cap);
/* Builds `source` for ctx's device. On failure *out is NULL and the status is CLAI_E_BUILD with the
 * compiler's build log in the message (or another status for an OpenCL failure). `what` names the source. */
clai_status clai__program_build(clai_context *ctx, const char *source, const char *options, const char *what,
                                cl_program *out);
/* The embedded source of a program (common prelude + file), malloc'd; NULL on allocation failure. */
char *clai__program_source(int prog);
const char *clai__program_stem(int prog);

/* The cache directory from params and environment (malloc'd), or NULL when the cache is off. */
char *clai__cache_dir_resolve(const clai_context_params *params);
/* Reads the entry for `key` (NUL-terminated key text) from dir. On success *data is malloc'd. Returns 1 if
 * found and valid, 0 if absent, -1 if present but rejected (truncated, corrupt, foreign). */
int clai__cache_load(const char *dir, const char *key, unsigned char **data, size_t *len);
/* Writes the entry atomically (temporary file + rename). Returns 0 on success, -1 on failure. */
int clai__cache_store(const char *dir, const char *key, const unsigned char *data, size_t len);
/* The file name used for key inside dir (malloc'd), for tests that damage entries. */
char *clai__cache_path(const char *dir, const char *key);

/* ---- pool (pool.c) -------------------------------------------------------------------------------------- */
void clai__pool_init(clai__pool *pool, uint64_t limit);
/* Returns a buffer of at least `bytes` with refs = 1, or NULL with a message on ctx (*status set). */
clai__buffer *clai__pool_alloc(clai_context *ctx, uint64_t bytes, clai_status *status);
/* Drops one reference; at zero the buffer is cached (or released beyond the cap). */
void clai__pool_release(clai_context *ctx, clai__buffer *buf);
void clai__pool_trim(clai__pool *pool);
void clai__pool_stats(const clai__pool *pool, clai_context_stats *stats);

/* ---- tensors (tensor.c) --------------------------------------------------------------------------------- */
/* Checks that t is a live-looking tensor of ctx; records a message naming `fn` and `what` otherwise. */
clai_status clai__check_tensor(clai_context *ctx, const clai_tensor *t, const char *fn, const char *what);
/* Fills idx with dst's shape and the strides/offsets of up to three operands already broadcast to that
 * shape (ops[0] is the output). Adjacent dims that are contiguous in every operand are merged. */
void clai__index_build(clai__index *idx, int nops, const clai_tensor *const *ops);
/* NumPy broadcast of `src` against `shape`: strides of src aligned to shape (0 where broadcast) into
 * `strides`. Returns 0 if src cannot be broadcast to shape. */
int clai__broadcast_strides(const clai_tensor *src, int ndim, const int64_t *shape, int64_t *strides);
/* A shape to text for messages, e.g. "[2, 3, 4]". Returns buf. */
const char *clai__shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);
/* Element range [lo, hi] a view addresses, in elements of its buffer; 0 if it addresses nothing. */
int clai__tensor_extent(const clai_tensor *t, int64_t *lo, int64_t *hi);
/* 1 if the element ranges of a and b share buffer and overlap. */
int clai__tensors_overlap(const clai_tensor *a, const clai_tensor *b);

/* ---- launching kernels ---------------------------------------------------------------------------------
 * Sets the arguments given as (size, pointer) pairs, rounds global up to the kernel's local size and
 * enqueues it. `global` has the kernel's work dims. Returns a status with a message on failure. */
clai_status clai__launch(clai_context *ctx, int kernel, const size_t *global, int nargs, ...);
#define CLAI__ARG(v) sizeof(v), (const void *)&(v)

/* ---- op helpers shared by the op files ----------------------------------------------------------------- */
clai_status clai__copy(clai_context *ctx, clai_tensor *dst, const clai_tensor *src, const char *fn);
void clai__gemm_config_default(const clai__devcaps *caps, clai__gemm_config *cfg);

#endif /* CLAI_INTERNAL_H */
