#!/bin/sh
# matmul-gpu.sh - runs test-matmul with CLAI_GEMM=gpu, so the local-memory kernels that GPUs use by default
# are checked on every shape here too (POCL runs them correctly, if slowly). On a GPU they are the default,
# so there the script only says so.
exec sh "$(dirname "$0")/variant.sh" cpu "the gpu family" test-matmul CLAI_GEMM=gpu
