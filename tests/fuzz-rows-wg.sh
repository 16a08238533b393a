#!/bin/sh
# fuzz-rows-wg.sh - runs test-fuzz's row-wise ops (softmax, the norms, their gradients, the losses and the
# reductions) with CLAI_ROWS=wg (a work-group per row), skipped where that is the default (a GPU).
ops=softmax,log_softmax,softmax_backward,log_softmax_backward,layernorm,rmsnorm,layernorm_backward
ops=$ops,rmsnorm_backward,cross_entropy,mse,reduce,var,argmax,argmin,sum_to
exec sh "$(dirname "$0")/variant.sh" cpu "a work-group per row" test-fuzz CLAI_ROWS=wg CLAI_TEST_OPS="${CLAI_TEST_OPS:-$ops}"
