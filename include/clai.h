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
 * - A context must be used by one thread at a time. Different contexts share nothing and may be used from
 *   different threads at once.
 * - Freeing NULL is a no-op.
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
  X(E_UNSUPPORTED, -13, "operation not supported")

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
} clai_context_params;

/* Creates a context on the best device (or the one params/$CLAI_DEVICE asks for) and builds every kernel
 * for it. Devices are ranked discrete GPU > integrated GPU > accelerator > CPU, ties by compute units times
 * clock; a device on which a context, a queue or a kernel cannot be created is passed over for the next.
 * On success *out is a new context that clai_context_free() releases. On failure *out is NULL and the
 * status tells why: CLAI_E_NO_DEVICE (no OpenCL device at all, or none usable), CLAI_E_DEVICE_NOT_FOUND
 * (an override that matches no device), CLAI_E_BUILD. Because there is no context to hold the message, the
 * detail of such a failure is written to errbuf (if not NULL) as a NUL-terminated string of at most
 * errbuf_size bytes. */
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
  uint32_t programs;          /* programs the context holds */
  uint32_t programs_built;    /* built from source at init */
  uint32_t programs_cached;   /* loaded from the on-disk cache at init */
  uint32_t cache_writes;      /* entries written to the cache */
  uint32_t cache_rejected;    /* entries found but rejected (truncated, corrupt, foreign, refused) */
  double init_seconds;        /* wall time of clai_context_init */
  /* The memory pool. */
  uint64_t bytes_in_use;      /* device bytes held by live tensors */
  uint64_t bytes_cached;      /* device bytes kept for reuse */
  uint64_t bytes_peak;        /* largest bytes_in_use + bytes_cached seen */
  uint64_t device_allocs;     /* clCreateBuffer calls */
  uint64_t device_frees;      /* clReleaseMemObject calls on pooled buffers */
  uint64_t pool_hits;         /* allocations served from the pool */
} clai_context_stats;

CLAI_API clai_status clai_context_stats_get(const clai_context *ctx, clai_context_stats *stats);

/* The cache directory in use, or NULL when the cache is off. Valid while ctx lives. */
CLAI_API const char *clai_context_cache_dir(const clai_context *ctx);

/* Releases every cached (unused) device buffer of the pool. */
CLAI_API void clai_context_trim(clai_context *ctx);

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
} clai_dtype;

/* The size in bytes of one element of dtype, or 0 if dtype is not a dtype. */
CLAI_API size_t clai_dtype_size(clai_dtype dtype);

/* "f32", "f16", "i32", or "?" */
CLAI_API const char *clai_dtype_name(clai_dtype dtype);

/* Creates a dense row-major tensor of the given dtype and shape (ndim from 0 to CLAI_MAX_DIMS; a 0-d
 * tensor is a scalar; a dimension may be 0). Its contents are undefined until written. On failure *out is
 * NULL: CLAI_E_INVALID_ARG / CLAI_E_OVERFLOW for a bad shape, CLAI_E_OUT_OF_MEMORY when the device cannot
 * hold it. */
CLAI_API clai_status clai_tensor_init(clai_context *ctx, clai_tensor **out, clai_dtype dtype, int ndim,
                                      const int64_t *shape);

/* Releases the tensor (the view); the buffer returns to the pool when no view uses it. NULL: no-op. */
CLAI_API void clai_tensor_free(clai_tensor *t);

/* Copies `bytes` bytes of dense host data into the tensor. bytes must equal numel * dtype size. Returns when
 * src may be reused. */
CLAI_API clai_status clai_tensor_write(clai_tensor *t, const void *src, size_t bytes);

/* Waits for the work that writes t, then copies its elements densely into dst, which holds dst_size bytes
 * (at least numel * dtype size, else CLAI_E_BUFFER_TOO_SMALL and nothing is written). */
CLAI_API clai_status clai_tensor_read(clai_tensor *t, void *dst, size_t dst_size);

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
 * broadcast to dst's shape. dst and src may be any views; dst must not overlap src except exactly. */
CLAI_API clai_status clai_copy(clai_context *ctx, clai_tensor *dst, const clai_tensor *src);

/* Every element of dst = value (converted to dst's dtype). */
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
 * a, b and out have one dtype (f32, f16 or i32); f16 is computed in f32. out may alias a or b. */
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

/* out = OP(x), same shape and dtype (f32 or f16; i32 for NEG, ABS and RELU). out may alias x. */
CLAI_API clai_status clai_unary(clai_context *ctx, clai_unary_op op, clai_tensor *out, const clai_tensor *x);

/* out = alpha * x + beta, elementwise (clai_scale is beta = 0, clai_add_scalar is alpha = 1). f32 or f16. */
CLAI_API clai_status clai_affine(clai_context *ctx, clai_tensor *out, const clai_tensor *x, float alpha,
                                 float beta);
CLAI_API clai_status clai_scale(clai_context *ctx, clai_tensor *out, const clai_tensor *x, float alpha);
CLAI_API clai_status clai_add_scalar(clai_context *ctx, clai_tensor *out, const clai_tensor *x, float beta);

/* C = alpha * op(A) * op(B) + beta * C, where op(X) is X or X transposed (its last two dims swapped).
 * A is [..., M, K] after op, B [..., K, N], C [..., M, N]; the leading (batch) dims of A and B broadcast
 * to C's. A and B are both f32 or both f16; C is f32 or f16; accumulation is in f32. Any strided views are
 * accepted. C must not overlap A or B. When beta is 0, C is not read (NaNs in C do not propagate). */
CLAI_API clai_status clai_matmul(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a,
                                 const clai_tensor *b, int trans_b, float alpha, float beta);

/* Describes, as text in buf (at most cap bytes, NUL-terminated), the kernel family and parameters that
 * clai_matmul would run for these operands (for benchmarks and reports), after the same argument checks. */
CLAI_API clai_status clai_matmul_describe(clai_context *ctx, const clai_tensor *c, const clai_tensor *a, int trans_a,
                                          const clai_tensor *b, int trans_b, char *buf, size_t cap);

/* ---------------------------------------------------------------------------------------------------------
 * Reductions (lib/op-reduce.c). A reduction runs along one axis of x (negative axes count from the end) or,
 * with axis = CLAI_AXIS_ALL, over every element. The output has x's shape with that axis removed, or kept
 * as size 1 when keepdim is non-zero (CLAI_AXIS_ALL: a 0-d tensor, or all dims 1 with keepdim). x may be
 * any strided view of f32 or f16 storage; the output is a dense or strided f32 or f16 tensor that must not
 * overlap x. Accumulation is in f32, Kahan-compensated, so rows of millions of elements stay accurate;
 * results are identical run after run. A reduction over an axis of size 0 gives 0 (sum) or NaN (mean,
 * var) and fails with CLAI_E_SHAPE for max, min, argmax and argmin.
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
 * but must not otherwise overlap it. Statistics are computed in f32.
 */

/* Options of clai_softmax() / clai_log_softmax(); zero means default, so NULL is a plain softmax. */
typedef struct clai_softmax_opts {
  float scale; /* x is multiplied by scale first (e.g. 1/sqrt(d) for attention); 0 means 1 */
  int causal;  /* non-zero: for x = [..., Lq, Lk], element (i, j) is masked when j > i + (Lk - Lq) */
} clai_softmax_opts;

/* out = softmax(scale * x) along the last axis, stable (the row's maximum is subtracted first). Masked
 * elements are 0. A row with nothing to weigh (every element masked, which happens for the first Lq - Lk
 * queries when Lq > Lk, or every unmasked element -inf) is all 0, never NaN; a NaN in x makes its row NaN.
 * causal needs at least 2 dims (else CLAI_E_SHAPE). */
CLAI_API clai_status clai_softmax(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                                  const clai_softmax_opts *opts);

/* out = log(softmax(scale * x)) = scale * x - max - log(sum(exp(scale * x - max))) along the last axis,
 * computed without forming the softmax. Masked elements, and every element of a row with nothing to
 * weigh, are -inf. Otherwise as clai_softmax(). */
CLAI_API clai_status clai_log_softmax(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                                      const clai_softmax_opts *opts);

/* out = (x - mean) / sqrt(var + eps) * gamma + beta over the last axis (population variance, two passes).
 * gamma and beta are optional (NULL: 1 and 0), 1-D of the last dim's size, f32 or f16, any stride.
 * mean_out and rstd_out are optional (NULL: not written): f32, contiguous, of x's shape without the last
 * dim (or with it as 1); they receive each row's mean and 1 / sqrt(var + eps) for a backward pass. eps must
 * be >= 0 and finite. Fails with CLAI_E_SHAPE, CLAI_E_DTYPE or CLAI_E_INVALID_ARG (eps, overlap) naming the
 * argument. */
CLAI_API clai_status clai_layernorm(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                                    const clai_tensor *gamma, const clai_tensor *beta, float eps,
                                    clai_tensor *mean_out, clai_tensor *rstd_out);

/* out = x / sqrt(mean(x^2) + eps) * gamma over the last axis; gamma optional (NULL: 1); rstd_out optional,
 * receives 1 / sqrt(mean(x^2) + eps) per row. Otherwise as clai_layernorm(). */
CLAI_API clai_status clai_rmsnorm(clai_context *ctx, clai_tensor *out, const clai_tensor *x,
                                  const clai_tensor *gamma, float eps, clai_tensor *rstd_out);

#ifdef __cplusplus
}
#endif
#endif /* CLAI_H */
