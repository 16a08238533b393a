/* matmul_packed.cl - the CPU-shaped f32 GEMM: pack, then compute (used on CPU devices, POCL above all).
 *
 * 1. clai_pack_ab copies op(A) and op(B) of every batch entry into zero-padded panels:
 *      Ap[z][Mt][K][RM]  (RM rows of A side by side for each k: one broadcast load per row per k)
 *      Bp[z][Nt][K][VW]  (VW columns of B contiguous for each k: one vector load per k)
 *    with Mt = ceil(M/RM), Nt = ceil(N/VW). Transposes and other strides are handled here, once, so the
 *    compute kernel never sees a stride, an edge or a power-of-two aliasing pattern.
 *    Work mapping: dim 0 = groups of PK consecutive k, dim 1 = panel (A panels first, then B), dim 2 = batch.
 * 2. clai_gemm_packed keeps an RM x VW tile of C in registers per work-item (RM float vectors of width VW:
 *    6 x float16 = 12 AVX2 registers of accumulators) and meets its work-group at a barrier every KB values
 *    of k. On POCL the barrier runs all work-items of the group through one k-block before the next, so the
 *    group's A panels stay in L1 and its B panels in L2 (the BLIS loop order, expressed in OpenCL).
 *    Work mapping: dim 0 = A panel, dim 1 = B panel, dim 2 = batch. Tiles past M/N are computed on padding
 *    and not stored; no work-item leaves before a barrier.
 * The batch entry z is decomposed through ix (operand 0 = C, 1 = A, 2 = B; see common.cl).
 * Tunables (-D): RM rows per tile, VW columns per tile (vector width), KB k-block, UK k-unroll, PK k per
 * packing work-item. */
#ifndef RM
#define RM 6
#endif
#ifndef VW
#define VW 16
#endif
#ifndef KB
#define KB 256
#endif
#ifndef UK
#define UK 4
#endif
#ifndef PK
#define PK 8
#endif

#define CLAI_CAT_(a, b) a##b
#define CLAI_CAT(a, b) CLAI_CAT_(a, b)
#define FV CLAI_CAT(float, VW)
#define VLOAD_VW CLAI_CAT(vload, VW)
#define VSTORE_VW CLAI_CAT(vstore, VW)
#define VLOAD_PK CLAI_CAT(vload, PK)
#define VSTORE_PK CLAI_CAT(vstore, PK)
#define CLAI_PRAGMA(x) _Pragma(#x)

inline void clai_pack_a_panel(const int M, const int K, const int Mt, __global const float *a, const long sam,
                              const long sak, __global float *ap, const int k0, const int i, const long z) {
  __global float *p = ap + ((z * Mt + i) * (long)K + k0) * RM;
  const int m0 = i * RM;
  if (m0 + RM <= M && k0 + PK <= K) {
    if (sak == 1) { /* rows of A are contiguous: vector loads, then transpose in registers */
      float v[RM][PK];
#pragma unroll
      for (int r = 0; r < RM; r++) VSTORE_PK(VLOAD_PK(0, a + (long)(m0 + r) * sam + k0), 0, v[r]);
#pragma unroll
      for (int kk = 0; kk < PK; kk++)
#pragma unroll
        for (int r = 0; r < RM; r++) p[kk * RM + r] = v[r][kk];
    } else {
      for (int kk = 0; kk < PK; kk++)
        for (int r = 0; r < RM; r++) p[kk * RM + r] = a[(long)(m0 + r) * sam + (long)(k0 + kk) * sak];
    }
  } else { /* edge panel: pad rows past M with zeros */
    for (int kk = 0; kk < PK && k0 + kk < K; kk++)
      for (int r = 0; r < RM; r++) p[kk * RM + r] = m0 + r < M ? a[(long)(m0 + r) * sam + (long)(k0 + kk) * sak] : 0.0f;
  }
}

inline void clai_pack_b_panel(const int N, const int K, const int Nt, __global const float *b, const long sbk,
                              const long sbn, __global float *bp, const int k0, const int j, const long z) {
  __global float *p = bp + ((z * Nt + j) * (long)K + k0) * VW;
  const int n0 = j * VW;
  if (n0 + VW <= N && k0 + PK <= K) {
    if (sbn == 1) {
#pragma unroll
      for (int kk = 0; kk < PK; kk++) VSTORE_VW(VLOAD_VW(0, b + (long)(k0 + kk) * sbk + n0), 0, p + kk * VW);
    } else if (sbk == 1) { /* B stored transposed: columns are contiguous */
      float v[VW][PK];
#pragma unroll
      for (int t = 0; t < VW; t++) VSTORE_PK(VLOAD_PK(0, b + (long)(n0 + t) * sbn + k0), 0, v[t]);
#pragma unroll
      for (int kk = 0; kk < PK; kk++)
#pragma unroll
        for (int t = 0; t < VW; t++) p[kk * VW + t] = v[t][kk];
    } else {
      for (int kk = 0; kk < PK; kk++)
        for (int t = 0; t < VW; t++) p[kk * VW + t] = b[(long)(k0 + kk) * sbk + (long)(n0 + t) * sbn];
    }
  } else { /* edge panel: pad columns past N with zeros */
    for (int kk = 0; kk < PK && k0 + kk < K; kk++)
      for (int t = 0; t < VW; t++) p[kk * VW + t] = n0 + t < N ? b[(long)(k0 + kk) * sbk + (long)(n0 + t) * sbn] : 0.0f;
  }
}

/* C[row0.., col0..] = alpha * acc + beta * C for the rows and columns inside M x N (C is not read when
 * beta is 0, so NaNs there do not propagate). */
inline void clai_store_tile(__global float *c, const FV *acc, const int row0, const int col0, const int M, const int N,
                            const long scm, const long scn, const float alpha, const float beta) {
  const int whole = scn == 1 && col0 + VW <= N;
#pragma unroll
  for (int r = 0; r < RM; r++) {
    if (row0 + r >= M) break;
    __global float *cp = c + (long)(row0 + r) * scm;
    if (whole) {
      FV v = alpha * acc[r];
      if (beta != 0.0f) v = fma((FV)(beta), VLOAD_VW(0, cp + col0), v);
      VSTORE_VW(v, 0, cp + col0);
    } else {
      float t[VW];
      VSTORE_VW(acc[r], 0, t);
      for (int j = 0; j < VW && col0 + j < N; j++) {
        const long o = (long)(col0 + j) * scn;
        float v = alpha * t[j];
        if (beta != 0.0f) v += beta * cp[o];
        cp[o] = v;
      }
    }
  }
}

__kernel void clai_pack_ab(__global const float *a, __global const float *b, __global float *ap, __global float *bp,
                           const clai_index ix, const int M, const int N, const int K, const int Mt, const int Nt,
                           const long sam, const long sak, const long sbk, const long sbn) {
  const long z = get_global_id(2);
  const int k0 = (int)get_global_id(0) * PK, t = (int)get_global_id(1);
  if (z >= ix.numel || k0 >= K || t >= Mt + Nt) return; /* no barrier in this kernel */
  long oc, oa, ob;
  clai_offsets(&ix, z, &oc, &oa, &ob);
  if (t < Mt)
    clai_pack_a_panel(M, K, Mt, a + oa, sam, sak, ap, k0, t, z);
  else
    clai_pack_b_panel(N, K, Nt, b + ob, sbk, sbn, bp, k0, t - Mt, z);
}

__kernel void clai_gemm_packed(__global float *c, __global const float *ap, __global const float *bp,
                               const clai_index ix, const int M, const int N, const int K, const int Mt,
                               const int Nt, const long scm, const long scn, const float alpha, const float beta) {
  const long z = get_global_id(2);
  /* Uniform across the work-group (local size 1 in dim 2), so no barrier is skipped by only some. */
  if (z >= ix.numel || Mt == 0 || Nt == 0) return;
  const int gi = (int)get_global_id(0), gj = (int)get_global_id(1);
  const int ti = min(gi, Mt - 1), tj = min(gj, Nt - 1);
  const __global float *pa = ap + (z * Mt + ti) * (long)K * RM;
  const __global float *pb = bp + (z * Nt + tj) * (long)K * VW;
  FV acc[RM];
#pragma unroll
  for (int r = 0; r < RM; r++) acc[r] = (FV)(0.0f);
  for (int k0 = 0; k0 < K; k0 += KB) {
    const int kn = min(KB, K - k0);
    CLAI_PRAGMA(unroll UK)
    for (int k = 0; k < kn; k++) {
      const FV bv = VLOAD_VW(0, pb + k * VW);
#pragma unroll
      for (int r = 0; r < RM; r++) acc[r] = fma((FV)(pa[k * RM + r]), bv, acc[r]);
    }
    pa += KB * RM;
    pb += KB * VW;
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (gi >= Mt || gj >= Nt) return;
  long oc, oa, ob;
  clai_offsets(&ix, z, &oc, &oa, &ob);
  clai_store_tile(c + oc, acc, gi * RM, gj * VW, M, N, scm, scn, alpha, beta);
}

/* Skinny M (M <= 16, the decode shape of transformer inference): only A is packed (clai_pack_ab with
 * Nt = 0); B is read once, straight from its layout, VW columns at a time. Packing B would cost as much as
 * the product. Same tile and k-blocking as clai_gemm_packed; dim 0 = A panel, dim 1 = column tile. */
__kernel void clai_gemm_apacked(__global float *c, __global const float *ap, __global const float *b,
                                const clai_index ix, const int M, const int N, const int K, const int Mt,
                                const long sbk, const long sbn, const long scm, const long scn, const float alpha,
                                const float beta) {
  const long z = get_global_id(2);
  if (z >= ix.numel || Mt == 0 || N == 0) return; /* uniform across the work-group */
  const int gi = (int)get_global_id(0), gj = (int)get_global_id(1);
  const int col0 = gj * VW;
  const __global float *pa = ap + (z * Mt + min(gi, Mt - 1)) * (long)K * RM;
  long oc, oa, ob;
  clai_offsets(&ix, z, &oc, &oa, &ob);
  const __global float *pb = b + ob;
  const int bvec = sbn == 1 && col0 + VW <= N;
  FV acc[RM];
#pragma unroll
  for (int r = 0; r < RM; r++) acc[r] = (FV)(0.0f);
  for (int k0 = 0; k0 < K; k0 += KB) {
    const int k1 = min(k0 + KB, K);
    const __global float *pk = pa + (long)k0 * RM; /* this k-block's rows of the A panel */
    if (bvec) {
      CLAI_PRAGMA(unroll UK)
      for (int k = k0; k < k1; k++) {
        const FV bv = VLOAD_VW(0, pb + (long)k * sbk + col0);
#pragma unroll
        for (int r = 0; r < RM; r++) acc[r] = fma((FV)(pk[(k - k0) * RM + r]), bv, acc[r]);
      }
    } else { /* last column tile or strided B: gather, clamped to the last column */
      for (int k = k0; k < k1; k++) {
        float t[VW];
        for (int j = 0; j < VW; j++) t[j] = pb[(long)k * sbk + (long)min(col0 + j, N - 1) * sbn];
        const FV bv = VLOAD_VW(0, t);
#pragma unroll
        for (int r = 0; r < RM; r++) acc[r] = fma((FV)(pk[(k - k0) * RM + r]), bv, acc[r]);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (gi < Mt && col0 < N) clai_store_tile(c + oc, acc, gi * RM, col0, M, N, scm, scn, alpha, beta);
}
