#!/bin/sh
# conv-generic.sh - runs test-conv with CLAI_GEMM=generic: on a CPU the convolutions then take the im2col +
# GEMM route that GPUs take (the packed family runs them as implicit GEMMs), so POCL checks both routes.
builddir=${CLAI_BUILDDIR:-.}
CLAI_GEMM=generic exec "$builddir/tests/test-conv"
