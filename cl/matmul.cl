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
 * Edge tiles clamp their loads to the last row/column and mask their stores, so every size is correct.
 * B is read with vloadVW when its rows are unit-stride and the tile is whole, else element by element.
 *
 * Tunables (-D): RM rows per work-item, VW vector width (2, 4, 8 or 16), KB k-block. */
#ifndef RM
#define RM 8
#endif
#ifndef VW
#define VW 16
#endif
#ifndef KB
#define KB 128
#endif

#define CLAI_CAT_(a, b) a##b
#define CLAI_CAT(a, b) CLAI_CAT_(a, b)
#define FV CLAI_CAT(float, VW)
#define VLOAD_F32(p) CLAI_CAT(vload, VW)(0, (p))
#define VLOAD_F16(p) CLAI_CAT(vload_half, VW)(0, (p))
#define VSTORE_F32(v, p) CLAI_CAT(vstore, VW)((v), 0, (p))
#define VSTORE_F16(v, p) CLAI_CAT(vstore_half, VW)((v), 0, (p))

#define CLAI_GEMM(NAME, ABT, CT, LD_AB, VLD_AB, LD_C, ST_C, VLD_C, VST_C)                                    \
  __kernel void NAME(__global CT *c, __global const ABT *a, __global const ABT *b, const clai_index ix,     \
                     const int M, const int N, const int K, const long sam, const long sak, const long sbk,  \
                     const long sbn, const long scm, const long scn, const float alpha, const float beta) { \
    const long z = get_global_id(2);                                                                        \
    /* Uniform across the work-group (local size 1 in dim 2), so no barrier is skipped by only some. */     \
    if (z >= ix.numel || M == 0 || N == 0) return;                                                          \
    long oc, oa, ob;                                                                                        \
    clai_offsets(&ix, z, &oc, &oa, &ob);                                                                    \
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
          bv = VLOAD_F32(t);                                                                                \
        }                                                                                                   \
        for (int r = 0; r < RM; r++) acc[r] = fma((FV)(LD_AB(a, arow[r] + k * sak)), bv, acc[r]);           \
      }                                                                                                     \
      barrier(CLK_LOCAL_MEM_FENCE);                                                                         \
    }                                                                                                       \
    const int c_vec = scn == 1 && col0 + VW <= N;                                                           \
    for (int r = 0; r < RM; r++) {                                                                          \
      if (row0 + r >= M) break;                                                                             \
      __global CT *cp = c + oc + (long)(row0 + r) * scm;                                                    \
      if (c_vec) {                                                                                          \
        FV v = alpha * acc[r];                                                                              \
        if (beta != 0.0f) v += beta * VLD_C(cp + col0);                                                     \
        VST_C(v, cp + col0);                                                                                \
      } else {                                                                                              \
        float t[VW];                                                                                        \
        VSTORE_F32(acc[r], t);                                                                              \
        for (int j = 0; j < VW && col0 + j < N; j++) {                                                      \
          const long o = (long)(col0 + j) * scn;                                                            \
          float v = alpha * t[j];                                                                           \
          if (beta != 0.0f) v += beta * LD_C(cp, o);                                                        \
          ST_C(cp, o, v);                                                                                   \
        }                                                                                                   \
      }                                                                                                     \
    }                                                                                                       \
  }

CLAI_GEMM(clai_gemm_f32_f32, float, float, CLAI_LD_F32, VLOAD_F32, CLAI_LD_F32, CLAI_ST_F32, VLOAD_F32, VSTORE_F32)
CLAI_GEMM(clai_gemm_f32_f16, float, half, CLAI_LD_F32, VLOAD_F32, CLAI_LD_F16, CLAI_ST_F16, VLOAD_F16, VSTORE_F16)
CLAI_GEMM(clai_gemm_f16_f32, half, float, CLAI_LD_F16, VLOAD_F16, CLAI_LD_F32, CLAI_ST_F32, VLOAD_F32, VSTORE_F32)
CLAI_GEMM(clai_gemm_f16_f16, half, half, CLAI_LD_F16, VLOAD_F16, CLAI_LD_F16, CLAI_ST_F16, VLOAD_F16, VSTORE_F16)
