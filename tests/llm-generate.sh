#!/bin/sh
# llm-generate.sh - `clai generate` and its build helper (examples/build-helper) on the real SmolLM2 (skipped
# when build-aux/get-model's model is not installed, and in small mode: a cold run compiles every kernel
# of the model, ~10 s of CPU on POCL). On empty caches (warm ones under the sanitizers) a greedy run with
# the helper and one without give the same tokens, the first reports its helper ("build_helper": true) and
# leaves no claims directory behind; a helper run alone succeeds silently and leaves claims. Prints TAP.
set -u
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; export ASAN_OPTIONS # as in fmnist-train.sh
builddir=${CLAI_BUILDDIR:-.}
tool="$builddir/tools/clai"
model=${CLAI_LLM_MODEL:-${XDG_DATA_HOME:-$HOME/.local/share}/clai/models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ ! -r "$model" ]; then
  echo "1..0 # SKIP the SmolLM2 model is not installed at $model (build-aux/get-model installs it)"
  exit 0
fi
if [ "${CLAI_TEST_SIZE:-}" = small ]; then
  echo "1..0 # SKIP small mode: a cold run compiles every kernel of the model (the helper's host code is tested on POCL)"
  exit 0
fi
# Under the sanitizers (CLAI_TEST_SANITIZED) the runs keep the suite's caches: a cold compilation under ASan
# took 100 s a run (LLVM's allocations through ASan's allocator), and the host code is the same warm.
. "$(dirname "$0")/cold-caches.sh"
dir=$(mktemp -d "${CLAI_TEST_TMP:-${TMPDIR:-/tmp}}/tmp-llm-generate.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
echo "1..2"
fails=0
report() { # N NAME OK
  if [ "$3" -eq 1 ]; then echo "ok $1 - $2"; else echo "not ok $1 - $2"; fails=$((fails + 1)); fi
}
tokens() { sed -n 's/.*"tokens": \[\([0-9, ]*\)\].*/\1/p' "$1"; }
run="--prompt The_capital_of_France_is -n 8 --temp 0 --json"

# 1. With and without the helper, each on empty caches: the same tokens; no claims left in TMPDIR.
ok=0
mkdir -p "$dir/tmp"
if cold_caches a env TMPDIR="$dir/tmp" "$tool" generate --model "$model" $run >"$dir/a.json" 2>"$dir/a.err" &&
   cold_caches b "$tool" generate --model "$model" $run --no-build-helper >"$dir/b.json" 2>"$dir/b.err"; then
  ta=$(tokens "$dir/a.json") tb=$(tokens "$dir/b.json") left=$(ls -A "$dir/tmp" | wc -l)
  echo "# tokens with the helper [$ta], without [$tb]; $left files left in TMPDIR"
  [ -n "$ta" ] && [ "$ta" = "$tb" ] && [ "$left" -eq 0 ] && grep -q '"build_helper": true' "$dir/a.json" &&
    grep -q '"build_helper": false' "$dir/b.json" && ok=1
fi
[ "$ok" -eq 1 ] || sed 's/^/# /' "$dir/a.err" "$dir/b.err"
report 1 "the same tokens with and without the build helper, its claims removed" "$ok"

# 2. The helper alone, on empty caches: it succeeds, prints nothing, and leaves the claims of what it built.
ok=0
mkdir -p "$dir/share"
if cold_caches c "$tool" generate --model "$model" $run --as-build-helper "$dir/share" >"$dir/c.out" 2>&1; then
  claims=$(ls "$dir/share" | wc -l)
  echo "# a helper alone left $claims claims"
  [ "$claims" -gt 0 ] && [ ! -s "$dir/c.out" ] && ok=1
fi
[ "$ok" -eq 1 ] || sed 's/^/# /' "$dir/c.out"
report 2 "the build helper alone: claims, no output" "$ok"
[ "$fails" -eq 0 ]
