#!/bin/sh
# conv-backward-generic.sh - runs test-conv-backward with CLAI_GEMM=generic: the im2col + GEMM routes of the
# gradients (GPUs' routes) on a CPU, where the packed family runs implicit GEMMs instead.
builddir=${CLAI_BUILDDIR:-.}
CLAI_GEMM=generic exec "$builddir/tests/test-conv-backward"
