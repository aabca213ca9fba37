#!/usr/bin/env bash
# A clone without ../shared beside it: every test that reads the shared test data must skip,
# not fail. Runs the unit tests and the SigV4 suite check with HEALD_TESTDATA naming a
# directory that does not exist: each must pass, the ones reading test data by skipping.
set -u
cd "$(dirname "$0")/../.."
export HEALD_TESTDATA=/nonexistent/heald-no-shared-testdata
bad=0 skipped=0
for t in build/unit/test_*; do
        [ -x "$t" ] || continue
        if ! out=$("$t" 2>&1); then
                echo "$(basename "$t") fails without test data:"
                grep -E '^\[  (FAILED|ERROR) |runtime error|Sanitizer' <<<"$out" | head -10
                bad=$((bad + 1))
        fi
        skipped=$((skipped + $(sed -n 's/^\[  SKIPPED \] //p' <<<"$out" |
                grep -v ' test(s), listed below:$' | sort -u | grep -c .)))
done
rc=0
tests/tools/check-sigv4-vector.sh >/dev/null 2>&1 || rc=$?
if [ "$rc" != 77 ]; then
        echo "check-sigv4-vector.sh exited $rc without test data, not 77 (skipped)"
        bad=$((bad + 1))
fi
echo "without test data: $skipped unit tests skipped, $bad suites failed"
[ "$bad" = 0 ] && [ "$skipped" -gt 0 ]
