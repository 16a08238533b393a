/* op-attention-backward.c - the backward of clai_attention (cl/attention_backward.cl): two deterministic
 * kernels, one for dK and dV (one work-group per block of keys), one for dQ (one per block of queries). */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "internal.h"

#define ATT_BWD_DMAX 256

static int is_float(clai_dtype dt) { return dt == CLAI_DTYPE_F32 || dt == CLAI_DTYPE_F16; }

/* (offset, strides of dims 0..3, 0, 0, 0); for a 3-d tensor the column stride is 0. */
static cl_long8 layout_of(const clai_tensor *t) {
  cl_long8 l;
  memset(&l, 0, sizeof l);
  l.s[0] = t->offset;
  for (int i = 0; i < t->ndim && i < 4; i++) l.s[1 + i] = t->strides[i];
  return l;
}

static int same_shape(const clai_tensor *t, int nd, const int64_t *shape) {
  if (t->ndim != nd) return 0;
  for (int i = 0; i < nd; i++)
    if (t->shape[i] != shape[i]) return 0;
  return 1;
}

/* *t, or an f32 copy of it in *tmp when it is f16 (clai_matmul multiplies like dtypes; P and dS are f32). */
static clai_status widen(clai_context *ctx, const clai_tensor **t, clai_tensor **tmp) {
  if ((*t)->dtype == CLAI_DTYPE_F32) return CLAI_OK;
  clai_status st = clai_tensor_init(ctx, tmp, CLAI_DTYPE_F32, (*t)->ndim, (*t)->shape);
  if (st == CLAI_OK) st = clai__copy(ctx, *tmp, *t, "clai_attention_backward");
  *t = *tmp;
  return st;
}

/* The backward in parts, on a device whose loops stop after a number of iterations shared by all of a
 * work-item's loops (llvmpipe; caps.loop_limit), where the fused kernels' walks over the keys or the queries
 * of a head would pass it (clai__attention_in_parts; rusticl 22.3: grad_q wrong at Lk = 1500, D = 64).
 * P is recomputed as clai_attention's parts do (S = q k^T, softmax; lse is not needed), dP = dO v^T,
 * dS = scale * P (dP - delta) with delta = rowsum(dO out) from the saved out, as the fused kernels take it,
 * dQ = dS k, and dK = dS^T q and dV = P^T dO, summed over the G query heads of each key/value head. Every
 * product and sum is an op that keeps within the limit. */
static clai_status backward_parts(clai_context *ctx, clai_tensor *grad_q, clai_tensor *grad_k, clai_tensor *grad_v,
                                  const clai_tensor *grad_out, const clai_tensor *q, const clai_tensor *k,
                                  const clai_tensor *v, const clai_tensor *out, double sc, int causal) {
  const int64_t B = q->shape[0], H = q->shape[1], Lq = q->shape[2], D = q->shape[3];
  const int64_t Hk = k->shape[1], Lk = k->shape[2], Dv = v->shape[3], G = H / Hk;
  clai_tensor *tmp[12] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  clai_status st = widen(ctx, &q, &tmp[0]);
  if (st == CLAI_OK) st = widen(ctx, &k, &tmp[1]);
  if (st == CLAI_OK) st = widen(ctx, &v, &tmp[2]);
  if (st == CLAI_OK) st = widen(ctx, &grad_out, &tmp[3]);
  if (st == CLAI_OK) st = widen(ctx, &out, &tmp[9]);
  /* delta [B, H, Lq] = rowsum(dO * out) */
  const int64_t oshape[4] = {B, H, Lq, Dv}, dshape[3] = {B, H, Lq};
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &tmp[10], CLAI_DTYPE_F32, 4, oshape);
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &tmp[11], CLAI_DTYPE_F32, 3, dshape);
  if (st == CLAI_OK) st = clai_binary(ctx, CLAI_MUL, tmp[10], grad_out, out);
  if (st == CLAI_OK) st = clai_reduce(ctx, CLAI_REDUCE_SUM, tmp[11], tmp[10], 3, 0);
  clai_tensor q5 = clai__heads5(q, Hk, G, 0), k5 = clai__heads5(k, Hk, G, 1), v5 = clai__heads5(v, Hk, G, 1),
              do5 = clai__heads5(grad_out, Hk, G, 0), gq5 = clai__heads5(grad_q, Hk, G, 0);
  const int64_t sshape[5] = {B, Hk, G, Lq, Lk};
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &tmp[4], CLAI_DTYPE_F32, 5, sshape); /* S, then P */
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &tmp[5], CLAI_DTYPE_F32, 5, sshape); /* dP */
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &tmp[6], CLAI_DTYPE_F32, 5, sshape); /* dS */
  clai_tensor *P = tmp[4], *dP = tmp[5], *dS = tmp[6];
  const clai_softmax_opts opts = {(float)sc, causal};
  if (st == CLAI_OK) st = clai_matmul(ctx, P, &q5, 0, &k5, 1, 1.0f, 0.0f);
  if (st == CLAI_OK) st = clai_softmax(ctx, P, P, &opts);
  if (st == CLAI_OK) st = clai_matmul(ctx, dP, &do5, 0, &v5, 1, 1.0f, 0.0f);
  if (st == CLAI_OK) { /* dS = scale * P * (dP - delta), delta as [B, Hk, G, Lq, 1] */
    clai_tensor d5 = *tmp[11];
    d5.ndim = 5;
    const int64_t sh[5] = {B, Hk, G, Lq, 1}, stv[5] = {H * Lq, G * Lq, Lq, 1, 1};
    memcpy(d5.shape, sh, sizeof sh);
    memcpy(d5.strides, stv, sizeof stv);
    st = clai_binary(ctx, CLAI_SUB, dP, dP, &d5);
    if (st == CLAI_OK) st = clai_binary(ctx, CLAI_MUL, dS, dP, P);
    if (st == CLAI_OK) st = clai_scale(ctx, dS, dS, (float)sc);
  }
  if (st == CLAI_OK) st = clai_matmul(ctx, &gq5, dS, 0, &k5, 0, 1.0f, 0.0f);
  if (G == 1) {
    clai_tensor gk5 = clai__heads5(grad_k, Hk, 1, 0), gv5 = clai__heads5(grad_v, Hk, 1, 0);
    if (st == CLAI_OK) st = clai_matmul(ctx, &gk5, dS, 1, &q5, 0, 1.0f, 0.0f);
    if (st == CLAI_OK) st = clai_matmul(ctx, &gv5, P, 1, &do5, 0, 1.0f, 0.0f);
  } else { /* per query head, then the sum over each key/value head's G */
    const int64_t kshape[5] = {B, Hk, G, Lk, D}, vshape[5] = {B, Hk, G, Lk, Dv};
    if (st == CLAI_OK) st = clai_tensor_init(ctx, &tmp[7], CLAI_DTYPE_F32, 5, kshape);
    if (st == CLAI_OK) st = clai_tensor_init(ctx, &tmp[8], CLAI_DTYPE_F32, 5, vshape);
    if (st == CLAI_OK) st = clai_matmul(ctx, tmp[7], dS, 1, &q5, 0, 1.0f, 0.0f);
    if (st == CLAI_OK) st = clai_matmul(ctx, tmp[8], P, 1, &do5, 0, 1.0f, 0.0f);
    if (st == CLAI_OK) st = clai_reduce(ctx, CLAI_REDUCE_SUM, grad_k, tmp[7], 2, 0);
    if (st == CLAI_OK) st = clai_reduce(ctx, CLAI_REDUCE_SUM, grad_v, tmp[8], 2, 0);
  }
  for (int i = 0; i < 12; i++) clai_tensor_free(tmp[i]); /* the in-order queue runs any reuse after these ops */
  return st;
}

clai_status clai_attention_backward(clai_context *ctx, clai_tensor *grad_q, clai_tensor *grad_k, clai_tensor *grad_v,
                                    const clai_tensor *grad_out, const clai_tensor *q, const clai_tensor *k,
                                    const clai_tensor *v, const clai_tensor *out, const clai_tensor *lse, float scale,
                                    int causal) {
  const char *fn = "clai_attention_backward";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  const clai_tensor *all[9] = {grad_q, grad_k, grad_v, grad_out, q, k, v, out, lse};
  static const char *const names[9] = {"grad_q", "grad_k", "grad_v", "grad_out", "q", "k", "v", "out", "lse"};
  for (int i = 0; i < 9; i++) {
    clai_status st = i < 3 ? clai__check_out(ctx, all[i], fn, names[i]) : clai__check_tensor(ctx, all[i], fn, names[i]);
    if (st != CLAI_OK) return st;
  }
  char a[160], b[160], c[160];
  if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: q %s, k %s and v %s must be 4-d [B, H, L, D]", fn,
                       clai__shape_str(q->ndim, q->shape, a, sizeof a), clai__shape_str(k->ndim, k->shape, b, sizeof b),
                       clai__shape_str(v->ndim, v->shape, c, sizeof c));
  if (!is_float(q->dtype) || k->dtype != q->dtype || v->dtype != q->dtype)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: q, k and v must share one dtype, f32 or f16 (q %s, k %s, v %s)", fn,
                       clai_dtype_name(q->dtype), clai_dtype_name(k->dtype), clai_dtype_name(v->dtype));
  for (int i = 0; i < 8; i++)
    if (i < 4 || i == 7)
      if (!is_float(all[i]->dtype))
        return clai__error(ctx, CLAI_E_DTYPE, "%s: %s is %s, must be f32 or f16", fn, names[i],
                           clai_dtype_name(all[i]->dtype));
  if (lse->dtype != CLAI_DTYPE_F32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: lse is %s, must be f32", fn, clai_dtype_name(lse->dtype));
  const int64_t B = q->shape[0], H = q->shape[1], Lq = q->shape[2], D = q->shape[3];
  const int64_t Hk = k->shape[1], Lk = k->shape[2], Dv = v->shape[3];
  if (k->shape[0] != B || v->shape[0] != B || v->shape[1] != Hk || v->shape[2] != Lk || k->shape[3] != D)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: shapes do not fit q [B, H, Lq, D], k [B, Hk, Lk, D], v [B, Hk, Lk, Dv] "
                       "(q %s, k %s, v %s)", fn, clai__shape_str(4, q->shape, a, sizeof a),
                       clai__shape_str(4, k->shape, b, sizeof b), clai__shape_str(4, v->shape, c, sizeof c));
  if (Hk == 0 ? H != 0 : H % Hk != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: %lld query heads are not a multiple of %lld key/value heads", fn,
                       (long long)H, (long long)Hk);
  const int64_t os[4] = {B, H, Lq, Dv}, ls[3] = {B, H, Lq};
  const struct {
    const clai_tensor *t;
    int nd;
    const int64_t *shape;
    const char *name, *want;
  } shapes[6] = {
      {out, 4, os, "out", "[B, H, Lq, Dv]"},   {grad_out, 4, os, "grad_out", "[B, H, Lq, Dv]"},
      {lse, 3, ls, "lse", "[B, H, Lq]"},        {grad_q, 4, q->shape, "grad_q", "q's shape"},
      {grad_k, 4, k->shape, "grad_k", "k's shape"}, {grad_v, 4, v->shape, "grad_v", "v's shape"},
  };
  for (int i = 0; i < 6; i++)
    if (!same_shape(shapes[i].t, shapes[i].nd, shapes[i].shape))
      return clai__error(ctx, CLAI_E_SHAPE, "%s: %s %s must be %s = %s", fn, shapes[i].name,
                         clai__shape_str(shapes[i].t->ndim, shapes[i].t->shape, a, sizeof a), shapes[i].want,
                         clai__shape_str(shapes[i].nd, shapes[i].shape, b, sizeof b));
  if (D < 1 || D > ATT_BWD_DMAX || Dv < 1 || Dv > ATT_BWD_DMAX)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: head dims D = %lld, Dv = %lld; supported are 1 to %d", fn,
                       (long long)D, (long long)Dv, ATT_BWD_DMAX);
  if (Lq > INT_MAX / 2 || Lk > INT_MAX / 2 || H > INT_MAX)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: sequence lengths must be below 2^30 (Lq %lld, Lk %lld)", fn,
                       (long long)Lq, (long long)Lk);
  if (causal != 0 && causal != 1)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: causal is %d, must be 0 or 1", fn, causal);
  if (!isfinite(scale))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: scale %g is not finite", fn, (double)scale);
  for (int g = 0; g < 3; g++) {
    for (int i = 3; i < 9; i++)
      if (clai__tensors_overlap(all[g], all[i]))
        return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %s overlaps %s in memory", fn, names[g], names[i]);
    for (int h = g + 1; h < 3; h++)
      if (clai__tensors_overlap(all[g], all[h]))
        return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %s overlaps %s in memory", fn, names[g], names[h]);
  }
  if (B == 0 || H == 0) return CLAI_OK;
  if (clai__attention_in_parts(ctx, Lq > Lk ? Lq : Lk, D, Dv))
    return backward_parts(ctx, grad_q, grad_k, grad_v, grad_out, q, k, v, out,
                          scale == 0.0f ? 1.0 / sqrt((double)D) : (double)scale, causal);

  const int wide = D > 64 || Dv > 64;
  const int kkv = wide ? CLAI__K_ATTENTION_BWD_KV_D256 : CLAI__K_ATTENTION_BWD_KV_D64;
  const int kq = wide ? CLAI__K_ATTENTION_BWD_Q_D256 : CLAI__K_ATTENTION_BWD_Q_D64;
  clai_status st = clai__kernel_ready(ctx, kkv); /* builds cl/attention_backward.cl on first use */
  if (st != CLAI_OK) return st;
  /* One work-group per (batch, head, block of 16 * local size rows): keys for kv, queries for q. */
  size_t gkv = 0, gq = 0;
  const int kernels[2] = {kkv, kq};
  const int64_t heads[2] = {Hk, H}, lens[2] = {Lk, Lq};
  size_t *globals[2] = {&gkv, &gq};
  for (int i = 0; i < 2; i++) {
    const size_t lsz = ctx->klocal[kernels[i]][0];
    const uint64_t nb = ((uint64_t)lens[i] + 16 * lsz - 1) / (16 * lsz);
    uint64_t groups;
    if (!clai__mul_ok((uint64_t)B * (uint64_t)heads[i], nb, &groups) || groups > (uint64_t)SIZE_MAX / lsz)
      return clai__error(ctx, CLAI_E_OVERFLOW, "%s: too many work-groups", fn);
    *globals[i] = (size_t)groups * lsz;
  }
  const double sc = scale == 0.0f ? 1.0 / sqrt((double)D) : (double)scale;
  const cl_float c2 = (cl_float)(sc * 1.4426950408889634), fscale = (cl_float)sc;
  const cl_int h = (cl_int)H, hk = (cl_int)Hk, lq = (cl_int)Lq, lk = (cl_int)Lk, dd = (cl_int)D, dv = (cl_int)Dv,
               cz = causal;
  const cl_int dts = (q->dtype == CLAI_DTYPE_F16) | (out->dtype == CLAI_DTYPE_F16) << 1 |
                     (grad_out->dtype == CLAI_DTYPE_F16) << 2 | (grad_q->dtype == CLAI_DTYPE_F16) << 3 |
                     (grad_k->dtype == CLAI_DTYPE_F16) << 4 | (grad_v->dtype == CLAI_DTYPE_F16) << 5;
  cl_long8 L[9];
  for (int i = 0; i < 9; i++) L[i] = layout_of(all[i]);
  /* kernel argument order: dq, dk, dv, q, k, v, out, grad_out, lse */
  const int order[9] = {0, 1, 2, 4, 5, 6, 7, 3, 8};
  cl_mem m[9];
  cl_long8 lo[9];
  for (int i = 0; i < 9; i++) {
    m[i] = all[order[i]]->buf->mem;
    lo[i] = L[order[i]];
  }
  for (int i = 0; i < 2; i++) {
    st = clai__launch(ctx, kernels[i], globals[i], 28, CLAI__ARG(m[0]), CLAI__ARG(m[1]), CLAI__ARG(m[2]),
                      CLAI__ARG(m[3]), CLAI__ARG(m[4]), CLAI__ARG(m[5]), CLAI__ARG(m[6]), CLAI__ARG(m[7]),
                      CLAI__ARG(m[8]), CLAI__ARG(lo[3]), CLAI__ARG(lo[4]), CLAI__ARG(lo[5]), CLAI__ARG(lo[6]),
                      CLAI__ARG(lo[7]), CLAI__ARG(lo[8]), CLAI__ARG(lo[0]), CLAI__ARG(lo[1]), CLAI__ARG(lo[2]),
                      CLAI__ARG(h), CLAI__ARG(hk), CLAI__ARG(lq), CLAI__ARG(lk), CLAI__ARG(dd), CLAI__ARG(dv),
                      CLAI__ARG(cz), CLAI__ARG(dts), CLAI__ARG(c2), CLAI__ARG(fscale));
    if (st != CLAI_OK) return st;
  }
  return CLAI_OK;
}
