#!/bin/sh
# matmul-gpu.sh - runs test-matmul with CLAI_GEMM=gpu, so the local-memory kernels that GPUs use by default
# are checked on every shape here too (POCL runs them correctly, if slowly). On a GPU they are the default,
# so there the script only says so.
builddir=${CLAI_BUILDDIR:-.}
chosen=$("$builddir/tools/clai" devices 2>/dev/null | grep '^ *chosen: ')
if [ -n "$chosen" ] && ! echo "$chosen" | grep -q '(CPU)'; then
  echo "1..0 # SKIP the default device is not a CPU: test-matmul itself runs the gpu family there"
  exit 0
fi
CLAI_GEMM=gpu exec "$builddir/tests/test-matmul"
