"""test_valgrind.py: heald under memcheck publishes and stops with no errors or definite leaks."""
import glob
import os
import re
import shutil
import unittest

from harness import BedTestCase


@unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed")
class ValgrindTest(BedTestCase):
    def test_publish_and_stop_clean_under_valgrind(self):
        agent = self.bed.agent(self, valgrind=True, heartbeat_interval="300ms")
        agent.start(timeout=30)
        agent.events(1, timeout=60, detail_type="Agent Started")
        agent.events(3, timeout=60, detail_type="Agent Heartbeat")
        rc = agent.stop(timeout=60)
        logs = sorted(glob.glob(os.path.join(self.bed.log_dir, f"heald-{agent.name}-*.valgrind")))
        self.assertTrue(logs, "valgrind wrote no log")
        with open(logs[-1]) as f:
            report = f.read()
        self.assertNotEqual(rc, 99, f"valgrind found errors:\n{report[-3000:]}")
        self.assertEqual(rc, 0, f"heald exited {rc}")
        self.assertRegex(report, r"ERROR SUMMARY: 0 errors", report[-3000:])
        m = re.search(r"definitely lost: ([\d,]+) bytes", report)
        self.assertTrue(m is None or m.group(1) == "0", report[-3000:])
