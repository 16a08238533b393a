#!/bin/sh
# matmul-clblast.sh - runs test-matmul with CLAI_GEMM=clblast (built only with CLBlast): CLBlast computes
# every product it can address, libclai's kernels the rest (epilogues, f16, strides CLBlast cannot take).
builddir=${CLAI_BUILDDIR:-.}
# Not under Oclgrind: the kernels there are CLBlast's, not libclai's (and they took 7 minutes of the
# simulator's suite); libclai's side of the CLBlast route is host code, tested on the other implementations.
if [ "${CLAI_TEST_OCLGRIND:-0}" = 1 ]; then
  echo "1..0 # SKIP under Oclgrind: CLBlast's kernels are not libclai's"
  exit 0
fi
CLAI_GEMM=clblast exec "$builddir/tests/test-matmul"
