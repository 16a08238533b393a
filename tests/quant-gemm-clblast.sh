#!/bin/sh
# quant-gemm-clblast.sh - runs test-quant with CLAI_GEMM=clblast (built only with CLBlast): the dequantized
# chunks of a quantized product are f32 GEMMs that CLBlast computes (CLAI_TEST_GEMM_FAMILY_ONLY: only those).
builddir=${CLAI_BUILDDIR:-.}
# Not under Oclgrind: the kernels there are CLBlast's, not libclai's (and they took 7 minutes of the
# simulator's suite); libclai's side of the CLBlast route is host code, tested on the other implementations.
if [ "${CLAI_TEST_OCLGRIND:-0}" = 1 ]; then
  echo "1..0 # SKIP under Oclgrind: CLBlast's kernels are not libclai's"
  exit 0
fi
CLAI_GEMM=clblast CLAI_TEST_GEMM_FAMILY_ONLY=1 exec "$builddir/tests/test-quant"
