#!/usr/bin/env python3
"""send_event_bench.py: one event, whole process: `heald send-event` vs `aws events put-events`
against the same local PutEvents sink. Wall time from fork to exit and the peak RSS of the
process (ru_maxrss from wait4, the VmHWM of the child), median of --runs each.
Usage: send_event_bench.py HEALD_BIN CONFIG SINK_URL [--runs 7] [--json FILE]"""
import argparse
import json
import os
import shutil
import statistics
import sys
import time


def run(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall time (ms) and peak RSS (KiB) of one run; exits on a failed run."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execvpe(argv[0], argv, env)
    _, status, usage = os.wait4(pid, 0)
    wall = (time.perf_counter() - t0) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv[0]} failed: status {status}")
    return wall, usage.ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("heald")
    ap.add_argument("config")
    ap.add_argument("sink")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", help="write the medians here for the summary table")
    args = ap.parse_args()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDBENCH", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION="us-east-1", HEALD_LOG_TARGET="stderr")
    # heald as its packaged unit runs it (systemd/heald.service's Environment= lines).
    heald_env = dict(env)
    unit = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../systemd/heald.service")
    with open(unit) as f:
        for line in f:
            if line.startswith("Environment="):
                k, _, v = line.strip().removeprefix("Environment=").partition("=")
                heald_env[k] = v
    heald = [args.heald, "send-event", "--config", args.config, "Bench Event", '{"n":1}']
    results = {"heald": [run(heald, heald_env) for _ in range(args.runs)]}
    if shutil.which("aws"):
        entries = json.dumps([{"Source": "heald.bench", "DetailType": "Bench Event",
                               "Detail": '{"n":1}'}])
        aws = ["aws", "events", "put-events", "--endpoint-url", args.sink, "--entries", entries]
        results["aws"] = [run(aws, env) for _ in range(args.runs)]
    medians = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v))
               for k, v in results.items()}
    for name, (wall, rss) in medians.items():
        print(f"send-event {name + ':':<7}median {wall:.1f} ms wall, peak RSS {rss / 1024:.1f} MiB "
              f"(n={args.runs})")
    if "aws" in medians:
        (hw, hm), (aw, am) = medians["heald"], medians["aws"]
        print(f"send-event ratio: {aw / hw:.0f}x faster, 1/{am / hm:.1f} the memory "
              "(goal >= 20x, <= 1/8)")
    else:
        print("send-event aws:   skipped: the aws CLI is not installed")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: {"wall_ms": w, "hwm_kib": m} for k, (w, m) in medians.items()}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
