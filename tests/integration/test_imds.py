"""test_imds.py: heald and the instance metadata service (IMDSv2 only)."""
from harness import BedTestCase


class ImdsTest(BedTestCase):
    def test_imds_down_at_start_spools_then_delivers(self):
        self.bed.imds.set_fault("refuse")
        agent = self.bed.agent(self, heartbeat_interval="300ms")
        agent.start()
        agent.wait_for_event_log("imds-error")
        spooled = agent.wait_heartbeats_recorded(5)
        self.assertEqual(self.bed.proxy.log(), [], "nothing can be signed without credentials")
        self.bed.imds.set_fault(None)
        agent.events(1, detail_type="Agent Started")
        got = self.heartbeats_through(agent, spooled - 1)
        agent.stop()
        seqs = self.seqs(got + agent.drain())
        self.assertGreaterEqual(max(seqs), 4, "heartbeats spooled while IMDS was down")
        self.assertContiguous(seqs, first=1, msg="spooled while IMDS was down")

    def test_imds_errors_then_recovers(self):
        self.bed.imds.set_fault("500")
        agent = self.bed.agent(self)
        agent.start()
        agent.wait_for_event_log("imds-error")
        self.bed.imds.set_fault(None)
        agent.events(1, detail_type="Agent Started")
        agent.stop()

    def test_send_event_imds_down_says_what_happens(self):
        # send-event does not use the outbox: its message must not promise that events wait there
        self.bed.imds.set_fault("refuse")
        agent = self.bed.agent(self)
        cp = agent.send_event("Integration Test", {"n": 4}, timeout=60)
        self.assertEqual(cp.returncode, 69, cp.stderr)
        self.assertIn("the event is sent once it can be read", cp.stderr)
        self.assertNotIn("outbox", cp.stderr)

    def test_imds_token_flow_only(self):
        self.bed.imds.reset_counts()
        agent = self.bed.agent(self)
        cp = agent.send_event("Integration Test", {"n": 3})
        self.assertEqual(cp.returncode, 0, cp.stderr)
        counts = self.bed.imds.counts_snapshot()
        self.assertGreaterEqual(counts.get("/latest/api/token", 0), 1, counts)
        self.assertEqual(self.bed.imds.imdsv1_attempts, 0, "an IMDSv1 request (no token)")
