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
    /* Packed path: a 6 x 16 tile is 12 accumulator vectors, which fits AVX2's 16 registers (an 8 x 16
     * tile spills there); local 2 x 8 shares each A panel among 8 work-items. Measured on POCL 3.1 with
     * a 2-core Zen 3: ~150 GFLOP/s in the compute kernel, 1024 and 2048 as fast as 1000. */
    cfg->packed = 1;
    cfg->p_rm = 6;
    cfg->p_vw = 16;
    cfg->p_kb = 256;
    cfg->p_uk = 4;
    cfg->p_pk = 8;
    cfg->p_lx = 2;
    cfg->p_ly = 8;
    cfg->p_pack_lx = 16;
    cfg->p_skinny = 16;
  } else {
    cfg->rm = 4;
    cfg->vw = 4;
    cfg->kb = 64;
    cfg->lx = 16;
    cfg->ly = 16;
    cfg->packed = 0;
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
  int kernel;   /* the generic kernel, or CLAI__K_GEMM_PACKED */
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
  if (p->kernel == CLAI__K_GEMM_F32_F32 && ctx->kernels[CLAI__K_GEMM_PACKED] != NULL)
    p->kernel = p->M <= ctx->gemm.p_skinny ? CLAI__K_GEMM_APACKED : CLAI__K_GEMM_PACKED;
  return CLAI_OK;
}

/* Packs op(A) (and, unless M is skinny, op(B)) into pooled workspaces, then runs the packed kernel
 * (cl/matmul_packed.cl). The workspaces go back to the pool at once: the in-order queue runs any later
 * user after these kernels. */
static clai_status launch_packed(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                                 const gemm_plan *p, float alpha, float beta) {
  const clai__gemm_config *g = &ctx->gemm;
  const int skinny = p->kernel == CLAI__K_GEMM_APACKED;
  const int64_t Mt = (p->M + g->p_rm - 1) / g->p_rm, Nt = skinny ? 0 : (p->N + g->p_vw - 1) / g->p_vw;
  uint64_t abytes, bbytes;
  if (!clai__mul_ok((uint64_t)p->ix.numel * (uint64_t)Mt, (uint64_t)p->K * (uint64_t)g->p_rm * 4, &abytes) ||
      !clai__mul_ok((uint64_t)p->ix.numel * (uint64_t)Nt, (uint64_t)p->K * (uint64_t)g->p_vw * 4, &bbytes))
    return clai__error(ctx, CLAI_E_OVERFLOW, "clai_matmul: the packing workspace size overflows");
  clai_status st;
  clai__buffer *ap = clai__pool_alloc(ctx, abytes ? abytes : 1, &st);
  if (ap == NULL) return st;
  clai__buffer *bp = clai__pool_alloc(ctx, bbytes ? bbytes : 1, &st);
  if (bp == NULL) {
    clai__pool_release(ctx, ap);
    return st;
  }
  const cl_int m = (cl_int)p->M, n = (cl_int)p->N, k = (cl_int)p->K, mt = (cl_int)Mt, nt = (cl_int)Nt;
  const cl_long sam = p->sam, sak = p->sak, sbk = p->sbk, sbn = p->sbn, scm = p->scm, scn = p->scn;
  const cl_float al = alpha, be = beta;
  size_t gpack[3] = {(size_t)((p->K + g->p_pk - 1) / g->p_pk), (size_t)(Mt + Nt), (size_t)p->ix.numel};
  st = clai__launch(ctx, CLAI__K_PACK_AB, gpack, 14, CLAI__ARG(a->buf->mem), CLAI__ARG(b->buf->mem),
                    CLAI__ARG(ap->mem), CLAI__ARG(bp->mem), CLAI__ARG(p->ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(k),
                    CLAI__ARG(mt), CLAI__ARG(nt), CLAI__ARG(sam), CLAI__ARG(sak), CLAI__ARG(sbk), CLAI__ARG(sbn));
  size_t ggemm[3] = {(size_t)Mt, (size_t)Nt, (size_t)p->ix.numel};
  if (st == CLAI_OK && skinny) {
    ggemm[1] = (size_t)((p->N + g->p_vw - 1) / g->p_vw);
    st = clai__launch(ctx, CLAI__K_GEMM_APACKED, ggemm, 14, CLAI__ARG(c->buf->mem), CLAI__ARG(ap->mem),
                      CLAI__ARG(b->buf->mem), CLAI__ARG(p->ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(k), CLAI__ARG(mt),
                      CLAI__ARG(sbk), CLAI__ARG(sbn), CLAI__ARG(scm), CLAI__ARG(scn), CLAI__ARG(al), CLAI__ARG(be));
  } else if (st == CLAI_OK)
    st = clai__launch(ctx, CLAI__K_GEMM_PACKED, ggemm, 13, CLAI__ARG(c->buf->mem), CLAI__ARG(ap->mem),
                      CLAI__ARG(bp->mem), CLAI__ARG(p->ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(k), CLAI__ARG(mt),
                      CLAI__ARG(nt), CLAI__ARG(scm), CLAI__ARG(scn), CLAI__ARG(al), CLAI__ARG(be));
  clai__pool_release(ctx, ap);
  clai__pool_release(ctx, bp);
  return st;
}

clai_status clai_matmul(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a, const clai_tensor *b,
                        int trans_b, float alpha, float beta) {
  gemm_plan p;
  clai_status s = plan(ctx, "clai_matmul", c, a, trans_a, b, trans_b, &p);
  if (s != CLAI_OK) return s;
  /* K = 0: C = beta * C without a GEMM launch. (POCL 3.1 ran the store of the skinny kernel twice when its
   * barrier loop had no iteration; no kernel needs to handle an empty k range this way.) */
  if (p.K == 0) return beta == 0.0f ? clai_fill(ctx, c, 0.0) : clai_scale(ctx, c, c, beta);
  if (p.kernel == CLAI__K_GEMM_PACKED || p.kernel == CLAI__K_GEMM_APACKED)
    return launch_packed(ctx, c, a, b, &p, alpha, beta);
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
  if (p.kernel == CLAI__K_GEMM_PACKED || p.kernel == CLAI__K_GEMM_APACKED)
    snprintf(buf, cap, "cpu %s rm=%d vw=%d kb=%d uk=%d local=%zux%zu",
             p.kernel == CLAI__K_GEMM_PACKED ? "packed" : "skinny (A packed)", g->p_rm, g->p_vw, g->p_kb, g->p_uk,
             l[0], l[1]);
  else
    snprintf(buf, cap, "%s register-tile rm=%d vw=%d kb=%d local=%zux%zu %s", ctx->caps.is_cpu ? "cpu" : "gpu",
             g->rm, g->vw, g->kb, l[0], l[1], p.sbn == 1 ? "b-vector" : "b-gather");
  return CLAI_OK;
}
