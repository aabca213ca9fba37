"""test_daemon.py: heald as a systemd service: the watchdog keeps a healthy heald running
(same process, no restart) for many intervals; a dry run says so in the unit's status. heald runs in the run's shared container as a
transient Type=notify unit, as in test_healing.py."""
import time

from test_healing import HEALD_UNIT, HealingTestCase

WATCHDOG_SEC = 2


class DaemonTest(HealingTestCase):
    def test_watchdog_keeps_a_healthy_heald_running(self):
        """heald once pinged the watchdog once: systemd killed it one WatchdogSec after the
        start ("Failed with result 'watchdog'") and restarted it, again and again."""
        self.start_heald({}, properties=(f"WatchdogSec={WATCHDOG_SEC}s", "Restart=on-failure",
                                         "RestartSec=100ms"))
        self.assertEqual(self.c.show(HEALD_UNIT, "WatchdogUSec"), f"{WATCHDOG_SEC}s")
        pid = self.heald_pid()
        time.sleep(5 * WATCHDOG_SEC)
        self.assertEqual((self.c.show(HEALD_UNIT, "ActiveState"), self.c.show(HEALD_UNIT, "NRestarts"),
                          self.heald_pid()), ("active", "0", pid),
                         "heald kept running through 5 watchdog intervals; its journal:\n"
                         f"{self.c.journal(HEALD_UNIT, lines=30)}")

    def test_dry_run_says_so_in_the_status_and_the_start_line(self):
        self.start_heald({}, dry_run="true")
        status = self.c.wait_for(lambda: self.c.show(HEALD_UNIT, "StatusText"), 10, "a STATUS= line")
        self.assertTrue(status.startswith("DRY RUN (no action is taken): checks: "), status)
        self.assertIn("in a DRY RUN: checks report, no action is taken", self.wait_journal("started"))
