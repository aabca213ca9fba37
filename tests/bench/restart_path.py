#!/usr/bin/env python3
"""restart_path.py: where the milliseconds go between kill -9 of a watched unit's main process
and the restart beginning (the unit's new InactiveExitTimestamp, heal_bench.py's criterion).

The same container, unit, check and heald as heal_bench.py's healing section. Each kill is
split by systemd's and heald's own timestamps (no tracing):
  kill -> failed      the unit's InactiveEnterTimestamp: systemd reaped the process (SIGCHLD)
  failed -> restart   the new InactiveExitTimestamp: heald's part (the PropertiesChanged
                      signal, the decision, the records, RestartUnit) and systemd's handling of
                      RestartUnit up to the fork
With --perf K, K more kills run under `perf trace` of heald, the container's systemd and
dbus-daemon (system calls with times on one clock, little overhead next to strace); the
trace of each is kept and its milestones printed: systemd's waitid, its sendmsg of the
signal, heald's recvmsg, heald's writes and syncs, heald's sendmsg of RestartUnit, systemd's
recvmsg of it, systemd's fork (clone) of the new process.
Usage: sudo tests/bench/restart_path.py [--runs 20] [--perf 3] [--out DIR]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import heal_bench as hb  # noqa: E402 - puts tests/system and tests/lib on sys.path
from heal_bench import container  # noqa: E402
from testlib import import_bed  # noqa: E402


def unit_times(c: container.Container, unit: str) -> dict[str, int]:
    path = "/org/freedesktop/systemd1/unit/" + "".join(
        ch if ch.isalnum() else f"_{ord(ch):02x}" for ch in unit)
    out = c.run(["busctl", "get-property", "org.freedesktop.systemd1", path,
                 "org.freedesktop.systemd1.Unit", "InactiveEnterTimestamp",
                 "InactiveExitTimestamp"]).stdout.split()
    return dict(zip(["InactiveEnter", "InactiveExit"], (int(v) for v in out[1::2])))


def pid_of_unit(c: container.Container, unit: str) -> int:
    return hb.host_pid(c, int(c.show(unit, "MainPID")))


TRACE_LINE = re.compile(r"^\s*([\d.]+) \(\s*[\d.]* ms\): (\S+)/(\d+) (\w+)\(([^)]*)\)?.*?(?:= (-?\d+))?\s*$")


def milestones(path: str) -> dict[str, float] | None:
    """The restart path's moments (ms, perf's clock) in one trace: systemd reads the SIGCHLD,
    sends the unit's PropertiesChanged, heald receives it, sends RestartUnit (its first message
    after the signal), systemd forks the new process."""
    calls = []
    with open(path) as f:
        for line in f:
            m = TRACE_LINE.match(line)
            if m:
                t, comm, _, name, args, ret = m.groups()
                calls.append((float(t), comm, name, args, int(ret) if ret else None))
    calls.sort(key=lambda c: c[0])

    def first(pred, after: float) -> float | None:
        return next((c[0] for c in calls if c[0] > after and pred(c)), None)
    sigchld = first(lambda c: c[1] == "systemd" and c[2] == "read" and "signalfd" in c[3], 0)
    if sigchld is None:
        return None
    recv = first(lambda c: c[1] == "heald" and c[2] == "recvmsg" and (c[4] or 0) > 24, sigchld)
    if recv is None:
        return None
    sent = max((c[0] for c in calls if sigchld < c[0] < recv and c[1] == "systemd" and c[2] == "sendmsg"
                and "DONTWAIT" in c[3]), default=None)
    request = first(lambda c: c[1] == "heald" and c[2] == "sendmsg" and "DONTWAIT" in c[3], recv)
    fork = first(lambda c: c[1] == "systemd" and c[2] in ("clone", "clone3"), request or recv)
    if None in (sent, request, fork):
        return None
    return {"sigchld": sigchld, "signal sent": sent, "heald receives": recv, "RestartUnit sent": request,
            "fork": fork}


def kill_once(c: container.Container, heald_unit: str, i: int) -> tuple[int, dict]:
    t_kill, _ = hb.kill_and_wait_restart(c, 0.5)
    hb.wait(lambda: hb.journal_count(c, "remediation-succeeded", heald_unit) > i, 15,
            f"remediation-succeeded #{i + 1}", interval=0.05)
    return t_kill, unit_times(c, hb.CRASHY)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="kills without tracing (default 20)")
    ap.add_argument("--perf", type=int, default=3, help="kills under perf trace (default 3)")
    ap.add_argument("--out", default="/tmp/heald-restart-path", help="where the traces go")
    args = ap.parse_args()
    container.require()
    harness = import_bed()
    import fault_proxy  # noqa: PLC0415
    fault_proxy._Handler.disable_nagle_algorithm = True
    bed = harness.bed()
    os.makedirs(args.out, exist_ok=True)
    print(f"load average {open('/proc/loadavg').read().split()[:3]}")
    with container.Container("restartpath") as c:
        c.write_file(f"/etc/systemd/system/{hb.CRASHY}", hb.CRASHY_UNIT_FILE)
        c.systemctl("daemon-reload")
        agent = harness.Agent(bed, "restart_path")
        bed.agents.append(agent)
        config = {s: dict(kv) for s, kv in agent.config.items()}
        config["agent"]["log_level"] = "info"
        config["check crashy"] = {"type": "unit", "unit": hb.CRASHY, "action": "restart-unit",
                                  "max_actions": "100", "action_window": "1h",
                                  "verify_timeout": "10s"}
        c.systemctl("start", hb.CRASHY)
        unit = "heald-heal.service"
        c.start_heald(config, unit="heald-heal", state_dir="/var/lib/heald-heal",
                      config_path="/etc/heald/heal.ini", properties=hb.packaged_environment())
        agent.events(1, timeout=20, detail_type="Agent Started")
        detect, rest, total = [], [], []
        for i in range(args.runs):
            t_kill, t = kill_once(c, unit, i)
            detect.append((t["InactiveEnter"] - t_kill) / 1000)
            rest.append((t["InactiveExit"] - t["InactiveEnter"]) / 1000)
            total.append((t["InactiveExit"] - t_kill) / 1000)
        print(f"load average {open('/proc/loadavg').read().split()[:3]}")
        hb.show("kill -> failed", detect, "InactiveEnterTimestamp: systemd reaped it")
        hb.show("failed -> restart", rest, "heald's part + systemd's RestartUnit, to the fork")
        hb.show("kill -> restart", total, "heal_bench.py's 'restart heald'")
        pids = [str(pid_of_unit(c, unit)), str(c.pid1), str(pid_of_unit(c, "dbus.service"))]
        print(f"perf trace of heald {pids[0]}, systemd {pids[1]}, dbus-daemon {pids[2]}")
        parts: dict[str, list[float]] = {}
        for k in range(args.perf):
            out = os.path.join(args.out, f"kill{k}.trace")
            p = subprocess.Popen(["perf", "trace", "-o", out, "-p", ",".join(pids)],
                                 stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # perf attached
            t_kill, t = kill_once(c, unit, args.runs + k)
            time.sleep(0.2)
            p.send_signal(2)
            p.wait()
            ms = milestones(out)
            split = ("; " + ", ".join(f"{b}: +{ms[b] - ms[a]:.2f}" for a, b in zip(ms, list(ms)[1:]))
                     if ms else "; milestones not found")
            print(f"  {out}: kill -> failed {(t['InactiveEnter'] - t_kill) / 1000:.1f} ms, "
                  f"failed -> restart {(t['InactiveExit'] - t['InactiveEnter']) / 1000:.1f} ms{split}")
            if ms:
                for a, b in zip(ms, list(ms)[1:]):
                    parts.setdefault(b, []).append(ms[b] - ms[a])
        for name, values in parts.items():
            print(f"  {'-> ' + name + ':':<22}median {statistics.median(values):.2f} ms, "
                  f"min {min(values):.2f}, max {max(values):.2f} (n={len(values)})")
        c.systemctl("stop", unit)
    bed.stop()
    shutil.rmtree(bed.run_dir, ignore_errors=True)
    shutil.rmtree(container.log_dir(), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
