"""test_commands.py: heald's command channel under a real systemd: a coordinated
stop-start-units on real units (verified by their checks), a unit the config does not allow,
prepare-stop verified after the container is powered off and booted again, a reboot asked
for by the fleet, a command that must wait for a local remediation of its unit to finish, a
prepare-stop that waits for a local remediation of another unit (it disrupts the whole
instance), and a unit job that never ends (bounded by [commands] job_timeout, the next command
not held up).

Each test boots its own container (two of them restart it) and installs heald as a real,
enabled unit (not a transient one): it must come back by itself after a boot, with its state
dir, and so its command journal, on the container's persistent rootfs. Commands go to the
instance's SQS queue in the host's moto; every event is checked as a subscriber receives it
(the integration harness validates each against agent/schemas/).
"""
import json
import os
import time

import container
from container import Container, ContainerError, HealdTestCase

HEALD_UNIT = "heald-test.service"
STATE_DIR = "/var/lib/heald-test"
CONFIG_PATH = "/etc/heald/heald.ini"
WAIT_TIME = 2  # [sqs] wait_time, seconds
HEALD_SERVICE = f"""[Unit]
Description=heald under test (a real unit, so that it comes back after a boot)

[Service]
Type=notify
ExecStart={container.HEALD_INSIDE} --config {CONFIG_PATH}

[Install]
WantedBy=multi-user.target
"""
# In /run: a tmpfs of its boot, so it tells whether the container booted again.
BOOT_MARKER = "/run/heald-test-boot-marker"
CRASHY_SLOW_START = "/etc/systemd/system/crashy.service.d/slow-start.conf"
DB_STUCK_STOP = "/etc/systemd/system/db.service.d/stuck-stop.conf"


def ini_text(config: dict[str, dict[str, str]]) -> str:
    return "".join(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) + "\n"
                   for section, keys in config.items())


def unit_check(unit: str, **keys) -> dict[str, str]:
    return {"type": "unit", "unit": unit, **{k: str(v) for k, v in keys.items()}}


def unit_ops(detail: dict) -> list[tuple[str, str, str]]:
    return [(u["operation"], u["unit"], u["result"]) for u in detail["units"]]


class CommandsTestCase(HealdTestCase):
    """A fresh container and command queue per test, the test units installed, and a tap."""

    def setUp(self):
        super().setUp()
        self.queue = self.bed.fleet.command_queue()
        self.agent = self.bed.agent(self)
        self.c = Container("cmd-" + self.id().rsplit(".", 1)[-1].split("_")[1])
        self.addCleanup(self.c.close)
        self.c.boot()
        self.c.install_units("crashy.service", "db.service")

    # ---- heald ------------------------------------------------------------------------
    def start_heald(self, checks: dict[str, dict[str, str]], **commands: str) -> None:
        """heald as an enabled unit with these checks and [commands] keys; returns once it
        is ready (Type=notify)."""
        config = {section: dict(keys) for section, keys in self.agent.config.items()}
        config["agent"]["state_dir"] = STATE_DIR
        config["sqs"] = {"queue_url": f"{self.bed.proxy.endpoint}/{{account_id}}/heald-{{instance_id}}",
                         "wait_time": f"{WAIT_TIME}s", "visibility_timeout": "30s"}
        config["commands"] = {"verify_timeout": "20s", **commands}
        for name, keys in checks.items():
            config[f"check {name}"] = dict(keys)
        self.install_heald(config)

    def install_heald(self, config: dict[str, dict[str, str]]) -> None:
        """heald with this config as a real, enabled unit (it comes back after a boot), started."""
        self.c.write_file(CONFIG_PATH, ini_text(config), mode=0o600)
        self.c.write_file(f"/etc/systemd/system/{HEALD_UNIT}", HEALD_SERVICE)
        self.c.systemctl("daemon-reload")
        cp = self.c.run(["systemctl", "enable", "--now", HEALD_UNIT], check=False, timeout=60)
        if cp.returncode != 0:
            self.fail(f"heald did not start: {cp.stderr.strip()}\n{self.heald_journal()}")

    def heald_journal(self) -> str:
        return "heald's journal (this boot):\n" + self.c.journal(HEALD_UNIT, lines=60)

    def wait_heald_up(self) -> None:
        """After a boot: heald is running again and polls its queue."""
        try:
            self.c.wait_unit(HEALD_UNIT, "active", timeout=30)
            self.c.wait_for(lambda: "Receiving commands from" in self.c.journal(HEALD_UNIT),
                            30, "heald polling its queue again")
        except ContainerError as e:
            raise AssertionError(f"{e}\n{self.heald_journal()}") from None

    def check_status(self, name: str) -> dict:
        # exit status 1 says a check is failing; the answer is the same
        out = self.c.run([container.HEALD_INSIDE, "status", "--config", CONFIG_PATH, "--json"],
                         check=False, timeout=15).stdout
        (entry,) = [c for c in json.loads(out)["checks"] if c["check"] == name]
        return entry

    # ---- events and the queue ---------------------------------------------------------
    def one(self, detail_type: str, timeout: float = 30) -> dict:
        """The next event of this type at the subscriber (schema-validated)."""
        try:
            return self.agent.events(1, timeout=timeout, detail_type=detail_type)[0]["detail"]
        except AssertionError as e:
            polls = [(round(r["time"] % 1000, 2), r["status"])
                     for r in self.bed.proxy.log("ReceiveMessage")][-8:]
            raise AssertionError(f"{str(e).split('; heald log tail')[0]}\n"
                                 f"command queue (visible, in flight): {self.queue.depth()}; "
                                 f"last ReceiveMessage calls (time, status): {polls}; "
                                 f"now {time.time() % 1000:.2f}\n{self.heald_journal()}") from None

    def assertNoEvents(self, *detail_types: str, wait: int = 1) -> None:  # noqa: N802
        """None of these events among everything on the tap now."""
        got = [e["detail-type"] for e in self.agent.drain(wait=wait)]
        self.assertEqual([t for t in got if t in detail_types], [], f"events: {got}")

    def assertQueueEmpty(self, timeout: float = 30) -> None:  # noqa: N802
        depths = []
        try:
            self.c.wait_for(lambda: depths.append(self.queue.depth()) or depths[-1] == (0, 0),
                            timeout, "the command queue to be empty", interval=0.2)
        except ContainerError:
            self.fail(f"the queue is not empty after {timeout}s: (visible, in flight) {depths[-1]}")

    def let_dead_poll_expire(self, down_at: float) -> None:
        """heald's last long poll before the shutdown (down_at, time.monotonic()) still waits
        in moto, which would hand a message sent meanwhile to the dead connection (then it
        stays invisible for the visibility timeout): wait until SQS has answered every poll
        that reached the bed before then (the proxy records the status once moto answered;
        WAIT_TIME after the poll began, later on a busy machine). The new heald's polls go on."""
        down_wall = time.time() - (time.monotonic() - down_at)
        self.c.wait_for(lambda: all(r["status"] is not None for r in self.bed.proxy.log("ReceiveMessage")
                                    if r["time"] < down_wall),
                        WAIT_TIME + 30, "the dead heald's last poll to be answered by SQS")

    def send(self, action: str, **fields) -> dict:
        import awsbed
        cmd = awsbed.new_command(action, instance_id=self.bed.imds.instance_id, **fields)
        self.queue.send(cmd)
        return cmd

    # ---- units and boots --------------------------------------------------------------
    def start_unit(self, unit: str) -> None:
        self.c.systemctl("start", unit)
        self.c.wait_unit(unit, "active")

    def enable_at_boot(self, unit: str) -> None:
        """Wanted by multi-user.target (the test units have no [Install] section)."""
        os.makedirs(self.c.path("/etc/systemd/system/multi-user.target.wants"), exist_ok=True)
        link = self.c.path(f"/etc/systemd/system/multi-user.target.wants/{unit}")
        if not os.path.lexists(link):
            os.symlink(f"/etc/systemd/system/{unit}", link)
        self.c.systemctl("daemon-reload")

    def invocation(self, unit: str) -> str:
        return self.c.show(unit, "InvocationID")

    def write_marker(self, text: str) -> None:
        """Inside: /run is the boot's tmpfs, over the rootfs directory c.path() reaches."""
        self.c.run(["sh", "-c", f"echo {text} > {BOOT_MARKER}"])

    def read_marker(self) -> str:
        return self.c.run(["cat", BOOT_MARKER], check=False).stdout.strip()

    def wait_reboot_from_inside(self, timeout: float = 30) -> float:
        """The container rebooted itself (systemd-nspawn exits 133): boot it again on the
        same files, as a machine would. Returns when it went down (time.monotonic())."""
        rc = self.c._wait_exit(timeout)  # container.py has no public wait for this yet
        if rc is None:
            raise AssertionError(f"the container did not reboot within {timeout}s\n"
                                 f"{self.heald_journal()}")
        self.assertEqual(rc, container.NSPAWN_REBOOT, f"systemd-nspawn exited {rc}, not a reboot:\n"
                                                      f"{self.c.console_tail()}")
        down_at = time.monotonic()
        self.c.proc = self.c.pid1 = None
        container._live.discard(self.c)
        self.c.boot()
        return down_at


class CommandsTest(CommandsTestCase):
    def test_1_stop_start_units_verified(self):
        self.start_unit("db.service")
        self.start_unit("crashy.service")
        before = {u: self.invocation(u) for u in ("db.service", "crashy.service")}
        self.start_heald({"crashy": unit_check("crashy.service", action="restart-unit"),
                          "db": unit_check("db.service")},
                         allow="ping, stop-start-units", units="crashy.service, db.service")
        cmd = self.send("stop-start-units", units=["db.service", "crashy.service"],
                        reason="system test")
        t0 = time.monotonic()
        received = self.one("Command Received")
        self.assertEqual((received["command_id"], received["action"]),
                         (cmd["command_id"], "stop-start-units"))
        self.assertEqual(received["units"], ["db.service", "crashy.service"])
        self.assertEqual((received["receive_count"], received["reason"]), (1, "system test"))
        done = self.one("Command Succeeded", timeout=30)
        took = time.monotonic() - t0
        self.assertEqual(done["command_id"], cmd["command_id"])
        # Stops in the order given, starts in reverse: db is down before crashy and up after it.
        self.assertEqual(unit_ops(done), [("stop", "db.service", "done"),
                                          ("stop", "crashy.service", "done"),
                                          ("start", "crashy.service", "done"),
                                          ("start", "db.service", "done")])
        stamps = [u["started_at"] for u in done["units"]]
        self.assertEqual(stamps, sorted(stamps), "one operation after the other")
        self.assertIs(done["verified"], True, done)
        self.assertNotIn("reason", done)
        checks = {c["check"]: c for c in done["checks"]}
        self.assertEqual(sorted(checks), ["crashy", "db"])
        for name, unit in (("crashy", "crashy.service"), ("db", "db.service")):
            self.assertEqual((checks[name]["healthy"], checks[name]["target"]), (True, unit))
            # Judged on the state after the start, not on one held from before it.
            self.assertTrue(checks[name]["observed"].startswith("active/running"),
                            f"verified on a stale state: {checks[name]}")
        for unit, inv in before.items():
            self.assertEqual(self.c.show(unit, "ActiveState"), "active", unit)
            self.assertNotEqual(self.invocation(unit), inv, f"{unit} was stopped and started")
        self.assertQueueEmpty()
        # A stop that was asked for is no failure: local healing kept its hands off.
        self.assertNoEvents("Check Failed", "Remediation Started", "Command Failed",
                            "Command Received")
        print(f"\n# stop-start-units of 2 units: send -> Command Succeeded {took:.2f} s",
              flush=True)

    def test_2_unit_not_allowed(self):
        self.start_unit("db.service")
        before = self.invocation("db.service")
        self.start_heald({"db": unit_check("db.service")},
                         allow="ping, stop-start-units", units="crashy.service, db.service")
        cmd = self.send("stop-start-units", units=["db.service", "ssh.service"])
        rejected = self.one("Command Rejected")
        self.assertEqual((rejected["command_id"], rejected["reason"]),
                         (cmd["command_id"], "unit-not-allowed"))
        self.assertIn("ssh.service", rejected["message"])
        self.assertQueueEmpty()
        self.assertEqual(self.c.show("db.service", "ActiveState"), "active")
        self.assertEqual(self.invocation("db.service"), before, "nothing was stopped")
        self.assertNoEvents("Command Received", "Command Succeeded", "Command Failed")

    def test_3_prepare_stop_verified_after_power_cycle(self):
        self.enable_at_boot("crashy.service")
        self.start_unit("crashy.service")
        self.start_heald({"crashy": unit_check("crashy.service")},
                         allow="ping, prepare-stop", drain_units="crashy.service")
        cmd = self.send("prepare-stop", reason="scale-in")
        received = self.one("Command Received")
        self.assertEqual((received["command_id"], received["action"]), (cmd["command_id"], "prepare-stop"))
        ready = self.one("Ready For Stop")
        self.assertEqual(ready["command_id"], cmd["command_id"])
        self.assertEqual(unit_ops(ready), [("stop", "crashy.service", "done")])
        self.assertIs(ready["outbox_flushed"], True, ready)
        self.assertTrue(ready["boot_id"])
        self.assertEqual(self.c.show("crashy.service", "ActiveState"), "inactive", "drained")
        self.assertQueueEmpty()

        # The instance is stopped and started: the same disk, a new boot.
        t0 = time.monotonic()
        self.c.poweroff()
        down_at = time.monotonic()
        self.c.boot()
        self.wait_heald_up()
        verified = self.one("Command Verified", timeout=30)
        took = time.monotonic() - t0
        self.assertEqual((verified["command_id"], verified["action"]), (cmd["command_id"], "prepare-stop"))
        self.assertIs(verified["verified"], True)
        self.assertNotIn("redelivered", verified)
        # systemd-nspawn gives each boot of the container a boot id of its own, as a
        # stopped and started instance gets one.
        self.assertEqual(verified["previous_boot_id"], ready["boot_id"])
        self.assertNotEqual(verified["boot_id"], ready["boot_id"])
        (crashy,) = verified["checks"]
        self.assertEqual((crashy["check"], crashy["healthy"]), ("crashy", True))
        self.assertTrue(crashy["observed"].startswith("active/running"), crashy)
        self.assertIn("1 command from before this start waits for verification",
                      self.c.journal(HEALD_UNIT))
        inv = self.invocation("crashy.service")

        # The fleet's message comes again (a copy of the same command): answered, not run.
        self.let_dead_poll_expire(down_at)
        self.queue.send(cmd)
        again = self.one("Command Verified")
        self.assertIs(again["redelivered"], True)
        self.assertEqual({k: v for k, v in again.items() if k != "redelivered"},
                         {k: v for k, v in verified.items()},
                         "the recorded result, repeated")
        self.assertQueueEmpty()
        self.assertNoEvents("Command Received", "Ready For Stop", "Command Verified")
        self.assertEqual(self.c.show("crashy.service", "ActiveState"), "active")
        self.assertEqual(self.invocation("crashy.service"), inv, "crashy was not stopped again")
        self.assertIn("does not run twice", self.c.journal(HEALD_UNIT))
        print(f"\n# prepare-stop: poweroff + boot -> Command Verified {took:.2f} s", flush=True)

    def test_4_reboot_verified_and_not_repeated(self):
        self.enable_at_boot("crashy.service")
        self.start_unit("crashy.service")
        self.start_heald({"crashy": unit_check("crashy.service")}, allow="ping, reboot")
        self.write_marker("before")
        pid1 = self.c.pid1
        cmd = self.send("reboot", reason="kernel update")
        t0 = time.monotonic()
        received = self.one("Command Received")
        self.assertEqual((received["command_id"], received["action"]), (cmd["command_id"], "reboot"))
        down_at = self.wait_reboot_from_inside()
        self.assertNotEqual(self.c.pid1, pid1, "a new init")
        self.assertEqual(self.read_marker(), "", "a new /run")
        self.wait_heald_up()
        # Published before the reboot or, from the durable outbox, after it.
        rebooting = self.one("Rebooting")
        self.assertEqual(rebooting["command_id"], cmd["command_id"])
        self.assertEqual(rebooting["units"], [])
        verified = self.one("Command Verified", timeout=30)
        took = time.monotonic() - t0
        self.assertEqual((verified["command_id"], verified["action"], verified["verified"]),
                         (cmd["command_id"], "reboot", True))
        self.assertEqual(verified["previous_boot_id"], rebooting["boot_id"])
        self.assertNotEqual(verified["boot_id"], rebooting["boot_id"])
        self.assertEqual([(c["check"], c["healthy"]) for c in verified["checks"]], [("crashy", True)])
        self.assertQueueEmpty()

        # The same command again: reported, and the container keeps running.
        self.write_marker("after")
        pid1 = self.c.pid1
        self.let_dead_poll_expire(down_at)
        self.queue.send(cmd)
        again = self.one("Command Verified")
        self.assertIs(again["redelivered"], True)
        self.assertEqual(again["command_id"], cmd["command_id"])
        self.assertQueueEmpty()
        time.sleep(1)  # a reboot would have begun by now
        self.assertIsNone(self.c.proc.poll(), "the container did not reboot again")
        self.assertEqual(self.c.pid1, pid1)
        self.assertEqual(self.read_marker(), "after")
        self.assertEqual(self.c.systemctl("is-system-running", check=False), "running")
        self.assertNoEvents("Command Received", "Rebooting", "Command Verified")
        print(f"\n# reboot: send -> container down {down_at - t0:.2f} s, -> Command Verified "
              f"{took:.2f} s", flush=True)

    def test_5_command_waits_for_local_remediation(self):
        # crashy takes 2 s to start: heald's restart of it is in flight long enough for the
        # command to arrive in the middle of it.
        self.c.write_file(CRASHY_SLOW_START, "[Service]\nExecStartPre=/bin/sleep 2\n")
        self.c.systemctl("daemon-reload")
        self.start_unit("crashy.service")
        self.start_heald({"crashy": unit_check("crashy.service", action="restart-unit",
                                               verify_timeout="20s")},
                         allow="ping, stop-start-units", units="crashy.service")
        self.c.wait_for(lambda: self.check_status("crashy")["health"] == "ok", 10,
                        "heald to see crashy healthy", interval=0.2)
        self.c.kill_unit("crashy.service")
        started = self.one("Remediation Started")
        self.assertEqual(started["action_target"], "crashy.service")
        cmd = self.send("stop-start-units", units=["crashy.service"])
        # heald holds the message (in flight) while its own restart of crashy goes on.
        self.c.wait_for(lambda: self.queue.depth() == (0, 1), 5, "heald to receive the command",
                        interval=0.1)
        self.assertIn(self.check_status("crashy")["phase"], ("acting", "verifying"))
        healed = self.one("Remediation Succeeded")
        done = self.one("Command Succeeded", timeout=30)
        self.assertEqual(done["command_id"], cmd["command_id"])
        self.assertEqual(unit_ops(done), [("stop", "crashy.service", "done"),
                                          ("start", "crashy.service", "done")])
        self.assertGreaterEqual(done["units"][0]["started_at"], healed["verified_at"],
                                "the command touched crashy only after heald's own restart was verified")
        self.assertIs(done["verified"], True, done)
        self.assertEqual(self.c.show("crashy.service", "ActiveState"), "active")
        self.assertQueueEmpty()
        self.assertNoEvents("Remediation Started", "Command Failed")

    def test_6_stuck_unit_job_times_out(self):
        # db never finishes stopping (deactivating for ever): the stop job never ends.
        self.c.write_file(DB_STUCK_STOP, "[Service]\nExecStop=/bin/sleep infinity\nTimeoutStopSec=infinity\n")
        self.c.systemctl("daemon-reload")
        self.start_unit("db.service")
        self.start_heald({}, allow="ping, stop-units", units="db.service", job_timeout="3s")
        cmd = self.send("stop-units", units=["db.service"])
        self.one("Command Received")
        t0 = time.monotonic()
        failed = self.one("Command Failed", timeout=20)
        took = time.monotonic() - t0
        self.assertEqual(failed["command_id"], cmd["command_id"])
        self.assertEqual(unit_ops(failed), [("stop", "db.service", "timeout")])
        self.assertRegex(failed["reason"], r"job_timeout \(3 s\)")
        self.assertGreaterEqual(took, 2.5)
        self.assertEqual(self.c.show("db.service", "ActiveState"), "deactivating", "still stuck")
        # The next command is not held up behind it.
        ping = self.send("ping")
        self.one("Command Received")
        self.assertEqual(self.one("Command Succeeded")["command_id"], ping["command_id"])
        self.assertQueueEmpty()
        self.assertNoEvents("Command Failed", "Command Succeeded")
        # Unstick db, or the container's poweroff would wait for it for ever.
        self.c.systemctl("kill", "--signal=KILL", "db.service", check=False)

    def test_7_prepare_stop_waits_for_any_local_remediation(self):
        # crashy takes 3 s to start: heald's restart of it is in flight when the fleet's
        # prepare-stop, which names no unit of it (it drains db), arrives.
        self.c.write_file(CRASHY_SLOW_START, "[Service]\nExecStartPre=/bin/sleep 3\n")
        self.c.systemctl("daemon-reload")
        self.start_unit("crashy.service")
        self.start_unit("db.service")
        self.start_heald({"crashy": unit_check("crashy.service", action="restart-unit",
                                               verify_timeout="20s")},
                         allow="ping, prepare-stop", drain_units="db.service")
        self.c.wait_for(lambda: self.check_status("crashy")["health"] == "ok", 10,
                        "heald to see crashy healthy", interval=0.2)
        self.c.kill_unit("crashy.service")
        self.one("Remediation Started")
        cmd = self.send("prepare-stop", reason="scale-in")
        t0 = time.monotonic()
        self.c.wait_for(lambda: self.queue.depth() == (0, 1), 5, "heald to receive the command",
                        interval=0.1)
        self.assertIn(self.check_status("crashy")["phase"], ("acting", "verifying"),
                      "the command arrived in the middle of the remediation")
        self.assertEqual(self.c.show("db.service", "ActiveState"), "active", "not drained yet")
        healed = self.one("Remediation Succeeded")
        ready = self.one("Ready For Stop", timeout=30)
        took = time.monotonic() - t0
        self.assertEqual(ready["command_id"], cmd["command_id"])
        self.assertEqual(unit_ops(ready), [("stop", "db.service", "done")])
        self.assertGreaterEqual(ready["units"][0]["started_at"], healed["verified_at"],
                                "db was drained only after heald's own restart of crashy was verified")
        self.assertEqual(self.c.show("db.service", "ActiveState"), "inactive", "drained")
        self.assertEqual(self.c.show("crashy.service", "ActiveState"), "active")
        waits = [line for line in self.c.journal(HEALD_UNIT).splitlines()
                 if "waits for the local remediation of check crashy" in line]
        self.assertEqual(len(waits), 1, f"one line for the wait, not one per look: {waits}")
        self.assertQueueEmpty()
        self.assertNoEvents("Remediation Started", "Command Failed")
        print(f"\n# prepare-stop during a local restart: received -> Ready For Stop {took:.2f} s "
              f"(Remediation Succeeded at {healed['verified_at']}, drain began at "
              f"{ready['units'][0]['started_at']})", flush=True)

if __name__ == "__main__":
    import unittest
    unittest.main()
