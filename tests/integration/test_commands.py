"""test_commands.py: the command channel end to end: the fleet sends commands to the
instance's SQS queue (moto), heald runs them and reports events; rejections; EventBridge
envelopes; Step Functions task tokens (a real state machine run by moto), and a command whose
run ended before heald took it (asker-gone).

Unit actions need systemd, which this host lacks: the system tests run them.
"""
import glob
import json
import os
import re
import statistics
import time

import awsbed
from harness import BedTestCase

QUEUE_URL = "{proxy}/{{account_id}}/heald-{{instance_id}}"  # heald fills in the placeholders


class CommandCase(BedTestCase):
    """A fresh, empty command queue per test (with a DLQ), and heald polling it."""

    max_receive_count = 5

    def setUp(self):
        super().setUp()
        self.queue = self.bed.fleet.command_queue(max_receive_count=self.max_receive_count)

    def command_agent(self, **overrides):
        """An agent polling the instance's queue (not started)."""
        cfg = {"queue_url": QUEUE_URL.format(proxy=self.bed.proxy.endpoint), "wait_time": "2s",
               "visibility_timeout": "30s", "verify_timeout": "20s"}
        cfg.update(overrides)
        return self.bed.agent(self, **cfg)

    def start_polling(self, agent):
        agent.start()
        agent.wait_for_log(r"Receiving commands from ")
        return agent

    def wait_polls_answered(self) -> None:
        """Wait until every ReceiveMessage that reached the bed has had SQS's answer (the
        proxy records the status once moto answered): a long poll still waiting in SQS would
        take a message sent meanwhile for a dead or cancelled request, and hide it."""
        self.wait_until(lambda: all(r["status"] is not None for r in self.proxy_calls("ReceiveMessage")),
                        30, "heald's last poll to be answered by SQS")

    def stop(self, agent) -> int:
        """Stop heald and let its last long poll (still waiting in SQS) run out: a message
        sent meanwhile would go to that dead request and stay invisible."""
        rc = agent.stop()
        self.wait_polls_answered()
        return rc

    def one(self, agent, detail_type: str, timeout: float = 30) -> dict:
        return agent.events(1, timeout=timeout, detail_type=detail_type)[0]["detail"]

    def assertQueueEmpty(self, timeout: float = 30):  # noqa: N802 - unittest style
        """No message visible or in flight: every message was deleted."""
        depths = []
        try:
            self.wait_until(lambda: depths.append(self.queue.depth()) or depths[-1] == (0, 0),
                            timeout, "the queue to be empty")
        except AssertionError:
            self.fail(f"the queue is not empty after {timeout}s: (visible, in flight) {depths[-1]}")

    def assertNoEvents(self, agent, *detail_types: str, wait: int = 1):  # noqa: N802
        """None of these events, among everything on the tap now."""
        got = [e["detail-type"] for e in agent.drain(wait=wait)]
        self.assertEqual([t for t in got if t in detail_types], [], f"events: {got}")

    def proxy_calls(self, operation: str) -> list[dict]:
        return self.bed.proxy.log(operation)


class CommandTest(CommandCase):
    def test_receiving_log_names_the_endpoint_used(self):
        # requests go to sqs_endpoint, not to the queue URL's host: the log must say so
        endpoint = self.bed.proxy.endpoint.replace("127.0.0.1", "localhost")
        self.assertNotEqual(endpoint, self.bed.proxy.endpoint)
        agent = self.command_agent(sqs_endpoint=endpoint)
        agent.start()
        agent.wait_for_log(r"Receiving commands from \S+ through " + re.escape(endpoint) + "$")
        self.stop(agent)

    def test_ping_round_trip(self):
        agent = self.start_polling(self.command_agent())
        turnaround, end_to_end = [], []
        for _ in range(5):
            cmd = awsbed.new_command("ping", reason="integration test")
            sent = time.time()
            message_id = self.queue.send(cmd)
            received = self.one(agent, "Command Received")
            done = self.one(agent, "Command Succeeded")
            end_to_end.append(time.time() - sent)
            self.assertEqual(received["command_id"], cmd["command_id"])
            self.assertEqual(received["message_id"], message_id)
            self.assertEqual(received["receive_count"], 1)
            self.assertEqual(received["reason"], "integration test")
            self.assertFalse(received["via_eventbridge"])
            self.assertTrue(received["sender_id"])
            self.assertEqual(done["command_id"], cmd["command_id"])
            self.assertEqual(done["action"], "ping")
            self.assertTrue(done["version"] and done["boot_id"])
            self.assertEqual(done["units"], [])
            self.assertQueueEmpty()
            deletes = [r for r in self.proxy_calls("DeleteMessage") if r["time"] >= sent]
            self.assertEqual([r["status"] for r in deletes], [200])
            turnaround.append(deletes[0]["time"] - sent)
        print(f"\n# ping: send -> DeleteMessage median {statistics.median(turnaround) * 1000:.0f} ms, "
              f"send -> Command Succeeded at the subscriber median "
              f"{statistics.median(end_to_end) * 1000:.0f} ms (n={len(turnaround)})", flush=True)
        self.assertEqual(len(agent.event_lines("command-received")), 5)
        self.assertEqual(self.proxy_calls("SendTaskHeartbeat"), [], "no task token, nobody to ask")
        self.assertEqual(agent.stop(), 0)

    def test_run_checks(self):
        fresh = self.bed.run_dir + "/fresh-file"
        open(fresh, "w").close()
        agent = self.start_polling(self.command_agent(**{
            "check fresh__type": "file_age", "check fresh__path": fresh,
            "check fresh__max_age": "1h",
            "check root-disk__type": "disk", "check root-disk__path": "/",
            "check root-disk__max_used_percent": "100",
            "check missing__type": "file_age", "check missing__path": fresh + ".missing",
            "check missing__max_age": "1h"}))

        cmd = awsbed.new_command("run-checks", checks=["fresh", "root-disk"])
        self.queue.send(cmd)
        self.one(agent, "Command Received")
        done = self.one(agent, "Command Succeeded")
        self.assertTrue(done["verified"])
        self.assertEqual(sorted(c["check"] for c in done["checks"]), ["fresh", "root-disk"])
        self.assertTrue(all(c["healthy"] for c in done["checks"]), done["checks"])
        self.assertEqual({c["check_type"] for c in done["checks"]}, {"file_age", "disk"})

        # All checks: one is unhealthy; the command still succeeds and says so.
        self.queue.send(awsbed.new_command("run-checks"))
        done = self.one(agent, "Command Succeeded")
        self.assertFalse(done["verified"])
        self.assertEqual({c["check"]: c["healthy"] for c in done["checks"]},
                         {"fresh": True, "root-disk": True, "missing": False})
        # each check ran once: what failed is named, no wait for verify_timeout is claimed
        self.assertEqual(done["reason"], "failed: missing")

        self.queue.send(awsbed.new_command("run-checks", checks=["no-such-check"]))
        failed = self.one(agent, "Command Failed")
        self.assertEqual(failed["reason"], 'no check named "no-such-check"')
        self.assertQueueEmpty()
        self.assertEqual(agent.stop(), 0)

    def test_every_rejection_reason(self):
        agent = self.start_polling(self.command_agent(
            allow="ping, run-checks, restart-units", units="app.service, app-worker@*.service"))
        past = time.time() - 60
        bodies = {
            "malformed-json": '{"command_id": "x", "action": ',
            "not-a-command": json.dumps({"hello": "world"}),
            "unknown-action": awsbed.new_command("dance"),
            "action-not-allowed": awsbed.new_command("reboot"),
            "unit-not-allowed": awsbed.new_command("restart-units", units=["sshd.service"]),
            "wrong-instance": awsbed.new_command("ping", instance_id="i-0fedcba9876543210"),
            "expired": awsbed.new_command("ping", ttl=None, issued_at=awsbed.iso8601(past - 60),
                                          expires_at=awsbed.iso8601(past)),
            "oversized": awsbed.new_command("ping", padding="x" * (70 * 1024)),
        }
        ids = {}
        for reason, body in bodies.items():
            ids[self.queue.send(body)] = reason
        got = agent.events(len(bodies), detail_type="Command Rejected")
        seen = {e["detail"]["message_id"]: e["detail"] for e in got}
        self.assertEqual({m: d["reason"] for m, d in seen.items()}, ids)
        for message_id, d in seen.items():
            body = bodies[ids[message_id]]
            named = isinstance(body, dict) and d["reason"] not in ("oversized",)
            if named:
                self.assertEqual(d["command_id"], body["command_id"], d)
            if d["reason"] in ("malformed-json", "not-a-command"):
                self.assertIsNone(d["command_id"], d)
            self.assertTrue(d["message"], d)
        self.assertNotIn("x" * 300, json.dumps(got), "a rejection quotes at most a bounded prefix")
        self.assertEqual(len(agent.event_lines("command-rejected")), len(bodies))
        self.assertEqual(agent.event_lines("command-received"), [], "nothing rejected ran")
        self.assertQueueEmpty()
        self.assertNoEvents(agent, "Command Received", "Command Succeeded", "Command Failed")
        self.assertEqual(agent.stop(), 0)

    def test_sender_not_allowed(self):
        agent = self.start_polling(self.command_agent(allowed_senders="AROAEXAMPLEOPSROLE:*"))
        self.queue.send(awsbed.new_command("ping"))
        d = self.one(agent, "Command Rejected")
        self.assertEqual(d["reason"], "sender-not-allowed")
        self.assertIsNone(d["command_id"], "an unauthorised sender's body is not even parsed")
        self.assertTrue(d["sender_id"])
        self.assertQueueEmpty()
        self.assertEqual(self.stop(agent), 0)
        # The same sender, allowed by a glob: the command runs.
        agent.configure(allowed_senders=f"AROAEXAMPLEOPSROLE:*, {d['sender_id'][:4]}*")
        self.start_polling(agent)
        self.queue.send(awsbed.new_command("ping"))
        self.one(agent, "Command Succeeded")
        self.assertEqual(agent.stop(), 0)

    def test_eventbridge_wrapped_command(self):
        agent = self.start_polling(self.command_agent())
        source = "heald.it.fleet"
        self.bed.fleet.command_rule(self.queue, source)
        cmd = awsbed.new_command("ping")
        r = self.bed.fleet.client("events").put_events(Entries=[{
            "Source": source, "DetailType": "Heald Command", "Detail": json.dumps(cmd)}])
        self.assertEqual(r["FailedEntryCount"], 0)
        received = self.one(agent, "Command Received")
        self.assertTrue(received["via_eventbridge"])
        self.assertEqual(received["command_id"], cmd["command_id"])
        self.assertEqual(self.one(agent, "Command Succeeded")["command_id"], cmd["command_id"])
        # An event on the same rule that is no command is rejected, not run.
        self.bed.fleet.client("events").put_events(Entries=[{
            "Source": source, "DetailType": "Heald Command", "Detail": json.dumps({"hello": 1})}])
        d = self.one(agent, "Command Rejected")
        self.assertEqual(d["reason"], "not-a-command")
        self.assertRegex(d["message"], "EventBridge")
        self.assertQueueEmpty()
        self.assertEqual(agent.stop(), 0)


class TaskTokenTest(CommandCase):
    def start_run(self, name: str, command: dict) -> str:
        """A run of a state machine that sends command with its task token; returns its ARN."""
        sfn = self.bed.fleet.client("stepfunctions")
        arn = self.bed.fleet.command_state_machine(f"{name}-{int(time.time() * 1000)}", self.queue, command)
        return sfn.start_execution(stateMachineArn=arn)["executionArn"]

    def run_state_machine(self, name: str, command: dict, timeout: float = 30) -> dict:
        sfn = self.bed.fleet.client("stepfunctions")
        execution = self.start_run(name, command)

        def finished():
            d = sfn.describe_execution(executionArn=execution)
            return d if d["status"] != "RUNNING" else None

        return self.wait_until(finished, timeout, "the execution to finish", interval=0.3)

    def assertTokenNotLogged(self, agent):  # noqa: N802 - unittest style
        """heald sent a task token and never wrote it to its log."""
        self.assertTrue(self.bed.task_tokens, "no task token reached Step Functions")
        log = agent.log_text()
        self.assertEqual([t for t in self.bed.task_tokens if t in log], [])

    def test_task_token_success(self):
        agent = self.start_polling(self.command_agent())
        cmd = awsbed.new_command("ping")
        d = self.run_state_machine("ping", cmd)
        self.assertEqual(d["status"], "SUCCEEDED", d)
        output = json.loads(d["output"])
        self.assertEqual(output["command_id"], cmd["command_id"])
        self.assertEqual(output["action"], "ping")
        self.assertTrue(output["version"])
        self.assertEqual(self.one(agent, "Command Succeeded")["command_id"], cmd["command_id"])
        calls = self.proxy_calls("SendTaskSuccess")
        self.assertEqual([r["status"] for r in calls], [200])
        # Asked once whether the run still waits, before it ran.
        asked = self.proxy_calls("SendTaskHeartbeat")
        self.assertEqual([r["status"] for r in asked], [200])
        self.assertLess(asked[0]["time"], calls[0]["time"])
        self.assertQueueEmpty()
        self.assertTokenNotLogged(agent)
        self.assertEqual(agent.stop(), 0)

    def test_task_result_sent_again_after_a_server_error(self):
        """One 500 on SendTaskSuccess must not leave the fleet's run waiting out its timeout."""
        agent = self.start_polling(self.command_agent())
        self.bed.fail_target("SendTaskSuccess", 1)
        cmd = awsbed.new_command("ping")
        d = self.run_state_machine("ping-again", cmd)
        self.assertEqual(d["status"], "SUCCEEDED", d)
        self.assertEqual(json.loads(d["output"])["command_id"], cmd["command_id"])
        self.assertEqual([r["status"] for r in self.proxy_calls("SendTaskSuccess")], [500, 200])
        self.assertQueueEmpty()
        self.assertTokenNotLogged(agent)
        self.assertEqual(agent.stop(), 0)

    def test_task_token_failure_after_rejection(self):
        agent = self.start_polling(self.command_agent())
        cmd = awsbed.new_command("reboot")  # not in [commands] allow
        d = self.run_state_machine("reboot", cmd)
        self.assertEqual(d["status"], "FAILED", d)
        self.assertEqual(self.one(agent, "Command Rejected")["reason"], "action-not-allowed")
        self.assertEqual([r["status"] for r in self.proxy_calls("SendTaskFailure")], [200])
        history = self.bed.fleet.client("stepfunctions").get_execution_history(
            executionArn=d["executionArn"])["events"]
        failure = [e for e in history if e["type"] == "TaskFailed"]
        self.assertTrue(failure, [e["type"] for e in history])
        details = failure[0]["taskFailedEventDetails"]
        self.assertEqual(details["error"], "heald.Command.Rejected")
        self.assertEqual(json.loads(details["cause"])["reason"], "action-not-allowed")
        self.assertQueueEmpty()
        self.assertTokenNotLogged(agent)
        self.assertEqual(agent.stop(), 0)

    def test_command_of_a_stopped_run_rejected_not_run(self):
        """A command whose Step Functions run ended before heald took it (stopped by an operator
        while heald was down) does not run: nobody waits for it, and this stale prepare-stop
        would leave heald deaf (Ready For Stop) with nobody left to stop the instance."""
        agent = self.command_agent(allow="ping, prepare-stop")
        sfn = self.bed.fleet.client("stepfunctions")
        cmd = awsbed.new_command("prepare-stop", reason="scale-in")
        execution = self.start_run("stale", cmd)
        self.wait_until(lambda: self.queue.depth() == (1, 0), 30, "the command in the queue")
        sfn.stop_execution(executionArn=execution, error="Operator", cause="scale-in called off")
        self.wait_until(lambda: sfn.describe_execution(executionArn=execution)["status"] == "ABORTED", 30,
                        "the run to be stopped")

        self.start_polling(agent)  # heald was down meanwhile
        rejected = self.one(agent, "Command Rejected")
        self.assertEqual(rejected["reason"], "asker-gone")
        self.assertEqual(rejected["command_id"], cmd["command_id"])
        self.assertRegex(rejected["message"], r"\((TaskTimedOut|TaskDoesNotExist|InvalidToken)\)")
        self.assertQueueEmpty()
        self.assertEqual([r["status"] for r in self.proxy_calls("SendTaskHeartbeat")], [400])
        self.assertEqual(self.proxy_calls("SendTaskSuccess") + self.proxy_calls("SendTaskFailure"), [],
                         "no task result: nobody waits for one")
        self.assertEqual(agent.event_lines("command-received"), [], "not run")
        self.assertEqual(glob.glob(os.path.join(agent.state_dir, "commands", "*.json")), [],
                         "a stale command leaves no journal record")
        self.assertNoEvents(agent, "Command Received", "Ready For Stop", "Command Failed")

        # Not deaf: the next command runs.
        ping = awsbed.new_command("ping")
        self.queue.send(ping)
        self.assertEqual(self.one(agent, "Command Succeeded")["command_id"], ping["command_id"])
        self.assertTokenNotLogged(agent)
        self.assertEqual(agent.stop(), 0)

    def test_heartbeat_failing_every_attempt_given_back_then_run(self):
        """Step Functions unreachable: the command does not run unconfirmed; SQS brings it again
        after [sqs] visibility_timeout and it runs once Step Functions answers."""
        agent = self.start_polling(self.command_agent(visibility_timeout="5s"))
        self.bed.fail_target("SendTaskHeartbeat", 6)  # every attempt of the first delivery
        cmd = awsbed.new_command("ping")
        d = self.run_state_machine("unconfirmed", cmd, timeout=60)
        self.assertEqual(d["status"], "SUCCEEDED", d)
        self.assertEqual(json.loads(d["output"])["command_id"], cmd["command_id"])
        self.assertEqual([r["status"] for r in self.proxy_calls("SendTaskHeartbeat")], [500] * 6 + [200])
        received = agent.events(1, detail_type="Command Received")
        self.assertEqual([e["detail"]["receive_count"] for e in received], [2], "run once, on the second receive")
        self.assertEqual(len(agent.log_lines(r"could not run now \(cannot tell whether its Step Functions run "
                                             r"still waits for it: SendTaskHeartbeat: InternalFailure")), 1)
        self.assertEqual(len(agent.event_lines("command-received")), 1)
        self.assertQueueEmpty()
        self.assertNoEvents(agent, "Command Received", "Command Rejected", "Command Failed")
        self.assertTokenNotLogged(agent)
        self.assertEqual(agent.stop(), 0)
