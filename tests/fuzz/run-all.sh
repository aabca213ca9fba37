#!/usr/bin/env bash
# make fuzz: run each libFuzzer target for FUZZ_SECONDS (default 60) on a copy of its seed
# corpus (new inputs land in build/fuzz/corpus-NAME, not in the repository), and report
# which ones found a crash. Crash inputs are kept in build/fuzz/ for replay.
set -u
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
status=0
for bin in "$@"; do
        name=$(basename "$bin")
        seeds=tests/fuzz/corpus/${name#fuzz_}
        work=build/fuzz/corpus-${name#fuzz_}
        mkdir -p "$work"
        [ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null
        echo "== $name: $seconds s"
        if "$bin" -max_total_time="$seconds" -print_final_stats=0 -artifact_prefix="build/fuzz/$name-" \
                "$work" >"build/fuzz/$name.log" 2>&1; then
                echo "ok: $(grep -E '^#[0-9]+.*DONE' "build/fuzz/$name.log" | tail -1)"
        else
                status=1
                echo "FOUND A PROBLEM: see build/fuzz/$name.log"
                grep -E 'ERROR|SUMMARY' "build/fuzz/$name.log" | head -5
        fi
done
exit $status
