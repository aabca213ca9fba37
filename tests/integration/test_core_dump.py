"""test_core_dump.py: heald's memory holds credentials and task tokens, so the daemon makes
itself non-dumpable: a crash writes no core file even where the limits would allow one."""
import glob
import os
import resource
import signal
import unittest

from harness import BedTestCase


def core_pattern() -> str:
    with open("/proc/sys/kernel/core_pattern") as f:
        return f.read().strip()


class CoreDumpTest(BedTestCase):
    @unittest.skipUnless(core_pattern() and not core_pattern().startswith("|") and "/" not in core_pattern(),
                         "core files do not go to the crashing process's directory here "
                         f"(core_pattern {core_pattern()!r})")
    def test_crashing_daemon_writes_no_core_file(self):
        agent = self.bed.agent(self, valgrind=False)
        agent.start()
        agent.events(1, detail_type="Agent Started")  # it has used its credentials
        pid = agent.proc.pid
        # Allow cores the way an admin might (ulimit -c unlimited): only heald itself can refuse.
        resource.prlimit(pid, resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        os.kill(pid, signal.SIGSEGV)
        self.assertEqual(agent.proc.wait(timeout=30), -signal.SIGSEGV)
        cores = glob.glob(os.path.join(agent.dir, "core*"))
        for core in cores:  # the bed's secrets are in it: not left lying around
            os.unlink(core)
        self.assertEqual(cores, [], "heald's crash wrote a core file holding its secrets")
