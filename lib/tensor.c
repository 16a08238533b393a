/* tensor.c - clai_tensor: dtype, shape, strides and offset over a pooled, reference-counted device buffer.
 * Views (transpose, permute, slice, reshape, expand) share the buffer and copy nothing. Host transfers of
 * non-contiguous views go through a dense temporary and the strided copy kernel (op-copy.c). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

size_t clai_dtype_size(clai_dtype dtype) {
  switch (dtype) {
  case CLAI_DTYPE_F32: return 4;
  case CLAI_DTYPE_F16: return 2;
  case CLAI_DTYPE_I32: return 4;
  case CLAI_DTYPE_Q8_0: return 34;
  case CLAI_DTYPE_Q4_0: return 18;
  case CLAI_DTYPE_Q4_1: return 20;
  case CLAI_DTYPE_Q4_K: return 144;
  case CLAI_DTYPE_Q6_K: return 210;
  }
  return 0;
}

int64_t clai_dtype_block(clai_dtype dtype) {
  switch (dtype) {
  case CLAI_DTYPE_F32:
  case CLAI_DTYPE_F16:
  case CLAI_DTYPE_I32: return 1;
  case CLAI_DTYPE_Q8_0:
  case CLAI_DTYPE_Q4_0:
  case CLAI_DTYPE_Q4_1: return 32;
  case CLAI_DTYPE_Q4_K:
  case CLAI_DTYPE_Q6_K: return 256;
  }
  return 0;
}

const char *clai_dtype_name(clai_dtype dtype) {
  switch (dtype) {
  case CLAI_DTYPE_F32: return "f32";
  case CLAI_DTYPE_F16: return "f16";
  case CLAI_DTYPE_I32: return "i32";
  case CLAI_DTYPE_Q8_0: return "q8_0";
  case CLAI_DTYPE_Q4_0: return "q4_0";
  case CLAI_DTYPE_Q4_1: return "q4_1";
  case CLAI_DTYPE_Q4_K: return "q4_k";
  case CLAI_DTYPE_Q6_K: return "q6_k";
  }
  return "?";
}

const char *clai__shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
  size_t len = 0;
  buf[0] = '\0';
  clai__appendf(buf, cap, &len, "[");
  for (int i = 0; i < ndim; i++) clai__appendf(buf, cap, &len, "%s%lld", i ? ", " : "", (long long)shape[i]);
  clai__appendf(buf, cap, &len, "]");
  return buf;
}

clai_status clai__check_tensor_any(clai_context *ctx, const clai_tensor *t, const char *fn, const char *what) {
  if (t == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %s is NULL", fn, what);
  if (t->ctx != ctx) return clai__error(ctx, CLAI_E_CONTEXT, "%s: %s belongs to another context", fn, what);
  return CLAI_OK;
}

clai_status clai__check_tensor(clai_context *ctx, const clai_tensor *t, const char *fn, const char *what) {
  clai_status st = clai__check_tensor_any(ctx, t, fn, what);
  if (st == CLAI_OK && clai_dtype_block(t->dtype) > 1)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: %s is %s; quantized tensors are read by clai_copy (dequantizing), "
                       "clai_matmul and clai_gather_rows only", fn, what, clai_dtype_name(t->dtype));
  return st;
}

clai_status clai__check_out_any(clai_context *ctx, const clai_tensor *t, const char *fn, const char *what) {
  clai_status st = clai__check_tensor_any(ctx, t, fn, what);
  if (st != CLAI_OK || clai_tensor_numel(t) == 0) return st;
  for (int i = 0; i < t->ndim; i++)
    if (t->shape[i] > 1 && t->strides[i] == 0)
      return clai__error(ctx, CLAI_E_INVALID_ARG,
                         "%s: %s is a broadcast view (a stride of 0 on dimension %d of size %lld): several of its "
                         "elements share one address, so they cannot all be written",
                         fn, what, i, (long long)t->shape[i]);
  return CLAI_OK;
}

clai_status clai__check_out(clai_context *ctx, const clai_tensor *t, const char *fn, const char *what) {
  clai_status st = clai__check_out_any(ctx, t, fn, what);
  if (st == CLAI_OK && clai_dtype_block(t->dtype) > 1)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: %s is %s; only clai_copy and clai_tensor_write write quantized "
                       "tensors", fn, what, clai_dtype_name(t->dtype));
  return st;
}

/* Links a new tensor struct into ctx's list; takes a reference on buf. */
static clai_tensor *new_tensor(clai_context *ctx, clai__buffer *buf, clai_dtype dtype) {
  clai_tensor *t = calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  t->ctx = ctx;
  t->buf = buf;
  t->dtype = dtype;
  buf->refs++;
  t->next = ctx->tensors;
  if (ctx->tensors != NULL) ctx->tensors->prev = t;
  ctx->tensors = t;
  return t;
}

void clai__dense_strides(int ndim, const int64_t *shape, int64_t *strides) {
  uint64_t s = 1;
  int over = 0;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = over ? 0 : (int64_t)s;
    if (!over && (!clai__mul_ok(s, shape[i] > 0 ? (uint64_t)shape[i] : 1, &s) || s > (uint64_t)INT64_MAX)) over = 1;
  }
}

static void set_dense_strides(clai_tensor *t) { clai__dense_strides(t->ndim, t->shape, t->strides); }

/* Element count of a shape, with overflow and sign checks. */
static clai_status shape_numel(clai_context *ctx, const char *fn, int ndim, const int64_t *shape,
                               uint64_t *numel) {
  if (ndim < 0 || ndim > CLAI_MAX_DIMS)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: ndim %d is outside [0, %d]", fn, ndim, CLAI_MAX_DIMS);
  if (ndim > 0 && shape == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: shape is NULL", fn);
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: dimension %d is negative (%lld)", fn, i,
                         (long long)shape[i]);
    if (!clai__mul_ok(n, (uint64_t)shape[i], &n) || n > (uint64_t)INT64_MAX)
      return clai__error(ctx, CLAI_E_OVERFLOW, "%s: the element count of the shape overflows", fn);
  }
  *numel = n;
  return CLAI_OK;
}

clai_status clai_tensor_init(clai_context *ctx, clai_tensor **out, clai_dtype dtype, int ndim,
                             const int64_t *shape) {
  if (out != NULL) *out = NULL;
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (out == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "clai_tensor_init: out is NULL");
  size_t es = clai_dtype_size(dtype);
  if (es == 0) return clai__error(ctx, CLAI_E_DTYPE, "clai_tensor_init: %d is not a dtype", (int)dtype);
  uint64_t numel, bytes;
  clai_status st = shape_numel(ctx, "clai_tensor_init", ndim, shape, &numel);
  if (st != CLAI_OK) return st;
  const int64_t bv = clai_dtype_block(dtype);
  if (bv > 1 && (ndim < 1 || shape[ndim - 1] % bv != 0)) {
    char sh[160];
    return clai__error(ctx, CLAI_E_SHAPE, "clai_tensor_init: a %s tensor's last dim must be a multiple of %lld (shape %s)",
                       clai_dtype_name(dtype), (long long)bv, clai__shape_str(ndim, shape, sh, sizeof sh));
  }
  if (!clai__mul_ok(numel / (uint64_t)bv, es, &bytes))
    return clai__error(ctx, CLAI_E_OVERFLOW, "clai_tensor_init: the byte size of the shape overflows");
  clai__buffer *buf = clai__pool_alloc(ctx, bytes > 0 ? bytes : 1, &st);
  if (buf == NULL) {
    char sh[160];
    const char *m = clai_errmsg(ctx);
    char *copy = strdup(m);
    st = clai__error(ctx, st, "clai_tensor_init: %s tensor %s: %s", clai_dtype_name(dtype),
                     clai__shape_str(ndim, shape, sh, sizeof sh), copy != NULL ? copy : "allocation failed");
    free(copy);
    return st;
  }
  clai_tensor *t = new_tensor(ctx, buf, dtype);
  buf->refs--; /* new_tensor took the reference the pool handed out */
  if (t == NULL) {
    clai__pool_release(ctx, buf);
    return clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "clai_tensor_init: out of host memory");
  }
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  set_dense_strides(t);
  *out = t;
  return CLAI_OK;
}

void clai_tensor_free(clai_tensor *t) {
  if (t == NULL) return;
  clai_context *ctx = t->ctx;
  if (t->mapped) clai__tensor_map_drop(t);
  if (t->prev != NULL) t->prev->next = t->next;
  else ctx->tensors = t->next;
  if (t->next != NULL) t->next->prev = t->prev;
  clai__pool_release(ctx, t->buf);
  free(t);
}

clai_context *clai_tensor_context(const clai_tensor *t) { return t != NULL ? t->ctx : NULL; }
clai_dtype clai_tensor_dtype(const clai_tensor *t) { return t != NULL ? t->dtype : CLAI_DTYPE_F32; }
int clai_tensor_ndim(const clai_tensor *t) { return t != NULL ? t->ndim : -1; }
int64_t clai_tensor_dim(const clai_tensor *t, int dim) {
  return t != NULL && dim >= 0 && dim < t->ndim ? t->shape[dim] : -1;
}
int64_t clai_tensor_stride(const clai_tensor *t, int dim) {
  return t != NULL && dim >= 0 && dim < t->ndim ? t->strides[dim] : -1;
}
int64_t clai_tensor_offset(const clai_tensor *t) { return t != NULL ? t->offset : -1; }

int64_t clai_tensor_numel(const clai_tensor *t) {
  if (t == NULL) return -1;
  for (int i = 0; i < t->ndim; i++)
    if (t->shape[i] == 0) return 0; /* before any product: the other dims of an empty shape may be huge */
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i]; /* cannot overflow: checked when t was made */
  return n;
}

int clai_tensor_is_contiguous(const clai_tensor *t) {
  if (t == NULL) return 0;
  if (clai_tensor_numel(t) == 0) return 1; /* first: the other dims of an empty view may multiply past INT64_MAX */
  int64_t expect = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != expect) return 0;
    expect *= t->shape[i];
  }
  return 1;
}

int clai__tensor_extent(const clai_tensor *t, int64_t *lo, int64_t *hi) {
  int64_t a = t->offset, b = t->offset;
  for (int i = 0; i < t->ndim; i++)
    if (t->shape[i] == 0) return 0; /* first: the other dims of an empty view may span past INT64_MAX */
  for (int i = 0; i < t->ndim; i++) {
    int64_t span = (t->shape[i] - 1) * t->strides[i];
    if (span < 0) a += span;
    else b += span;
  }
  *lo = a;
  *hi = b;
  return 1;
}

int clai__tensors_overlap(const clai_tensor *a, const clai_tensor *b) {
  int64_t alo, ahi, blo, bhi;
  if (a->buf != b->buf) return 0;
  if (!clai__tensor_extent(a, &alo, &ahi) || !clai__tensor_extent(b, &blo, &bhi)) return 0;
  /* byte ranges; a quantized tensor covers whole blocks */
  const int64_t ba = clai_dtype_block(a->dtype), bb = clai_dtype_block(b->dtype);
  const int64_t ea = (int64_t)clai_dtype_size(a->dtype), eb = (int64_t)clai_dtype_size(b->dtype);
  return alo / ba * ea < (bhi / bb + 1) * eb && blo / bb * eb < (ahi / ba + 1) * ea;
}

clai_status clai__check_blocks(clai_context *ctx, const clai_tensor *v, const char *fn) {
  const int64_t bv = clai_dtype_block(v->dtype);
  if (bv == 1) return CLAI_OK;
  const char *name = clai_dtype_name(v->dtype);
  char sh[160];
  if (v->ndim < 1 || v->shape[v->ndim - 1] % bv != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: a %s view's last dim must be a multiple of %lld (shape %s)", fn, name,
                       (long long)bv, clai__shape_str(v->ndim, v->shape, sh, sizeof sh));
  if (clai_tensor_numel(v) == 0) return CLAI_OK;
  if (v->strides[v->ndim - 1] != 1)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: a %s view's last dim must have stride 1 (the values of a block "
                       "are consecutive), not %lld", fn, name, (long long)v->strides[v->ndim - 1]);
  for (int i = 0; i < v->ndim - 1; i++)
    if (v->shape[i] > 1 && v->strides[i] % bv != 0)
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: a %s view's stride %d (%lld) must be a multiple of %lld: "
                         "views select whole blocks", fn, name, i, (long long)v->strides[i], (long long)bv);
  if (v->offset % bv != 0)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: a %s view's offset (%lld) must be a multiple of %lld: views "
                       "select whole blocks", fn, name, (long long)v->offset, (long long)bv);
  return CLAI_OK;
}

/* Makes a view of t with the given layout after checking it stays inside t's buffer. */
static clai_status make_view(clai_tensor *t, clai_tensor **out, const char *fn, int ndim, const int64_t *shape,
                             const int64_t *strides, int64_t offset) {
  clai_context *ctx = t->ctx;
  clai_tensor v;
  memset(&v, 0, sizeof v);
  v.buf = t->buf;
  v.dtype = t->dtype;
  v.ndim = ndim;
  v.offset = offset;
  for (int i = 0; i < ndim; i++) {
    v.shape[i] = shape[i];
    v.strides[i] = strides[i];
  }
  int64_t lo, hi;
  /* not the pool's rounded-up capacity */
  uint64_t cap_elems = t->buf->size / clai_dtype_size(t->dtype) * (uint64_t)clai_dtype_block(t->dtype);
  if (offset < 0) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: negative offset %lld", fn, (long long)offset);
  clai_status st = clai__check_blocks(ctx, &v, fn);
  if (st != CLAI_OK) return st;
  if (clai__tensor_extent(&v, &lo, &hi) && (lo < 0 || (uint64_t)hi >= cap_elems))
    return clai__error(ctx, CLAI_E_INVALID_ARG,
                       "%s: the view addresses elements [%lld, %lld] outside its buffer of %llu elements", fn,
                       (long long)lo, (long long)hi, (unsigned long long)cap_elems);
  clai_tensor *n = new_tensor(ctx, t->buf, t->dtype);
  if (n == NULL) return clai__error(ctx, CLAI_E_OUT_OF_MEMORY, "%s: out of host memory", fn);
  n->ndim = ndim;
  n->offset = offset;
  memcpy(n->shape, v.shape, sizeof n->shape);
  memcpy(n->strides, v.strides, sizeof n->strides);
  *out = n;
  return CLAI_OK;
}

static clai_status view_args(clai_tensor *t, clai_tensor **out, const char *fn) {
  if (out != NULL) *out = NULL;
  if (t == NULL) return CLAI_E_INVALID_ARG;
  if (out == NULL) return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: out is NULL", fn);
  return CLAI_OK;
}

clai_status clai_tensor_view(clai_tensor *t, clai_tensor **out, int ndim, const int64_t *shape,
                             const int64_t *strides, int64_t offset) {
  const char *fn = "clai_tensor_view";
  clai_status st = view_args(t, out, fn);
  if (st != CLAI_OK) return st;
  uint64_t numel;
  st = shape_numel(t->ctx, fn, ndim, shape, &numel);
  if (st != CLAI_OK) return st;
  if (ndim > 0 && strides == NULL) return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: strides is NULL", fn);
  for (int i = 0; i < ndim; i++) {
    if (strides[i] < 0)
      return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: stride %d is negative (%lld)", fn, i,
                         (long long)strides[i]);
    /* Bound every product so the extent arithmetic in make_view cannot overflow (an empty view addresses
     * nothing, and its extent is never computed). */
    uint64_t span;
    if (numel > 0 && shape[i] > 0 && (!clai__mul_ok((uint64_t)shape[i] - 1, (uint64_t)strides[i], &span) ||
                         span > ((uint64_t)1 << 50)))
      return clai__error(t->ctx, CLAI_E_OVERFLOW, "%s: dimension %d spans too many elements", fn, i);
  }
  if (offset < 0 || offset > ((int64_t)1 << 50))
    return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: offset %lld out of range", fn, (long long)offset);
  return make_view(t, out, fn, ndim, shape, strides, t->offset + offset);
}

static int norm_dim(int d, int ndim) { return d < 0 ? d + ndim : d; }

clai_status clai_tensor_transpose(clai_tensor *t, clai_tensor **out, int d0, int d1) {
  const char *fn = "clai_tensor_transpose";
  clai_status st = view_args(t, out, fn);
  if (st != CLAI_OK) return st;
  int a = norm_dim(d0, t->ndim), b = norm_dim(d1, t->ndim);
  if (a < 0 || a >= t->ndim || b < 0 || b >= t->ndim)
    return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: dims (%d, %d) out of range for a %d-d tensor", fn, d0,
                       d1, t->ndim);
  int64_t shape[CLAI_MAX_DIMS], strides[CLAI_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  memcpy(strides, t->strides, sizeof strides);
  shape[a] = t->shape[b];
  shape[b] = t->shape[a];
  strides[a] = t->strides[b];
  strides[b] = t->strides[a];
  return make_view(t, out, fn, t->ndim, shape, strides, t->offset);
}

clai_status clai_tensor_permute(clai_tensor *t, clai_tensor **out, const int *perm) {
  const char *fn = "clai_tensor_permute";
  clai_status st = view_args(t, out, fn);
  if (st != CLAI_OK) return st;
  if (perm == NULL && t->ndim > 0) return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: perm is NULL", fn);
  int seen[CLAI_MAX_DIMS] = {0};
  int64_t shape[CLAI_MAX_DIMS], strides[CLAI_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++) {
    int p = perm[i];
    if (p < 0 || p >= t->ndim || seen[p])
      return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: perm is not a permutation of 0..%d (entry %d is %d)",
                         fn, t->ndim - 1, i, p);
    seen[p] = 1;
    shape[i] = t->shape[p];
    strides[i] = t->strides[p];
  }
  return make_view(t, out, fn, t->ndim, shape, strides, t->offset);
}

clai_status clai_tensor_slice(clai_tensor *t, clai_tensor **out, int dim, int64_t start, int64_t stop,
                              int64_t step) {
  const char *fn = "clai_tensor_slice";
  clai_status st = view_args(t, out, fn);
  if (st != CLAI_OK) return st;
  int d = norm_dim(dim, t->ndim);
  if (d < 0 || d >= t->ndim)
    return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: dim %d out of range for a %d-d tensor", fn, dim, t->ndim);
  if (step < 1) return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: step %lld is not positive", fn, (long long)step);
  int64_t n = t->shape[d];
  if (start < 0) start += n;
  if (stop < 0) stop += n;
  if (start < 0) start = 0;
  if (start > n) start = n;
  if (stop < start) stop = start;
  if (stop > n) stop = n;
  int64_t shape[CLAI_MAX_DIMS], strides[CLAI_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  memcpy(strides, t->strides, sizeof strides);
  /* Written so that no step (up to INT64_MAX) overflows: with two or more elements step < n, so the new
   * stride stays within t's extent; a size-0 or size-1 dim keeps its stride and an empty one its offset. */
  shape[d] = stop > start ? (stop - start - 1) / step + 1 : 0;
  strides[d] = shape[d] > 1 ? t->strides[d] * step : t->strides[d];
  return make_view(t, out, fn, t->ndim, shape, strides, t->offset + (shape[d] > 0 ? start * t->strides[d] : 0));
}

clai_status clai_tensor_reshape(clai_tensor *t, clai_tensor **out, int ndim, const int64_t *shape) {
  const char *fn = "clai_tensor_reshape";
  clai_status st = view_args(t, out, fn);
  if (st != CLAI_OK) return st;
  if (ndim < 0 || ndim > CLAI_MAX_DIMS)
    return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: ndim %d is outside [0, %d]", fn, ndim, CLAI_MAX_DIMS);
  if (ndim > 0 && shape == NULL) return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: shape is NULL", fn);
  int64_t numel = clai_tensor_numel(t), known = 1, ns[CLAI_MAX_DIMS];
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    ns[i] = shape[i];
    if (shape[i] == -1 && infer < 0) {
      infer = i;
      continue;
    }
    if (shape[i] < 0)
      return clai__error(t->ctx, CLAI_E_INVALID_ARG, "%s: dimension %d is %lld", fn, i, (long long)shape[i]);
    uint64_t k;
    if (!clai__mul_ok((uint64_t)known, (uint64_t)shape[i], &k) || k > (uint64_t)INT64_MAX)
      return clai__error(t->ctx, CLAI_E_OVERFLOW, "%s: the element count of the shape overflows", fn);
    known = (int64_t)k;
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      return clai__error(t->ctx, CLAI_E_SHAPE, "%s: cannot infer dimension %d: %lld elements into %lld", fn,
                         infer, (long long)numel, (long long)known);
    ns[infer] = numel / known;
    known *= ns[infer];
  }
  char a[160], b[160];
  if (known != numel)
    return clai__error(t->ctx, CLAI_E_SHAPE, "%s: cannot reshape %s (%lld elements) to %s (%lld)", fn,
                       clai__shape_str(t->ndim, t->shape, a, sizeof a), (long long)numel,
                       clai__shape_str(ndim, ns, b, sizeof b), (long long)known);
  /* Walk old and new dims together in chunks of equal element count; inside a chunk the old dims must be
   * contiguous with each other, and the new dims take strides from the chunk's innermost stride. */
  int64_t nstr[CLAI_MAX_DIMS];
  int i = 0, j = 0;
  if (numel == 0) {
    clai__dense_strides(ndim, ns, nstr);
    return make_view(t, out, fn, ndim, ns, nstr, t->offset);
  }
  int64_t os[CLAI_MAX_DIMS], ost[CLAI_MAX_DIMS];
  int on = 0;
  for (int k = 0; k < t->ndim; k++)
    if (t->shape[k] != 1) {
      os[on] = t->shape[k];
      ost[on++] = t->strides[k];
    }
  while (j < ndim) {
    if (ns[j] == 1) { /* size-1 dims fit anywhere; their stride is never used */
      nstr[j++] = 1;
      continue;
    }
    int i0 = i, j0 = j;
    int64_t po = os[i++], pn = ns[j++];
    while (po != pn) { /* equal totals and numel > 0 keep both indices in range */
      if (po < pn) po *= os[i++];
      else pn *= ns[j++];
    }
    for (int k = i0; k < i - 1; k++)
      if (ost[k] != ost[k + 1] * os[k + 1])
        return clai__error(t->ctx, CLAI_E_NOT_CONTIGUOUS,
                           "%s: %s with these strides cannot be viewed as %s; copy it first (clai_copy)", fn,
                           clai__shape_str(t->ndim, t->shape, a, sizeof a), clai__shape_str(ndim, ns, b, sizeof b));
    int64_t s = ost[i - 1];
    for (int k = j - 1; k >= j0; k--) {
      nstr[k] = s;
      s *= ns[k];
    }
  }
  return make_view(t, out, fn, ndim, ns, nstr, t->offset);
}

int clai__broadcast_strides(const clai_tensor *src, int ndim, const int64_t *shape, int64_t *strides) {
  if (src->ndim > ndim) {
    for (int i = 0; i < src->ndim - ndim; i++)
      if (src->shape[i] != 1) return 0;
  }
  for (int i = 0; i < ndim; i++) {
    int si = src->ndim - ndim + i;
    if (si < 0) {
      strides[i] = 0;
    } else if (src->shape[si] == shape[i]) {
      strides[i] = shape[i] == 1 ? 0 : src->strides[si];
    } else if (src->shape[si] == 1) {
      strides[i] = 0;
    } else {
      return 0;
    }
  }
  return 1;
}

clai_status clai_tensor_expand(clai_tensor *t, clai_tensor **out, int ndim, const int64_t *shape) {
  const char *fn = "clai_tensor_expand";
  clai_status st = view_args(t, out, fn);
  if (st != CLAI_OK) return st;
  uint64_t numel;
  st = shape_numel(t->ctx, fn, ndim, shape, &numel);
  if (st != CLAI_OK) return st;
  int64_t strides[CLAI_MAX_DIMS];
  char a[160], b[160];
  if (!clai__broadcast_strides(t, ndim, shape, strides))
    return clai__error(t->ctx, CLAI_E_SHAPE, "%s: %s does not broadcast to %s", fn,
                       clai__shape_str(t->ndim, t->shape, a, sizeof a), clai__shape_str(ndim, shape, b, sizeof b));
  return make_view(t, out, fn, ndim, shape, strides, t->offset);
}

void clai__index_build(clai__index *idx, int nops, const clai_tensor *const *ops) {
  memset(idx, 0, sizeof *idx);
  const clai_tensor *o = ops[0];
  for (int k = 0; k < nops; k++) idx->offset[k] = ops[k]->offset;
  /* Nothing to index: one dim of size 0. (The other dims of an empty shape may multiply, with their
   * strides, past INT64_MAX, so the merging below must not see them.) */
  if (clai_tensor_numel(o) == 0) {
    idx->ndim = 1;
    return;
  }
  int64_t st[CLAI__IDX_OPS][CLAI_MAX_DIMS];
  for (int k = 0; k < nops; k++) {
    if (!clai__broadcast_strides(ops[k], o->ndim, o->shape, st[k])) memset(st[k], 0, sizeof st[k]);
    idx->offset[k] = ops[k]->offset;
  }
  /* Drop size-1 dims and merge a dim into the next inner one where every operand is contiguous across
   * them, so that the kernels decompose fewer indices. */
  int n = 0;
  int64_t numel = 1;
  for (int i = 0; i < o->ndim; i++) {
    numel *= o->shape[i];
    if (o->shape[i] == 1) continue;
    if (n > 0) {
      int merge = 1;
      for (int k = 0; k < nops; k++)
        if (idx->stride[k][n - 1] != st[k][i] * o->shape[i]) merge = 0;
      if (merge) {
        idx->shape[n - 1] *= o->shape[i];
        for (int k = 0; k < nops; k++) idx->stride[k][n - 1] = st[k][i];
        continue;
      }
    }
    idx->shape[n] = o->shape[i];
    for (int k = 0; k < nops; k++) idx->stride[k][n] = st[k][i];
    n++;
  }
  idx->ndim = n;
  idx->numel = numel;
}

/* ---- host transfers ---------------------------------------------------------------------------------- */

static clai_status transfer_args(clai_tensor *t, const void *p, size_t size, const char *fn, size_t *bytes,
                                 int exact) {
  if (t == NULL) return CLAI_E_INVALID_ARG;
  clai_context *ctx = t->ctx;
  uint64_t b;
  if (!clai__mul_ok((uint64_t)(clai_tensor_numel(t) / clai_dtype_block(t->dtype)), clai_dtype_size(t->dtype), &b) ||
      b > SIZE_MAX)
    return clai__error(ctx, CLAI_E_OVERFLOW, "%s: the byte size of the %s tensor (%lld elements) overflows", fn,
                       clai_dtype_name(t->dtype), (long long)clai_tensor_numel(t));
  if (p == NULL && b > 0) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: host pointer is NULL", fn);
  if (exact && size != b)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %zu bytes given, the %s tensor holds %llu", fn, size,
                       clai_dtype_name(t->dtype), (unsigned long long)b);
  if (!exact && size < b)
    return clai__error(ctx, CLAI_E_BUFFER_TOO_SMALL, "%s: buffer of %zu bytes, the %s tensor needs %llu", fn,
                       size, clai_dtype_name(t->dtype), (unsigned long long)b);
  *bytes = (size_t)b;
  return CLAI_OK;
}

/* A strided view of a quantized tensor: its rows (the last dim: whole blocks, consecutive) one transfer each,
 * in row-major order, then one wait. */
static clai_status transfer_rows(clai_tensor *t, void *host, int to_device) {
  clai_context *ctx = t->ctx;
  const int64_t bv = clai_dtype_block(t->dtype), bs = (int64_t)clai_dtype_size(t->dtype);
  const int64_t cols = t->shape[t->ndim - 1], rows = clai_tensor_numel(t) / cols;
  const size_t rbytes = (size_t)(cols / bv * bs);
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, off = t->offset;
    for (int d = t->ndim - 2; d >= 0; d--) {
      off += rem % t->shape[d] * t->strides[d];
      rem /= t->shape[d];
    }
    const size_t at = (size_t)(off / bv * bs);
    char *h = (char *)host + (size_t)r * rbytes;
    cl_int err = to_device ? clEnqueueWriteBuffer(ctx->queue, t->buf->mem, CL_FALSE, at, rbytes, h, 0, NULL, NULL)
                           : clEnqueueReadBuffer(ctx->queue, t->buf->mem, CL_FALSE, at, rbytes, h, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
      clFinish(ctx->queue); /* host must not be released while earlier rows are in flight */
      return clai__cl_error(ctx, err, "%s: row %lld: clEnqueue%sBuffer failed", to_device ? "clai_tensor_write" :
                            "clai_tensor_read", (long long)r, to_device ? "Write" : "Read");
    }
  }
  cl_int err = clFinish(ctx->queue);
  return err == CL_SUCCESS ? CLAI_OK : clai__cl_error(ctx, err, "clFinish failed");
}

/* Host <-> device copy of t's elements in dense row-major order. A contiguous tensor is one blocking
 * transfer (which, on the in-order queue, also waits for the work that writes it); any other view goes
 * through a dense temporary and the strided copy kernel. */
static clai_status transfer(clai_tensor *t, void *host, size_t size, int to_device) {
  const char *fn = to_device ? "clai_tensor_write" : "clai_tensor_read";
  size_t n = 0;
  clai_status st = transfer_args(t, host, size, fn, &n, to_device);
  if (st != CLAI_OK || n == 0) return st;
  clai_context *ctx = t->ctx;
  if (to_device && (st = clai__check_out_any(ctx, t, fn, "the tensor")) != CLAI_OK) return st;
  if (clai_dtype_block(t->dtype) > 1 && !clai_tensor_is_contiguous(t)) return transfer_rows(t, host, to_device);
  if (clai_tensor_is_contiguous(t)) {
    size_t at = (size_t)(t->offset / clai_dtype_block(t->dtype)) * clai_dtype_size(t->dtype);
    cl_int err = to_device ? clEnqueueWriteBuffer(ctx->queue, t->buf->mem, CL_TRUE, at, n, host, 0, NULL, NULL)
                           : clEnqueueReadBuffer(ctx->queue, t->buf->mem, CL_TRUE, at, n, host, 0, NULL, NULL);
    return err == CL_SUCCESS ? CLAI_OK
                             : clai__cl_error(ctx, err, "%s: clEnqueue%sBuffer failed", fn, to_device ? "Write" : "Read");
  }
  clai_tensor *tmp = NULL;
  st = clai_tensor_init(ctx, &tmp, t->dtype, t->ndim, t->shape);
  if (st == CLAI_OK && to_device) {
    st = transfer(tmp, host, size, 1);
    if (st == CLAI_OK) st = clai__copy(ctx, t, tmp, fn);
  } else if (st == CLAI_OK) {
    st = clai__copy(ctx, tmp, t, fn);
    if (st == CLAI_OK) st = transfer(tmp, host, size, 0);
  }
  clai_tensor_free(tmp); /* safe before the copy runs: the in-order queue orders any reuse after it */
  return st;
}

clai_status clai_tensor_write(clai_tensor *t, const void *src, size_t bytes) {
  return transfer(t, (void *)src, bytes, 1);
}

clai_status clai_tensor_read(clai_tensor *t, void *dst, size_t dst_size) { return transfer(t, dst, dst_size, 0); }

int clai__alias_ok(const clai_tensor *out, const clai_tensor *in) {
  if (!clai__tensors_overlap(out, in)) return 1;
  int64_t st[CLAI_MAX_DIMS];
  if (in->offset != out->offset || !clai__broadcast_strides(in, out->ndim, out->shape, st)) return 0;
  for (int i = 0; i < out->ndim; i++)
    if (out->shape[i] != 1 && st[i] != out->strides[i]) return 0;
  return 1;
}

int clai__same_shape(const clai_tensor *a, const clai_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}
