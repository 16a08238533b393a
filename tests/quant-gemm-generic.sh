#!/bin/sh
# quant-gemm-generic.sh - runs test-quant with CLAI_GEMM=generic: a quantized product with M above 16 is
# dequantized into the device's GEMM family, so the portable family is checked with quantized weights too
# (CLAI_TEST_GEMM_FAMILY_ONLY: only those products; the rest is the same in every family).
builddir=${CLAI_BUILDDIR:-.}
CLAI_GEMM=generic CLAI_TEST_GEMM_FAMILY_ONLY=1 exec "$builddir/tests/test-quant"
