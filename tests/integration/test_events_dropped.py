"""test_events_dropped.py: an outbox over [outbox] max_bytes drops its oldest events, counts
them durably, and an Events Dropped event reports the count once the bus is reachable."""
import os
import subprocess

from harness import REPO, BedTestCase


def outbox_fill(dest_dir: str) -> str:
    """tests/bench/outbox_fill.c built against build/libheald.a: N heartbeat-sized events
    written into an outbox as heald itself writes them."""
    out = os.path.join(dest_dir, "outbox_fill")
    libs = subprocess.run(["pkg-config", "--libs", "libcurl", "libcrypto", "libcjson", "inih", "libsystemd"],
                          check=True, capture_output=True, text=True).stdout.split()
    cflags = subprocess.run(["pkg-config", "--cflags", "libcjson"], check=True, capture_output=True,
                            text=True).stdout.split()
    subprocess.run(["cc", "-O1", "-I", os.path.join(REPO, "agent"), *cflags, "-include",
                    os.path.join(REPO, "build", "version.h"), os.path.join(REPO, "tests", "bench", "outbox_fill.c"),
                    os.path.join(REPO, "build", "libheald.a"), *libs, "-o", out], check=True)
    return out


class EventsDroppedTest(BedTestCase):
    def test_outbox_over_max_bytes_drops_oldest_and_reports_the_count(self):
        agent = self.bed.agent(self, max_bytes="1MiB", heartbeat_interval="0")
        os.makedirs(agent.state_dir, exist_ok=True)
        # ~1.9 MB of events while heald was away: more than the 1 MiB it may keep.
        fill = outbox_fill(agent.dir)
        subprocess.run([fill, agent.state_dir, "12000"], check=True, capture_output=True)
        agent.start()
        # Logged once EventBridge accepted the report. Then heald stops: while it floods moto
        # with the backlog, each read of the tap took seconds (the report, 41st in the tap,
        # took 30 s to reach); stopped, it is read at once.
        agent.wait_for_event_log("events-dropped")
        self.assertEqual(agent.stop(), 0)
        dropped = agent.events(1, detail_type="Events Dropped")[0]["detail"]
        self.assertGreater(dropped["count"], 1000)
        self.assertLess(dropped["count"], 12000)
