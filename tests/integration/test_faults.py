"""test_faults.py: EventBridge failing in the ways AWS does; nothing may be lost."""
import json
import os
import re

from harness import BedTestCase


def entry_key(entry: dict) -> tuple:
    """What identifies an entry across requests: its type and detail."""
    return entry["DetailType"], entry["Detail"]


class FaultTest(BedTestCase):
    def spool_while_down(self, agent, heartbeats: int) -> int:
        """Start heald with AWS unreachable and let the outbox fill with at least `heartbeats`
        heartbeats (counted, not timed: a busy machine fires the timer late); returns the seq
        recorded so far, every one of which must arrive."""
        self.bed.proxy.down()
        agent.start()
        agent.wait_for_event_log("publish-retry")
        return agent.wait_heartbeats_recorded(heartbeats)

    def test_partial_failure_retries_only_failed_entries(self):
        agent = self.bed.agent(self, heartbeat_interval="100ms")
        spooled = self.spool_while_down(agent, 12)
        failures = {1: "ThrottlingException", 3: "InternalFailure"}
        self.bed.proxy.fail_next(1, "partial", entries=failures)
        self.bed.proxy.up()
        self.wait_until(lambda: self.bed.proxy.pending_faults() == 0, 30, "the partial failure")
        since = agent.mark()
        # The backlog (retried entries included) arrives before the stop, which then has only
        # the newest heartbeats to send; heartbeat.seq may be one ahead of the outbox.
        got = self.heartbeats_through(agent, spooled - 1)
        agent.stop()

        reqs = self.bed.proxy.log()
        partial = next(i for i, r in enumerate(reqs) if r["fault"] == "partial")
        batch = reqs[partial]["entry_list"]
        self.assertGreater(len(batch), max(failures), "the first batch holds several entries")
        failed = {entry_key(batch[i]) for i in failures}
        succeeded = {entry_key(e) for i, e in enumerate(batch) if i not in failures}
        later = [entry_key(e) for r in reqs[partial + 1:] for e in r["entry_list"]]
        self.assertEqual(failed - set(later), set(), "every failed entry is sent again")
        self.assertEqual(succeeded & set(later), set(), "accepted entries are not sent again")
        self.assertEqual(len(later), len(set(later)), "each retried entry is sent once")
        self.assertEqual(agent.event_lines("dead-letter", since), [], "retryable codes")

        seqs = self.seqs(got + agent.drain())
        self.assertContiguous(seqs, first=1, msg="after a partial failure")

    def test_throttling_then_delivered(self):
        agent = self.bed.agent(self)
        self.bed.proxy.fail_next(3, "throttle")
        agent.start()
        agent.events(1, detail_type="Agent Started")
        statuses = [(r["status"], r["error"]) for r in self.bed.proxy.log()]
        self.assertEqual(statuses[:4], [(400, "ThrottlingException")] * 3 + [(200, None)])
        self.assertTrue(agent.event_lines("publish-retry"), "throttling is logged as a retry")
        self.assertEqual(agent.event_lines("aws-refused"), [], "throttling is not an operator error")
        agent.stop()

    def test_server_errors_and_dropped_connections_then_delivered(self):
        agent = self.bed.agent(self)
        self.bed.proxy.fail_next(1, "500")
        self.bed.proxy.fail_next(1, "503")
        self.bed.proxy.fail_next(1, "drop")
        agent.start()
        agent.events(1, detail_type="Agent Started")
        self.assertEqual([r["fault"] for r in self.bed.proxy.log()][:4],
                         ["500", "503", "drop", None])
        agent.stop()

    def test_aws_down_then_up_nothing_lost(self):
        agent = self.bed.agent(self, heartbeat_interval="200ms")
        agent.start()
        delivered = agent.events(2, detail_type="Agent Heartbeat")
        self.bed.proxy.down()
        agent.wait_for_event_log("publish-retry")
        spooled = agent.wait_heartbeats_recorded(agent.heartbeat_seq() + 10)  # 10 queue up
        self.bed.proxy.up()
        agent.unclaimed = delivered + agent.unclaimed  # which 2 came first is the tap's choice
        got = self.heartbeats_through(agent, max(15, spooled - 1))
        self.assertEqual(agent.stop(), 0)
        seqs = self.seqs(got + agent.drain(wait=2))
        self.assertContiguous(seqs, first=1, msg="before AWS went away and after it came back")
        self.assertGreaterEqual(max(seqs), 15)
        dups = len(seqs) - len(set(seqs))
        self.assertLessEqual(dups, 3, f"{dups} duplicates: at-least-once, but not a storm")

    def test_kill9_during_burst_every_seq_arrives(self):
        agent = self.bed.agent(self, heartbeat_interval="100ms")
        self.spool_while_down(agent, 12)
        agent.kill9()
        last = agent.heartbeat_seq()
        self.bed.proxy.up()
        agent.configure(heartbeat_interval="0")
        agent.start()
        agent.wait_for_log(r"\(event=published\)")
        # heartbeat.seq is made durable before its heartbeat is recorded (so that no number is
        # ever used twice): a kill between the two leaves it one ahead of the last one sent.
        got = self.heartbeats_through(agent, last - 1)
        self.assertEqual(agent.stop(), 0)
        seqs = self.seqs(got + agent.drain(wait=2))
        self.assertGreaterEqual(max(seqs), 10, "the burst was spooled before the kill")
        self.assertIn(max(seqs), (last, last - 1), "heartbeat.seq names the last heartbeat sent")
        self.assertContiguous(seqs, first=1, msg="after kill -9 and restart")

    def test_malformed_entry_dead_lettered_others_delivered(self):
        agent = self.bed.agent(self, heartbeat_interval="200ms")
        spooled = self.spool_while_down(agent, 5)
        self.bed.proxy.fail_next(1, "partial", entries={1: "ValidationException"})
        self.bed.proxy.up()
        line = agent.wait_for_event_log("dead-letter")
        self.assertRegex(line, r"ValidationException")
        got = self.heartbeats_through(agent, spooled - 1)
        agent.stop()
        reqs = self.bed.proxy.log()
        partial = next(r for r in reqs if r["fault"] == "partial")
        rejected = entry_key(partial["entry_list"][1])
        later = [entry_key(e) for r in reqs[reqs.index(partial) + 1:] for e in r["entry_list"]]
        self.assertNotIn(rejected, later, "a rejected entry is not retried")

        dl = os.path.join(agent.state_dir, "outbox", "dead-letter.jsonl")
        self.assertTrue(os.path.exists(dl), f"no {dl}; outbox has {agent.outbox_files()}")
        with open(dl) as f:
            lines = [json.loads(ln) for ln in f if ln.strip()]
        self.assertEqual(len(lines), 1, lines)
        text = json.dumps(lines[0])
        self.assertTrue(rejected[1] in text or json.dumps(rejected[1])[1:-1] in text,
                        f"the dead letter keeps the entry's detail: {text[:300]}")

        got += agent.drain()
        # moto accepted the whole batch before the proxy rewrote the answer, so the rejected
        # entry is in the tap too; what matters is that every other entry arrived.
        seqs = self.seqs(got)
        self.assertContiguous(seqs, first=1, msg="around the dead letter")

    def dead_letters(self, agent) -> list[str]:
        path = os.path.join(agent.state_dir, "outbox", "dead-letter.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [ln for ln in f if ln.strip()]

    def test_html_4xx_is_an_outage_not_a_dead_letter(self):
        """A proxy, captive portal or misrouted endpoint answers 404/407/408 with HTML: no
        AWS code, so nothing can be judged invalid; every event arrives once it passes."""
        agent = self.bed.agent(self, heartbeat_interval="200ms")
        statuses = [404, 407, 408] * 3
        for status in statuses:
            self.bed.proxy.fail_next(1, "html", status=status)
        agent.start()
        self.wait_until(lambda: self.bed.proxy.pending_faults() == 0, 30, "the HTML answers")
        got = self.heartbeats_through(agent, (agent.heartbeat_seq() or 1) - 1)
        agent.stop()
        answered = [r["status"] for r in self.bed.proxy.log() if r.get("fault") == "html"]
        self.assertEqual(answered, statuses)
        self.assertEqual(agent.event_lines("dead-letter"), [], "an HTML 4xx is not AWS saying invalid")
        self.assertEqual(self.dead_letters(agent), [])
        self.assertTrue(agent.event_lines("publish-retry"), "retried like an outage")
        self.assertContiguous(self.seqs(got + agent.drain(wait=2)), first=1, msg="after the HTML answers")

    def test_entry_access_denied_waits_not_dead_lettered(self):
        """Per-entry AccessDeniedException is fixable by an operator: slow retry, never a dead letter."""
        agent = self.bed.agent(self, heartbeat_interval="200ms")
        spooled = self.spool_while_down(agent, 5)
        self.bed.proxy.fail_next(1, "partial", entries={1: "AccessDeniedException"})
        since = agent.mark()
        self.bed.proxy.up()
        line = agent.wait_for_event_log("aws-refused", since=since)
        self.assertRegex(line, r"AccessDeniedException")
        reqs = self.bed.proxy.log()
        partial = next(r for r in reqs if r["fault"] == "partial")
        refused = entry_key(partial["entry_list"][1])

        def sent_again():
            reqs = self.bed.proxy.log()
            return [r for r in reqs[reqs.index(partial) + 1:] if refused in [entry_key(e) for e in r["entry_list"]]]
        # The refused entry comes back after auth_retry_interval (3 s in the bed): wait for it
        # and the rest of the backlog rather than for a fixed time.
        again = self.wait_until(sent_again, 30, "the refused entry to be sent again")
        got = self.heartbeats_through(agent, spooled - 1)
        agent.stop()
        self.assertEqual(agent.event_lines("dead-letter"), [])
        self.assertEqual(self.dead_letters(agent), [])
        self.assertGreaterEqual(again[0]["time"] - partial["time"], 2.5,
                                "after auth_retry_interval, not at once")
        self.assertContiguous(self.seqs(got + agent.drain(wait=2)), first=1, msg="around the refusal")

    def test_clock_skew_corrected(self):
        agent = self.bed.agent(self)
        self.bed.proxy.clock_offset = 3600
        agent.start()
        line = agent.wait_for_event_log("clock-skew")
        # The sign is the point: the server's clock is ahead, so heald signs an hour later.
        self.assertRegex(line, r"signing with an offset of \+3[56]\d\d s from now on", "the log names the offset")
        agent.events(1, detail_type="Agent Started")
        reqs = self.bed.proxy.log()
        self.assertEqual(reqs[0]["error"], "InvalidSignatureException")
        self.assertEqual(reqs[-1]["status"], 200)
        skewed = [r for r in reqs if r["fault"] == "clock-skew"]
        self.assertLessEqual(len(skewed), 2, "corrected at once, not by retrying blindly")
        self.assertTrue(re.match(r"\d{8}T\d{6}Z", reqs[-1]["amz_date"]))
        agent.stop()
