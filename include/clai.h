/* clai.h - libclai, a portable OpenCL compute runtime for tensors.
 *
 * libclai runs matrix products and tensor operations on the best OpenCL device of the machine (a GPU of any
 * vendor) and falls back to POCL on the CPU. Everything hangs off a context: the chosen device, its command
 * queue, the kernels built for it, a caching pool of device memory and the message of the last error.
 *
 * Conventions that hold for every function below:
 * - A function that can fail returns a clai_status: CLAI_OK (0) on success, a negative value on failure.
 *   The detail of the last failure (which argument, which shape, the compiler's build log, the raw OpenCL
 *   error) is in clai_errmsg(ctx) until the next call on that context. A failed call leaves the context
 *   usable and, unless its comment says otherwise, changes nothing.
 * - Ops are asynchronous: they check their arguments, enqueue their work on the context's single in-order
 *   queue and return. clai_tensor_read() waits for the work that writes the tensor; clai_sync() waits for all.
 * - Outputs are tensors the caller created; the output of an elementwise op may alias one of its inputs.
 *   Every output (and clai_tensor_write's tensor) may be a view at any offset of its buffer, and, unless its
 *   comment asks for a dense one, with any strides: only the elements of the view are written, the rest of
 *   the buffer is left as it was. An output that has several elements on one address (a stride of 0 on a
 *   dimension of size above 1, as clai_tensor_expand makes) is rejected with CLAI_E_INVALID_ARG by every
 *   op, since its elements would be written more than once; an empty one (0 elements) is accepted. Other
 *   self-overlapping strides are not detected, and an op writing such a view gives undefined values.
 * - A context must be used by one thread at a time. Different contexts share nothing and may be used from
 *   different threads at once; they may also be created at once, from several threads, even the first ones
 *   of the process. The only thing contexts have in common is the list of platforms and devices, which is
 *   discovered once per process (at the first clai_context_init that finds a device) and never changes
 *   afterwards: a device that appears later is seen by the next process, not by this one.
 * - Freeing NULL is a no-op.
 * - Special values: arithmetic is IEEE 754 single precision (f16 is storage only, computed in f32), so NaN
 *   in gives NaN out, inf - inf and 0 * inf give NaN and overflow gives inf, and every op gives what PyTorch
 *   gives in float32 unless its comment below says otherwise (the comments state the NaN rule wherever it
 *   is not plain arithmetic: fmax-style ops that pass over NaN, max/argmax, softmax's empty rows, ReLU's
 *   backward). Denormal (subnormal) f32 values are kept on devices that support them (POCL on CPUs does)
 *   and may be flushed to zero on devices that do not (CL_DEVICE_SINGLE_FP_CONFIG without CL_FP_DENORM);
 *   the optimizers' state is flushed everywhere (see clai_optim_sgd).
 *   Storing to f16 rounds values beyond 65504 to inf.
 */
#ifndef CLAI_H
#define CLAI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CLAI_BUILDING) && defined(__GNUC__)
#define CLAI_API __attribute__((visibility("default")))
#else
#define CLAI_API
#endif

#define CLAI_VERSION_MAJOR 0
#define CLAI_VERSION_MINOR 1
#define CLAI_VERSION_PATCH 0

/* The largest number of dimensions a tensor may have. */
#define CLAI_MAX_DIMS 8

/* ---------------------------------------------------------------------------------------------------------
 * Status codes. One table gives the value, the name and the text, so clai_status_name() and clai_strerror()
 * can never drift apart.
 */
#define CLAI_STATUS_MAP(X)                                                                                   \
  X(OK, 0, "success")                                                                                        \
  X(E_INVALID_ARG, -1, "invalid argument")                                                                   \
  X(E_SHAPE, -2, "shape mismatch")                                                                           \
  X(E_DTYPE, -3, "unsupported or mismatched data type")                                                      \
  X(E_OVERFLOW, -4, "size overflows")                                                                        \
  X(E_CONTEXT, -5, "tensor belongs to another context")                                                      \
  X(E_BUFFER_TOO_SMALL, -6, "host buffer too small")                                                         \
  X(E_OUT_OF_MEMORY, -7, "out of device or host memory")                                                     \
  X(E_NO_DEVICE, -8, "no usable OpenCL device")                                                              \
  X(E_DEVICE_NOT_FOUND, -9, "requested device not found")                                                    \
  X(E_BUILD, -10, "kernel build failed")                                                                     \
  X(E_OPENCL, -11, "OpenCL call failed")                                                                     \
  X(E_NOT_CONTIGUOUS, -12, "operation needs a contiguous layout")                                            \
  X(E_UNSUPPORTED, -13, "operation not supported")                                                          \
  X(E_IO, -14, "file could not be opened or read")                                                           \
  X(E_FORMAT, -15, "malformed or unsupported file")                                                          \
  X(E_NOT_FOUND, -16, "no such key or tensor")

typedef enum clai_status {
#define CLAI_STATUS_ENUM_(name, value, text) CLAI_##name = value,
  CLAI_STATUS_MAP(CLAI_STATUS_ENUM_)
#undef CLAI_STATUS_ENUM_
} clai_status;

/* The name of a status ("CLAI_E_SHAPE"), or "CLAI_UNKNOWN" for a value that is not a status. Static string. */
CLAI_API const char *clai_status_name(clai_status status);

/* A short English description of a status. Static string; never NULL. */
CLAI_API const char *clai_strerror(clai_status status);

/* The version of the library that is linked, as "MAJOR.MINOR.PATCH". Static string. */
CLAI_API const char *clai_version(void);

/* ---------------------------------------------------------------------------------------------------------
 * Context and device choice.
 */
typedef struct clai_context clai_context;
typedef struct clai_tensor clai_tensor;

typedef enum clai_device_type {
  CLAI_DEVICE_OTHER = 0,
  CLAI_DEVICE_CPU = 1,
  CLAI_DEVICE_ACCELERATOR = 2,
  CLAI_DEVICE_INTEGRATED_GPU = 3,
  CLAI_DEVICE_DISCRETE_GPU = 4,
} clai_device_type;

/* Options for clai_context_init(). Zero (or a NULL pointer to the whole struct) means "the default" for
 * every field, so `clai_context_params p = {0};` is always valid. Where a field is zero the matching
 * environment variable is used (see the README for the table). */
typedef struct clai_context_params {
  /* Which device to use: "gpu", "cpu", a decimal index into the ranked list, or a case-insensitive
   * substring of "platform name / device name". NULL: $CLAI_DEVICE, else the best device. */
  const char *device;
  /* Directory of the on-disk kernel cache. NULL: $CLAI_CACHE_DIR, else $XDG_CACHE_HOME/clai, else
   * ~/.cache/clai. */
  const char *cache_dir;
  /* 0: cache on unless $CLAI_CACHE is "0"; 1: on; -1: off. */
  int cache;
  /* The most bytes of free device memory the pool keeps for reuse. 0: $CLAI_POOL_LIMIT, else a quarter of
   * the device's global memory. */
  uint64_t pool_limit;
  /* When kernel programs are built (or loaded from the cache). 0: $CLAI_EAGER, else lazily: at init only
   * the copy kernels (which prove that the device compiles and runs kernels), and each op family's program
   * when an op first needs it, so an application pays only for the families it uses. 1: every program at
   * init, so no op ever waits for a program build and a device that fails any build is passed over for the
   * next. -1: lazily, whatever the environment says. -2: lazily, the copy kernels too: nothing is built at
   * init, so the device is not proven to run kernels (for a helper, see clai_context_share_builds). On an
   * implementation that compiles each kernel's machine code at its first launch and keeps it in a cache
   * of its own (POCL's CPU devices), a program
   * build is the front end only: each kernel but the copy kernels is still compiled at its first launch
   * in each launch shape (POCL: per work-group size, and apart for grids of 65535 work-items or more along
   * a dimension), and later processes find it in that implementation's cache (see CLAI_CACHE_BINARIES in
   * the README). */
  int eager;
  /* Kernel profiling: 1 records the device time of every kernel launch (see clai_profile_get), -1 never,
   * 0: on when $CLAI_PROFILE is "1". It costs an event per launch; leave it off in production. */
  int profile;
  /* Check mode: 1 builds the kernels with argument information and checks every kernel's declared
   * arguments against what libclai passes, once when the kernel is created and at every launch (size,
   * buffer or value, count); a mismatch is an error naming the kernel, the argument and both types
   * (CLAI_E_BUILD at creation, CLAI_E_INVALID_ARG at a launch). -1 never, 0: on when $CLAI_CHECK_ARGS is
   * "1". For porting libclai to a new OpenCL implementation and for its tests (which always turn it on);
   * it costs a little per launch and a separate set of cached kernel binaries. */
  int check_args;
} clai_context_params;

/* Creates a context on the best device (or the one params/$CLAI_DEVICE asks for) and builds its kernels
 * (all of them, or the copy kernels only; see clai_context_params.eager). Devices are ranked discrete GPU >
 * integrated GPU > accelerator > CPU, ties by compute units times clock; a device on which a context, a
 * queue or a kernel cannot be created is passed over for the next.
 * On success *out is a new context that clai_context_free() releases. On failure *out is NULL and the
 * status tells why: CLAI_E_NO_DEVICE (no OpenCL device at all, or none usable), CLAI_E_DEVICE_NOT_FOUND
 * (an override that matches no device), CLAI_E_BUILD. Because there is no context to hold the message, the
 * detail of such a failure is written to errbuf (if not NULL) as a NUL-terminated string of at most
 * errbuf_size bytes. An op whose program is built later and fails to build returns CLAI_E_BUILD with the
 * compiler's log in clai_errmsg(). */
CLAI_API clai_status clai_context_init_ex(clai_context **out, const clai_context_params *params, char *errbuf,
                                          size_t errbuf_size);

/* clai_context_init_ex() without the error buffer. */
CLAI_API clai_status clai_context_init(clai_context **out, const clai_context_params *params);

/* Waits for all queued work, then releases every OpenCL object and every byte the context holds, including
 * the tensors still alive: after this call no tensor of the context may be used or freed. NULL: no-op. */
CLAI_API void clai_context_free(clai_context *ctx);

/* The message of the last failed call on ctx ("" if none). Valid until the next call on ctx. */
CLAI_API const char *clai_errmsg(const clai_context *ctx);

/* Waits until every op enqueued on ctx has finished. Returns CLAI_E_OPENCL if the device reports a failure. */
CLAI_API clai_status clai_sync(clai_context *ctx);

/* What libclai knows of one OpenCL device. Strings are NUL-terminated and truncated to fit. */
typedef struct clai_device_info {
  int index;                /* position in the ranked list, 0 = best */
  clai_device_type type;
  char platform[128];       /* platform name */
  char name[128];           /* device name */
  char vendor[128];
  char device_version[128]; /* CL_DEVICE_VERSION */
  char driver_version[128];
  char opencl_c_version[64];
  uint64_t global_mem_bytes;
  uint64_t max_alloc_bytes;
  uint32_t compute_units;
  uint32_t clock_mhz;
  int has_fp16;             /* cl_khr_fp16 reported */
  int chosen;               /* the context runs on this device */
  int fallback;             /* chosen, and a CPU device or taken after better-ranked devices failed */
  char note[256];           /* why the device was chosen or passed over */
} clai_device_info;

/* The number of OpenCL devices the context saw when it chose (every platform, every device). */
CLAI_API int clai_context_device_count(const clai_context *ctx);

/* Fills *info for the i-th device in ranked order; i = -1 means the chosen device. */
CLAI_API clai_status clai_context_device_info(const clai_context *ctx, int i, clai_device_info *info);

/* Counters of the context, for reports and tests. */
typedef struct clai_context_stats {
  /* Kernel programs. */
  uint32_t programs;          /* programs the context holds (built or loaded so far) */
  uint32_t programs_built;    /* of those, built from source */
  uint32_t programs_cached;   /* of those, loaded from the on-disk cache */
  uint32_t cache_writes;      /* entries written to the cache */
  uint32_t cache_rejected;    /* entries found but rejected (truncated, corrupt, foreign, refused) */
  double init_seconds;        /* wall time of clai_context_init */
  double build_seconds;       /* wall time spent so far building or loading kernel programs, at init and on
                                 first use: the sum of clai_program_info.build_seconds */
  /* The memory pool. */
  uint64_t bytes_in_use;      /* device bytes held by live tensors */
  uint64_t bytes_cached;      /* device bytes kept for reuse */
  uint64_t bytes_peak;        /* largest bytes_in_use + bytes_cached seen */
  uint64_t device_allocs;     /* clCreateBuffer calls */
  uint64_t device_frees;      /* clReleaseMemObject calls on pooled buffers */
  uint64_t pool_hits;         /* allocations served from the pool */
} clai_context_stats;

CLAI_API clai_status clai_context_stats_get(const clai_context *ctx, clai_context_stats *stats);

/* One kernel program of a context (the kernels of one cl/<name>.cl file; "core" holds the small op families
 * most applications use together: cl/elementwise.cl, layout.cl, loss.cl, backward.cl, optim.cl and
 * random.cl) and what it has cost so far. */
typedef struct clai_program_info {
  char name[32];        /* the file's stem, e.g. "matmul_packed", or "core" */
  int state;            /* 0: not built (a lazy context builds it on first use; a matmul program of another
                           family is never built), 1: built from source, 2: loaded from libclai's cache */
  double build_seconds; /* wall time spent on it: building or loading it, the warm-up launch and cache write
                           after a build, and the first launch of each of its kernels in each launch
                           shape (where the implementation compiles a kernel's code at its first launch,
                           as POCL does) */
} clai_program_info;

/* The number of kernel programs libclai has (the same for every context); 0 when ctx is NULL. */
CLAI_API int clai_context_program_count(const clai_context *ctx);

/* Fills *info for program i, 0 <= i < clai_context_program_count(ctx). Returns CLAI_E_INVALID_ARG, with a
 * message naming the argument, when ctx or info is NULL or i is out of range; *info is then unchanged. */
CLAI_API clai_status clai_context_program_info(const clai_context *ctx, int i, clai_program_info *info);

/* ---- compiling once for several processes ----------------------------------------------------------
 * A cold start compiles every kernel an application launches, one after another: POCL compiles one
 * kernel at a time per process whatever the cores, so a thread that builds ahead only waits for the same
 * lock. Processes do not share that lock. Contexts in several processes that call this with the same
 * directory (which must exist; a fresh one per run, e.g. from mkdtemp) compile each program and each
 * kernel launch shape once between them, each in whichever process gets there first, and find the others'
 * work in the caches (libclai's and the implementation's own) instead of compiling it again.
 *   CLAI_SHARE_LEAD: the context computes as usual; where another process is compiling what it needs, it
 *     waits for that (counted as build time; at most 300 s, then it compiles alone) instead of compiling
 *     it a second time.
 *   CLAI_SHARE_HELP: the context only compiles. Its ops check their arguments, build their programs and
 *     compile the kernels they would launch, skipping what another process is already compiling, and
 *     launch nothing: what they write is unspecified (clai_tensor_write and _read still move data). A helper
 *     that runs an application's first steps ahead of it, on data of the same shapes, compiles beside it
 *     on another core (examples/build-helper starts one; the trainer and `clai generate` use it). Ops that
 *     plan on the host from their inputs' values (clai_scatter_rows_add's indices) may fail on a helper's
 *     unspecified data: a helper should carry on past a failed op.
 * dir NULL stops sharing. A process that dies while compiling leaves its claim to whoever comes next (the
 * claims are flock() locks on files in dir). Contexts in one process may share too (the claims are per
 * open file), which only makes sense for tests. CLAI_E_UNSUPPORTED where the platform has no flock(). */
typedef enum clai_share_role { CLAI_SHARE_LEAD = 1, CLAI_SHARE_HELP = 2 } clai_share_role;
CLAI_API clai_status clai_context_share_builds(clai_context *ctx, const char *dir, clai_share_role role);

/* The cache directory in use, or NULL when the cache is off. Valid while ctx lives. */
CLAI_API const char *clai_context_cache_dir(const clai_context *ctx);

/* Releases every cached (unused) device buffer of the pool. */
CLAI_API void clai_context_trim(clai_context *ctx);

/* Where the device time goes, per OpenCL kernel, when the context was created with profiling on
 * (clai_context_params.profile or CLAI_PROFILE=1). Times are the device's own (CL_PROFILING_COMMAND_START
 * to _END), summed over every launch since the context started or since the last clai_profile_reset();
 * host-side work, transfers and CLBlast's kernels are not included. */
typedef struct clai_kernel_profile {
  const char *kernel; /* the kernel's name in cl/ (static storage) */
  uint64_t launches;
  double seconds;     /* device time summed over the launches */
} clai_kernel_profile;

/* Waits for the queue, then writes up to cap entries to out (may be NULL when cap is 0), the kernels
 * that ran, most device time first, and returns how many kernels ran (which may exceed cap). Returns -1
 * with clai_errmsg() set when profiling is off or the device does not report times. */
CLAI_API int clai_profile_get(clai_context *ctx, clai_kernel_profile *out, int cap);

/* Forgets the times recorded so far (after waiting for the queue). */
CLAI_API void clai_profile_reset(clai_context *ctx);

/* ---------------------------------------------------------------------------------------------------------
 * Tensors. A tensor is a view (dtype, shape, strides in elements, offset in elements) of a reference-counted
 * device buffer. Views share the buffer and copy nothing; the buffer goes back to the pool when its last
 * view is freed. Host data given to clai_tensor_write() and taken from clai_tensor_read() is dense and in
 * row-major order of the tensor's shape, whatever the strides.
 */
typedef enum clai_dtype {
  CLAI_DTYPE_F32 = 0,
  CLAI_DTYPE_F16 = 1, /* IEEE half storage; computed in f32 */
  CLAI_DTYPE_I32 = 2,
  /* Quantized blocks, as GGUF stores them (little-endian): 32 consecutive values of the last dim per block.
   * Q8_0: f16 scale d, 32 int8 q; value = d * q (34 bytes). Q4_0: f16 d, 16 bytes of 4-bit q (value j of
   * the block in the low nibble of byte j for j < 16, in the high nibble of byte j - 16 otherwise); value =
   * d * (q - 8) (18 bytes). Q4_1: f16 d, f16 minimum m, 16 bytes of q as Q4_0; value = d * q + m (20 bytes).
   * A quantized tensor has at least one dim; its last dim is a multiple of 32 with stride 1; every other
   * stride and its offset are multiples of 32 (views select whole blocks: slices of rows, row ranges of the
   * last dim at block boundaries). clai_tensor_write() and clai_tensor_read() move the raw blocks (row-major
   * order of blocks); clai_copy() into an f32 or f16 tensor dequantizes, into the same quantized dtype copies
   * blocks; clai_matmul() and clai_gather_rows() read them directly. Other ops return CLAI_E_DTYPE.
   * The K-quant formats Q4_K and Q6_K (most of the weights of GGUF's Q4_K_M files) follow the same rules with
   * super-blocks of 256 values in place of 32: the last dim, the strides and the offset of a view are
   * multiples of 256, and a super-block is one storage unit of clai_dtype_size() bytes. A super-block is
   * eight sub-blocks of 32 consecutive values (sub-block j holds values 32 j to 32 j + 31). libclai does not
   * quantize into them (clai_copy() returns CLAI_E_UNSUPPORTED); they come from GGUF files or
   * clai_tensor_write().
   * Q4_K (144 bytes): f16 d at byte 0, f16 dmin at byte 2, 12 bytes s[0..11] holding a 6-bit scale sc_j and
   * a 6-bit minimum m_j per sub-block, then 128 bytes of 4-bit quants. For j < 4, sc_j is the low 6 bits of
   * s[j] and m_j those of s[j + 4]; for j >= 4, sc_j is the low nibble of s[j + 4] with the top 2 bits of
   * s[j - 4] above it, and m_j the high nibble of s[j + 4] with the top 2 bits of s[j] above it. Sub-blocks
   * 2g and 2g + 1 share the 32 quant bytes 32 g to 32 g + 31: value i of sub-block 2g is the low nibble of
   * quant byte 32 g + i, value i of sub-block 2g + 1 its high nibble. value = d * sc_j * q - dmin * m_j.
   * Q6_K (210 bytes): 128 bytes ql of low 4 bits, 64 bytes qh of high 2 bits, 16 int8 scales, f16 d at byte
   * 208. Each half h (values 128 h to 128 h + 127) uses ql[64 h .. 64 h + 63] and qh[32 h .. 32 h + 31]; its
   * value 32 r + i (r = 0..3, i = 0..31) takes 4 low bits from ql[64 h + 32 (r & 1) + i] (its low nibble for
   * r < 2, its high nibble otherwise) and 2 high bits from bits 2 r and 2 r + 1 of qh[32 h + i], making q in
   * 0..63. Value v of the super-block has scale number v / 16; value = d * scale * (q - 32). */
  CLAI_DTYPE_Q8_0 = 3,
  CLAI_DTYPE_Q4_0 = 4,
  CLAI_DTYPE_Q4_1 = 5,
  CLAI_DTYPE_Q4_K = 6,
  CLAI_DTYPE_Q6_K = 7,
} clai_dtype;

/* The size in bytes of one element of dtype; for a quantized dtype, of one block (see clai_dtype_block);
 * 0 if dtype is not a dtype. */
CLAI_API size_t clai_dtype_size(clai_dtype dtype);

/* The number of values one storage unit of dtype holds: 1 for f32, f16 and i32, 32 for Q8_0, Q4_0 and Q4_1,
 * 256 for Q4_K and Q6_K; 0 if dtype is not a dtype. n values of the last dim take n / clai_dtype_block(dtype) *
 * clai_dtype_size(dtype) bytes. */
CLAI_API int64_t clai_dtype_block(clai_dtype dtype);

/* "f32", "f16", "i32", "q8_0", "q4_0", "q4_1", "q4_k", "q6_k", or "?" */
CLAI_API const char *clai_dtype_name(clai_dtype dtype);

/* Creates a dense row-major tensor of the given dtype and shape (ndim from 0 to CLAI_MAX_DIMS; a 0-d
 * tensor is a scalar; a dimension may be 0). Its contents are undefined until written. The strides are
 * row-major with size-0 dims counted as 1; an empty shape whose other dims multiply past INT64_MAX (such as
 * [2^30, 0, 2^40]) is valid, and its strides from the first that would not fit in an int64_t outward are 0
 * (they address nothing). On failure *out is NULL: CLAI_E_INVALID_ARG / CLAI_E_OVERFLOW for a bad shape
 * (CLAI_E_OVERFLOW also when the element count overflows before a size-0 dim is reached, reading the dims
 * left to right), CLAI_E_OUT_OF_MEMORY when the device cannot hold it. */
CLAI_API clai_status clai_tensor_init(clai_context *ctx, clai_tensor **out, clai_dtype dtype, int ndim,
                                      const int64_t *shape);

/* Releases the tensor (the view); the buffer returns to the pool when no view uses it. NULL: no-op. */
CLAI_API void clai_tensor_free(clai_tensor *t);

/* Copies `bytes` bytes of dense host data into the tensor. bytes must equal numel * dtype size. Returns when
 * src may be reused. A broadcast view (a stride of 0 on a dim above 1) cannot be written: CLAI_E_INVALID_ARG. */
CLAI_API clai_status clai_tensor_write(clai_tensor *t, const void *src, size_t bytes);

/* Waits for the work that writes t, then copies its elements densely into dst, which holds dst_size bytes
 * (at least numel * dtype size, else CLAI_E_BUFFER_TOO_SMALL and nothing is written). */
CLAI_API clai_status clai_tensor_read(clai_tensor *t, void *dst, size_t dst_size);

/* Host access to a tensor's memory without a copy where the device shares host memory.
 *
 * clai_tensor_map() gives the host a pointer to the elements of a dense tensor (clai_tensor_is_contiguous,
 * any offset, any non-quantized dtype; a view of a bigger buffer maps only its own elements), in row-major
 * order. flags is CLAI_MAP_READ, CLAI_MAP_WRITE or both, optionally with CLAI_MAP_ASYNC:
 * - CLAI_MAP_READ: the memory holds the tensor's elements as every op enqueued before the call left them.
 * - CLAI_MAP_WRITE: what the host writes there is the tensor's content after clai_tensor_unmap(). Without
 *   CLAI_MAP_READ the memory's content is undefined when mapped (nothing is copied in), so every element
 *   must be written.
 * - CLAI_MAP_ASYNC: the call returns at once, *ptr already set, without waiting for the ops enqueued before
 *   it; the memory may be used only after clai_tensor_map_wait(). Ops enqueued between the two calls run
 *   meanwhile (on other memory: see below), which is how a reduction overlaps with a backward pass.
 * On a device that shares host memory (CL_DEVICE_HOST_UNIFIED_MEMORY: CPU devices, integrated GPUs, whose
 * tensors libclai allocates in host-accessible memory) the pointer is the tensor's own memory; elsewhere the
 * OpenCL driver stages a copy (in at map for reading, out at unmap for writing).
 * While a tensor is mapped, nothing may be enqueued that reads or writes any element of the buffer it views
 * (this tensor, any view of it and any tensor sharing its buffer: ops, clai_tensor_read/write, clai_copy):
 * OpenCL 1.2 (section 5.4.2.1) leaves the result undefined and libclai does not check it. Ops on tensors of
 * other buffers may be enqueued freely. A view that is not dense (strided, transposed, broadcast) fails with
 * CLAI_E_NOT_CONTIGUOUS; mapping a tensor twice, mapping a view that overlaps a mapped view of the same
 * buffer, flags without READ or WRITE, or a NULL ptr fail with CLAI_E_INVALID_ARG, a quantized tensor with
 * CLAI_E_DTYPE; on any failure *ptr is NULL and the tensor is not mapped. A tensor of 0 elements maps to NULL. A mapped tensor that is freed (or whose context is) is
 * unmapped first, its writes kept. */
enum { CLAI_MAP_READ = 1, CLAI_MAP_WRITE = 2, CLAI_MAP_ASYNC = 4 };
CLAI_API clai_status clai_tensor_map(clai_tensor *t, unsigned flags, void **ptr);

/* Waits until the memory of a mapping made with CLAI_MAP_ASYNC may be used (returns at once for a blocking
 * one). CLAI_E_INVALID_ARG if t is not mapped; CLAI_E_OPENCL if the device failed (t stays mapped). */
CLAI_API clai_status clai_tensor_map_wait(clai_tensor *t);

/* Ends the mapping of t: its pointer may no longer be used, the host's writes (CLAI_MAP_WRITE) reach the
 * tensor before any op enqueued after this call, and the buffer may be used by ops again. Does not wait.
 * CLAI_E_INVALID_ARG if t is not mapped (never mapped, or unmapped already). */
CLAI_API clai_status clai_tensor_unmap(clai_tensor *t);

/* Shape and layout queries. For an out-of-range dim, clai_tensor_dim() and clai_tensor_stride() return -1. */
CLAI_API clai_context *clai_tensor_context(const clai_tensor *t);
CLAI_API clai_dtype clai_tensor_dtype(const clai_tensor *t);
CLAI_API int clai_tensor_ndim(const clai_tensor *t);
CLAI_API int64_t clai_tensor_dim(const clai_tensor *t, int dim);
CLAI_API int64_t clai_tensor_stride(const clai_tensor *t, int dim);
CLAI_API int64_t clai_tensor_offset(const clai_tensor *t);
CLAI_API int64_t clai_tensor_numel(const clai_tensor *t);
/* 1 if the elements are dense in row-major order (a copy-free reshape is possible), else 0. */
CLAI_API int clai_tensor_is_contiguous(const clai_tensor *t);

/* A view with an explicit shape, strides (in elements, may be 0 for broadcasting, not negative) and offset
 * relative to t's own offset. Every element it can address must lie inside t's buffer. */
CLAI_API clai_status clai_tensor_view(clai_tensor *t, clai_tensor **out, int ndim, const int64_t *shape,
                                      const int64_t *strides, int64_t offset);

/* A view with dims d0 and d1 swapped (negative dims count from the end). */
CLAI_API clai_status clai_tensor_transpose(clai_tensor *t, clai_tensor **out, int d0, int d1);

/* A view with dims reordered: new dim i is old dim perm[i]; perm has ndim entries. */
CLAI_API clai_status clai_tensor_permute(clai_tensor *t, clai_tensor **out, const int *perm);

/* A view of elements start, start+step, ... (< stop) along dim. step >= 1; start and stop are clamped to
 * [0, size] like Python slices, negative values count from the end. */
CLAI_API clai_status clai_tensor_slice(clai_tensor *t, clai_tensor **out, int dim, int64_t start, int64_t stop,
                                       int64_t step);

/* A view with a new shape and the same number of elements; one entry may be -1 (inferred). Fails with
 * CLAI_E_NOT_CONTIGUOUS where the layout cannot be expressed as a view; clai_copy() into a new tensor first. */
CLAI_API clai_status clai_tensor_reshape(clai_tensor *t, clai_tensor **out, int ndim, const int64_t *shape);

/* A view of t broadcast to `shape` (NumPy rules: size-1 dims get stride 0, missing leading dims added). */
CLAI_API clai_status clai_tensor_expand(clai_tensor *t, clai_tensor **out, int ndim, const int64_t *shape);

/* ---------------------------------------------------------------------------------------------------------
 * Ops. All are asynchronous (see the top of this file).
 */

/* dst = src, elementwise, with conversion between any two dtypes (f32 -> i32 rounds toward zero). src is
 * broadcast to dst's shape. dst and src may be any views; dst must not overlap src except exactly.
 * A quantized src dequantizes into an f32 or f16 dst (its leading dims may broadcast, its last dim must
 * equal dst's), or copies blocks into a quantized dst of its dtype and shape. An f32 or f16 src quantizes
 * into a Q8_0 dst (leading dims may broadcast): per block d = max|x| / 127 (stored as half) and q = round(x / d),
 * halves away from zero, as llama.cpp quantizes activations; into Q4_0 and Q4_1 it is CLAI_E_UNSUPPORTED
 * (write such blocks with clai_tensor_write()). */
CLAI_API clai_status clai_copy(clai_context *ctx, clai_tensor *dst, const clai_tensor *src);

/* Every element of dst = value (converted to dst's dtype). dst may be any view but a broadcast one (see the
 * top of this file): CLAI_E_INVALID_ARG, as for every other output. */
CLAI_API clai_status clai_fill(clai_context *ctx, clai_tensor *dst, double value);

typedef enum clai_binary_op {
  CLAI_ADD = 0,
  CLAI_SUB = 1,
  CLAI_MUL = 2,
  CLAI_DIV = 3,     /* i32: truncates; division by zero gives 0 */
  CLAI_MAXIMUM = 4,
  CLAI_MINIMUM = 5,
} clai_binary_op;

/* out = a OP b with NumPy broadcasting of a and b to out's shape (out's shape must be the broadcast shape).
 * a, b and out have one dtype (f32, f16 or i32); f16 is computed in f32. out may alias a or b.
 * NaN: add, sub, mul and div follow IEEE (a NaN operand gives NaN, as in PyTorch). CLAI_MAXIMUM and
 * CLAI_MINIMUM are fmax / fmin: a NaN operand is passed over and the other returned, NaN only when both
 * are NaN. This is torch.fmax / torch.fmin, not torch.maximum / torch.minimum (which give NaN). */
CLAI_API clai_status clai_binary(clai_context *ctx, clai_binary_op op, clai_tensor *out, const clai_tensor *a,
                                 const clai_tensor *b);

typedef enum clai_unary_op {
  CLAI_NEG = 0,
  CLAI_ABS = 1,
  CLAI_EXP = 2,
  CLAI_LOG = 3,
  CLAI_SQRT = 4,
  CLAI_RELU = 5,
  CLAI_GELU = 6,    /* tanh approximation: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))) */
  CLAI_SILU = 7,    /* x * sigmoid(x) */
  CLAI_SIGMOID = 8,
  CLAI_TANH = 9,
} clai_unary_op;

/* out = OP(x), same shape and dtype (f32 or f16; i32 for NEG, ABS and RELU). out may alias x.
 * Every op maps NaN to NaN, ReLU included (relu(x) = x < 0 ? 0 : x; a NaN pre-activation is not hidden
 * as 0), as PyTorch does. Infinities follow the formulas, as in PyTorch: exp(-inf) = 0, log(0) = -inf,
 * log and sqrt of a negative number NaN, sigmoid(-inf) = 0, tanh(+-inf) = +-1, gelu(inf) = silu(inf) =
 * inf, and gelu(-inf) = silu(-inf) = NaN (-inf times a weight of 0). */
CLAI_API clai_status clai_unary(clai_context *ctx, clai_unary_op op, clai_tensor *out, const clai_tensor *x);

/* Gated linear unit: with x's last dim split into halves a = x[..., :n] and b = x[..., n:],
 * out = OP(a) * b, elementwise: SwiGLU (a Llama block's feed-forward) with CLAI_SILU, GeGLU with CLAI_GELU,
 * the original GLU with CLAI_SIGMOID (any clai_unary_op). x is [..., 2n], out [..., n] of x's dtype (f32 or
 * f16, computed in f32), any views; out must not overlap x. NaN and infinities follow OP and the product. */
CLAI_API clai_status clai_glu(clai_context *ctx, clai_unary_op op, clai_tensor *out, const clai_tensor *x);

/* out = alpha * x + beta, elementwise (clai_scale is beta = 0, clai_add_scalar is alpha = 1). f32 or f16. */
CLAI_API clai_status clai_affine(clai_context *ctx, clai_tensor *out, const clai_tensor *x, float alpha,
                                 float beta);
CLAI_API clai_status clai_scale(clai_context *ctx, clai_tensor *out, const clai_tensor *x, float alpha);
CLAI_API clai_status clai_add_scalar(clai_context *ctx, clai_tensor *out, const clai_tensor *x, float beta);

/* C = alpha * op(A) * op(B) + beta * C, where op(X) is X or X transposed (its last two dims swapped).
 * A is [..., M, K] after op, B [..., K, N], C [..., M, N]; the leading (batch) dims of A and B broadcast
 * to C's. A and B are both f32 or both f16; C is f32 or f16; accumulation is in f32. Any strided views are
 * accepted. C must not overlap A or B. When beta is 0, C is not read (NaNs in C do not propagate).
 * Quantized weights: one of A and B may be quantized (Q8_0, Q4_0, Q4_1) when it is stored with K as its
 * last dim, as GGUF stores a weight matrix [out, in]: B [..., N, K] with trans_b = 1 (y = x W^T), or A
 * [..., M, K] with trans_a = 0; the other operand is f32 or f16 (CLAI_E_UNSUPPORTED for the other
 * transposes). The activations may be quantized too: A Q8_0 [..., M, K] (trans_a = 0, see clai_copy) times
 * a quantized B [..., N, K] (trans_b = 1), as llama.cpp's CPU backend multiplies them; other pairs of
 * quantized operands are CLAI_E_UNSUPPORTED. Up to M = 16 (N for a quantized A) one kernel reads each weight
 * block once (a language model's decode step); above, the operands are dequantized (the weights in chunks
 * of at most 64 MiB) into the device's own f32 GEMM. Either way the result is the f32 product of the
 * dequantized operands, to float rounding. */
CLAI_API clai_status clai_matmul(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a,
                                 const clai_tensor *b, int trans_b, float alpha, float beta);

/* Activations that clai_matmul_ex (and the ops that build on it) can apply in the same kernel. GELU is the
 * tanh approximation, as CLAI_GELU. Each is the clai_unary op of the same name, NaN rule included (ReLU
 * passes NaN through). */
typedef enum clai_activation {
  CLAI_ACT_NONE = 0,
  CLAI_ACT_RELU = 1,
  CLAI_ACT_GELU = 2,
  CLAI_ACT_SILU = 3,
} clai_activation;

/* What clai_matmul_ex does to the product before it is stored. All zero: nothing. */
typedef struct clai_matmul_epilogue {
  /* NULL, or an f32 or f16 tensor of at most 2 dims that broadcasts to [M, N]: [N] (one value per column,
   * a dense layer's bias), [M, 1] (one per row, a convolution's bias) or [M, N]. It is the same for every
   * batch entry and must not overlap C. */
  const clai_tensor *bias;
  clai_activation act;
} clai_matmul_epilogue;

/* C = act(alpha * op(A) * op(B) + beta * C + bias), with everything as for clai_matmul() and the epilogue
 * (ep may be NULL) applied in the same kernel, so a dense layer is one launch. */
CLAI_API clai_status clai_matmul_ex(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a,
                                    const clai_tensor *b, int trans_b, float alpha, float beta,
                                    const clai_matmul_epilogue *ep);

/* How clai_matmul_pro rounds the activations, as llama.cpp's CPU backend rounds what it multiplies quantized
 * weights with. CLAI_ROUND_Q8_0: blocks of 32 along K, d = max|x| / 127 rounded to half, q = round(x / d)
 * (halves away from zero), x' = q d: the values clai_copy into a Q8_0 tensor stores (llama.cpp's Q8_0 and
 * Q8_1, for Q8_0, Q4_0 and Q4_1 weights); a NaN becomes 0 there, as in a Q8_0 tensor. CLAI_ROUND_Q8_K: blocks
 * of 256, s = -127 / m with m the block's value of largest magnitude (the first one; NaNs are passed over),
 * q = x s rounded to nearest even (at most 127), x' = q (1 / s), all in f32 (llama.cpp's Q8_K, for its
 * K-quant weights); a block of zeros stays zero, so does one whose largest magnitude is below 127 / FLT_MAX
 * (3.7e-37, where s overflows), a NaN stays NaN, an infinity makes its block NaN. */
typedef enum clai_rounding {
  CLAI_ROUND_NONE = 0,
  CLAI_ROUND_Q8_0 = 1,
  CLAI_ROUND_Q8_K = 2,
} clai_rounding;

/* What clai_matmul_pro does to A's rows before the product. All zero: nothing. The steps, in this order: */
typedef struct clai_matmul_prologue {
  /* GLU (nonzero glu): A's last dim is 2K and each row becomes glu_op(a[:K]) * a[K:], as clai_glu computes
   * it (CLAI_SILU: SwiGLU, CLAI_GELU: GeGLU). */
  int glu;
  clai_unary_op glu_op;
  /* RMS normalisation (non-NULL rms_weight, f32 or f16, 1-D of K values, any stride): each row x becomes
   * x * w / sqrt(mean(x^2) + rms_eps), as clai_rmsnorm; rms_eps >= 0 and finite. */
  const clai_tensor *rms_weight;
  float rms_eps;
  /* Rounding (see clai_rounding; K a multiple of its block). */
  clai_rounding round;
} clai_matmul_prologue;

/* C = act(alpha * P(A) * op(B) + beta * C + bias): clai_matmul_ex with A's rows first transformed by the
 * prologue pro (NULL: none) - the ops a transformer runs between two products (the feed-forward's SwiGLU, the
 * next block's RMSNorm, llama.cpp's activation rounding). A is f32 or f16, [..., M, K] ([..., M, 2K] with a
 * GLU), not transposed, and must not overlap C. On GPUs (CLAI_PROLOGUE=fused anywhere), with a quantized B
 * (trans_b = 1), M <= 4, an f32 A whose last dim has stride 1, M * K <= 4096 and K a multiple of 32 (a
 * language model's decode step) it is one kernel: each work-group computes P(A) in local memory and then
 * its columns of the product, so the prologue costs no launch and no pass over memory (on CPUs, where the
 * groups run one after another, repeating it per group costs what the launches save). Otherwise, and with
 * CLAI_PROLOGUE=separate, P(A) goes through a temporary (clai_glu, clai_rmsnorm, a rounding pass - for Q8_0
 * clai_copy into a Q8_0 tensor -, then clai_matmul_ex). Both give the same result to float rounding (the
 * fused kernel adds the sum of squares in another order than clai_rmsnorm, and its exp may differ from
 * clai_glu's in the last bit, so after rounding a value may land on the neighbouring quant); the rounding
 * alone gives the same bits either way. Errors as clai_matmul_ex, and CLAI_E_SHAPE / CLAI_E_DTYPE /
 * CLAI_E_INVALID_ARG naming the prologue's field (an odd GLU width, a weight of the wrong size, a negative
 * eps, an unknown rounding); CLAI_E_UNSUPPORTED for a quantized A. */
CLAI_API clai_status clai_matmul_pro(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                                     int trans_b, float alpha, float beta, const clai_matmul_prologue *pro,
                                     const clai_matmul_epilogue *ep);

/* Describes, as text in buf (at most cap bytes, NUL-terminated), the kernel family and parameters that
 * clai_matmul would run for these operands (for benchmarks and reports), after the same argument checks:
 * e.g. "packed rm=6 vw=16 cn=2 kb=256 uk=4 local=2x8" (a tile of rm rows and cn vectors of vw floats),
 * "packed skinny (A packed) rm=6 vw=16 ...", "gpu skinny ...", "generic ...", "clblast"; " (tuned)" is
 * appended when the parameters came from clai_tune(). */
CLAI_API clai_status clai_matmul_describe(clai_context *ctx, const clai_tensor *c, const clai_tensor *a, int trans_a,
                                          const clai_tensor *b, int trans_b, char *buf, size_t cap);

/* ---------------------------------------------------------------------------------------------------------
 * Tuning. clai_tune() searches the matmul kernel parameters of the context's device (and, when libclai is
 * built with CLBlast, which shape classes CLBlast runs faster), checks every candidate against a double-
 * precision reference on an awkward shape before timing it, and stores the winners in the context's cache
 * directory, keyed like the kernel binaries (libclai version, device, driver, platform). Contexts created
 * afterwards on that device use them; the calling context keeps its own. Tuned values change speed, never
 * results beyond float rounding. $CLAI_TUNE=0 makes contexts ignore stored values.
 */
typedef struct clai_tune_params {
  /* The [M, N, K] products to time; each candidate's score is the geometric mean of its GFLOP/s over them.
   * NULL: a built-in set for the device class (square 512 and 1024, 1000, a skinny 8 x 4096 x 4096). */
  const int64_t (*shapes)[3];
  int nshapes;
  /* Rounds of coordinate search over the parameter space (0: 2). Each round tries every value of one
   * parameter at a time, keeping the best. */
  int rounds;
  /* Called with one line of progress text per candidate (may be NULL). */
  void (*progress)(void *user, const char *line);
  void *user;
  /* The most candidates to build and time, the starting point included (0: no limit; 1: the current values
   * alone). The search stops there and stores the best so far: a bound on its time, as every candidate is a
   * kernel build, a check and a timing. */
  int max_candidates;
} clai_tune_params;

/* Runs the search (this takes a while: every candidate is a kernel build) and stores the result. params
 * may be NULL. On success, when report is not NULL, a summary of at most cap bytes is written to it.
 * Fails with CLAI_E_INVALID_ARG when the cache is off (nowhere to store), CLAI_E_BUILD or another status
 * when a candidate misbehaves (the message names it). The context's own kernels are restored either way. */
CLAI_API clai_status clai_tune(clai_context *ctx, const clai_tune_params *params, char *report, size_t cap);

/* ---------------------------------------------------------------------------------------------------------
 * Training: random numbers and initialisation, dropout, optimizer steps, gradient clipping, losses and
 * the backward of elementwise activations. All asynchronous like every op; nothing here reads back to the
 * host.
 *
 * Random numbers are counter based (Philox4x32-10): the value of element i (its row-major index in the
 * tensor's shape) is a pure function of (seed, offset, i), identical on every device, every run and every
 * work-group size, and a strided view gets what a dense tensor of its shape would. `seed` is the key of the
 * generator (fixed for a whole training run); `offset` selects an independent stream under that seed: two
 * calls with the same seed and offset produce the same numbers, so a training loop passes a fresh offset to
 * every call that must draw new numbers (e.g. a counter it increments after each call, or
 * step * calls_per_step + k). Streams of different offsets never share a Philox counter, whatever the tensor
 * sizes (a tensor may have up to 2^64 elements per stream).
 */

/* out = uniform random values in [lo, hi) (lo <= hi), f32 or f16 (rounded after drawing in f32, so an f16
 * value may equal hi). out may be any view except a broadcast one (a stride of 0 on a dim larger than 1). */
CLAI_API clai_status clai_rand_uniform(clai_context *ctx, clai_tensor *out, uint64_t seed, uint64_t offset,
                                       float lo, float hi);

/* out = normal random values with the given mean and standard deviation (std >= 0), by the Box-Muller
 * transform of pairs of Philox outputs. Same layouts as clai_rand_uniform. */
CLAI_API clai_status clai_rand_normal(clai_context *ctx, clai_tensor *out, uint64_t seed, uint64_t offset,
                                      float mean, float std);

/* The fans of a weight tensor as PyTorch computes them: w is [out, in] (linear) or [O, C/groups, k...]
 * (convolution, any number of kernel dims); receptive = the product of dims 2 and beyond (1 for a linear
 * weight); fan_in = shape[1] * receptive, fan_out = shape[0] * receptive. CLAI_E_SHAPE for fewer than 2
 * dims; CLAI_E_INVALID_ARG for NULL pointers. */
CLAI_API clai_status clai_init_fans(const clai_tensor *w, int64_t *fan_in, int64_t *fan_out);

/* Kaiming (He) initialisation of w (f32 or f16, at least 2 dims, fans > 0): std = gain / sqrt(fan) with
 * fan = fan_in, or fan_out when use_fan_out is non-zero; the uniform form draws from [-b, b) with
 * b = sqrt(3) * std, the normal form from N(0, std^2). gain 0 means sqrt(2), the gain for relu (PyTorch's
 * kaiming_*_ defaults, a = 0); for leaky relu with slope a pass sqrt(2 / (1 + a^2)), for linear or sigmoid
 * layers 1. PyTorch's default initialisation of nn.Linear and nn.Conv*d weights is the uniform form with
 * a = sqrt(5), i.e. gain sqrt(1/3) (bound 1 / sqrt(fan_in)). gain < 0 is CLAI_E_INVALID_ARG. */
CLAI_API clai_status clai_init_kaiming_uniform(clai_context *ctx, clai_tensor *w, uint64_t seed, uint64_t offset,
                                               float gain, int use_fan_out);
CLAI_API clai_status clai_init_kaiming_normal(clai_context *ctx, clai_tensor *w, uint64_t seed, uint64_t offset,
                                              float gain, int use_fan_out);

/* Xavier (Glorot) initialisation: std = gain * sqrt(2 / (fan_in + fan_out)); uniform on [-b, b) with
 * b = sqrt(3) * std = gain * sqrt(6 / (fan_in + fan_out)), or N(0, std^2). gain 0 means 1 (PyTorch's
 * default); pass sqrt(2) for relu, 5/3 for tanh. */
CLAI_API clai_status clai_init_xavier_uniform(clai_context *ctx, clai_tensor *w, uint64_t seed, uint64_t offset,
                                              float gain);
CLAI_API clai_status clai_init_xavier_normal(clai_context *ctx, clai_tensor *w, uint64_t seed, uint64_t offset,
                                             float gain);

/* Dropout: out = x * m with m = 1 / (1 - p) where the element is kept and 0 where it is dropped; element i
 * is kept when the uniform value of (seed, offset, i) is below 1 - p (0 <= p <= 1; p = 1 drops everything).
 * x, out (and mask) have one dtype, f32 or f16, and one shape; out may alias x element for element. mask,
 * if not NULL, receives m, so the backward is grad_x = grad_out * mask (clai_binary CLAI_MUL); without a
 * mask the backward is clai_dropout(ctx, grad_x, NULL, grad_out, p, seed, offset), which draws the same m.
 * mask must not overlap out or x. */
CLAI_API clai_status clai_dropout(clai_context *ctx, clai_tensor *out, clai_tensor *mask, const clai_tensor *x,
                                  float p, uint64_t seed, uint64_t offset);

/* Optimizer steps, one fused kernel launch per parameter tensor, following the definitions of torch.optim.
 * param and grad are f32 or f16 (the same dtype; f16 is updated in f32 and rounded back); the state tensors
 * are f32 tensors of param's shape that the caller creates, zeroes (clai_fill) before the first step and
 * keeps between steps. Momentum and exp_avg that fall below FLT_MIN in magnitude are stored as zeros of
 * their sign, and so is exp_avg_sq once exp_avg is 0 and eps > 0 (where a gradient stays 0 they decay into
 * the subnormal range, and arithmetic on subnormals is many times slower on CPUs; the parameter moves the
 * same to f32 precision). All must be dense (clai_tensor_is_contiguous, else CLAI_E_NOT_CONTIGUOUS) and
 * must not overlap each other. `step` counts the steps taken with this state, from 1. A bad hyper-parameter
 * is CLAI_E_INVALID_ARG, a shape that differs from param's CLAI_E_SHAPE, a wrong dtype CLAI_E_DTYPE. */
typedef struct clai_sgd_params {
  float lr;           /* >= 0 */
  float momentum;     /* >= 0; 0: no momentum buffer (momentum_buf may be NULL) */
  float dampening;
  float weight_decay; /* >= 0, coupled: grad + weight_decay * param */
  int nesterov;       /* needs momentum > 0 and dampening 0 */
} clai_sgd_params;

/* SGD: g = grad + wd * param; with momentum: buf = g at step 1, else momentum * buf + (1 - dampening) * g,
 * and g = g + momentum * buf (nesterov) or buf; then param -= lr * g. */
CLAI_API clai_status clai_optim_sgd(clai_context *ctx, clai_tensor *param, clai_tensor *momentum_buf,
                                    const clai_tensor *grad, int64_t step, const clai_sgd_params *params);

typedef struct clai_adam_params {
  float lr;           /* >= 0 */
  float beta1, beta2; /* in [0, 1) (PyTorch: 0.9, 0.999) */
  float eps;          /* >= 0 (PyTorch: 1e-8) */
  float weight_decay; /* >= 0 (PyTorch: 0 for Adam, 0.01 for AdamW) */
} clai_adam_params;

/* Adam: g = grad + wd * param (weight decay coupled to the gradient); m = beta1 m + (1 - beta1) g;
 * v = beta2 v + (1 - beta2) g^2; param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps).
 * exp_avg is m, exp_avg_sq is v. (No amsgrad.) */
CLAI_API clai_status clai_optim_adam(clai_context *ctx, clai_tensor *param, clai_tensor *exp_avg,
                                     clai_tensor *exp_avg_sq, const clai_tensor *grad, int64_t step,
                                     const clai_adam_params *params);

/* AdamW: as Adam with g = grad, and param *= 1 - lr * wd first (decoupled weight decay). */
CLAI_API clai_status clai_optim_adamw(clai_context *ctx, clai_tensor *param, clai_tensor *exp_avg,
                                      clai_tensor *exp_avg_sq, const clai_tensor *grad, int64_t step,
                                      const clai_adam_params *params);

/* Clips the gradients grads[0..n) by their global L2 norm (torch.nn.utils.clip_grad_norm_): norm = sqrt of
 * the sum of squares of every element of every gradient, and every gradient is multiplied by
 * min(1, max_norm / (norm + 1e-6)) (a NaN norm makes every gradient NaN; an infinite norm makes the factor
 * 0, so infinite elements become NaN and the rest 0, as in PyTorch). The norm stays on the device (no
 * host round trip); norm_out, if not NULL, is a 1-element f32 tensor that receives it. The sum is taken in
 * a fixed order without atomics: the same gradients give the same bits on every run. Gradients are f32 or
 * f16, dense, and must not overlap each other; norm_out must not overlap any of them (CLAI_E_INVALID_ARG).
 * Fails with CLAI_E_DTYPE for a gradient that is not f32 or f16 or a norm_out that is not f32,
 * CLAI_E_SHAPE for a norm_out of more or fewer than one element, CLAI_E_NOT_CONTIGUOUS for a strided
 * gradient, CLAI_E_INVALID_ARG for a negative or NaN max_norm or overlapping tensors; nothing is written
 * then. */
CLAI_API clai_status clai_clip_grad_norm(clai_context *ctx, clai_tensor *const *grads, int n, float max_norm,
                                         clai_tensor *norm_out);

/* Softmax cross-entropy with integer labels and mean reduction (torch.nn.functional.cross_entropy):
 * loss = mean over the rows r whose label is not ignore_index of logsumexp(logits[r, :]) - logits[r, label].
 * logits are [N, C], f32 or f16, any strides; labels are i32 [N]; loss is a 1-element f32 tensor. grad, if
 * not NULL, has logits' shape and dtype and receives the gradient of the loss with respect to the logits,
 * (softmax(logits[r]) - onehot(label)) / count, in the same pass (0 in ignored rows); it may alias logits
 * element for element. Stable and accurate for large logits: a row's loss is log(sum(exp(x - m))) -
 * (x[label] - m) with m its maximum, so logits of 1e6 lose nothing to rounding of m. Special logits, as in
 * PyTorch: a -inf logit weighs 0 (the loss is +inf when the label's logit is -inf); a NaN or +inf logit,
 * or a row of nothing but -inf, makes that row's loss and gradient NaN. A label equal to ignore_index
 * (PyTorch uses -100) skips its row; every other label outside [0, C) is never used as an index: its row's
 * loss and gradient are NaN, so the loss is NaN (reported without reading anything back to the host). When
 * every row is ignored (or N is 0) the loss is NaN, as in PyTorch. The sum is deterministic (no atomics).
 * A loss tensor that is not f32 fails with CLAI_E_DTYPE, one of more or fewer than one element with
 * CLAI_E_SHAPE (clai_loss_mse likewise). */
CLAI_API clai_status clai_loss_cross_entropy(clai_context *ctx, clai_tensor *loss, clai_tensor *grad,
                                             const clai_tensor *logits, const clai_tensor *labels,
                                             int ignore_index);

/* Mean squared error: loss = mean((x - y)^2) into a 1-element f32 tensor; grad (if not NULL) = 2 (x - y) / n,
 * the gradient with respect to x (for y negate it). x, y and grad have one shape and one dtype (f32 or
 * f16), any strides; grad may alias x or y element for element. n = 0 gives NaN. NaN and inf follow IEEE. */
CLAI_API clai_status clai_loss_mse(clai_context *ctx, clai_tensor *loss, clai_tensor *grad, const clai_tensor *x,
                                   const clai_tensor *y);

/* The backward of clai_unary: grad_x = grad_out * OP'(x), where x is the forward *input* of the op (not its
 * output). Derivatives: neg -1, abs sign(x) (0 at 0 and at NaN), exp e^x, log 1/x, sqrt 1/(2 sqrt x), gelu
 * the derivative of the tanh form of CLAI_GELU, silu s(1 + x(1 - s)), sigmoid s(1 - s) with s = sigmoid(x),
 * tanh 1 - tanh^2(x); grad_x = grad_out times that, so a NaN x gives NaN except for neg and abs. ReLU is
 * PyTorch's threshold_backward, a selection: grad_x = x <= 0 ? 0 : grad_out, so the gradient passes where
 * x is NaN (NaN <= 0 is false) and is 0 where x <= 0 even if grad_out is NaN or infinite. All three
 * tensors have one shape and one dtype (f32 or f16), any strides; grad_x may alias grad_out or x element
 * for element. */
CLAI_API clai_status clai_unary_backward(clai_context *ctx, clai_unary_op op, clai_tensor *grad_x,
                                         const clai_tensor *grad_out, const clai_tensor *x);

/* The backward of clai_binary(op, out, a, b): grad_a = the sum, over the dims where a was broadcast, of
 * grad_out * d(a OP b)/da, and grad_b likewise (a bias added to [B, C] gets the column sums). Derivatives:
 * add 1 and 1, sub 1 and -1, mul b and a, div 1/b and -a/b^2, maximum/minimum 1 for the operand fmax/fmin
 * returned and 0 for the other, a tie split in halves (as PyTorch), a NaN operand (which fmax/fmin pass
 * over) none. grad_out has the forward's out shape, to which a and b broadcast; grad_a and grad_b have
 * a's and b's shapes, either may be NULL (not wanted); all f32 or all f16 (computed in f32), any views.
 * The gradients are overwritten, must not overlap the inputs or each other, and come out the same on
 * every run (fixed-order sums). CLAI_E_SHAPE, CLAI_E_DTYPE or CLAI_E_INVALID_ARG otherwise. */
CLAI_API clai_status clai_binary_backward(clai_context *ctx, clai_binary_op op, clai_tensor *grad_a,
                                          clai_tensor *grad_b, const clai_tensor *grad_out, const clai_tensor *a,
                                          const clai_tensor *b);

/* ---------------------------------------------------------------------------------------------------------
 * Convolution and pooling over NCHW tensors ([N, C, H, W]: batch, channels, rows, columns).
 */

/* clai_activation (with the matmul epilogue above) is the activation fused into a convolution's output. */

/* Options of clai_conv2d(). The zero value is stride 1, no padding, dilation 1, one group, no activation. */
typedef struct clai_conv2d_params {
  int64_t stride_h, stride_w;     /* 0 means 1 */
  /* Zero padding added before the first and after the last row / column. For symmetric padding p along
   * an axis give both sides p. */
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int64_t dilation_h, dilation_w; /* spacing of the window's taps; 0 means 1 */
  int64_t groups;                 /* 0 means 1; groups = C with O a multiple of C is a depthwise convolution */
  clai_activation activation;     /* applied after the bias */
} clai_conv2d_params;

/* out = act(conv2d(x, w) + bias), the cross-correlation of deep learning: x is [N, C, H, W], w is
 * [O, C/groups, KH, KW], bias is NULL or [O], out is [N, O, OH, OW] with
 *   OH = (H + pad_top + pad_bottom - dilation_h*(KH-1) - 1) / stride_h + 1 (OW likewise),
 *   out[n][o][oh][ow] = bias[o] + sum over c < C/groups, kh, kw of w[o][c][kh][kw] * x[n][g*C/groups + c][ih][iw],
 *   ih = oh*stride_h - pad_top + kh*dilation_h, iw = ow*stride_w - pad_left + kw*dilation_w,
 * where g = o / (O/groups) and x is zero outside the image (the fused activation follows clai_unary's NaN
 * rule: ReLU passes NaN through). x, w, bias and out have one dtype, f32 or f16
 * (f16 is computed in f32); every one may be any strided view. params NULL means the zero value.
 * Fails with CLAI_E_SHAPE when the shapes disagree (channels, groups, bias length, out's shape) or OH or OW
 * would be below 1, CLAI_E_INVALID_ARG for a negative stride, padding or dilation, an unknown activation
 * or an out that overlaps x, w or bias, CLAI_E_DTYPE for mixed or integer dtypes, CLAI_E_UNSUPPORTED for a
 * size of 2^31 or more, or, on a device whose kernels' loops stop after a number of iterations (Mesa's
 * llvmpipe: 65535 a work-item), for a row too long for one work-item to walk within it (some thousands of
 * elements; there the convolutions, pooling and their gradients walk planes in bands of rows); an argument
 * error writes nothing. Convolutions whose groups have 4 or more output
 * channels run, on CPUs in f32, as an implicit GEMM over a zero-padded copy of x (no unfolded input), and
 * otherwise as im2col into pooled temporaries and one clai_matmul per chunk (both bounded: a chunk of
 * images at a time); the others (depthwise) run a direct kernel. */
CLAI_API clai_status clai_conv2d(clai_context *ctx, clai_tensor *out, const clai_tensor *x, const clai_tensor *w,
                                 const clai_tensor *bias, const clai_conv2d_params *params);

/* Options of clai_max_pool2d() and clai_avg_pool2d(). kernel_h and kernel_w are required (>= 1). */
typedef struct clai_pool2d_params {
  int64_t kernel_h, kernel_w;
  int64_t stride_h, stride_w;     /* 0 means the kernel size (non-overlapping windows) */
  /* Padding before the first and after the last row / column; each must be below the kernel size on its
   * axis, so that every window holds at least one input element. */
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  /* Average pooling only: 1 divides every window sum by kernel_h * kernel_w (padding counts as zeros),
   * 0 divides by the number of input elements the window covers. */
  int count_include_pad;
} clai_pool2d_params;

/* out[n][c][oh][ow] = max of x[n][c] over the window at (oh*stride_h - pad_top, ow*stride_w - pad_left)
 * of kernel_h x kernel_w, padding ignored (a NaN in the window gives NaN and its index, the first NaN's,
 * as in PyTorch; a window of -inf gives -inf). x is [N, C, H, W], out is
 * [N, C, OH, OW] with OH = (H + pad_top + pad_bottom - kernel_h) / stride_h + 1 (OW likewise, at least 1),
 * both f32 or both f16, any views. indices is NULL or an i32 tensor of out's shape that receives, for
 * every output, where its maximum is: ih * W + iw in the input plane (the first such element in row-major
 * order on ties). out and indices must not overlap x or each other. Fails with CLAI_E_SHAPE (out or
 * indices of the wrong shape, no output position), CLAI_E_DTYPE, or CLAI_E_INVALID_ARG (params NULL, kernel
 * below 1, negative stride, padding not below the kernel, overlap). */
CLAI_API clai_status clai_max_pool2d(clai_context *ctx, clai_tensor *out, clai_tensor *indices,
                                     const clai_tensor *x, const clai_pool2d_params *params);

/* out[n][c][oh][ow] = the mean of x[n][c] over the same windows as clai_max_pool2d, divided as
 * params->count_include_pad says (the sum in f32 and IEEE: NaN gives NaN, inf + -inf NaN, a sum beyond the
 * float range inf). Same shapes, dtypes and failures as clai_max_pool2d. */
CLAI_API clai_status clai_avg_pool2d(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                                     const clai_pool2d_params *params);

/* out[n][c] = the mean of the plane x[n][c] ([N, C, H, W] with H*W >= 1). out is [N, C] or [N, C, 1, 1],
 * of x's dtype (f32 or f16), any views, not overlapping x. */
CLAI_API clai_status clai_global_avg_pool2d(clai_context *ctx, clai_tensor *out, const clai_tensor *x);

/* ---------------------------------------------------------------------------------------------------------
 * Layout ops: contiguous copies, concatenation, gathering rows, one-hot, where/select.
 */

/* A dense row-major tensor with x's dtype, shape and elements. When x is already contiguous, *out is a new
 * view of x's buffer (nothing is copied, so writes through one show in the other); otherwise *out is a new
 * tensor and the copy is enqueued. Either way the caller frees *out with clai_tensor_free(). On failure *out is
 * NULL. */
CLAI_API clai_status clai_contiguous(clai_context *ctx, clai_tensor **out, clai_tensor *x);

/* Concatenates the n tensors xs[0..n-1] along `axis` (negative counts from the end) into out. Every input
 * has out's ndim and dtype and out's size in every dim but axis; the sizes along axis add up to out's (a
 * size of 0 is allowed). Any strided views; out must not overlap an input (CLAI_E_INVALID_ARG). n >= 1. */
CLAI_API clai_status clai_concat(clai_context *ctx, clai_tensor *out, int n, const clai_tensor *const *xs,
                                 int axis);

/* Embedding lookup: out[p..., :] = table[index[p...], :] for a 2-d table [rows, cols] (any dtype), an i32
 * index of any shape S (0-d included) and out of shape S + [cols] with table's dtype (a quantized table:
 * out is f32 or f16 and receives the dequantized rows). Any strided views; out
 * must not overlap table or index.
 * An index outside [0, rows) never reads outside the table: its output row is written as zeros. So that the
 * caller learns of it, this op waits for its kernel (it reads back one flag the kernel sets) and then returns
 * CLAI_E_INVALID_ARG with a message naming the first such position and value ("index[5] = 12 is outside
 * [0, 10)"); out is fully written even then (good rows gathered, bad rows zero). */
CLAI_API clai_status clai_gather_rows(clai_context *ctx, clai_tensor *out, const clai_tensor *table,
                                      const clai_tensor *index);

/* out[p..., c] = 1 if labels[p...] == c else 0, for i32 labels of shape S and out of shape S + [classes]
 * (f32, f16 or i32). A label outside [0, classes) (-1 for padding, say) gives a row of zeros and no error. */
CLAI_API clai_status clai_one_hot(clai_context *ctx, clai_tensor *out, const clai_tensor *labels);

/* out = mask != 0 ? a : b, elementwise, with NumPy broadcasting of mask, a and b to out's shape. a, b and out
 * share one dtype; mask may be f32, f16 or i32 (-0.0 counts as zero, NaN as nonzero). out may alias an input
 * element for element (as in clai_binary). */
CLAI_API clai_status clai_where(clai_context *ctx, clai_tensor *out, const clai_tensor *mask, const clai_tensor *a,
                                const clai_tensor *b);

/* ---------------------------------------------------------------------------------------------------------
 * Attention and rotary position embedding.
 */

/* Scaled dot-product attention, fused: out = softmax(scale * q k^T + mask) v per batch and head, without
 * storing the score matrix (keys are visited in blocks with a running, "online" softmax).
 * q is [B, H, Lq, D], k [B, Hk, Lk, D], v [B, Hk, Lk, Dv], out [B, H, Lq, Dv]; Hk divides H and head h
 * reads key/value head h / (H / Hk) (grouped-query attention; Hk = H is plain multi-head). Lq and Lk may
 * differ; 1 <= D, Dv <= 256 (else CLAI_E_UNSUPPORTED). q, k and v share one dtype (f32 or f16); out is f32
 * or f16; arithmetic is f32. Any strided views (e.g. a [B, L, H, D] tensor permuted to [B, H, L, D]).
 * scale: 0 means 1 / sqrt(D). causal: 0, or 1 for a causal mask where query i sees keys j <= i + (Lk - Lq)
 * (the queries are the last Lq positions of the keys' sequence). A query that sees no key (causal with
 * Lq > Lk) gets a zero output row and a logsumexp of -infinity. Scores far beyond exp's range are fine
 * (the running maximum is subtracted); a NaN in a score a query sees makes its output row NaN.
 * lse: NULL, or an f32 [B, H, Lq] tensor that receives each row's log(sum_j exp(scale * q.k_j)) over the
 * keys it sees (for the backward pass). out and lse must not overlap q, k, v or each other. */
CLAI_API clai_status clai_attention(clai_context *ctx, clai_tensor *out, clai_tensor *lse, const clai_tensor *q,
                                    const clai_tensor *k, const clai_tensor *v, float scale, int causal);

typedef enum clai_rope_mode {
  CLAI_ROPE_INTERLEAVED = 0, /* rotate pairs (x[2i], x[2i+1]): the original RoPE (RoFormer, GPT-J, Meta LLaMA) */
  CLAI_ROPE_HALVES = 1,      /* rotate pairs (x[i], x[i + n/2]): GPT-NeoX, Hugging Face LLaMA */
} clai_rope_mode;

typedef enum clai_rope_layout {
  CLAI_ROPE_BHLD = 0, /* the position is dim ndim-2: [B, H, L, D], also [L, D] and [B, L, D] */
  CLAI_ROPE_BLHD = 1, /* the position is dim ndim-3: [B, L, H, D] */
} clai_rope_layout;

/* Parameters of clai_rope(); zero means the default for every field. */
typedef struct clai_rope_params {
  clai_rope_mode mode;     /* which elements pair up */
  clai_rope_layout layout; /* which dim is the position */
  int64_t pos_offset;      /* the position of index 0 along the position dim (a KV-cache's length) */
  float theta;             /* base of the frequencies; 0: 10000 */
  int64_t rot_dims;        /* rotate the first rot_dims of D (even; GPT-NeoX rotates a part); 0: all of D */
  int inverse;             /* 1: rotate by -t, the transpose (and inverse) of the rotation: the backward of
                            * clai_rope is clai_rope(grad_x, grad_out) with inverse = 1 and the rest equal */
} clai_rope_params;

/* Rotary position embedding: with n = rot_dims, each pair (x_a, x_b) of the first n elements of the last dim
 * (D) at position p becomes (x_a cos t - x_b sin t, x_a sin t + x_b cos t), t = p * theta^(-2i/n) for pair
 * i < n/2 (by -t when params->inverse is 1, which gives the gradient with respect to x); elements past n
 * are copied. x and out have one shape and dtype (f32 or f16); out may be x
 * itself (in place). params NULL means all defaults. The angle is computed in f32, so its error grows with the
 * position (about p * 6e-8 radians). Fails with CLAI_E_INVALID_ARG for a rot_dims that is odd or negative
 * (whatever x is) and for an unknown mode or layout, a bad theta, pos_offset or inverse; with CLAI_E_SHAPE
 * when x cannot take the rotation: rot_dims above D, rot_dims 0 with an odd D, no position dim, out's shape
 * not x's; with CLAI_E_DTYPE for mixed or i32 dtypes. */
CLAI_API clai_status clai_rope(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                               const clai_rope_params *params);

/* ---------------------------------------------------------------------------------------------------------
 * Reductions (lib/op-reduce.c). A reduction runs along one axis of x (negative axes count from the end) or,
 * with axis = CLAI_AXIS_ALL, over every element. The output has x's shape with that axis removed, or kept
 * as size 1 when keepdim is non-zero (CLAI_AXIS_ALL: a 0-d tensor, or all dims 1 with keepdim). x may be
 * any strided view of f32 or f16 storage; the output is a dense or strided f32 or f16 tensor that must not
 * overlap x. Accumulation is in f32, Kahan-compensated, so rows of millions of elements stay accurate;
 * results are identical run after run. A reduction over an axis of size 0 gives 0 (sum) or NaN (mean,
 * var) and fails with CLAI_E_SHAPE for max, min, argmax and argmin.
 * Special values, as PyTorch: sum and mean propagate NaN, a row with +inf (and no -inf) sums to +inf, one
 * with both to NaN, and a sum beyond the float range is inf; max and min give NaN for a row with a NaN
 * (unlike clai_binary's CLAI_MAXIMUM, which passes over NaN); the variance of a row with an infinity is
 * NaN; argmax and argmin (below) return the first NaN's index.
 */
#define CLAI_AXIS_ALL (-2147483647 - 1)

typedef enum clai_reduce_op {
  CLAI_REDUCE_SUM = 0,
  CLAI_REDUCE_MEAN = 1,
  CLAI_REDUCE_MAX = 2, /* a NaN in the row gives NaN */
  CLAI_REDUCE_MIN = 3,
  CLAI_REDUCE_VAR = 4, /* population variance (clai_var with correction 0) */
} clai_reduce_op;

/* out = OP over `axis` of x. Fails with CLAI_E_INVALID_ARG for a bad op, an axis out of range or out
 * overlapping x, CLAI_E_DTYPE unless x and out are f32 or f16, CLAI_E_SHAPE when out's shape is not the
 * reduced shape (the message names the expected one). */
CLAI_API clai_status clai_reduce(clai_context *ctx, clai_reduce_op op, clai_tensor *out, const clai_tensor *x,
                                 int axis, int keepdim);

/* out = the variance over `axis`: sum((x - mean)^2) / (n - correction), computed in two passes; correction
 * 0 is the population variance, 1 the unbiased estimate. Where n - correction <= 0 the result is NaN.
 * correction must be >= 0. Otherwise as clai_reduce(). */
CLAI_API clai_status clai_var(clai_context *ctx, clai_tensor *out, const clai_tensor *x, int axis, int keepdim,
                              int correction);

/* out (i32) = the index along `axis` (with CLAI_AXIS_ALL: the row-major linear index) of the first maximum
 * (clai_argmax) or minimum (clai_argmin) of x. A NaN counts as the extreme: the first NaN's index is
 * returned. The axis must have at most INT32_MAX elements (else CLAI_E_OVERFLOW). Otherwise as
 * clai_reduce(), with out of dtype i32 (else CLAI_E_DTYPE). */
CLAI_API clai_status clai_argmax(clai_context *ctx, clai_tensor *out, const clai_tensor *x, int axis, int keepdim);
CLAI_API clai_status clai_argmin(clai_context *ctx, clai_tensor *out, const clai_tensor *x, int axis, int keepdim);

/* Sums x down to out's shape, which must broadcast to x's (NumPy rules: out has at most x's ndim dims, each
 * equal to x's or 1): the reverse of broadcasting, e.g. a gradient [B, T, C] to a bias [C] or [1, 1, C].
 * x f32 or f16 (any view), out f32 or f16 not overlapping x; where no dim is summed, this is a copy.
 * Fails with CLAI_E_SHAPE when out does not broadcast to x. */
CLAI_API clai_status clai_sum_to(clai_context *ctx, clai_tensor *out, const clai_tensor *x);

/* ---------------------------------------------------------------------------------------------------------
 * Softmax and normalisation along the last axis (lib/op-norm.c). x is any strided view of f32 or f16
 * storage with at least one dim; out has x's shape, f32 or f16, and may be x itself (exactly the same view)
 * but must not otherwise overlap it. Statistics are computed in f32. On a device whose kernels' loops stop
 * after a number of iterations (Mesa's llvmpipe: 65535 for all of a work-item's loops), a row too long to
 * walk within it (here and in the gradients: more than ~500,000 elements) fails with CLAI_E_UNSUPPORTED.
 */

/* Options of clai_softmax() / clai_log_softmax(); zero means default, so NULL is a plain softmax. */
typedef struct clai_softmax_opts {
  float scale; /* x is multiplied by scale first (e.g. 1/sqrt(d) for attention); 0 means 1 */
  int causal;  /* non-zero: for x = [..., Lq, Lk], element (i, j) is masked when j > i + (Lk - Lq) */
} clai_softmax_opts;

/* out = softmax(scale * x) along the last axis, stable: it is computed as exp(scale * (x - max x)) /
 * sum (with min x for a negative scale), so the maximum and every difference are exact values of the same
 * x, and rows such as scale * [0, 1e10, 0, -1e10] or a fully masked row of an additive -1e30 or -FLT_MAX
 * mask give what PyTorch gives ([0 1 0 0]; a uniform row). Masked elements are 0.
 * Special values: a NaN in x makes its row NaN, and so does a +inf of scale * x (inf - inf), as in
 * PyTorch; -inf elements weigh 0. A row with nothing to weigh (every element masked, which happens for the
 * first Lq - Lk queries when Lq > Lk, or every unmasked element of scale * x -inf) is all 0, where PyTorch
 * gives NaN: a deliberate difference, so that a fully masked query contributes nothing instead of NaN
 * (as clai_attention's zero rows). Because the scale multiplies x - max rather than x, a scale * x beyond
 * the float range does no harm (softmax of 2 * [FLT_MAX, 0] is [1 0]; PyTorch: NaN).
 * causal needs at least 2 dims (else CLAI_E_SHAPE). */
CLAI_API clai_status clai_softmax(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                                  const clai_softmax_opts *opts);

/* out = log(softmax(scale * x)) = scale * (x - max) - log(sum(exp(scale * (x - max)))) along the last
 * axis, computed without forming the softmax and in that order: the large parts cancel exactly before
 * the logarithm is subtracted, so logits of 1e4 or 1e6 keep f32 accuracy in the result. Masked elements,
 * and every element of a row with nothing to weigh, are -inf (PyTorch: NaN for a row of -inf). Otherwise as
 * clai_softmax(). */
CLAI_API clai_status clai_log_softmax(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                                      const clai_softmax_opts *opts);

/* out = (x - mean) / sqrt(var + eps) * gamma + beta over the last axis (population variance, two passes).
 * A NaN or an infinity in a row makes the whole row NaN (x - mean or the variance is NaN); the statistics
 * are f32, so a row whose squared deviations overflow (beyond about 1.8e19) gets rstd 0, as in PyTorch's
 * float32.
 * gamma and beta are optional (NULL: 1 and 0), 1-D of the last dim's size, f32 or f16, any stride.
 * mean_out and rstd_out are optional (NULL: not written): f32, contiguous, of x's shape without the last
 * dim (or with it as 1); they receive each row's mean and 1 / sqrt(var + eps) for a backward pass. eps must
 * be >= 0 and finite. An empty last dim (rows of no values) writes NaN into mean_out and rstd_out for
 * every row, as clai_reduce's mean over an empty axis gives NaN (out is empty). Fails with CLAI_E_SHAPE,
 * CLAI_E_DTYPE or CLAI_E_INVALID_ARG (eps, overlap) naming the argument. */
CLAI_API clai_status clai_layernorm(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                                    const clai_tensor *gamma, const clai_tensor *beta, float eps,
                                    clai_tensor *mean_out, clai_tensor *rstd_out);

/* out = x / sqrt(mean(x^2) + eps) * gamma over the last axis; gamma optional (NULL: 1); rstd_out optional,
 * receives 1 / sqrt(mean(x^2) + eps) per row (NaN for every row when the last dim is empty). Special values
 * follow that formula, as PyTorch's: a NaN makes the row NaN; an infinity (or squares that overflow f32,
 * |x| beyond about 1.8e19) makes mean(x^2) inf and rstd 0, so the infinity gives NaN and every finite
 * element 0. Otherwise as clai_layernorm(). */
CLAI_API clai_status clai_rmsnorm(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                                  const clai_tensor *gamma, float eps, clai_tensor *rstd_out);

/* ---------------------------------------------------------------------------------------------------------
 * Gradients of convolution and pooling (training). Each takes the forward's parameters struct unchanged and
 * writes the gradient with respect to one forward input, given grad_out, the gradient of the loss with
 * respect to the forward's output. All are deterministic: no float atomics, so the same inputs give the
 * same bits on every run.
 *
 * The activation: the convolution gradients ignore params->activation and take grad_out as the gradient
 * with respect to the convolution's output *before* its activation (conv + bias). With a fused ReLU, turn
 * the gradient of the activated output y into that one first with
 *   clai_unary_backward(ctx, CLAI_RELU, grad, grad_y, y)
 * (ReLU's derivative at z is that at y = relu(z), so y, which the forward stored, serves as its input;
 * grad may alias grad_y). For GELU or SiLU run the forward without the activation, keep its output z and
 * apply the activation and its backward (clai_unary, clai_unary_backward) yourself.
 */

/* grad_x = the gradient of clai_conv2d with respect to x (the transposed convolution of grad_out):
 *   grad_x[n][c][ih][iw] = sum over o in c's group, kh, kw, oh, ow with ih = oh*stride_h - pad_top + kh*dilation_h
 *   and iw = ow*stride_w - pad_left + kw*dilation_w of w[o][c mod C/groups][kh][kw] * grad_out[n][o][oh][ow].
 * grad_x is [N, C, H, W] (x's shape), w [O, C/groups, KH, KW], grad_out [N, O, OH, OW] (the forward's output
 * shape for this x, w and params); one dtype, f32 or f16 (computed in f32), any strided views; params as
 * for clai_conv2d (NULL: the zero value; activation ignored, see above). grad_x is overwritten; it must
 * not overlap grad_out or w. Fails like clai_conv2d: CLAI_E_SHAPE (channels, groups, grad_out's shape),
 * CLAI_E_INVALID_ARG (negative parameter, overlap), CLAI_E_DTYPE, CLAI_E_UNSUPPORTED (a size of 2^31 or
 * more); an argument error writes nothing. Groups with 4 or more output channels run, on CPUs in f32 with
 * stride 1 (and padding at most dilation*(window-1)), as the convolution of zero-padded grad_out with the
 * window turned around (an implicit GEMM, as clai_conv2d), and otherwise clai_matmul into pooled column
 * workspaces and col2im (a chunk of images at a time); depthwise runs a direct kernel. */
CLAI_API clai_status clai_conv2d_backward_data(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_out,
                                               const clai_tensor *w, const clai_conv2d_params *params);

/* grad_w = the gradient of clai_conv2d with respect to w, summed over the batch:
 *   grad_w[o][cg][kh][kw] = sum over n, oh, ow of grad_out[n][o][oh][ow] * x[n][g*C/groups + cg][ih][iw]
 * (ih, iw as above, x zero in the padding, g = o / (O/groups)), and, if grad_bias is not NULL,
 * grad_bias[o] = sum over n, oh, ow of grad_out[n][o][oh][ow]. grad_w is [O, C/groups, KH, KW], grad_bias
 * [O], x [N, C, H, W], grad_out [N, O, OH, OW]; one dtype (f32 or f16, accumulated in f32), any views.
 * Both outputs are overwritten (not accumulated into; with N = 0 they are zero); they must not overlap
 * each other, x or grad_out. Failures as clai_conv2d_backward_data (and CLAI_E_SHAPE for a grad_bias that
 * is not [O]). Routes: on CPUs in f32 an implicit GEMM over a zero-padded copy of x whose reduction runs over
 * the images and output positions in slices summed in order; elsewhere im2col of a chunk of images and one
 * clai_matmul per chunk, accumulating across chunks (or, for a gradient small next to an image, one partial
 * gradient per image summed in order); depthwise a direct kernel. */
CLAI_API clai_status clai_conv2d_backward_weight(clai_context *ctx, clai_tensor *grad_w, clai_tensor *grad_bias,
                                                 const clai_tensor *x, const clai_tensor *grad_out,
                                                 const clai_conv2d_params *params);

/* The gradient of clai_max_pool2d: grad_x[n][c][ih][iw] = the sum of grad_out[n][c][oh][ow] over the
 * outputs whose indices entry (written by the forward) is ih * W + iw; 0 for elements that were no
 * window's maximum. Overlapping windows (stride below the kernel) may send several terms to one element;
 * they are summed in a fixed order. An index that does not name an element of its own window contributes
 * nothing (it is never used to address memory). grad_x is [N, C, H, W], grad_out and indices (i32) have
 * the forward's output shape for these params; grad_x and grad_out one dtype (f32 or f16), any views;
 * grad_x is overwritten and must not overlap grad_out or indices. Failures as clai_max_pool2d. */
CLAI_API clai_status clai_max_pool2d_backward(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_out,
                                              const clai_tensor *indices, const clai_pool2d_params *params);

/* The gradient of clai_avg_pool2d: every input element receives grad_out[n][c][oh][ow] / divisor from each
 * window that covers it, the divisor as the forward's (kernel_h * kernel_w with count_include_pad, else
 * the number of input elements in the window). Shapes, dtypes and failures as clai_max_pool2d_backward
 * without indices. */
CLAI_API clai_status clai_avg_pool2d_backward(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_out,
                                              const clai_pool2d_params *params);

/* The gradient of clai_global_avg_pool2d: grad_x[n][c][h][w] = grad_out[n][c] / (H * W). grad_x is
 * [N, C, H, W] (H*W >= 1), grad_out [N, C] or [N, C, 1, 1], one dtype (f32 or f16), any views, not
 * overlapping. */
CLAI_API clai_status clai_global_avg_pool2d_backward(clai_context *ctx, clai_tensor *grad_x,
                                                     const clai_tensor *grad_out);

/* ---------------------------------------------------------------------------------------------------------
 * Backward of attention, rotary embedding and embedding lookup.
 */

/* The gradients of clai_attention with respect to q, k and v, given grad_out (the gradient of the loss with
 * respect to out) and what the forward saved: out and lse (its logsumexp output). Shapes as in the forward:
 * q [B, H, Lq, D], k [B, Hk, Lk, D], v [B, Hk, Lk, Dv], out and grad_out [B, H, Lq, Dv], lse f32 [B, H, Lq];
 * grad_q, grad_k and grad_v have the shapes of q, k and v. scale and causal must be those of the forward
 * call (scale 0 means 1 / sqrt(D)). q, k and v share one dtype (f32 or f16); out, grad_out and each
 * gradient are f32 or f16 independently; arithmetic is f32. Any strided views. 1 <= D, Dv <= 256.
 * Every gradient is overwritten (not accumulated). With grouped heads (Hk < H) grad_k and grad_v hold the
 * sum over the H / Hk query heads that read each key/value head. Keys no query sees (and every key when
 * Lq = 0) get zero gradients; so do queries that see no key.
 * The probabilities are recomputed block by block from lse (FlashAttention-2 style): no Lq x Lk matrix is
 * stored, nothing is allocated, and each gradient element is summed by one work-item in a fixed order (no
 * atomics), so the same inputs give the same bits on every run. Because lse is an f32 value, a recomputed
 * probability carries a relative error of about |lse| * 1e-7 (1e-4 at scores of 1000, 1% at 1e5) on top of
 * the score's own rounding, and beyond that the gradients are unreliable (at scores of 1e9 a probability
 * of 1 comes back as 0.003); the forward has no such limit. The gradients must not overlap each other or
 * any input (CLAI_E_INVALID_ARG); bad shapes are CLAI_E_SHAPE, bad dtypes CLAI_E_DTYPE, head dims over 256
 * CLAI_E_UNSUPPORTED; an argument error writes nothing. */
CLAI_API clai_status clai_attention_backward(clai_context *ctx, clai_tensor *grad_q, clai_tensor *grad_k,
                                             clai_tensor *grad_v, const clai_tensor *grad_out, const clai_tensor *q,
                                             const clai_tensor *k, const clai_tensor *v, const clai_tensor *out,
                                             const clai_tensor *lse, float scale, int causal);

/* The backward of clai_gather_rows (an embedding's weight gradient): grad_table[r, :] = the sum of the rows
 * grad_out[p..., :] over the positions p whose index is r (0 for a row no position names), or that sum added
 * to grad_table's old value when accumulate is 1 (tied embeddings, gradient accumulation; 0 overwrites the
 * whole of grad_table). grad_table is [rows, cols], index is i32 of any shape S, grad_out is S + [cols];
 * grad_table and grad_out are f32 or f16 independently (f16 is summed in f32). Any strided views;
 * grad_table must not overlap grad_out or index. The sums are taken in ascending order of position, one
 * work-item per (row, column), without atomics: the same inputs give the same bits on every run, however
 * often an index repeats. The positions are sorted by row on the host, so this op waits for the work that
 * writes index and reads it back (n * 4 bytes). An index outside [0, rows) is never used as an address: its
 * position adds nothing, the rest is done as usual, and then CLAI_E_INVALID_ARG is returned with a message
 * naming the first such position and value, as in clai_gather_rows. */
CLAI_API clai_status clai_gather_rows_backward(clai_context *ctx, clai_tensor *grad_table, const clai_tensor *grad_out,
                                               const clai_tensor *index, int accumulate);

/* ---------------------------------------------------------------------------------------------------------
 * Backward of softmax and normalisation along the last axis (lib/op-norm-backward.c). Each takes grad_y
 * (the gradient of the loss with respect to the forward's output) and what the forward produced, and
 * overwrites grad_x (and grad_gamma / grad_beta) with the gradient. grad_x, grad_y and the saved tensor
 * share one shape (at least 1 dim), are f32 or f16 independently (arithmetic in f32) and may be any strided
 * views; grad_x may be grad_y itself (exactly the same view) but must not otherwise overlap an input.
 * Results are the same bits on every run (no float atomics). Fails with CLAI_E_SHAPE, CLAI_E_DTYPE,
 * CLAI_E_NOT_CONTIGUOUS or CLAI_E_INVALID_ARG (overlap, NULL mean/rstd, bad scale) naming the argument;
 * an argument error writes nothing.
 */

/* grad_x = scale * y * (grad_y - sum(grad_y * y)) per row, where y is the *output* of clai_softmax(x, opts)
 * and opts (scale, causal) are the forward's. Masked positions (causal) get 0. */
CLAI_API clai_status clai_softmax_backward(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_y,
                                           const clai_tensor *y, const clai_softmax_opts *opts);

/* grad_x = scale * (grad_y - exp(y) * sum(grad_y)) per row, where y is the *output* of clai_log_softmax(x,
 * opts); the row sums run over the unmasked positions only (grad_y at masked positions is ignored) and masked
 * positions get 0. */
CLAI_API clai_status clai_log_softmax_backward(clai_context *ctx, clai_tensor *grad_x, const clai_tensor *grad_y,
                                               const clai_tensor *y, const clai_softmax_opts *opts);

/* The gradients of clai_layernorm(out, x, gamma, beta, eps, mean, rstd) from the mean and rstd it saved
 * (f32, contiguous, x's shape without the last dim, or with it as 1; both required). With xh = (x - mean) *
 * rstd and g = grad_y * gamma (gamma NULL: 1, as in the forward):
 * grad_x = rstd * (g - mean_row(g) - xh * mean_row(g * xh)); grad_gamma = sum over all rows of grad_y * xh;
 * grad_beta = sum over all rows of grad_y. grad_gamma and grad_beta are optional (NULL: not computed), 1-D
 * of the last dim's size, f32 or f16, any stride, and must not overlap anything else; their sums are taken
 * over chunks of 64 rows in row order, then over the chunks in order. No rows: they become 0. */
CLAI_API clai_status clai_layernorm_backward(clai_context *ctx, clai_tensor *grad_x, clai_tensor *grad_gamma,
                                             clai_tensor *grad_beta, const clai_tensor *grad_y, const clai_tensor *x,
                                             const clai_tensor *gamma, const clai_tensor *mean,
                                             const clai_tensor *rstd);

/* The gradients of clai_rmsnorm(out, x, gamma, eps, rstd) from the rstd it saved: with xh = x * rstd and
 * g = grad_y * gamma, grad_x = rstd * (g - xh * mean_row(g * xh)), grad_gamma = sum over rows of grad_y * xh
 * (optional). Otherwise as clai_layernorm_backward(). */
CLAI_API clai_status clai_rmsnorm_backward(clai_context *ctx, clai_tensor *grad_x, clai_tensor *grad_gamma,
                                           const clai_tensor *grad_y, const clai_tensor *x, const clai_tensor *gamma,
                                           const clai_tensor *rstd);

/* ---------------------------------------------------------------------------------------------------------
 * GGUF model files (lib/gguf.c), versions 2 and 3: the metadata (key/value pairs, arrays included) and the
 * tensor directory, read from a read-only memory mapping of the file, and tensors loaded into device tensors
 * without a host copy of the whole file. Every count, length, string, offset, alignment and dimension is
 * checked against the file's size before it is used: a truncated, malformed or hostile file fails with
 * CLAI_E_FORMAT (CLAI_E_IO when it cannot be opened or mapped) and a message naming the field, never a crash,
 * an out-of-bounds read or an allocation larger than the file justifies. A clai_gguf is immutable after
 * clai_gguf_open() and may be read from several threads. Strings in GGUF are not NUL-terminated: the
 * accessors return a pointer into the mapping and a length, valid until clai_gguf_close().
 * The file must not be truncated by another process while it is open (the mapping would then fault).
 */
typedef struct clai_gguf clai_gguf;

/* GGUF's metadata value types, with GGUF's numbering. */
typedef enum clai_gguf_type {
  CLAI_GGUF_UINT8 = 0,
  CLAI_GGUF_INT8 = 1,
  CLAI_GGUF_UINT16 = 2,
  CLAI_GGUF_INT16 = 3,
  CLAI_GGUF_UINT32 = 4,
  CLAI_GGUF_INT32 = 5,
  CLAI_GGUF_FLOAT32 = 6,
  CLAI_GGUF_BOOL = 7,
  CLAI_GGUF_STRING = 8,
  CLAI_GGUF_ARRAY = 9,
  CLAI_GGUF_UINT64 = 10,
  CLAI_GGUF_INT64 = 11,
  CLAI_GGUF_FLOAT64 = 12,
} clai_gguf_type;

/* Opens and checks the file at path. On failure *out is NULL and, when errbuf is not NULL, a message naming
 * the problem (the file, the field, its offset) is written to errbuf (at most errcap bytes, NUL-terminated).
 * Beyond the layout, open checks: no key and no tensor name twice; general.alignment, when present, a uint32
 * power of two (default 32); bool values 0 or 1; arrays nested at most 8 deep; tensors of 1 to 4 dims, each
 * dim at most INT64_MAX and their product too, ne[0] a multiple of the type's block, a GGUF type number that
 * is known (see clai_gguf_ggml_type_name), an offset that is a multiple of the alignment and data that lies
 * inside the file. Version 1 files (32-bit counts) and big-endian files are refused with CLAI_E_FORMAT.
 * CLAI_E_OUT_OF_MEMORY when the directory cannot be allocated; CLAI_E_INVALID_ARG for a NULL out or path. */
CLAI_API clai_status clai_gguf_open(clai_gguf **out, const char *path, char *errbuf, size_t errcap);

/* Unmaps the file and frees everything; tensors loaded from it stay valid. NULL: no-op. */
CLAI_API void clai_gguf_close(clai_gguf *g);

/* The detail of the last failed accessor call on g ("" if none), valid until the next call on g from the
 * same thread. The message is kept per thread (a thread-local buffer holds the last failure of the thread
 * and which clai_gguf it was on), so threads reading one clai_gguf do not see each other's failures. */
CLAI_API const char *clai_gguf_errmsg(const clai_gguf *g);

/* The file's GGUF version (2 or 3), its data alignment (general.alignment, 32 when absent), and counts.
 * g NULL: 0, 0, -1, -1. */
CLAI_API uint32_t clai_gguf_version(const clai_gguf *g);
CLAI_API uint64_t clai_gguf_alignment(const clai_gguf *g);
CLAI_API int64_t clai_gguf_kv_count(const clai_gguf *g);
CLAI_API int64_t clai_gguf_tensor_count(const clai_gguf *g);

/* Metadata by position (0 .. kv_count - 1) or key. clai_gguf_find_key returns the position or -1. For an
 * out-of-range position: the key is NULL, the type -1. len may be NULL. Lookups by key take constant time
 * (a hash table built at open). */
CLAI_API int64_t clai_gguf_find_key(const clai_gguf *g, const char *key);
CLAI_API const char *clai_gguf_key(const clai_gguf *g, int64_t i, size_t *len);
CLAI_API int clai_gguf_kv_type(const clai_gguf *g, int64_t i);

/* Scalar values by key. get_int accepts any integer type and bool (CLAI_E_OVERFLOW for a uint64 above
 * INT64_MAX); get_float accepts float32, float64 and the integer types; get_string a string (len may be
 * NULL). A missing key is CLAI_E_NOT_FOUND, another type CLAI_E_DTYPE; either way *out is untouched and the
 * message names the key. NULL g, key or out: CLAI_E_INVALID_ARG. */
CLAI_API clai_status clai_gguf_get_int(const clai_gguf *g, const char *key, int64_t *out);
CLAI_API clai_status clai_gguf_get_float(const clai_gguf *g, const char *key, double *out);
CLAI_API clai_status clai_gguf_get_string(const clai_gguf *g, const char *key, const char **str, size_t *len);

/* Arrays by key: the element type and length (nested arrays are allowed in the file; their element type is
 * CLAI_GGUF_ARRAY and their elements are not accessible). get_array_data gives a pointer to the raw
 * little-endian elements of a numeric or bool array inside the mapping (not necessarily aligned: memcpy
 * from it); get_array_string gives element j of a string array, in constant time (an offset table built at
 * open). Failures as for the scalars: CLAI_E_NOT_FOUND, CLAI_E_DTYPE (not an array, or an array of another
 * element type), and CLAI_E_INVALID_ARG for j outside [0, len). */
CLAI_API clai_status clai_gguf_get_array(const clai_gguf *g, const char *key, int *elem_type, int64_t *len);
CLAI_API clai_status clai_gguf_get_array_data(const clai_gguf *g, const char *key, const void **data);
CLAI_API clai_status clai_gguf_get_array_string(const clai_gguf *g, const char *key, int64_t j, const char **str,
                                                size_t *len);

/* One entry of the tensor directory. shape is row-major (shape[ndim - 1] is GGUF's first, fastest-varying
 * dimension ne[0]), so a GGUF matrix with ne = [in, out] is [out, in]. ggml_type is GGUF's type number;
 * dtype is the clai_dtype it loads as, or -1 when libclai does not support that type (the tensor can be
 * listed, not loaded). offset is the absolute file offset of the data, bytes its size. name points into the
 * mapping (name_len bytes, not NUL-terminated). */
typedef struct clai_gguf_tensor_info {
  const char *name;
  size_t name_len;
  uint32_t ggml_type;
  int dtype;
  int ndim;
  int64_t shape[CLAI_MAX_DIMS];
  uint64_t offset;
  uint64_t bytes;
} clai_gguf_tensor_info;

/* The tensor at position i (CLAI_E_INVALID_ARG outside [0, tensor_count)), or its position by name (-1 when
 * absent; constant time). */
CLAI_API clai_status clai_gguf_tensor_info_get(const clai_gguf *g, int64_t i, clai_gguf_tensor_info *info);
CLAI_API int64_t clai_gguf_find_tensor(const clai_gguf *g, const char *name);

/* The name of a GGUF (ggml) tensor type number, such as "F32", "Q4_1" or "Q6_K", for the types open
 * accepts (F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K to Q8_K, I8, I16, I32, I64, F64, BF16); "?"
 * for any other number. Static string. */
CLAI_API const char *clai_gguf_ggml_type_name(uint32_t ggml_type);

/* Creates a device tensor in ctx holding tensor `name` of the file (shape and dtype from the directory). On
 * failure *out is NULL: CLAI_E_NOT_FOUND (no such tensor), CLAI_E_DTYPE (a GGUF type libclai does not load),
 * or the status of the allocation; the message is on ctx. */
CLAI_API clai_status clai_gguf_tensor_load(clai_context *ctx, const clai_gguf *g, const char *name,
                                           clai_tensor **out);

/* Writes tensor `name` of the file into dst, an existing tensor (a view, such as a row slice of a larger
 * tensor that concatenates several weights) of the same dtype and the same number of elements, whose
 * elements are dense in row-major order. CLAI_E_NOT_FOUND and CLAI_E_DTYPE as for clai_gguf_tensor_load;
 * CLAI_E_DTYPE also for a dst of another dtype, CLAI_E_SHAPE for another element count,
 * CLAI_E_NOT_CONTIGUOUS for a dst that is not dense, CLAI_E_CONTEXT for a dst of another context; on
 * failure dst is unchanged and the message is on ctx. */
CLAI_API clai_status clai_gguf_tensor_load_into(clai_context *ctx, const clai_gguf *g, const char *name,
                                                clai_tensor *dst);

/* ---------------------------------------------------------------------------------------------------------
 * Inference: token sampling (lib/op-sample.c). A text generator samples one token id per row of logits on
 * the device, so that only the ids (4 bytes a row) ever need to come back to the host.
 */

/* The largest candidate set clai_sample() sorts: the most top_k it accepts, and the bound on the candidates
 * of top_p and min_p when top_k is 0 (see clai_sample). */
#define CLAI_SAMPLE_MAX_CANDIDATES 1024

/* Parameters of clai_sample(). Zero means the default for every field, and a NULL pointer is the zero value:
 * greedy decoding. */
typedef struct clai_sample_params {
  float temperature; /* T: <= 0 (0 included) is greedy; else finite (NaN or infinity: CLAI_E_INVALID_ARG) */
  int top_k;         /* keep the top_k most likely tokens; 0: no limit; 1 is greedy; negative: INVALID_ARG,
                        above CLAI_SAMPLE_MAX_CANDIDATES: CLAI_E_UNSUPPORTED (a top_k above the row length
                        keeps the whole row) */
  float top_p;       /* nucleus: keep the smallest most-likely prefix whose probability reaches top_p; 0 or
                        >= 1: no limit; negative or NaN: CLAI_E_INVALID_ARG */
  float min_p;       /* keep the tokens whose probability is at least min_p times the largest one's; 0: off;
                        in [0, 1], else CLAI_E_INVALID_ARG */
  uint64_t seed;     /* the generator's key, as in clai_rand_uniform */
  uint64_t offset;   /* the stream: a text generator passes its step number, so that one seed gives the same
                        text run after run and on every device */
} clai_sample_params;

/* Samples one token id per row of logits and writes it to ids, on the device (nothing is read back; the
 * caller reads ids when it needs them). logits is f32 or f16, any strided view of shape [..., V] (a row is
 * the last dim, V >= 1 and at most INT32_MAX); ids is i32 of the other dims' shape ([R] for [R, V]; 0-d or
 * [1] for a 1-d logits), any view, not overlapping logits.
 *
 * Values: a NaN logit counts as -inf (never drawn, never the maximum unless the whole row is NaN or -inf),
 * and -0 as +0.
 * Greedy (p NULL, temperature <= 0, or top_k 1): the index of the first largest logit; a row of -inf and
 * NaN only gives 0.
 * Sampling, for temperature T > 0, per row:
 * 1. e_i = exp((x_i - max x) / T), computed in f32 as exp((x_i - max) * (1 / T)) (1 / T rounded to f32 and
 *    held to FLT_MAX): p_i = e_i / sum e is softmax(x / T).
 * 2. Candidates: the tokens in descending order of logit, ties by lower index, cut to the first top_k.
 *    Without top_k, when top_p or min_p is given, to the first CLAI_SAMPLE_MAX_CANDIDATES (a documented
 *    bound: a nucleus of more tokens than that is cut there).
 * 3. The total Z: the sum of e over the candidates when top_k is given, over the whole row otherwise (in a
 *    fixed order: blocks of max(256, ceil(V / 1024)) elements summed in index order, then the block sums in
 *    order).
 * 4. top_p: the candidates are cut after the first one whose running sum of e (in candidate order, f32)
 *    reaches top_p * Z. min_p: then after the last leading candidate with e_i >= min_p (e of the first is 1).
 *    At least one token is always kept.
 * 5. The draw: u in [0, 1) is element `row` of clai_rand_uniform(seed, offset) over [0, 1) (the row's
 *    row-major index among the rows: word row % 4 of Philox block row / 4), so the draw can be regenerated
 *    on the host or with clai_rand_uniform. With S the running sums of e over the kept candidates (f32, in
 *    order), the id is the first candidate whose S exceeds u * S_last (or, where that product rounds up to
 *    S_last, the first whose S equals S_last). Tokens of e = 0 are never drawn.
 * Without top_k, top_p and min_p, every token of the row is a candidate in index order (not sorted: the
 * same distribution; which token a given u picks differs) with Z summed as in step 3, and the id is the
 * first token whose running total in that block order exceeds u * Z.
 * If the largest logit is +inf, or every logit -inf or NaN, the id is the greedy one.
 * Everything is computed in f32 in a fixed order: the same inputs give the same id on every run, whatever
 * the work-group size, and on every device up to the rounding of exp (a u within about 1e-6 of a boundary
 * between two tokens may pick the neighbour there). Each row is one work-group's job.
 *
 * Fails with CLAI_E_DTYPE (ids not i32, logits not f32 or f16), CLAI_E_SHAPE (logits 0-d, V = 0, ids of
 * the wrong shape), CLAI_E_OVERFLOW (V above INT32_MAX), CLAI_E_INVALID_ARG (overlap, a parameter outside
 * its range) or CLAI_E_UNSUPPORTED (top_k above CLAI_SAMPLE_MAX_CANDIDATES), naming the argument; an
 * argument error writes nothing. */
CLAI_API clai_status clai_sample(clai_context *ctx, clai_tensor *ids, const clai_tensor *logits,
                                 const clai_sample_params *p);

#ifdef __cplusplus
}
#endif
#endif /* CLAI_H */
