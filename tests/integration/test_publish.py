"""test_publish.py: the happy path: send-event, Agent Started/Stopping, heartbeats, check-config."""
import os
import re

from harness import EX_CONFIG, BedTestCase


class PublishTest(BedTestCase):
    def test_send_event_delivered_with_schema(self):
        agent = self.bed.agent(self)
        cp = agent.send_event("Integration Test", {"n": 1, "note": "hello"})
        self.assertEqual(cp.returncode, 0, f"send-event failed: {cp.stderr}")
        (ev,) = agent.events(1, detail_type="Integration Test")
        self.assertEqual(ev["detail"], {"n": 1, "note": "hello"})
        reqs = self.bed.proxy.log()
        self.assertEqual([r["status"] for r in reqs], [200], "one PutEvents, accepted")
        self.assertTrue(reqs[0]["access_key_id"].startswith("ASIA"),
                        "signed with the role's session credentials from IMDS")

    def test_send_event_fails_when_aws_refuses(self):
        agent = self.bed.agent(self)
        self.bed.fleet.set_role_policy('{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                                       '"Action":"events:ListRules","Resource":"*"}]}')
        cp = agent.send_event("Integration Test", {"n": 2})
        self.assertNotEqual(cp.returncode, 0)
        self.assertRegex(cp.stderr, r"AccessDenied")

    def test_started_heartbeats_stopping_and_seq_across_restart(self):
        agent = self.bed.agent(self, heartbeat_interval="1s")
        agent.start()
        (started,) = agent.events(1, detail_type="Agent Started")
        self.assertIsInstance(started["detail"].get("version"), str)
        beats = agent.events(3, detail_type="Agent Heartbeat")
        # Up to 4 PutEvents are in flight and the tap is an SQS queue: arrival order is not
        # promised, but a later seq is never an earlier heartbeat.
        by_seq = sorted(beats, key=lambda e: e["detail"]["seq"])
        self.assertEqual([e["time"] for e in by_seq], sorted(e["time"] for e in by_seq),
                         "seq increases with the heartbeat's time")
        first = self.seqs(beats)
        self.assertEqual(len(set(first)), 3)
        self.assertEqual(agent.stop(), 0)
        agent.events(1, detail_type="Agent Stopping")
        first += self.seqs(agent.drain())  # every heartbeat of the first run, not only 3 of them

        agent.start()
        agent.events(1, detail_type="Agent Started")
        second = self.seqs(agent.events(2, detail_type="Agent Heartbeat"))
        self.assertGreater(min(second), max(first), "seq keeps increasing across a restart")
        self.assertEqual(agent.stop(), 0)

    def test_counts_are_grammatical(self):
        agent = self.bed.agent(self)
        agent.start()
        agent.events(1, detail_type="Agent Started")
        agent.wait_for_log(r"Published 1 event \(0 to retry\)")
        self.assertEqual(agent.stop(), 0)
        self.assertNotRegex(agent.log_text(), r"\b1 (event|check|command|record|tail|byte)s\b")

    def test_check_config_ok(self):
        agent = self.bed.agent(self)
        cp = agent.run_cli("check-config")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn(agent.source, cp.stdout, "prints the effective config")

    def test_check_config_bad_value_exit_78_with_file_line(self):
        agent = self.bed.agent(self)
        bad = os.path.join(agent.dir, "bad.ini")
        with open(bad, "w") as f:
            f.write("[agent]\nstate_dir = /tmp/x\nheartbeat_interval = banana\n")
        cp = agent.run_cli("check-config", config=bad)
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
        self.assertRegex(cp.stderr, re.escape(bad) + r":3: ")

    def test_check_config_syntax_error_exit_78(self):
        agent = self.bed.agent(self)
        bad = os.path.join(agent.dir, "syntax.ini")
        with open(bad, "w") as f:
            f.write("[agent]\nlog_level = info\n[eventbridge\nsource = x\n")
        cp = agent.run_cli("check-config", config=bad)
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
        self.assertRegex(cp.stderr, re.escape(bad) + r":3: ")
