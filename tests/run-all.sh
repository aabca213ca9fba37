#!/usr/bin/env bash
# Runs every test suite of `make check` and ends with one line: N passed, N failed, N skipped.
# Unit tests, corpus replays and the power-loss crash test run under ASan+UBSan; integration tests run the real daemon
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
failures=() skips=() flaky=() detail_logs=()
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

# run_units DIR PREFIX [RUNNER...]: every cmocka binary in DIR/unit, then every corpus replay in
# DIR/replay, each through RUNNER (qemu-user for another architecture); PREFIX names them.
run_units() {
        local dir=$1 prefix=$2 t name log n corpus
        shift 2
        section "${prefix:+${prefix%-}: }unit tests (cmocka, ASan+UBSan)"
        for t in "$dir"/unit/test_*; do
                [ -x "$t" ] || continue
                name=$prefix$(basename "$t") log=$LOGDIR/$name.log
                if "$@" "$t" >"$log" 2>&1; then
                        n=$(cmocka_passed "$log")
                        pass "$n"
                        echo "PASS $name ($n tests)"
                        while read -r test; do
                                [ -n "$test" ] && skip "$name: $test ($(unit_skip_reason))"
                        done < <(cmocka_skipped "$log")
                else
                        pass "$(cmocka_passed "$log")"
                        grep -E '^\[  FAILED  \]|ERROR|runtime error|Sanitizer' "$log" | head -20
                        fail "$name (see $log)"
                fi
        done

        section "${prefix:+${prefix%-}: }fuzz corpus replay (ASan+UBSan)"
        for t in "$dir"/replay/fuzz_*; do
                [ -x "$t" ] || continue
                name=$prefix$(basename "$t") log=$LOGDIR/$name.log
                corpus=tests/fuzz/corpus/${name#"${prefix}fuzz_"}
                if [ ! -d "$corpus" ]; then
                        fail "$name: no seed corpus in $corpus"
                elif "$@" "$t" "$corpus" >"$log" 2>&1; then
                        pass 1
                        echo "PASS $name ($(tail -1 "$log"))"
                else
                        tail -20 "$log"
                        fail "$name (see $log)"
                fi
        done
}
run_units build ""

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
if cppcheck -j "$(nproc)" --quiet --error-exitcode=1 --enable=warning,performance,portability --inline-suppr \
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
        echo "PASS docs (README and man pages match the code; their ini and heald examples run)"
else
        cat "$LOGDIR/docs.log"
        fail "docs (see $LOGDIR/docs.log)"
fi

# clang-tidy with the checks in .clang-tidy (bug-finding and analyzer checks), warnings as errors;
# a file per core at a time (nothing else runs meanwhile, and nothing here is timed).
export TIDY_FLAGS="-std=gnu11 -Iagent $(pkg-config --cflags libcjson) -DHEALD_VERSION=\"x\""
if find agent -name '*.c' | sort | xargs -n 1 -P "$(nproc)" sh -c 'clang-tidy -quiet "$0" -- $TIDY_FLAGS 2>/dev/null' \
        >"$LOGDIR/clang-tidy.log" 2>&1; then
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
        grep -E '^(PASS|FAIL|SKIP|RETRY|FLAKY) ' "$log"
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
        while read -r line; do flaky+=("$name: ${line#FLAKY }"); done < <(grep '^FLAKY ' "$log")
        grep -q '^==== ' "$log" && detail_logs+=("$log")
        [ "$rc" = 0 ] || [ "$sf" != 0 ] || fail "$name runner exited $rc"
}

suite "power-loss crash images of the outbox, command journal and policy.json (ASan+UBSan)" crash \
        build/crash/test_crash
grep -h '^checked ' "$LOGDIR/crash.log" | sed 's/^/  /'
suite "integration tests (build/heald against moto with IAM auth, IMDSv2 server, fault proxy)" integration \
        python3 tests/integration/run.py
# make fleet-sim's 10-instance form, scenarios 1 and 2: about 2 minutes.
suite "fleet simulation, 10 instances (the fleet stack in moto, 10 real healds: failures, storm)" fleet-sim \
        python3 tests/integration/fleet_sim.py --instances 10 --idle 0 --scenarios 1,2
grep -hE '^# (  |per instance)' "$LOGDIR/fleet-sim.log" | sed 's/^/  /'
suite "system tests (heald in a real systemd, in a throwaway container)" system \
        python3 tests/system/run.py --logdir "$LOGDIR/system"
# The soak's short form (make soak runs it for SOAK_MINUTES): about 2.5 minutes in all.
suite "soak, short form (the .deb in a container for 1.5 minutes of kills, reloads, outages)" soak \
        python3 tests/system/soak.py --minutes 1.5 --logdir "$LOGDIR/soak"

section "packages: make deb/rpm, lintian, rpmlint, rpm -qp, rpm scriptlets, cfn-lint, systemd-analyze security"
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
check_step deb-src-sources tests/tools/check-deb-src-sources.sh
check_step make-rpm make -s rpm
check_step lintian lintian_clean "$deb"
check_step rpmlint rpmlint_clean "$rpm"
grep -hE '^heald.*: [WE]: ' "$LOGDIR/lintian.log" "$LOGDIR/rpmlint.log" | sed 's/^/  /'
check_step package-contents packaging/check-packages.sh "$deb" "$rpm"
check_step rpm-scriptlets packaging/check-rpm-scriptlets.sh "$rpm"
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

# Graviton: the arm64 build (make ARCH=arm64) under qemu-user: unit tests and corpus replays
# (LeakSanitizer cannot run under qemu: leaks are the amd64 run's), the SigV4 suite, the
# integration modules below (the whole suite would take ~6 minutes there) and the packages.
ARM64_MODULES=(bed_check test_publish test_imds test_commands whole_run_check)
arm64_ran="arm64: skipped"
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
        skip "arm64: no aarch64-linux-gnu-gcc or qemu-aarch64-static (packaging/install-deps.sh installs them)"
else
        section "arm64: cross build (make ARCH=arm64)"
        check_step arm64-build make -s ARCH=arm64 all unit replay
        # SIGPIPE ignored, as heald itself does (daemon.c): under qemu-user, test_exec's process
        # is sometimes killed by a SIGPIPE that never reaches it natively (not root-caused).
        run_units build/arm64 arm64- env --ignore-signal=PIPE ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
                qemu-aarch64-static
        section "arm64: SigV4 test suite through build/arm64/sigv4-vector"
        check_step arm64-sigv4-vector env HEALD_SIGV4_VECTOR="qemu-aarch64-static build/arm64/sigv4-vector" \
                tests/tools/check-sigv4-vector.sh
        suite "arm64: integration tests (build/arm64/heald under qemu-user against moto): ${ARM64_MODULES[*]}" \
                integration-arm64 env HEALD_BIN="$PWD/tests/tools/heald-arm64.sh" \
                python3 tests/integration/run.py "${ARM64_MODULES[@]}"
        section "arm64: packages (make deb ARCH=arm64, make rpm ARCH=aarch64), lintian, rpmlint"
        check_step arm64-make-deb make -s deb ARCH=arm64
        check_step arm64-make-rpm make -s rpm ARCH=aarch64
        check_step arm64-lintian lintian_clean "build/heald_${version}_arm64.deb"
        check_step arm64-rpmlint rpmlint_clean "build/heald-$version.aarch64.rpm"
        check_step arm64-package-contents packaging/check-packages.sh "build/heald_${version}_arm64.deb" \
                "build/heald-$version.aarch64.rpm"
        arm64_ran="arm64 (qemu-user): unit tests, corpus replays, SigV4 suite, integration ${ARM64_MODULES[*]}, .deb and .rpm"
fi

# For those who see only the end of this output (CI): of each failure the runners detailed, the
# line of the test that failed and 30 lines from the exception on (its message, heald's log tail).
for log in "${detail_logs[@]}"; do
        printf '\n== details from %s\n' "$log"
        awk '/^[0-9]+ passed, [0-9]+ failed/ {exit}
             /^==== / {print; raised = 0; n = 0; next}
             /^  File / {where = $0}
             /^[A-Za-z_.]+(Error|Exception|Failure)(:|$)/ && !raised {raised = 1; print where}
             raised && n++ < 30' "$log"
done

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
for f in "${flaky[@]}"; do echo "passed only when run again (flaky, see its details above): $f"; done
echo "$arm64_ran"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
