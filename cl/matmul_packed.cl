/* matmul_packed.cl - the CPU-shaped GEMM: pack, then compute (used on CPU devices, POCL above all); at the end,
 * the convolutions as implicit GEMMs with the same tiles (clai_conv_igemm, clai_conv_wgrad and their helpers).
 *
 * 1. clai_pack_ab_{f32,f16} copies op(A) and op(B) of every batch entry, converted to f32, into zero-padded
 *    panels:
 *      Ap[z][Mt][K][RM]  (RM rows of A side by side for each k: one broadcast load per row per k)
 *      Bp[z][Nt][K][NR]  (NR = CN * VW columns of B contiguous for each k: CN vector loads per k)
 *    with Mt = ceil(M/RM), Nt = ceil(N/NR). Transposes and other strides are handled here, once, so the
 *    compute kernel never sees a stride, an edge or a power-of-two aliasing pattern.
 *    Work mapping: dim 0 = groups of PK consecutive k, dim 1 = panel (A panels first, then B), dim 2 = batch.
 * 2. clai_gemm_packed keeps an RM x NR tile of C in registers per work-item (RM x CN float vectors of width
 *    VW: 6 x 1 float16 = 12 AVX2 registers of accumulators; 12 x 2 float16 = 24 of AVX-512's 32) and meets its
 *    work-group at a barrier every KB values of k. On POCL the barrier runs all work-items of the group through one k-block before the next, so the
 *    group's A panels stay in L1 and its B panels in L2 (the BLIS loop order, expressed in OpenCL). (On
 *    AVX-512 CPUs the default KB is 4096, and products with K up to it take clai_gemm_packed_short: one
 *    pass over k, each work-item streaming its panels from L2, measured faster there: lib/op-matmul.c.)
 *    Work mapping: dim 0 = A panels, dim 1 = B panels from B panel j0 on (a group's work-items take gw A
 *    panels by lw / gw B panels, lw the group's size), dim 2 = batch. Tiles past M/N are computed on
 *    padding and not stored; no work-item leaves before a barrier.
 * Both end in the shared epilogue (clai_store_tile in common.cl): alpha, beta, bias, activation, C in f32
 * or f16; its common case inlined (clai_store_tile_fast, through CLAI_STORE_TILES). The batch entry z is
 * decomposed through ix (operand 0 = C, 1 = A, 2 = B; see common.cl).
 * Tunables (-D): RM rows per tile, VW vector width, CN vectors per tile row (the tile is NR = CN * VW columns
 * wide), KB k-block, UK k-unroll, PK k per packing work-item, SRM rows of the skinny kernel's tiles and of the
 * A panels packed for it (the pack kernel's `skinny` argument). The skinny kernel (clai_gemm_apacked_*) keeps
 * SRM x VW tiles and unrolls its k loop CLAI_SKINNY_UK times whatever UK is (its loop has a load of B per k, and
 * 1 x 4096 x 4096 lost 14-25% without the unrolling that the two packed kernels do not need on AVX-512).
 * Small f32 products with contiguous rows skip step 1: clai_gemm_direct reads A and B in place.
 */
#define CLAI_SKINNY_UK 4
#if !defined(RM) || !defined(VW) || !defined(CN) || !defined(KB) || !defined(UK) || !defined(PK) || !defined(SRM)
#error "cl/matmul_packed.cl needs -DRM, -DVW, -DCN, -DKB, -DUK, -DPK and -DSRM (lib/program.c passes them)"
#endif
#define NR (CN * VW)

#define VLOAD_PK CLAI_CAT(vload, PK)
#define VSTORE_PK CLAI_CAT(vstore, PK)
#define VLOAD_HALF_PK CLAI_CAT(vload_half, PK)
#define CLAI_PRAGMA(x) _Pragma(#x)

/* Packing reads A and B in their storage type: f32 directly, f16 through vload_half (converted once here,
 * so the compute kernels only ever see f32 panels). */
#define LDS_F32(p, i) ((p)[i])
#define LDS_F16(p, i) vload_half((i), (p))
#define VLDPK_F32(p) VLOAD_PK(0, (p))
#define VLDPK_F16(p) VLOAD_HALF_PK(0, (p))
#define VLDVW_F32(p) VLOAD_VW(0, (p))
#define VLDVW_F16(p) VLOAD_HALF_VW(0, (p))

/* An A panel of R rows (RM for the packed kernels, SRM for the skinny one): NAME is its function's suffix. */
#define CLAI_PACK_A_PANEL(NAME, T, LDS, VLDPK, R) \
inline void clai_pack_a_panel_##NAME(const int M, const int K, const int Mt, __global const T *a, const long sam,             \
                              const long sak, __global float *ap, const int k0, const int i, const long z) {                  \
  __global float *p = ap + ((z * Mt + i) * (long)K + k0) * R;                                                                 \
  const int m0 = i * R;                                                                                                       \
  if (m0 + R <= M && k0 + PK <= K) {                                                                                          \
    if (sak == 1) { /* rows of A are contiguous: vector loads, then transpose in registers */                                 \
      float v[R][PK];                                                                                                         \
CLAI_PRAGMA(unroll)                                                                                                           \
      for (int r = 0; r < R; r++) VSTORE_PK(VLDPK(a + (long)(m0 + r) * sam + k0), 0, v[r]);                                   \
CLAI_PRAGMA(unroll)                                                                                                           \
      for (int kk = 0; kk < PK; kk++)                                                                                         \
CLAI_PRAGMA(unroll)                                                                                                           \
        for (int r = 0; r < R; r++) p[kk * R + r] = v[r][kk];                                                                 \
    } else {                                                                                                                  \
      for (int kk = 0; kk < PK; kk++)                                                                                         \
        for (int r = 0; r < R; r++) p[kk * R + r] = LDS(a, (long)(m0 + r) * sam + (long)(k0 + kk) * sak);                     \
    }                                                                                                                         \
  } else { /* edge panel: pad rows past M with zeros */                                                                       \
    for (int kk = 0; kk < PK && k0 + kk < K; kk++)                                                                            \
      for (int r = 0; r < R; r++) p[kk * R + r] = m0 + r < M ? LDS(a, (long)(m0 + r) * sam + (long)(k0 + kk) * sak) : 0.0f;   \
  }                                                                                                                           \
}

#define CLAI_PACK_PANELS(SFX, T, LDS, VLDPK, VLDVW) \
CLAI_PACK_A_PANEL(SFX, T, LDS, VLDPK, RM)                                                                                     \
CLAI_PACK_A_PANEL(skinny_##SFX, T, LDS, VLDPK, SRM)                                                                           \
                                                                                                                              \
inline void clai_pack_b_panel_##SFX(const int N, const int K, const int Nt, __global const T *b, const long sbk,              \
                              const long sbn, __global float *bp, const int k0, const int j, const long z) {                  \
  __global float *p = bp + ((z * Nt + j) * (long)K + k0) * NR;                                                                \
  const int n0 = j * NR;                                                                                                      \
  if (n0 + NR <= N && k0 + PK <= K) {                                                                                         \
    if (sbn == 1) {                                                                                                           \
CLAI_PRAGMA(unroll)                                                                                                           \
      for (int kk = 0; kk < PK; kk++)                                                                                         \
CLAI_PRAGMA(unroll)                                                                                                           \
        for (int q = 0; q < CN; q++) VSTORE_VW(VLDVW(b + (long)(k0 + kk) * sbk + n0 + q * VW), 0, p + kk * NR + q * VW);      \
    } else if (sbk == 1) { /* B stored transposed: columns are contiguous; VW of them at a time */                           \
      for (int q = 0; q < CN; q++) {                                                                                          \
        float v[VW][PK];                                                                                                      \
CLAI_PRAGMA(unroll)                                                                                                           \
        for (int t = 0; t < VW; t++) VSTORE_PK(VLDPK(b + (long)(n0 + q * VW + t) * sbn + k0), 0, v[t]);                       \
CLAI_PRAGMA(unroll)                                                                                                           \
        for (int kk = 0; kk < PK; kk++)                                                                                       \
CLAI_PRAGMA(unroll)                                                                                                           \
          for (int t = 0; t < VW; t++) p[kk * NR + q * VW + t] = v[t][kk];                                                    \
      }                                                                                                                       \
    } else {                                                                                                                  \
      for (int kk = 0; kk < PK; kk++)                                                                                         \
        for (int t = 0; t < NR; t++) p[kk * NR + t] = LDS(b, (long)(k0 + kk) * sbk + (long)(n0 + t) * sbn);                   \
    }                                                                                                                         \
  } else { /* edge panel: pad columns past N with zeros */                                                                    \
    for (int kk = 0; kk < PK && k0 + kk < K; kk++)                                                                            \
      for (int t = 0; t < NR; t++) p[kk * NR + t] = n0 + t < N ? LDS(b, (long)(k0 + kk) * sbk + (long)(n0 + t) * sbn) : 0.0f; \
  }                                                                                                                           \
}                                                                                                                             \

CLAI_PACK_PANELS(f32, float, LDS_F32, VLDPK_F32, VLDVW_F32)
CLAI_PACK_PANELS(f16, half, LDS_F16, VLDPK_F16, VLDVW_F16)
#define CLAI_PACK_KERNEL(SFX, T)                                                                               \
  __kernel void clai_pack_ab_##SFX(__global const T *a, __global const T *b, __global float *ap, __global float *bp, \
                                   CLAI_INDEX_ARGS(ix), const int M, const int N, const int K, const int Mt,          \
                                   const int Nt, const long sam, const long sak, const long sbk, const long sbn,     \
                                   const int skinny) {                                                           \
    const long z = get_global_id(2);                                                                             \
    const int k0 = (int)get_global_id(0) * PK, t = (int)get_global_id(1);                                        \
    if (z >= CLAI_IX_NUMEL(ix) || k0 >= K || t >= Mt + Nt) return; /* no barrier in this kernel */                       \
    long oc, oa, ob;                                                                                             \
    CLAI_OFFSETS(ix, z, &oc, &oa, &ob);                                                                         \
    if (t < Mt && skinny)                                                                                        \
      clai_pack_a_panel_skinny_##SFX(M, K, Mt, a + oa, sam, sak, ap, k0, t, z);                                  \
    else if (t < Mt)                                                                                             \
      clai_pack_a_panel_##SFX(M, K, Mt, a + oa, sam, sak, ap, k0, t, z);                                         \
    else                                                                                                         \
      clai_pack_b_panel_##SFX(N, K, Nt, b + ob, sbk, sbn, bp, k0, t - Mt, z);                                    \
  }

CLAI_PACK_KERNEL(f32, float)
CLAI_PACK_KERNEL(f16, half)

/* The epilogue arguments every compute kernel ends with (see clai_store_tile in cl/common.cl). */
#define CLAI_EPILOGUE_ARGS                                                                                     \
  const float alpha, const float beta, __global const float *bias, const long boff, const long bsm, const long bsn, \
      const int flags

/* The compute loop of both packed kernels: K values of k from the panels pa and pb into acc, meeting the
 * work-group at a barrier after every KB (BARRIER) or never. acc[q * RM + r] holds row r, columns
 * q * VW .. q * VW + VW - 1 of the tile; with CN = 1 this is the plain RM x VW loop.
 * Inactive work-items run one k per block, not none: with a path that skips the loop, POCL's LLVM gave the
 * loop's results a register of their own and copied every accumulator into it on each k (8 moves beside
 * 8 FMAs at 8 x 16; at 14 x 32 without the barrier, the accumulators went to the stack). The loop that
 * always runs has no copies (20 -> 12 instructions a k at 8 x 16, 104 -> 50 at 14 x 32 short). */
#define CLAI_PACKED_KLOOP(BARRIER)                                                                             \
  for (int k0 = 0; k0 < K; k0 += KB) {                                                                         \
    const int kn = active ? min(KB, K - k0) : 1;                                                               \
    CLAI_ASSUME(kn >= 1);                                                                                      \
    CLAI_PRAGMA(unroll UK)                                                                                     \
    for (int k = 0; k < kn; k++) {                                                                             \
      FV bv[CN];                                                                                               \
      CLAI_PRAGMA(unroll)                                                                                      \
      for (int q = 0; q < CN; q++) bv[q] = VLOAD_VW(0, pb + k * NR + q * VW);                                  \
      CLAI_PRAGMA(unroll)                                                                                      \
      for (int r = 0; r < RM; r++) {                                                                           \
        const FV av = (FV)(pa[k * RM + r]);                                                                    \
        CLAI_PRAGMA(unroll)                                                                                    \
        for (int q = 0; q < CN; q++) acc[q * RM + r] = CLAI_FMA(av, bv[q], acc[q * RM + r]);                   \
      }                                                                                                        \
    }                                                                                                          \
    pa += KB * RM;                                                                                             \
    pb += KB * NR;                                                                                             \
    BARRIER;                                                                                                   \
  }

#define CLAI_GEMM_PACKED(NAME, BARRIER)                                                                        \
  __kernel void NAME(__global float *c, __global const float *ap, __global const float *bp, CLAI_INDEX_ARGS(ix), \
                     const int M, const int N, const int K, const int Mt, const int Nt, const int gw,          \
                     const int j0, const long scm, const long scn, CLAI_EPILOGUE_ARGS) {                       \
    const long z = get_global_id(2);                                                                           \
    /* Uniform across the work-group (local size 1 in dim 2), so no barrier is skipped by only some. */       \
    if (z >= CLAI_IX_NUMEL(ix) || Mt == 0 || Nt == 0) return;                                                           \
    /* The group's work-items take gw A panels by lw / gw B panels, from B panel j0 on (gw divides lw; gw =   \
     * lx is the launch's own shape), whatever the local size: see packed_shape and tile_launches in         \
     * lib/op-matmul.c. */                                                                                     \
    const int lw = (int)(get_local_size(0) * get_local_size(1));                                               \
    const int f = (int)(get_local_id(0) + get_local_size(0) * get_local_id(1));                                \
    const int gi = (int)get_group_id(0) * gw + f % gw, gj = j0 + (int)get_group_id(1) * (lw / gw) + f / gw;   \
    const int ti = min(gi, Mt - 1), tj = min(gj, Nt - 1);                                                      \
    const __global float *pa = ap + (z * Mt + ti) * (long)K * RM;                                              \
    const __global float *pb = bp + (z * Nt + tj) * (long)K * NR;                                              \
    FV acc[RM * CN];                                                                                           \
    CLAI_PRAGMA(unroll)                                                                                        \
    for (int r = 0; r < RM * CN; r++) acc[r] = (FV)(0.0f);                                                     \
    /* Work-items of a group that hangs over the last panel only keep the group's barriers: their tile is   \
     * never stored, so computing it (up to ly - 1 column tiles of work, 12% at N = 777) would be waste. */   \
    const int active = gi < Mt && gj < Nt;                                                                     \
    CLAI_PACKED_KLOOP(BARRIER)                                                                                 \
    if (!active) return;                                                                                       \
    long oc, oa, ob;                                                                                           \
    CLAI_OFFSETS(ix, z, &oc, &oa, &ob);                                                                       \
    CLAI_STORE_TILES(c, oc, acc, RM, CN, gi * RM, gj * NR, M, N, scm, scn, alpha, beta, bias, boff, bsm, bsn,  \
                     flags);                                                                                   \
  }

/* clai_gemm_packed: any K, k-blocks through barriers. clai_gemm_packed_short: K <= KB, one block, so the
 * barrier buys nothing, and without it POCL keeps the accumulators in registers instead of saving them
 * to the work-group's context at the barrier and loading them back for the store (K = 64, M = 800,
 * N = 1176, the CNN's data gradient: 0.96 instead of 1.19 ms, best of 6). */
CLAI_GEMM_PACKED(clai_gemm_packed, barrier(CLK_LOCAL_MEM_FENCE))
CLAI_GEMM_PACKED(clai_gemm_packed_short, (void)0)

/* Skinny M (M <= 16, the decode shape of transformer inference): only A is packed (clai_pack_ab_* with
 * Nt = 0); B is read once, straight from its layout, VW columns at a time. Packing B would cost as much as
 * the product. Same tile and k-blocking as clai_gemm_packed; dim 0 = A panel, dim 1 = column tile. The
 * host puts every A panel in one work-group (local size ceil(16 / SRM) along dim 0), so on POCL the panels'
 * work-items run one after another over each k-block and B's block, read from memory once, is reused from
 * cache by the others. */
#define CLAI_GEMM_APACKED(SFX, T, LDS, VLDVW)                                                                  \
  __kernel void clai_gemm_apacked_##SFX(__global float *c, __global const float *ap, __global const T *b,      \
                                        CLAI_INDEX_ARGS(ix), const int M, const int N, const int K, const int Mt, \
                                        const long sbk, const long sbn, const long scm, const long scn,        \
                                        CLAI_EPILOGUE_ARGS) {                                                  \
    const long z = get_global_id(2);                                                                           \
    if (z >= CLAI_IX_NUMEL(ix) || Mt == 0 || N == 0) return; /* uniform across the work-group */               \
    const int gi = (int)get_global_id(0), gj = (int)get_global_id(1);                                          \
    const int col0 = gj * VW;                                                                                  \
    const __global float *pa = ap + (z * Mt + min(gi, Mt - 1)) * (long)K * SRM;                                \
    long oc, oa, ob;                                                                                           \
    CLAI_OFFSETS(ix, z, &oc, &oa, &ob);                                                                        \
    const __global T *pb = b + ob;                                                                             \
    const int bvec = sbn == 1 && col0 + VW <= N;                                                               \
    /* work-items past the last A panel or column tile keep the group's barriers and skip the work */          \
    const int active = gi < Mt && col0 < N;                                                                    \
    FV acc[SRM];                                                                                               \
    CLAI_PRAGMA(unroll)                                                                                        \
    for (int r = 0; r < SRM; r++) acc[r] = (FV)(0.0f);                                                         \
    for (int k0 = 0; k0 < K; k0 += KB) {                                                                       \
      const int k1 = active ? min(k0 + KB, K) : k0;                                                            \
      const __global float *pk = pa + (long)k0 * SRM; /* this k-block's rows of the A panel */                 \
      if (bvec) {                                                                                              \
        CLAI_PRAGMA(unroll CLAI_SKINNY_UK)                                                                     \
        for (int k = k0; k < k1; k++) {                                                                        \
          const FV bv = VLDVW(pb + (long)k * sbk + col0);                                                      \
          CLAI_PRAGMA(unroll)                                                                                  \
          for (int r = 0; r < SRM; r++) acc[r] = CLAI_FMA((FV)(pk[(k - k0) * SRM + r]), bv, acc[r]);           \
        }                                                                                                      \
      } else { /* last column tile or strided B: gather, clamped to the last column */                         \
        for (int k = k0; k < k1; k++) {                                                                        \
          float t[VW];                                                                                         \
          for (int j = 0; j < VW; j++) t[j] = LDS(pb, (long)k * sbk + (long)min(col0 + j, N - 1) * sbn);       \
          const FV bv = VLOAD_VW(0, t);                                                                        \
          CLAI_PRAGMA(unroll)                                                                                  \
          for (int r = 0; r < SRM; r++) acc[r] = CLAI_FMA((FV)(pk[(k - k0) * SRM + r]), bv, acc[r]);           \
        }                                                                                                      \
      }                                                                                                        \
      barrier(CLK_LOCAL_MEM_FENCE);                                                                            \
    }                                                                                                          \
    if (gi < Mt && col0 < N &&                                                                                 \
        !clai_store_tile_fast(c, oc, acc, SRM, 1, gi * SRM, col0, M, N, scm, scn, alpha, beta, bias, boff, bsm,  \
                              bsn, flags))                                                                     \
      clai_store_tile(c, oc, acc, SRM, gi * SRM, col0, M, N, scm, scn, alpha, beta, bias, boff, bsm, bsn, flags); \
  }

/* Small products (clai__gemm_config's packed.direct: (M + N) * K up to 2^17 floats by default) with rows of A
 * and rows of B contiguous: A and B are read in place, without the packing launch, which cost a fifth of a
 * 256^3 product. The tiles, work-groups and panel grouping are clai_gemm_packed's; no k-blocks (A and B
 * stay in cache at these sizes). A panel's rows are read through a base pointer per three rows and the row
 * stride (p[0], p[sam], p[2 sam]): with a pointer per row, or a clamped offset per row, the 14 rows of the
 * AVX-512 tile took more registers than there are and the accumulators went to the stack (74 instructions
 * a k with 11 stack accesses; 61 and none like this, against the packed kernel's 50). The last panel is
 * moved up to end at row M (M >= RM), and stores only its rows past the panel before it. */
#define CLAI_DIRECT_STEP(LOAD_B)                                                                               \
  {                                                                                                            \
    FV bv[CN];                                                                                                 \
    LOAD_B;                                                                                                    \
    CLAI_PRAGMA(unroll)                                                                                        \
    for (int r = 0; r < RM; r++) {                                                                             \
      const FV av = (FV)(pa[r / 3 * s3 + (r % 3) * sam]);                                                      \
      CLAI_PRAGMA(unroll)                                                                                      \
      for (int q = 0; q < CN; q++) acc[q * RM + r] = CLAI_FMA(av, bv[q], acc[q * RM + r]);                     \
    }                                                                                                          \
    pa++;                                                                                                      \
    pb += sbk;                                                                                                 \
  }

__kernel void clai_gemm_direct(__global float *c, __global const float *a, __global const float *b, CLAI_INDEX_ARGS(ix),
                               const int M, const int N, const int K, const int Mt, const int Nt, const int gw,
                               const int j0, const long sam, const long sbk, const long scm, const long scn, CLAI_EPILOGUE_ARGS) {
  const long z = get_global_id(2);
  if (z >= CLAI_IX_NUMEL(ix) || Mt == 0 || Nt == 0) return;
  /* the packed kernel's mapping of local ids to panels (no barriers here, so work-items past the last panel
   * simply return) */
  const int lw = (int)(get_local_size(0) * get_local_size(1));
  const int f = (int)(get_local_id(0) + get_local_size(0) * get_local_id(1));
  const int gi = (int)get_group_id(0) * gw + f % gw, gj = j0 + (int)get_group_id(1) * (lw / gw) + f / gw;
  if (gi >= Mt || gj >= Nt) return;
  long oc, oa, ob;
  CLAI_OFFSETS(ix, z, &oc, &oa, &ob);
  const int row0 = min(gi * RM, M - RM), col0 = gj * NR;
  const int skip = gi * RM - row0; /* rows of the moved last panel that the panel before it stores */
  const __global float *pa = a + oa + (long)row0 * sam;
  const __global float *pb = b + ob + col0;
  const long s3 = 3 * sam;
  FV acc[RM * CN];
  CLAI_PRAGMA(unroll)
  for (int r = 0; r < RM * CN; r++) acc[r] = (FV)(0.0f);
  if (col0 + NR <= N) {
    CLAI_PRAGMA(unroll UK)
    for (int k = 0; k < K; k++)
      CLAI_DIRECT_STEP(CLAI_PRAGMA(unroll) for (int q = 0; q < CN; q++) bv[q] = VLOAD_VW(0, pb + q * VW))
  } else { /* the last B panel: its columns past N read column N - 1 (never stored) */
    for (int k = 0; k < K; k++)
      CLAI_DIRECT_STEP(CLAI_PRAGMA(unroll) for (int q = 0; q < CN; q++) {
        float t[VW];
        for (int j = 0; j < VW; j++) t[j] = pb[min(q * VW + j, N - 1 - col0)];
        bv[q] = VLOAD_VW(0, t);
      })
  }
  if (skip == 0 &&
      clai_store_tile_fast(c, oc, acc, RM, CN, row0, col0, M, N, scm, scn, alpha, beta, bias, boff, bsm, bsn, flags))
    return;
  CLAI_PRAGMA(unroll 1)
  for (int q = 0; q < CN; q++)
    if (col0 + q * VW < N)
      clai_store_tile(c, oc, acc + q * RM + skip, RM - skip, row0 + skip, col0 + q * VW, M, N, scm, scn, alpha, beta,
                      bias, boff, bsm, bsn, flags);
}

CLAI_GEMM_APACKED(f32, float, LDS_F32, VLDVW_F32)
CLAI_GEMM_APACKED(f16, half, LDS_F16, VLDVW_F16)

/* ---- convolutions as implicit GEMMs (op-conv.c, op-conv-backward.c) --------------------------------------
 * clai_conv_igemm computes a convolution without unfolding its input: row p of the GEMM is an output position
 * (image, oh, ow), column o an output channel, k a tap (c, kh, kw). The input comes zero-padded (xp: dense
 * [N, Cg * G, Hp, Wp], the padding already in it), so the A operand of row p and tap k is simply
 * xp[row offset of p + tap offset of k]: a broadcast load per row and tap, as the packed kernel loads its A
 * panel, with no bounds to check. B is bt [G][K][Ogp] (clai_conv_wt: the weights transposed, columns padded
 * with zeros to whole tiles). Each work-item keeps an RM x NR tile in registers over all K (dim 0 = tile of
 * positions, dim 1 = tile of channels, dim 2 = group) and stores it through the bias and activation into
 * out [N, O, OH, OW] (any strides). No workspace is written or read besides xp and bt: the im2col route
 * wrote, packed and read back KH * KW times the input (80 MB a step for the CNN's second layer). */
/* One k of both implicit GEMMs: acc (RM x CN vectors) += the RM inputs A_R (an expression of the row r,
 * evaluated in the macro's loop over r), broadcast, times the CN vectors of B at pb. */
#define CLAI_IGEMM_STEP(pb, A_R)                                                                               \
  do {                                                                                                         \
    FV bv[CN];                                                                                                 \
    CLAI_PRAGMA(unroll)                                                                                        \
    for (int q = 0; q < CN; q++) bv[q] = VLOAD_VW(0, (pb) + q * VW);                                           \
    CLAI_PRAGMA(unroll)                                                                                        \
    for (int r = 0; r < RM; r++) {                                                                             \
      const FV av = (FV)(A_R);                                                                                 \
      CLAI_PRAGMA(unroll)                                                                                      \
      for (int q = 0; q < CN; q++) acc[q * RM + r] = CLAI_FMA(av, bv[q], acc[q * RM + r]);                     \
    }                                                                                                          \
  } while (0)

__kernel void clai_conv_igemm(__global float *out, __global const float *xp, __global const float *bt,
                              __global const float *bias, const long ooff, const long son, const long soc,
                              const long soh, const long sow, const long boff, const long sb, const int has_bias,
                              const int act, const int NP, const int Cg, const int Hp, const int Wp, const int KH,
                              const int KW, const int OH, const int OW, const int sth, const int stw, const int dh,
                              const int dw, const int Og, const int Ogp, const long sxn) {
  const int gi = (int)get_global_id(0), gj = (int)get_global_id(1), z = (int)get_global_id(2);
  if (gi * RM >= NP || gj * NR >= Og) return; /* no barrier in this kernel */
  const int P = OH * OW, K = Cg * KH * KW;
  const long plane = (long)Hp * Wp;
  const __global float *xr[RM];
  CLAI_PRAGMA(unroll)
  for (int r = 0; r < RM; r++) {
    const int p = min(gi * RM + r, NP - 1), img = p / P, q = p - img * P, oh = q / OW;
    xr[r] = xp + img * sxn + z * Cg * plane + (long)oh * sth * Wp + (long)(q - oh * OW) * stw;
  }
  const __global float *pb = bt + (long)z * K * Ogp + gj * NR;
  FV acc[RM * CN];
  CLAI_PRAGMA(unroll)
  for (int r = 0; r < RM * CN; r++) acc[r] = (FV)(0.0f);
  for (int c = 0; c < Cg; c++)
    for (int kh = 0; kh < KH; kh++) {
      const long toff = c * plane + (long)kh * dh * Wp;
      for (int kw = 0; kw < KW; kw++, pb += Ogp) {
        const long o = toff + kw * dw;
        CLAI_IGEMM_STEP(pb, xr[r][o]);
      }
    }
  for (int r = 0; r < RM && gi * RM + r < NP; r++) {
    const int p = gi * RM + r, img = p / P, q = p - img * P, oh = q / OW;
    const long ob = ooff + img * son + oh * soh + (q - oh * OW) * sow;
    CLAI_PRAGMA(unroll)
    for (int qv = 0; qv < CN; qv++) {
      float t[VW];
      VSTORE_VW(acc[qv * RM + r], 0, t);
      for (int e = 0; e < VW; e++) {
        const int o = gj * NR + qv * VW + e;
        if (o >= Og) break;
        float v = t[e];
        if (has_bias) v += bias[boff + (long)(z * Og + o) * sb];
        CLAI_ACTIVATE(v, act);
        out[ob + (long)(z * Og + o) * soc] = v;
      }
    }
  }
}

/* bt [G][K][Ogp] for clai_conv_igemm from the weights w [O, Cg, KH, KW] (any strides, f32), Og = O / G columns
 * per group and zeros past them. flip = 0, the forward: bt[z][(c, kh, kw)][o] = w[z * Og + o][c][kh][kw].
 * flip = 1, the data gradient as a convolution of the padded output gradient: K runs over (o, kh, kw) of
 * the group's Og channels, the columns over its Cg input channels, and the window is turned around:
 * bt[z][(o, kh, kw)][c] = w[z * Og + o][c][KH - 1 - kh][KW - 1 - kw]. One work-item per element. */
__kernel void clai_conv_wt(__global float *bt, __global const float *w, const long woff, const long swo,
                           const long swc, const long swh, const long sww, const int Og, const int Cg, const int KH,
                           const int KW, const int cols, const int colsp, const int flip) {
  const int col = (int)get_global_id(0), k = (int)get_global_id(1), z = (int)get_global_id(2);
  const int taps = KH * KW, K = (flip ? Og : Cg) * taps;
  if (col >= colsp || k >= K) return;
  const int ch = k / taps, t = k - ch * taps, kh = t / KW, kw = t - kh * KW;
  float v = 0.0f;
  if (col < cols)
    v = flip ? w[woff + (long)(z * Og + ch) * swo + col * swc + (long)(KH - 1 - kh) * swh + (long)(KW - 1 - kw) * sww]
             : w[woff + (long)(z * Og + col) * swo + ch * swc + (long)kh * swh + (long)kw * sww];
  bt[((long)z * K + k) * colsp + col] = v;
}

/* xp [nb, C, Hp, Wp] (dense) = images of x (any strides) with pt rows and pl columns of zeros before them and
 * zeros after, for clai_conv_igemm. A work-item per padded plane (dim 0 = channel, 1 = image): a row each
 * made the CNN's copies cost more in work-items than in bytes. */
__kernel void clai_conv_pad(__global float *xp, __global const float *x, const long xoff, const long sxn,
                            const long sxc, const long sxh, const long sxw, const int nb, const int C, const int H,
                            const int W, const int Hp, const int Wp, const int pt, const int pl) {
  const int c = (int)get_global_id(0), n = (int)get_global_id(1);
  if (c >= C || n >= nb) return;
  __global float *dst = xp + ((long)n * C + c) * Hp * Wp;
  const __global float *src = x + xoff + n * sxn + c * sxc;
  const int lo = min(pl, Wp), hi = min(pl + W, Wp);
  for (int hh = 0; hh < Hp; hh++, dst += Wp) {
    const int ih = hh - pt;
    if (ih < 0 || ih >= H) {
      for (int w = 0; w < Wp; w++) dst[w] = 0.0f;
      continue;
    }
    const __global float *row = src + (long)ih * sxh;
    for (int w = 0; w < lo; w++) dst[w] = 0.0f;
    if (sxw == 1)
      for (int w = lo; w < hi; w++) dst[w] = row[w - pl];
    else
      for (int w = lo; w < hi; w++) dst[w] = row[(long)(w - pl) * sxw];
    for (int w = hi; w < Wp; w++) dst[w] = 0.0f;
  }
}

/* The weight gradient as an implicit GEMM: dW^T[z][tap][o] = sum over positions p of
 * xp[p's offset + tap's offset] * gyt[z][p][o], rows = taps (RM per work-item, a broadcast load of the
 * padded input each), columns = output channels (NR, from gyt: grad_out's chunk transposed to positions x
 * channels by clai_conv_gyt). The positions are split into S slices of L (dim 2 = z * S + slice), each
 * work-item writing its tile of the slice's partial sum to part[z * S + s][Kp][Ogp] (or adding it there, for
 * the chunks of images after the first); clai_conv_wgrad_sum adds the slices in order, so the result does
 * not depend on the scheduling. */
__kernel void clai_conv_wgrad(__global float *part, __global const float *xp, __global const float *gyt,
                              const int NP, const int L, const int S, const int Cg, const int Hp, const int Wp,
                              const int KH, const int KW, const int OH, const int OW, const int sth, const int stw,
                              const int dh, const int dw, const int Kp, const int Ogp, const int accumulate,
                              const long sxn) {
  const int gi = (int)get_global_id(0), gj = (int)get_global_id(1), zs = (int)get_global_id(2);
  const int K = Cg * KH * KW;
  if (gi * RM >= K || gj * NR >= Ogp) return; /* no barrier in this kernel */
  const int z = zs / S, s = zs - z * S, taps = KH * KW;
  const long plane = (long)Hp * Wp;
  /* Row r's tap at offset xd[r] from a position's first input: one pointer moves along the positions,
   * where 14 pointers of their own (one per row, moved by LLVM each k) did not fit the 16 general
   * registers (the 14 x 32 tile's loop: 88 instructions, 32 of them stack accesses, for 28 FMAs; now 55
   * and 7 loads). */
  const __global float *xb = xp + (long)z * Cg * plane;
  long xd[RM];
  CLAI_PRAGMA(unroll)
  for (int r = 0; r < RM; r++) {
    const int k = min(gi * RM + r, K - 1), c = k / taps, t = k - c * taps, kh = t / KW;
    xd[r] = c * plane + (long)kh * dh * Wp + (t - kh * KW) * dw;
  }
  FV acc[RM * CN];
  CLAI_PRAGMA(unroll)
  for (int r = 0; r < RM * CN; r++) acc[r] = (FV)(0.0f);
  int p = s * L;
  const int p1 = min(p + L, NP), P = OH * OW;
  const __global float *pb = gyt + ((long)z * NP + p) * Ogp + gj * NR;
  int img = p / P, oh = (p - img * P) / OW, ow = p - img * P - oh * OW;
  while (p < p1) { /* a run of positions along one output row */
    const int run = min(OW - ow, p1 - p);
    const __global float *xe = xb + img * sxn + (long)oh * sth * Wp + (long)ow * stw;
    for (int e = 0; e < run; e++, pb += Ogp, xe += stw) CLAI_IGEMM_STEP(pb, xe[xd[r]]);
    p += run, ow = 0;
    if (++oh == OH) oh = 0, img++;
  }
  __global float *dst = part + ((long)zs * Kp + gi * RM) * Ogp + gj * NR;
  CLAI_PRAGMA(unroll)
  for (int r = 0; r < RM; r++)
    CLAI_PRAGMA(unroll)
    for (int q = 0; q < CN; q++) {
      __global float *d = dst + (long)r * Ogp + q * VW;
      VSTORE_VW(accumulate ? VLOAD_VW(0, d) + acc[q * RM + r] : acc[q * RM + r], 0, d);
    }
}

/* gyt[z][p][o] (dense, Ogp columns, zeros past Og) = grad_out's images of the chunk (any strides) at
 * position p = (image, oh, ow), channel z * Og + o. A work-item per output row (dim 0 = row oh of image n,
 * dim 1 = group): it reads each channel's row in order and writes the row's OW positions, whose Ogp-float
 * rows of gyt stay in cache while the channels fill them. */
__kernel void clai_conv_gyt(__global float *gyt, __global const float *gy, const long yoff, const long syn,
                            const long syc, const long syh, const long syw, const int NP, const int G,
                            const int Og, const int Ogp, const int OH, const int OW) {
  const int row = (int)get_global_id(0), z = (int)get_global_id(1);
  if (row * OW >= NP || z >= G) return;
  const int img = row / OH, oh = row - img * OH;
  const __global float *src = gy + yoff + img * syn + (long)z * Og * syc + oh * syh;
  __global float *dst = gyt + ((long)z * NP + (long)row * OW) * Ogp;
  for (int ow = 0; ow < OW; ow++) {
    for (int o = 0; o < Og; o++) dst[(long)ow * Ogp + o] = src[o * syc + ow * syw];
    for (int o = Og; o < Ogp; o++) dst[(long)ow * Ogp + o] = 0.0f;
  }
}

/* grad_w [O, Cg, KH, KW] (any strides, f32) = the sum of the S slices of part, in order. A work-item per
 * element (dim 0 = tap, 1 = channel o). */
__kernel void clai_conv_wgrad_sum(__global float *gw, __global const float *part, const long woff, const long swo,
                                  const long swc, const long swh, const long sww, const int S, const int Og,
                                  const int Cg, const int KH, const int KW, const int Kp, const int Ogp,
                                  const int O) {
  const int k = (int)get_global_id(0), o = (int)get_global_id(1), taps = KH * KW;
  if (k >= Cg * taps || o >= O) return;
  const int z = o / Og, oo = o - z * Og, c = k / taps, t = k - c * taps, kh = t / KW;
  float sum = 0.0f;
  for (int s = 0; s < S; s++) sum += part[(((long)z * S + s) * Kp + k) * Ogp + oo];
  gw[woff + o * swo + c * swc + kh * swh + (t - kh * KW) * sww] = sum;
}
