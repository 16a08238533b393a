#!/bin/sh
# matmul-clblast.sh - runs test-matmul with CLAI_GEMM=clblast (built only with CLBlast): CLBlast computes
# every product it can address, libclai's kernels the rest (epilogues, f16, strides CLBlast cannot take).
builddir=${CLAI_BUILDDIR:-.}
CLAI_GEMM=clblast exec "$builddir/tests/test-matmul"
