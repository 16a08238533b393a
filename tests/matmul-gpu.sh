#!/bin/sh
# matmul-gpu.sh - runs test-matmul with CLAI_GEMM=gpu, so the local-memory kernels that GPUs use by default
# are checked on every shape here too (POCL runs them correctly, if slowly).
builddir=${CLAI_BUILDDIR:-.}
CLAI_GEMM=gpu exec "$builddir/tests/test-matmul"
