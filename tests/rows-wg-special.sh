#!/bin/sh
# rows-wg-special.sh - runs test-special with CLAI_ROWS=wg, so the work-group-per-row kernels that GPUs use by default
# are checked on every case here too (the program's own run covers the device's default, on POCL one
# work-item per row).
builddir=${CLAI_BUILDDIR:-.}
CLAI_ROWS=wg exec "$builddir/tests/test-special"
