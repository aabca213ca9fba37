"""test_healing.py: heald's health checks and local healing under a real systemd: a unit
killed, a hidden restart loop escalating (durably), a hung HTTP endpoint, a dependency
holding back an action, a reload (good and bad), a journal pattern, a dry run and a missing
unit. heald runs in the run's shared container as a transient Type=notify unit, publishing
to the host's moto through the integration bed; every event is checked as a subscriber
receives it from the tap queue (the harness validates each against agent/schemas/).
"""
import json
import os
import socket
import time
import unittest

import container
from container import HealdTestCase

HEALD_UNIT = "heald-test.service"
STATE_DIR = "/var/lib/heald-test"
CONFIG_PATH = "/etc/heald/heald.ini"
TEST_UNITS = ("crashy.service", "looper.service", "hanger.service", "db.service", "app.service")
HANGER_FLAG = "/run/hanger/hang"
DB_DROPIN = "/etc/systemd/system/db.service.d/slow-start.conf"


def ini_text(config: dict[str, dict[str, str]]) -> str:
    return "".join(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) + "\n"
                   for section, keys in config.items())


class HealingTestCase(HealdTestCase):
    """One heald per test in the shared container, with its own tap (the integration Agent);
    the cleanup stops it and leaves the test units stopped and the state dir gone."""

    def setUp(self):
        super().setUp()
        self.c = container.shared()
        self.c.install_units(*TEST_UNITS)
        self.addCleanup(self.clean_container)
        self.agent = self.bed.agent(self)
        # Journal lines of this test only: everything after this cursor.
        self.cursor = self.c.run(["journalctl", "-n", "0", "--show-cursor", "--no-pager"],
                                 check=False).stdout.strip().rpartition("cursor: ")[2]

    def clean_container(self):
        run = self.c.run
        run(["systemctl", "stop", HEALD_UNIT], check=False)
        run(["systemctl", "reset-failed", HEALD_UNIT], check=False)
        run(["systemctl", "stop", *TEST_UNITS], check=False)
        run(["systemctl", "reset-failed", *TEST_UNITS], check=False)
        run(["rm", "-rf", STATE_DIR, os.path.dirname(DB_DROPIN)], check=False)
        run(["systemctl", "daemon-reload"], check=False)

    # ---- heald ------------------------------------------------------------------------
    def heald_config(self, checks: dict[str, dict[str, str]], **agent_keys) -> dict:
        config = {section: dict(keys) for section, keys in self.agent.config.items()}
        config["agent"].update({k: str(v) for k, v in agent_keys.items()})
        config["agent"]["state_dir"] = STATE_DIR
        for name, keys in checks.items():
            config[f"check {name}"] = dict(keys)
        return config

    def start_heald(self, checks: dict[str, dict[str, str]], properties: tuple[str, ...] = (),
                    **agent_keys) -> dict:
        """Start heald with these [check NAME] sections (and unit properties); returns the
        config it runs with."""
        config = self.heald_config(checks, **agent_keys)
        self.c.start_heald(config, unit=HEALD_UNIT.removesuffix(".service"), state_dir=STATE_DIR,
                           config_path=CONFIG_PATH, properties=properties)
        return config

    def heald_journal(self, event: str | None = None) -> str:
        """heald's journal messages since the test started (only those of one HEALD_EVENT).
        Filtered here: journalctl --after-cursor with a match skips the first match."""
        out = self.c.run(["journalctl", "--no-pager", "-o", "json", f"--after-cursor={self.cursor}",
                          "--output-fields=MESSAGE,HEALD_EVENT,_SYSTEMD_UNIT"], check=False).stdout
        lines = []
        for text in out.splitlines():
            entry = json.loads(text)
            if entry.get("_SYSTEMD_UNIT") == HEALD_UNIT and \
                    (event is None or entry.get("HEALD_EVENT") == event) and \
                    isinstance(entry.get("MESSAGE"), str):
                lines.append(entry["MESSAGE"])
        return "".join(line + "\n" for line in lines)

    def wait_journal(self, event: str, timeout: float = 30) -> str:
        try:
            return self.c.wait_for(lambda: self.heald_journal(event), timeout,
                                   f"a heald log line with HEALD_EVENT={event}")
        except container.ContainerError as e:
            raise AssertionError(f"{e}; heald's journal:\n{self.heald_journal()}") from None

    def heald_cli(self, *args: str, check: bool = True):
        return self.c.run([container.HEALD_INSIDE, args[0], "--config", CONFIG_PATH, *args[1:]],
                          check=check, timeout=15)

    def status(self) -> dict:
        cp = self.heald_cli("status", "--json", check=False)
        self.assertIn(cp.returncode, (0, 1), f"heald status: {cp.stderr}")  # 1: a check is failing
        return json.loads(cp.stdout)

    def check_status(self, name: str) -> dict:
        (entry,) = [c for c in self.status()["checks"] if c["check"] == name]
        return entry

    def wait_check(self, name: str, timeout: float = 30, **expect) -> dict:
        """Poll heald status until the check's fields have these values."""
        seen = {}

        def matches():
            seen.update(self.check_status(name))
            return all(seen.get(k) == v for k, v in expect.items())
        try:
            self.c.wait_for(matches, timeout, f"check {name} with {expect}", interval=0.2)
        except container.ContainerError as e:
            raise AssertionError(f"{e}; last status: {seen}; heald's journal:\n"
                                 f"{self.heald_journal()}") from None
        return dict(seen)

    def heald_pid(self) -> int:
        return int(self.c.show(HEALD_UNIT, "MainPID"))

    # ---- events -----------------------------------------------------------------------
    def events(self, detail_type: str, n: int = 1, timeout: float = 30, check: str | None = None):
        """The next n events of this type (for this check if given), schema-validated."""
        got = []
        deadline = time.monotonic() + timeout
        try:
            while len(got) < n:
                (e,) = self.agent.events(1, timeout=max(0.5, deadline - time.monotonic()),
                                         detail_type=detail_type)
                if check is None or e["detail"].get("check") == check:
                    got.append(e)
        except AssertionError as e:
            raise AssertionError(f"{str(e).split('; heald log tail')[0]} (wanted {n} "
                                 f"{detail_type} of check {check}, got {len(got)}); "
                                 f"heald's journal:\n{self.heald_journal()}") from None
        return [e["detail"] for e in got]

    def event(self, detail_type: str, timeout: float = 30, check: str | None = None) -> dict:
        return self.events(detail_type, 1, timeout, check)[0]

    def drain(self, detail_type: str, check: str | None = None, wait: int = 1) -> list[dict]:
        """Every event of this type on the tap now (others stay for later calls)."""
        out, keep = [], []
        for e in self.agent.drain(wait=wait):
            if e["detail-type"] == detail_type and (check is None or e["detail"].get("check") == check):
                out.append(e["detail"])
            else:
                keep.append(e)
        self.agent.unclaimed = keep + self.agent.unclaimed
        return out

    # ---- units ------------------------------------------------------------------------
    def start_unit(self, unit: str) -> None:
        self.c.systemctl("start", unit)
        self.c.wait_unit(unit, "active")

    def assertTimes(self, *stamps: str) -> None:  # noqa: N802 - unittest style
        """ISO 8601 stamps of one remediation, in order (they share a format: text order works)."""
        self.assertEqual(list(stamps), sorted(stamps), "timestamps out of order")


def unit_check(unit: str, **keys) -> dict[str, str]:
    return {"type": "unit", "unit": unit, **{k: str(v) for k, v in keys.items()}}


class HealingTest(HealingTestCase):
    def test_1_killed_unit_is_restarted_and_verified(self):
        self.start_unit("crashy.service")
        self.start_heald({"crashy": unit_check("crashy.service", action="restart-unit",
                                               verify_timeout="10s")})
        self.wait_check("crashy", health="ok", phase="idle")
        before = self.c.show("crashy.service", "InvocationID")

        self.c.kill_unit("crashy.service")
        failed = self.event("Check Failed", check="crashy")
        self.assertEqual(failed["check_type"], "unit")
        self.assertEqual(failed["target"], "crashy.service")
        self.assertEqual(failed["message"], "unit failed")
        self.assertIn("result signal", failed["observed"])
        started = self.event("Remediation Started", check="crashy")
        self.assertEqual((started["action"], started["action_target"]),
                         ("restart-unit", "crashy.service"))
        self.assertEqual((started["attempt"], started["max_actions"], started["dry_run"]),
                         (1, 3, False))
        ok = self.event("Remediation Succeeded", check="crashy")
        self.assertEqual(ok["action"], "restart-unit")
        self.assertTimes(ok["detected_at"], ok["action_started_at"], ok["action_finished_at"],
                         ok["verified_at"])
        self.assertLess(ok["time_to_recovery_ms"], 10_000, "recovered within verify_timeout")
        recovered = self.event("Check Recovered", check="crashy")
        self.assertEqual(recovered["observed"], "active/running, result success")
        self.assertLess(recovered["failed_for_ms"], 10_000)

        self.assertEqual(self.c.show("crashy.service", "ActiveState"), "active")
        # Restart=no: systemd never restarts it on its own, so heald's job did.
        self.assertEqual(self.c.show("crashy.service", "NRestarts"), "0")
        self.assertNotEqual(self.c.show("crashy.service", "InvocationID"), before)
        self.assertIn("restart-unit crashy.service (attempt 1 of 3)",
                      self.heald_journal("remediation-started"))
        st = self.check_status("crashy")
        self.assertEqual((st["health"], st["phase"], st["last_action"], st["last_action_result"],
                          st["budget_left"]), ("ok", "idle", "restart-unit", "verified", 2))
        self.assertEqual(self.drain("Remediation Failed"), [])

    def test_2_restart_loop_escalates_durably_until_reset(self):
        # fail_after 3: one automatic restart (a result or two in auto-restart, then active
        # again) is a blip; a loop is failing in every state and trips it within a cycle.
        checks = {"looper": unit_check("looper.service", action="restart-unit", max_actions=2,
                                       action_window="10m", verify_timeout="3s", interval="1s",
                                       fail_after=3)}
        self.start_unit("looper.service")
        self.start_heald(checks)
        failed = self.event("Check Failed", check="looper")
        # Which verdict reaches fail_after first depends on timing (a gap before a restart, or
        # the loop once 3 restarts fall within 60 s); the loop is what it is judged from then on.
        self.assertRegex(failed["message"], r"^(restart loop: 3 automatic restarts within 60 s|"
                                            r"unit stopped and waits for an automatic restart)")
        for attempt in (1, 2):
            started = self.event("Remediation Started", check="looper")
            self.assertEqual((started["attempt"], started["action"]), (attempt, "restart-unit"))
            why = self.event("Remediation Failed", check="looper")["reason"]
            self.assertIn("not healthy within verify_timeout (3 s)", why)
        escalated = self.event("Remediation Escalated", check="looper")
        self.assertEqual((escalated["actions_in_window"], escalated["max_actions"],
                          escalated["action_window_s"]), (2, 2, 600))
        self.assertIn("heald reset looper", escalated["reason"])
        st = self.wait_check("looper", phase="escalated", health="failed")
        self.assertEqual(st["budget_left"], 0)
        self.assertRegex(st["message"], r"^restart loop: ")
        time.sleep(3)  # the loop goes on: heald must keep its hands off
        self.assertEqual(self.drain("Remediation Started", check="looper"), [])

        # The budget is durable: a new heald, which must see the loop afresh (its restart
        # history is in memory), does not act either and is escalated again.
        self.c.systemctl("stop", HEALD_UNIT)
        self.start_heald(checks)
        st = self.check_status("looper")
        self.assertEqual((st["budget_left"], st["phase"]), (0, "escalated"), "the budget and escalation are durable")
        self.event("Check Failed", check="looper")
        time.sleep(2)
        self.assertEqual(self.drain("Remediation Started", check="looper"), [])
        self.assertEqual(self.drain("Remediation Escalated", check="looper"), [], "escalated once, not again")
        st = self.check_status("looper")
        self.assertEqual((st["health"], st["phase"], st["budget_left"]), ("failed", "escalated", 0))

        self.heald_cli("reset", "looper")
        self.assertIn("Check looper reset", self.heald_journal("check-reset"))
        started = self.event("Remediation Started", check="looper")
        self.assertEqual(started["attempt"], 1, "the reset gave the whole budget back")

    def test_3_hung_http_endpoint_is_restarted(self):
        self.start_unit("hanger.service")
        # hanger.service keeps the flag in its RuntimeDirectory: a restart clears it.
        self.assertIn("RuntimeDirectory=hanger",
                      self.c.run(["systemctl", "cat", "hanger.service"]).stdout)
        self.c.wait_for(lambda: self.c.run(["curl", "-sf", "-m", "2",
                                            "http://127.0.0.1:18081/health"],
                                           check=False).stdout == "ok\n",
                        10, "hanger answering on :18081")
        self.start_heald({"hanger": {
            "type": "http", "url": "http://127.0.0.1:18081/health", "interval": "1s",
            "timeout": "500ms", "fail_after": "2", "expect_body": "ok",
            "action": "restart-unit", "action_unit": "hanger.service", "verify_timeout": "10s"}})
        self.wait_check("hanger", health="ok")
        pid = self.c.show("hanger.service", "MainPID")

        self.c.run(["touch", HANGER_FLAG])
        failed = self.event("Check Failed", check="hanger")
        self.assertEqual((failed["check_type"], failed["fail_after"]), ("http", 2))
        self.assertRegex(failed["message"] + " " + failed["observed"], r"(?i)time")
        started = self.event("Remediation Started", check="hanger")
        self.assertEqual((started["action"], started["action_target"]),
                         ("restart-unit", "hanger.service"))
        ok = self.event("Remediation Succeeded", check="hanger")
        self.assertLess(ok["time_to_recovery_ms"], 10_000)
        self.event("Check Recovered", check="hanger")
        self.assertNotEqual(self.c.show("hanger.service", "MainPID"), pid, "a new process")
        self.assertEqual(self.c.run(["test", "-e", HANGER_FLAG], check=False).returncode, 1,
                         "the restart cleared the flag")

    def test_4_dependency_holds_back_the_dependent_action(self):
        # For this test db comes back slowly (2 s in ExecStartPre) and is "up" (/run/db) only
        # once started, so that app, polling /run/db every 0.5 s, dies while db's check is
        # still failed. db's action is start-unit: restart-unit would make systemd restart app
        # with db (app Requires= db), and app would never fail at all.
        self.c.write_file(DB_DROPIN, "[Service]\nRuntimeDirectory=\nExecStartPre=/bin/sleep 2\n"
                          "ExecStartPost=/bin/mkdir -p /run/db\nExecStopPost=/bin/rm -rf /run/db\n")
        self.c.systemctl("daemon-reload")
        self.start_unit("app.service")
        self.c.wait_unit("db.service", "active")
        self.start_heald({
            "db": unit_check("db.service", action="start-unit", verify_timeout="10s"),
            "app": unit_check("app.service", action="restart-unit", after="db", interval="1s",
                              verify_timeout="10s")})
        self.wait_check("db", health="ok")
        self.wait_check("app", health="ok")

        self.c.kill_unit("db.service")
        self.event("Check Failed", check="db")
        db_started = self.event("Remediation Started", check="db")
        self.assertEqual((db_started["action"], db_started["action_target"]),
                         ("start-unit", "db.service"))
        app_failed = self.event("Check Failed", check="app")
        self.assertEqual(app_failed["after"], "db")
        self.assertEqual(app_failed["message"], "unit failed")
        self.assertIn("Check app is failing, but db, which it runs after, is failing too",
                      self.wait_journal("remediation-suppressed"))
        db_ok = self.event("Remediation Succeeded", check="db")
        app_started = self.event("Remediation Started", check="app")
        self.assertGreaterEqual(app_started["action_started_at"], db_ok["verified_at"],
                                "app acted only after db had recovered")
        self.assertEqual(app_started["attempt"], 1, "no action of app was taken while db failed")
        self.event("Remediation Succeeded", check="app")
        self.event("Check Recovered", check="app")
        self.assertEqual(db_started["attempt"], 1)
        for unit in ("db.service", "app.service"):
            self.assertEqual(self.c.show(unit, "ActiveState"), "active", unit)
        self.assertEqual(self.drain("Remediation Started"), [], "one action each")

    def test_5_reload_keeps_state_and_rejects_a_bad_config(self):
        self.start_unit("crashy.service")
        self.start_unit("db.service")
        one = {"crashy": unit_check("crashy.service", action="restart-unit")}
        config = self.start_heald(one)
        self.wait_check("crashy", health="ok")
        # Give crashy some state worth keeping: one action spent, verified.
        self.c.kill_unit("crashy.service")
        self.assertEqual(self.event("Remediation Started", check="crashy")["attempt"], 1)
        self.event("Remediation Succeeded", check="crashy")
        before = self.wait_check("crashy", health="ok", last_action_result="verified")
        self.assertEqual(before["budget_left"], 2)
        pid = self.heald_pid()

        config["check db"] = unit_check("db.service")
        self.c.write_file(CONFIG_PATH, ini_text(config), mode=0o600)
        self.c.kill_unit(HEALD_UNIT, "HUP")
        self.assertIn("(2 checks)", self.wait_journal("reloaded"))
        self.wait_check("db", health="ok")
        after = self.check_status("crashy")
        for key in ("health", "phase", "budget_left", "last_action", "last_action_result",
                    "last_action_at"):
            self.assertEqual(after[key], before[key], f"crashy's {key} kept across the reload")
        status = self.status()

        bad = dict(config, **{"check db": dict(config["check db"], no_such_key="1")})
        self.c.write_file(CONFIG_PATH, ini_text(bad), mode=0o600)
        self.c.kill_unit(HEALD_UNIT, "HUP")
        rejected = self.wait_journal("reload-rejected")
        self.assertIn("no_such_key", rejected)
        self.assertEqual(self.c.show(HEALD_UNIT, "ActiveState"), "active")
        self.assertEqual(self.heald_pid(), pid, "the same heald runs on")
        now = self.status()
        self.assertEqual([c["check"] for c in now["checks"]], ["crashy", "db"])
        for old, new in zip(status["checks"], now["checks"]):
            for key in ("health", "phase", "budget_left", "last_action_result"):
                self.assertEqual(new[key], old[key], f"{old['check']}: {key}")
        # ...and the old configuration still heals.
        self.c.kill_unit("crashy.service")
        self.assertEqual(self.event("Remediation Started", check="crashy")["attempt"], 2)
        self.event("Remediation Succeeded", check="crashy")

    def test_6_journal_pattern(self):
        self.start_heald({"oom": {"type": "journal", "match": "SYSLOG_IDENTIFIER=healdtest",
                                  "pattern": "Out of memory: Killed process", "interval": "2s"}})
        line = "Out of memory: Killed process 1234 (x)"
        # Neither another identifier's matching text nor another line of ours may trigger.
        self.c.run(["logger", "-t", "healdother", line])
        self.c.run(["logger", "-t", "healdtest", "all is well"])
        self.c.run(["logger", "-t", "healdtest", line])
        failed = self.event("Check Failed", check="oom")
        self.assertEqual(failed["check_type"], "journal")
        self.assertEqual(failed["target"], "Out of memory: Killed process")
        self.assertIn(line, failed["output"])
        self.assertIn(line, failed["message"])
        recovered = self.event("Check Recovered", check="oom")
        self.assertGreaterEqual(recovered["failed_for_ms"], 1500, "recovers after a quiet interval")
        self.c.run(["logger", "-t", "healdtest", "still all is well"])
        time.sleep(1.5)
        self.assertEqual(self.drain("Check Failed", check="oom"), [])
        self.assertEqual(self.drain("Remediation Started"), [], "action none")

    def test_7_dry_run_reports_without_acting(self):
        self.start_unit("crashy.service")
        self.start_heald({"crashy": unit_check("crashy.service", action="restart-unit",
                                               interval="1s")}, dry_run="true")
        self.wait_check("crashy", health="ok")
        self.assertTrue(self.status()["dry_run"])
        self.c.kill_unit("crashy.service")
        self.event("Check Failed", check="crashy")
        started = self.event("Remediation Started", check="crashy")
        self.assertTrue(started["dry_run"])
        self.assertEqual((started["action"], started["action_target"]),
                         ("restart-unit", "crashy.service"))
        self.assertIn("would restart-unit crashy.service", self.heald_journal("remediation-started"))
        self.assertIn("[dry run]", self.heald_journal("remediation-started"))
        # A dry run spends the budget as a real one would: it previews the escalation too.
        escalated = self.event("Remediation Escalated", check="crashy")
        self.assertIs(escalated["dry_run"], True, "a preview: rules that page people skip it")
        for ev in self.drain("Remediation Started", check="crashy"):
            self.assertTrue(ev["dry_run"], ev)
        self.assertEqual(self.c.show("crashy.service", "ActiveState"), "failed",
                         "heald did not touch the unit")
        st = self.check_status("crashy")
        self.assertEqual(st["last_action_result"], "dry run: not taken")
        self.assertEqual(self.drain("Remediation Succeeded"), [])

    def test_8_missing_unit(self):
        self.start_heald({"ghost": unit_check("nosuch.service", action="restart-unit",
                                              max_actions=1)})
        failed = self.event("Check Failed", check="ghost")
        self.assertEqual(failed["message"], "unit does not exist")
        self.assertEqual(failed["target"], "nosuch.service")
        # Restarting what does not exist fails at once; one action, then escalation.
        failed_action = self.event("Remediation Failed", check="ghost")
        self.assertIn("nosuch.service", failed_action["reason"])
        st = self.check_status("ghost")
        self.assertEqual((st["health"], st["message"]), ("failed", "unit does not exist"))

    def test_9_unit_check_with_fail_after_2(self):
        """A unit that stays failed must reach fail_after through the re-judging every
        interval, not only through its (one-off) state change."""
        self.start_unit("crashy.service")
        self.start_heald({"crashy": unit_check("crashy.service", action="restart-unit",
                                               fail_after=2, interval="1s")})
        self.wait_check("crashy", health="ok")
        self.c.kill_unit("crashy.service")
        failed = self.event("Check Failed", check="crashy")
        self.assertEqual(failed["fail_after"], 2)
        self.event("Remediation Succeeded", check="crashy")
        self.assertEqual(self.c.show("crashy.service", "ActiveState"), "active")

    def test_10_tcp_check_by_name(self):
        """A tcp check's host is a name the container's resolver knows (its /etc/hosts, as
        nsswitch.conf says): it passes while the port listens and fails as refused (the name
        did resolve) once it stops; a name nobody knows fails as not resolved."""
        if os.path.exists(self.c.path("/etc/hosts")):  # debootstrap's minbase has none
            hosts = self.c.read_file("/etc/hosts")
            self.addCleanup(self.c.write_file, "/etc/hosts", hosts)
        else:
            hosts = "127.0.0.1 localhost\n"
            self.addCleanup(self.c.run, ["rm", "-f", "/etc/hosts"], check=False)
        self.c.write_file("/etc/hosts", hosts + "127.0.0.1 db.heald.test\n")
        listener = socket.create_server(("127.0.0.1", 0))  # the container shares the host's network
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        tcp = {"type": "tcp", "port": str(port), "interval": "1s", "timeout": "900ms", "fail_after": "1"}
        self.start_heald({"db-by-name": {**tcp, "host": "db.heald.test"},
                          "nobody": {**tcp, "host": "nobody.heald.test"}})
        self.wait_check("db-by-name", health="ok")
        failed = self.event("Check Failed", check="nobody")
        self.assertIn(f"tcp nobody.heald.test:{port}: cannot resolve the name: ", failed["message"])
        self.assertEqual(failed["target"], f"nobody.heald.test:{port}")

        listener.close()
        failed = self.event("Check Failed", check="db-by-name")
        self.assertEqual(failed["message"], f"tcp db.heald.test:{port}: connect: Connection refused")


if __name__ == "__main__":
    unittest.main()
