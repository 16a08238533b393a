#!/bin/sh
# conv-generic.sh - runs test-conv with CLAI_GEMM=generic: a CPU then takes the im2col + GEMM route of the
# convolutions, which GPUs take (the packed family of CPUs runs them as implicit GEMMs), so POCL checks both
# routes. A GPU runs that route by default, and there this script only says so.
exec sh "$(dirname "$0")/variant.sh" cpu "the im2col + GEMM convolutions" test-conv CLAI_GEMM=generic
