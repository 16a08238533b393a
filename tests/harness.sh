#!/bin/sh
# harness.sh - runs one test (a program or an executable script) for automake's TAP driver.
# Under Oclgrind (CLAI_TEST_OCLGRIND=1) the simulator writes what it finds - out-of-bounds accesses, data
# races, invalid API use - to a log of the test's own, and any line in it fails the test: the reports are
# printed as TAP diagnostics and a "Bail out!" line makes the driver count an error, whatever the test's
# own results were.
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
if [ "${CLAI_TEST_OCLGRIND:-0}" != 1 ]; then
  "$@"
  rc=$?
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
