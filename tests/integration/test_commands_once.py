"""test_commands_once.py: a command runs once, as it was sent, while it is still allowed:
kill -9 mid-command (not run again after the restart), a corrupt journal record (refused,
not run again), a command id reused for another command (id-reused, the new task token
failed), expiry and [commands] allow judged again when a queued job starts, heartbeats for
queued jobs, a reload during a verification after a restart (carried over), and a
redelivery that waits for that verification to answer its own task token."""
import glob
import json
import os
import signal
import threading
import time

import awsbed
from test_commands import CommandCase
from test_commands_delivery import slow_check


class OnceTest(CommandCase):
    def sample_depths(self, until):
        """(visible, in flight) every 0.25 s until until() is true; returns the samples."""
        depths = []
        while not until():
            depths.append(self.queue.depth())
            time.sleep(0.25)
        return depths

    def test_kill9_during_command_not_run_again(self):
        agent = self.start_polling(self.command_agent(visibility_timeout="2s", **slow_check(5)))
        cmd = awsbed.new_command("run-checks", checks=["slow"])
        self.queue.send(cmd)
        self.assertEqual(self.one(agent, "Command Received")["receive_count"], 1)
        agent.kill9()

        agent.start()
        failed = self.one(agent, "Command Failed", timeout=20)
        self.assertEqual(failed["command_id"], cmd["command_id"])
        self.assertRegex(failed["reason"], "interrupted")
        self.assertNotIn("redelivered", failed)
        # SQS delivers the message again (its visibility ran out): answered from the journal.
        again = self.one(agent, "Command Failed", timeout=20)
        self.assertIs(again["redelivered"], True)
        self.assertQueueEmpty()
        self.assertEqual(agent.event_lines("command-received"), [], "not run again")
        self.assertEqual(len(agent.event_lines("command-interrupted")), 1)
        self.assertNoEvents(agent, "Command Received", "Command Succeeded")
        self.assertEqual(agent.stop(), 0)

    def test_corrupt_record_refuses_its_command(self):
        agent = self.start_polling(self.command_agent())
        cmd = awsbed.new_command("ping")
        self.queue.send(cmd)
        self.one(agent, "Command Received")
        self.one(agent, "Command Succeeded")
        self.assertQueueEmpty()
        self.assertEqual(self.stop(agent), 0)
        (record,) = glob.glob(os.path.join(agent.state_dir, "commands", "*.json"))
        with open(record, "w") as f:
            f.write('{"version":1,"command_id":')

        self.start_polling(agent)
        agent.wait_for_log(r"1 unreadable records", timeout=5)
        self.queue.send(cmd)
        failed = self.one(agent, "Command Failed")
        self.assertEqual(failed["command_id"], cmd["command_id"])
        self.assertRegex(failed["reason"], "unreadable")
        self.assertQueueEmpty()
        self.assertEqual(agent.event_lines("command-received"), [], "not run a second time")
        self.assertNoEvents(agent, "Command Received", "Command Succeeded")
        self.assertEqual(agent.stop(), 0)

    def test_reused_command_id_rejected(self):
        agent = self.start_polling(self.command_agent(allow="ping, run-checks, reboot"))
        ping = awsbed.new_command("ping", command_id=f"op-{int(time.time() * 1000)}")
        self.queue.send(ping)
        self.one(agent, "Command Received")
        self.one(agent, "Command Succeeded")

        # Another command under the same id, with a task token: rejected, and the token failed.
        reboot = awsbed.new_command("reboot", command_id=ping["command_id"])
        sfn = self.bed.fleet.client("stepfunctions")
        arn = self.bed.fleet.command_state_machine(f"reuse-{int(time.time() * 1000)}", self.queue, reboot)
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        rejected = self.one(agent, "Command Rejected")
        self.assertEqual(rejected["reason"], "id-reused")
        self.assertEqual(rejected["command_id"], ping["command_id"])
        self.assertRegex(rejected["message"], r"\(ping\)")
        done = self.wait_until(lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING"
                               and d, 30, "the execution to finish", interval=0.3)
        self.assertEqual(done["status"], "FAILED", done)
        self.assertEqual(self.proxy_calls("SendTaskSuccess"), [], "never the old answer")
        self.assertEqual([r["status"] for r in self.proxy_calls("SendTaskFailure")], [200])

        # The same command again is still a redelivery.
        self.queue.send(ping)
        self.assertIs(self.one(agent, "Command Succeeded")["redelivered"], True)
        self.assertQueueEmpty()
        self.assertEqual(len(agent.event_lines("command-received")), 1)
        self.assertNoEvents(agent, "Command Received", "Rebooting")
        self.assertEqual(agent.stop(), 0)

    def test_expiry_judged_when_the_job_starts(self):
        slow = awsbed.new_command("run-checks", checks=["slow"])
        stale = awsbed.new_command("ping", ttl=2)
        self.queue.send(slow)
        self.queue.send(stale)
        agent = self.start_polling(self.command_agent(visibility_timeout="10s", **slow_check(4)))
        received = self.one(agent, "Command Received")
        self.assertEqual(received["command_id"], slow["command_id"])
        self.one(agent, "Command Succeeded", timeout=20)
        rejected = self.one(agent, "Command Rejected")
        self.assertEqual((rejected["command_id"], rejected["reason"]), (stale["command_id"], "expired"))
        self.assertQueueEmpty()
        self.assertEqual(len(agent.event_lines("command-received")), 1, "the stale ping did not run")
        self.assertNoEvents(agent, "Command Received", "Command Succeeded")
        self.assertEqual(agent.stop(), 0)

    def test_allow_judged_when_the_job_starts(self):
        slow = awsbed.new_command("run-checks", checks=["slow"])
        ping = awsbed.new_command("ping")
        self.queue.send(slow)
        self.queue.send(ping)
        agent = self.start_polling(self.command_agent(visibility_timeout="10s", **slow_check(4)))
        self.assertEqual(self.one(agent, "Command Received")["command_id"], slow["command_id"])
        # While the first runs, a reload takes ping away.
        agent.configure(allow="run-checks")
        agent.proc.send_signal(signal.SIGHUP)
        agent.wait_for_event_log("reloaded", timeout=5)
        self.one(agent, "Command Succeeded", timeout=20)
        rejected = self.one(agent, "Command Rejected")
        self.assertEqual((rejected["command_id"], rejected["reason"]), (ping["command_id"], "action-not-allowed"))
        self.assertQueueEmpty()
        self.assertEqual(len(agent.event_lines("command-received")), 1, "the revoked ping did not run")
        self.assertNoEvents(agent, "Command Received", "Command Succeeded")
        self.assertEqual(agent.stop(), 0)

    def test_queued_commands_stay_invisible(self):
        first = awsbed.new_command("run-checks", checks=["slow"])
        second = awsbed.new_command("run-checks", checks=["slow"])
        self.queue.send(first)
        self.queue.send(second)
        agent = self.start_polling(self.command_agent(visibility_timeout="2s", **slow_check(3)))
        self.one(agent, "Command Received")
        results = []
        sampler_done = threading.Event()
        depths = []

        def sample():
            depths.extend(self.sample_depths(sampler_done.is_set))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            results = agent.events(2, timeout=30, detail_type="Command Succeeded")
        finally:
            sampler_done.set()
            sampler.join()
        self.assertEqual(sorted(e["detail"]["command_id"] for e in results),
                         sorted([first["command_id"], second["command_id"]]))
        self.assertEqual([d for d in depths if d[0] > 0], [],
                         f"the queued message became visible while the first ran: {depths}")
        self.assertQueueEmpty()
        self.assertEqual(len(agent.event_lines("command-received")), 2)
        self.assertEqual(agent.stop(), 0)

    def test_reload_during_verification_and_a_waiting_redelivery(self):
        marker = os.path.join(self.bed.run_dir, f"ready-{int(time.time() * 1000)}")
        agent = self.start_polling(self.command_agent(allow="ping, prepare-stop", verify_timeout="30s"))
        cmd = awsbed.new_command("prepare-stop")
        self.queue.send(cmd)
        self.one(agent, "Command Received")
        self.one(agent, "Ready For Stop")
        self.assertQueueEmpty()
        self.assertEqual(self.stop(agent), 0)

        # After the restart the verification waits for a check that fails until the file exists.
        agent.configure(**{"check ready__type": "file_age", "check ready__path": marker,
                           "check ready__max_age": "1h", "check ready__interval": "1h"})
        self.start_polling(agent)
        agent.wait_for_log(r"commands? from before this start waits? for verification", timeout=5)
        # The fleet retries the same command with a new task token while it is verified.
        sfn = self.bed.fleet.client("stepfunctions")
        arn = self.bed.fleet.command_state_machine(f"retry-{int(time.time() * 1000)}", self.queue, cmd)
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        agent.wait_for_log(r"delivered again while its verification is pending", timeout=15)
        self.assertEqual(sfn.describe_execution(executionArn=execution)["status"], "RUNNING")

        agent.proc.send_signal(signal.SIGHUP)
        agent.wait_for_event_log("reloaded", timeout=5)
        time.sleep(1)
        open(marker, "w").close()
        verified = self.one(agent, "Command Verified", timeout=20)
        self.assertEqual(verified["command_id"], cmd["command_id"])
        self.assertEqual([c["check"] for c in verified["checks"]], ["ready"])
        again = self.one(agent, "Command Verified")
        self.assertIs(again["redelivered"], True)
        done = self.wait_until(lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING"
                               and d, 20, "the execution to finish", interval=0.3)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(json.loads(done["output"])["command_id"], cmd["command_id"])
        self.assertQueueEmpty()
        self.assertEqual(agent.event_lines("command-received"), [], "not run again")
        self.assertNoEvents(agent, "Command Verification Failed", "Command Received", "Ready For Stop")
        self.assertEqual(agent.stop(), 0)
