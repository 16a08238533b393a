#!/bin/sh
# fuzz-gemm-gpu.sh - runs test-fuzz's ops that reach the matmul kernels (matmul, conv2d and its two
# gradients) with CLAI_GEMM=gpu, so random shapes, transposes, batches, epilogues and strided/offset views
# are checked on that family where the device picks another (on a GPU, test-fuzz itself runs it). CLAI_ROWS,
# when set, passes through.
builddir=${CLAI_BUILDDIR:-.}
chosen=$("$builddir/tools/clai" devices 2>/dev/null | grep '^ *chosen: ')
if [ -n "$chosen" ] && ! echo "$chosen" | grep -q '(CPU)'; then
  echo "1..0 # SKIP the default device is not a CPU: test-fuzz itself runs the gpu family there"
  exit 0
fi
CLAI_GEMM=gpu CLAI_TEST_OPS=${CLAI_TEST_OPS:-matmul,conv2d,conv2d_backward_data,conv2d_backward_weight} \
  exec "$builddir/tests/test-fuzz"
