#!/bin/sh
# fuzz-rows-wg.sh - runs test-fuzz's row-wise ops (softmax, the norms, their gradients, the losses and the
# reductions) with CLAI_ROWS=wg (a work-group per row), skipped where that is the default (a GPU).
builddir=${CLAI_BUILDDIR:-.}
chosen=$("$builddir/tools/clai" devices 2>/dev/null | grep '^ *chosen: ')
if [ -n "$chosen" ] && ! echo "$chosen" | grep -q '(CPU)'; then
  echo "1..0 # SKIP the default device is not a CPU: test-fuzz itself runs a work-group per row there"
  exit 0
fi
ops=softmax,log_softmax,softmax_backward,log_softmax_backward,layernorm,rmsnorm,layernorm_backward
ops=$ops,rmsnorm_backward,cross_entropy,mse,reduce,var,argmax,argmin,sum_to
CLAI_ROWS=wg CLAI_TEST_OPS=${CLAI_TEST_OPS:-$ops} exec "$builddir/tests/test-fuzz"
