"""test_auth.py: credentials from IMDS, their rotation, and AWS refusing them."""
import math
import time

from harness import BedTestCase

NO_PUT_EVENTS = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                 '"Action":"events:ListRules","Resource":"*"}]}')
AUTH_RETRY = 3  # auth_retry_interval in the harness's config


class AuthTest(BedTestCase):
    def assert_one_line_per_window(self, agent, lines, elapsed: float):
        allowed = math.ceil(elapsed / AUTH_RETRY) + 1
        self.assertLessEqual(len(lines), allowed,
                             f"{len(lines)} aws-refused lines in {elapsed:.0f}s: a log storm")
        reqs = self.bed.proxy.log()
        self.assertLessEqual(len(reqs), 2 * allowed + 2,
                             f"{len(reqs)} PutEvents in {elapsed:.0f}s: a request storm")

    def test_credentials_rotated_before_expiry(self):
        self.bed.imds.set_reported_expiry(20)
        self.bed.imds.reset_counts()
        agent = self.bed.agent(self, heartbeat_interval="1s")
        agent.start()
        agent.events(1, detail_type="Agent Started")
        first_key = self.bed.proxy.log()[0]["access_key_id"]
        self.wait_until(lambda: any(r["access_key_id"] != first_key for r in self.bed.proxy.log()),
                        30, "a PutEvents signed with rotated credentials", interval=0.5)
        # A few more heartbeats after the rotation, delivered before the stop.
        got = self.heartbeats_through(agent, agent.heartbeat_seq() + 3)
        agent.stop()
        reqs = self.bed.proxy.log()
        self.assertEqual([r for r in reqs if r["error"] == "ExpiredTokenException"], [],
                         "credentials were refreshed before they expired")
        self.assertTrue(agent.event_lines("credentials-refreshed"))
        cred_gets = self.bed.imds.counts_snapshot().get(
            "/latest/meta-data/iam/security-credentials/heald-instance", 0)
        self.assertLessEqual(cred_gets, 15, "credentials are not fetched in a loop")
        self.assertTrue(all(r["status"] == 200 for r in reqs),
                        [(r["status"], r["error"]) for r in reqs if r["status"] != 200])
        self.assertContiguous(self.seqs(got + agent.drain()), first=1, msg="across the rotation")

    def test_wrong_secret_one_clear_error_per_window(self):
        self.bed.imds.set_secret_override("wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET")
        agent = self.bed.agent(self, heartbeat_interval="500ms")
        t0 = time.monotonic()
        agent.start()
        line = agent.wait_for_event_log("aws-refused")
        self.assertRegex(line, r"SignatureDoesNotMatch|InvalidSignatureException")
        self.assertRegex(line.lower(), r"secret|credential", "the line says what to fix")
        time.sleep(2 * AUTH_RETRY + 1)
        lines = agent.event_lines("aws-refused")
        elapsed = time.monotonic() - t0
        agent.stop()
        self.assert_one_line_per_window(agent, lines, elapsed)

    def test_missing_permission_then_granted_delivers_held_events(self):
        self.bed.fleet.set_role_policy(NO_PUT_EVENTS)
        agent = self.bed.agent(self, heartbeat_interval="500ms")
        t0 = time.monotonic()
        agent.start()
        line = agent.wait_for_event_log("aws-refused")
        self.assertRegex(line, r"AccessDenied")
        self.assertRegex(line, r"events:PutEvents|permission|polic", "the line says what to fix")
        time.sleep(2 * AUTH_RETRY + 1)
        lines = agent.event_lines("aws-refused")
        self.assert_one_line_per_window(agent, lines, time.monotonic() - t0)
        refused = self.bed.proxy.log()
        self.assertTrue(refused and all(r["status"] != 200 for r in refused))

        self.bed.fleet.set_role_policy()  # the least-privilege policy from packaging/
        agent.events(1, timeout=AUTH_RETRY + 30, detail_type="Agent Started")
        got = self.heartbeats_through(agent, agent.heartbeat_seq() - 1)
        agent.stop()
        self.assertContiguous(self.seqs(got + agent.drain()), first=1,
                              msg="held while the permission was missing")

    def test_environment_credentials_win_over_imds(self):
        agent = self.bed.agent(self)
        creds = self.bed.fleet.assume_role()
        self.bed.imds.issued_secrets += [creds["SecretAccessKey"], creds["SessionToken"]]
        cp = agent.send_event("Integration Test", {"n": 7}, extra_env={
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"]})
        self.assertEqual(cp.returncode, 0, cp.stderr)
        agent.events(1, detail_type="Integration Test")
        self.assertEqual([r["access_key_id"] for r in self.bed.proxy.log()],
                         [creds["AccessKeyId"]])
