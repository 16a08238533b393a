#!/bin/sh
# conv-backward-generic.sh - runs test-conv-backward with CLAI_GEMM=generic: the im2col + GEMM routes of the
# convolution gradients (GPUs' routes) on a CPU, whose packed family runs implicit GEMMs instead. A GPU runs
# those routes by default, and there this script only says so.
exec sh "$(dirname "$0")/variant.sh" cpu "the im2col + GEMM convolution gradients" test-conv-backward CLAI_GEMM=generic
