#!/usr/bin/env python3
"""fleet_sim.py: the fleet stack at fleet scale (`make fleet-sim`: 50 instances; `make check`:
--instances 10). One moto, N moto EC2 instances in one group, N real heald daemons (each its
own IMDS identity and state directory; 20 s long polls, the default 300 s heartbeat, one
check a minute: the machine has 2 cores), the fleet stack deployed with MaxConcurrent 2,
MaxUnhealthy 20% and StormThreshold 50%. Scenarios, one PASS/FAIL line each with its figures:

1. a fifth of the group fails at once (system status alarms): all healed and verified, never
   more than MaxConcurrent stopped at once (moto's EC2 states sampled every 0.1 s), no slot
   left held, the time in rounds of one run;
2. three fifths ask at once: the breaker trips, one Fleet Remediation Paused, one page,
   nothing stopped while paused; an operator resumes: all healed, at most MaxConcurrent away;
3. one instance alarms again after each fix: its MaxRunsPerInstancePerDay (3) runs heal it,
   the next quarantines it (tag, heald.Fleet.Quarantined, one page) and stops nothing;
4. a run is killed mid-way (StopExecution while it waits for a silent heald's prepare-stop):
   Step Functions' Execution Status Change (put on the bus by the bed: moto sends none) starts
   the reaper, which gives back its slot; the next request of the group heals without taking
   anything over, and the killed run's instance was never stopped;
5. heald on 5 instances stops (silent): the 3 with a system status alarm are stopped and
   started all the same once PrepareStopSeconds ran out (the booted heald verifies); the 2 whose
   heald had asked just before (its Remediation Requested, put on the bus by the bed) escalate
   (heald.Fleet.Unanswered, a page each) and are never stopped.
make check runs scenarios 1 and 2 (--scenarios 1,2), make fleet-sim all five.

The fleet at rest is measured first (--idle seconds). Then the AWS requests the run made per service and caller, and the figures README's "At
fleet scale" scales to 10,000 instances. Ends with "N passed, N failed".
Usage: tests/integration/fleet_sim.py [--instances N] [--idle SECONDS] [--heartbeat SECONDS] [--scenarios 1,2,3,4,5]
"""
import argparse
import json
import math
import os
import shutil
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(os.path.dirname(HERE), "lib"))

import awsbed  # noqa: E402
import fleetbed  # noqa: E402
import harness  # noqa: E402

GROUP = "sim"
MAX_CONCURRENT = 2
# PollSeconds 5: a run acts only once its group's requests have been quiet for PollSeconds
# (thirty alarms reach thirty runs' count over tens of seconds on 2 cores, and each new one
# keeps every run waiting); each waiting run also polls its gate once per PollSeconds.
# StormWindowSeconds 20: scenario 3's requests stop counting towards the storm breaker before
# scenario 5 asks; RebootSeconds 30: how long a silent heald's reboot rung waits (scenario 5).
STACK_PARAMETERS = {"MaxConcurrent": str(MAX_CONCURRENT), "MaxUnhealthy": "20%", "StormThreshold": "50",
                    "PollSeconds": "5", "MaxPolls": "180", "PrepareStopSeconds": "30",
                    "RunChecksSeconds": "60", "MaxRunsPerInstancePerDay": "3", "StormWindowSeconds": "20",
                    "RestartUnitsSeconds": "20", "RebootSeconds": "30"}
RUNS_PER_DAY = 3
HEALD_SETTINGS = {"wait_time": "20s", "heartbeat_interval": "300s", "log_level": "info",
                  "check marker__interval": "60s"}
MONTH_S = 30 * 86400


def aws_requests(bed: harness.Bed) -> dict[tuple[str, str], int]:
    """What moto answered so far, per (service, caller): see moto_aws._count_requests."""
    with urllib.request.urlopen(bed.moto.endpoint + "/heald-tb/requests", timeout=10) as r:
        return {(service, caller): n for service, caller, n in json.load(r)}


class Sim:
    def __init__(self, n: int, heartbeat_s: int):
        self.bed = harness.bed()
        self.n = n
        self.heald_settings = dict(HEALD_SETTINGS, heartbeat_interval=f"{heartbeat_s}s")
        self.heartbeat_s = heartbeat_s
        self.passed = 0
        self.failed = 0
        self.run_stats: list[dict] = []  # per finished remediation: transitions, DynamoDB writes

    def result(self, ok: bool, name: str, figures: str) -> None:
        print(f"{'PASS' if ok else 'FAIL'} {name}: {figures}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1

    def deploy(self) -> None:
        t0 = time.monotonic()
        self.stack = fleetbed.Stack(self.bed, "heald-fleet-sim", FleetTagValue="sim", **STACK_PARAMETERS).deploy()
        # One at a time: moto's EC2 is not safe for concurrent RunInstances (a dict changed while
        # another request iterated it).
        self.insts = [self.stack.instance(f"sim-{i:02}", group=GROUP, **self.heald_settings) for i in range(self.n)]
        harness.wait_until(lambda: len(self.stack.group_record(GROUP).get("members", [])) == self.n, 60,
                           f"the lifecycle counted the {self.n} instances")
        self.healds_since = time.monotonic()
        self.requests_before = aws_requests(self.bed)
        print(f"# {self.n} instances and their healds up, stack deployed: {time.monotonic() - t0:.0f} s",
              flush=True)

    def idle(self, seconds: float) -> None:
        """The fleet at rest: each heald's requests per second, per service (its long polls,
        heartbeats and credential refreshes), the figures README's "At fleet scale" scales."""
        before = aws_requests(self.bed)
        time.sleep(seconds)
        after = aws_requests(self.bed)
        rates = {service: (n - before.get((service, caller), 0)) / self.n / seconds
                 for (service, caller), n in after.items() if caller == "instances"}
        print(f"# at rest ({seconds:.0f} s): per instance and month "
              + ", ".join(f"{service} {rate * MONTH_S:,.0f}" for service, rate in sorted(rates.items()) if rate),
              flush=True)
        self.report_heartbeat_gaps()

    def report_heartbeat_gaps(self) -> None:
        """The heartbeat's jitter as it ran: every gap between one heald's heartbeats (the first
        one's gap counted from the heald's start: its uptime), from the events that reached the
        bus. The jitter shortens each gap by up to a tenth of the interval, so the monthly count
        at the default 300 s is the month divided by 300 s times the measured mean gap's ratio."""
        events = self.stack.heald_events
        while True:
            before = len(events.seen)
            events.poll(wait=1)
            if len(events.seen) == before:
                break
        uptimes: dict[str, list[tuple[int, int]]] = {}
        for e in events.matching("Agent Heartbeat"):
            uptimes.setdefault(e["resources"][0], []).append((e["detail"]["seq"], e["detail"]["uptime_s"]))
        gaps = []
        for beats in uptimes.values():
            previous = None
            for seq, uptime in sorted(beats):
                if seq == 1:
                    gaps.append(uptime)
                elif previous and seq == previous[0] + 1 and uptime > previous[1]:
                    gaps.append(uptime - previous[1])
                previous = (seq, uptime)
        if not gaps:
            print("# heartbeats at rest: none reached the bus (idle shorter than the interval?)", flush=True)
            return
        mean = sum(gaps) / len(gaps)
        ratio = self.heartbeat_s / mean
        print(f"# heartbeats at rest: {len(gaps)} gaps from {len(uptimes)} healds at heartbeat_interval "
              f"{self.heartbeat_s} s: least / mean / most {min(gaps)} / {mean:.1f} / {max(gaps)} s "
              f"(interval / mean gap {ratio:.3f}); at the default 300 s: ~{MONTH_S / 300 * ratio:,.0f} "
              f"heartbeats per instance and month (8,640 without jitter)", flush=True)

    def remediate(self, insts: list[fleetbed.Instance], while_asking=None) -> tuple[list[str], fleetbed.StateSampler]:
        """Their system status alarms at once; while_asking(runs) runs before the runs are
        awaited. Returns the runs once ended, and the EC2 states sampled meanwhile."""
        s = self.stack
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        with s.sample_states(*self.insts) as ec2:
            s.alarm_at_once(insts)
            runs = s.wait_new_executions("Coordinator", known, n=len(insts), timeout=120)
            if while_asking is not None:
                while_asking(runs)
            for run in runs:
                s.wait_done(run, timeout=900)
        for run in runs:
            self.run_stats.append(self.history_figures(run))
        return runs, ec2

    def history_figures(self, run: str) -> dict:
        """State transitions (Step Functions bills each state entered) and DynamoDB writes."""
        events, token = [], None
        while True:
            page = self.stack.sfn.get_execution_history(executionArn=run, maxResults=1000,
                                                        **({"nextToken": token} if token else {}))
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                break
        writes = sum(1 for e in events if "taskScheduledEventDetails" in e and any(
            op in e["taskScheduledEventDetails"]["resource"] for op in ("putItem", "updateItem", "deleteItem")))
        return {"transitions": sum(1 for e in events if "stateEnteredEventDetails" in e), "ddb_writes": writes}

    def leases_held(self) -> int:
        return sum(1 for holders in self.stack.lease_holders().values() if holders)

    def outcome(self, runs: list[str]) -> tuple[int, int]:
        """(succeeded and verified, leases still held); how each other run ended is printed."""
        s = self.stack
        ok = 0
        for run in runs:
            status, states = s.sfn.describe_execution(executionArn=run)["status"], s.states_entered(run)
            if status == "SUCCEEDED" and "Verified" in states:
                ok += 1
            else:
                print(f"# not healed: {run.rsplit(':', 1)[-1]} {status}, last states {states[-4:]}", flush=True)
        return ok, self.leases_held()

    def scenario_failures(self) -> None:
        s = self.stack
        failing = self.insts[:self.n // 5]
        s.alert_messages()
        t0 = time.monotonic()
        runs, ec2 = self.remediate(failing)
        took = time.monotonic() - t0
        healed, held = self.outcome(runs)
        most_away = ec2.most_away()
        away_s = [sum(x[i.id] in fleetbed.AWAY for x in ec2.samples) * ec2.interval_s for i in failing]
        rounds = math.ceil(len(failing) / MAX_CONCURRENT)
        pages = s.alert_messages()
        ok = healed == len(failing) and most_away <= MAX_CONCURRENT and held == 0 and not pages
        self.result(ok, f"scenario 1 ({len(failing)} of {self.n} fail at once, MaxConcurrent {MAX_CONCURRENT}, "
                    "MaxUnhealthy 20%)",
                    f"{healed}/{len(failing)} healed and verified, at most {most_away} stopped at once "
                    f"({len(ec2.samples)} samples), {held} slots held after, {len(pages)} pages; {took:.0f} s "
                    f"for {rounds} rounds of {MAX_CONCURRENT}: {took / rounds:.0f} s a round, of which an "
                    f"instance is away {sum(away_s) / len(away_s):.0f} s")

    def scenario_storm(self) -> None:
        s = self.stack
        asking = self.insts[self.n // 5:self.n // 5 + 3 * self.n // 5]
        s.alert_messages()
        seen = {}

        def while_paused(runs: list[str]) -> None:
            with s.sample_states(*self.insts) as paused_ec2:
                s.coordinator_events.wait("Fleet Remediation Paused", timeout=60)
                time.sleep(6)  # three polls of the paused gate
            seen["stopped_while_paused"] = sum(1 for x in paused_ec2.samples if set(x.values()) != {"running"})
            seen["paused_events"] = len(s.coordinator_events.matching("Fleet Remediation Paused"))
            seen["pages"] = len([m for m in s.alert_messages() if "paused" in m])
            seen["running"] = sum(1 for r in runs if s.sfn.describe_execution(executionArn=r)["status"] == "RUNNING")
            seen["resumed_at"] = time.monotonic()
            # The operator resumes the group (README: Blast-radius limits and the storm breaker).
            s.ddb.update_item(TableName=s.resources["LeaseTable"], Key={"pk": {"S": f"fleet#{GROUP}"}},
                              UpdateExpression="SET paused = :f, asked_x100 = :z REMOVE askers",
                              ExpressionAttributeValues={":f": {"BOOL": False}, ":z": {"N": "0"}})

        runs, ec2 = self.remediate(asking, while_paused)
        took = time.monotonic() - seen["resumed_at"]
        healed, held = self.outcome(runs)
        most_away = ec2.most_away()
        ok = (seen["paused_events"] == 1 and seen["pages"] == 1 and seen["stopped_while_paused"] == 0
              and seen["running"] == len(asking) and healed == len(asking) and held == 0
              and most_away <= MAX_CONCURRENT)
        self.result(ok, f"scenario 2 ({len(asking)} of {self.n} ask at once, StormThreshold 50%)",
                    f"{seen['paused_events']} Fleet Remediation Paused, {seen['pages']} page, "
                    f"{seen['stopped_while_paused']} samples with an instance away while paused, "
                    f"{seen['running']} runs waiting; resumed: {healed}/{len(asking)} healed and verified "
                    f"in {took:.0f} s, at most {most_away} away at once, {held} slots held after")

    def scenario_flapping(self) -> None:
        s = self.stack
        flapping = self.insts[-1]
        s.alert_messages()
        t0 = time.monotonic()
        healed = 0
        for _ in range(RUNS_PER_DAY):
            runs, _ = self.remediate([flapping])
            healed += self.outcome(runs)[0]
        with s.sample_states(flapping) as ec2:
            (refused,), _ = self.remediate([flapping])
        took = time.monotonic() - t0
        failed = [e for e in s.coordinator_events.matching("Fleet Remediation Failed", flapping.id)
                  if e["detail"]["execution"] == refused]
        if not failed:
            s.coordinator_events.wait("Fleet Remediation Failed", flapping.id, timeout=30)
            failed = [e for e in s.coordinator_events.matching("Fleet Remediation Failed", flapping.id)
                      if e["detail"]["execution"] == refused]
        error = failed[-1]["detail"]["error"] if failed else "none"
        tags = {t["Key"]: t["Value"] for t in s.ec2.describe_tags(Filters=[
            {"Name": "resource-id", "Values": [flapping.id]}])["Tags"]}
        quarantined = "heald:quarantined" in tags
        pages = [m for m in s.alert_messages() if flapping.id in m]
        stopped = ec2.states(flapping.id) != {"running"}
        ok = (healed == RUNS_PER_DAY and error == "heald.Fleet.Quarantined" and quarantined and len(pages) == 1
              and not stopped)
        self.result(ok, f"scenario 3 (one of {self.n} alarms again after each fix, MaxRunsPerInstancePerDay "
                    f"{RUNS_PER_DAY})", f"{healed}/{RUNS_PER_DAY} runs healed and verified (stop-start, the "
                    f"system status ladder), the next {error}, tagged {'yes' if quarantined else 'no'}, "
                    f"{'stopped' if stopped else 'not stopped'}, {len(pages)} page; {took:.0f} s")

    def scenario_reaped(self) -> None:
        s = self.stack
        killed, next_one = self.insts[-2], self.insts[-3]
        killed.heald.stop()  # silent: its run waits PrepareStopSeconds for prepare-stop's answer
        s.alert_messages()
        t0 = time.monotonic()
        with s.sample_states(killed, next_one) as ec2:
            known = {e["executionArn"] for e in s.executions("Coordinator")}
            s.alarm(killed, "system")
            (run,) = s.wait_new_executions("Coordinator", known, timeout=120)
            harness.wait_until(lambda: "PrepareStop" in s.states_entered(run), 120, "the run waits for prepare-stop")
            held_before = run in s.lease_holders().get(f"group#{GROUP}", [])
            s.sfn.stop_execution(executionArn=run, error="Operator", cause="killed mid-run (fleet_sim scenario 4)")
            reapers = {e["executionArn"] for e in s.executions("Reaper")}
            s.execution_ended(run)
            (reaper,) = s.wait_new_executions("Reaper", reapers, timeout=60)
            reaped = s.wait_done(reaper, timeout=120)["status"] == "SUCCEEDED"
            still_held = sum(1 for holders in s.lease_holders().values() if run in holders)
            (next_run,), _ = self.remediate([next_one])
        took = time.monotonic() - t0
        next_states = s.states_entered(next_run)
        next_ok = (s.sfn.describe_execution(executionArn=next_run)["status"] == "SUCCEEDED" and "Verified" in next_states
                   and "DropEndedHolders" not in next_states)
        held = self.leases_held()
        killed_stopped = ec2.states(killed.id) != {"running"}
        ok = held_before and reaped and still_held == 0 and next_ok and held == 0 and not killed_stopped
        self.result(ok, f"scenario 4 (a run killed mid-way, StopExecution, in a group of {self.n})",
                    f"it held its group's slot: {'yes' if held_before else 'no'}; reaper "
                    f"{'SUCCEEDED' if reaped else 'did not succeed'}, {still_held} leases of the killed run left; "
                    f"the next request {'healed and verified without taking anything over' if next_ok else 'did not heal'}"
                    f"; {held} slots held after; the killed run's instance "
                    f"{'stopped' if killed_stopped else 'never stopped'}; {took:.0f} s")

    def scenario_silent(self) -> None:
        s = self.stack
        # The requests of scenario 3 stop counting towards the breaker StormWindowSeconds after
        # their runs: five asking of the group at once is then at, not over, StormThreshold.
        harness.wait_until(lambda: s.group_record(GROUP).get("asked_x100", 0) == 0, 120,
                           "the group's earlier requests forgotten")
        silent = self.insts[self.n // 5:self.n // 5 + 5]
        by_alarm, by_heald = silent[:3], silent[3:]
        for inst in silent:
            inst.heald.stop()
        s.alert_messages()
        t0 = time.monotonic()

        def heald_asked() -> None:
            for inst in by_heald:
                s.put_aws_event(fleetbed.HEALD_SOURCE, "Remediation Requested",
                                [f"arn:aws:ec2:{harness.REGION}:{awsbed.ACCOUNT_ID}:instance/{inst.id}"], {
                                    "check": "marker", "check_type": "file_age", "target": inst.marker,
                                    "observed": "7200 s old", "threshold": "3600 s", "action": "request",
                                    "action_target": "", "detected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                    "message": "the marker is older than 1h", "dry_run": False})
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        with s.sample_states(*silent) as ec2:
            s.alarm_at_once(by_alarm)
            heald_asked()
            runs = s.wait_new_executions("Coordinator", known, n=len(silent), timeout=120)
            for run in runs:
                s.wait_done(run, timeout=900)
        took = time.monotonic() - t0
        for run in runs:
            self.run_stats.append(self.history_figures(run))
        of = {s.sfn.describe_execution(executionArn=r)["input"]: r for r in runs}
        run_of = {inst.id: next(r for i, r in of.items() if inst.id in i) for inst in silent}
        healed = sum(1 for inst in by_alarm
                     if s.sfn.describe_execution(executionArn=run_of[inst.id])["status"] == "SUCCEEDED"
                     and "Verified" in s.states_entered(run_of[inst.id]))
        errors = []
        for inst in by_heald:
            s.coordinator_events.wait("Fleet Remediation Failed", inst.id, timeout=30)
            errors += [e["detail"]["error"] for e in s.coordinator_events.matching("Fleet Remediation Failed", inst.id)
                       if e["detail"]["execution"] == run_of[inst.id]]
        escalated = errors.count("heald.Fleet.Unanswered")
        never_stopped = sum(1 for inst in by_heald if ec2.states(inst.id) == {"running"})
        pages = s.alert_messages()
        held = self.leases_held()
        most_away = ec2.most_away()
        ok = (healed == len(by_alarm) and escalated == len(by_heald) and never_stopped == len(by_heald)
              and len(pages) == len(by_heald) and held == 0 and most_away <= MAX_CONCURRENT)
        self.result(ok, f"scenario 5 (heald silent on 5 of {self.n}: 3 system status alarms, 2 heald requests)",
                    f"{healed}/{len(by_alarm)} alarms' instances stopped, started and verified by the booted "
                    f"heald after PrepareStopSeconds; {escalated}/{len(by_heald)} heald requests escalated "
                    f"({', '.join(errors) or 'no Fleet Remediation Failed'}), {never_stopped}/{len(by_heald)} never stopped, {len(pages)} pages; "
                    f"at most {most_away} away at once, {held} slots held after; {took:.0f} s")

    def report_requests(self) -> None:
        """The AWS requests of the scenarios per service and caller, and their rates."""
        elapsed = time.monotonic() - self.healds_since
        now = aws_requests(self.bed)
        per_service: dict[str, dict[str, int]] = {}
        for (service, caller), n in now.items():
            made = n - self.requests_before.get((service, caller), 0)
            if made:
                per_service.setdefault(service, {})[caller] = made
        print(f"# AWS requests of the scenarios ({elapsed:.0f} s, {self.n} healds), per service (callers):")
        for service, callers in sorted(per_service.items(), key=lambda kv: -sum(kv[1].values())):
            detail = ", ".join(f"{caller} {n}" for caller, n in sorted(callers.items()))
            print(f"#   {service:16} {sum(callers.values()):6}  ({detail})")
        sqs_per_instance_s = per_service.get("sqs", {}).get("instances", 0) / self.n / elapsed
        def spread(key: str) -> str:
            values = sorted(r[key] for r in self.run_stats) or [0]
            return f"{values[0]} / {sum(values) / len(values):.0f} / {values[-1]}"
        print(f"# per instance: {sqs_per_instance_s * 3600:.0f} SQS requests an hour "
              f"(~{sqs_per_instance_s * MONTH_S:,.0f} a month; the healds also received and deleted the "
              f"commands); per remediation ({len(self.run_stats)} runs, least / mean / most: the runs that "
              f"waited for a slot or a pause polled): {spread('transitions')} state transitions, "
              f"{spread('ddb_writes')} DynamoDB writes", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description="the fleet stack with N real healds")
    ap.add_argument("--instances", type=int, default=50)
    # 310 s: each heald's first heartbeat (300 s after its start) falls in the window.
    ap.add_argument("--idle", type=float, default=310, help="seconds of the fleet at rest, measured")
    ap.add_argument("--heartbeat", type=int, default=300,
                    help="the healds' heartbeat_interval in seconds (a shorter one measures the jitter sooner)")
    ap.add_argument("--scenarios", default="1,2,3,4,5", help="which scenarios, in this order (make check: 1,2)")
    args = ap.parse_args()
    sim = Sim(args.instances, args.heartbeat)
    print(f"# run dir {sim.bed.run_dir}", flush=True)
    try:
        sim.deploy()
        if args.idle:
            sim.idle(args.idle)
        scenarios = {"1": sim.scenario_failures, "2": sim.scenario_storm, "3": sim.scenario_flapping,
                     "4": sim.scenario_reaped, "5": sim.scenario_silent}
        for scenario in (scenarios[k] for k in args.scenarios.split(",") if k):
            try:
                scenario()
            except Exception as e:  # noqa: BLE001 - one scenario's failure is its FAIL line
                sim.result(False, scenario.__name__, f"{type(e).__name__}: {e}")
        sim.report_requests()
    finally:
        if hasattr(sim, "stack"):
            sim.stack.close()
        sim.bed.stop()
    print(f"{sim.passed} passed, {sim.failed} failed", flush=True)
    if not sim.failed and os.environ.get("HEALD_IT_KEEP") != "1":
        shutil.rmtree(sim.bed.run_dir, ignore_errors=True)
    return 1 if sim.failed else 0


if __name__ == "__main__":
    sys.exit(main())
