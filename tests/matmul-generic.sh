#!/bin/sh
# matmul-generic.sh - runs test-matmul with CLAI_GEMM=generic, so the register-tile kernels (the portable
# family, built only when asked for) are checked on every shape too.
builddir=${CLAI_BUILDDIR:-.}
CLAI_GEMM=generic exec "$builddir/tests/test-matmul"
