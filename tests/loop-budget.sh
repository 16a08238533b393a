#!/bin/sh
# loop-budget.sh - the tests of the ops that keep within a device's loop budget (Mesa's llvmpipe stops all of
# a work-item's loops after 65535 iterations, silently), with that budget emulated (CLAI_LOOP_LIMIT) on the
# device the suite runs on: the routes libclai takes there (bands of rows, K in slices, partial sums and
# passes, the row and GEMM routes in place of plane and direct ones, refusals of rows past the budget) then
# also run on POCL, under the sanitizers in CI, and on Oclgrind, which checks their every access.
# Full size: llvmpipe's own budget and the programs whose tests know it (each expects what llvmpipe does).
# Small mode (slow devices): budgets of 3000 to 8000 iterations, so that small shapes take those routes too,
# for the programs whose small cases such a budget allows (the convolutions' data gradient refuses rows of
# 70 with 5 x 5 taps below 7000). On llvmpipe itself the budget is real and the programs' own runs cover it:
# this only says so. One TAP line per program.
builddir=${CLAI_BUILDDIR:-.}
if "$builddir/tools/clai" devices 2>/dev/null | grep '^\*' | grep -qi llvmpipe; then
  echo "1..0 # SKIP the default device is llvmpipe, whose loop budget the programs' own runs meet"
  exit 0
fi
if [ "${CLAI_TEST_SIZE:-}" = small ]; then
  progs="test-conv:3000 test-pool2d:3000 test-conv-backward:8000 test-gather-backward:3000"
else
  list="test-conv test-pool2d test-conv-backward test-gather-backward test-loss test-optim"
  # (under the sanitizers, CLAI_TEST_SANITIZED, the programs whose host code changes most with the budget:
  # each run there takes several times as long)
  [ -z "${CLAI_TEST_SANITIZED:-}" ] &&
    list="$list test-quant test-norm test-matmul test-reduce test-attention test-attention-backward test-norm-backward"
  progs=""
  for p in $list; do progs="$progs $p:65535"; done
fi
n=$(echo $progs | wc -w)
echo "1..$n"
i=0
rc=0
for pl in $progs; do
  i=$((i + 1))
  p=${pl%:*} limit=${pl#*:}
  if out=$(CLAI_LOOP_LIMIT=$limit "$builddir/tests/$p" 2>&1); then
    echo "ok $i - $p with CLAI_LOOP_LIMIT=$limit"
  else
    echo "not ok $i - $p with CLAI_LOOP_LIMIT=$limit"
    echo "$out" | grep -v '^ok ' | sed -e 's/^/# /' | head -n 60
    rc=1
  fi
done
exit $rc
