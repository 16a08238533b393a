#!/bin/sh
# spir-check.sh - compiles every kernel program with clang for a generic SPIR target under -cl-std=CL1.2,
# with the same -D options the library uses for each device profile. A cheap guard against constructs
# that only POCL accepts and NVIDIA's or AMD's compilers would reject. Prints TAP.
set -u
builddir=${CLAI_BUILDDIR:-.}
clang=${CLANG:-}
[ -n "$clang" ] || clang=$(command -v clang 2>/dev/null || true)
if [ -z "$clang" ]; then
  echo "1..0 # SKIP clang not found (apt-get install clang)"
  exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/clai-spir.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
"$builddir/tests/cl-options" "$dir" >"$dir/list" || { echo "1..1"; echo "not ok 1 - cl-options failed"; exit 1; }
n=$(wc -l <"$dir/list")
echo "1..$n"
i=0
fails=0
tab=$(printf '\t')
while IFS="$tab" read -r file profile opts; do
  i=$((i + 1))
  # shellcheck disable=SC2086 # the options are a word list
  if "$clang" -x cl -cl-std=CL1.2 -target spir-unknown-unknown -Xclang -finclude-default-header \
      -Werror=implicit-function-declaration -c -emit-llvm -o /dev/null $opts "$file" >"$dir/log" 2>&1; then
    echo "ok $i - $(basename "$file") [$profile] $opts"
  else
    echo "not ok $i - $(basename "$file") [$profile] $opts"
    sed 's/^/# /' "$dir/log"
    fails=$((fails + 1))
  fi
done <"$dir/list"
[ "$fails" -eq 0 ]
