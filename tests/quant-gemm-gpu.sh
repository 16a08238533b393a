#!/bin/sh
# quant-gemm-gpu.sh - runs test-quant with CLAI_GEMM=gpu, so the dequantized products go through the
# local-memory family GPUs use (on a GPU that is the default, and the script only says so); only the
# products with M above 16 (CLAI_TEST_GEMM_FAMILY_ONLY), the rest being the same in every family.
exec sh "$(dirname "$0")/variant.sh" cpu "the gpu family" test-quant CLAI_GEMM=gpu CLAI_TEST_GEMM_FAMILY_ONLY=1
