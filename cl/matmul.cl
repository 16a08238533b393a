/* matmul.cl - C = alpha * A * B + beta * C, batched, for any strides (transposes are strides).
 *
 * Layout: for batch entry z (decomposed through ix: operand 0 = C, 1 = A, 2 = B, broadcast batch dims
 * have stride 0), element (m, k) of A is at a[offA + m*sam + k*sak], (k, n) of B at b[offB + k*sbk + n*sbn]
 * and (m, n) of C at c[offC + m*scm + n*scn].
 *
 * Work mapping: dim 0 = blocks of RM rows, dim 1 = blocks of VW columns, dim 2 = batch entry. Each
 * work-item keeps an RM x VW tile of C in registers (RM float vectors of width VW), reads one column
 * element of A and one VW-wide row segment of B per k, and accumulates with CLAI_FMA. With KBAR=1 the
 * work-group meets at a barrier every KB values of k: on POCL this runs all work-items of the group through
 * one k-block before the next, which keeps that block of B in cache (the BLIS loop order); on GPUs it is
 * harmless. KBAR=0 (llvmpipe, which runs a group's work-items in SIMD lanes and pays for every barrier and
 * every nested loop) is one plain loop over k.
 * The tile lives in RM named variables (acc0, acc1, ...) written out by CLAI_REP, B's column offsets in VW
 * more; B's row segment is one vector load when B's rows are unit-stride and the tile is whole, else element
 * by element into a vector literal. No private array is indexed in the loop: rusticl 22.3 keeps one in
 * memory even when every index is a constant after unrolling, and ran this kernel 3-4x slower with
 * `FV acc[RM]` (and 2x slower again with k-blocks and the B choice inside the loop, hence KBAR=0).
 * Edge tiles clamp their loads to the last row/column and mask their stores, so every size is correct;
 * the store is the shared epilogue (clai_store_tile in common.cl: alpha, beta, bias, activation, C in f32
 * or f16).
 *
 * Tunables (-D): RM rows per work-item (1 to 16), VW vector width (2, 4, 8 or 16), KB k-block, KBAR. */
#if !defined(RM) || !defined(VW) || !defined(KB)
#error "cl/matmul.cl needs -DRM, -DVW and -DKB (lib/program.c passes them)"
#endif
#ifndef KBAR
#define KBAR 1
#endif

#define VLD_F32(p) VLOAD_VW(0, (p))
#define VLD_F16(p) VLOAD_HALF_VW(0, (p))

/* CLAI_REP(n, X) is X(0) X(1) ... X(n - 1), for n a literal or a macro of one, 1 to 16. */
#define CLAI_REP1(X) X(0)
#define CLAI_REP2(X) CLAI_REP1(X) X(1)
#define CLAI_REP3(X) CLAI_REP2(X) X(2)
#define CLAI_REP4(X) CLAI_REP3(X) X(3)
#define CLAI_REP5(X) CLAI_REP4(X) X(4)
#define CLAI_REP6(X) CLAI_REP5(X) X(5)
#define CLAI_REP7(X) CLAI_REP6(X) X(6)
#define CLAI_REP8(X) CLAI_REP7(X) X(7)
#define CLAI_REP9(X) CLAI_REP8(X) X(8)
#define CLAI_REP10(X) CLAI_REP9(X) X(9)
#define CLAI_REP11(X) CLAI_REP10(X) X(10)
#define CLAI_REP12(X) CLAI_REP11(X) X(11)
#define CLAI_REP13(X) CLAI_REP12(X) X(12)
#define CLAI_REP14(X) CLAI_REP13(X) X(13)
#define CLAI_REP15(X) CLAI_REP14(X) X(14)
#define CLAI_REP16(X) CLAI_REP15(X) X(15)
#define CLAI_REP_(n, X) CLAI_REP##n(X)
#define CLAI_REP(n, X) CLAI_REP_(n, X)

/* Row r's offset in A, its accumulator, one step of k, and its place in the array the store takes. */
#define GEMM_DECL_(r) const long arow##r = oa + (long)min(row0 + (r), M - 1) * sam; FV acc##r = (FV)(0.0f);
#define GEMM_STEP_(r) acc##r = CLAI_FMA((FV)(LD_AB_(a, arow##r + k * sak)), bv, acc##r);
#define GEMM_LIST_(r) acc##r,

#define GEMM_B_VEC_ bv = VLD_AB_(b + ob + k * sbk + col0)
/* Element by element: column j of the tile (clamped to the last column) at bcol##j, into a vector literal. */
#define GEMM_BCOL_(j) const long bcol##j = ob + (long)min(col0 + (j), N - 1) * sbn;
#define GEMM_E_(j) LD_AB_(b, bcol##j + k * sbk)
#if VW == 2
#define GEMM_B_ELEM_ bv = (FV)(GEMM_E_(0), GEMM_E_(1))
#elif VW == 4
#define GEMM_B_ELEM_ bv = (FV)(GEMM_E_(0), GEMM_E_(1), GEMM_E_(2), GEMM_E_(3))
#elif VW == 8
#define GEMM_B_ELEM_ \
  bv = (FV)(GEMM_E_(0), GEMM_E_(1), GEMM_E_(2), GEMM_E_(3), GEMM_E_(4), GEMM_E_(5), GEMM_E_(6), GEMM_E_(7))
#elif VW == 16
#define GEMM_B_ELEM_                                                                                       \
  bv = (FV)(GEMM_E_(0), GEMM_E_(1), GEMM_E_(2), GEMM_E_(3), GEMM_E_(4), GEMM_E_(5), GEMM_E_(6), GEMM_E_(7), \
            GEMM_E_(8), GEMM_E_(9), GEMM_E_(10), GEMM_E_(11), GEMM_E_(12), GEMM_E_(13), GEMM_E_(14), GEMM_E_(15))
#else
#error "cl/matmul.cl: VW must be 2, 4, 8 or 16"
#endif

/* The loop over k. KBAR=1: k-blocks that end at a barrier, which every work-item of the group meets, so the
 * choice of B's path (which differs between the work-items of an edge group) is made inside the loop.
 * KBAR=0: no barrier, and the choice is made once, with a loop of its own on each side. */
#if KBAR
#define GEMM_LOOPS_                                  \
  for (int k0 = 0; k0 < K; k0 += KB) {               \
    const int k1 = min(k0 + KB, K);                  \
    for (int k = k0; k < k1; k++) {                  \
      FV bv;                                         \
      if (b_vec)                                     \
        GEMM_B_VEC_;                                 \
      else                                           \
        GEMM_B_ELEM_;                                \
      CLAI_REP(RM, GEMM_STEP_)                       \
    }                                                \
    barrier(CLK_LOCAL_MEM_FENCE);                    \
  }
#else
#define GEMM_LOOPS_                                  \
  if (b_vec) {                                       \
    for (int k = 0; k < K; k++) {                    \
      FV bv;                                         \
      GEMM_B_VEC_;                                   \
      CLAI_REP(RM, GEMM_STEP_)                       \
    }                                                \
  } else {                                           \
    for (int k = 0; k < K; k++) {                    \
      FV bv;                                         \
      GEMM_B_ELEM_;                                  \
      CLAI_REP(RM, GEMM_STEP_)                       \
    }                                                \
  }
#endif

#define CLAI_GEMM(SFX, ABT)                                                                                  \
  __kernel void clai_gemm_##SFX(__global float *c, __global const ABT *a, __global const ABT *b,           \
                                CLAI_INDEX_ARGS(ix), const int M, const int N, const int K, const long sam, \
                                const long sak, const long sbk, const long sbn, const long scm,             \
                                const long scn, const float alpha, const float beta,                       \
                                __global const float *bias, const long boff, const long bsm, const long bsn, \
                                const int flags) {                                                          \
    const long z = get_global_id(2);                                                                        \
    /* Uniform across the work-group (local size 1 in dim 2), so no barrier is skipped by only some. */     \
    if (z >= CLAI_IX_NUMEL(ix) || M == 0 || N == 0) return;                                                 \
    long oc, oa, ob;                                                                                        \
    CLAI_OFFSETS(ix, z, &oc, &oa, &ob);                                                                     \
    const int row0 = (int)get_global_id(0) * RM, col0 = (int)get_global_id(1) * VW;                         \
    const int b_vec = sbn == 1 && col0 + VW <= N;                                                           \
    CLAI_REP(RM, GEMM_DECL_)                                                                                \
    CLAI_REP(VW, GEMM_BCOL_)                                                                                \
    GEMM_LOOPS_                                                                                             \
    if (row0 < M && col0 < N) {                                                                             \
      const FV acc[RM] = {CLAI_REP(RM, GEMM_LIST_)};                                                        \
      clai_store_tile(c, oc, acc, RM, row0, col0, M, N, scm, scn, alpha, beta, bias, boff, bsm, bsn, flags); \
    }                                                                                                       \
  }

#define LD_AB_ CLAI_LD_F32
#define VLD_AB_ VLD_F32
CLAI_GEMM(f32, float)
#undef LD_AB_
#undef VLD_AB_
#define LD_AB_ CLAI_LD_F16
#define VLD_AB_ VLD_F16
CLAI_GEMM(f16, half)
