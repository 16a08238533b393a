#!/bin/sh
# variant.sh - runs one test program with a kernel-variant switch set (CLAI_ROWS, CLAI_GEMM), so a variant
# the chosen device does not pick by default is checked too; where the device would pick it anyway, the
# program's own run covers it and this only says so (a TAP skip). Used by tests/rows-*.sh and the
# gpu-family scripts:
#   sh tests/variant.sh cpu|gpu "WHAT" PROGRAM NAME=VALUE...
# cpu: WHAT is what non-CPU devices run by default, so the program runs only where the chosen device is a
# CPU; gpu: the opposite. When `clai devices` names no chosen device, the program runs (and says why not).
builddir=${CLAI_BUILDDIR:-.}
where=$1 what=$2 prog=$3
shift 3
chosen=$("$builddir/tools/clai" devices 2>/dev/null | grep '^ *chosen: ')
if [ -n "$chosen" ]; then
  if echo "$chosen" | grep -q '(CPU)'; then
    if [ "$where" = gpu ]; then
      echo "1..0 # SKIP the default device is a CPU, where $prog itself runs $what"
      exit 0
    fi
  elif [ "$where" = cpu ]; then
    echo "1..0 # SKIP the default device is not a CPU: $prog itself runs $what there"
    exit 0
  fi
fi
exec env "$@" "$builddir/tests/$prog"
