#!/bin/sh
# matmul-generic.sh - runs test-matmul again with CLAI_GEMM=generic, so the register-tile kernels that GPUs
# use are checked on every shape even where the packed family is the default (POCL).
builddir=${CLAI_BUILDDIR:-.}
CLAI_GEMM=generic exec "$builddir/tests/test-matmul"
