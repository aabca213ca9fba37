"""test_full_disk.py: heald with its state directory on a full file system (a small tmpfs, root only)."""
import json
import os
import socket
import subprocess
import time

from test_checks import FAST, ChecksTestCase


def fill(path: str) -> str:
    """Write a file until the file system has no byte left; returns its path."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


class NotifySocket:
    """A stand-in for systemd's NOTIFY_SOCKET: collects what heald sends with sd_notify."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages: list[str] = []

    def statuses(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except (socket.timeout, BlockingIOError):
                break
        return [ln[len("STATUS="):] for m in self.messages for ln in m.splitlines() if ln.startswith("STATUS=")]

    def close(self) -> None:
        self.sock.close()


class FullDiskTest(ChecksTestCase):
    def mount_tmpfs(self, path: str, size: str) -> None:
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a small tmpfs")
        os.makedirs(path, exist_ok=True)
        cp = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                            capture_output=True, text=True)
        if cp.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {cp.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", path], capture_output=True)

    def test_starts_checks_and_publishes_on_a_full_disk(self):
        agent = self.check_agent({"state": dict(type="disk", path="STATE", max_used_percent=90, fail_after=1,
                                                interval="1s", timeout="900ms")})
        self.set_check(agent, "state", path=agent.state_dir)
        self.mount_tmpfs(agent.state_dir, "2m")

        # A first run, with AWS away, leaves the outbox with pending events (a segment that
        # cannot be deleted to make room), its ack log and the rest of the state behind.
        self.bed.proxy.down()
        agent.start()
        agent.wait_for_event_log("publish-retry")
        self.assertEqual(agent.stop(), 0)
        self.bed.proxy.up()

        filler = fill(agent.state_dir)
        notify = NotifySocket(os.path.join(agent.dir, "notify.sock"))
        self.addCleanup(notify.close)
        agent.start(extra_env={"NOTIFY_SOCKET": notify.path})
        line = agent.wait_for_event_log("outbox-in-memory")
        self.assertIn("No space left on device", line)
        agent.events(2, detail_type="Agent Started")  # the first run's and this one's
        (failed,) = self.check_events(agent, "Check Failed", "state")
        self.assertEqual(failed["detail"]["target"], agent.state_dir)
        self.wait_until(lambda: any("only in memory: No space left on device" in s for s in notify.statuses()),
                        30, "STATUS= saying events are held in memory")
        self.assertIsNone(agent.proc.poll(), "heald keeps running on a full disk")

        # Room again: the next event is written to disk, and the log says so.
        os.unlink(filler)
        self.check_events(agent, "Check Recovered", "state")
        agent.wait_for_event_log("outbox-on-disk")
        time.sleep(0.5)
        self.assertEqual(agent.stop(), 0)
        self.assertFalse(any("Failed to open the outbox" in ln for ln in agent.log_text().splitlines()))

    def test_budget_refused_by_a_full_disk_is_saved_once_there_is_room(self):
        agent = self.check_agent({})
        self.mount_tmpfs(agent.state_dir, "2m")
        beat = os.path.join(agent.dir, "heartbeat")  # off the full disk, so that the fix works
        # The fix dates the beat an hour ahead, so that one action fixes it for the whole test.
        fix, _ = self.counted_script(agent, "touch-heartbeat.sh", extra=f"/usr/bin/touch -d '+1 hour' '{beat}'")
        open(beat, "w").close()
        self.set_check(agent, "beat", type="file_age", path=beat, max_age="2s", action="exec",
                       action_command=fix, verify_timeout="5s", **FAST)
        agent.start()
        agent.wait_for_event_log("started")
        filler = fill(agent.state_dir)

        # The beat goes stale, heald acts; the disk refuses the budget.
        self.check_events(agent, "Remediation Started", "beat")
        agent.wait_for_log("Failed to save the remediation budgets")
        os.unlink(filler)
        # Within the retry interval (5 s) the budget reaches the disk without another action.
        policy = os.path.join(agent.state_dir, "policy.json")

        def actions_on_disk():
            try:
                with open(policy) as f:
                    return len(json.load(f)["checks"]["beat"]["actions"])
            except (OSError, ValueError, KeyError):
                return 0
        self.wait_until(lambda: actions_on_disk() == 1, 30, "the budget saved once the disk has room")
        agent.wait_for_log("Saved the remediation budgets")
        self.assertEqual(agent.stop(), 0)
        self.assertEqual(agent.log_text().count("Failed to save the remediation budgets"), 1,
                         "the failure is said once, not at every retry")
