#!/usr/bin/env bash
# Runs every test suite of `make check` and ends with one line: N passed, N failed, N skipped.
# Unit tests and corpus replays run under ASan+UBSan; integration tests run the real daemon
# against moto; skipped suites are named with the reason.
set -u
cd "$(dirname "$0")/.."
# A clone without ../shared beside it has no test data: the tests that read it are skipped
# and named in one line above the summary.
testdata_name=${HEALD_TESTDATA:-../shared/testdata}
export HEALD_TESTDATA=${HEALD_TESTDATA:-$(cd .. && pwd)/shared/testdata}
no_testdata="no $testdata_name"
[ -d "$HEALD_TESTDATA" ] && no_testdata=""
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
LOGDIR=build/test-logs
mkdir -p "$LOGDIR"

passed=0 failed=0 skipped=0
failures=() skips=()
pass() { passed=$((passed + $1)); }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1"; }
skip() { skipped=$((skipped + 1)); skips+=("$1"); echo "SKIP $1"; }

section() { printf '\n== %s\n' "$1"; }

# cmocka prints "[  PASSED  ] N test(s)." once per group; a binary may run several groups.
cmocka_passed() { awk '/^\[  PASSED  \]/ {s += $4} END {print s + 0}' "$1"; }
# The tests cmocka skipped, one name a line (each is listed twice, and under a count line).
cmocka_skipped() {
        sed -n 's/^\[  SKIPPED \] //p' "$1" | grep -v ' test(s), listed below:$' | sort -u
}
# A skip in a unit test is test data missing (testdata.h), the one reason unit tests skip.
unit_skip_reason() { echo "${no_testdata:-skipped by the test}"; }

section "unit tests (cmocka, ASan+UBSan)"
for t in build/unit/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        if "$t" >"$LOGDIR/$name.log" 2>&1; then
                n=$(cmocka_passed "$LOGDIR/$name.log")
                pass "$n"
                echo "PASS $name ($n tests)"
                while read -r test; do
                        [ -n "$test" ] && skip "$name: $test ($(unit_skip_reason))"
                done < <(cmocka_skipped "$LOGDIR/$name.log")
        else
                pass "$(cmocka_passed "$LOGDIR/$name.log")"
                grep -E '^\[  FAILED  \]|ERROR|runtime error|Sanitizer' "$LOGDIR/$name.log" | head -20
                fail "$name (see $LOGDIR/$name.log)"
        fi
done

section "fuzz corpus replay (ASan+UBSan)"
for t in build/replay/fuzz_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        corpus=tests/fuzz/corpus/${name#fuzz_}
        if [ ! -d "$corpus" ]; then
                fail "$name: no seed corpus in $corpus"
        elif "$t" "$corpus" >"$LOGDIR/$name.log" 2>&1; then
                pass 1
                echo "PASS $name ($(tail -1 "$LOGDIR/$name.log"))"
        else
                tail -20 "$LOGDIR/$name.log"
                fail "$name (see $LOGDIR/$name.log)"
        fi
done

section "SigV4 test suite through build/sigv4-vector"
rc=0
tests/tools/check-sigv4-vector.sh >"$LOGDIR/sigv4-vector.log" 2>&1 || rc=$?
if [ "$rc" = 0 ]; then
        pass 1
        echo "PASS sigv4-vector ($(tail -1 "$LOGDIR/sigv4-vector.log"))"
elif [ "$rc" = 77 ]; then
        skip "sigv4-vector ($no_testdata)"
else
        tail -20 "$LOGDIR/sigv4-vector.log"
        fail "sigv4-vector (see $LOGDIR/sigv4-vector.log)"
fi

section "static analysis"
# cppcheck does not understand __attribute__((cleanup)), so it reports every _cleanup_ variable
# as a leak; leaks are LeakSanitizer's and valgrind's job here (unit tests, integration run).
# cJSON's iteration macro is described to it in tests/tools/cppcheck-cjson.cfg, since it does
# not read system headers.
if cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --inline-suppr \
        --suppress=missingIncludeSystem --suppress=memleak --library=tests/tools/cppcheck-cjson.cfg \
        -I agent agent >"$LOGDIR/cppcheck.log" 2>&1; then
        pass 1
        echo "PASS cppcheck"
else
        cat "$LOGDIR/cppcheck.log" | head -30
        fail "cppcheck (see $LOGDIR/cppcheck.log)"
fi

if python3 tests/tools/check-docs.py >"$LOGDIR/docs.log" 2>&1; then
        pass 1
        echo "PASS docs (README's IAM policy and events table match the code)"
else
        cat "$LOGDIR/docs.log"
        fail "docs (see $LOGDIR/docs.log)"
fi

# clang-tidy with the checks in .clang-tidy (bug-finding and analyzer checks), warnings as errors.
tidy_flags="-std=gnu11 -Iagent $(pkg-config --cflags libcjson) -DHEALD_VERSION=\"x\""
if (set -o pipefail; for f in $(find agent -name '*.c' | sort); do
        clang-tidy -quiet "$f" -- $tidy_flags 2>/dev/null || exit 1
done) >"$LOGDIR/clang-tidy.log" 2>&1; then
        pass 1
        echo "PASS clang-tidy"
else
        grep -E "(error|warning):" "$LOGDIR/clang-tidy.log" | head -30
        fail "clang-tidy (see $LOGDIR/clang-tidy.log)"
fi

# A runner that prints PASS/FAIL/SKIP lines and one "N passed, N failed, N skipped" line.
suite() {
        local title=$1 name=$2
        shift 2
        section "$title"
        local log="$LOGDIR/$name.log" rc=0
        "$@" >"$log" 2>&1 || rc=$?
        grep -E '^(PASS|FAIL|SKIP) ' "$log"
        local summary
        summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
        if [ -z "$summary" ]; then
                tail -30 "$log"
                fail "$name runner printed no summary (exit $rc; see $log)"
                return
        fi
        local sp sf ss
        read -r sp _ sf _ ss _ <<<"$(echo "$summary" | tr -d ',')"
        pass "$sp"
        failed=$((failed + sf))
        skipped=$((skipped + ${ss:-0}))
        while read -r line; do failures+=("$name: ${line#FAIL }"); done < <(grep '^FAIL ' "$log")
        while read -r line; do skips+=("$name: ${line#SKIP }"); done < <(grep '^SKIP ' "$log")
        [ "$rc" = 0 ] || [ "$sf" != 0 ] || fail "$name runner exited $rc"
}

suite "integration tests (build/heald against moto with IAM auth, IMDSv2 server, fault proxy)" integration \
        python3 tests/integration/run.py
suite "system tests (heald in a real systemd, in a throwaway container)" system \
        python3 tests/system/run.py --logdir "$LOGDIR/system"
# The soak's short form (make soak runs it for SOAK_MINUTES): about 2.5 minutes in all.
suite "soak, short form (the .deb in a container for 1.5 minutes of kills, reloads, outages)" soak \
        python3 tests/system/soak.py --minutes 1.5 --logdir "$LOGDIR/soak"

section "packages: make deb/rpm, lintian, rpmlint, rpm -qp, cfn-lint, systemd-analyze security"
# One check: a command whose output goes to its log; PASS, or FAIL with the log's tail.
check_step() {
        local name=$1
        shift
        if "$@" >"$LOGDIR/$name.log" 2>&1; then
                pass 1
                echo "PASS $name"
        else
                tail -20 "$LOGDIR/$name.log"
                fail "$name (see $LOGDIR/$name.log)"
        fi
}
# lintian: no error, no warning (packaging/README.md justifies what is left at info level).
lintian_clean() {
        local out rc=0
        out=$(lintian --fail-on error,warning "$1" 2>&1) || rc=$?
        grep -v 'running with root privileges' <<<"$out" || true
        return "$rc"
}
# rpmlint: no error; the warnings left are justified in packaging/README.md.
rpmlint_clean() {
        local out
        out=$(rpmlint -c packaging/rpm/rpmlint.toml "$1" 2>&1)
        echo "$out"
        grep -q ' 0 errors,' <<<"$out"
}
version=$(sed -n 's/^VERSION *:= *//p' Makefile)
deb=build/heald_${version}_$(dpkg --print-architecture).deb
rpm=build/heald-$version.$(uname -m).rpm
check_step make-deb make -s deb
check_step make-rpm make -s rpm
check_step lintian lintian_clean "$deb"
check_step rpmlint rpmlint_clean "$rpm"
grep -hE '^heald.*: [WE]: ' "$LOGDIR/lintian.log" "$LOGDIR/rpmlint.log" | sed 's/^/  /'
check_step package-contents packaging/check-packages.sh "$deb" "$rpm"
check_step cfn-lint cfn-lint packaging/cloudformation/heald-fleet.yaml
# The score of the unit as installed in a container by the system tests; offline (the unit
# file alone, no running systemd) where they did not run.
score_file=$LOGDIR/system/systemd-analyze-security.txt
if [ -s "$score_file" ]; then
        echo "  systemd-analyze security (in a container): $(grep -o 'Overall exposure level.*' "$score_file")"
else
        echo "  systemd-analyze security --offline (no container ran): $(systemd-analyze security --offline=true \
                systemd/heald.service 2>/dev/null | grep -o 'Overall exposure level.*')"
fi

# A clone without ../shared must still pass: the tests that read the test data skip instead.
check_step without-testdata tests/tools/check-without-testdata.sh

echo
for s in "${skips[@]}"; do echo "skipped: $s"; done
if [ -n "$no_testdata" ]; then
        names=()
        for s in "${skips[@]}"; do
                [[ $s == *"($no_testdata)" ]] && names+=("${s% ("$no_testdata")}")
        done
        [ "${#names[@]}" = 0 ] || echo "${#names[@]} skipped: $(IFS=,; echo "${names[*]}" | sed 's/,/, /g') ($no_testdata)"
fi
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
