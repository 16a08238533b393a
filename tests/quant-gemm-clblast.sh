#!/bin/sh
# quant-gemm-clblast.sh - runs test-quant with CLAI_GEMM=clblast (built only with CLBlast): the dequantized
# chunks of a quantized product are f32 GEMMs that CLBlast computes.
builddir=${CLAI_BUILDDIR:-.}
CLAI_GEMM=clblast exec "$builddir/tests/test-quant"
