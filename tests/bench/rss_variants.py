#!/usr/bin/env python3
"""rss_variants.py: peak and idle RSS of heald binaries built different ways (e.g. dynamic and
statically linked), with the same configuration, on the host against the integration bed (moto,
IMDSv2): three local checks and the command channel's long poll, as the bench's idle run. Each
run starts heald, waits for "started" and the first long poll, lets it idle --idle seconds and
reads VmHWM (peak), VmRSS (idle), RssAnon, RssFile, Pss and Uss; the binaries take turns, so
the machine's load falls on each alike. Prints the median of --runs per binary and the load
averages seen during its runs. heald runs with the packaged unit's Environment=.
Usage: rss_variants.py BIN [BIN ...] [--runs 5] [--idle 10]"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402 - puts tests/lib on sys.path
from heal_bench import memory, packaged_environment, rss_by_mapping  # noqa: E402

FIELDS = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "Pss", "Uss")
QUEUE_URL = "{proxy}/{{account_id}}/heald-{{instance_id}}"  # as tests/integration/test_commands.py


def one_run(bed: harness.Bed, binary: str, idle: float) -> tuple[dict[str, int], str, float]:
    harness.HEALD = binary
    agent = harness.Agent(bed, "rss", queue_url=QUEUE_URL.format(proxy=bed.proxy.endpoint),
                          wait_time="20s")
    for name, keys in {"root": {"type": "disk", "path": "/", "max_used_percent": "99.9"},
                       "memory": {"type": "memory", "min_available_percent": "1"},
                       "load": {"type": "load", "max_load_per_cpu": "100"}}.items():
        agent.configure(**{f"check {name}__{k}": v for k, v in keys.items()})
    unit_env = dict(line.removeprefix("Environment=").split("=", 1)
                    for line in packaged_environment())
    try:
        agent.start(extra_env=unit_env)
        agent.wait_for_log(r"Receiving commands from ", timeout=10)
        time.sleep(idle)
        return memory(agent.proc.pid), rss_by_mapping(agent.proc.pid), os.getloadavg()[0]
    finally:
        agent.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle", type=float, default=10)
    args = ap.parse_args()
    bed = harness.bed()
    bed.fleet.command_queue()
    seen: dict[str, list] = {b: [] for b in args.binaries}
    for _ in range(args.runs):
        for b in args.binaries:
            seen[b].append(one_run(bed, b, args.idle))
    for b, runs in seen.items():
        med = {f: int(statistics.median(m[f] for m, _, _ in runs)) for f in FIELDS}
        loads = [load for _, _, load in runs]
        print(f"{b}: {os.path.getsize(b)} bytes; median of {len(runs)}: "
              + ", ".join(f"{f} {med[f]} KiB" for f in FIELDS)
              + f"; VmHWM each: {sorted(m['VmHWM'] for m, _, _ in runs)}; "
              f"load {min(loads):.1f}-{max(loads):.1f}")
        print(f"  RSS by mapping (last run): {runs[-1][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
