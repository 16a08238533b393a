/* clblast.c - the optional CLBlast GEMM backend (configure --with-clblast).
 *
 * clai_matmul hands a product to CLBlast only for the shape classes that ctx->gemm.clblast names: none by
 * default (on POCL CLBlast's GPU-shaped kernels reach a tenth of libclai's packed ones), the classes where
 * `clai tune` measured CLBlast faster on the device, or all of them under CLAI_GEMM=clblast. CLBlast runs on
 * the context's own queue, so ordering with libclai's kernels is the queue's. It cannot fuse libclai's
 * epilogue, convert f16 without cl_khr_fp16, or address a matrix without one unit stride: such products
 * stay with libclai's kernels. */
#include "internal.h"

#ifndef HAVE_CLBLAST

int clai__clblast_can(const clai_context *ctx, const clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                      int64_t M, int64_t N, int64_t K, int64_t sam, int64_t sak, int64_t sbk, int64_t sbn, int64_t scm,
                      int64_t scn, const clai_matmul_epilogue *ep) {
  (void)ctx, (void)c, (void)a, (void)b, (void)M, (void)N, (void)K, (void)sam, (void)sak, (void)sbk, (void)sbn;
  (void)scm, (void)scn, (void)ep;
  return 0;
}

clai_status clai__clblast_gemm(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b, int64_t M,
                               int64_t N, int64_t K, int64_t sam, int64_t sak, int64_t sbk, int64_t sbn, int64_t scm,
                               int64_t scn, const clai__index *ix, float alpha, float beta) {
  (void)c, (void)a, (void)b, (void)M, (void)N, (void)K, (void)sam, (void)sak, (void)sbk, (void)sbn, (void)scm;
  (void)scn, (void)ix, (void)alpha, (void)beta;
  return clai__error(ctx, CLAI_E_UNSUPPORTED, "clai_matmul: libclai was built without CLBlast");
}

#else
#include <clblast_c.h>

/* How CLBlast addresses a rows x cols matrix whose elements are at row * srow + col * scol: row-major with
 * leading dimension *ld, transposed or not. Returns 0 if it cannot (no unit stride, or overlapping rows). */
static int mat_layout(int64_t rows, int64_t cols, int64_t srow, int64_t scol, int *trans, size_t *ld) {
  if (scol == 1 || cols == 1) { /* row-major as is */
    int64_t l = rows == 1 ? (cols > 1 ? cols : 1) : srow;
    if (l < cols) return 0;
    *trans = 0, *ld = (size_t)l;
    return 1;
  }
  if (srow == 1 || rows == 1) { /* stored transposed: a cols x rows row-major matrix */
    int64_t l = cols == 1 ? (rows > 1 ? rows : 1) : scol;
    if (l < rows) return 0;
    *trans = 1, *ld = (size_t)l;
    return 1;
  }
  return 0;
}

int clai__clblast_can(const clai_context *ctx, const clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                      int64_t M, int64_t N, int64_t K, int64_t sam, int64_t sak, int64_t sbk, int64_t sbn, int64_t scm,
                      int64_t scn, const clai_matmul_epilogue *ep) {
  (void)ctx;
  if (ep != NULL && (ep->bias != NULL || ep->act != CLAI_ACT_NONE)) return 0;
  if (a->dtype != CLAI_DTYPE_F32 || b->dtype != CLAI_DTYPE_F32 || c->dtype != CLAI_DTYPE_F32) return 0;
  int t;
  size_t ld;
  /* C must be row-major (CLBlast writes C without a transpose); A and B either way. */
  return mat_layout(M, N, scm, scn, &t, &ld) && !t && mat_layout(M, K, sam, sak, &t, &ld) &&
         mat_layout(K, N, sbk, sbn, &t, &ld);
}

clai_status clai__clblast_gemm(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b, int64_t M,
                               int64_t N, int64_t K, int64_t sam, int64_t sak, int64_t sbk, int64_t sbn, int64_t scm,
                               int64_t scn, const clai__index *ix, float alpha, float beta) {
  int ta, tb, tc;
  size_t lda, ldb, ldc;
  if (!mat_layout(M, K, sam, sak, &ta, &lda) || !mat_layout(K, N, sbk, sbn, &tb, &ldb) ||
      !mat_layout(M, N, scm, scn, &tc, &ldc) || tc)
    return clai__error(ctx, CLAI_E_UNSUPPORTED, "clai_matmul: CLBlast cannot address these strides");
  /* Batch dims: CLBlast takes one constant stride per operand; more dims (or broadcasting) run as a loop. */
  const int64_t batch = ix->numel;
  const int one = ix->ndim <= 1 && batch > 1 && ix->stride[0][0] > 0 && ix->stride[1][0] > 0 && ix->stride[2][0] > 0;
  CLBlastStatusCode rc = CLBlastSuccess;
  if (one) {
    rc = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                                    tb ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)M, (size_t)N, (size_t)K, alpha,
                                    a->buf->mem, (size_t)ix->offset[1], lda, (size_t)ix->stride[1][0], b->buf->mem,
                                    (size_t)ix->offset[2], ldb, (size_t)ix->stride[2][0], beta, c->buf->mem,
                                    (size_t)ix->offset[0], ldc, (size_t)ix->stride[0][0], (size_t)batch, &ctx->queue,
                                    NULL);
  } else {
    for (int64_t z = 0; z < batch && rc == CLBlastSuccess; z++) {
      int64_t off[3] = {ix->offset[0], ix->offset[1], ix->offset[2]}, r = z;
      for (int d = (int)ix->ndim - 1; d >= 0; d--) {
        const int64_t q = r / ix->shape[d], i = r - q * ix->shape[d];
        for (int o = 0; o < 3; o++) off[o] += i * ix->stride[o][d];
        r = q;
      }
      rc = CLBlastSgemm(CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                        tb ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)M, (size_t)N, (size_t)K, alpha,
                        a->buf->mem, (size_t)off[1], lda, b->buf->mem, (size_t)off[2], ldb, beta, c->buf->mem,
                        (size_t)off[0], ldc, &ctx->queue, NULL);
    }
  }
  if (rc != CLBlastSuccess)
    return clai__error(ctx, rc == CLBlastOpenCLOutOfResources || rc == CLBlastOpenCLOutOfHostMemory || rc == CL_MEM_OBJECT_ALLOCATION_FAILURE ? CLAI_E_OUT_OF_MEMORY
                                                                                                  : CLAI_E_OPENCL,
                       "clai_matmul: CLBlast's GEMM failed with status %d (CLBlastStatusCode; the negative values are OpenCL errors)", (int)rc);
  return CLAI_OK;
}
#endif /* HAVE_CLBLAST */
