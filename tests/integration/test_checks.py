"""test_checks.py: polled checks, the remediation policy, the control socket and reload, on the
host without systemd: file_age, exec, http and tcp checks; exec and request actions; the action
budget, escalation across a restart and `heald reset`; `after`; dry_run; SIGHUP; check-config."""
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import time

from harness import EX_CONFIG, BedTestCase, HarnessError
from testlib.health_server import HealthServer

EX_UNAVAILABLE = 69
# Every polled check here runs each second; timeout must stay below interval.
FAST = {"interval": "1s", "timeout": "900ms"}


def iso_to_epoch(s: str) -> float:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()


def settings(ini_text: str) -> list[str]:
    """An ini text without its comments (check-config's header names the file's digest)."""
    return [ln for ln in ini_text.splitlines() if not ln.startswith((";", "#"))]


def listener(port: int = 0) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


def closed_port() -> int:
    """A port nothing listens on (bound once to get a free number, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ChecksTestCase(BedTestCase):
    """Helpers: an agent with checks and its own control socket, scripts, status, events per check."""

    def check_agent(self, checks: dict[str, dict], **overrides):
        agent = self.bed.agent(self, **overrides)
        agent.configure(agent__control_socket=os.path.join(agent.state_dir, "control.sock"))
        for name, keys in checks.items():
            self.set_check(agent, name, **keys)
        return agent

    @staticmethod
    def set_check(agent, name: str, **keys) -> None:
        agent.configure(**{f"check {name}__{k}": v for k, v in keys.items()})

    @staticmethod
    def script(agent, name: str, body: str) -> str:
        """An executable /bin/sh script in the agent's directory; returns its absolute path."""
        path = os.path.join(agent.dir, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
        return path

    @staticmethod
    def counted_script(agent, name: str, exit_status: int = 0, extra: str = "") -> tuple[str, str]:
        """A script that appends a line to a count file each run; returns (script, count file)."""
        count = os.path.join(agent.dir, name + ".runs")
        path = ChecksTestCase.script(agent, name, f"echo run >> '{count}'\n{extra}\nexit {exit_status}")
        return path, count

    def failing_exec_check(self, agent, name: str, probe: str = "exit 1", **keys) -> str:
        """Check name: an exec probe that always fails (probe: its script's body), judged at
        its first result, with a counted exec fix that changes nothing; keys add to or
        override its settings. Returns the fix's count file (see runs())."""
        command = self.script(agent, f"{name.lower()}-check.sh", probe)
        fix, fixes = self.counted_script(agent, f"{name.lower()}-fix.sh")
        self.set_check(agent, name, **{"type": "exec", "command": command, "fail_after": 1, "action": "exec",
                                       "action_command": fix, "verify_timeout": "1s", **FAST, **keys})
        return fixes

    @staticmethod
    def runs(count_file: str) -> int:
        if not os.path.exists(count_file):
            return 0
        with open(count_file) as f:
            return len(f.readlines())

    def status(self, agent, config: str | None = None) -> dict:
        """`heald status --json`: the daemon's answer, checks by name."""
        cp = agent.run_cli("status", "--json", timeout=10, config=config)
        # 1 says a check is failing or escalated; the answer is the same
        self.assertIn(cp.returncode, (0, 1), f"heald status failed: {cp.stderr}")
        st = json.loads(cp.stdout)
        st["by_name"] = {c["check"]: c for c in st["checks"]}
        return st

    def wait_check(self, agent, name: str, timeout: float, what: str, **expect) -> dict:
        """Poll status until check `name` has every key=value of expect; returns that check."""
        seen = {}

        def match():
            nonlocal seen
            seen = self.status(agent)["by_name"].get(name, {})
            return seen if seen and all(seen.get(k) == v for k, v in expect.items()) else None

        try:
            return self.wait_until(match, timeout, what, interval=0.2)
        except AssertionError as e:
            raise AssertionError(f"{e}; last status of {name}: {seen}; log tail:\n{agent.log_tail()}") from None

    def more_results(self, agent, name: str, n: int = 2, config: str | None = None) -> None:
        """Wait until check `name` has reported n more results: the window in which a test then
        asserts that nothing happened is counted in results, not seconds, so that a slow
        machine (fewer results per second) does not shrink it to nothing."""
        def last():
            return self.status(agent, config)["by_name"][name].get("last_result_at")
        seen = [last()]

        def advanced():
            now = last()
            if now != seen[-1]:
                seen.append(now)
            return len(seen) > n
        self.wait_until(advanced, 30, f"{n} more results of check {name}", interval=0.2)

    def check_events(self, agent, detail_type: str, check: str, n: int = 1, timeout: float = 30) -> list[dict]:
        """The next n events of detail_type about `check` (validated); others stay unclaimed."""
        got, others = [], []
        deadline = time.monotonic() + timeout
        try:
            while len(got) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessError(f"got {len(got)} of {n} {detail_type} events for check {check} "
                                       f"within {timeout}s; log tail:\n{agent.log_tail()}")
                try:
                    evs = agent.events(1, timeout=left, detail_type=detail_type)
                except HarnessError as e:
                    raise HarnessError(f"waiting for {detail_type} of check {check}: {e}") from None
                for e in evs:
                    (got if e["detail"]["check"] == check else others).append(e)
        finally:
            agent.unclaimed = others + agent.unclaimed
        return got

    @staticmethod
    def action_lines(agent, check: str, since: int = 0) -> list[str]:
        return agent.log_lines(rf"Check {re.escape(check)}: .*\(event=remediation-started\)$", since)


class RemediationTest(ChecksTestCase):
    def test_file_age_exec_action_fixes_it(self):
        agent = self.check_agent({})
        beat = os.path.join(agent.dir, "heartbeat")
        fix, fixes = self.counted_script(agent, "touch-heartbeat.sh", extra=f"/usr/bin/touch '{beat}'")
        open(beat, "w").close()
        self.set_check(agent, "beat", type="file_age", path=beat, max_age="2s", action="exec",
                       action_command=fix, verify_timeout="5s", **FAST)
        agent.start()

        (failed,) = self.check_events(agent, "Check Failed", "beat")
        d = failed["detail"]
        self.assertEqual((d["check_type"], d["target"], d["fail_after"]), ("file_age", beat, 1))
        self.assertRegex(d["observed"], r"^age \d+ s$")
        self.assertEqual(d["threshold"], "modified within 2 s")
        (started,) = self.check_events(agent, "Remediation Started", "beat")
        d = started["detail"]
        self.assertEqual((d["action"], d["action_target"], d["attempt"], d["dry_run"]),
                         ("exec", fix, 1, False))
        (succeeded,) = self.check_events(agent, "Remediation Succeeded", "beat")
        d = succeeded["detail"]
        self.assertEqual((d["action"], d["action_target"]), ("exec", fix))
        self.assertGreaterEqual(d["time_to_recovery_ms"], 0)
        self.assertLessEqual(iso_to_epoch(d["detected_at"]), iso_to_epoch(d["action_started_at"]))
        self.assertLessEqual(iso_to_epoch(d["action_started_at"]), iso_to_epoch(d["action_finished_at"]))
        self.assertLessEqual(iso_to_epoch(d["action_finished_at"]), iso_to_epoch(d["verified_at"]))
        self.assertLess(d["time_to_recovery_ms"], 5000, "verified within verify_timeout")
        (recovered,) = self.check_events(agent, "Check Recovered", "beat")
        self.assertGreaterEqual(recovered["detail"]["failed_for_ms"], 0)
        self.assertGreaterEqual(self.runs(fixes), 1, "the action script ran")

        # The log tells the same story in order.
        order = [agent.log_lines(rf"\(event={e}\)$")[0] for e in
                 ("check-failed", "remediation-started", "remediation-succeeded")]
        text = agent.log_text()
        self.assertEqual(sorted(order, key=text.index), order)
        self.assertEqual(agent.stop(), 0)

    def test_budget_escalation_survives_restart_until_reset(self):
        agent = self.check_agent({})
        fixes = self.failing_exec_check(agent, "app", "echo 'app down: port 8080 closed'\nexit 2", max_actions=2)
        agent.start()

        (failed,) = self.check_events(agent, "Check Failed", "app")
        self.assertEqual(failed["detail"]["observed"], "exit status 2")
        self.assertIn("app down: port 8080 closed", failed["detail"].get("output", ""))
        started = self.check_events(agent, "Remediation Started", "app", n=2)
        # sorted: the tap (SQS) keeps no order, and two PutEvents may be in flight at once
        self.assertEqual(sorted(e["detail"]["attempt"] for e in started), [1, 2])
        fails = self.check_events(agent, "Remediation Failed", "app", n=2)
        for e in fails:
            self.assertRegex(e["detail"]["reason"], r"verify_timeout")
        (esc,) = self.check_events(agent, "Remediation Escalated", "app")
        d = esc["detail"]
        self.assertEqual((d["actions_in_window"], d["max_actions"], d["action_window_s"]), (2, 2, 600))
        self.assertIn("heald reset app", d["reason"])
        self.assertRegex(d["reason"], r"^2 actions within 600 s did not fix it; ", "no fix ever held")
        self.assertEqual(self.runs(fixes), 2, "two actions, then no more")

        st = self.wait_check(agent, "app", 30, "escalated", phase="escalated")
        self.assertEqual((st["health"], st["budget_left"]), ("failed", 0))
        self.more_results(agent, "app")  # more failing results: still no action
        self.assertEqual(self.runs(fixes), 2)
        self.assertEqual(len(self.action_lines(agent, "app")), 2)

        # The budget and the escalation are durable: a restart does not buy new attempts.
        self.assertEqual(agent.stop(), 0)
        with open(os.path.join(agent.state_dir, "policy.json")) as f:
            self.assertTrue(json.load(f)["checks"]["app"]["escalated"])
        agent.start()
        st = self.wait_check(agent, "app", 30, "failed after the restart", health="failed")
        self.assertEqual((st["phase"], st["budget_left"]), ("escalated", 0))
        self.more_results(agent, "app")
        self.assertEqual(self.action_lines(agent, "app"), [], "no action after the restart")
        self.assertEqual(self.runs(fixes), 2)
        self.assertEqual(agent.event_lines("remediation-escalated"), [], "escalated once, not again")

        # heald reset: the budget is full again and the next failing result acts.
        cp = agent.run_cli("reset", "ghost")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn("no such check", cp.stderr)
        mark = agent.mark()
        cp = agent.run_cli("reset", "app")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("Check app reset", cp.stdout)
        agent.wait_for_event_log("check-reset", since=mark)
        agent.wait_for_event_log("remediation-started", since=mark)
        (again,) = self.check_events(agent, "Remediation Started", "app")
        self.assertEqual(again["detail"]["attempt"], 1)
        self.wait_until(lambda: self.runs(fixes) == 3, 30, "the action to run after the reset")
        self.assertEqual(agent.stop(), 0)

    def test_after_dependency_holds_back_the_action(self):
        agent = self.check_agent({})
        upstream = os.path.join(agent.dir, "upstream-alive")
        self.set_check(agent, "A", type="file_age", path=upstream, max_age="1h", fail_after=1, **FAST)
        # B judges later than A (fail_after 3), so A's verdict is in when B's arrives.
        fixes = self.failing_exec_check(agent, "B", fail_after=3, after="A", max_actions=1)
        agent.start()

        (a_failed,) = self.check_events(agent, "Check Failed", "A")
        self.assertEqual(a_failed["detail"]["observed"], "missing")
        (b_failed,) = self.check_events(agent, "Check Failed", "B")
        self.assertEqual(b_failed["detail"]["after"], "A")
        line = agent.wait_for_event_log("remediation-suppressed")
        self.assertIn("Check B is failing, but A", line)
        self.more_results(agent, "B")
        self.assertEqual(self.action_lines(agent, "B"), [])
        self.assertEqual(self.runs(fixes), 0, "B's action must not run while A fails")
        st = self.status(agent)["by_name"]
        self.assertEqual((st["A"]["health"], st["B"]["health"], st["B"]["phase"]), ("failed", "failed", "idle"))

        open(upstream, "w").close()  # A recovers: B may act now
        self.check_events(agent, "Check Recovered", "A")
        (started,) = self.check_events(agent, "Remediation Started", "B")
        self.assertEqual(started["detail"]["attempt"], 1)
        self.wait_until(lambda: self.runs(fixes) == 1, 30, "B's action to run")
        self.assertEqual(agent.stop(), 0)

    def test_request_action_publishes_remediation_requested(self):
        agent = self.check_agent({})
        probe = self.script(agent, "disk-check.sh", "echo 'fs read-only'\nexit 1")
        self.set_check(agent, "fleet-fix", type="exec", command=probe, fail_after=1, action="request",
                       max_actions=3, verify_timeout="1s", **FAST)
        agent.start()
        (req,) = self.check_events(agent, "Remediation Requested", "fleet-fix")
        d = req["detail"]
        self.assertEqual((d["action"], d["action_target"], d["observed"], d["dry_run"]),
                         ("request", None, "exit status 1", False))
        self.assertIn("exit status 1", d["message"])
        self.assertTrue(agent.log_lines(
            r"Check fleet-fix: ask the fleet to act on exec " + re.escape(probe) + r" \(event=remediation-started\)$"))
        # Nobody acts on the request here: verification fails; the fleet was asked and is not
        # asked again every verify_timeout while the check stays failed (budget left or not).
        (failed,) = self.check_events(agent, "Remediation Failed", "fleet-fix")
        self.assertEqual(failed["detail"]["action"], "request")
        later = [e["detail-type"] for e in agent.drain(wait=4) if e["detail-type"].startswith("Remediation ")]
        self.assertEqual(later, [], "asked once per failure; a request is not reported as Remediation Started")
        self.assertEqual(agent.stop(), 0)

    def test_dry_run_reports_but_does_not_act(self):
        agent = self.check_agent({}, agent__dry_run="true")
        marker = os.path.join(agent.dir, "action-ran")
        probe = self.script(agent, "svc-check.sh", "exit 3")
        fix = self.script(agent, "make-marker.sh", f"/usr/bin/touch '{marker}'")
        self.set_check(agent, "svc", type="exec", command=probe, fail_after=1, action="exec",
                       action_command=fix, max_actions=2, verify_timeout="1s", **FAST)
        self.set_check(agent, "ask", type="exec", command=probe, fail_after=1, action="request",
                       max_actions=1, verify_timeout="1s", **FAST)
        agent.start()
        self.assertTrue(agent.event_lines("started")[0].endswith(
            "in a DRY RUN: checks report, no action is taken (event=started)"))
        (started,) = self.check_events(agent, "Remediation Started", "svc")
        d = started["detail"]
        self.assertEqual((d["dry_run"], d["action"], d["action_target"]), (True, "exec", fix))
        self.assertTrue(agent.log_lines(r"Check svc: would exec .*\[dry run\] \(event=remediation-started\)$"))
        # The budget still counts (a faithful preview of escalation), but nothing ever runs,
        # and the preview says so: rules that page people skip it.
        (escalated,) = self.check_events(agent, "Remediation Escalated", "svc")
        self.assertIs(escalated["detail"]["dry_run"], True)
        self.assertTrue(agent.log_lines(r"Check svc escalated: .*\[dry run: nobody needs to act\]"))
        # A request is a preview too: nobody is asked to act.
        (requested,) = self.check_events(agent, "Remediation Requested", "ask")
        self.assertIs(requested["detail"]["dry_run"], True)
        self.assertTrue(agent.log_lines(r"Check ask: would ask the fleet to act on exec .*\[dry run\]"))
        st = self.status(agent)
        self.assertTrue(st["dry_run"])
        self.assertEqual(st["by_name"]["svc"]["last_action_result"], "dry run: not taken")
        self.assertEqual(st["by_name"]["ask"]["last_action_result"], "dry run: not taken")
        self.assertFalse(os.path.exists(marker), "dry run must not run the action")
        for e in agent.drain(wait=1):
            if e["detail-type"].startswith("Remediation "):
                self.assertIs(e["detail"]["dry_run"], True, e)
        self.assertEqual(agent.stop(), 0)


class ProbeTest(ChecksTestCase):
    def test_http_hysteresis_bounded_output_and_binary_body(self):
        srv = HealthServer()
        self.addCleanup(srv.stop)
        agent = self.check_agent({"web": dict(type="http", url=srv.url, fail_after=2, recover_after=2, **FAST)})
        agent.start()
        self.wait_check(agent, "web", 30, "web healthy", health="ok")

        def answer(status: int, body: bytes, event: str) -> int:
            """Serve status from now on until heald logs event; how many such answers it took."""
            n0, mark = len(srv.served), agent.mark()
            srv.set(status, body)
            agent.wait_for_event_log(event, since=mark)
            return srv.served[n0:].count(status)

        self.assertGreaterEqual(answer(503, b"maintenance: " + b"x" * 20000, "check-failed"), 2,
                                "fail_after 2: the first 503 alone does not fail the check")
        (failed,) = self.check_events(agent, "Check Failed", "web")
        d = failed["detail"]
        self.assertEqual((d["observed"], d["threshold"], d["fail_after"], d["target"]),
                         ("HTTP 503", "HTTP 200-399", 2, srv.url))
        self.assertTrue(d["output"].startswith("maintenance: xxx"), d["output"][:100])
        self.assertLessEqual(len(d["output"]), 4096, "the body prefix is bounded")
        self.assertTrue(d["output"].endswith("..."), "a cut body says so")

        self.assertGreaterEqual(answer(200, b"ok\n", "check-recovered"), 2, "recover_after 2")
        (rec,) = self.check_events(agent, "Check Recovered", "web")
        self.assertEqual(rec["detail"]["observed"], "HTTP 200")
        self.assertGreaterEqual(rec["detail"]["failed_for_ms"], 900)

        # A huge binary body (NULs, invalid UTF-8) is cut and escaped; heald goes on.
        srv.set(503, bytes(range(256)) * 8192)  # 2 MiB
        (failed,) = self.check_events(agent, "Check Failed", "web")
        out = failed["detail"]["output"]
        self.assertLessEqual(len(out), 4096)
        self.assertTrue(out.startswith("\\x00\\x01\\x02"), out[:40])
        self.assertRegex(out, r"^[\x20-\x7e]*\.\.\.$", "printable ASCII, cut")
        srv.set(200, b"ok\n")
        self.check_events(agent, "Check Recovered", "web")

        # A server that answers too late is a timeout, not a hang.
        srv.set(200, b"late\n", delay=2.0)
        (failed,) = self.check_events(agent, "Check Failed", "web")
        self.assertEqual(failed["detail"]["observed"], "timeout after 900 ms")
        srv.set(200, b"ok\n")
        self.check_events(agent, "Check Recovered", "web")
        self.assertIsNone(agent.proc.poll(), "heald is still running")
        self.assertEqual(self.status(agent)["by_name"]["web"]["health"], "ok")
        self.assertEqual(agent.stop(), 0)

    def test_http_url_credentials_never_published(self):
        """user:password@ in a check URL is used but shown as ***@ in events, logs and status;
        a plain http:// AWS endpoint off this host is warned about at start."""
        srv = HealthServer()
        self.addCleanup(srv.stop)
        secret = "s3cr3t-Pa55"
        url = srv.url.replace("http://", f"http://monitor:{secret}@")
        agent = self.check_agent({"web": dict(type="http", url=url, **FAST)},
                                 states_endpoint="http://192.0.2.1/")
        agent.start()
        self.assertRegex(agent.wait_for_event_log("plain-http-endpoint"), r"\[aws\] states_endpoint")
        self.wait_check(agent, "web", 30, "web healthy", health="ok")
        srv.set(503, b"down\n")
        (failed,) = self.check_events(agent, "Check Failed", "web")
        self.assertEqual(failed["detail"]["target"], srv.url.replace("http://", "http://***@"))
        status = json.dumps(self.status(agent))
        self.assertEqual(agent.stop(), 0)
        published = json.dumps(failed) + json.dumps(agent.drain())
        for where, text in (("events", published), ("log", agent.log_text()), ("status", status)):
            self.assertNotIn(secret, text, f"the password leaked into the {where}")

    def test_loopback_endpoints_are_not_warned_about(self):
        agent = self.bed.agent(self)
        agent.start()
        self.assertEqual(agent.stop(), 0)
        self.assertEqual(agent.event_lines("plain-http-endpoint"), [], "the bed's endpoints are on 127.0.0.1")

    def test_tcp_listening_and_closed_port(self):
        lst = listener()
        self.addCleanup(lst.close)
        open_port, shut_port = lst.getsockname()[1], closed_port()
        agent = self.check_agent({
            "tcp-open": dict(type="tcp", host="127.0.0.1", port=open_port, fail_after=1, **FAST),
            "tcp-closed": dict(type="tcp", host="127.0.0.1", port=shut_port, fail_after=1, **FAST),
        })
        agent.start()
        (failed,) = self.check_events(agent, "Check Failed", "tcp-closed")
        d = failed["detail"]
        self.assertEqual((d["check_type"], d["target"], d["observed"]),
                         ("tcp", f"127.0.0.1:{shut_port}", "connection refused"))
        st = self.wait_check(agent, "tcp-open", 30, "tcp-open healthy", health="ok")
        self.assertRegex(st["observed"], r"^connected in \d+ ms$")

        lst.close()  # the service goes away...
        (failed,) = self.check_events(agent, "Check Failed", "tcp-open")
        self.assertEqual(failed["detail"]["observed"], "connection refused")
        lst = listener(open_port)  # ...and comes back on the same port
        self.addCleanup(lst.close)
        self.check_events(agent, "Check Recovered", "tcp-open")
        self.assertEqual(self.status(agent)["by_name"]["tcp-closed"]["health"], "failed")
        self.assertEqual(agent.stop(), 0)


class ControlTest(ChecksTestCase):
    def test_sighup_reload_keeps_state_and_rejects_bad_config(self):
        agent = self.check_agent({})
        fixes = self.failing_exec_check(agent, "X", max_actions=1)
        agent.start()
        self.check_events(agent, "Remediation Escalated", "X")
        before = self.wait_check(agent, "X", 30, "X escalated", phase="escalated")

        fresh = os.path.join(agent.dir, "fresh")
        open(fresh, "w").close()
        self.set_check(agent, "Y", type="file_age", path=fresh, max_age="1h", **FAST)
        mark = agent.mark()
        agent.proc.send_signal(signal.SIGHUP)
        self.assertIn("(2 checks)", agent.wait_for_event_log("reloaded", since=mark))
        self.wait_check(agent, "Y", 30, "the new check Y to report", health="ok")
        after = self.status(agent)["by_name"]["X"]
        for k in ("health", "phase", "budget_left", "last_action", "last_action_result", "last_action_at"):
            self.assertEqual(after.get(k), before.get(k), f"X's {k} is kept across the reload")
        self.assertEqual(len(agent.event_lines("check-failed")), 1, "X did not fail anew")
        self.assertEqual(self.runs(fixes), 1)

        # An invalid file is refused as a whole; the running configuration stays. The status
        # CLI reads the file too (for control_socket), so it is pointed at a valid copy.
        good = os.path.join(agent.dir, "good.ini")
        shutil.copy(agent.config_path, good)
        self.set_check(agent, "Z", type="bogus")
        mark = agent.mark()
        agent.proc.send_signal(signal.SIGHUP)
        line = agent.wait_for_event_log("reload-rejected", since=mark)
        self.assertRegex(line, re.escape(agent.config_path) + r":\d+: \[check Z\] type")
        st = self.status(agent, good)["by_name"]
        self.assertEqual(sorted(st), ["X", "Y"])
        self.assertEqual((st["X"]["phase"], st["X"]["budget_left"]), ("escalated", 0))
        first = st["Y"]["last_result_at"]
        self.wait_until(lambda: self.status(agent, good)["by_name"]["Y"]["last_result_at"] != first, 30,
                        "Y to keep running after the rejected reload")
        self.assertIsNone(agent.proc.poll())
        self.assertEqual(agent.stop(), 0)

    def test_budget_is_saved_after_a_reload(self):
        """The monitor once kept the reloaded-away Config's state_dir: the first remediation
        after a SIGHUP wrote policy.json to a freed path. Under valgrind where it is installed,
        so that the use after free itself fails the test."""
        agent = self.check_agent({}, valgrind=bool(shutil.which("valgrind")))
        # max_actions leaves room: under valgrind on a busy machine a second action may start
        # before the SIGHUP is handled, and an action must still follow the reload.
        self.failing_exec_check(agent, "R", max_actions=6)
        agent.start()
        agent.wait_for_event_log("remediation-started", timeout=60)
        mark = agent.mark()
        agent.proc.send_signal(signal.SIGHUP)
        reloaded = agent.wait_for_log(r"\(event=reloaded\)$", since=mark, timeout=60).end()
        # The log is in order (the tap is not): the first action after the reload.
        line = agent.wait_for_event_log("remediation-started", since=reloaded, timeout=60)
        attempt = int(re.search(r"\(attempt (\d+) of 6\)", line).group(1))
        self.assertGreaterEqual(attempt, 2, line)
        # Its event arrives after policy.json was saved (in the same turn of the loop).
        started = self.check_events(agent, "Remediation Started", "R", n=attempt, timeout=60)
        self.assertEqual(sorted(e["detail"]["attempt"] for e in started), list(range(1, attempt + 1)))
        self.assertEqual(agent.log_lines("Failed to save the remediation budgets", since=mark), [])
        with open(os.path.join(agent.state_dir, "policy.json")) as f:
            saved = json.load(f)
        self.assertGreaterEqual(len(saved["checks"]["R"]["actions"]), attempt,
                                "the action after the reload is in the durable budget")
        self.assertEqual(agent.stop(), 0, "heald exits cleanly (99: valgrind found errors)")

    def test_check_config_rejects_bad_checks_with_file_line(self):
        agent = self.check_agent({})
        with open(agent.config_path) as f:
            base = f.read()
        first = base.count("\n") + 1  # the [check bad] header's line
        cases = {
            # name: (section body, line offset from the header, message regex)
            "unknown type": (["type = bogus"], 1, r"\[check bad\] type: must be one of"),
            "missing url": (["type = http"], 0, r"\[check bad\] url: required for type http"),
            "missing command": (["type = exec", "timeout = 900ms", "interval = 1s"], 0,
                                r"\[check bad\] command: required for type exec"),
            "bad regex": (["type = journal", "pattern = (abc"], 2,
                          r"\[check bad\] pattern: not a valid extended regular expression"),
            "command not found": (["type = exec", "command = /nonexistent/heald-probe"], 2,
                                  r"\[check bad\] command: /nonexistent/heald-probe: No such file"),
            "relative command": (["type = exec", "command = true"], 2,
                                 r"\[check bad\] command: true: the program must be an absolute path"),
            "exec action without command": (["type = file_age", "path = /tmp", "max_age = 1m",
                                             "action = exec"], 0,
                                            r"\[check bad\] action_command: required for action exec"),
            "key of another type": (["type = http", "url = http://127.0.0.1/", "max_age = 1m"], 3,
                                    r"\[check bad\] max_age: not a key of type http"),
            "unknown after": (["type = tcp", "host = 127.0.0.1", "port = 1", "after = ghost"], 4,
                              r"\[check bad\] after: no check named \"ghost\""),
            "timeout not below interval": (["type = tcp", "host = 127.0.0.1", "port = 1", "interval = 1s",
                                            "timeout = 1s"], 5,
                                           r"\[check bad\] timeout: must be less than interval"),
            "after itself": (["type = tcp", "host = 127.0.0.1", "port = 1", "after = bad"], 4,
                             r"\[check bad\] after: dependency cycle \(bad -> bad\)"),
        }
        wrong = []  # every case is tried and reported (run.py does not report subTest failures)
        for name, (lines, offset, message) in cases.items():
            path = os.path.join(agent.dir, re.sub(r"\W", "-", name) + ".ini")
            with open(path, "w") as f:
                f.write(base + "[check bad]\n" + "\n".join(lines) + "\n")
            cp = agent.run_cli("check-config", config=path)
            where = r"\d+" if offset is None else str(first + offset)
            if cp.returncode != EX_CONFIG or not re.match(re.escape(path) + ":" + where + ": " + message,
                                                          cp.stderr):
                wrong.append(f"{name}: exit {cp.returncode}, stderr {cp.stderr.strip()!r}")
        self.assertEqual(wrong, [], "check-config on bad [check] sections")

        # A valid set of checks is printed so that the output loads again.
        self.set_check(agent, "ok-exec", type="exec", command="/bin/sh -c \"exit 0\"", action="request", **FAST)
        self.set_check(agent, "ok-tcp", type="tcp", host="127.0.0.1", port=22, after="ok-exec", **FAST)
        cp = agent.run_cli("check-config")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("[check ok-exec]", cp.stdout)
        printed = os.path.join(agent.dir, "printed.ini")
        with open(printed, "w") as f:
            f.write(cp.stdout)
        again = agent.run_cli("check-config", config=printed)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(settings(again.stdout), settings(cp.stdout), "check-config output is a fixed point")

    def test_status_exit_and_history(self):
        agent = self.check_agent({})
        healthy = self.script(agent, "ok.sh", "exit 0")
        self.set_check(agent, "fine", type="exec", command=healthy, **FAST)
        agent.start()
        self.wait_check(agent, "fine", 30, "healthy", health="ok")
        cp = agent.run_cli("status")
        self.assertEqual(cp.returncode, 0, f"all healthy: {cp.stdout}{cp.stderr}")
        self.assertRegex(cp.stdout, r"(?m)^CHECK\s+TYPE\s+HEALTH\s+SINCE\s+PHASE\s+CHECKED\s+OBSERVED\s+BUDGET")
        self.assertRegex(cp.stdout, r"(?m)^fine\s+exec\s+ok\s+\d+s ago\s+idle\s+\d+s ago\s+exit status 0\s+3/3")
        self.assertEqual(agent.stop(), 0)

        fixes = self.failing_exec_check(agent, "app", "echo down\nexit 2", max_actions=1)
        agent.start()
        self.wait_check(agent, "app", 30, "escalated", phase="escalated")
        cp = agent.run_cli("status")
        self.assertEqual(cp.returncode, 1, f"a check escalated: {cp.stdout}{cp.stderr}")
        self.assertRegex(cp.stdout, r"(?m)^app\s+exec\s+failed\s+\d+s ago\s+escalated\s+\d+s ago\s+exit status 2\s+0/1\s+"
                                    r"exec not healthy within verify_timeout")
        cp = agent.run_cli("status", "--json")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertNotIn("results", json.loads(cp.stdout)["checks"][0], "history only for one check")

        def app_history(at_least: int):
            cp = agent.run_cli("status", "--json", "app")
            self.assertEqual(cp.returncode, 1, cp.stderr)
            (app,) = json.loads(cp.stdout)["checks"]
            return app if len(app["results"]) >= at_least else None
        app = self.wait_until(lambda: app_history(3), 30, "a few more failing results", interval=0.3)
        self.assertEqual(app["check"], "app")
        self.assertTrue(3 <= len(app["results"]) <= 10, app["results"])
        self.assertEqual({(r["healthy"], r["observed"]) for r in app["results"]}, {(False, "exit status 2")})
        times = [r["at"] for r in app["results"]]
        self.assertEqual(times, sorted(times, reverse=True), "newest first")
        self.assertEqual([(r["action"], r["result"]) for r in app["remediations"]],
                         [("exec", "not healthy within verify_timeout (1 s) after the action")])
        self.assertLessEqual(app["since"], app["last_result_at"])
        # More than 10 results: the history keeps the last 10. Counted, not timed: once all ten
        # kept are newer than the oldest seen above, at least 11 have been taken.
        oldest = min(times)

        def all_newer():
            h = app_history(10)
            return h and min(r["at"] for r in h["results"]) > oldest
        self.wait_until(all_newer, 60, "more than 10 results in all", interval=0.5)
        cp = agent.run_cli("status", "app")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertRegex(cp.stdout, r"(?m)^Check 'app' \(exec, ")
        self.assertRegex(cp.stdout, r"(?m)^  health\s+failed since \S+Z \(\d+s ago\)$")
        self.assertRegex(cp.stdout, r"(?m)^  budget left\s+0 of 1$")
        self.assertEqual(len(re.findall(r"(?m)^  \S+Z  unhealthy exit status 2$", cp.stdout)), 10, cp.stdout)
        self.assertRegex(cp.stdout, r"(?m)^Remediations \(newest first\):\n  \S+Z  exec\s+not healthy within")
        self.assertEqual(self.runs(fixes), 1)

        cp = agent.run_cli("status", "ghost")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn("no such check", cp.stderr)
        self.assertEqual(agent.stop(), 0)

    def test_status_without_daemon_is_a_clear_error(self):
        agent = self.check_agent({"t": dict(type="tcp", host="127.0.0.1", port=closed_port(), **FAST)})
        sock = agent.config["agent"]["control_socket"]
        for args in (("status",), ("status", "--json"), ("reset", "t")):
            cp = agent.run_cli(*args)
            self.assertEqual(cp.returncode, EX_UNAVAILABLE, f"heald {' '.join(args)}: {cp.stderr}")
            self.assertIn(f"cannot reach the daemon at {sock}", cp.stderr)
            self.assertEqual(cp.stdout, "")

        agent.start()
        cp = agent.run_cli("status")
        self.assertIn(cp.returncode, (0, 1), cp.stderr)  # 1 once the closed port counts as failed
        self.assertRegex(cp.stdout, r"(?m)^CHECK\s+TYPE\s+HEALTH")
        self.assertRegex(cp.stdout, r"(?m)^t\s+tcp\s")
        self.assertEqual(agent.stop(), 0)
        # After a clean stop (socket gone or stale) the error is the same.
        cp = agent.run_cli("status")
        self.assertEqual(cp.returncode, EX_UNAVAILABLE, cp.stderr)
        self.assertIn("cannot reach the daemon", cp.stderr)
