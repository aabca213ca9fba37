"""test_metrics.py: [metrics] textfile through the real collector: heald writes its .prom file
into a directory that Debian's prometheus-node-exporter reads with --collector.textfile.directory
(on a loopback port); its /metrics is scraped and heald's series checked: present, with the
values a failure fixed by an exec action leaves, HELP and TYPE for every family, no series
twice, label values escaped, and the collector reporting no error reading the file. The file
is rewritten only when something changed."""
import os
import re
import shutil
import socket
import subprocess
import time
import unittest
import urllib.request

from harness import BedTestCase
from test_checks import FAST, ChecksTestCase

NODE_EXPORTER = shutil.which("prometheus-node-exporter")

# name{labels} value (labels optional); label values may hold \\, \" and \n escapes.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse(text: str) -> tuple[dict, dict, dict]:
    """(HELP by family, TYPE by family, value by 'name{labels}') of an exposition; raises on
    a line that is not a comment or a well-formed sample, or a series seen twice."""
    helps, types, samples = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, text_ = line[7:].partition(" ")
            helps[name] = text_
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            types[name] = kind
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            if not m:
                raise AssertionError(f"not a well-formed sample: {line!r}")
            key = m.group(1) + (m.group(2) or "")
            if key in samples:
                raise AssertionError(f"series twice: {key}")
            samples[key] = float(m.group(4))
    return helps, types, samples


def family_of(name: str, types: dict) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)]
    return name


@unittest.skipUnless(NODE_EXPORTER, "prometheus-node-exporter is not installed (packaging/install-deps.sh)")
class MetricsTest(ChecksTestCase):
    def node_exporter(self, textfile_dir: str) -> str:
        """The real collector on a loopback port; returns its /metrics URL."""
        port = free_port()
        log = open(os.path.join(textfile_dir, "..", "node-exporter.log"), "w")
        proc = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
                                 "--collector.disable-defaults", "--collector.textfile",
                                 f"--collector.textfile.directory={textfile_dir}"],
                                stdout=log, stderr=subprocess.STDOUT)

        def stop():
            proc.terminate()
            proc.wait(10)
            log.close()
        self.addCleanup(stop)
        url = f"http://127.0.0.1:{port}/metrics"
        self.wait_until(lambda: self.scrape(url, quiet=True), 30, "the node exporter to answer")
        return url

    @staticmethod
    def scrape(url: str, quiet: bool = False) -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            if quiet:
                return None
            raise

    def heald_series(self, url: str) -> dict:
        """heald's series as the collector serves them (labels sorted by name)."""
        text = self.scrape(url)
        helps, types, samples = parse(text)
        self.assertEqual(samples.get("node_textfile_scrape_error"), 0.0,
                         f"the collector could not read heald's file:\n{text[-2000:]}")
        heald = {k: v for k, v in samples.items() if k.startswith("heald_")}
        for key in heald:
            family = family_of(key.partition("{")[0], types)
            self.assertIn(family, helps, f"no HELP for {family}")
            self.assertIn(family, types, f"no TYPE for {family}")
        return heald

    def test_textfile_through_the_node_exporter(self):
        agent = self.check_agent({})
        textfile_dir = os.path.join(agent.dir, "textfile")
        os.mkdir(textfile_dir)
        prom = os.path.join(textfile_dir, "heald.prom")
        flag = os.path.join(agent.dir, "broken")
        probe = self.script(agent, "app-check.sh", f"[ ! -e '{flag}' ] || {{ echo broken; exit 2; }}")
        fix = self.script(agent, "fix.sh", f"rm -f '{flag}'")
        agent.configure(metrics__textfile=prom)
        self.set_check(agent, "app", type="exec", command=probe, fail_after=1, action="exec",
                       action_command=fix, verify_timeout="5s", **FAST)
        url = self.node_exporter(textfile_dir)
        agent.start()
        self.wait_check(agent, "app", 30, "healthy", health="ok")
        open(flag, "w").close()
        self.check_events(agent, "Check Recovered", "app")
        self.drain_all(agent)

        def settled():
            s = self.heald_series(url)
            return s if s.get('heald_time_to_recovery_seconds_count') == 1 and \
                s.get('heald_check_healthy{check="app",type="exec"}') == 1 and \
                s.get('heald_outbox_events') == 0 else None
        s = self.wait_until(settled, 30, "the metrics after the recovery")
        self.assertEqual(os.stat(prom).st_mode & 0o777, 0o644, "the collector's user reads it")
        self.assertEqual(s['heald_check_failures_total{check="app",type="exec"}'], 1)
        for result in ("started", "succeeded"):
            self.assertEqual(s[f'heald_remediations_total{{action="exec",check="app",result="{result}"}}'], 1)
        self.assertEqual(s['heald_check_escalated{check="app",type="exec"}'], 0)
        self.assertEqual(s['heald_time_to_recovery_seconds_bucket{le="+Inf"}'], 1)
        self.assertEqual(s['heald_time_to_recovery_seconds_bucket{le="5"}'], 1, "recovered within seconds")
        self.assertEqual(s['heald_build_info{version="0.1.0"}'], 1)
        self.assertEqual(s["heald_dry_run"], 0)
        self.assertGreaterEqual(s["heald_events_published_total"], 5)
        self.assertEqual((s["heald_events_dropped_total"], s["heald_events_dead_lettered_total"]), (0, 0))
        self.assertGreaterEqual(s['heald_aws_requests_total{outcome="success",service="events"}'], 1)
        self.assertGreater(s["heald_credentials_expiry_timestamp_seconds"], time.time())

        # Nothing changes: the file is not rewritten (written when something changes, at most
        # every 5 s).
        before = os.stat(prom).st_mtime_ns
        time.sleep(6)
        self.assertEqual(os.stat(prom).st_mtime_ns, before)
        self.assertEqual(agent.stop(), 0)

    def drain_all(self, agent):
        """Claim the remaining events so the outbox empties (the tap keeps them otherwise)."""
        agent.drain(wait=1)


class MetricsConfigTest(BedTestCase):
    def test_textfile_must_be_an_absolute_prom_path(self):
        agent = self.bed.agent(self)
        for bad in ("heald.prom", "/var/lib/node-exporter/heald.txt", "/var/lib/node-exporter/.prom"):
            agent.configure(metrics__textfile=bad)
            cp = agent.run_cli("check-config")
            self.assertEqual(cp.returncode, 78, f"{bad}: {cp.stdout}{cp.stderr}")
            self.assertIn("[metrics] textfile", cp.stderr)
            self.assertIn("must be an absolute path ending in .prom", cp.stderr)
