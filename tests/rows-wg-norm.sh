#!/bin/sh
# rows-wg-norm.sh - runs test-norm with CLAI_ROWS=wg, so the work-group-per-row kernels that GPUs use by default
# are checked on every case here too (the program's own run covers the device's default, on POCL one
# work-item per row). On a GPU that default is the work-group kernels, so there the script only says so.
builddir=${CLAI_BUILDDIR:-.}
chosen=$("$builddir/tools/clai" devices 2>/dev/null | grep '^ *chosen: ')
if [ -n "$chosen" ] && ! echo "$chosen" | grep -q '(CPU)'; then
  echo "1..0 # SKIP the default device is not a CPU: test-norm itself runs a work-group per row there"
  exit 0
fi
CLAI_ROWS=wg exec "$builddir/tests/test-norm"
