#!/bin/sh
# quant-gemm-generic.sh - runs test-quant with CLAI_GEMM=generic: a quantized product with M above 16 is
# dequantized into the device's GEMM family, so the portable family is checked with quantized weights too.
builddir=${CLAI_BUILDDIR:-.}
CLAI_GEMM=generic exec "$builddir/tests/test-quant"
