"""test_container.py: the container bed itself (boot, units, reboot, poweroff, host network)
and build/heald running under the container's systemd against the host's moto and IMDS."""
import os
import unittest

import container
from container import Container, HealdTestCase, SystemTestCase
from testlib.health_server import HealthServer


class ContainerTest(SystemTestCase):
    def test_boot_kill_reboot_poweroff(self):
        with Container("lifecycle") as c:
            self.assertIn(c.systemctl("is-system-running", check=False),
                          ("running", "degraded"))

            # The host's 127.0.0.1 is the container's: the AWS stand-ins will be reachable.
            srv = HealthServer(body=b"hello from the host\n")
            self.addCleanup(srv.stop)
            got = c.run(["curl", "-sS", "-m", "5", srv.url]).stdout
            self.assertEqual(got, "hello from the host\n")

            c.install_units("crashy.service")
            c.systemctl("start", "crashy.service")
            c.wait_unit("crashy.service", "active")
            c.kill_unit("crashy.service")
            c.wait_unit("crashy.service", "failed")
            self.assertEqual(c.show("crashy.service", "Result"), "signal")

            c.run(["sh", "-c", "echo written-inside > /var/lib/marker"])
            c.write_file("/root/marker", "written-from-host\n")
            old_pid1 = c.pid1
            c.reboot_and_wait()
            self.assertNotEqual(c.pid1, old_pid1, "a new systemd after the reboot")
            self.assertFalse(os.path.exists(f"/proc/{old_pid1}"))
            self.assertEqual(c.run(["cat", "/var/lib/marker", "/root/marker"]).stdout,
                             "written-inside\nwritten-from-host\n")
            self.assertEqual(c.show("crashy.service", "ActiveState"), "inactive",
                             "a fresh systemd forgot the failure")

            pid1, workdir = c.pid1, c.workdir
            c.poweroff()
            self.assertIsNone(c.pid1)
            self.assertFalse(os.path.exists(f"/proc/{pid1}"), "container's systemd is gone")
        self.assertFalse(os.path.exists(workdir), "the container's files are removed")


class HealdInContainerTest(HealdTestCase):
    def setUp(self):
        super().setUp()
        self.c = container.shared()

    def test_heald_started_event_and_status(self):
        agent = self.bed.agent(self)
        self.addCleanup(self.c.run, ["systemctl", "stop", "heald-test.service"], check=False)
        self.c.start_heald(agent.config)
        try:
            (started,) = agent.events(1, detail_type="Agent Started")
        except AssertionError as e:
            raise AssertionError(f"{e}\njournal:\n"
                                 f"{self.c.journal('heald-test.service', lines=30)}") from None
        self.assertIsInstance(started["detail"].get("version"), str)
        status = self.c.wait_for(lambda: self.c.show("heald-test.service", "StatusText"),
                                 10, "heald's STATUS= in StatusText")
        self.assertRegex(status, r"outbox \d+ events?\b", "heald's sd_notify STATUS=")

        self.c.systemctl("stop", "heald-test.service")
        agent.events(1, detail_type="Agent Stopping")
        # A transient unit that stopped cleanly is gone; a failed one stays "failed".
        self.assertNotEqual(self.c.show("heald-test.service", "ActiveState"), "failed",
                            self.c.journal("heald-test.service", lines=20))


if __name__ == "__main__":
    unittest.main()
