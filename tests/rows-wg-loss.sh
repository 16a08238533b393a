#!/bin/sh
# rows-wg-loss.sh - runs test-loss with CLAI_ROWS=wg, so the work-group-per-row kernels that GPUs use by default
# are checked on every case here too (the program's own run covers the device's default, on POCL one
# work-item per row). On a GPU that default is the work-group kernels, so there the script only says so.
exec sh "$(dirname "$0")/variant.sh" cpu "a work-group per row" test-loss CLAI_ROWS=wg
