#!/bin/sh
# fuzz-rows-item.sh - runs test-fuzz's row-wise ops (softmax, the norms, their gradients, the losses and the
# reductions) with CLAI_ROWS=item (a work-item per row). A library without the CLAI_ROWS switch runs its default kernels.
builddir=${CLAI_BUILDDIR:-.}
ops=softmax,log_softmax,softmax_backward,log_softmax_backward,layernorm,rmsnorm,layernorm_backward
ops=$ops,rmsnorm_backward,cross_entropy,mse,reduce,var,argmax,argmin,sum_to
CLAI_ROWS=item CLAI_TEST_OPS=${CLAI_TEST_OPS:-$ops} exec "$builddir/tests/test-fuzz"
