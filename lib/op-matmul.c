/* op-matmul.c - clai_matmul: argument checks, batch broadcasting and the launch of cl/matmul.cl. */
#include <limits.h>

#include "internal.h"

void clai__gemm_config_default(const clai__devcaps *caps, clai__gemm_config *cfg) {
  if (caps->is_cpu) {
    /* 8 rows x 16 columns of C per work-item, 8 x 2 work-items per group: a 64 x 32 block of C whose
     * k-blocks of 128 stay in L2 on POCL (see cl/matmul.cl). */
    cfg->rm = 8;
    cfg->vw = 16;
    cfg->kb = 128;
    cfg->lx = 8;
    cfg->ly = 2;
  } else {
    cfg->rm = 4;
    cfg->vw = 4;
    cfg->kb = 64;
    cfg->lx = 16;
    cfg->ly = 16;
  }
}

/* The logical [rows, cols] of the last two dims of t after an optional transpose, with their strides. */
static void mat_dims(const clai_tensor *t, int trans, int64_t *rows, int64_t *cols, int64_t *srow, int64_t *scol) {
  int r = t->ndim - 2, c = t->ndim - 1;
  if (trans) {
    int tmp = r;
    r = c;
    c = tmp;
  }
  *rows = t->shape[r];
  *cols = t->shape[c];
  *srow = t->strides[r];
  *scol = t->strides[c];
}

/* A tensor header that describes only the batch dims of t (for clai__index_build). */
static void batch_view(const clai_tensor *t, clai_tensor *v) {
  *v = *t;
  v->ndim = t->ndim - 2;
}

clai_status clai_matmul(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a, const clai_tensor *b,
                        int trans_b, float alpha, float beta) {
  const char *fn = "clai_matmul";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_tensor(ctx, c, fn, "c");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, a, fn, "a");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, b, fn, "b");
  if (s != CLAI_OK) return s;
  if (a->ndim < 2 || b->ndim < 2 || c->ndim < 2)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: a, b and c need at least 2 dims (have %d, %d, %d)", fn, a->ndim,
                       b->ndim, c->ndim);
  if (a->dtype != b->dtype || a->dtype == CLAI_DTYPE_I32 || c->dtype == CLAI_DTYPE_I32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: a and b must both be f32 or both f16 and c f32 or f16 (have %s, %s, %s)",
                       fn, clai_dtype_name(a->dtype), clai_dtype_name(b->dtype), clai_dtype_name(c->dtype));
  int64_t M, K, K2, N, sam, sak, sbk, sbn;
  mat_dims(a, trans_a, &M, &K, &sam, &sak);
  mat_dims(b, trans_b, &K2, &N, &sbk, &sbn);
  char x[160], y[160], z[160];
  if (K != K2 || c->shape[c->ndim - 2] != M || c->shape[c->ndim - 1] != N)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: op(a) is %lldx%lld and op(b) %lldx%lld, c is %s: need [.., M, K] x [.., K, N] -> [.., M, N]",
                       fn, (long long)M, (long long)K, (long long)K2, (long long)N,
                       clai__shape_str(c->ndim, c->shape, z, sizeof z));
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: M, N and K must each be below 2^31", fn);
  clai_tensor cb, ab, bb;
  batch_view(c, &cb);
  batch_view(a, &ab);
  batch_view(b, &bb);
  int64_t tmp[CLAI_MAX_DIMS];
  if (!clai__broadcast_strides(&ab, cb.ndim, cb.shape, tmp) || !clai__broadcast_strides(&bb, cb.ndim, cb.shape, tmp))
    return clai__error(ctx, CLAI_E_SHAPE, "%s: batch dims of a %s and b %s do not broadcast to c %s", fn,
                       clai__shape_str(a->ndim, a->shape, x, sizeof x), clai__shape_str(b->ndim, b->shape, y, sizeof y),
                       clai__shape_str(c->ndim, c->shape, z, sizeof z));
  if (clai__tensors_overlap(c, a) || clai__tensors_overlap(c, b))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: c overlaps a or b in memory", fn);
  clai__index ix;
  const clai_tensor *ops[3] = {&cb, &ab, &bb};
  clai__index_build(&ix, 3, ops);
  int k = a->dtype == CLAI_DTYPE_F32 ? (c->dtype == CLAI_DTYPE_F32 ? CLAI__K_GEMM_F32_F32 : CLAI__K_GEMM_F32_F16)
                                     : (c->dtype == CLAI_DTYPE_F32 ? CLAI__K_GEMM_F16_F32 : CLAI__K_GEMM_F16_F16);
  const cl_int m = (cl_int)M, n = (cl_int)N, kk = (cl_int)K;
  const cl_long l_sam = sam, l_sak = sak, l_sbk = sbk, l_sbn = sbn, scm = c->strides[c->ndim - 2],
                scn = c->strides[c->ndim - 1];
  const cl_float al = alpha, be = beta;
  size_t global[3] = {(size_t)((M + ctx->gemm.rm - 1) / ctx->gemm.rm), (size_t)((N + ctx->gemm.vw - 1) / ctx->gemm.vw),
                      (size_t)ix.numel};
  return clai__launch(ctx, k, global, 15, CLAI__ARG(c->buf->mem), CLAI__ARG(a->buf->mem), CLAI__ARG(b->buf->mem),
                      CLAI__ARG(ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(kk), CLAI__ARG(l_sam), CLAI__ARG(l_sak),
                      CLAI__ARG(l_sbk), CLAI__ARG(l_sbn), CLAI__ARG(scm), CLAI__ARG(scn), CLAI__ARG(al), CLAI__ARG(be));
}
