"""test_fleet.py: the fleet stack (packaging/cloudformation/heald-fleet.yaml) deployed into
moto (IAM auth on, state machines executed) and run end to end with real heald daemons as
the instances. fleetbed.py says what the bed does in AWS's place.
"""
import glob
import json
import os
import re
import threading
import time
import unittest
import urllib.request

import awsbed
import fleetbed
import harness
import moto_aws


_requests_before: dict = {}

# The EC2 states in which an instance is out of service during a stop-start.


def aws_requests() -> dict[tuple[str, str], int]:
    """What moto answered so far, per (service, caller): see moto_aws._count_requests."""
    with urllib.request.urlopen(harness.bed().moto.endpoint + "/heald-tb/requests", timeout=10) as r:
        return {(service, caller): n for service, caller, n in json.load(r)}


def setUpModule():  # noqa: N802 - unittest API
    _requests_before.update(aws_requests())


def tearDownModule():  # noqa: N802 - unittest API
    """The AWS requests the module's run made, per service (moto counts them)."""
    now = aws_requests()
    per_service: dict[str, dict[str, int]] = {}
    for (service, caller), n in now.items():
        made = n - _requests_before.get((service, caller), 0)
        if made:
            per_service.setdefault(service, {})[caller] = made
    print("\n# AWS requests of the fleet run, per service (callers):", flush=True)
    for service, callers in sorted(per_service.items(), key=lambda kv: -sum(kv[1].values())):
        detail = ", ".join(f"{caller} {n}" for caller, n in sorted(callers.items()))
        print(f"#   {service:16} {sum(callers.values()):6}  ({detail})", flush=True)


class FleetCase(harness.BedTestCase):
    def setUp(self):
        super().setUp()
        self.stack = fleetbed.stack()

    def instance(self, name: str, stack: fleetbed.Stack | None = None, **kw) -> fleetbed.Instance:
        """An instance of the fleet for this test; its heald goes with the test."""
        inst = (stack or self.stack).instance(name, **kw)
        self.addCleanup(inst.heald.kill9)
        return inst

    def run_of(self, trigger, n: int = 1, stack: fleetbed.Stack | None = None) -> list[str]:
        """The coordinator executions trigger() starts, once they ended."""
        s = stack or self.stack
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        trigger()
        runs = s.wait_new_executions("Coordinator", known, n)
        for run in runs:
            s.wait_done(run)
        return runs

    def requesting(self, name: str, **kw) -> tuple[fleetbed.Instance, str]:
        """An instance whose heald asks the fleet for help (a check with action = request,
        failing once its marker file gets old), and that marker."""
        marker = os.path.join(self.bed.run_dir, f"fleet-{name}-wants-help")
        open(marker, "w").close()
        inst = self.instance(name, **{
            "check wants-fleet__type": "file_age", "check wants-fleet__path": marker,
            "check wants-fleet__max_age": "1h", "check wants-fleet__interval": "1s", "check wants-fleet__timeout": "500ms",
            "check wants-fleet__fail_after": "1", "check wants-fleet__action": "request",
            "check wants-fleet__max_actions": "1", "check wants-fleet__verify_timeout": "2s", **kw})
        return inst, marker

    def alarm_both_healed_one_at_a_time(self, a: fleetbed.Instance, b: fleetbed.Instance) -> list[str]:
        """a and b alarm at once: both runs succeed and both instances are stopped, but EC2
        never shows the two away together. The runs, for what the caller checks further."""
        s = self.stack
        with s.sample_states(a, b) as ec2:
            runs = self.run_of(lambda: (s.alarm(a, "system"), s.alarm(b, "system")), n=2)
        for run in runs:
            self.assertEqual(s.sfn.describe_execution(executionArn=run)["status"], "SUCCEEDED",
                             s.states_entered(run))
        both = [x for x in ec2.samples if x[a.id] in fleetbed.AWAY and x[b.id] in fleetbed.AWAY]
        self.assertEqual(both, [], [s.states_entered(run) for run in runs])
        for inst in (a, b):
            self.assertTrue(any(x[inst.id] in fleetbed.AWAY for x in ec2.samples), f"{inst.name} was stopped")
        return runs

    def assertLeasesFree(self):  # noqa: N802 - unittest style
        held = {pk: holders for pk, holders in self.stack.lease_holders().items() if holders}
        self.assertEqual(held, {}, "every lease released")

    def assertWaitedOnce(self, runs: list[str], waited: str, insts, waiting_for: str):  # noqa: N802
        """The run that waited said so once (one Fleet Remediation Waiting, one audit item),
        however many times it polled, and why; the run that did not wait said nothing."""
        s = self.stack
        said = {run: [s.waiting(inst.id, run) for inst in insts] for run in runs}
        for run in runs:
            events = [e for per_inst in said[run] for e in per_inst[0]]
            items = [r for per_inst in said[run] for r in per_inst[1]]
            if run != waited:
                self.assertEqual((events, items), ([], []), "a run that did not wait says nothing")
                continue
            self.assertEqual(len(events), 1, "one Fleet Remediation Waiting per waiting run")
            self.assertEqual(len(items), 1, "one audit item of outcome waiting")
            self.assertEqual((events[0]["detail"]["waiting_for"], items[0]["waiting_for"]), (waiting_for, waiting_for))
            self.assertEqual(events[0]["detail"]["execution"], run)

    def assertEscalated(self, inst: fleetbed.Instance, run: str, error: str) -> dict:  # noqa: N802
        """The run failed with error, told a person, and released its leases."""
        s = self.stack
        self.assertEqual(s.sfn.describe_execution(executionArn=run)["status"], "FAILED")
        def failed_of_run() -> list[dict]:
            s.coordinator_events.poll(wait=0)
            return [e for e in s.coordinator_events.matching("Fleet Remediation Failed", inst.id)
                    if e["detail"]["execution"] == run]
        self.wait_until(failed_of_run, 30, f"Fleet Remediation Failed of {run}")
        failed = failed_of_run()
        self.assertEqual(failed[-1]["detail"]["error"], error)
        alerts = [m for m in s.alert_messages() if inst.id in m and run in m]
        self.assertEqual(len(alerts), 1, "one message for a person")
        self.assertIn(error, alerts[0])
        self.assertLeasesFree()
        audit = s.run_audit(inst.id, run)
        self.assertEqual((audit["outcome"], audit["error"]), ("failed", error))
        return failed[-1]


class LifecycleTest(FleetCase):
    def test_running_creates_queue_and_alarms_once_terminated_removes_them(self):
        s = self.stack
        known = {e["executionArn"] for e in s.executions("Lifecycle")}
        r = s.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "heald:fleet", "Value": "true"}]}])
        iid = r["Instances"][0]["InstanceId"]
        (run,) = s.wait_new_executions("Lifecycle", known)
        self.assertEqual(s.wait_done(run)["status"], "SUCCEEDED")
        url = s.queue_url(iid)
        self.assertTrue(url, "the instance's queue exists")
        attrs = s.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["SqsManagedSseEnabled"], "true")
        redrive = json.loads(attrs["RedrivePolicy"])
        self.assertEqual(int(redrive["maxReceiveCount"]), 5)
        self.assertTrue(redrive["deadLetterTargetArn"].endswith(":heald-fleet-it-command-dead-letters"))
        policy = json.loads(attrs["Policy"])
        by_sid = {st["Sid"]: st for st in policy["Statement"]}
        self.assertEqual(by_sid["OnlyThisInstanceReceives"]["Condition"]["ArnNotEquals"],
                         {"ec2:SourceInstanceARN": f"arn:aws:ec2:us-east-1:{awsbed.ACCOUNT_ID}:instance/{iid}"})
        self.assertEqual(by_sid["OnlyTheCoordinatorAndOperatorsSend"]["Condition"]["ArnNotEquals"]
                         ["aws:PrincipalArn"],
                         [f"arn:aws:iam::{awsbed.ACCOUNT_ID}:role/{s.resources['CoordinatorRole']}"])
        alarms = {a["AlarmName"]: a for a in s.cloudwatch.describe_alarms(
            AlarmNamePrefix="heald-")["MetricAlarms"] if a["AlarmName"].endswith(iid)}
        self.assertEqual(sorted(alarms), [f"heald-instance-status-{iid}", f"heald-system-status-{iid}"])
        system = alarms[f"heald-system-status-{iid}"]
        self.assertEqual((system["MetricName"], system["Period"], system["EvaluationPeriods"],
                          system["Dimensions"]), ("StatusCheckFailed_System", 60, 2,
                                                  [{"Name": "InstanceId", "Value": iid}]))

        # A second "running" (the instance stopped and started) changes nothing.
        before = (attrs, alarms, sorted(s.sqs.list_queues()["QueueUrls"]))
        known = {e["executionArn"] for e in s.executions("Lifecycle")}
        s.ec2.stop_instances(InstanceIds=[iid])
        self.wait_until(lambda: s.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]
                        ["Instances"][0]["State"]["Name"] == "stopped", 10, "stopped")
        s.ec2.start_instances(InstanceIds=[iid])
        (run,) = s.wait_new_executions("Lifecycle", known)  # "running" (the rule ignores the others)
        self.assertEqual(s.wait_done(run)["status"], "SUCCEEDED")
        after_attrs = s.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        after_alarms = {a["AlarmName"]: a for a in s.cloudwatch.describe_alarms(
            AlarmNamePrefix="heald-")["MetricAlarms"] if a["AlarmName"].endswith(iid)}
        strip = ("LastModifiedTimestamp", "AlarmConfigurationUpdatedTimestamp", "StateUpdatedTimestamp")
        self.assertEqual(after_attrs, before[0])
        self.assertEqual({k: {f: v for f, v in a.items() if f not in strip} for k, a in after_alarms.items()},
                         {k: {f: v for f, v in a.items() if f not in strip} for k, a in before[1].items()})
        self.assertEqual(sorted(s.sqs.list_queues()["QueueUrls"]), before[2])

        # An instance outside the fleet gets nothing.
        known = {e["executionArn"] for e in s.executions("Lifecycle")}
        other = s.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        (run,) = s.wait_new_executions("Lifecycle", known)
        self.assertEqual(s.wait_done(run)["status"], "SUCCEEDED")
        self.assertIsNone(s.queue_url(other))

        known = {e["executionArn"] for e in s.executions("Lifecycle")}
        s.ec2.terminate_instances(InstanceIds=[iid])
        (run,) = s.wait_new_executions("Lifecycle", known)
        self.assertEqual(s.wait_done(run)["status"], "SUCCEEDED")
        self.assertIsNone(s.queue_url(iid))
        self.assertEqual([a["AlarmName"] for a in s.cloudwatch.describe_alarms(AlarmNamePrefix="heald-")
                          ["MetricAlarms"] if a["AlarmName"].endswith(iid)], [])


class CoordinatorTest(FleetCase):
    def test_system_status_alarm_stop_start_with_heald(self):
        """Example 1: the system status check alarm -> prepare-stop answered by heald ->
        stop and start in EC2 -> heald answers run-checks after its boot -> verified;
        leases released, audit record written, events and nothing for a person."""
        s = self.stack
        a = s.instance("example1")
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        t0 = time.monotonic()
        s.alarm(a, "system")
        (run,) = s.wait_new_executions("Coordinator", known)
        d = s.wait_done(run)
        took = time.monotonic() - t0
        self.assertEqual(d["status"], "SUCCEEDED", s.states_entered(run))
        states = s.states_entered(run)
        for step in ("PrepareStop", "Stop", "Start", "RunChecks", "StatusChecks", "Verified"):
            self.assertIn(step, states)
        self.assertLess(states.index("PrepareStop"), states.index("Stop"))
        self.assertNotIn("Withdraw", states, "heald answered prepare-stop")

        ready = s.heald_events.wait("Ready For Stop", a.id)
        self.assertTrue(ready["detail"]["command_id"].endswith("-0-stop-start"), "the first rung's command")
        self.assertIs(ready["detail"]["outbox_flushed"], True)
        transitions = [e["detail"]["state"] for e in s.ec2_events.seen if e["detail"]["instance-id"] == a.id]
        self.assertEqual(transitions[-4:], ["stopping", "stopped", "pending", "running"])
        self.assertEqual(a.state, "running")
        self.assertTrue(a.heald_running(), "heald came back with the instance")
        # Each of its requests went out as heald sent it: the proxy once forwarded the body
        # of the connection's SendTaskSuccess with the next request (EventBridge refused
        # Agent Stopping, heald lingered, polling, and took the run-checks).
        halting = a.heald_logs()[-2]
        self.assertEqual(re.findall(r".*(?:refused|HTTP400|Stopping with).*", halting), [])
        verified = s.heald_events.wait("Command Verified", a.id)
        self.assertEqual(verified["detail"]["command_id"], ready["detail"]["command_id"])
        checks = [e for e in s.heald_events.matching("Command Succeeded", a.id)
                  if e["detail"]["action"] == "run-checks"]
        self.assertTrue(checks and checks[-1]["detail"]["verified"], checks)

        started = s.coordinator_events.wait("Fleet Remediation Started", a.id)
        done = s.coordinator_events.wait("Fleet Remediation Succeeded", a.id)
        for e in (started, done):
            self.assertEqual((e["detail"]["trigger"], e["detail"]["action"], e["detail"]["execution"]),
                             ("system-status-check", "stop-start", run))
        self.assertEqual(done["detail"]["group"], "default")
        self.assertLessEqual(set(done["detail"]["steps"]),
                             {"started", "prepare_stop", "stop", "start", "run_checks", "verified"})
        self.assertLeasesFree()
        audit = s.run_audit(a.id, run)
        self.assertEqual((audit["outcome"], audit["trigger"], audit["action"]),
                         ("succeeded", "system-status-check", "stop-start"))
        self.assertIn(f"heald-system-status-{a.id}", audit["reason"])
        steps = json.loads(audit["steps"])
        self.assertLess(steps["prepare_stop"]["at"], steps["stop"]["at"])
        self.assertLess(steps["stop"]["at"], steps["start"]["at"])
        self.assertLess(steps["start"]["at"], steps["run_checks"]["at"])
        self.assertEqual([m for m in s.alert_messages() if a.id in m], [], "nothing for a person")
        log = a.heald.log_text()
        self.assertEqual([t for t in self.bed.task_tokens if t in log], [], "no task token logged")
        print(f"\n# example 1: alarm event -> verified stop/start {took:.1f} s", flush=True)


class RefusalAndSilenceTest(FleetCase):
    def test_heald_refuses_prepare_stop_escalates_and_nothing_stops(self):
        """heald asks for help, then refuses the prepare-stop (not in its [commands] allow):
        a person is told, the instance is never stopped, the leases are released."""
        s = self.stack
        a, marker = self.requesting("refuser", allow="ping, run-checks")
        with s.sample_states(a) as ec2:
            os.utime(marker, (time.time() - 7200, time.time() - 7200))
            (run,) = self.run_of(lambda: None)
        states = s.states_entered(run)
        self.assertIn("Refused", states)
        self.assertNotIn("Stop", states)
        self.assertEqual(ec2.states(a.id), {"running"}, "never stopped")
        rejected = s.heald_events.wait("Command Rejected", a.id)
        self.assertEqual(rejected["detail"]["reason"], "action-not-allowed")
        failed = self.assertEscalated(a, run, "heald.Fleet.Refused")
        self.assertEqual(failed["detail"]["trigger"], "heald")
        self.assertIn("heald.Command.Rejected", failed["detail"]["cause"])

    def test_silent_heald_on_system_status_failure_stop_start_goes_on(self):
        """The host is broken (system status check) and heald says nothing: the heartbeat
        runs out, the unanswered prepare-stop is taken back, the stop/start goes on, and the
        heald that boots answers run-checks (and never sees the prepare-stop)."""
        s = self.stack
        a = self.instance("silent")
        a.heald.stop()
        (run,) = self.run_of(lambda: s.alarm(a, "system"))
        states = s.states_entered(run)
        self.assertEqual(s.sfn.describe_execution(executionArn=run)["status"], "SUCCEEDED", states)
        for step in ("Withdraw", "WithdrawOurs", "Stop", "Start", "RunChecks", "Verified"):
            self.assertIn(step, states)
        booted = a.heald_logs()[-1]
        self.assertNotIn("prepare-stop", booted, "the withdrawn prepare-stop never reached the booted heald")
        self.assertIn("run-checks", booted)
        self.assertLeasesFree()
        self.assertEqual([m for m in s.alert_messages() if a.id in m], [], "nothing for a person")

    def test_silent_heald_after_its_own_request_escalates(self):
        """heald asks for help and dies as it sends the request: its silence is a person's
        to judge, so nothing is stopped."""
        s = self.stack
        a, marker = self.requesting("gone")
        s.crash_on_request(a)
        with s.sample_states(a) as ec2:
            os.utime(marker, (time.time() - 7200, time.time() - 7200))
            (run,) = self.run_of(lambda: None)
        self.assertFalse(a.heald_running())
        states = s.states_entered(run)
        self.assertIn("Unanswered", states)
        self.assertNotIn("Stop", states)
        self.assertEqual(ec2.states(a.id), {"running"}, "never stopped")
        # Known limit (reported): when heald's last long poll was still open as it died, that
        # poll took the first rung's command (the reboot, here; the prepare-stop after it);
        # Withdraw cannot see it until heald's visibility timeout ends, and then it waits for
        # heald's next start. Nothing is left visible now.
        attrs = s.sqs.get_queue_attributes(QueueUrl=s.queue_url(a.id), AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["ApproximateNumberOfMessages"], "0", "no command left for heald's next start")
        failed = self.assertEscalated(a, run, "heald.Fleet.Unanswered")
        self.assertEqual(failed["detail"]["trigger"], "heald")


class LadderTest(FleetCase):
    """The escalation ladder. The bed has no systemd (no system bus): a unit check fails with
    "no system bus", and heald gives a restart-units back to the queue unanswered, as a heald
    whose systemd is stuck would."""

    def unit_instance(self, name: str, action: str, allow: str) -> fleetbed.Instance:
        return self.instance(name, **{
            "check app__type": "unit", "check app__unit": "app.service", "check app__interval": "1s",
            "check app__fail_after": "1", "check app__action": action, "check app__max_actions": "1",
            "check app__verify_timeout": "2s", "allow": allow, "units": "app.service"})

    def rung_times(self, run: str) -> dict[str, float]:
        """When the run first entered each state, in seconds since the epoch."""
        events = self.stack.sfn.get_execution_history(executionArn=run, maxResults=1000)["events"]
        out: dict[str, float] = {}
        for e in events:
            name = e.get("stateEnteredEventDetails", {}).get("name")
            if name and name not in out:
                out[name] = e["timestamp"].timestamp()
        return out

    def climbs(self, inst: fleetbed.Instance, run: str) -> list[tuple[str, str, str]]:
        """The rungs the run climbed, (rung, why, next rung) in order: its Fleet Remediation
        Escalated events (each valid against its schema: the subscriber validates), the same as
        its audit items of outcome escalated. Call once the run's last event came."""
        s = self.stack
        s.coordinator_events.poll(wait=0)
        events = [e["detail"] for e in s.coordinator_events.matching("Fleet Remediation Escalated", inst.id)
                  if e["detail"]["execution"] == run]
        self.assertEqual([e["rung_index"] for e in events], list(range(len(events))), "in the ladder's order")
        climbed = [(e["rung"], e["why"], e["next_rung"]) for e in events]
        audited = sorted((r for r in s.audit(inst.id) if r["execution"] == run and r["outcome"] == "escalated"),
                         key=lambda r: r["started_at"])
        self.assertEqual([(r["rung"], r["why"], r["next_rung"]) for r in audited], climbed, "one audit item per climb")
        return climbed

    def test_ladder_a_unit_that_stays_failed_climbs_restart_units_reboot_stop_start_then_a_person(self):
        """heald's unit check asks (HealdRequestLadder: restart-units, reboot, stop-start):
        restart-units goes unanswered for RestartUnitsSeconds (3 s), the next rung takes over;
        heald refuses reboot (not allowed), and the run moves on at once, not after
        RebootSeconds (8 s); stop-start runs and run-checks still finds the unit failed, so a
        person is paged once."""
        s = self.stack
        # heald asks as soon as it starts (its unit check fails at once): the runs before it first.
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        a = self.unit_instance("ladder", "request", "ping, run-checks, prepare-stop, restart-units")
        with s.sample_states(a) as ec2:
            (run,) = s.wait_new_executions("Coordinator", known)
            s.wait_done(run)
        states = s.states_entered(run)
        order = [st for st in states if st in ("RestartUnits", "RebootCommand", "PrepareStop", "Stop", "RunChecks")]
        self.assertEqual(order, ["RestartUnits", "RebootCommand", "PrepareStop", "Stop", "RunChecks"], states)
        at = self.rung_times(run)
        self.assertGreaterEqual(at["RebootCommand"] - at["RestartUnits"], 3, "restart-units had its time")
        self.assertLess(at["PrepareStop"] - at["RebootCommand"], 8, "heald's refusal moved the ladder on early")
        self.assertIn("stopped", ec2.states(a.id))
        def restart() -> list[dict]:
            s.heald_events.poll(wait=0)
            return [e["detail"] for e in s.heald_events.matching("Command Received", a.id)
                    if e["detail"]["action"] == "restart-units"]
        self.wait_until(restart, 30, "heald received restart-units")
        restart = restart()
        self.assertEqual(restart[0]["units"], ["app.service"], "the unit of the check that asked")
        rejected = s.heald_events.wait("Command Rejected", a.id)
        self.assertEqual(rejected["detail"]["reason"], "action-not-allowed")
        failed = self.assertEscalated(a, run, "heald.Fleet.VerificationFailed")
        self.assertEqual(failed["detail"]["ladder"], ["restart-units", "reboot", "stop-start"])
        self.assertEqual(self.climbs(a, run), [("restart-units", "silent", "reboot"),
                                               ("reboot", "refused", "stop-start"),
                                               ("stop-start", "unverified", "person")])

    def test_ladder_reboot_is_verified_only_once_heald_answers_from_another_boot(self):
        """An operator's ladder ["reboot"], with heald played by the test (the bed has no
        systemd to reboot): heald answers reboot from boot A and the first ping from boot A
        still (the machine had not gone down yet), so the run pings again PollSeconds later;
        only the answer from boot B brings run-checks, and the run succeeds, its steps naming
        both boots."""
        s = self.stack
        a = self.instance("reboot-played")
        a.heald.stop()
        queue = s.queue_url(a.id)
        run = s.start_operator({"instance_id": a.id, "action": "reboot", "reason": "kernel update",
                                "ladder": ["reboot"]}, "reboot-played")

        def answer(action: str, output: dict) -> dict:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                msgs = s.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=2).get("Messages", [])
                if msgs:
                    s.sqs.delete_message(QueueUrl=queue, ReceiptHandle=msgs[0]["ReceiptHandle"])
                    cmd = json.loads(msgs[0]["Body"])
                    self.assertEqual(cmd["action"], action, s.states_entered(run))
                    s.sfn.send_task_success(taskToken=cmd["task_token"],
                                            output=json.dumps({"command_id": cmd["command_id"], **output}))
                    return cmd
            self.fail(f"no {action} command within 30 s: {s.states_entered(run)}")

        reboot = answer("reboot", {"boot_id": "boot-a"})
        self.assertEqual(reboot["command_id"], "reboot-played-0-reboot")
        answer("ping", {"boot_id": "boot-a"})
        answer("ping", {"boot_id": "boot-b"})
        answer("run-checks", {"verified": True, "checks": []})
        d = s.wait_done(run, timeout=60)
        states = s.states_entered(run)
        self.assertEqual(d["status"], "SUCCEEDED", states)
        self.assertEqual(states.count("Ping"), 2)
        self.assertLess(states.index("NewBoot"), states.index("RunChecks"))
        self.assertNotIn("PrepareStop", states)
        done = s.coordinator_events.wait("Fleet Remediation Succeeded", a.id)
        steps = done["detail"]["steps"]
        self.assertEqual((steps["reboot"]["by"], steps["reboot"]["boot_id"], steps["booted"]["boot_id"]),
                         ("heald", "boot-a", "boot-b"))
        self.assertEqual(done["detail"]["ladder"], ["reboot"])
        self.assertLeasesFree()
        self.assertEqual(self.climbs(a, run), [], "healed at its first rung: no climb")

    def test_ladder_instance_status_reboot_refused_by_heald_reboots_through_ec2(self):
        """An instance status check fails (InstanceStatusLadder: reboot, stop-start) and heald
        refuses reboot (its allow has none): AWS found the instance impaired, so EC2 reboots it
        from outside; run-checks and the status checks pass, and stop-start is not needed."""
        s = self.stack
        a = self.instance("reboot-by-ec2")
        (run,) = self.run_of(lambda: s.alarm(a, "instance"))
        states = s.states_entered(run)
        self.assertEqual(s.sfn.describe_execution(executionArn=run)["status"], "SUCCEEDED", states)
        for step in ("RebootCommand", "Silent", "Reboot", "RunChecks", "Verified"):
            self.assertIn(step, states)
        self.assertNotIn("PrepareStop", states)
        rejected = s.heald_events.wait("Command Rejected", a.id)
        self.assertEqual(rejected["detail"]["reason"], "action-not-allowed")
        done = s.coordinator_events.wait("Fleet Remediation Succeeded", a.id)
        self.assertEqual(done["detail"]["steps"]["reboot"]["by"], "ec2")
        self.assertLeasesFree()
        self.assertEqual(self.climbs(a, run), [], "healed at its first rung (heald's refusal is no climb)")

    def test_ladder_a_trigger_excluding_a_rung_never_runs_it(self):
        """A system status check's ladder is stop-start alone (SystemStatusLadder): on an
        instance whose heald would restart units and reboot, and whose unit stays failed, the
        run neither restarts nor reboots; it stops and starts, and then calls a person."""
        s = self.stack
        a = self.unit_instance("stop-start-only", "none", "ping, run-checks, prepare-stop, restart-units, reboot")
        (run,) = self.run_of(lambda: s.alarm(a, "system"))
        states = s.states_entered(run)
        for rung in ("HasUnits", "RestartUnits", "RebootCommand", "Reboot"):
            self.assertNotIn(rung, states)
        self.assertIn("Stop", states)
        def actions() -> set[str]:
            s.heald_events.poll(wait=0)
            return {e["detail"]["action"] for e in s.heald_events.matching("Command Received", a.id)}
        self.wait_until(lambda: {"prepare-stop", "run-checks"} <= actions(), 30, "heald's Command Received events")
        self.assertEqual(actions(), {"prepare-stop", "run-checks"})
        failed = self.assertEscalated(a, run, "heald.Fleet.VerificationFailed")
        self.assertEqual(failed["detail"]["ladder"], ["stop-start"])
        self.assertEqual(self.climbs(a, run), [("stop-start", "unverified", "person")])


class ConcurrencyTest(FleetCase):
    def test_two_triggers_for_one_instance_make_one_run(self):
        """The alarm and an operator at once: one execution does the work, the other one
        starts nothing (no Started event, no command, no stop)."""
        s = self.stack
        a = self.instance("twice")

        def both():
            s.alarm(a, "system")
            s.start_operator({"instance_id": a.id, "action": "stop-start", "reason": "kernel update"},
                             name=f"ops-{a.id}")
        runs = self.run_of(both, n=2)
        entered = {run: s.states_entered(run) for run in runs}
        (worker,) = [run for run in runs if "Stop" in entered[run]]
        (other,) = [run for run in runs if run != worker]
        self.assertEqual(s.sfn.describe_execution(executionArn=worker)["status"], "SUCCEEDED")
        self.assertEqual(s.sfn.describe_execution(executionArn=other)["status"], "SUCCEEDED", entered[other])
        self.assertEqual(entered[other][-1], "AlreadyRunning")
        self.assertNotIn("Remediate", entered[other])
        s.coordinator_events.wait("Fleet Remediation Succeeded", a.id)
        self.assertEqual([e["detail"]["execution"] for e in s.coordinator_events.matching(
            "Fleet Remediation Started", a.id)], [worker])
        s.heald_events.wait("Command Verified", a.id)  # heald's last event of the run
        received = [e["detail"]["action"] for e in s.heald_events.matching("Command Received", a.id)]
        self.assertEqual(received.count("prepare-stop"), 1)
        self.assertLeasesFree()

    def test_max_concurrent_1_serialises_a_group(self):
        """Both instances of a group alarm at once: with MaxConcurrent = 1 the second waits
        for the first one's slot; EC2 never shows both away at once."""
        s = self.stack
        a, b = self.instance("web-a", group="web"), self.instance("web-b", group="web")
        runs = self.alarm_both_healed_one_at_a_time(a, b)
        waited = [run for run in runs if "WaitForSlot" in s.states_entered(run)]
        self.assertEqual(len(waited), 1, "the second run waited for the slot")
        self.assertWaitedOnce(runs, waited[0], (a, b), "slot")
        self.assertLeasesFree()


class LimitsTest(FleetCase):
    """The limits' stack (fleetbed.LIMITS): MaxConcurrent 2, MaxUnhealthy 25%, StormThreshold 60%."""

    def setUp(self):
        super().setUp()
        self.stack = fleetbed.limits_stack()

    def group(self, name: str, n: int) -> list[fleetbed.Instance]:
        insts = [self.instance(f"{name}-{i}", group=name) for i in range(n)]
        self.wait_until(lambda: len(self.stack.group_record(name).get("members", [])) == n, 30,
                        f"the lifecycle counted the {n} instances of {name}")
        return insts

    def paused_events(self, group: str) -> list[dict]:
        """The group's Fleet Remediation Paused events so far (other tests pause their own groups)."""
        self.stack.coordinator_events.poll(wait=0)
        return [e for e in self.stack.coordinator_events.matching("Fleet Remediation Paused")
                if e["detail"]["group"] == group]

    def test_max_unhealthy_binds_before_max_concurrent(self):
        """Two of a group of 4 alarm at once: 25% of 4 is one instance, so although
        MaxConcurrent = 2 the second waits; EC2 never shows both away; both healed, every
        lease and count given back."""
        s = self.stack
        insts = self.group("quarter", 4)
        record = s.group_record("quarter")
        # 4 x 25 - 99 and 4 x 60 - 99: one may be held (held_x100 0 < 1), three may ask.
        self.assertEqual((record["unhealthy_budget"], record["storm_budget"], record["held_x100"]), (1, 141, 0))
        runs = self.alarm_both_healed_one_at_a_time(*insts[:2])
        waited = [run for run in runs if "GiveSlotBack" in s.states_entered(run)]
        self.assertGreaterEqual(len(waited), 1, "the second took a slot, found the group at MaxUnhealthy, gave it back")
        self.assertWaitedOnce(runs, waited[0], insts[:2], "unhealthy")
        self.assertLeasesFree()
        self.assertEqual(s.group_record("quarter")["held_x100"], 0)
        self.assertEqual(self.paused_events("quarter"), [])

    def test_storm_pauses_the_group_once_and_resume_heals_one_at_a_time(self):
        """Four of a group of 5 ask at once (80% > 60%): one Fleet Remediation Paused, one
        page, nothing stopped while paused; an operator resumes and each is healed in turn
        (MaxUnhealthy: one at a time)."""
        s = self.stack
        insts = self.group("storm", 5)
        asking = insts[:4]
        s.alert_messages()  # what earlier tests left for a person
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        with s.sample_states(*insts) as ec2:
            s.alarm_at_once(asking)
            runs = s.wait_new_executions("Coordinator", known, n=4)
            self.wait_until(lambda: self.paused_events("storm"), 30, "Fleet Remediation Paused of group storm")
            time.sleep(4)  # a few polls of the paused gate
            self.assertEqual([x for x in ec2.samples if set(x.values()) != {"running"}], [], "nothing stopped")
        (paused,) = self.paused_events("storm")
        self.assertEqual(paused["detail"]["storm_threshold_percent"], 60)
        pages = [m for m in s.alert_messages() if "paused" in m]
        self.assertEqual(len(pages), 1, "one page")
        self.assertIn("group storm", pages[0])
        self.assertEqual({s.sfn.describe_execution(executionArn=r)["status"] for r in runs}, {"RUNNING"})
        self.assertEqual(s.group_record("storm")["paused"], True)

        # The operator resumes the group (README: Deploying on a fleet).
        s.ddb.update_item(TableName=s.resources["LeaseTable"], Key={"pk": {"S": "fleet#storm"}},
                          UpdateExpression="SET paused = :f, asked_x100 = :z REMOVE askers",
                          ExpressionAttributeValues={":f": {"BOOL": False}, ":z": {"N": "0"}})
        with s.sample_states(*asking) as ec2:
            for run in runs:
                d = s.wait_done(run, timeout=240)
                self.assertEqual(d["status"], "SUCCEEDED", s.states_entered(run))
        self.assertEqual(ec2.most_away(), 1,
                         "one instance away at a time")
        for inst in asking:
            s.coordinator_events.wait("Fleet Remediation Succeeded", inst.id)
        self.assertLeasesFree()
        self.assertEqual([m for m in s.alert_messages() if "storm" in m], [], "no page but the one")

    def test_a_storm_spread_over_longer_than_poll_seconds_still_trips_the_breaker(self):
        """One instance of a group of 5 asks; the group's other requests arrive as a stream,
        0.3 s apart, for longer than PollSeconds (1 s), until a real alarm's request takes the
        count over 60%: the first run waits until the group's requests have been quiet
        for PollSeconds, so it finds the group paused and nothing stops (a run that waited one
        PollSeconds after its own request would act before the breaker tripped). The stream's
        other requests are written to the group's record as the coordinator's Ask writes them
        (moto's interpreter runs alarms' executions in bursts, so real alarms could not be
        spaced); the runs are then stopped and reaped."""
        s = self.stack
        insts = self.group("stream", 5)
        first, last = insts[0], insts[1]
        s.alert_messages()
        table, key = s.resources["LeaseTable"], {"pk": {"S": "fleet#stream"}}
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        with s.sample_states(*insts) as ec2:
            s.alarm(first, "system")
            (run,) = s.wait_new_executions("Coordinator", known)
            self.wait_until(lambda: run in (s.group_record("stream").get("askers") or []), 30, "the first request counted")
            stream_started = time.monotonic()

            def another_request(i: int) -> None:
                s.ddb.update_item(TableName=table, Key=key,
                                  UpdateExpression="ADD asked_x100 :hundred SET last_asked_at = :now, last_asker = :id",
                                  ExpressionAttributeValues={":hundred": {"N": "100"}, ":id": {"S": f"stream-{i}"},
                                                             ":now": {"S": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}})
                time.sleep(0.3)
            another_request(1)
            another_request(2)  # the group's limit: three requests
            s.alarm(last, "system")  # the fourth trips the breaker; the stream goes on until it does
            for i in range(3, 100):
                if s.group_record("stream").get("paused") or time.monotonic() - stream_started > 30:
                    break
                another_request(i)
            stream_s = time.monotonic() - stream_started
            self.wait_until(lambda: self.paused_events("stream"), 30, "Fleet Remediation Paused of group stream")
            runs = [run] + s.wait_new_executions("Coordinator", known | {run})
            time.sleep(3)  # a few polls of the paused gate
        self.assertGreater(stream_s, 1.0, "the stream lasted longer than PollSeconds")
        self.assertEqual([x for x in ec2.samples if set(x.values()) != {"running"}], [], "nothing stopped")
        self.assertEqual(len(self.paused_events("stream")), 1)
        self.assertEqual(len([m for m in s.alert_messages() if "group stream" in m]), 1, "one page")
        self.assertIn("StillAsking", s.states_entered(run), "the first run waited for the stream to end")
        self.assertEqual(s.group_record("stream")["paused"], True)

        known = {e["executionArn"] for e in s.executions("Reaper")}
        for r in runs:
            s.sfn.stop_execution(executionArn=r, error="Operator", cause="storm test over")
            s.execution_ended(r)
        for reaper in s.wait_new_executions("Reaper", known, n=len(runs)):
            self.assertEqual(s.wait_done(reaper)["status"], "SUCCEEDED", s.states_entered(reaper))
        self.assertLeasesFree()

    def test_a_paused_group_resumes_itself_once_the_storm_window_passes_quiet(self):
        """A group paused by a storm whose other requests were forgotten already: the run that
        was acting when it paused ends, its request is forgotten StormWindowSeconds later, the
        group's count is then zero and the run resumes the group (paused = false, one Fleet
        Remediation Resumed, no page); the group's next request heals without waiting at the
        gate. Before, the group stayed paused until an operator resumed it."""
        s = self.stack
        a, b = self.group("calm", 5)[:2]
        s.alert_messages()
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        s.alarm(a, "system")
        (run,) = s.wait_new_executions("Coordinator", known)
        self.wait_until(lambda: "PrepareStop" in s.states_entered(run), 60, "a's run past the gate, acting")
        s.ddb.update_item(TableName=s.resources["LeaseTable"], Key={"pk": {"S": "fleet#calm"}},
                          UpdateExpression="SET paused = :t, paused_by = :by",
                          ExpressionAttributeValues={":t": {"BOOL": True}, ":by": {"S": "an-earlier-storm"}})
        self.assertEqual(s.wait_done(run, timeout=120)["status"], "SUCCEEDED", s.states_entered(run))

        def resumed() -> list[dict]:
            s.coordinator_events.poll(wait=0)
            return [e for e in s.coordinator_events.matching("Fleet Remediation Resumed") if e["detail"]["group"] == "calm"]
        self.wait_until(resumed, 30, "Fleet Remediation Resumed of group calm")
        (event,) = resumed()
        self.assertEqual((event["detail"]["by"], event["detail"]["execution"]), ("window", run))
        record = s.group_record("calm")
        self.assertEqual((record["paused"], record["asked_x100"], record["resumed_by"]), (False, 0, run))
        self.assertIn("Resumed", s.states_entered(run))

        (next_run,) = self.run_of(lambda: s.alarm(b, "system"))
        states = s.states_entered(next_run)
        self.assertEqual(s.sfn.describe_execution(executionArn=next_run)["status"], "SUCCEEDED", states)
        self.assertNotIn("BlockedByPause", states)
        self.assertNotIn("Resumed", states, "a group that was not paused is not resumed")
        self.assertEqual(len(resumed()), 1)
        self.assertEqual([m for m in s.alert_messages() if "calm" in m or a.id in m or b.id in m], [], "no page")
        self.assertLeasesFree()

    def test_a_group_in_shadow_mode_decides_records_and_reports_but_touches_nothing(self):
        """ShadowGroups = dry,dry-too on the limits' stack: an alarm of an instance of group dry
        -> its run audits (outcome would-run) and publishes Fleet Remediation Would Run, then
        ends; no lease, no count, no command, no stop. An instance of another group of the
        same stack is healed as usual (the limits' other tests)."""
        s = self.stack
        dry = self.group("dry", 2)[0]
        with s.sample_states(dry) as ec2:
            (run,) = self.run_of(lambda: s.alarm(dry, "system"))
        states = s.states_entered(run)
        self.assertEqual(s.sfn.describe_execution(executionArn=run)["status"], "SUCCEEDED", states)
        self.assertEqual(states[-2:], ["AuditWouldRun", "WouldRun"])
        self.wait_until(lambda: s.coordinator_events.poll() or s.coordinator_events.matching(
            "Fleet Remediation Would Run", dry.id), 15, "Fleet Remediation Would Run")
        (would,) = s.coordinator_events.matching("Fleet Remediation Would Run", dry.id)
        self.assertEqual((would["detail"]["group"], would["detail"]["execution"], would["detail"]["ladder"]),
                         ("dry", run, ["stop-start"]))
        audit = s.run_audit(dry.id, run)
        self.assertEqual((audit["outcome"], audit["group"], audit["action"]), ("would-run", "dry", "stop-start"))
        self.assertEqual(ec2.states(dry.id), {"running"}, "never stopped")
        self.assertEqual(dry.heald.event_lines("command-received"), [], "no command reached heald")
        self.assertNotIn("instance#" + dry.id, s.lease_holders(), "no lease taken")
        record = s.group_record("dry")
        self.assertEqual((record["held_x100"], record.get("asked_x100", 0)), (0, 0), "nothing counted")
        self.assertEqual(s.coordinator_events.matching("Fleet Remediation Started", dry.id), [])

    def test_the_pause_switch_holds_automatic_runs_and_an_operator_still_acts(self):
        """With the pause switch on (item "switch" of the lease table, paused = true), an alarm's
        run waits at its group's gate and stops nothing while an operator's run of the same group
        acts; switched off, the alarm's run heals."""
        s = self.stack
        a, b = self.group("switch", 4)[:2]
        table, switch = s.resources["LeaseTable"], {"pk": {"S": "switch"}}
        s.ddb.put_item(TableName=table, Item={**switch, "paused": {"BOOL": True}})
        self.addCleanup(s.ddb.delete_item, TableName=table, Key=switch)
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        with s.sample_states(a) as ec2:
            s.alarm(a, "system")
            (run,) = s.wait_new_executions("Coordinator", known)
            self.wait_until(lambda: "BlockedBySwitch" in s.states_entered(run), 30, "the alarm's run held by the switch")
            (operator,) = self.run_of(lambda: s.start_operator(
                {"instance_id": b.id, "action": "stop-start", "reason": "by hand, switch on"}, "switch-by-hand"))
            self.assertEqual(s.sfn.describe_execution(executionArn=operator)["status"], "SUCCEEDED",
                             s.states_entered(operator))
            self.assertEqual(s.sfn.describe_execution(executionArn=run)["status"], "RUNNING")
        self.assertEqual(ec2.states(a.id), {"running"}, "nothing stopped while the switch was on")
        s.ddb.delete_item(TableName=table, Key=switch)
        d = s.wait_done(run, timeout=120)
        self.assertEqual(d["status"], "SUCCEEDED", s.states_entered(run))
        self.assertIn("Verified", s.states_entered(run))
        self.assertEqual([m for m in s.alert_messages() if a.id in m], [], "no page")
        self.assertLeasesFree()

    def test_flap_guard_quarantines_after_the_daily_runs_and_pages_once(self):
        """An instance alarms again after each fix: its 2 runs of the day act, the third
        quarantines it (tag, Fleet Remediation Failed, one page) and stops nothing, the fourth
        is refused without a page; an operator's run still acts."""
        s = self.stack
        flapping = self.group("flap", 4)[0]
        s.alert_messages()
        for _ in range(2):
            (run,) = self.run_of(lambda: s.alarm(flapping, "system"))
            self.assertEqual(s.sfn.describe_execution(executionArn=run)["status"], "SUCCEEDED",
                             s.states_entered(run))
        with s.sample_states(flapping) as ec2:
            (third,) = self.run_of(lambda: s.alarm(flapping, "system"))
            (fourth,) = self.run_of(lambda: s.alarm(flapping, "system"))
        self.assertEqual(ec2.states(flapping.id), {"running"}, "nothing stopped once the day's runs were used")
        self.assertEscalated(flapping, third, "heald.Fleet.Quarantined")
        tags = {t["Key"]: t["Value"] for t in s.ec2.describe_tags(Filters=[
            {"Name": "resource-id", "Values": [flapping.id]}])["Tags"]}
        self.assertEqual(tags.get("heald:quarantined"), time.strftime("%Y-%m-%d", time.gmtime()))
        self.assertEqual(s.sfn.describe_execution(executionArn=fourth)["status"], "FAILED")
        refused = [e for e in s.coordinator_events.matching("Fleet Remediation Failed", flapping.id)
                   if e["detail"]["execution"] == fourth]
        self.assertEqual(refused[0]["detail"]["error"], "heald.Fleet.InQuarantine")
        self.assertEqual([m for m in s.alert_messages() if flapping.id in m], [], "one page, at the quarantine")
        (operator,) = self.run_of(lambda: s.start_operator(
            {"instance_id": flapping.id, "action": "stop-start", "reason": "checked by hand"}, "flap-by-hand"))
        self.assertEqual(s.sfn.describe_execution(executionArn=operator)["status"], "SUCCEEDED",
                         s.states_entered(operator))
        self.assertLeasesFree()

class ReaperTest(FleetCase):
    def test_a_stopped_run_gives_back_its_leases_and_the_next_request_proceeds(self):
        """An operator's run waits for a silent heald's prepare-stop and is stopped
        (StopExecution): Step Functions' Execution Status Change (ABORTED) starts the reaper,
        which gives back its instance lease, its group's slot and MaxUnhealthy unit and its storm
        count; the other instance of the group then runs without waiting for the slot."""
        s = self.stack
        a, b = self.instance("reap-a", group="reap"), self.instance("reap-b", group="reap")
        self.wait_until(lambda: len(s.group_record("reap").get("members", [])) == 2, 30, "both counted")
        a.heald.stop()  # silent: the run waits PrepareStopSeconds for its answer
        run = s.start_operator({"instance_id": a.id, "action": "stop-start", "reason": "reaper test"}, "reap-me")
        self.wait_until(lambda: "PrepareStop" in s.states_entered(run), 30, "the run waits for prepare-stop")
        self.assertEqual(s.lease_holders()["group#reap"], [run])
        s.sfn.stop_execution(executionArn=run, error="Operator", cause="stopped by hand")
        known = {e["executionArn"] for e in s.executions("Reaper")}
        s.execution_ended(run)
        (reaper,) = s.wait_new_executions("Reaper", known)
        self.assertEqual(s.wait_done(reaper)["status"], "SUCCEEDED", s.states_entered(reaper))
        self.assertLeasesFree()
        record = s.group_record("reap")
        self.assertEqual((record["held_x100"], record["asked_x100"]), (0, 0))
        audit = s.run_audit(a.id, run)
        self.assertEqual((audit["trigger"], audit["outcome"]), ("reaper", "reaped"))

        (next_run,) = self.run_of(lambda: s.alarm(b, "system"))
        states = s.states_entered(next_run)
        self.assertEqual(s.sfn.describe_execution(executionArn=next_run)["status"], "SUCCEEDED", states)
        self.assertNotIn("WaitForSlot", states)
        self.assertLeasesFree()

class LeaseTakeOverTest(FleetCase):
    def test_a_lease_whose_holder_ended_is_taken_over_when_the_reaper_never_came(self):
        """A run holding its group's only slot (MaxConcurrent 1), a MaxUnhealthy unit and a
        storm count is stopped (StopExecution) and Step Functions' Execution Status Change never
        arrives (no reaper). The next request of the group finds the slot full, asks Step
        Functions whether its holder still runs, drops it with its unit and count, and proceeds;
        the next request for the stopped run's instance takes over its instance lease the same
        way. Nothing stays held: a lease expires when its holder's execution ends."""
        s = self.stack
        group = f"orphan-{time.monotonic_ns() % 10**6}"  # its own records, should the test run again
        a, b = self.instance("orphan-a", group=group), self.instance("orphan-b", group=group)
        self.wait_until(lambda: len(s.group_record(group).get("members", [])) == 2, 30, "both counted")
        a.heald.stop()  # silent: the run waits PrepareStopSeconds for its answer
        run = s.start_operator({"instance_id": a.id, "action": "stop-start", "reason": "orphan test"}, group)
        self.wait_until(lambda: "PrepareStop" in s.states_entered(run), 30, "the run waits for prepare-stop")
        self.assertEqual(s.lease_holders()["group#" + group], [run])
        record = s.group_record(group)
        self.assertEqual((record["held_x100"], record["asked_x100"]), (100, 100))
        reapers = {e["executionArn"] for e in s.executions("Reaper")}
        s.sfn.stop_execution(executionArn=run, error="Operator", cause="stopped by hand")
        # Ended (moto's interpreter ends a run stopped in a task token's wait as FAILED,
        # States.Timeout; AWS as ABORTED), and no s.execution_ended(run): no reaper.
        self.assertNotEqual(s.wait_done(run)["status"], "RUNNING")

        (next_run,) = self.run_of(lambda: s.alarm(b, "system"))
        states = s.states_entered(next_run)
        self.assertEqual(s.sfn.describe_execution(executionArn=next_run)["status"], "SUCCEEDED", states)
        for step in ("ReadLease", "LeaseHolder", "DropLeaseHolder", "DropCountedHolder", "ForgetEndedAsk", "Verified"):
            self.assertIn(step, states)
        self.assertLess(states.index("DropLeaseHolder"), states.index("Remediate"))
        self.assertNotIn(run, s.lease_holders().get("group#" + group, []))
        self.wait_until(lambda: s.group_record(group)["asked_x100"] == 0, 30, "b's request forgotten after its window")
        record = s.group_record(group)
        self.assertEqual((record["held_x100"], record["asked_x100"]), (0, 0), "a's unit and count given back")
        self.assertEqual(record.get("holders", []), [])
        self.assertEqual(s.lease_holders()["instance#" + a.id], [run], "a's instance lease waits for a's next request")

        # The stopped run's prepare-stop still waits in a's queue (no later run withdraws a
        # command of another run, nor does the reaper): the heald that boots asks Step Functions
        # (SendTaskHeartbeat), finds its run gone and rejects it instead of draining for a stop
        # nobody will make; the new run's own commands are answered.
        (a_run,) = self.run_of(lambda: s.alarm(a, "system"))
        states = s.states_entered(a_run)
        self.assertEqual(s.sfn.describe_execution(executionArn=a_run)["status"], "SUCCEEDED", states)
        stale = run.rsplit(":", 1)[-1]
        s.heald_events.wait("Command Rejected", a.id, timeout=30)
        rejected = [e["detail"] for e in s.heald_events.matching("Command Rejected", a.id)]
        self.assertEqual([(d["command_id"].startswith(stale), d["reason"]) for d in rejected], [(True, "asker-gone")])
        self.assertEqual([e for e in s.heald_events.matching("Ready For Stop", a.id)
                          if e["detail"]["command_id"].startswith(stale)], [], "the stale prepare-stop never ran")
        self.assertNotIn("AlreadyRunning", states)
        self.assertIn("DropLeaseHolder", states)
        self.assertLeasesFree()
        self.assertEqual({e["executionArn"] for e in s.executions("Reaper")}, reapers, "no reaper ran")


class VerificationTest(FleetCase):
    def test_verification_failure_after_the_start_fails_and_tells_a_person(self):
        """heald's checks fail after the boot: run-checks answers verified = false, the run
        fails (Fleet Remediation Failed) and a person is told; heald's own Command
        Verification Failed for the prepare-stop goes to the topic too."""
        s = self.stack
        a = self.instance("unwell")
        ready = threading.Event()

        def break_on_stop():
            s.heald_events.wait("Ready For Stop", a.id)
            os.utime(a.marker, (time.time() - 7200, time.time() - 7200))  # the service breaks in the stop
            ready.set()
        t = threading.Thread(target=break_on_stop, daemon=True)
        t.start()
        (run,) = self.run_of(lambda: s.alarm(a, "system"))
        t.join(timeout=30)  # it saw Ready For Stop before the run could finish; a busy bed is slow
        self.assertTrue(ready.is_set())
        states = s.states_entered(run)
        self.assertIn("Start", states)
        self.assertIn("VerificationFailed", states)
        checks = s.heald_events.wait("Command Succeeded", a.id)
        self.assertEqual(checks["detail"]["action"], "run-checks")
        self.assertIs(checks["detail"]["verified"], False)
        s.heald_events.wait("Command Verification Failed", a.id)
        self.assertEscalated(a, run, "heald.Fleet.VerificationFailed")


class S3Test(FleetCase):
    def test_public_bucket_is_blocked_exempt_bucket_is_reported(self):
        """Example 2: AWS Config's compliance event for a public bucket (put on the bus as
        Config sends it: moto's Config evaluates no managed rule) -> all four public access
        block flags set and read back, S3 Public Access Blocked, SNS; a bucket with the
        exemption tag is reported and left as it is."""
        s = self.stack
        s3 = self.bed.fleet.client("s3")
        rule = s.resources["S3PublicReadRule"]
        for bucket in ("fleet-public", "fleet-public-ok"):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket="fleet-public-ok", Tagging={"TagSet": [{"Key": "heald:public-ok", "Value": "website"}]})
        known = {e["executionArn"] for e in s.executions("S3")}
        s.compliance_change("fleet-public", rule)
        s.compliance_change("fleet-public-ok", rule)
        s.compliance_change("fleet-public", rule, compliance="COMPLIANT")  # matches no rule
        runs = s.wait_new_executions("S3", known, 2)
        for run in runs:
            self.assertEqual(s.wait_done(run)["status"], "SUCCEEDED", s.states_entered(run))
        block = s3.get_public_access_block(Bucket="fleet-public")["PublicAccessBlockConfiguration"]
        self.assertEqual(block, {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                 "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        with self.assertRaises(s3.exceptions.ClientError):
            s3.get_public_access_block(Bucket="fleet-public-ok")
        blocked = [e for e in s.coordinator_events.seen if e["detail-type"] == "S3 Public Access Blocked"] or \
            [s.coordinator_events.wait("S3 Public Access Blocked")]
        self.assertEqual((blocked[-1]["detail"]["bucket"], blocked[-1]["detail"]["verified"]), ("fleet-public", True))
        exempt = s.coordinator_events.wait("S3 Public Bucket Exempt")
        self.assertEqual(exempt["detail"]["bucket"], "fleet-public-ok")
        alerts = s.alert_messages()
        self.assertEqual(len([m for m in alerts if "fleet-public " in m and "now set" in m]), 1, alerts)
        self.assertEqual(len([m for m in alerts if "fleet-public-ok" in m and "not changed" in m]), 1, alerts)
        self.assertEqual(len(s.executions("S3")), len(known) + 2, "COMPLIANT starts nothing")
        (audit,) = s.audit("s3://fleet-public")
        self.assertEqual((audit["outcome"], audit["action"]), ("succeeded", "block-public-access"))


class ShadowTest(FleetCase):
    def test_shadow_mode_changes_nothing_and_says_what_it_would_do(self):
        """ShadowMode=true (a second stack, whose fleet is heald:fleet=shadow): both alarms
        -> Fleet Remediation Would Run (stop-start, reboot); no lease, no command in the
        queue, no stop."""
        shadow = fleetbed.shadow_stack()
        a = self.instance("shadowed", stack=shadow)
        with shadow.sample_states(a) as ec2:
            runs = self.run_of(lambda: (shadow.alarm(a, "system"), shadow.alarm(a, "instance")), n=2, stack=shadow)
        for run in runs:
            states = shadow.states_entered(run)
            self.assertEqual(shadow.sfn.describe_execution(executionArn=run)["status"], "SUCCEEDED", states)
            self.assertEqual(states[-1], "WouldRun")
        self.wait_until(lambda: shadow.coordinator_events.poll() or len(
            shadow.coordinator_events.matching("Fleet Remediation Would Run", a.id)) == 2, 15, "two Would Run events")
        would = shadow.coordinator_events.matching("Fleet Remediation Would Run", a.id)
        self.assertEqual(({e["detail"]["execution"] for e in would}, {e["detail"]["action"] for e in would},
                          {e["detail"]["shadow_mode"] for e in would}), (set(runs), {"stop-start", "reboot"}, {True}))
        self.assertEqual(ec2.states(a.id), {"running"}, "never stopped")
        attrs = shadow.sqs.get_queue_attributes(QueueUrl=shadow.queue_url(a.id), AttributeNames=["All"])["Attributes"]
        self.assertEqual((attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]), ("0", "0"))
        self.assertEqual(a.heald.event_lines("command-received"), [], "no command reached heald")
        self.assertEqual(shadow.lease_holders(), {}, "no lease taken")
        self.assertEqual(shadow.coordinator_events.matching("Fleet Remediation Started", a.id), [])


class AutoRecoveryTest(FleetCase):
    """No double action with EC2's automatic recovery: the auto-recovery stack
    (fleetbed.health_stack(), AutoRecoveryWaitSeconds 20, PollSeconds 1). The bed plays EC2: a
    system status alarm marks the status check impaired; AWS Health's outcome is put on the bus
    (fleetbed.Stack.auto_recovered)."""

    WAIT_S = fleetbed.AUTO_RECOVERY_WAIT_S

    def setUp(self):
        super().setUp()
        self.stack = fleetbed.health_stack()

    def entered_at(self, run: str) -> dict[str, float]:
        """When the run first entered each state, in seconds since the epoch."""
        out: dict[str, float] = {}
        for e in self.stack.sfn.get_execution_history(executionArn=run, maxResults=1000)["events"]:
            name = e.get("stateEnteredEventDetails", {}).get("name")
            if name and name not in out:
                out[name] = e["timestamp"].timestamp()
        return out

    def waiting_run(self, inst: fleetbed.Instance, known: set) -> str:
        """inst's system status alarm's run, once it waits for EC2."""
        s = self.stack
        s.alarm(inst, "system")
        (run,) = s.wait_new_executions("Coordinator", known)
        self.wait_until(lambda: "AutoRecoveryPoll" in s.states_entered(run), 30, "the run waits for EC2")
        return run

    def final_event(self, inst: fleetbed.Instance, run: str, detail_type: str) -> dict:
        s = self.stack
        def of_run() -> list[dict]:
            s.coordinator_events.poll(wait=0)
            return [e for e in s.coordinator_events.matching(detail_type, inst.id) if e["detail"]["execution"] == run]
        self.wait_until(of_run, 30, f"{detail_type} of {run}")
        (event,) = of_run()
        return event

    def test_ec2_recovery_success_verified_and_the_run_never_acts(self):
        """A system status alarm, then AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_SUCCESS while the run
        waits: the run verifies (run-checks, status checks), never stops or starts the
        instance, audits recovered-by-ec2 and publishes one Fleet Remediation Recovered By EC2.
        While it waits it holds the instance's lease (a second alarm's run starts nothing) but
        no group slot and no MaxUnhealthy unit."""
        fleetbed.health_event_example()  # AWS Health's events are built from it
        s = self.stack
        a = self.instance("ar-success")
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        with s.sample_states(a) as ec2:
            run = self.waiting_run(a, known)
            held = s.lease_holders()
            self.assertEqual(held.get(f"instance#{a.id}"), [run])
            self.assertNotIn(run, held.get("group#default", []), "no slot while waiting")
            self.assertNotIn(run, s.group_record("default").get("holders", []), "no MaxUnhealthy unit while waiting")
            (second,) = self.run_of(lambda: s.alarm(a, "system"))
            self.assertEqual(s.states_entered(second)[-1], "AlreadyRunning")
            s.auto_recovered(a, "AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_SUCCESS")
            d = s.wait_done(run)
        states = s.states_entered(run)
        self.assertEqual(d["status"], "SUCCEEDED", states)
        for step in ("RecoveredByEc2", "RunChecks", "StatusChecks", "Verified", "AuditRecoveredByEc2", "Ec2Recovered"):
            self.assertIn(step, states)
        for step in ("Remediate", "TakeLease", "PrepareStop", "Stop", "Start", "CountRun"):
            self.assertNotIn(step, states[states.index("AutoRecoveryPoll"):])
        self.assertEqual(ec2.states(a.id), {"running"}, "never stopped")
        self.assertEqual(s.auto_recovery_record(a)["auto_recovery"], "success")
        def received() -> list[str]:
            s.heald_events.poll(wait=0)
            return [e["detail"]["command_id"] for e in s.heald_events.matching("Command Received", a.id)]
        self.wait_until(received, 30, "heald's Command Received")
        self.assertEqual([c.rsplit("-", 4)[-4:] for c in received()], [["ec2", "recovery", "run", "checks"]])

        event = self.final_event(a, run, "Fleet Remediation Recovered By EC2")
        decided = event["detail"]["steps"]["auto_recovery"]
        self.assertEqual((decided["decision"], decided["why"], decided["event"]),
                         ("recovered-by-ec2", "recovery-succeeded", "AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_SUCCESS"))
        self.assertLess(decided["waited_s"], self.WAIT_S)
        self.assertTrue(event["detail"]["steps"]["run_checks"] and event["detail"]["steps"]["verified"])
        self.assertEqual(len(s.coordinator_events.matching("Fleet Remediation Recovered By EC2", a.id)), 1)
        for other in ("Fleet Remediation Started", "Fleet Remediation Succeeded", "Fleet Remediation Failed"):
            self.assertEqual(s.coordinator_events.matching(other, a.id), [], other)
        (audit,) = [r for r in s.audit(a.id) if r["execution"] == run]
        self.assertEqual((audit["outcome"], audit["trigger"]), ("recovered-by-ec2", "system-status-check"))
        self.assertEqual(json.loads(audit["steps"])["auto_recovery"], decided)
        self.assertEqual([m for m in s.alert_messages() if a.id in m], [], "nothing for a person")
        self.assertLeasesFree()

    def test_ec2_recovery_failure_proceeds_at_once_and_stop_starts(self):
        """AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_FAILURE while the run waits: it goes up its ladder
        at once (well before AutoRecoveryWaitSeconds), stops and starts the instance and
        verifies; the decision is in its event and audit record."""
        fleetbed.health_event_example()  # AWS Health's events are built from it
        s = self.stack
        a = self.instance("ar-failure")
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        with s.sample_states(a) as ec2:
            run = self.waiting_run(a, known)
            s.auto_recovered(a, "AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_FAILURE")
            d = s.wait_done(run)
        states = s.states_entered(run)
        self.assertEqual(d["status"], "SUCCEEDED", states)
        at = self.entered_at(run)
        self.assertLess(at["Ec2RecoveryFailed"] - at["AutoRecoveryPoll"], self.WAIT_S / 2, "proceeded before the wait ended")
        self.assertNotIn("NoWordFromEc2", states)
        self.assertLess(at["Ec2RecoveryFailed"], at["PauseGate"])  # the gate and the slot after the wait
        self.assertLess(at["TakeUnhealthy"], at["Stop"])
        self.assertIn("stopped", ec2.states(a.id))
        event = self.final_event(a, run, "Fleet Remediation Succeeded")
        decided = event["detail"]["steps"]["auto_recovery"]
        self.assertEqual((decided["decision"], decided["why"], decided["event"]),
                         ("proceeded", "recovery-failed", "AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_FAILURE"))
        (audit,) = [r for r in s.audit(a.id) if r["execution"] == run]
        self.assertEqual(audit["outcome"], "succeeded")
        self.assertEqual(json.loads(audit["steps"])["auto_recovery"], decided)
        self.assertLeasesFree()

    def test_no_word_from_ec2_within_the_wait_proceeds(self):
        """No AWS Health event and the status check stays impaired: after
        AutoRecoveryWaitSeconds the run goes up its ladder (stop and start)."""
        s = self.stack
        a = self.instance("ar-silent")
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        with s.sample_states(a) as ec2:
            run = self.waiting_run(a, known)
            d = s.wait_done(run)
        states = s.states_entered(run)
        self.assertEqual(d["status"], "SUCCEEDED", states)
        at = self.entered_at(run)
        self.assertGreaterEqual(at["NoWordFromEc2"] - at["AutoRecoveryPoll"], self.WAIT_S - 1)
        self.assertEqual(states.count("AutoRecoveryPoll"), self.WAIT_S)
        self.assertIn("stopped", ec2.states(a.id))
        event = self.final_event(a, run, "Fleet Remediation Succeeded")
        decided = event["detail"]["steps"]["auto_recovery"]
        self.assertEqual((decided["decision"], decided["why"], decided["waited_s"]), ("proceeded", "wait-ended", self.WAIT_S))
        (audit,) = [r for r in s.audit(a.id) if r["execution"] == run]
        self.assertEqual(json.loads(audit["steps"])["auto_recovery"], decided)
        self.assertLeasesFree()

    def test_status_checks_ok_again_without_word_from_ec2_is_recovered_by_ec2(self):
        """AWS Health delivers its events on a best effort basis: both status checks OK again
        while the run waits is EC2's recovery too (verified, nothing done)."""
        s = self.stack
        a = self.instance("ar-checks-ok")
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        with s.sample_states(a) as ec2:
            run = self.waiting_run(a, known)
            s.ec2.delete_tags(Resources=[a.id], Tags=[{"Key": moto_aws.SYSTEM_STATUS_TAG}])
            d = s.wait_done(run)
        states = s.states_entered(run)
        self.assertEqual(d["status"], "SUCCEEDED", states)
        self.assertIn("ChecksOkAgain", states)
        self.assertNotIn("Stop", states)
        self.assertEqual(ec2.states(a.id), {"running"}, "never stopped")
        decided = self.final_event(a, run, "Fleet Remediation Recovered By EC2")["detail"]["steps"]["auto_recovery"]
        self.assertEqual((decided["decision"], decided["why"]), ("recovered-by-ec2", "status-checks-ok"))
        (audit,) = [r for r in s.audit(a.id) if r["execution"] == run]
        self.assertEqual(audit["outcome"], "recovered-by-ec2")
        self.assertLeasesFree()

    def test_ec2_recovery_heald_does_not_verify_climbs_the_ladder(self):
        """EC2 reports success but heald's checks still fail: run-checks answers verified =
        false and the run goes up its ladder through the gate (a slot, stop and start, which
        mends the service here); its Succeeded event says why (not-verified)."""
        fleetbed.health_event_example()  # AWS Health's events are built from it
        s = self.stack
        a = self.instance("ar-unverified")
        known = {e["executionArn"] for e in s.executions("Coordinator")}
        os.utime(a.marker, (time.time() - 7200, time.time() - 7200))  # the service is broken

        def mend_on_stop():
            s.heald_events.wait("Ready For Stop", a.id, timeout=60)
            os.utime(a.marker, None)
        mender = threading.Thread(target=mend_on_stop, daemon=True)
        mender.start()
        run = self.waiting_run(a, known)
        s.auto_recovered(a, "AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_SUCCESS")
        d = s.wait_done(run)
        mender.join(timeout=30)
        states = s.states_entered(run)
        self.assertEqual(d["status"], "SUCCEEDED", states)
        at = self.entered_at(run)
        for earlier, later in (("RecoveredByEc2", "RunChecks"), ("RunChecks", "Ec2RecoveryNotVerified"),
                               ("Ec2RecoveryNotVerified", "TakeUnhealthy"), ("TakeUnhealthy", "Stop")):
            self.assertLess(at[earlier], at[later], (earlier, later))
        decided = self.final_event(a, run, "Fleet Remediation Succeeded")["detail"]["steps"]["auto_recovery"]
        self.assertEqual((decided["decision"], decided["why"], decided["recovered"]["why"]),
                         ("proceeded", "not-verified", "recovery-succeeded"))
        self.assertEqual(s.coordinator_events.matching("Fleet Remediation Recovered By EC2", a.id), [])
        self.assertLeasesFree()

    def test_instance_status_and_heald_requests_do_not_wait_for_ec2(self):
        """EC2 recovers a failed system status check only: an instance status alarm's run and
        heald's own request go to the gate without waiting."""
        s = self.stack
        a = self.instance("ar-instance")
        b, marker = self.requesting("ar-request", allow="ping, run-checks")
        (by_alarm,) = self.run_of(lambda: s.alarm(a, "instance"))
        (by_heald,) = self.run_of(lambda: os.utime(marker, (time.time() - 7200, time.time() - 7200)))
        for run in (by_alarm, by_heald):
            states = s.states_entered(run)
            self.assertIn("MayBeRecovering", states)
            self.assertNotIn("AutoRecoveryPoll", states)
            self.assertLess(states.index("MayBeRecovering"), states.index("PauseGate"))
            self.assertIn("Remediate", states)
        self.assertEqual(s.sfn.describe_execution(executionArn=by_alarm)["status"], "SUCCEEDED", s.states_entered(by_alarm))
        self.assertNotIn("auto_recovery", self.final_event(a, by_alarm, "Fleet Remediation Succeeded")["detail"]["steps"])
        self.assertLeasesFree()


def pattern_matches(pattern: dict, event: dict) -> bool:
    """EventBridge's matching for what the stack's patterns use (exact values, prefix,
    nesting, array fields): moto's TestEventPattern answers nothing, so the test matches."""
    for key, want in pattern.items():
        have = event.get(key)
        if isinstance(want, dict):
            if not isinstance(have, dict) or not pattern_matches(want, have):
                return False
            continue
        values = have if isinstance(have, list) else [have]
        if not any(value_matches(w, v) for w in want for v in values):
            return False
    return True


def value_matches(want, value) -> bool:
    if isinstance(want, dict):
        (op, arg), = want.items()
        assert op == "prefix", f"the matcher knows no {op!r}"
        return isinstance(value, str) and value.startswith(arg)
    return want == value


def pattern_leaves(pattern: dict, path=()):
    for key, want in pattern.items():
        if isinstance(want, dict):
            yield from pattern_leaves(want, path + (key,))
        else:
            yield path + (key,)


def near_miss(event: dict, path: tuple) -> dict:
    """event with the value at path one character off (first and last: a prefix and an
    exact match both miss)."""
    out = json.loads(json.dumps(event))
    node = out
    for key in path[:-1]:
        node = node[key]
    value = node[path[-1]]
    node[path[-1]] = ["~" + v[1:-1] + "~" for v in value] if isinstance(value, list) else "~" + value[1:-1] + "~"
    return out


HEALD_SOURCE = fleetbed.HEALD_SOURCE


class RulesTest(FleetCase):
    """Reads the events that the module's scenarios produced: load_tests() runs it after them."""

    def test_every_rule_matches_real_events_and_rejects_near_misses(self):
        s = self.stack
        others = fleetbed.other_stacks()
        seen = s.seen_events() + [e for other in others for e in other.seen_events()]
        if not seen:
            self.skipTest("it checks the events of this module's scenarios, and none of them ran")
        other_prefixes = tuple(other.name + "-" for other in others)
        # By name prefix and every page: the whole run's other modules leave rules on the bus too.
        listed = [r for page in s.events.get_paginator("list_rules").paginate(NamePrefix=s.name + "-")
                  for r in page["Rules"]]
        rules = [r for r in listed
                 if r["Name"].startswith(s.name + "-") and not r["Name"].startswith(other_prefixes)]
        self.assertEqual(len(rules), 8, [r["Name"] for r in rules])
        unseen = []
        for rule in rules:
            pattern = json.loads(rule["EventPattern"])
            for source in pattern["source"]:
                for detail_type in pattern["detail-type"]:
                    with self.subTest(rule=rule["Name"], detail_type=detail_type):
                        real = [e for e in seen if e["source"] == source and e["detail-type"] == detail_type
                                and pattern_matches(pattern, e)]
                        if not real:
                            if source == HEALD_SOURCE:
                                self.assertTrue(os.path.exists(os.path.join(
                                    awsbed.REPO, "agent", "schemas", harness.slug(detail_type) + ".json")),
                                    f"{detail_type} is not an event heald emits")
                                unseen.append(f"{detail_type} ({rule['Name']})")
                                continue
                            if source == "aws.health" and not os.path.isdir(fleetbed.TESTDATA):
                                unseen.append(f"{detail_type} ({rule['Name']}: no shared test data to build it)")
                                continue
                            self.fail(f"no event of the run matches {rule['Name']} as {detail_type}")
                        for path in pattern_leaves(pattern):
                            miss = near_miss(real[0], path)
                            self.assertFalse(pattern_matches(pattern, miss), f"{rule['Name']} takes {path} = "
                                             f"{json.dumps(miss, default=str)[:200]}")
        print(f"\n# rules: every pattern matched real events of the run and rejected a near miss on each "
              f"field; not emitted in this run: {', '.join(unseen) or 'none'}", flush=True)


def load_tests(loader, standard_tests, pattern):  # noqa: ARG001 - unittest API
    """unittest's order (classes by name), except RulesTest, which needs the events of every
    scenario: it runs last."""
    others = [suite for suite in standard_tests if not any(isinstance(t, RulesTest) for t in suite)]
    return unittest.TestSuite(others + [loader.loadTestsFromTestCase(RulesTest)])


class StaticTest(unittest.TestCase):
    """The template read as data: no moto needed."""

    @classmethod
    def setUpClass(cls):
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        # CloudFormation's short forms (!Ref, !Sub, ...) as plain data.
        Loader.add_multi_constructor("!", lambda loader, tag, node: (
            loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
            else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node)))
        with open(fleetbed.TEMPLATE) as f:
            cls.template = yaml.load(f, Loader)

    def test_instance_role_grants_exactly_what_heald_calls(self):
        """The AWS actions heald's code calls (its X-Amz-Target strings), against the fleet
        instance role: nothing more, nothing less."""
        services = {"AmazonSQS": "sqs", "AWSEvents": "events", "AWSStepFunctions": "states"}
        called = set()
        for path in glob.glob(os.path.join(awsbed.REPO, "agent", "**", "*.[ch]"), recursive=True):
            with open(path) as f:
                for svc, op in re.findall(r'"(AmazonSQS|AWSEvents|AWSStepFunctions)\.([A-Za-z]+)"', f.read()):
                    called.add(f"{services[svc]}:{op}")
        self.assertIn("events:PutEvents", called)
        granted = set()
        role = self.template["Resources"]["InstanceRole"]["Properties"]
        for policy in role["Policies"]:
            for st in policy["PolicyDocument"]["Statement"]:
                self.assertEqual(st["Effect"], "Allow")
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                self.assertFalse([a for a in actions if "*" in a], "no wildcard action")
                granted |= set(actions)
        self.assertEqual(granted, called)

    def test_every_state_is_reached_and_every_next_exists(self):
        """cfn-lint checks each state's shape, not the graph."""
        def walk(machine, where):
            states = machine["States"]
            targets = {machine["StartAt"]}
            for name, st in states.items():
                targets |= {st[k] for k in ("Next", "Default") if k in st}
                targets |= {c["Next"] for c in st.get("Choices", []) + st.get("Catch", [])}
                if "ItemProcessor" in st:
                    walk(st["ItemProcessor"], f"{where}.{name}")
            self.assertEqual(targets - set(states), set(), f"{where}: Next names no state")
            self.assertEqual(set(states) - targets, set(), f"{where}: states never reached")

        for name, res in self.template["Resources"].items():
            if res["Type"] == "AWS::StepFunctions::StateMachine":
                walk(res["Properties"]["Definition"], name)

    def test_every_sdk_task_retries_its_services_throttling(self):
        """EC2's RequestLimitExceeded, SQS's, CloudWatch's and Step Functions' throttling: every
        SDK task of those services retries it (with full jitter), so a burst of runs is slowed,
        not failed."""
        throttled = {"ec2": "Ec2.RequestLimitExceededException", "sqs": "Sqs.ThrottlingException",
                     "cloudwatch": "CloudWatch.ThrottlingException", "sfn": "Sfn.ThrottlingException"}

        def walk(states, where):
            for name, st in states.items():
                service = st.get("Resource", "").partition("aws-sdk:")[2].split(":")[0]
                if st.get("Type") == "Task" and service in throttled:
                    retried = [e for r in st.get("Retry", []) for e in r["ErrorEquals"]]
                    self.assertIn(throttled[service], retried, f"{where}.{name}")
                    self.assertTrue(all(r.get("JitterStrategy") == "FULL" for r in st["Retry"]), f"{where}.{name}")
                if "ItemProcessor" in st:
                    walk(st["ItemProcessor"]["States"], f"{where}.{name}")

        for name, res in self.template["Resources"].items():
            if res["Type"] == "AWS::StepFunctions::StateMachine":
                walk(res["Properties"]["Definition"]["States"], name)

    def test_every_optimized_integration_task_retries_its_services_throttling(self):
        """DynamoDB's, SQS's (sendMessage, with or without a task token), SNS's and EventBridge's
        optimized integrations: every task retries its service's throttling with full jitter
        (names in the template's header), and none retries an error heald answers with or a
        timeout (a command would be sent again for heald's refusal or silence)."""
        throttled = {"dynamodb": {"DynamoDB.ThrottlingException", "DynamoDB.ProvisionedThroughputExceededException"},
                     "sqs": {"SQS.RequestThrottledException", "SQS.ThrottlingException"},
                     "sns": {"SNS.ThrottledException", "SNS.ThrottlingException"},
                     "events": {"EventBridge.FailedEntry", "EventBridge.ThrottlingException"}}
        seen = set()

        def walk(states, where):
            for name, st in states.items():
                resource = st.get("Resource", "")
                if st.get("Type") == "Task" and ":aws-sdk:" not in resource:
                    service = resource.partition(":::")[2].split(":")[0]
                    self.assertIn(service, throttled, f"{where}.{name}: which errors does {resource} throttle with?")
                    seen.add(service)
                    retriers = [r for r in st.get("Retry", []) if "States.ALL" in r["ErrorEquals"]
                                or throttled[service] <= set(r["ErrorEquals"])]
                    self.assertTrue(retriers, f"{where}.{name} retries {sorted(throttled[service])}")
                    self.assertTrue(all(r.get("JitterStrategy") == "FULL" for r in retriers), f"{where}.{name}")
                    if resource.endswith(".waitForTaskToken"):
                        retried = {e for r in st.get("Retry", []) for e in r["ErrorEquals"]}
                        self.assertEqual([e for e in retried if e.startswith(("heald.", "States."))], [],
                                         f"{where}.{name}: only the send is retried")
                if "ItemProcessor" in st:
                    walk(st["ItemProcessor"]["States"], f"{where}.{name}")

        for name, res in self.template["Resources"].items():
            if res["Type"] == "AWS::StepFunctions::StateMachine":
                walk(res["Properties"]["Definition"]["States"], name)
        self.assertEqual(seen, set(throttled))

    def test_coordinator_releases_its_leases_on_every_path(self):
        """Every task between taking the group's slot and the release catches every error
        into the release."""
        states = self.template["Resources"]["CoordinatorStateMachine"]["Properties"]["Definition"]["States"]
        seen, todo = set(), ["Remediate"]
        while todo:
            name = todo.pop()
            # Ec2RecoveryNotVerified: only a run that verified EC2's recovery, before any slot,
            # climbs there; it goes back to the gate holding its instance's lease alone.
            if name in seen or name in ("ReleaseGroup", "Ec2RecoveryNotVerified"):
                continue
            seen.add(name)
            st = states[name]
            if st["Type"] == "Task":
                catches = {c["Next"]: c["ErrorEquals"] for c in st.get("Catch", [])}
                self.assertTrue(any("States.ALL" in e for e in catches.values()), f"{name} catches everything")
            self.assertNotIn(st["Type"], ("Fail", "Succeed"), f"{name} ends without releasing")
            todo += [st[k] for k in ("Next", "Default") if k in st]
            todo += [c["Next"] for c in st.get("Choices", []) + st.get("Catch", [])]
        self.assertIn("Stop", seen)


if __name__ == "__main__":
    unittest.main()
