"""whole_run_check.py: checks over the whole run; run.py runs it after every test module (LAST):
IMDSv1 never used, no secret in any log heald or this runner wrote, nor in heald's state
directories."""
import os

from harness import BedTestCase


class FinalTest(BedTestCase):
    def test_imdsv1_never_used(self):
        self.assertEqual(self.bed.imds.imdsv1_attempts, 0,
                         "heald made a metadata request without a session token")

    def test_no_secret_in_logs_or_state(self):
        secrets = self.bed.secrets()
        self.assertTrue(secrets)
        files = []
        for d, _, names in os.walk(self.bed.run_dir):
            for n in names:
                p = os.path.join(d, n)
                # sockets a killed heald left behind cannot be read; moto's own log is not ours
                if os.path.isfile(p) and n != "moto.log":  # moto's own log is not ours to police; runner.log is
                    files.append(p)
        leaks = []
        for p in files:
            with open(p, "rb") as f:
                data = f.read()
            for s in secrets:
                if s.encode() in data:
                    leaks.append(f"{os.path.relpath(p, self.bed.run_dir)}: a secret "
                                 f"({len(s)} chars)")
        self.assertEqual(leaks, [], "secrets found")
