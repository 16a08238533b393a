#!/bin/sh
# rows-item-reduce.sh - runs test-reduce with CLAI_ROWS=item, so on a GPU (where the row ops take a work-group per
# row by default) the one-work-item-per-row kernels are checked too. On a CPU device that is what the
# program's own run does already, so there this script only says so.
builddir=${CLAI_BUILDDIR:-.}
if "$builddir/tools/clai" devices 2>/dev/null | grep -q '^ *chosen: .*(CPU)'; then
  echo "1..0 # SKIP the default device is a CPU, where test-reduce itself runs one work-item per row"
  exit 0
fi
CLAI_ROWS=item exec "$builddir/tests/test-reduce"
