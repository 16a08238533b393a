#!/bin/sh
# bench-gemm.sh - `clai bench gemm` runs end to end on small shapes and says what is wrong with bad
# arguments: --json gives one well-formed object per shape with positive GFLOP/s, the kernel's description
# and the measured FMA peak; the table gives the peak line (with the work-group size the bench set) and a row
# per shape, transposed and f16 too, with OpenBLAS beside it where it is installed; each bad argument exits
# with status 2 and a message that names it. No figure is judged: speed is for the benchmarks themselves.
# Skipped under Oclgrind (the peak kernel's quarter of a GFLOP takes minutes in the simulator). Prints TAP.
set -u
builddir=${CLAI_BUILDDIR:-.}
tool="$builddir/tools/clai"
echo "1..4"
if [ "${CLAI_TEST_OCLGRIND:-0}" = 1 ]; then
  for i in 1 2 3 4; do echo "ok $i # SKIP under Oclgrind"; done
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/clai-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
rc=0

if "$tool" bench gemm --sizes 33x17x9,64 --samples 1 --min-time 0.001 --no-ref --json >"$tmp/json" 2>"$tmp/err" &&
  [ "$(wc -l <"$tmp/json")" -eq 2 ] &&
  awk '!/^\{"m": [0-9]+, "n": [0-9]+, "k": [0-9]+, .*"gflops": [0-9.eE+-]+, .*"kernel": "[a-z]/ { bad = 1 }
       { match($0, /"gflops": [0-9.eE+-]+/); if (substr($0, RSTART + 10, RLENGTH - 10) + 0 <= 0) bad = 1
         if (!match($0, /"peak_gflops": [0-9.eE+-]+/) || substr($0, RSTART + 15, RLENGTH - 15) + 0 <= 0) bad = 1 }
       END { exit bad }' "$tmp/json" &&
  grep -q '^{"m": 33, "n": 17, "k": 9,' "$tmp/json" && grep -q '^{"m": 64, "n": 64, "k": 64,' "$tmp/json"; then
  echo "ok 1 - --json: an object per shape, positive GFLOP/s, the kernel and the peak"
else
  echo "not ok 1 - --json: an object per shape, positive GFLOP/s, the kernel and the peak"
  sed 's/^/# /' "$tmp/json" "$tmp/err"
  rc=1
fi

# the table: with the references unless the sanitizers run (OpenBLAS's threads are not theirs to check)
refs=
[ -n "${CLAI_TEST_SANITIZED:-}" ] && refs=--no-ref
if "$tool" bench gemm --sizes 19x5x40 --trans tt --dtype f16 --samples 2 --min-time 0.001 $refs >"$tmp/table" \
  2>"$tmp/err" && grep -q '^peak: [0-9.]* GFLOP/s (the best of 2 timings, .* in groups of [0-9]*)' "$tmp/table" &&
  grep -q '^ *19  *5  *40  *1 f16  11  *[0-9.]* (' "$tmp/table"; then
  echo "ok 2 - the table: the peak line and a row for 19 x 5 x 40, tt, f16"
else
  echo "not ok 2 - the table: the peak line and a row for 19 x 5 x 40, tt, f16"
  sed 's/^/# /' "$tmp/table" "$tmp/err"
  rc=1
fi

# bad arguments: status 2 and a message naming what is wrong (before any OpenCL work)
bad=0
check() { # check "MESSAGE" ARGS...: the bench exits 2 and prints MESSAGE (a fixed string) on stderr
  want=$1
  shift
  "$tool" bench gemm "$@" >/dev/null 2>"$tmp/err"
  st=$?
  if [ $st -ne 2 ] || ! grep -qF -e "$want" "$tmp/err"; then
    echo "# clai bench gemm $*: status $st, wanted 2 and \"$want\":"
    sed 's/^/#   /' "$tmp/err"
    bad=1
  fi
}
check "unknown argument '--bogus'" --bogus
check "--samples needs a value" --samples
check "bad --trans 'xy'" --trans xy
check "bad --dtype 'f64'" --dtype f64
check "bad --sizes '5x5'" --sizes 5x5
check "bad --sizes '0'" --sizes 0
check "(got 1, 0, 0.05)" --samples 0
check "(got 0, 7, 0.05)" --batch 0
check "(got 1, 7, -1)" --min-time -1
check "(got 1, 65, 0.05)" --samples 65
if [ $bad -eq 0 ]; then
  echo "ok 3 - ten bad arguments: status 2 and a message that names each"
else
  echo "not ok 3 - ten bad arguments: status 2 and a message that names each"
  rc=1
fi

# --help: the usage on stdout, status 0
if "$tool" bench gemm --help >"$tmp/help" 2>&1; then st=0; else st=$?; fi
if [ $st -eq 0 ] && grep -q '^usage: clai bench gemm' "$tmp/help"; then
  echo "ok 4 - --help: the usage, status 0"
else
  echo "not ok 4 - --help: the usage, status 0 (status $st)"
  sed 's/^/# /' "$tmp/help"
  rc=1
fi
exit $rc
