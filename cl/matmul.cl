/* matmul.cl - C = alpha * A * B + beta * C, batched, for any strides (transposes are strides).
 *
 * Layout: for batch entry z (decomposed through ix: operand 0 = C, 1 = A, 2 = B, broadcast batch dims
 * have stride 0), element (m, k) of A is at a[offA + m*sam + k*sak], (k, n) of B at b[offB + k*sbk + n*sbn]
 * and (m, n) of C at c[offC + m*scm + n*scn].
 *
 * Work mapping: dim 0 = blocks of RM rows, dim 1 = blocks of VW columns, dim 2 = batch entry. Each
 * work-item keeps an RM x VW tile of C in registers (RM float vectors of width VW), reads one column
 * element of A and one VW-wide row segment of B per k, and accumulates with fma. Every KB values of k
 * the work-group meets at a barrier: on POCL this runs all work-items of the group through one k-block
 * before the next, which keeps that block of B in cache (the BLIS loop order); on GPUs it is harmless.
 * Edge tiles clamp their loads to the last row/column and mask their stores, so every size is correct;
 * the store is the shared epilogue (clai_store_tile in common.cl: alpha, beta, bias, activation, C in f32
 * or f16).
 * B is read with vloadVW when its rows are unit-stride and the tile is whole, else element by element.
 *
 * Tunables (-D): RM rows per work-item, VW vector width (2, 4, 8 or 16), KB k-block. */
#if !defined(RM) || !defined(VW) || !defined(KB)
#error "cl/matmul.cl needs -DRM, -DVW and -DKB (lib/program.c passes them)"
#endif

#define VLD_F32(p) VLOAD_VW(0, (p))
#define VLD_F16(p) VLOAD_HALF_VW(0, (p))

#define CLAI_GEMM(SFX, ABT, LD_AB, VLD_AB)                                                                   \
  __kernel void clai_gemm_##SFX(__global float *c, __global const ABT *a, __global const ABT *b,           \
                                CLAI_INDEX_ARGS(ix), const int M, const int N, const int K, const long sam, \
                                const long sak, const long sbk, const long sbn, const long scm,             \
                                const long scn, const float alpha, const float beta,                       \
                                __global const float *bias, const long boff, const long bsm, const long bsn, \
                                const int flags) {                                                          \
    const long z = get_global_id(2);                                                                        \
    /* Uniform across the work-group (local size 1 in dim 2), so no barrier is skipped by only some. */     \
    if (z >= CLAI_IX_NUMEL(ix) || M == 0 || N == 0) return;                                                          \
    long oc, oa, ob;                                                                                        \
    CLAI_OFFSETS(ix, z, &oc, &oa, &ob);                                                                    \
    const int row0 = (int)get_global_id(0) * RM, col0 = (int)get_global_id(1) * VW;                         \
    const int b_vec = sbn == 1 && col0 + VW <= N;                                                           \
    long arow[RM];                                                                                          \
    for (int r = 0; r < RM; r++) arow[r] = oa + (long)min(row0 + r, M - 1) * sam;                           \
    long bcol[VW];                                                                                          \
    for (int j = 0; j < VW; j++) bcol[j] = ob + (long)min(col0 + j, N - 1) * sbn;                           \
    FV acc[RM];                                                                                             \
    for (int r = 0; r < RM; r++) acc[r] = (FV)(0.0f);                                                       \
    for (int k0 = 0; k0 < K; k0 += KB) {                                                                    \
      const int k1 = min(k0 + KB, K);                                                                       \
      for (int k = k0; k < k1; k++) {                                                                       \
        FV bv;                                                                                              \
        if (b_vec) {                                                                                        \
          bv = VLD_AB(b + ob + k * sbk + col0);                                                             \
        } else {                                                                                            \
          float t[VW];                                                                                      \
          for (int j = 0; j < VW; j++) t[j] = LD_AB(b, bcol[j] + k * sbk);                                  \
          bv = VLOAD_VW(0, t);                                                                              \
        }                                                                                                   \
        for (int r = 0; r < RM; r++) acc[r] = CLAI_FMA((FV)(LD_AB(a, arow[r] + k * sak)), bv, acc[r]);           \
      }                                                                                                     \
      barrier(CLK_LOCAL_MEM_FENCE);                                                                         \
    }                                                                                                       \
    if (row0 < M && col0 < N)                                                                               \
      clai_store_tile(c, oc, acc, RM, row0, col0, M, N, scm, scn, alpha, beta, bias, boff, bsm, bsn, flags); \
  }

CLAI_GEMM(f32, float, CLAI_LD_F32, VLD_F32)
CLAI_GEMM(f16, half, CLAI_LD_F16, VLD_F16)
