#!/usr/bin/env python3
"""soak.py: time itself, tested. heald installed from its .deb in a systemd container, under
its packaged unit (only WatchdogSec shortened, by a drop-in), its state directory on a small
tmpfs, against moto with IAM auth through the fault proxy, for --minutes (default
$SOAK_MINUTES, else 15) while a driver does what production does: kills the watched unit,
reloads heald every minute, kills heald once, cuts AWS off and lets it back, fills the state
file system and frees it, and sends commands (valid, oversized, duplicated, expired, a reused
id). Then it settles (AWS back, outbox and queue drained) and judges, one line per figure:

    heald's PID changed only where the driver killed it
    no restart by the watchdog (systemd's "Watchdog timeout" lines; NRestarts less the kills)
    heartbeat seq contiguous on the bus
    every command message answered exactly once (and as it should be)
    the budget on disk (policy.json) matches the actions taken and the kills
    RSS and open fds flat: first minute after the warm-up vs the last minute
    no secret (secret key, session token, signature, task token) in the container's journal

Output as the other runners': PASS/FAIL lines (SKIP where containers or the bed cannot run),
then "N passed, N failed, N skipped"; exit 1 on any failure. make soak runs the full form,
make check (tests/run-all.sh) a short one. Every loop is bounded in count and time; all
traffic stays on 127.0.0.1.
Logs (container console, heald's journal, soak.json with the samples and the commands sent)
go to --logdir, kept; without it to a temporary directory, removed unless a figure failed.
Usage: tests/system/soak.py [--minutes M] [--logdir DIR] [--watchdog-sec S]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

import container  # puts tests/lib on the path
import testlib
from container import Container, ContainerError

UNIT = "heald.service"
CONFIG = "/etc/heald/heald.ini"
STATE_DIR = "/var/lib/heald"
STATE_FS_SIZE = "8M"
FILLER = f"{STATE_DIR}/soak-filler"
WATCHDOG_SEC = 5  # the packaged 30 s, shortened so that a soak sees many periods (--watchdog-sec)
WATCHED = "crashy.service"
ANSWERS = ("Command Succeeded", "Command Failed", "Command Rejected")
RSS_SLACK = 1.10  # the last minute's peak may exceed the first's by 10 % (allocator noise)
FD_SLACK = 2


def ini(config: dict) -> str:
    return "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) + "\n"
                   for s, kv in config.items())


class Plan:
    """When the driver does what, scaled to the run's length (seconds from the start)."""

    def __init__(self, duration: float):
        self.duration = duration
        self.window = min(60.0, duration / 4)  # "a minute" for the first/last comparison
        self.warmup = min(60.0, duration / 6)
        self.reload_every = min(60.0, duration / 4)
        self.kill_unit_every = max(15.0, duration / 10)
        self.command_every = max(8.0, duration / 12)
        outage = min(60.0, duration / 6)
        # Disruptions stay out of the first and last windows, which measure RSS and fds.
        cuts = [0.25] + ([0.6] if duration >= 600 else [])
        self.aws_cuts = [(duration * f, duration * f + outage) for f in cuts]
        self.disk_full = (duration * 0.45, duration * 0.45 + outage)
        self.kill_heald_at = duration * 0.7


class Soak:
    def __init__(self, c: Container, bed, agent, plan: Plan, watchdog_sec: int):
        self.c, self.bed, self.agent, self.plan = c, bed, agent, plan
        self.watchdog_sec = watchdog_sec
        self.queue = None
        self.t0 = 0.0
        self.events: list[dict] = []
        self.samples: list[dict] = []  # t, pid, rss_kib, fds
        self.pids: list[int] = []
        self.heald_kills = 0
        self.unit_kills = 0
        self.reloads = 0
        self.sent: list[dict] = []  # kind, command_id, message_id
        self.notes: list[str] = []
        self.settled_seq = None  # the last heartbeat made when the outbox was empty
        self.invalid: list[str] = []  # events that do not match their schema or envelope

    # ---- set-up -----------------------------------------------------------------------
    def install(self, deb: str) -> None:
        """The watched unit, heald's state on a small tmpfs, the watchdog drop-in, the config,
        then dpkg -i: the package's own unit starts heald."""
        c = self.c
        c.install_units(WATCHED)
        c.systemctl("start", WATCHED)
        # StateDirectory= makes heald.service require this mount (RequiresMountsFor).
        c.write_file("/etc/systemd/system/var-lib-heald.mount",
                     "[Unit]\nDescription=soak: heald's state on a small file system\n\n"
                     f"[Mount]\nWhat=tmpfs\nWhere={STATE_DIR}\nType=tmpfs\n"
                     f"Options=size={STATE_FS_SIZE},mode=0700\n")
        c.write_file("/etc/systemd/system/heald.service.d/soak-watchdog.conf",
                     f"[Service]\nWatchdogSec={self.watchdog_sec}s\n")
        c.systemctl("daemon-reload")
        c.systemctl("start", "var-lib-heald.mount")
        self.queue = self.bed.fleet.command_queue()
        config = {s: dict(kv) for s, kv in self.agent.config.items()}
        config["agent"].update(state_dir=STATE_DIR, heartbeat_interval="1s")
        config["sqs"] = {"queue_url": f"{self.bed.proxy.endpoint}/{{account_id}}/heald-{{instance_id}}",
                         "wait_time": "2s", "visibility_timeout": "30s"}
        config["commands"] = {"allow": "ping, run-checks"}
        # A budget no soak spends: every kill is answered by one restart, all on disk.
        config[f"check {WATCHED.removesuffix('.service')}"] = {
            "type": "unit", "unit": WATCHED, "action": "restart-unit",
            "max_actions": "100", "action_window": "24h"}
        c.write_file(CONFIG, ini(config), mode=0o600)
        out = c.run(["dpkg", "-i", "--force-confdef", "--force-confold",
                     f"/opt/heald/build/{deb}"], timeout=120)
        try:
            c.wait_for(lambda: c.show(UNIT, "ActiveState") == "active" and self.main_pid(), 30,
                       "heald.service active")
        except ContainerError as e:
            raise ContainerError(f"{e}\ndpkg -i said:\n{out.stdout}{out.stderr}\n"
                                 f"{c.journal(UNIT, lines=30)}") from None

    # ---- probes -----------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self.t0

    def main_pid(self) -> int:
        return int(self.c.show(UNIT, "MainPID") or 0)

    def sample(self) -> None:
        pid = self.main_pid()
        if pid and (not self.pids or self.pids[-1] != pid):
            self.pids.append(pid)
        if not pid:
            return
        out = self.c.run(["sh", "-c", f"grep VmRSS /proc/{pid}/status; ls /proc/{pid}/fd | wc -l"],
                         check=False).stdout.split()
        if len(out) >= 4 and out[1].isdigit() and out[3].isdigit():
            self.samples.append({"t": round(self.now(), 1), "pid": pid, "rss_kib": int(out[1]),
                                 "fds": int(out[3])})

    def collect(self) -> int:
        """What is on the tap now, schema-validated by the harness; at most 1,000 events a
        call, since heald goes on beating while they are read."""
        got = []
        for _ in range(100):
            batch = self.agent.tap.receive(10, wait=0)
            if not batch:
                break
            got += batch
        for e in got:
            try:
                self.agent.validate(e)
                self.events.append(e)
            except AssertionError as err:  # a finding, not the end of the run
                self.invalid.append(str(err)[:300])
        return len(got)

    # ---- the driver's actions ---------------------------------------------------------
    def kill_unit(self) -> None:
        """kill -9 of the watched unit's main process, counted only if it was there to kill
        (heald may be restarting it right now)."""
        pid = self.c.show(WATCHED, "MainPID")
        if self.c.show(WATCHED, "ActiveState") == "active" and pid not in ("", "0"):
            if self.c.run(["kill", "-KILL", pid], check=False).returncode == 0:
                self.unit_kills += 1

    def reload(self) -> None:
        cp = self.c.run(["systemctl", "reload", UNIT], check=False, timeout=30)
        if cp.returncode == 0:
            self.reloads += 1
        else:
            self.notes.append(f"t={self.now():.0f}s: systemctl reload failed: {cp.stderr.strip()}")

    def kill_heald(self) -> None:
        old = self.main_pid()
        if not old:
            self.notes.append(f"t={self.now():.0f}s: heald not running when the driver meant to kill it")
            return
        self.c.systemctl("kill", "-s", "KILL", UNIT)
        self.heald_kills += 1
        try:
            self.c.wait_for(lambda: self.main_pid() not in (0, old), 20, "heald restarted")
            self.pids.append(self.main_pid())
        except ContainerError as e:
            self.notes.append(f"t={self.now():.0f}s: after kill -9: {e}")

    def fill_disk(self) -> None:
        self.c.run(["dd", "if=/dev/zero", f"of={FILLER}", "bs=64k"], check=False, timeout=60)

    def free_disk(self) -> None:
        self.c.run(["rm", "-f", FILLER], check=False)

    def send(self, kind: str, n: int) -> None:
        """One command message (two for "duplicate") of this kind."""
        import awsbed
        iid = self.bed.imds.instance_id
        if kind == "reused":
            valid = [s for s in self.sent if s["kind"] == "valid"]
            if not valid:
                kind = "valid"
        if kind == "valid":
            cmd = awsbed.new_command("ping", instance_id=iid, command_id=f"soak-{n}")
        elif kind == "duplicate":
            cmd = awsbed.new_command("ping", instance_id=iid, command_id=f"soak-{n}-dup")
        elif kind == "expired":
            cmd = awsbed.new_command("ping", instance_id=iid, command_id=f"soak-{n}-expired", ttl=-60)
        elif kind == "oversized":
            cmd = awsbed.new_command("ping", instance_id=iid, command_id=f"soak-{n}-big",
                                     reason="x" * (100 * 1024))
        else:  # reused: another command under the id of a valid one answered before
            cmd = awsbed.new_command("run-checks", instance_id=iid,
                                     command_id=valid[0]["command_id"])
        for _ in range(2 if kind == "duplicate" else 1):
            self.sent.append({"kind": kind, "command_id": cmd["command_id"],
                              "message_id": self.queue.send(cmd), "t": round(self.now(), 1)})

    # ---- the run ------------------------------------------------------------------------
    def drive(self) -> None:
        p = self.plan
        kinds = ("valid", "duplicate", "expired", "oversized", "reused")
        self.t0 = time.monotonic()
        next_reload, next_kill, next_cmd, n_cmd = p.reload_every, p.kill_unit_every / 2, 1.0, 0
        next_sample = next_collect = 0.0
        cuts = list(p.aws_cuts)
        aws_down = disk_full = heald_killed = False
        while self.now() < p.duration:
            t = self.now()
            if t >= next_sample:
                self.sample()
                next_sample = t + 5
            if t >= next_collect:
                self.collect()
                next_collect = t + 5
            if t >= next_reload:
                self.reload()
                next_reload += p.reload_every
            if t >= next_kill:
                self.kill_unit()
                next_kill += p.kill_unit_every
            if t >= next_cmd:
                self.send(kinds[n_cmd % len(kinds)], n_cmd)
                n_cmd += 1
                next_cmd += p.command_every
            if cuts and not aws_down and t >= cuts[0][0]:
                self.bed.proxy.down()
                aws_down = True
            if aws_down and t >= cuts[0][1]:
                self.bed.proxy.up()
                aws_down = False
                cuts.pop(0)
            if not disk_full and p.disk_full[0] <= t < p.disk_full[1]:
                self.fill_disk()
                disk_full = True
            if disk_full and t >= p.disk_full[1]:
                self.free_disk()
                disk_full = False
            if not heald_killed and t >= p.kill_heald_at:
                self.kill_heald()
                heald_killed = True
            time.sleep(0.5)
        self.bed.proxy.up()
        self.free_disk()

    def settle(self, timeout: float) -> None:
        """AWS is back: wait (bounded) until heald's outbox and the command queue are empty,
        note the last heartbeat made by then (all up to it have reached the bus), then read
        what is on the tap (heald goes on beating meanwhile, so that is bounded too)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self.collect()
            state = self.c.show(UNIT, "ActiveState")
            if state in ("failed", "inactive"):
                self.notes.append(f"not settled: heald.service is {state}")
                break
            cp = self.c.run(["heald", "status", "--json"], check=False, timeout=15)
            try:
                last = (json.loads(cp.stdout)["outbox_depth"], self.queue.depth())
            except (ValueError, KeyError):
                last = (f"heald status: {cp.stderr.strip()[:200]}", self.queue.depth())
            if last == (0, (0, 0)):
                seq = self.c.run(["cat", f"{STATE_DIR}/heartbeat.seq"], check=False).stdout
                self.settled_seq = int(seq) if seq.strip().isdigit() else None
                break
            time.sleep(1)
        else:
            self.notes.append(f"not settled after {timeout:.0f}s: (outbox depth, queue (visible, "
                              f"in flight)) = {last}")
        deadline = time.monotonic() + 30
        while self.collect() and time.monotonic() < deadline:
            pass

    # ---- figures: (ok, line) ----------------------------------------------------------
    def fig_pid(self) -> tuple[bool, str]:
        changes = len(self.pids) - 1
        return (changes == self.heald_kills,
                f"heald PID changes: {changes}, killed by the test: {self.heald_kills} "
                f"(PIDs {self.pids[:8]}{' ...' if len(self.pids) > 8 else ''})")

    def journal_text(self, *args: str) -> str:
        """journalctl with these arguments, bytes outside printable ASCII as "?" (a message
        may hold any bytes; every secret is ASCII)."""
        return self.c.run(["sh", "-c", "journalctl --no-pager \"$@\" | LC_ALL=C tr -c '\\11\\12\\40-\\176' '?'",
                           "journalctl", *args], check=False, timeout=120).stdout

    def fig_watchdog(self) -> tuple[bool, str]:
        text = self.journal_text("-o", "cat", "-u", UNIT)
        timeouts = len(re.findall(r"Watchdog timeout", text))
        n_restarts = int(self.c.show(UNIT, "NRestarts") or 0)
        return (timeouts == 0 and n_restarts <= self.heald_kills,
                f"watchdog restarts: {timeouts} (WatchdogSec={self.watchdog_sec}s; NRestarts "
                f"{n_restarts}, of which killed by the test {self.heald_kills}; "
                f"now {self.c.show(UNIT, 'ActiveState')})")

    def fig_heartbeats(self) -> tuple[bool, str]:
        seqs = {e["detail"]["seq"] for e in self.events if e["detail-type"] == "Agent Heartbeat"}
        if not seqs:
            return False, "heartbeat seq gaps: no heartbeat reached the bus"
        # Past settled_seq heartbeats may still be on their way; up to it none may be missing.
        top = self.settled_seq or max(seqs)
        missing = sorted(set(range(min(seqs), top + 1)) - seqs)
        return (not missing,
                f"heartbeat seq gaps: {len(missing)} missing of {min(seqs)}..{top} "
                f"({len(seqs)} received){f'; first missing {missing[:10]}' if missing else ''}")

    def fig_commands(self) -> tuple[bool, str]:
        first_hand: dict[str, int] = {}  # command_id -> Succeeded/Failed not redelivered
        redelivered: dict[str, int] = {}
        rejected: dict[str, list[str]] = {}  # message_id -> reasons
        for e in self.events:
            d, kind = e["detail"], e["detail-type"]
            if kind == "Command Rejected":
                rejected.setdefault(d["message_id"], []).append(d["reason"])
            elif kind in ANSWERS:
                into = redelivered if d.get("redelivered") else first_hand
                into[d["command_id"]] = into.get(d["command_id"], 0) + 1
        want_rejection = {"expired": "expired", "oversized": "oversized", "reused": "id-reused"}
        problems = {}  # message_id -> what is wrong with its answer
        for s in self.sent:
            cid, mid, kind = s["command_id"], s["message_id"], s["kind"]
            reasons = rejected.get(mid, [])
            # A duplicate's two messages are one problem: named by the first one's time.
            sent_at = s["t"]
            if kind == "duplicate":
                sent_at = next(x["t"] for x in self.sent if x["command_id"] == cid)
            where = f"{kind} {cid} (t={sent_at}s)"
            if kind in want_rejection:
                if reasons != [want_rejection[kind]]:
                    problems[mid] = f"{where}: rejections {reasons}, want ['{want_rejection[kind]}']"
            elif reasons or first_hand.get(cid, 0) != 1:
                problems[mid] = f"{where}: {first_hand.get(cid, 0)} answers, rejections {reasons}"
            elif kind == "duplicate" and not redelivered.get(cid):
                problems[mid] = f"{where}: one of its two messages got no answer"
        said = list(dict.fromkeys(problems.values()))  # a duplicate's two messages say it once
        return (not problems and bool(self.sent),
                f"commands answered exactly once: {len(self.sent) - len(problems)} of "
                f"{len(self.sent)} messages ({', '.join(sorted({s['kind'] for s in self.sent}))})"
                + (f"; {'; '.join(said[:6])}" if said else ""))

    def fig_budget(self) -> tuple[bool, str]:
        check = WATCHED.removesuffix(".service")
        cp = self.c.run(["cat", f"{STATE_DIR}/policy.json"], check=False)
        try:
            on_disk = len(json.loads(cp.stdout)["checks"][check]["actions"])
        except (ValueError, KeyError, TypeError):
            on_disk = None
        started = sum(1 for e in self.events if e["detail-type"] == "Remediation Started"
                      and e["detail"]["check"] == check and not e["detail"]["dry_run"])
        return (on_disk == started == self.unit_kills,
                f"budget vs actions: policy.json holds {on_disk} actions for {check}, "
                f"Remediation Started {started}, {WATCHED} killed {self.unit_kills} times")

    def fig_resources(self) -> list[tuple[bool, str]]:
        p = self.plan
        first = [s for s in self.samples if p.warmup <= s["t"] < p.warmup + p.window]
        last = [s for s in self.samples if s["t"] >= p.duration - p.window]
        if not first or not last:
            return [(False, f"RSS and fds: too few samples (first {len(first)}, last {len(last)})")]
        rss = (max(s["rss_kib"] for s in first), max(s["rss_kib"] for s in last))
        fds = (max(s["fds"] for s in first), max(s["fds"] for s in last))
        span = f"first {p.window:.0f} s after a {p.warmup:.0f} s warm-up vs last {p.window:.0f} s"
        return [(rss[1] <= rss[0] * RSS_SLACK,
                 f"RSS: {rss[0]} KiB vs {rss[1]} KiB (peaks, {span})"),
                (fds[1] <= fds[0] + FD_SLACK,
                 f"open fds: {fds[0]} vs {fds[1]} (peaks, {span})")]

    def fig_secrets(self) -> tuple[bool, str]:
        text = self.journal_text("-o", "verbose")
        try:
            with open(self.c.console_log, errors="replace") as f:
                text += f.read()
        except OSError:
            pass
        secrets = self.bed.secrets()
        # Signatures are many: compared as whole tokens; the few others as substrings.
        tokens = set(re.findall(r"[0-9a-f]{64}", text))
        found = {s for s in secrets if (len(s) == 64 and s in tokens) or
                 (len(s) != 64 and s in text)}
        return (not found,
                f"secrets in logs: {len(found)} of {len(secrets)} issued secrets found in "
                f"{len(text) // 1024} KiB of journal and console")

    def fig_valid(self) -> tuple[bool, str]:
        return (not self.invalid,
                f"events valid: {len(self.invalid)} of {len(self.events) + len(self.invalid)} "
                f"do not match their schema{f'; first: {self.invalid[0]}' if self.invalid else ''}")

    def figures(self) -> list[tuple[bool, str]]:
        return [self.fig_pid(), self.fig_watchdog(), self.fig_heartbeats(), self.fig_commands(),
                self.fig_budget(), *self.fig_resources(), self.fig_secrets(), self.fig_valid()]


def build_deb() -> str:
    cp = subprocess.run(["make", "-s", "deb"], cwd=container.REPO, capture_output=True,
                        text=True, timeout=300)
    if cp.returncode != 0:
        raise AssertionError(f"make deb failed:\n{cp.stdout}{cp.stderr}")
    version = re.search(r"(?m)^VERSION\s*:=\s*(\S+)",
                        open(os.path.join(container.REPO, "Makefile")).read()).group(1)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                          text=True).stdout.strip()
    return f"heald_{version}_{arch}.deb"


def run(minutes: float, watchdog_sec: int) -> list[tuple[bool, str]]:
    """Set up, drive, settle and judge; raises unittest.SkipTest where it cannot run."""
    container.require()
    if not os.access(os.path.join(container.BUILD_DIR, "heald"), os.X_OK):
        raise unittest.SkipTest("build/heald is not built (make)")
    try:
        harness = testlib.import_bed()
    except ImportError as e:
        raise unittest.SkipTest(f"the integration bed cannot run: {e}") from None
    deb = build_deb()
    bed = harness.bed()
    bed.reset()
    agent = harness.Agent(bed, "soak")
    plan = Plan(minutes * 60)
    with Container("soak") as c:
        soak = Soak(c, bed, agent, plan, watchdog_sec)
        t0 = time.monotonic()
        soak.install(deb)
        print(f"set up in {time.monotonic() - t0:.0f}s; driving for {plan.duration:.0f}s",
              flush=True)
        try:
            soak.drive()
            soak.settle(timeout=min(120.0, 30 + plan.duration / 10))
            results = soak.figures()
        finally:
            with open(os.path.join(container.log_dir(), "soak.json"), "w") as f:
                json.dump({"samples": soak.samples, "sent": soak.sent, "pids": soak.pids,
                           "unit_kills": soak.unit_kills, "reloads": soak.reloads,
                           "notes": soak.notes}, f, indent=1)
            with open(os.path.join(container.log_dir(), "heald-journal.txt"), "w") as f:
                f.write(soak.journal_text("-o", "short-precise", "-u", UNIT))
        for note in soak.notes:
            print(f"note: {note}")
        print(f"driver: {soak.unit_kills} kills of {WATCHED}, {soak.reloads} reloads, "
              f"{soak.heald_kills} kill -9 of heald, {len(plan.aws_cuts)} AWS cuts, 1 full disk, "
              f"{len(soak.sent)} command messages, {len(soak.events)} events read")
        return results


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # unwind: the container is powered off


def main() -> int:
    ap = argparse.ArgumentParser(description="heald soak test (systemd-nspawn, moto)")
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES") or 15))
    ap.add_argument("--logdir", help="keep logs here (default: a temporary directory)")
    ap.add_argument("--watchdog-sec", type=int, default=WATCHDOG_SEC,
                    help="the drop-in's WatchdogSec (0: off, to see the other figures on a heald "
                         "whose watchdog is broken)")
    args = ap.parse_args()
    if args.logdir:
        os.makedirs(args.logdir, exist_ok=True)
        container.LOG_DIR = args.logdir
    signal.signal(signal.SIGTERM, _terminate)
    try:
        results = run(args.minutes, args.watchdog_sec)
    except unittest.SkipTest as e:
        print(f"SKIP soak: {e}")
        print("0 passed, 0 failed, 1 skipped")
        return 0
    except AssertionError as e:
        print(f"FAIL soak: {e}")
        print("0 passed, 1 failed, 0 skipped")
        return 1
    finally:
        container.shutdown_all()
    for ok, line in results:
        print(f"{'PASS' if ok else 'FAIL'} soak: {line}")
    failed = sum(1 for ok, _ in results if not ok)
    if args.logdir or failed:
        print(f"logs: {container.log_dir()}")
    else:
        shutil.rmtree(container.log_dir(), ignore_errors=True)
    print(f"{len(results) - failed} passed, {failed} failed, 0 skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
