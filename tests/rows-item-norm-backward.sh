#!/bin/sh
# rows-item-norm-backward.sh - runs test-norm-backward with CLAI_ROWS=item, so on a GPU (where the row ops take a work-group per
# row by default) the one-work-item-per-row kernels are checked too. On a CPU device that is what the
# program's own run does already, so there this script only says so.
exec sh "$(dirname "$0")/variant.sh" gpu "one work-item per row" test-norm-backward CLAI_ROWS=item
