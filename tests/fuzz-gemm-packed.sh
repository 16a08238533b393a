#!/bin/sh
# fuzz-gemm-packed.sh - runs test-fuzz's ops that reach the matmul kernels (matmul, conv2d and its two
# gradients) with CLAI_GEMM=packed, so random shapes, transposes, batches, epilogues and strided/offset views
# are checked on that family whatever the device would pick. CLAI_ROWS, when set, passes through.
builddir=${CLAI_BUILDDIR:-.}
CLAI_GEMM=packed CLAI_TEST_OPS=${CLAI_TEST_OPS:-matmul,conv2d,conv2d_backward_data,conv2d_backward_weight} \
  exec "$builddir/tests/test-fuzz"
