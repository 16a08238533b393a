/* op-attention.c - fused scaled dot-product attention and rotary position embedding (cl/attention.cl). */
#include <limits.h>
#include <math.h>

#include "internal.h"

int clai__attention_rq(const clai__devcaps *caps) { return caps->is_cpu ? 4 : 1; }

/* The kernel variants by the largest row length they hold (see cl/attention.cl). */
static const struct {
  int dmax, kernel;
} att_variants[] = {
    {64, CLAI__K_ATTENTION_D64},
    {256, CLAI__K_ATTENTION_D256},
};
#define ATT_DMAX 256

static int is_float(clai_dtype dt) { return dt == CLAI_DTYPE_F32 || dt == CLAI_DTYPE_F16; }

clai_tensor clai__heads5(const clai_tensor *t, int64_t Hk, int64_t G, int broadcast) {
  clai_tensor v = *t;
  v.ndim = 5;
  v.shape[0] = t->shape[0], v.strides[0] = t->strides[0];
  v.shape[1] = Hk, v.strides[1] = broadcast ? t->strides[1] : t->strides[1] * G;
  v.shape[2] = G, v.strides[2] = broadcast ? 0 : t->strides[1];
  v.shape[3] = t->shape[2], v.strides[3] = t->strides[2];
  v.shape[4] = t->shape[3], v.strides[4] = t->strides[3];
  return v;
}

/* Attention as its three parts, on a device whose loops stop after a number of iterations shared by all of
 * a work-item's loops (llvmpipe: 65535; caps.loop_limit), where the fused kernel's walk over the keys would
 * pass it (clai__attention_in_parts; rusticl 22.3, D = 64: right at Lk = 400, silently wrong at 500):
 * S = q k^T as [B, Hk, G, Lq, Lk] (clai_matmul, which slices its K there), P = softmax(scale * S) with the
 * same causal mask and the same zero row for a query that sees no key (clai_softmax), out = P v. lse, when
 * asked for: log_softmax(scale * S) is scale * S - lse, read at key 0, which every query that sees a key
 * sees; -inf for the others. */
static clai_status attention_parts(clai_context *ctx, clai_tensor *out, clai_tensor *lse, const clai_tensor *q,
                                   const clai_tensor *k, const clai_tensor *v, double sc, int causal) {
  const int64_t B = q->shape[0], H = q->shape[1], Lq = q->shape[2], Hk = k->shape[1], Lk = k->shape[2];
  const int64_t G = H / Hk;
  clai_tensor *S = NULL, *L = NULL, *v32 = NULL;
  clai_status st = CLAI_OK;
  if (v->dtype != CLAI_DTYPE_F32) { /* P is f32, and so must v be for P v */
    st = clai_tensor_init(ctx, &v32, CLAI_DTYPE_F32, 4, v->shape);
    if (st == CLAI_OK) st = clai__copy(ctx, v32, v, "clai_attention");
  }
  clai_tensor q5 = clai__heads5(q, Hk, G, 0), k5 = clai__heads5(k, Hk, G, 1),
              v5 = clai__heads5(v32 != NULL ? v32 : v, Hk, G, 1), o5 = clai__heads5(out, Hk, G, 0);
  const int64_t sshape[5] = {B, Hk, G, Lq, Lk};
  if (st == CLAI_OK) st = clai_tensor_init(ctx, &S, CLAI_DTYPE_F32, 5, sshape);
  if (st == CLAI_OK) st = clai_matmul(ctx, S, &q5, 0, &k5, 1, 1.0f, 0.0f);
  const clai_softmax_opts opts = {(float)sc, causal};
  if (st == CLAI_OK && lse != NULL && Lk > 0) {
    st = clai_tensor_init(ctx, &L, CLAI_DTYPE_F32, 5, sshape);
    if (st == CLAI_OK) st = clai_log_softmax(ctx, L, S, &opts);
    if (st != CLAI_OK) goto done;
    /* the queries that see no key: the first Lq - Lk when causal with Lq > Lk */
    const int64_t blind = causal && Lq > Lk ? Lq - Lk : 0;
    clai_tensor l4 = *lse; /* [B, H, Lq] as [B, Hk, G, Lq] */
    l4.ndim = 4;
    l4.shape[0] = B, l4.strides[0] = lse->strides[0];
    l4.shape[1] = Hk, l4.strides[1] = lse->strides[1] * G;
    l4.shape[2] = G, l4.strides[2] = lse->strides[1];
    l4.shape[3] = Lq, l4.strides[3] = lse->strides[2];
    clai_tensor seen = l4, none = l4, s0 = *S, l0 = *L;
    seen.shape[3] = Lq - blind, seen.offset += blind * l4.strides[3];
    none.shape[3] = blind;
    s0.ndim = l0.ndim = 4; /* key 0 of the rows that see one */
    s0.shape[3] = l0.shape[3] = Lq - blind;
    s0.strides[3] = l0.strides[3] = Lk;
    s0.offset += blind * Lk, l0.offset += blind * Lk;
    if (st == CLAI_OK && blind > 0) st = clai_fill(ctx, &none, -INFINITY);
    if (st == CLAI_OK && blind < Lq) st = clai_scale(ctx, &seen, &s0, (float)sc);
    if (st == CLAI_OK && blind < Lq) st = clai_binary(ctx, CLAI_SUB, &seen, &seen, &l0);
  } else if (st == CLAI_OK && lse != NULL) {
    st = clai_fill(ctx, lse, -INFINITY); /* no keys at all */
  }
  if (st == CLAI_OK) st = clai_softmax(ctx, S, S, &opts);
  if (st == CLAI_OK) st = clai_matmul(ctx, &o5, S, 0, &v5, 0, 1.0f, 0.0f);
done:
  clai_tensor_free(L); /* the in-order queue runs any reuse of their buffers after these ops */
  clai_tensor_free(S);
  clai_tensor_free(v32);
  return st;
}

clai_status clai_attention(clai_context *ctx, clai_tensor *out, clai_tensor *lse, const clai_tensor *q,
                           const clai_tensor *k, const clai_tensor *v, float scale, int causal) {
  const char *fn = "clai_attention";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status st = clai__check_out(ctx, out, fn, "out");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, q, fn, "q");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, k, fn, "k");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, v, fn, "v");
  if (st == CLAI_OK && lse != NULL) st = clai__check_out(ctx, lse, fn, "lse");
  if (st != CLAI_OK) return st;
  char a[160], b[160], c[160], d[160];
  if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4 || out->ndim != 4)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: q %s, k %s, v %s and out %s must all be 4-d [B, H, L, D]", fn,
                       clai__shape_str(q->ndim, q->shape, a, sizeof a), clai__shape_str(k->ndim, k->shape, b, sizeof b),
                       clai__shape_str(v->ndim, v->shape, c, sizeof c),
                       clai__shape_str(out->ndim, out->shape, d, sizeof d));
  if (!is_float(q->dtype) || k->dtype != q->dtype || v->dtype != q->dtype)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: q, k and v must share one dtype, f32 or f16 (q %s, k %s, v %s)", fn,
                       clai_dtype_name(q->dtype), clai_dtype_name(k->dtype), clai_dtype_name(v->dtype));
  if (!is_float(out->dtype))
    return clai__error(ctx, CLAI_E_DTYPE, "%s: out is %s, must be f32 or f16", fn, clai_dtype_name(out->dtype));
  if (lse != NULL && lse->dtype != CLAI_DTYPE_F32)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: lse is %s, must be f32", fn, clai_dtype_name(lse->dtype));
  const int64_t B = q->shape[0], H = q->shape[1], Lq = q->shape[2], D = q->shape[3];
  const int64_t Hk = k->shape[1], Lk = k->shape[2], Dv = v->shape[3];
  int ok = k->shape[0] == B && v->shape[0] == B && out->shape[0] == B && v->shape[1] == Hk && out->shape[1] == H &&
           v->shape[2] == Lk && out->shape[2] == Lq && k->shape[3] == D && out->shape[3] == Dv;
  if (!ok)
    return clai__error(ctx, CLAI_E_SHAPE,
                       "%s: shapes do not fit q [B, H, Lq, D], k [B, Hk, Lk, D], v [B, Hk, Lk, Dv], out [B, H, Lq, Dv] "
                       "(q %s, k %s, v %s, out %s)",
                       fn, clai__shape_str(4, q->shape, a, sizeof a), clai__shape_str(4, k->shape, b, sizeof b),
                       clai__shape_str(4, v->shape, c, sizeof c), clai__shape_str(4, out->shape, d, sizeof d));
  if (Hk == 0 ? H != 0 : H % Hk != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: %lld query heads are not a multiple of %lld key/value heads", fn,
                       (long long)H, (long long)Hk);
  if (lse != NULL && (lse->ndim != 3 || lse->shape[0] != B || lse->shape[1] != H || lse->shape[2] != Lq)) {
    const int64_t want[3] = {B, H, Lq};
    return clai__error(ctx, CLAI_E_SHAPE, "%s: lse %s must be [B, H, Lq] = %s", fn,
                       clai__shape_str(lse->ndim, lse->shape, a, sizeof a), clai__shape_str(3, want, b, sizeof b));
  }
  if (D < 1 || D > ATT_DMAX || Dv < 1 || Dv > ATT_DMAX)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: head dims D = %lld, Dv = %lld; supported are 1 to %d", fn,
                       (long long)D, (long long)Dv, ATT_DMAX);
  if (Lq > INT_MAX || Lk > INT_MAX || H > INT_MAX)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: sequence lengths and heads must fit an int (Lq %lld, Lk %lld)",
                       fn, (long long)Lq, (long long)Lk);
  if (causal != 0 && causal != 1)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: causal is %d, must be 0 or 1", fn, causal);
  if (!isfinite(scale))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: scale %g is not finite", fn, (double)scale);
  const clai_tensor *ins[3] = {q, k, v};
  for (int i = 0; i < 3; i++)
    if (clai__tensors_overlap(out, ins[i]) || (lse != NULL && clai__tensors_overlap(lse, ins[i])))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out or lse overlaps q, k or v in memory", fn);
  if (lse != NULL && clai__tensors_overlap(lse, out))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: lse overlaps out in memory", fn);

  int kern = -1;
  const int64_t dmax = D > Dv ? D : Dv;
  for (size_t i = 0; i < sizeof att_variants / sizeof att_variants[0] && kern < 0; i++)
    if (dmax <= att_variants[i].dmax) kern = att_variants[i].kernel;
  if (B == 0 || H == 0 || Lq == 0) return CLAI_OK;
  if (clai__attention_in_parts(ctx, Lk, D, Dv))
    return attention_parts(ctx, out, lse, q, k, v, scale == 0.0f ? 1.0 / sqrt((double)D) : (double)scale, causal);
  st = clai__kernel_ready(ctx, kern); /* builds cl/attention.cl on first use: klocal is known after it */
  if (st != CLAI_OK) return st;

  /* A work-group covers lsz work-items times ATT_RQ query rows each (the -DATT_RQ of cl/attention.cl). On a
   * CPU, queries that one work-item holds (a decode step's) get a group of one: a CPU runs a group's
   * work-items one after another, and a full group walked its idle ones through every key block's barriers
   * (cl/attention.cl works with any local size). */
  const size_t rq = (size_t)clai__attention_rq(&ctx->caps);
  const size_t lsz = ctx->caps.is_cpu && (uint64_t)Lq <= rq ? 1 : ctx->klocal[kern][0], rows = lsz * rq;
  const uint64_t nqb = ((uint64_t)Lq + rows - 1) / rows;
  uint64_t groups;
  if (!clai__mul_ok((uint64_t)B * (uint64_t)H, nqb, &groups) || groups > (uint64_t)SIZE_MAX / lsz)
    return clai__error(ctx, CLAI_E_OVERFLOW, "%s: too many work-groups", fn);
  size_t global = (size_t)groups * lsz;
  const double sc = scale == 0.0f ? 1.0 / sqrt((double)D) : (double)scale;
  const cl_float qscale = (cl_float)(sc * 1.4426950408889634); /* scores in log2 units: exp2 in the kernel */
  const cl_int h = (cl_int)H, hk = (cl_int)Hk, lq = (cl_int)Lq, lk = (cl_int)Lk, dd = (cl_int)D, dv = (cl_int)Dv;
  const cl_int cz = causal, in_dt = (cl_int)q->dtype, out_dt = (cl_int)out->dtype, has_lse = lse != NULL;
  const cl_long qo = q->offset, qs0 = q->strides[0], qs1 = q->strides[1], qs2 = q->strides[2], qs3 = q->strides[3];
  const cl_long ko = k->offset, ks0 = k->strides[0], ks1 = k->strides[1], ks2 = k->strides[2], ks3 = k->strides[3];
  const cl_long vo = v->offset, vs0 = v->strides[0], vs1 = v->strides[1], vs2 = v->strides[2], vs3 = v->strides[3];
  const cl_long oo = out->offset, os0 = out->strides[0], os1 = out->strides[1], os2 = out->strides[2],
                os3 = out->strides[3];
  const cl_long lo = lse ? lse->offset : 0, ls0 = lse ? lse->strides[0] : 0, ls1 = lse ? lse->strides[1] : 0,
                ls2 = lse ? lse->strides[2] : 0;
  cl_mem lmem = lse != NULL ? lse->buf->mem : out->buf->mem; /* not written when has_lse is 0 */
  return clai__launch_local(ctx, kern, &global, &lsz, 40, CLAI__ARG(out->buf->mem), CLAI__ARG(lmem), CLAI__ARG(q->buf->mem),
                      CLAI__ARG(k->buf->mem), CLAI__ARG(v->buf->mem), CLAI__ARG(h), CLAI__ARG(hk), CLAI__ARG(lq),
                      CLAI__ARG(lk), CLAI__ARG(dd), CLAI__ARG(dv), CLAI__ARG(qo), CLAI__ARG(qs0), CLAI__ARG(qs1),
                      CLAI__ARG(qs2), CLAI__ARG(qs3), CLAI__ARG(ko), CLAI__ARG(ks0), CLAI__ARG(ks1), CLAI__ARG(ks2),
                      CLAI__ARG(ks3), CLAI__ARG(vo), CLAI__ARG(vs0), CLAI__ARG(vs1), CLAI__ARG(vs2), CLAI__ARG(vs3),
                      CLAI__ARG(oo), CLAI__ARG(os0), CLAI__ARG(os1), CLAI__ARG(os2), CLAI__ARG(os3), CLAI__ARG(lo),
                      CLAI__ARG(ls0), CLAI__ARG(ls1), CLAI__ARG(ls2), CLAI__ARG(qscale), CLAI__ARG(cz),
                      CLAI__ARG(in_dt), CLAI__ARG(out_dt), CLAI__ARG(has_lse));
}

/* t without its last dim (the rows of a [..., D] tensor), as a stack view. */
static clai_tensor rows_of(const clai_tensor *t) {
  clai_tensor r = *t;
  r.ndim--;
  return r;
}

clai_status clai_rope(clai_context *ctx, clai_tensor *out, const clai_tensor *x, const clai_rope_params *params) {
  const char *fn = "clai_rope";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status st = clai__check_out(ctx, out, fn, "out");
  if (st == CLAI_OK) st = clai__check_tensor(ctx, x, fn, "x");
  if (st != CLAI_OK) return st;
  const clai_rope_params zero = {0};
  const clai_rope_params *p = params != NULL ? params : &zero;
  if (!is_float(x->dtype) || out->dtype != x->dtype)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: x and out must share one dtype, f32 or f16 (out %s, x %s)", fn,
                       clai_dtype_name(out->dtype), clai_dtype_name(x->dtype));
  if ((int)p->mode != CLAI_ROPE_INTERLEAVED && (int)p->mode != CLAI_ROPE_HALVES)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: mode %d is not a clai_rope_mode", fn, (int)p->mode);
  if ((int)p->layout != CLAI_ROPE_BHLD && (int)p->layout != CLAI_ROPE_BLHD)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: layout %d is not a clai_rope_layout", fn, (int)p->layout);
  char a[160], b[160];
  int same = out->ndim == x->ndim;
  for (int i = 0; same && i < x->ndim; i++) same = out->shape[i] == x->shape[i];
  if (!same)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: out %s and x %s differ in shape", fn,
                       clai__shape_str(out->ndim, out->shape, a, sizeof a), clai__shape_str(x->ndim, x->shape, b, sizeof b));
  const int seq_dim = x->ndim - (p->layout == CLAI_ROPE_BHLD ? 2 : 3);
  if (seq_dim < 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: x %s has no position dim for layout %s", fn,
                       clai__shape_str(x->ndim, x->shape, a, sizeof a), p->layout == CLAI_ROPE_BHLD ? "BHLD" : "BLHD");
  /* a bad rot_dims is wrong whatever x is (CLAI_E_INVALID_ARG); one that x cannot hold is a shape error */
  if (p->rot_dims < 0 || p->rot_dims % 2 != 0)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: rot_dims %lld must be even and not negative (it counts pairs "
                       "of elements)", fn, (long long)p->rot_dims);
  const int64_t D = x->shape[x->ndim - 1], rot = p->rot_dims != 0 ? p->rot_dims : D;
  if (rot > D || rot % 2 != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: rotating %lld of D = %lld dims; must be even and at most D", fn,
                       (long long)rot, (long long)D);
  const float theta = p->theta != 0.0f ? p->theta : 10000.0f;
  if (!(theta > 0.0f) || !isfinite(theta))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: theta %g must be positive and finite", fn, (double)theta);
  if (p->pos_offset < 0 || p->pos_offset > ((int64_t)1 << 40))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: pos_offset %lld out of range", fn, (long long)p->pos_offset);
  if (p->inverse != 0 && p->inverse != 1)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: inverse is %d, must be 0 or 1", fn, p->inverse);
  if (!clai__alias_ok(out, x))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out overlaps x other than element for element", fn);
  int64_t seq_inner = 1;
  for (int i = seq_dim + 1; i < x->ndim - 1; i++) seq_inner *= x->shape[i];
  clai__index ix;
  clai_tensor orow = rows_of(out), xrow = rows_of(x);
  const clai_tensor *ops[2] = {&orow, &xrow};
  clai__index_build(&ix, 2, ops);
  uint64_t work;
  /* one work-item per pair (or copied element) of a row group: the seq_inner rows that share a position
   * (the heads of a [B, L, H, D] tensor), so the angle's exp2 and sincos are computed once for all of them */
  const int64_t groups = seq_inner > 0 ? ix.numel / seq_inner : 0;
  if (!clai__mul_ok((uint64_t)groups, (uint64_t)(D - rot / 2), &work) || work > (uint64_t)SIZE_MAX)
    return clai__error(ctx, CLAI_E_OVERFLOW, "%s: too many work-items", fn);
  size_t global = (size_t)work;
  if (global == 0) return CLAI_OK;
  const cl_long cd = D, crot = rot, osd = out->strides[out->ndim - 1], xsd = x->strides[x->ndim - 1],
                slen = x->shape[seq_dim], sin_ = seq_inner > 0 ? seq_inner : 1, poff = p->pos_offset;
  const cl_float l2t = (cl_float)log2((double)theta);
  const cl_int halves = p->mode == CLAI_ROPE_HALVES, inverse = p->inverse;
  int kern = x->dtype == CLAI_DTYPE_F16 ? CLAI__K_ROPE_F16 : CLAI__K_ROPE_F32;
  return clai__launch(ctx, kern, &global, 13, CLAI__ARG(out->buf->mem), CLAI__ARG(x->buf->mem), CLAI__IDX(ix),
                      CLAI__ARG(cd), CLAI__ARG(crot), CLAI__ARG(osd), CLAI__ARG(xsd), CLAI__ARG(slen),
                      CLAI__ARG(sin_), CLAI__ARG(poff), CLAI__ARG(l2t), CLAI__ARG(halves),
                      CLAI__ARG(inverse));
}
