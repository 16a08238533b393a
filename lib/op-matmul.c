/* op-matmul.c - clai_matmul: argument checks, batch broadcasting and the launch of cl/matmul.cl. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "internal.h"

int clai__cpu_vector_regs(const clai__devcaps *caps) { return caps->vec_float >= 16 ? 32 : 16; }

int clai__packed_tile_fits(const clai__devcaps *caps, int rm, int cn, int vw) {
  const int hw = caps->vec_float >= 4 ? caps->vec_float : 4;
  const int per = (vw + hw - 1) / hw; /* hardware registers per float-vw vector */
  return rm * cn * per + cn * per + 1 <= clai__cpu_vector_regs(caps);
}

/* The packed family on a CPU whose vectors hold 16 floats (AVX-512: 32 registers): a 14 x 32 tile, 28
 * accumulators, B's two vectors and A's broadcast in 31 of the 32 registers, 16 loads for 28 FMAs a k
 * (8 x 16: 9 for 8). Intel's AVX-512 cores have two 512-bit FMA units of latency 4, so they need at least
 * 8 independent accumulators and loads to spare. On the 2-core Xeon (Emerald Rapids) VM (BENCHMARKS.md,
 * 2026-12-05): `clai bench gemm` at 0.76-1.09x OpenBLAS where 8 x 16 ran at 0.65-0.79x in the same minutes;
 * the compute kernel alone at 1024^3 243 against 202 GFLOP/s (8 x 32: 235); the CNN 1218 against 887
 * samples/s. The cost: POCL compiles the wider kernels more slowly at their first launch (the MLP's first
 * epoch, with empty caches, ~1 s longer). (On the Zen 4 VM, one 512-bit FMA per cycle, tiles from 6 x 16 to
 * 12 x 32 measured alike on square sizes, when a code generation fault copied the accumulators of every
 * tile but 14 x 32 on each k: see CLAI_PACKED_KLOOP.) The work-group is 2 x 4: 2 A panels and 4 B panels.
 * The skinny kernel (M <= 16) keeps tiles of 8 rows: its time goes with the rows it computes per B vector
 * it loads, and 14 rows ran 1 x 4096 x 4096 at 2.0-2.2 GFLOP/s where 8 run it at 3.0-3.3.
 * The k-block: 4096, so that products with K up to 4096 take clai_gemm_packed_short, one pass over k
 * without barriers, where each work-item streams its two panels from L2 (at K = 4096, 224 KiB of A and
 * 512 KiB of B; 2 MiB of L2 per core here). Blocks of 256, which keep the group's panels in L1 and L2
 * at barriers, measured 3-10% slower against OpenBLAS in the same runs (2026-12-06, four alternating
 * rounds of `clai bench gemm` each, median ratios kb = 256 -> 4096: 512^3 0.84 -> 0.90, 1024^3 0.86 -> 0.96,
 * 2048^3 0.89 -> 0.91, 1000^3 0.95 -> 0.95, 1023^3 0.96 -> 1.01, 777^3 0.88 -> 0.95, 2048 x 2048 x 4096
 * 0.84 -> 0.91; K = 16384 and the MLP's 128 x 256 x 784 no slower). kb is still halved, down to 64, until
 * the group's k-block of panels, (lx * rm + ly * cn * vw) * kb floats, takes at most a quarter of the
 * cache the device reports per compute unit (CL_DEVICE_GLOBAL_MEM_CACHE_SIZE: the last-level cache on
 * POCL). `clai tune` searches the other tiles and k-blocks (tune.c). */
static void packed_avx512(const clai__devcaps *caps, struct clai__gemm_packed *p) {
  p->rm = 14, p->cn = 2, p->lx = 2, p->ly = 4, p->srm = 8, p->kb = 4096;
  /* No unrolling of the k loop beyond the tile's FMAs per k: as fast (measured at 8 x 16: 256^3 to 1024^3,
   * 777^3, the MLP's products within 3%, the run's noise), and POCL compiles the compute kernels faster. */
  p->uk = 1;
  if (caps->cache_bytes > 0) {
    const uint64_t share = caps->cache_bytes / (uint64_t)(caps->compute_units > 0 ? caps->compute_units : 1) / 4;
    while (p->kb > 64 && (uint64_t)(p->lx * p->rm + p->ly * p->cn * p->vw) * (uint64_t)p->kb * 4 > share) p->kb /= 2;
  }
}

void clai__gemm_config_default(const clai__devcaps *caps, clai__gemm_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->family = caps->lanes_cpu ? CLAI__GEMM_GENERIC : caps->is_cpu ? CLAI__GEMM_PACKED : CLAI__GEMM_GPU;
  /* generic: 8 x 16 of C per work-item on CPUs (k-blocks of 128 stay in L2 on POCL), 4 x 4 elsewhere;
   * on llvmpipe 8 x 8 in one loop over k (KBAR=0, cl/matmul.cl): 2.0 GFLOP/s at 512^3 where the packed
   * family ran below 0.05 (BENCHMARKS.md). */
  if (caps->lanes_cpu) {
    cfg->generic.rm = 8, cfg->generic.vw = 8, cfg->generic.kb = 256, cfg->generic.lx = 8, cfg->generic.ly = 2;
  } else if (caps->is_cpu) {
    cfg->generic.rm = 8, cfg->generic.vw = 16, cfg->generic.kb = 128, cfg->generic.lx = 8, cfg->generic.ly = 2;
  } else {
    cfg->generic.rm = 4, cfg->generic.vw = 4, cfg->generic.kb = 64, cfg->generic.lx = 16, cfg->generic.ly = 16;
  }
  /* packed: a 6 x 16 tile is 12 accumulator vectors, which fits AVX2's 16 registers (an 8 x 16 tile
   * spills there); local 2 x 8 shares each A panel among 8 work-items. Measured on POCL 3.1 with a 2-core
   * Zen 3: ~150 GFLOP/s in the compute kernel, 1024 and 2048 as fast as 1000. AVX-512: packed_avx512. */
  cfg->packed.rm = 6, cfg->packed.vw = 16, cfg->packed.cn = 1, cfg->packed.kb = 256, cfg->packed.uk = 4;
  cfg->packed.pk = 8;
  cfg->packed.lx = 2, cfg->packed.ly = 8, cfg->packed.skinny = 16, cfg->packed.srm = 6, cfg->packed.pack_lx = 16;
  /* A and B of up to 512 KiB together (256^3) are read in place, unpacked (clai_gemm_direct): the packing
   * launch cost a fifth of a 256^3 product (POCL, 2 cores, AVX-512: 0.75-0.79x OpenBLAS packed, 0.90-0.99x
   * direct); from 512^3 on the packed kernel's speed made up for it. */
  cfg->packed.direct = 131072;
  if (caps->is_cpu && !caps->lanes_cpu && clai__cpu_vector_regs(caps) >= 32) packed_avx512(caps, &cfg->packed);
  /* gpu: 16 x 16 work-items with 4 x 4 each own a 64 x 64 block of C; k-tiles of 16 take 8 KiB of local
   * memory. The skinny kernel: 8 x 16 work-items with 2 x 4 each, a 16 x 64 block. */
  cfg->gpu.rm = 4, cfg->gpu.vw = 4, cfg->gpu.kb = 16, cfg->gpu.lx = 16, cfg->gpu.ly = 16;
  cfg->gpu.srm = 2, cfg->gpu.slx = 8, cfg->gpu.sly = 16;
  if ((size_t)(cfg->gpu.lx * cfg->gpu.ly) > caps->max_wg_size) cfg->gpu.lx = cfg->gpu.ly = 8;
  cfg->clblast = 0;
}

static int in_set(int v, const int *set, int n) {
  for (int i = 0; i < n; i++)
    if (v == set[i]) return 1;
  return 0;
}

int clai__gemm_config_valid(const clai__gemm_config *cfg, const clai__devcaps *caps, char *why, size_t cap) {
  static const int widths[] = {1, 2, 4, 8, 16};
  const size_t maxwg = caps->max_wg_size;
#define CLAI_REQUIRE_(cond, ...)      \
  do {                                \
    if (!(cond)) {                    \
      snprintf(why, cap, __VA_ARGS__); \
      return 0;                       \
    }                                 \
  } while (0)
  CLAI_REQUIRE_(cfg->family >= 0 && cfg->family < CLAI__GEMM_FAMILIES, "family %d is not a family", cfg->family);
  CLAI_REQUIRE_(cfg->clblast >= 0 && cfg->clblast <= CLAI__SHAPE_ALL, "clblast classes %d out of range", cfg->clblast);
  const struct clai__gemm_generic *g = &cfg->generic;
  CLAI_REQUIRE_(g->rm >= 1 && g->rm <= 16 && in_set(g->vw, widths + 1, 4) && g->kb >= 1 && g->kb <= 4096 &&
                    g->lx >= 1 && g->ly >= 1 && (size_t)(g->lx * g->ly) <= maxwg,
                "generic rm=%d vw=%d kb=%d local=%dx%d is out of range", g->rm, g->vw, g->kb, g->lx, g->ly);
  const struct clai__gemm_packed *p = &cfg->packed;
  CLAI_REQUIRE_(p->rm >= 1 && p->rm <= 16 && in_set(p->vw, widths + 1, 4) && p->cn >= 1 && p->cn <= 4 &&
                    p->rm * p->cn <= 64 && in_set(p->pk, widths + 1, 4) &&
                    p->kb >= p->pk && p->kb <= 4096 && p->kb % p->pk == 0 && p->uk >= 1 && p->uk <= 16 &&
                    p->lx >= 1 && p->ly >= 1 && (size_t)(p->lx * p->ly) <= maxwg && p->skinny >= 0 &&
                    p->skinny <= 64 && p->srm >= 1 && p->srm <= 16 && p->pack_lx >= 1 &&
                    (size_t)p->pack_lx <= maxwg && p->direct >= 0 && p->direct <= (1 << 24),
                "packed rm=%d vw=%d cn=%d kb=%d uk=%d pk=%d local=%dx%d srm=%d direct=%d is out of range", p->rm,
                p->vw, p->cn, p->kb, p->uk, p->pk, p->lx, p->ly, p->srm, p->direct);
  const struct clai__gemm_gpu *q = &cfg->gpu;
  CLAI_REQUIRE_(q->rm >= 1 && q->rm <= 16 && in_set(q->vw, widths + 1, 4) && q->kb >= 1 && q->kb <= 256 &&
                    q->lx >= 1 && q->ly >= 1 && (size_t)(q->lx * q->ly) <= maxwg && q->srm >= 1 && q->srm <= 16 &&
                    q->slx >= 1 && q->sly >= 1 && (size_t)(q->slx * q->sly) <= maxwg,
                "gpu rm=%d vw=%d kb=%d local=%dx%d skinny %dx%d/%d is out of range", q->rm, q->vw, q->kb, q->lx, q->ly,
                q->srm, q->slx, q->sly);
  const uint64_t lmem = (uint64_t)q->kb * (uint64_t)(q->lx * q->rm + q->ly * q->vw) * 4,
                 slmem = (uint64_t)q->kb * (uint64_t)(q->slx * q->srm + q->sly * q->vw) * 4;
  CLAI_REQUIRE_(lmem <= caps->local_mem && slmem <= caps->local_mem,
                "gpu tiles need %llu bytes of local memory; the device has %llu",
                (unsigned long long)(lmem > slmem ? lmem : slmem), (unsigned long long)caps->local_mem);
#undef CLAI_REQUIRE_
  return 1;
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

/* Everything a launch needs, worked out once by plan() for clai_matmul_ex and clai_matmul_describe. */
typedef struct gemm_plan {
  int kernel;      /* the kernel that computes (CLAI__K_*), -1 for CLBlast, -2 for a quantized B dequantized
                      in chunks into the float path (quant_chunks) */
  int quant;       /* B's clai_dtype when B is quantized (used transposed: stored [N, K]), else 0 */
  int aquant;      /* A is q8_0 activations (with a quantized B) */
  int half_in;     /* A and B are f16 */
  int64_t M, N, K, sam, sak, sbk, sbn, scm, scn;
  clai__index ix;  /* batch dims: operand 0 = C, 1 = A, 2 = B */
  /* the epilogue */
  cl_mem bias;     /* a dummy buffer (C's) when there is no bias */
  cl_long boff, bsm, bsn;
  cl_int flags;    /* see clai_store_tile in cl/common.cl */
} gemm_plan;

int clai__gemm_shape_class(int64_t M, int64_t N, int64_t K, int64_t batch) {
  if (M <= 16) return CLAI__SHAPE_SKINNY;
  return (double)M * (double)N * (double)K * (double)batch < 256.0 * 256.0 * 256.0 ? CLAI__SHAPE_SMALL
                                                                                    : CLAI__SHAPE_LARGE;
}

static clai_status plan(clai_context *ctx, const char *fn, const clai_tensor *c, const clai_tensor *a, int trans_a,
                        const clai_tensor *b, int trans_b, const clai_matmul_epilogue *ep, gemm_plan *p) {
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_status s = clai__check_out(ctx, c, fn, "c");
  if (s == CLAI_OK) s = clai__check_tensor_any(ctx, a, fn, "a");
  if (s == CLAI_OK) s = clai__check_tensor_any(ctx, b, fn, "b");
  if (s != CLAI_OK) return s;
  if (a->ndim < 2 || b->ndim < 2 || c->ndim < 2)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: a, b and c need at least 2 dims (have %d, %d, %d)", fn, a->ndim,
                       b->ndim, c->ndim);
  p->quant = clai_dtype_block(b->dtype) > 1 ? (int)b->dtype : 0;
  p->aquant = clai_dtype_block(a->dtype) > 1;
  if (p->aquant && (a->dtype != CLAI_DTYPE_Q8_0 || trans_a || !p->quant))
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: a quantized a with a quantized b must be q8_0 activations "
                       "[M, K] (trans_a = 0), not %s%s, times weights [N, K] (trans_b = 1)", fn,
                       clai_dtype_name(a->dtype), trans_a ? " transposed" : "");
  if (p->quant && !trans_b)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: a quantized operand is a weight matrix stored [N, K] (K, the "
                       "reduced dim, holds the blocks) and used transposed: b needs trans_b = 1 (a: trans_a = 0)", fn);
  if (p->quant && (a->dtype == CLAI_DTYPE_I32 || c->dtype == CLAI_DTYPE_I32))
    return clai__error(ctx, CLAI_E_DTYPE, "%s: with a quantized operand the other one and c must be f32 or f16 "
                       "(have %s, %s)", fn, clai_dtype_name(a->dtype), clai_dtype_name(c->dtype));
  if (!p->quant && (a->dtype != b->dtype || a->dtype == CLAI_DTYPE_I32 || c->dtype == CLAI_DTYPE_I32))
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

  /* the epilogue */
  p->flags = c->dtype == CLAI_DTYPE_F16 ? 1 << 8 : 0;
  p->bias = c->buf->mem;
  p->boff = p->bsm = p->bsn = 0;
  if (ep != NULL) {
    if ((int)ep->act < CLAI_ACT_NONE || (int)ep->act > CLAI_ACT_SILU)
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %d is not a clai_activation", fn, (int)ep->act);
    p->flags |= (cl_int)ep->act << 12; /* cl/common.cl: the activation in the top bits */
    const clai_tensor *bias = ep->bias;
    if (bias != NULL) {
      s = clai__check_tensor(ctx, bias, fn, "bias");
      if (s != CLAI_OK) return s;
      if (bias->dtype == CLAI_DTYPE_I32)
        return clai__error(ctx, CLAI_E_DTYPE, "%s: bias must be f32 or f16, not i32", fn);
      const int64_t mn[2] = {p->M, p->N};
      int64_t bst[2];
      if (bias->ndim > 2 || !clai__broadcast_strides(bias, 2, mn, bst))
        return clai__error(ctx, CLAI_E_SHAPE, "%s: bias %s does not broadcast to [M, N] = [%lld, %lld] (use [N], [M, 1] or [M, N])",
                           fn, clai__shape_str(bias->ndim, bias->shape, x, sizeof x), (long long)p->M, (long long)p->N);
      if (clai__tensors_overlap(c, bias))
        return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: c overlaps bias in memory", fn);
      p->flags |= (bias->dtype == CLAI_DTYPE_F16 ? 2 : 1) << 4;
      p->bias = bias->buf->mem;
      p->boff = bias->offset;
      p->bsm = bst[0];
      p->bsn = bst[1];
    }
  }

  const clai_tensor *ops[3] = {&cb, &ab, &bb};
  clai__index_build(&p->ix, 3, ops);
  p->scm = c->strides[c->ndim - 2];
  p->scn = c->strides[c->ndim - 1];
  p->half_in = a->dtype == CLAI_DTYPE_F16;
  const clai__gemm_config *g = &ctx->gemm;
  if (p->quant) {
    /* one decode kernel per format, in clai_dtype order from Q8_0 */
    static const int gemv[5] = {CLAI__K_QGEMV_Q8_0, CLAI__K_QGEMV_Q4_0, CLAI__K_QGEMV_Q4_1, CLAI__K_QGEMV_Q4_K,
                                CLAI__K_QGEMV_Q6_K};
    static const int gemv8[5] = {CLAI__K_QGEMV8_Q8_0, CLAI__K_QGEMV8_Q4_0, CLAI__K_QGEMV8_Q4_1, CLAI__K_QGEMV8_Q4_K,
                                 CLAI__K_QGEMV8_Q6_K};
    if (p->aquant && p->M <= CLAI__QGEMV_MAX_M && p->sak == 1 && p->M * p->K <= CLAI__QGEMV8_STAGE)
      p->kernel = gemv8[p->quant - CLAI_DTYPE_Q8_0]; /* Q8_0 activations dequantized in local memory */
    else if (p->aquant || p->half_in)
      p->kernel = -3; /* A is widened to f32 first (dequantized, or converted from f16), then planned again */
    else if (p->M > CLAI__QMATMUL_MAX_M)
      p->kernel = -2;
    else if (p->M <= CLAI__QGEMV_MAX_M && !p->half_in && p->sak == 1)
      p->kernel = gemv[p->quant - CLAI_DTYPE_Q8_0];
    else
      p->kernel = CLAI__K_QMATMUL_F32;
  } else if ((g->clblast & clai__gemm_shape_class(p->M, p->N, p->K, p->ix.numel)) &&
      clai__clblast_can(ctx, c, a, b, p->M, p->N, p->K, p->sam, p->sak, p->sbk, p->sbn, p->scm, p->scn, ep)) {
    p->kernel = -1;
  } else if (g->family == CLAI__GEMM_PACKED) {
    /* Skinny M reads B in place rather than packing it, which pays where B is many panels wide; one panel
     * (N <= cn * vw) packs as cheaply as it is read, so such products take the packed kernels, which a step
     * compiles anyway, instead of a kernel of their own (a bias gradient's M = 10, N = 1 compiled
     * clai_gemm_apacked_f32 for 0.45 s at a cold start) */
    const int one_panel = p->N <= (int64_t)g->packed.cn * g->packed.vw;
    p->kernel = p->M <= g->packed.skinny && !one_panel
                    ? (p->half_in ? CLAI__K_GEMM_APACKED_F16 : CLAI__K_GEMM_APACKED_F32)
                    : CLAI__K_GEMM_PACKED;
    /* A small product whose A rows and B rows are contiguous (f32, M of at least a panel, N of at least a
     * B panel: a narrower one is packed as cheaply, see above) reads them in place: no packing launch */
    if (p->kernel == CLAI__K_GEMM_PACKED && !p->half_in && p->sak == 1 && p->sbn == 1 && p->M >= g->packed.rm &&
        p->N >= (int64_t)g->packed.cn * g->packed.vw && (p->M + p->N) * p->K <= (int64_t)g->packed.direct)
      p->kernel = CLAI__K_GEMM_DIRECT;
  } else if (g->family == CLAI__GEMM_GPU) {
    const int skinny = p->M <= g->gpu.srm * g->gpu.slx;
    p->kernel = skinny ? (p->half_in ? CLAI__K_GEMM_GPU_SKINNY_F16 : CLAI__K_GEMM_GPU_SKINNY_F32)
                       : (p->half_in ? CLAI__K_GEMM_GPU_F16 : CLAI__K_GEMM_GPU_F32);
  } else {
    p->kernel = p->half_in ? CLAI__K_GEMM_F16 : CLAI__K_GEMM_F32;
  }
  return CLAI_OK;
}

/* The most bytes of B panels a work-group of the packed kernels reads over one k-block. On POCL the
 * group's work-items run one after another, A panels innermost, and the next group takes the next A panels
 * with the same B panels, which are then read from the core's L2 if they are still there. Where K fills
 * the k-block of 4096 (AVX-512), 2 x 4 groups read 4 B panels of 256 KiB at K = 2048 and of 512 KiB at
 * K = 4096: 2 MiB, all of this machine's L2 per core. Within 512 KiB (2026-12-06, POCL, 2-core Emerald
 * Rapids, processes alternating, median of the pairs' ratios to 2 x 4 panels): 2048^3 1.08x with 4 x 2,
 * 1024 x 1024 x 4096 1.12x with 8 x 1, 1024^3 the same 2 x 4. 512 KiB is half the L2 of most server cores
 * of the last years; the group shape and the kernel stay the same (only gw, the A panels per group,
 * changes), so no new compilation. */
#define CLAI__GROUP_B_BYTES (512u * 1024u)

/* The kernel and work-group of a non-skinny packed product. The group is always the kernel's lx x ly
 * work-items; gw says how many A panels they take (by lx * ly / gw B panels: the kernel maps its local ids,
 * cl/matmul_packed.cl). Normally gw = lx, the launch's own shape. A short M (few A panels, as in a
 * convolution's GEMMs: M = output channels, or a training loop's last, shorter batch) puts every A panel
 * in one group, so each k-block of a B panel comes from memory once for all of them instead of once per
 * lx panels (POCL, 2 cores: M = 64, N = 9604, K = 800 went from 90 to 148 GFLOP/s in the kernel; one
 * column panel per group beat two): gw is then the smallest lx * d >= Mt, d dividing ly, work-items past
 * the last panel idle (one group of lx * ly panels for all lost 12% at M = 32, N = 9604, K = 25: Mt = 4,
 * 12 of 16 work-items idle). The group's shape stays the same because POCL compiles a kernel once per
 * work-group size: a short-M group of its own local size cost two more compilations of ~0.3-0.6 s each
 * on a cold start (the MLP's last batch of 96 rows). K within one k-block takes the kernel without
 * barriers (best of 6: M = 800, N = 1176, K = 64 in 0.96 instead of 1.19 ms; M = 3136, N = 1024, K = 128
 * in 5.3 instead of 6.0). */
static int packed_shape(const clai_context *ctx, const gemm_plan *p, size_t local[3], int *gw) {
  const struct clai__gemm_packed *g = &ctx->gemm.packed;
  const int64_t Mt = (p->M + g->rm - 1) / g->rm;
  local[0] = ctx->klocal[CLAI__K_GEMM_PACKED][0], local[1] = ctx->klocal[CLAI__K_GEMM_PACKED][1], local[2] = 1;
  *gw = (int)local[0];
  if (Mt > (int64_t)local[0]) {
    int d = 2;
    while ((size_t)d < local[1] && (local[1] % (size_t)d != 0 || (int64_t)local[0] * d < Mt)) d++;
    if ((size_t)d <= local[1] && (int64_t)local[0] * d >= Mt) *gw = (int)local[0] * d;
  }
  /* The group's B panels over one k-block stay within CLAI__GROUP_B_BYTES (while there are A panels to
   * take): more A panels per group and fewer B panels where they are long. */
  const size_t lw = local[0] * local[1];
  const uint64_t bpanel = (uint64_t)(p->K < g->kb ? p->K : g->kb) * (uint64_t)(g->cn * g->vw) * 4;
  while ((int64_t)*gw < Mt && (size_t)*gw * 2 <= lw && lw % ((size_t)*gw * 2) == 0 &&
         (lw / (size_t)*gw) * bpanel > CLAI__GROUP_B_BYTES)
    *gw *= 2;
  return p->K <= g->kb ? CLAI__K_GEMM_PACKED_SHORT : CLAI__K_GEMM_PACKED;
}

/* The launches of a packed-tile kernel (clai_gemm_packed, _short, _direct) with groups of local[0] x local[1]
 * work-items that take gw A panels by gh = lw / gw B panels: the bands of gh B panels that N fills in one
 * launch, then, where Nt leaves a last band of gl < gh B panels, that band in a launch of its own whose
 * groups take lw / gl' A panels by gl' B panels (gl' the least divisor of lw from gl on). Every group of a
 * launch then has the same work (but the last A panels'), which POCL needs to share a launch out evenly:
 * its CPU threads take the groups in launch order, in chunks of at most 64 (with 2 threads; pthread
 * scheduler) and at most half of those left, so groups that end a launch with less work leave one thread
 * idle while the other finishes a chunk of full ones. 777^3 (Nt = 25, 4 B panels a group) put 28 groups of
 * 2 tiles at the end of one launch: one thread computed 784 tiles, the other 616. Where gl' = gh the last
 * band's groups have the shape of the others and share their launch. Returns the number of launches (0 to
 * 2). */
typedef struct tile_launch {
  int gw, j0;       /* A panels per group, first B panel */
  size_t global[3];
} tile_launch;

static int tile_launches(const size_t local[3], int gw, int64_t Mt, int64_t Nt, size_t batch, tile_launch out[2]) {
  const int lw = (int)(local[0] * local[1]), gh = lw / gw;
  const int64_t full = Nt / gh * gh;
  int n = 0;
  if (Mt == 0 || batch == 0) return 0;
  if (full > 0)
    out[n++] = (tile_launch){gw, 0, {(size_t)((Mt + gw - 1) / gw) * local[0], (size_t)(full / gh) * local[1], batch}};
  if (Nt > full) {
    int gl = (int)(Nt - full);
    while (lw % gl != 0) gl++;
    const int gw2 = lw / gl;
    if (gw2 == gw && n == 1) /* the same groups as the full bands: one launch for all */
      out[0].global[1] += local[1];
    else
      out[n++] = (tile_launch){gw2, (int)full, {(size_t)((Mt + gw2 - 1) / gw2) * local[0], local[1], batch}};
  }
  return n;
}

/* Packs op(A) (and, unless M is skinny, op(B)) into pooled workspaces, then runs the packed kernel
 * (cl/matmul_packed.cl). The workspaces go back to the pool at once: the in-order queue runs any later
 * user after these kernels. */
static clai_status launch_packed(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                                 const gemm_plan *p, float alpha, float beta) {
  const struct clai__gemm_packed *g = &ctx->gemm.packed;
  const int skinny = p->kernel != CLAI__K_GEMM_PACKED;
  const int nr = g->cn * g->vw;               /* columns of a B panel */
  const int rows = skinny ? g->srm : g->rm;   /* of an A panel */
  const int64_t Mt = (p->M + rows - 1) / rows, Nt = skinny ? 0 : (p->N + nr - 1) / nr;
  uint64_t abytes, bbytes;
  if (!clai__mul_ok((uint64_t)p->ix.numel * (uint64_t)Mt, (uint64_t)p->K * (uint64_t)rows * 4, &abytes) ||
      !clai__mul_ok((uint64_t)p->ix.numel * (uint64_t)Nt, (uint64_t)p->K * (uint64_t)nr * 4, &bbytes))
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
  size_t gpack[3] = {(size_t)((p->K + g->pk - 1) / g->pk), (size_t)(Mt + Nt), (size_t)p->ix.numel};
  const cl_int sk = skinny;
  st = clai__launch(ctx, p->half_in ? CLAI__K_PACK_AB_F16 : CLAI__K_PACK_AB_F32, gpack, 15, CLAI__ARG(a->buf->mem),
                    CLAI__ARG(b->buf->mem), CLAI__ARG(ap->mem), CLAI__ARG(bp->mem), CLAI__IDX(p->ix), CLAI__ARG(m),
                    CLAI__ARG(n), CLAI__ARG(k), CLAI__ARG(mt), CLAI__ARG(nt), CLAI__ARG(sam), CLAI__ARG(sak),
                    CLAI__ARG(sbk), CLAI__ARG(sbn), CLAI__ARG(sk));
  size_t ggemm[3] = {(size_t)Mt, (size_t)Nt, (size_t)p->ix.numel};
  if (st == CLAI_OK && skinny) {
    ggemm[1] = (size_t)((p->N + g->vw - 1) / g->vw);
    st = clai__launch(ctx, p->kernel, ggemm, 19, CLAI__ARG(c->buf->mem), CLAI__ARG(ap->mem), CLAI__ARG(b->buf->mem),
                      CLAI__IDX(p->ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(k), CLAI__ARG(mt), CLAI__ARG(sbk),
                      CLAI__ARG(sbn), CLAI__ARG(scm), CLAI__ARG(scn), CLAI__ARG(al), CLAI__ARG(be), CLAI__ARG(p->bias),
                      CLAI__ARG(p->boff), CLAI__ARG(p->bsm), CLAI__ARG(p->bsn), CLAI__ARG(p->flags));
  } else if (st == CLAI_OK) {
    size_t lpk[3];
    int gw;
    tile_launch tl[2];
    const int kern = packed_shape(ctx, p, lpk, &gw);
    const int nl = tile_launches(lpk, gw, Mt, Nt, (size_t)p->ix.numel, tl);
    for (int i = 0; i < nl && st == CLAI_OK; i++) {
      const cl_int gwa = tl[i].gw, j0 = tl[i].j0;
      st = clai__launch_local(ctx, kern, tl[i].global, lpk, 20, CLAI__ARG(c->buf->mem), CLAI__ARG(ap->mem),
                              CLAI__ARG(bp->mem), CLAI__IDX(p->ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(k),
                              CLAI__ARG(mt), CLAI__ARG(nt), CLAI__ARG(gwa), CLAI__ARG(j0), CLAI__ARG(scm),
                              CLAI__ARG(scn), CLAI__ARG(al), CLAI__ARG(be), CLAI__ARG(p->bias), CLAI__ARG(p->boff),
                              CLAI__ARG(p->bsm), CLAI__ARG(p->bsn), CLAI__ARG(p->flags));
    }
  }
  clai__pool_release(ctx, ap);
  clai__pool_release(ctx, bp);
  return st;
}

/* A small product with A and B read in place (clai_gemm_direct, cl/matmul_packed.cl): the tiles, work-groups
 * and panel grouping of the packed kernel, without its packing launch. */
static clai_status launch_gemm_direct(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                                      const gemm_plan *p, float alpha, float beta) {
  const struct clai__gemm_packed *g = &ctx->gemm.packed;
  const int nr = g->cn * g->vw;
  const int64_t Mt = (p->M + g->rm - 1) / g->rm, Nt = (p->N + nr - 1) / nr;
  clai_status st = clai__kernel_ready(ctx, CLAI__K_GEMM_DIRECT); /* its local size is known once it exists */
  if (st != CLAI_OK) return st;
  size_t lpk[3];
  int gw;
  tile_launch tl[2];
  (void)packed_shape(ctx, p, lpk, &gw);
  const int nl = tile_launches(lpk, gw, Mt, Nt, (size_t)p->ix.numel, tl);
  const cl_int m = (cl_int)p->M, n = (cl_int)p->N, k = (cl_int)p->K, mt = (cl_int)Mt, nt = (cl_int)Nt;
  const cl_long sam = p->sam, sbk = p->sbk, scm = p->scm, scn = p->scn;
  const cl_float al = alpha, be = beta;
  for (int i = 0; i < nl && st == CLAI_OK; i++) {
    const cl_int gwa = tl[i].gw, j0 = tl[i].j0;
    st = clai__launch_local(ctx, CLAI__K_GEMM_DIRECT, tl[i].global, lpk, 22, CLAI__ARG(c->buf->mem),
                            CLAI__ARG(a->buf->mem), CLAI__ARG(b->buf->mem), CLAI__IDX(p->ix), CLAI__ARG(m),
                            CLAI__ARG(n), CLAI__ARG(k), CLAI__ARG(mt), CLAI__ARG(nt), CLAI__ARG(gwa), CLAI__ARG(j0),
                            CLAI__ARG(sam), CLAI__ARG(sbk), CLAI__ARG(scm), CLAI__ARG(scn), CLAI__ARG(al),
                            CLAI__ARG(be), CLAI__ARG(p->bias), CLAI__ARG(p->boff), CLAI__ARG(p->bsm), CLAI__ARG(p->bsn),
                            CLAI__ARG(p->flags));
  }
  return st;
}

/* The generic and GPU families share one argument list; they differ in the work-items per tile. */
static clai_status launch_direct(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                                 const gemm_plan *p, float alpha, float beta) {
  const clai__gemm_config *g = &ctx->gemm;
  int rows, cols; /* of C per work-item */
  if (p->kernel == CLAI__K_GEMM_GPU_F32 || p->kernel == CLAI__K_GEMM_GPU_F16)
    rows = g->gpu.rm, cols = g->gpu.vw;
  else if (p->kernel == CLAI__K_GEMM_GPU_SKINNY_F32 || p->kernel == CLAI__K_GEMM_GPU_SKINNY_F16)
    rows = g->gpu.srm, cols = g->gpu.vw;
  else
    rows = g->generic.rm, cols = g->generic.vw;
  const cl_int m = (cl_int)p->M, n = (cl_int)p->N, k = (cl_int)p->K;
  const cl_long sam = p->sam, sak = p->sak, sbk = p->sbk, sbn = p->sbn, scm = p->scm, scn = p->scn;
  const cl_float al = alpha, be = beta;
  size_t global[3] = {(size_t)((p->M + rows - 1) / rows), (size_t)((p->N + cols - 1) / cols), (size_t)p->ix.numel};
  return clai__launch(ctx, p->kernel, global, 20, CLAI__ARG(c->buf->mem), CLAI__ARG(a->buf->mem),
                      CLAI__ARG(b->buf->mem), CLAI__IDX(p->ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(k), CLAI__ARG(sam),
                      CLAI__ARG(sak), CLAI__ARG(sbk), CLAI__ARG(sbn), CLAI__ARG(scm), CLAI__ARG(scn), CLAI__ARG(al),
                      CLAI__ARG(be), CLAI__ARG(p->bias), CLAI__ARG(p->boff), CLAI__ARG(p->bsm), CLAI__ARG(p->bsn),
                      CLAI__ARG(p->flags));
}

/* K = 0 with an epilogue: C = act(beta * C + bias) through the elementwise ops. */
static clai_status k0_epilogue(clai_context *ctx, clai_tensor *c, float beta, const clai_matmul_epilogue *ep) {
  clai_status st = beta == 0.0f ? clai_fill(ctx, c, 0.0) : clai_scale(ctx, c, c, beta);
  if (st == CLAI_OK && ep->bias != NULL) {
    clai_tensor *bias = (clai_tensor *)ep->bias, *tmp = NULL;
    if (bias->dtype != c->dtype) {
      st = clai_tensor_init(ctx, &tmp, c->dtype, bias->ndim, bias->shape);
      if (st == CLAI_OK) st = clai_copy(ctx, tmp, bias);
      bias = tmp;
    }
    if (st == CLAI_OK) st = clai_binary(ctx, CLAI_ADD, c, c, bias);
    clai_tensor_free(tmp);
  }
  static const clai_unary_op unary[] = {CLAI_NEG, CLAI_RELU, CLAI_GELU, CLAI_SILU};
  if (st == CLAI_OK && ep->act != CLAI_ACT_NONE) st = clai_unary(ctx, unary[ep->act], c, c);
  return st;
}

/* A view header (not a tensor of the context's list: only read, never freed) with the last two dims swapped. */
static clai_tensor swapped(const clai_tensor *t) {
  clai_tensor v = *t;
  const int r = t->ndim - 2, q = t->ndim - 1;
  v.shape[r] = t->shape[q], v.shape[q] = t->shape[r];
  v.strides[r] = t->strides[q], v.strides[q] = t->strides[r];
  return v;
}

/* C = act(alpha A B + beta C + bias) with A quantized ([M, K] as stored) is
 * C^T = act(alpha op(B)^T A^T + beta C^T + bias^T): the same product with the quantized operand second, as
 * the kernels take it. The bias, broadcast to [M, N], is transposed with C. */
static clai_status matmul_quant_a(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a,
                                  const clai_tensor *b, int trans_b, float alpha, float beta,
                                  const clai_matmul_epilogue *ep) {
  const char *fn = "clai_matmul";
  clai_status s = clai__check_out(ctx, c, fn, "c");
  if (s == CLAI_OK) s = clai__check_tensor(ctx, b, fn, "b");
  if (s != CLAI_OK) return s;
  if (trans_a)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "%s: a quantized operand is a weight matrix stored [M, K] (K, the "
                       "reduced dim, holds the blocks): a needs trans_a = 0 (b: trans_b = 1)", fn);
  if (a->ndim < 2 || b->ndim < 2 || c->ndim < 2)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: a, b and c need at least 2 dims (have %d, %d, %d)", fn, a->ndim,
                       b->ndim, c->ndim);
  clai_tensor ct = swapped(c), bias_t;
  clai_matmul_epilogue ept = {NULL, CLAI_ACT_NONE};
  if (ep != NULL) {
    ept = *ep;
    if (ep->bias != NULL) {
      const clai_tensor *bias = ep->bias;
      s = clai__check_tensor(ctx, bias, fn, "bias");
      if (s != CLAI_OK) return s;
      const int64_t mn[2] = {c->shape[c->ndim - 2], c->shape[c->ndim - 1]};
      int64_t bst[2];
      char x[160];
      if (bias->ndim > 2 || !clai__broadcast_strides(bias, 2, mn, bst))
        return clai__error(ctx, CLAI_E_SHAPE, "%s: bias %s does not broadcast to [M, N] = [%lld, %lld] (use [N], [M, 1] or [M, N])",
                           fn, clai__shape_str(bias->ndim, bias->shape, x, sizeof x), (long long)mn[0], (long long)mn[1]);
      bias_t = *bias;
      bias_t.ndim = 2;
      bias_t.shape[0] = mn[1], bias_t.shape[1] = mn[0];
      bias_t.strides[0] = bst[1], bias_t.strides[1] = bst[0];
      ept.bias = &bias_t;
    }
  }
  return clai_matmul_ex(ctx, &ct, b, !trans_b, a, 1, alpha, beta, ep != NULL ? &ept : NULL);
}

/* The small-M product with a quantized B (cl/quant.cl): one work-item per column of C and batch entry; the
 * format-specialised kernel for the decode step's M <= 4 with a dense f32 A, the general one otherwise. */
static clai_status launch_quant(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                                const gemm_plan *p, float alpha, float beta) {
  const cl_int m = (cl_int)p->M, n = (cl_int)p->N, k = (cl_int)p->K, fmt = p->quant;
  const cl_long sam = p->sam, sak = p->sak, sbn = p->sbn, scm = p->scm, scn = p->scn;
  const cl_float al = alpha, be = beta;
  size_t global[2] = {(size_t)p->N, (size_t)p->ix.numel};
  /* the epilogue as three ints (see clai_q_store in cl/quant.cl) */
  const cl_int bk = (p->flags >> 4) & 3, chalf = (p->flags >> 8) & 1, act = p->flags >> 12;
  if (p->kernel != CLAI__K_QMATMUL_F32)
    return clai__launch(ctx, p->kernel, global, 20, CLAI__ARG(c->buf->mem), CLAI__ARG(a->buf->mem),
                        CLAI__ARG(b->buf->mem), CLAI__IDX(p->ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(k),
                        CLAI__ARG(sam), CLAI__ARG(sbn), CLAI__ARG(scm), CLAI__ARG(scn), CLAI__ARG(al), CLAI__ARG(be),
                        CLAI__ARG(p->bias), CLAI__ARG(p->boff), CLAI__ARG(p->bsm), CLAI__ARG(p->bsn), CLAI__ARG(bk),
                        CLAI__ARG(chalf), CLAI__ARG(act));
  return clai__launch(ctx, p->kernel, global, 22, CLAI__ARG(c->buf->mem), CLAI__ARG(a->buf->mem),
                      CLAI__ARG(b->buf->mem), CLAI__IDX(p->ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(k), CLAI__ARG(sam),
                      CLAI__ARG(sak), CLAI__ARG(sbn), CLAI__ARG(scm), CLAI__ARG(scn), CLAI__ARG(al), CLAI__ARG(be),
                      CLAI__ARG(p->bias), CLAI__ARG(p->boff), CLAI__ARG(p->bsm), CLAI__ARG(p->bsn), CLAI__ARG(bk),
                      CLAI__ARG(chalf), CLAI__ARG(act), CLAI__ARG(fmt));
}

/* A larger M with a quantized B ([.., N, K] as stored): B is dequantized, a chunk of its rows (C's columns) at
 * a time into a pooled f32 workspace of at most CLAI__QCHUNK_BYTES, and each chunk goes through the device's
 * own GEMM family (packed, generic, GPU or CLBlast) as a plain f32 product. An f16 A is widened to f32 once,
 * so both paths compute in f32 from the same dequantized values. */
static clai_status quant_chunks(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a,
                                const clai_tensor *b, const gemm_plan *p, float alpha, float beta,
                                const clai_matmul_epilogue *ep) {
  clai_status st = CLAI_OK;
  clai_tensor *a32 = NULL;
  if (a->dtype != CLAI_DTYPE_F32) {
    st = clai_tensor_init(ctx, &a32, CLAI_DTYPE_F32, a->ndim, a->shape);
    if (st == CLAI_OK) st = clai__copy(ctx, a32, a, "clai_matmul");
    if (st != CLAI_OK) {
      clai_tensor_free(a32);
      return st;
    }
    a = a32;
  }
  const int rn = b->ndim - 2; /* b's N dim */
  uint64_t per_row = (uint64_t)p->K * 4;
  for (int d = 0; d < rn; d++) per_row *= (uint64_t)(b->shape[d] > 0 ? b->shape[d] : 1);
  int64_t rows = (int64_t)(CLAI__QCHUNK_BYTES / per_row);
  if (rows < 1) rows = 1;
  clai_tensor bias2;
  clai_matmul_epilogue epc = {NULL, CLAI_ACT_NONE};
  if (ep != NULL) {
    epc = *ep;
    if (ep->bias != NULL) { /* as the [M, N] view plan() checked, to be sliced with C */
      bias2 = *ep->bias;
      bias2.ndim = 2;
      bias2.shape[0] = p->M, bias2.shape[1] = p->N;
      bias2.strides[0] = p->bsm, bias2.strides[1] = p->bsn;
      bias2.offset = p->boff;
    }
  }
  for (int64_t n0 = 0; n0 < p->N && st == CLAI_OK; n0 += rows) {
    const int64_t nc = p->N - n0 < rows ? p->N - n0 : rows;
    clai_tensor bc = *b, cc = *c, bias_c;
    bc.shape[rn] = nc;
    bc.offset += n0 * b->strides[rn];
    cc.shape[c->ndim - 1] = nc;
    cc.offset += n0 * c->strides[c->ndim - 1];
    clai_tensor *w = NULL;
    st = clai_tensor_init(ctx, &w, CLAI_DTYPE_F32, bc.ndim, bc.shape);
    if (st == CLAI_OK) st = clai__dequant(ctx, w, &bc, "clai_matmul");
    if (st == CLAI_OK && ep != NULL && ep->bias != NULL) {
      bias_c = bias2;
      bias_c.shape[1] = nc;
      bias_c.offset += n0 * p->bsn;
      epc.bias = &bias_c;
    }
    if (st == CLAI_OK) st = clai_matmul_ex(ctx, &cc, a, trans_a, w, 1, alpha, beta, ep != NULL ? &epc : NULL);
    clai_tensor_free(w); /* the in-order queue runs any reuse of its buffer after the product */
  }
  clai_tensor_free(a32);
  return st;
}

/* Products on a device whose kernels' loops end after a number of iterations (llvmpipe: 65535, shared by all
 * the loops a work-item runs; caps.loop_limit) take K in slices of CLAI__LOOP_K at most, each its own
 * product: C = alpha * A_0 B_0 + beta * C, then C = alpha * A_i B_i + C, and the epilogue with the last.
 * An f16 C is summed in an f32 copy and stored once, so it is rounded once, as in one product. Without the
 * slices rusticl 22.3 (llvmpipe) returned wrong sums, silently: from K = 4089 with the packed family's
 * 14 x 32 tile (16 loop iterations a k there), and between K = 20000 and 66000 with its default generic
 * family. Quantized weights take slices of CLAI__LOOP_K_QUANT (whole blocks and super-blocks): their kernels
 * run about one iteration per block of 32 per 4 rows of A, and were wrong there from K = 524288 at M = 16
 * (4 x 16384 iterations) and between K = 2^20 and 2^22 at M = 1 to 4; a slice of 32768 is 1024 blocks. */
#define CLAI__LOOP_K 1024
#define CLAI__LOOP_K_QUANT 32768

static clai_status k_slices(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a, const clai_tensor *b,
                            int trans_b, int64_t K, int64_t slice, float alpha, float beta,
                            const clai_matmul_epilogue *ep) {
  const int ka = trans_a ? a->ndim - 2 : a->ndim - 1, kb = trans_b ? b->ndim - 1 : b->ndim - 2;
  clai_status st = CLAI_OK;
  clai_tensor *acc = c, *tmp = NULL;
  if (c->dtype != CLAI_DTYPE_F32) {
    st = clai_tensor_init(ctx, &tmp, CLAI_DTYPE_F32, c->ndim, c->shape);
    if (st == CLAI_OK && beta != 0.0f) st = clai__copy(ctx, tmp, c, "clai_matmul");
    acc = tmp;
  }
  for (int64_t k0 = 0; k0 < K && st == CLAI_OK; k0 += slice) {
    const int64_t kn = K - k0 < slice ? K - k0 : slice;
    clai_tensor as = *a, bs = *b;
    as.shape[ka] = kn, as.offset += k0 * a->strides[ka];
    bs.shape[kb] = kn, bs.offset += k0 * b->strides[kb];
    const int last = k0 + kn == K;
    st = clai_matmul_ex(ctx, acc, &as, trans_a, &bs, trans_b, alpha, k0 == 0 ? beta : 1.0f, last ? ep : NULL);
  }
  if (st == CLAI_OK && tmp != NULL) st = clai__copy(ctx, c, tmp, "clai_matmul");
  clai_tensor_free(tmp); /* the in-order queue runs any reuse of its buffer after the copy */
  return st;
}

clai_status clai_matmul_ex(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a, const clai_tensor *b,
                           int trans_b, float alpha, float beta, const clai_matmul_epilogue *ep) {
  if (ctx != NULL && a != NULL && a->ctx == ctx && clai_dtype_block(a->dtype) > 1 &&
      !(b != NULL && b->ctx == ctx && clai_dtype_block(b->dtype) > 1))
    return matmul_quant_a(ctx, c, a, trans_a, b, trans_b, alpha, beta, ep);
  gemm_plan p;
  clai_status s = plan(ctx, "clai_matmul", c, a, trans_a, b, trans_b, ep, &p);
  if (s != CLAI_OK) return s;
  if (p.M == 0 || p.N == 0 || p.ix.numel == 0) return CLAI_OK; /* C is empty */
  /* K = 0: the product is zero and C = act(beta * C + bias) is done by the elementwise ops. (POCL 3.1 ran
   * the store of the skinny kernel twice when its barrier loop had no iteration, so no GEMM kernel is
   * launched with K = 0.) */
  if (p.K == 0) {
    if (ep == NULL) return beta == 0.0f ? clai_fill(ctx, c, 0.0) : clai_scale(ctx, c, c, beta);
    return k0_epilogue(ctx, c, beta, ep);
  }
  if (p.kernel == -3) { /* Q8_0 or f16 activations: their f32 values, then the f32-activation paths */
    clai_tensor *a32 = NULL;
    s = clai_tensor_init(ctx, &a32, CLAI_DTYPE_F32, a->ndim, a->shape);
    if (s == CLAI_OK) s = p.aquant ? clai__dequant(ctx, a32, a, "clai_matmul") : clai__copy(ctx, a32, a, "clai_matmul");
    if (s == CLAI_OK) s = clai_matmul_ex(ctx, c, a32, 0, b, 1, alpha, beta, ep);
    clai_tensor_free(a32);
    return s;
  }
  const int64_t slice = p.quant ? CLAI__LOOP_K_QUANT : CLAI__LOOP_K;
  if (ctx->caps.loop_limit > 0 && p.K > slice)
    return k_slices(ctx, c, a, trans_a, b, trans_b, p.K, slice, alpha, beta, ep);
  if (p.kernel == -2) return quant_chunks(ctx, c, a, trans_a, b, &p, alpha, beta, ep);
  if (p.quant) return launch_quant(ctx, c, a, b, &p, alpha, beta);
  if (p.kernel == -1) return clai__clblast_gemm(ctx, c, a, b, p.M, p.N, p.K, p.sam, p.sak, p.sbk, p.sbn, p.scm, p.scn, &p.ix, alpha, beta);
  if (p.kernel == CLAI__K_GEMM_PACKED || p.kernel == CLAI__K_GEMM_APACKED_F32 || p.kernel == CLAI__K_GEMM_APACKED_F16)
    return launch_packed(ctx, c, a, b, &p, alpha, beta);
  if (p.kernel == CLAI__K_GEMM_DIRECT) return launch_gemm_direct(ctx, c, a, b, &p, alpha, beta);
  return launch_direct(ctx, c, a, b, &p, alpha, beta);
}

clai_status clai_matmul(clai_context *ctx, clai_tensor *c, const clai_tensor *a, int trans_a, const clai_tensor *b,
                        int trans_b, float alpha, float beta) {
  return clai_matmul_ex(ctx, c, a, trans_a, b, trans_b, alpha, beta, NULL);
}

/* clai_matmul_pro's prologue through a temporary: f16 widened, then clai_glu, clai_rmsnorm and the rounding
 * (a copy into Q8_0, or clai_round_q8k in place), each into a tensor of its own, and the plain product. */
static clai_status pro_unfused(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                               int trans_b, float alpha, float beta, const clai_matmul_prologue *pro,
                               const clai_matmul_epilogue *ep, int64_t K) {
  clai_tensor *tmp[4] = {NULL, NULL, NULL, NULL};
  const clai_tensor *cur = a;
  int64_t shape[CLAI_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[a->ndim - 1] = K;
  clai_status st = CLAI_OK;
  if (a->dtype != CLAI_DTYPE_F32) {
    st = clai_tensor_init(ctx, &tmp[0], CLAI_DTYPE_F32, a->ndim, a->shape);
    if (st == CLAI_OK) st = clai__copy(ctx, tmp[0], a, "clai_matmul_pro");
    cur = tmp[0];
  }
  if (st == CLAI_OK && pro->glu) {
    st = clai_tensor_init(ctx, &tmp[1], CLAI_DTYPE_F32, a->ndim, shape);
    if (st == CLAI_OK) st = clai_glu(ctx, pro->glu_op, tmp[1], cur);
    cur = tmp[1];
  }
  if (st == CLAI_OK && pro->rms_weight != NULL) {
    st = clai_tensor_init(ctx, &tmp[2], CLAI_DTYPE_F32, a->ndim, shape);
    if (st == CLAI_OK) st = clai_rmsnorm(ctx, tmp[2], cur, pro->rms_weight, pro->rms_eps, NULL);
    cur = tmp[2];
  }
  if (st == CLAI_OK && pro->round == CLAI_ROUND_Q8_0) {
    st = clai_tensor_init(ctx, &tmp[3], CLAI_DTYPE_Q8_0, a->ndim, shape);
    if (st == CLAI_OK) st = clai_copy(ctx, tmp[3], cur);
    cur = tmp[3];
  } else if (st == CLAI_OK && pro->round == CLAI_ROUND_Q8_K) { /* in place, in a dense f32 tensor of our own */
    if (cur == a) {
      st = clai_tensor_init(ctx, &tmp[3], CLAI_DTYPE_F32, a->ndim, shape);
      if (st == CLAI_OK) st = clai__copy(ctx, tmp[3], a, "clai_matmul_pro");
      cur = tmp[3];
    }
    const clai_tensor *t = cur;
    const cl_long off = t->offset, nblocks = clai_tensor_numel(t) / 256;
    size_t global = (size_t)nblocks;
    if (st == CLAI_OK)
      st = clai__launch(ctx, CLAI__K_ROUND_Q8K, &global, 3, CLAI__ARG(t->buf->mem), CLAI__ARG(off), CLAI__ARG(nblocks));
  }
  if (st == CLAI_OK) st = clai_matmul_ex(ctx, c, cur, 0, b, trans_b, alpha, beta, ep);
  for (int i = 0; i < 4; i++) clai_tensor_free(tmp[i]); /* the in-order queue runs any reuse after the product */
  return st;
}

/* The work-group size of clai_qgemvp_<fmt>. Every group repeats the prologue, so on CPUs (one group at a time
 * per core; the fused form only with CLAI_PROLOGUE=fused there) there are only two groups per core, as wide as
 * that takes: the GPU-style groups of 16 columns repeated it 96 times for N = 1536 and ran the product at half
 * the speed of a separate rounding launch; with two per core the SmolLM2 decode ran as fast as with the
 * separate ops (78.9 and 78.3 tok/s, medians of 5) and needed a compilation per group width. Other devices
 * keep the kernel's usual size. Within the kernel's and the device's limits. */
static clai_status pro_local(clai_context *ctx, int kernel, int64_t N, size_t local[2]) {
  clai_status st = clai__kernel_ready(ctx, kernel); /* its usual size is known once it exists */
  if (st != CLAI_OK) return st;
  local[0] = ctx->klocal[kernel][0], local[1] = 1;
  if (!ctx->caps.is_cpu || ctx->caps.lanes_cpu) return CLAI_OK;
  const int64_t groups = 2 * (int64_t)(ctx->caps.compute_units > 0 ? ctx->caps.compute_units : 1);
  size_t l = (size_t)(((N + groups - 1) / groups + 15) / 16 * 16), kmax = 0, dmax[3] = {0, 0, 0};
  if (clGetKernelWorkGroupInfo(ctx->kernels[kernel], ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax,
                               NULL) == CL_SUCCESS && kmax > 0 && l > kmax)
    l = kmax;
  if (clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof dmax, dmax, NULL) == CL_SUCCESS &&
      dmax[0] > 0 && l > dmax[0])
    l = dmax[0];
  if (l > local[0]) local[0] = l;
  return CLAI_OK;
}

clai_status clai_matmul_pro(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                            int trans_b, float alpha, float beta, const clai_matmul_prologue *pro,
                            const clai_matmul_epilogue *ep) {
  const char *fn = "clai_matmul_pro";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (pro == NULL) return clai_matmul_ex(ctx, c, a, 0, b, trans_b, alpha, beta, ep);
  clai_status s = clai__check_out(ctx, c, fn, "c");
  if (s == CLAI_OK) s = clai__check_tensor_any(ctx, a, fn, "a");
  if (s == CLAI_OK) s = clai__check_tensor_any(ctx, b, fn, "b");
  if (s == CLAI_OK && pro->rms_weight != NULL) s = clai__check_tensor(ctx, pro->rms_weight, fn, "pro->rms_weight");
  if (s != CLAI_OK) return s;
  char x[160];
  if (a->dtype != CLAI_DTYPE_F32 && a->dtype != CLAI_DTYPE_F16)
    return clai__error(ctx, a->dtype == CLAI_DTYPE_I32 ? CLAI_E_DTYPE : CLAI_E_UNSUPPORTED,
                       "%s: a must be f32 or f16 (its rows go through the prologue), not %s", fn,
                       clai_dtype_name(a->dtype));
  if (a->ndim < 2)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: a needs at least 2 dims, is %s", fn,
                       clai__shape_str(a->ndim, a->shape, x, sizeof x));
  if (pro->glu && ((int)pro->glu_op < 0 || (int)pro->glu_op > CLAI_TANH))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: pro->glu_op %d is not a clai_unary_op", fn, (int)pro->glu_op);
  const int64_t W = a->shape[a->ndim - 1], K = pro->glu ? W / 2 : W;
  if (pro->glu && W % 2 != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: pro->glu needs a's last dim even (gate and up halves), a is %s", fn,
                       clai__shape_str(a->ndim, a->shape, x, sizeof x));
  const clai_tensor *w = pro->rms_weight;
  if (w != NULL) {
    if (w->dtype != CLAI_DTYPE_F32 && w->dtype != CLAI_DTYPE_F16)
      return clai__error(ctx, CLAI_E_DTYPE, "%s: pro->rms_weight must be f32 or f16, not %s", fn,
                         clai_dtype_name(w->dtype));
    if (w->ndim != 1 || w->shape[0] != K)
      return clai__error(ctx, CLAI_E_SHAPE, "%s: pro->rms_weight must be [%lld] (one value per column of the "
                         "normalised rows), is %s", fn, (long long)K, clai__shape_str(w->ndim, w->shape, x, sizeof x));
    if (!(pro->rms_eps >= 0.0f) || isinf(pro->rms_eps))
      return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: pro->rms_eps must be >= 0 and finite, is %g", fn,
                         (double)pro->rms_eps);
  }
  if ((int)pro->round < CLAI_ROUND_NONE || (int)pro->round > CLAI_ROUND_Q8_K)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: pro->round %d is not a clai_rounding", fn, (int)pro->round);
  const int64_t rblock = pro->round == CLAI_ROUND_Q8_K ? 256 : 32;
  if (pro->round != CLAI_ROUND_NONE && K % rblock != 0)
    return clai__error(ctx, CLAI_E_SHAPE, "%s: rounding to %s needs K a multiple of %lld, K is %lld", fn,
                       pro->round == CLAI_ROUND_Q8_K ? "q8_k" : "q8_0", (long long)rblock, (long long)K);
  if (clai__tensors_overlap(c, a)) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: c overlaps a in memory", fn);
  if (w != NULL && clai__tensors_overlap(c, w))
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: c overlaps pro->rms_weight in memory", fn);
  /* a's first K columns are the product's A (with a GLU, the kernel reads the second half K further on) */
  clai_tensor ah = *a;
  ah.shape[a->ndim - 1] = K;
  gemm_plan p;
  const int M = (int)(a->shape[a->ndim - 2] < INT_MAX ? a->shape[a->ndim - 2] : INT_MAX);
  const int fused = ctx->prologue_fused && clai_dtype_block(b->dtype) > 1 && trans_b && a->dtype == CLAI_DTYPE_F32 &&
                    K > 0 && K % 32 == 0 && (!pro->glu || pro->glu_op == CLAI_SILU || pro->glu_op == CLAI_GELU) &&
                    M <= CLAI__QGEMV_MAX_M && (int64_t)M * K <= CLAI__QGEMV8_STAGE &&
                    (a->strides[a->ndim - 1] == 1 || W == 1);
  if (!fused) return pro_unfused(ctx, c, a, b, trans_b, alpha, beta, pro, ep, K);
  s = plan(ctx, fn, c, &ah, 0, b, trans_b, ep, &p);
  if (s != CLAI_OK) return s;
  if (p.M == 0 || p.N == 0 || p.ix.numel == 0) return CLAI_OK; /* C is empty */
  /* the decode kernel plan() chose for an f32 A, and its prologue form */
  static const int gemv[] = {CLAI__K_QGEMV_Q8_0, CLAI__K_QGEMV_Q4_0, CLAI__K_QGEMV_Q4_1, CLAI__K_QGEMV_Q4_K,
                             CLAI__K_QGEMV_Q6_K};
  static const int gemvp[] = {CLAI__K_QGEMVP_Q8_0, CLAI__K_QGEMVP_Q4_0, CLAI__K_QGEMVP_Q4_1, CLAI__K_QGEMVP_Q4_K,
                              CLAI__K_QGEMVP_Q6_K};
  int kernel = -1;
  for (size_t i = 0; i < sizeof gemv / sizeof gemv[0]; i++)
    if (p.quant && p.kernel == gemv[i]) kernel = gemvp[i];
  if (kernel < 0) return pro_unfused(ctx, c, a, b, trans_b, alpha, beta, pro, ep, K);
  const cl_int m = (cl_int)p.M, n = (cl_int)p.N, k = (cl_int)p.K, bk = (p.flags >> 4) & 3,
               chalf = (p.flags >> 8) & 1, act = p.flags >> 12;
  const cl_long sam = p.sam, sbn = p.sbn, scm = p.scm, scn = p.scn;
  const cl_float al = alpha, be = beta, eps = pro->rms_eps;
  const cl_long goff = w != NULL ? w->offset : 0, gs = w != NULL ? w->strides[0] : 0;
  const cl_int ghalf = w != NULL && w->dtype == CLAI_DTYPE_F16,
               pf = (pro->glu ? 1 : 0) | (w != NULL ? 2 : 0) | (pro->round == CLAI_ROUND_Q8_0 ? 4 : 0) |
                    (pro->round == CLAI_ROUND_Q8_K ? 8 : 0),
               gop = (cl_int)pro->glu_op;
  const cl_mem gmem = w != NULL ? w->buf->mem : c->buf->mem; /* any buffer where there is no weight */
  size_t global[2] = {(size_t)p.N, (size_t)p.ix.numel}, local[2];
  s = pro_local(ctx, kernel, p.N, local);
  if (s != CLAI_OK) return s;
  return clai__launch_local(ctx, kernel, global, local, 27, CLAI__ARG(c->buf->mem), CLAI__ARG(a->buf->mem),
                            CLAI__ARG(b->buf->mem), CLAI__IDX(p.ix), CLAI__ARG(m), CLAI__ARG(n), CLAI__ARG(k),
                            CLAI__ARG(sam), CLAI__ARG(sbn), CLAI__ARG(scm), CLAI__ARG(scn), CLAI__ARG(al),
                            CLAI__ARG(be), CLAI__ARG(p.bias), CLAI__ARG(p.boff), CLAI__ARG(p.bsm), CLAI__ARG(p.bsn),
                            CLAI__ARG(bk), CLAI__ARG(chalf), CLAI__ARG(act), CLAI__ARG(gmem), CLAI__ARG(goff),
                            CLAI__ARG(gs), CLAI__ARG(ghalf), CLAI__ARG(eps), CLAI__ARG(pf), CLAI__ARG(gop));
}

/* "panels=AxB" (A panels by B panels a group), and the last band's where it takes a launch of its own. */
static void describe_panels(char *out, size_t cap, const clai_context *ctx, const gemm_plan *p, const size_t l[3],
                            int gw) {
  const struct clai__gemm_packed *g = &ctx->gemm.packed;
  const int lw = (int)(l[0] * l[1]), nr = g->cn * g->vw;
  tile_launch tl[2];
  const int n = tile_launches(l, gw, (p->M + g->rm - 1) / g->rm, (p->N + nr - 1) / nr, 1, tl);
  if (n == 0) {
    snprintf(out, cap, "panels=%dx%d", gw, lw / gw);
    return;
  }
  snprintf(out, cap, "panels=%dx%d", tl[0].gw, lw / tl[0].gw);
  if (n == 2) {
    const size_t used = strlen(out);
    const long long last = (long long)((p->N + nr - 1) / nr - tl[1].j0);
    snprintf(out + used, cap - used, " (last band of %lld B panels: %dx%d)", last, tl[1].gw, lw / tl[1].gw);
  }
}

clai_status clai_matmul_describe(clai_context *ctx, const clai_tensor *c, const clai_tensor *a, int trans_a,
                                 const clai_tensor *b, int trans_b, char *buf, size_t cap) {
  const char *fn = "clai_matmul_describe";
  if (ctx != NULL && a != NULL && a->ctx == ctx && clai_dtype_block(a->dtype) > 1 && b != NULL && c != NULL &&
      !trans_a && a->ndim >= 2 && c->ndim >= 2 && clai_dtype_block(b->dtype) == 1) {
    clai_tensor ct = swapped(c); /* as clai_matmul_ex runs it: see matmul_quant_a */
    return clai_matmul_describe(ctx, &ct, b, !trans_b, a, 1, buf, cap);
  }
  gemm_plan p;
  clai_status s = plan(ctx, fn, c, a, trans_a, b, trans_b, NULL, &p);
  if (s != CLAI_OK) return s;
  if (buf == NULL || cap == 0) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: buf is NULL or empty", fn);
  const clai__gemm_config *g = &ctx->gemm;
  const char *tuned = g->tuned ? " (tuned)" : "";
  if (p.quant && p.kernel >= 0) {
    const int spec = p.kernel != CLAI__K_QMATMUL_F32;
    snprintf(buf, cap, "quantized %s: one pass over the weights (M <= %d%s)", clai_dtype_name(b->dtype),
             spec ? CLAI__QGEMV_MAX_M : CLAI__QMATMUL_MAX_M,
             !spec ? "" : p.aquant ? ", q8_0 activations dequantized in local memory" : ", f32 activations");
    return CLAI_OK;
  }
  if (p.kernel == -3) {
    snprintf(buf, cap, "quantized %s x %s activations: the activations widened to f32, then the %s path",
             clai_dtype_name(b->dtype), clai_dtype_name(a->dtype), p.M <= CLAI__QGEMV_MAX_M ? "one-pass" :
             p.M <= CLAI__QMATMUL_MAX_M ? "one-pass (general)" : "chunked");
    return CLAI_OK;
  }
  if (p.quant) {
    snprintf(buf, cap, "quantized %s: dequantized in chunks into the f32 product", clai_dtype_name(b->dtype));
    return CLAI_OK;
  }
  if (p.kernel == -1) {
    snprintf(buf, cap, "clblast%s", tuned);
    return CLAI_OK;
  }
  s = clai__kernel_ready(ctx, p.kernel); /* the local sizes are fixed when the program is built */
  if (s != CLAI_OK) return s;
  const size_t *l = ctx->klocal[p.kernel];
  size_t lpk[3];
  switch (p.kernel) {
  case CLAI__K_GEMM_PACKED:
  case CLAI__K_GEMM_APACKED_F32:
  case CLAI__K_GEMM_APACKED_F16: {
    const char *what = " skinny (A packed)";
    int gw = 0;
    if (p.kernel == CLAI__K_GEMM_PACKED) {
      what = packed_shape(ctx, &p, lpk, &gw) == CLAI__K_GEMM_PACKED_SHORT ? " (one k-block)" : "";
      l = lpk;
    }
    if (p.kernel == CLAI__K_GEMM_PACKED) {
      char panels[80];
      describe_panels(panels, sizeof panels, ctx, &p, lpk, gw);
      snprintf(buf, cap, "packed%s rm=%d vw=%d cn=%d kb=%d uk=%d local=%zux%zu %s%s", what, g->packed.rm,
               g->packed.vw, g->packed.cn, g->packed.kb, g->packed.uk, l[0], l[1], panels, tuned);
    } else /* the skinny kernel's tile is srm x vw whatever rm and cn are */
      snprintf(buf, cap, "packed%s srm=%d vw=%d kb=%d uk=%d local=%zux%zu%s", what, g->packed.srm, g->packed.vw,
               g->packed.kb, g->packed.uk, l[0], l[1], tuned);
    break;
  }
  case CLAI__K_GEMM_DIRECT: {
    int gw = 0;
    char panels[80];
    (void)packed_shape(ctx, &p, lpk, &gw);
    describe_panels(panels, sizeof panels, ctx, &p, lpk, gw);
    snprintf(buf, cap, "packed direct (A and B in place) rm=%d vw=%d cn=%d local=%zux%zu %s%s", g->packed.rm,
             g->packed.vw, g->packed.cn, lpk[0], lpk[1], panels, tuned);
    break;
  }
  case CLAI__K_GEMM_GPU_F32:
  case CLAI__K_GEMM_GPU_F16:
    snprintf(buf, cap, "gpu rm=%d vw=%d kb=%d local=%zux%zu%s", g->gpu.rm, g->gpu.vw, g->gpu.kb, l[0], l[1], tuned);
    break;
  case CLAI__K_GEMM_GPU_SKINNY_F32:
  case CLAI__K_GEMM_GPU_SKINNY_F16:
    snprintf(buf, cap, "gpu skinny rm=%d vw=%d kb=%d local=%zux%zu%s", g->gpu.srm, g->gpu.vw, g->gpu.kb, l[0], l[1],
             tuned);
    break;
  default:
    snprintf(buf, cap, "generic rm=%d vw=%d kb=%d local=%zux%zu %s%s", g->generic.rm, g->generic.vw, g->generic.kb, l[0],
             l[1], p.sbn == 1 ? "b-vector" : "b-gather", tuned);
  }
  return CLAI_OK;
}
