#!/bin/sh
# symbols.sh - libclai.so exports exactly the functions that include/clai.h declares with CLAI_API:
# nothing internal leaks (clai__*, static helpers), and nothing documented is missing. Prints TAP.
set -u
srcdir=${CLAI_SRCDIR:-.}
builddir=${CLAI_BUILDDIR:-.}
nm=${NM:-nm}
case "$nm" in *" -B"*) nm=${nm% -B} ;; esac
lib="$builddir/.libs/libclai.so"
echo "1..2"
if [ ! -f "$lib" ]; then
  echo "not ok 1 - $lib exists"
  echo "not ok 2 - exports match the header # no library"
  exit 1
fi
echo "ok 1 - $lib exists"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/clai-sym.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# Declarations look like "CLAI_API <type> <name>(": take the identifier right before the first "(".
tr '\n' ' ' <"$srcdir/include/clai.h" | sed 's/;/;\n/g' | grep 'CLAI_API' |
  sed -n 's/.*[^A-Za-z0-9_]\(clai_[A-Za-z0-9_]*\)[ ]*(.*/\1/p' | sort -u >"$tmp/header"
$nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRWV]$/ {print $3}' | sed 's/@.*//' |
  grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' | sort -u >"$tmp/exported"
if cmp -s "$tmp/header" "$tmp/exported" && [ -s "$tmp/header" ]; then
  echo "ok 2 - the $(wc -l <"$tmp/header") exported symbols are exactly the CLAI_API declarations"
else
  echo "not ok 2 - exported symbols differ from the CLAI_API declarations"
  diff "$tmp/header" "$tmp/exported" | sed 's/^/# /'
  exit 1
fi
