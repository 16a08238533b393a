# cold-caches.sh - sourced by the tests that run a program on empty kernel caches (fmnist-train.sh,
# llm-generate.sh). cold_caches PREFIX COMMAND...: runs COMMAND with POCL_CACHE_DIR and CLAI_CACHE_DIR set to
# fresh directories $dir/PREFIXp and $dir/PREFIXc ($dir: the caller's scratch directory); under the
# sanitizers (CLAI_TEST_SANITIZED) with the suite's caches instead: a cold compilation under ASan takes
# minutes (LLVM's allocations through ASan's allocator), and the host code those tests check is the same on
# warm caches.
cold_caches() {
  cc_pre=$1
  shift
  if [ -z "${CLAI_TEST_SANITIZED:-}" ]; then
    mkdir -p "$dir/${cc_pre}p" "$dir/${cc_pre}c"
    POCL_CACHE_DIR="$dir/${cc_pre}p" CLAI_CACHE_DIR="$dir/${cc_pre}c" "$@"
  else
    "$@"
  fi
}
