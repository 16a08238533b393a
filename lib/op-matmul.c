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

/* Everything a launch needs, worked out once by plan() for clai_matmul and clai_matmul_describe. */
typedef struct gemm_plan {
  int kernel;
  int64_t M, N, K, sam, sak, sbk, sbn, scm, scn;
  clai__index ix; /* batch dims: operand 0 = C, 1 = A, 2 = B */
} gemm_plan;

static clai_status plan(clai_context *ctx, const char *fn, const clai_tensor *c, const clai_tensor *a, int trans_a,
                        const clai_tensor *b, int trans_b, gemm_plan *p) {
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
  int64_t K2;
  mat_dims(a, trans_a, &p->M, &p->K, &p->sam, &p->sak);
  mat_dims(b, trans_b, &K2, &p->N, &p->sbk, &p->sbn);
  char x[160], y[160], z[160];
  if (p->K != K2 || c->shape[c->ndim - 2] != p->M || c->shape[c->ndim - 1] != p->N)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: op(a) is %lldx%lld and op(b) %lldx%lld, c is %s: need [.., M, K] x [.., K, N] -> [.., M, N]",
                       fn, (long long)p->M, (long long)p->K, (long long)K2, (long long)p->N,
                       clai__shape_str(c->ndim, c->shape, z, sizeof z));
  if (p->M > INT_MAX || p->N > INT_MAX || p->K > INT_MAX)
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
  const clai_tensor *ops[3] = {&cb, &ab, &bb};
  clai__index_build(&p->ix, 3, ops);
  p->scm = c->strides[c->ndim - 2];
  p->scn = c->strides[c->ndim - 1];
  p->kernel = a->dtype == CLAI_DTYPE_F32 ? (c->dtype == CLAI_DTYPE_F32 ? CLAI__K_GEMM_F32_F32 : CLAI__K_GEMM_F32_F16)
                                         : (c->dtype == CLAI_DTYPE_F32 ? CLAI__K_GEMM_F16_F32 : CLAI__K_GEMM_F16_F16);
  return CLAI_OK;
}

clai_status clai_matmul(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a, const clai_tensor *b,
                        int trans_b, float alpha, float beta) {
  gemm_plan p;
  clai_status s = plan(ctx, "clai_matmul", c, a, trans_a, b, trans_b, &p);
  if (s != CLAI_OK) return s;
  const cl_int m = (cl_int)p.M, n = (cl_int)p.N, k = (cl_int)p.K;
  const cl_long sam = p.sam, sak = p.sak, sbk = p.sbk, sbn = p.sbn, scm = p.scm, scn = p.scn;
  const cl_float al = alpha, be = beta;
  size_t global[3] = {(size_t)((p.M + ctx->gemm.rm - 1) / ctx->gemm.rm),
                      (size_t)((p.N + ctx->gemm.vw - 1) / ctx->gemm.vw), (size_t)p.ix.numel};
  return clai__launch(ctx, p.kernel, global, 15, CLAI__ARG(c->buf->mem), CLAI__ARG(a->buf->mem),
                      CLAI__ARG(b->buf->mem), CLAI__ARG(p.ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(k), CLAI__ARG(sam),
                      CLAI__ARG(sak), CLAI__ARG(sbk), CLAI__ARG(sbn), CLAI__ARG(scm), CLAI__ARG(scn), CLAI__ARG(al),
                      CLAI__ARG(be));
}

clai_status clai_matmul_describe(clai_context *ctx, const clai_tensor *c, const clai_tensor *a, int trans_a,
                                 const clai_tensor *b, int trans_b, char *buf, size_t cap) {
  const char *fn = "clai_matmul_describe";
  gemm_plan p;
  clai_status s = plan(ctx, fn, c, a, trans_a, b, trans_b, &p);
  if (s != CLAI_OK) return s;
  if (buf == NULL || cap == 0) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: buf is NULL or empty", fn);
  const clai__gemm_config *g = &ctx->gemm;
  const size_t *l = ctx->klocal[p.kernel];
  snprintf(buf, cap, "%s register-tile rm=%d vw=%d kb=%d local=%zux%zu %s", ctx->caps.is_cpu ? "cpu" : "gpu",
           g->rm, g->vw, g->kb, l[0], l[1], p.sbn == 1 ? "b-vector" : "b-gather");
  return CLAI_OK;
}
