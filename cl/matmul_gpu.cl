/* matmul_gpu.cl - the GPU-shaped GEMM: tiles of A and B staged in local memory, a register tile per work-item.
 *
 * Layout: as cl/matmul.cl. For batch entry z (decomposed through ix: operand 0 = C, 1 = A, 2 = B), element
 * (m, k) of op(A) is at a[offA + m*sam + k*sak], (k, n) of op(B) at b[offB + k*sbk + n*sbn].
 *
 * Work mapping: a work-group of LX x LY work-items owns a TM x TN block of C (TM = LX*RM rows, TN = LY*VW
 * columns); dim 2 is the batch entry (local size 1, so z is uniform across a group). For each k-tile of KB:
 *   1. the whole group copies the TM x KB block of op(A) and the KB x TN block of op(B) into local memory,
 *      converting to f32 and writing zeros outside M, N and K, so edge tiles need no other test. The copy is
 *      ordered along whichever index is unit-stride in global memory (k for row-major A, m for a transposed
 *      one; likewise for B), so neighbouring work-items read neighbouring addresses (coalesced on GPUs);
 *   2. a barrier; every work-item accumulates its RM x VW tile (RM float vectors of VW columns) from local
 *      memory: one VW-wide vector of B and RM scalars of A per k;
 *   3. a barrier before the next k-tile overwrites local memory.
 * The store is the shared epilogue (clai_store_tile in common.cl).
 * A second kernel with a short, wide block (SRM x VW per work-item, SLX x SLY work-items) serves skinny M
 * (M <= 16, decode-time inference), where a TM-row block would leave most rows empty.
 *
 * Tunables (-D): RM, VW, KB, LX, LY for the main kernel; SRM, SLX, SLY for the skinny one. Local memory:
 * KB * (TM + TN) floats. */
#if !defined(RM) || !defined(VW) || !defined(KB) || !defined(LX) || !defined(LY) || !defined(SRM) || \
    !defined(SLX) || !defined(SLY)
#error "cl/matmul_gpu.cl needs -DRM -DVW -DKB -DLX -DLY -DSRM -DSLX -DSLY (lib/program.c passes them)"
#endif

#define CLAI_GEMM_GPU(NAME, ABT, LD, R, GX, GY)                                                                \
  __kernel __attribute__((reqd_work_group_size(GX, GY, 1))) void NAME(                                        \
      __global float *c, __global const ABT *a, __global const ABT *b, CLAI_INDEX_ARGS(ix), const int M,      \
      const int N, const int K, const long sam, const long sak, const long sbk, const long sbn, const long scm, \
      const long scn, const float alpha, const float beta, __global const float *bias, const long boff,        \
      const long bsm, const long bsn, const int flags) {                                                      \
    enum { TM = (GX) * (R), TN = (GY) * VW, NT = (GX) * (GY) };                                               \
    __local float as[KB][TM];                                                                                 \
    __local float bs[KB][TN];                                                                                 \
    const long z = get_global_id(2);                                                                          \
    if (z >= CLAI_IX_NUMEL(ix) || M == 0 || N == 0) return; /* uniform across the work-group */                        \
    long oc, oa, ob;                                                                                          \
    CLAI_OFFSETS(ix, z, &oc, &oa, &ob);                                                                      \
    const int lx = (int)get_local_id(0), ly = (int)get_local_id(1), t = ly * (GX) + lx;                      \
    const int m0 = (int)get_group_id(0) * TM, n0 = (int)get_group_id(1) * TN;                                 \
    const int a_kfast = sak == 1, b_nfast = sbn == 1 || sbk != 1;                                             \
    FV acc[R];                                                                                                \
    for (int r = 0; r < (R); r++) acc[r] = (FV)(0.0f);                                                        \
    for (int k0 = 0; k0 < K; k0 += KB) {                                                                      \
      for (int e = t; e < TM * KB; e += NT) {                                                                 \
        const int mm = a_kfast ? e / KB : e % TM, kk = a_kfast ? e % KB : e / TM;                             \
        const int m = m0 + mm, k = k0 + kk;                                                                   \
        as[kk][mm] = m < M && k < K ? LD(a, oa + (long)m * sam + (long)k * sak) : 0.0f;                       \
      }                                                                                                       \
      for (int e = t; e < TN * KB; e += NT) {                                                                 \
        const int nn = b_nfast ? e % TN : e / KB, kk = b_nfast ? e / TN : e % KB;                             \
        const int n = n0 + nn, k = k0 + kk;                                                                   \
        bs[kk][nn] = n < N && k < K ? LD(b, ob + (long)k * sbk + (long)n * sbn) : 0.0f;                       \
      }                                                                                                       \
      barrier(CLK_LOCAL_MEM_FENCE);                                                                           \
      for (int kk = 0; kk < KB; kk++) {                                                                       \
        const FV bv = VLOAD_VW(0, &bs[kk][ly * VW]);                                                          \
        for (int r = 0; r < (R); r++) acc[r] = CLAI_FMA((FV)(as[kk][lx * (R) + r]), bv, acc[r]);                   \
      }                                                                                                       \
      barrier(CLK_LOCAL_MEM_FENCE);                                                                           \
    }                                                                                                         \
    const int row0 = m0 + lx * (R), col0 = n0 + ly * VW;                                                      \
    if (row0 < M && col0 < N)                                                                                 \
      clai_store_tile(c, oc, acc, (R), row0, col0, M, N, scm, scn, alpha, beta, bias, boff, bsm, bsn, flags); \
  }

CLAI_GEMM_GPU(clai_gemm_gpu_f32, float, CLAI_LD_F32, RM, LX, LY)
CLAI_GEMM_GPU(clai_gemm_gpu_f16, half, CLAI_LD_F16, RM, LX, LY)
CLAI_GEMM_GPU(clai_gemm_gpu_skinny_f32, float, CLAI_LD_F32, SRM, SLX, SLY)
CLAI_GEMM_GPU(clai_gemm_gpu_skinny_f16, half, CLAI_LD_F16, SRM, SLX, SLY)
