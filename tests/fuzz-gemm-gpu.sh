#!/bin/sh
# fuzz-gemm-gpu.sh - runs test-fuzz's ops that reach the matmul kernels (matmul, conv2d and its two
# gradients) with CLAI_GEMM=gpu, so random shapes, transposes, batches, epilogues and strided/offset views
# are checked on that family where the device picks another (on a GPU, test-fuzz itself runs it). CLAI_ROWS,
# when set, passes through.
exec sh "$(dirname "$0")/variant.sh" cpu "the gpu family" test-fuzz CLAI_GEMM=gpu \
  CLAI_TEST_OPS="${CLAI_TEST_OPS:-matmul,conv2d,conv2d_backward_data,conv2d_backward_weight}"
