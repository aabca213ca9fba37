"""test_diagnosis.py: the diagnosis a failure event carries, read under a real systemd and
journald: a unit killed by a signal and one that exits 3, each Check Failed with systemd's
result, how the main process ended, its restarts and the unit's last journal lines (at most
20, within 4 KiB, the password masked); and the instance's context in every event.
"""
import unittest

from test_healing import HealingTestCase, unit_check

TALKER = "talker.service"
EXIT_FLAG = "/run/talker-exit"
JOURNAL_LINES, JOURNAL_BYTES = 20, 4096


class DiagnosisTest(HealingTestCase):
    def setUp(self):
        super().setUp()
        self.c.install_units(TALKER)
        self.addCleanup(self.c.run, ["rm", "-f", EXIT_FLAG], check=False)
        self.addCleanup(self.c.run, ["systemctl", "reset-failed", TALKER], check=False)
        self.addCleanup(self.c.run, ["systemctl", "stop", TALKER], check=False)

    def start_heald_with_identity(self) -> None:
        """heald watching talker, once it has read the instance's identity (events before it
        go without the instance's context)."""
        self.start_heald({"talker": unit_check(TALKER)})
        self.wait_check("talker", health="ok")
        self.c.wait_for(lambda: "Instance i-" in self.heald_journal(), 15, "the IMDS identity read")

    def assertJournal(self, diagnosis: dict) -> None:  # noqa: N802 - unittest style
        journal = diagnosis["journal"]
        self.assertTrue(any("talker line" in line for line in journal), journal)
        self.assertLessEqual(len(journal), JOURNAL_LINES)
        self.assertLessEqual(sum(len(line) for line in journal), JOURNAL_BYTES)
        # 31 lines of its own and systemd's about it: the oldest are left out
        self.assertFalse(any("talker line 1:" in line for line in journal), journal)
        self.assertTrue(diagnosis["journal_truncated"] or len(journal) == JOURNAL_LINES)
        self.assertFalse(any("hunter2" in line for line in journal), "a password in an event")
        self.assertTrue(any("password=***" in line for line in journal), journal)

    def assertInstance(self, detail: dict) -> None:  # noqa: N802 - unittest style
        instance = detail["instance"]
        self.assertRegex(instance["id"], r"^i-[0-9a-f]+$")
        self.assertEqual(instance["type"], "t3.micro")  # the bed's IMDS identity document
        self.assertEqual(instance["ami"], "ami-0123456789abcdef0")
        self.assertTrue(instance["availability_zone"].endswith("a"))

    def test_killed_by_signal(self):
        self.start_unit(TALKER)
        self.start_heald_with_identity()
        self.c.kill_unit(TALKER)
        failed = self.event("Check Failed", check="talker")
        d = failed["diagnosis"]
        self.assertEqual((d["unit"], d["result"], d["signal"], d["core_dumped"], d["oom_killed"]),
                         (TALKER, "signal", "SIGKILL", False, False))
        self.assertNotIn("exit_code", d)
        self.assertEqual(d["n_restarts"], 0)
        self.assertJournal(d)
        self.assertInstance(failed)

    def test_exit_code_3(self):
        self.start_unit(TALKER)
        self.start_heald_with_identity()
        self.c.run(["touch", EXIT_FLAG])
        self.c.wait_unit(TALKER, "failed")
        failed = self.event("Check Failed", check="talker")
        d = failed["diagnosis"]
        self.assertEqual((d["result"], d["exit_code"]), ("exit-code", 3))
        self.assertNotIn("signal", d)
        self.assertJournal(d)
        self.assertInstance(failed)


if __name__ == "__main__":
    unittest.main()
