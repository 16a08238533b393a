#!/bin/sh
# harness.sh - runs one test (a program or an executable script) for automake's TAP driver.
# Under Oclgrind (CLAI_TEST_OCLGRIND=1) the simulator writes what it finds - out-of-bounds accesses, data
# races, invalid API use - to a log of the test's own, and any line in it fails the test: the reports are
# printed as TAP diagnostics and a "Bail out!" line makes the driver count an error, whatever the test's
# own results were.
# Under the sanitizers (CLAI_TEST_SANITIZED) a test whose only fault is LeakSanitizer's own tracer crashing
# at exit runs once more (below).
# Each test's wall time ends its log ("# harness: took N s"); build-aux/check-impl lists the slowest. The line
# before it has the CPU seconds (user + system) of the test's processes, which, unlike the wall time, a busy
# or shared machine does not inflate.
start=$(date +%s)
cpu() { # prints the CPU line: the user + system seconds of the children waited for (`times`, second line;
  # `times` runs in this shell, not in a command substitution's, which has no children)
  t=$(mktemp "${TMPDIR:-/tmp}/clai-times.XXXXXX") || return
  times >"$t"
  echo "# harness: cpu $(sed -n '2s/[ms]/ /gp' "$t" | awk '{printf "%d", $1 * 60 + $2 + $3 * 60 + $4 + 0.5}') s"
  rm -f "$t"
}
if [ "${CLAI_TEST_OCLGRIND:-0}" != 1 ] && [ -z "${CLAI_TEST_SANITIZED:-}" ]; then
  "$@"
  rc=$?
  cpu
  echo "# harness: took $(($(date +%s) - start)) s"
  exit $rc
fi
if [ "${CLAI_TEST_OCLGRIND:-0}" != 1 ]; then
  # Under the sanitizers: LeakSanitizer checks for leaks at exit from a tracer thread that stops the
  # process's threads (here also POCL's workers) and reads their stacks, and that tracer itself sometimes
  # crashes ("Tracer caught signal 11", then "LeakSanitizer has encountered a fatal error" and exit status
  # 1, whatever the test found). That is the checker failing, not the test, so the test runs once more; its
  # first output is kept as TAP comments. Any other failure, or the tracer failing twice, fails the test.
  out=$(mktemp "${TMPDIR:-/tmp}/clai-san.XXXXXX") || exit 99
  "$@" >"$out" 2>&1
  rc=$?
  if [ $rc -ne 0 ] && grep -q "LeakSanitizer has encountered a fatal error" "$out"; then
    sed -e 's/^/# first run: /' "$out"
    echo "# harness: LeakSanitizer's tracer failed at exit (above); running $(basename "$1") again"
    "$@" >"$out" 2>&1
    rc=$?
  fi
  cat "$out"
  rm -f "$out"
  cpu
  echo "# harness: took $(($(date +%s) - start)) s"
  exit $rc
fi
log=$(mktemp "${TMPDIR:-/tmp}/clai-oclgrind.XXXXXX") || exit 99
OCLGRIND_LOG=$log
OCLGRIND_DATA_RACES=${OCLGRIND_DATA_RACES:-1}
OCLGRIND_CHECK_API=${OCLGRIND_CHECK_API:-1}
export OCLGRIND_LOG OCLGRIND_DATA_RACES OCLGRIND_CHECK_API
"$@"
rc=$?
if [ -s "$log" ]; then
  sed -e 's/^/# oclgrind: /' "$log" | head -n 200
  echo "Bail out! Oclgrind reported $(grep -c . "$log") lines for $(basename "$1") (above)"
  rc=1
fi
rm -f "$log"
cpu
echo "# harness: took $(($(date +%s) - start)) s"
exit $rc
