"""test_package.py: the .deb in a fresh systemd container: dpkg -i and apt-get install, the
service as packaged (user heald, sandbox, polkit rule) against the host's moto and IMDS,
reload, kill -9, upgrade, remove and purge; heald restarting an allowed unit and refused
for a protected one."""
import json
import os
import re
import subprocess
import time

import container
import testlib
from container import Container, ContainerError, SystemTestCase

OLD, NEW = "0.1.0", "0.1.1"
# The containers' architecture (make system-arm64: arm64, the cross-built package).
ARCH = container.ARCH or subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                                        text=True).stdout.strip() or "amd64"
CONFIG = "/etc/heald/heald.ini"


def deb(version: str) -> str:
    return f"heald_{version}_{ARCH}.deb"


_built: str | None = None


def build_debs() -> None:
    """make deb for both versions, once per run (the upgrade needs a newer package)."""
    global _built
    if _built is None:
        _built = ""
        for v in (OLD, NEW):
            cp = subprocess.run(["make", "-s", "deb", f"VERSION={v}",
                                 *([f"ARCH={container.ARCH}"] if container.ARCH else [])],
                                cwd=container.REPO,
                                capture_output=True, text=True, timeout=300)
            if cp.returncode != 0:
                _built = f"make deb VERSION={v} failed:\n{cp.stdout}{cp.stderr}"
                break
    if _built:
        raise AssertionError(_built)


def ini(config: dict) -> str:
    return "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) + "\n"
                   for s, kv in config.items())


class PackageTest(SystemTestCase):
    def setUp(self):
        super().setUp()
        build_debs()

    # ---- helpers ----------------------------------------------------------------------
    def status(self, c: Container) -> dict:
        return json.loads(c.run(["heald", "status", "--json"], check=False).stdout)  # 1: a check is failing

    def main_pid(self, c: Container) -> int:
        return int(c.show("heald.service", "MainPID"))

    def wait_ready(self, c: Container, old_pid: int = 0) -> int:
        """Active (for Type=notify: READY=1 was sent) with a main PID other than old_pid."""
        def ready():
            return (c.show("heald.service", "ActiveState") == "active"
                    and self.main_pid(c) not in (0, old_pid))
        try:
            c.wait_for(ready, 20, "heald.service active with a new main PID")
        except ContainerError as e:
            raise ContainerError(f"{e}\n{c.journal('heald.service', lines=40)}") from None
        return self.main_pid(c)

    def journal_lines(self, c: Container, regex: str) -> list[str]:
        return [line for line in c.journal("heald.service", lines=500).splitlines()
                if re.search(regex, line)]

    def heartbeat_seq(self, c: Container) -> int:
        """The last heartbeat number heald made durable (0 before the first)."""
        try:
            return int(c.read_file("/var/lib/heald/heartbeat.seq"))
        except FileNotFoundError:
            return 0

    def hold_events(self, c: Container, bed) -> int:
        """Make EventBridge fail until bed.reset(); wait until the outbox holds events."""
        bed.fail_target("PutEvents", 100000, 500)
        return c.wait_for(lambda: self.status(c)["outbox_depth"] >= 2, 20,
                          "heartbeats piling up in the outbox")

    # ---- the whole life of the package, with dpkg -------------------------------------
    def test_dpkg_install_reload_kill_upgrade_remove_purge(self):
        try:
            harness = testlib.import_bed()
        except ImportError as e:
            self.skipTest(f"the integration bed cannot run: {e}")
        bed = harness.bed()
        bed.reset()
        self.addCleanup(bed.reset)
        agent = bed.agent(self)
        config = {s: dict(kv) for s, kv in agent.config.items()}
        config["agent"].update(state_dir="/var/lib/heald", heartbeat_interval="1s")
        # crashy: heald may restart it (the polkit rule grants it). guarded: its action
        # names dbus.service, which the rule never grants: systemd must refuse.
        config["check crashy"] = {"type": "unit", "unit": "crashy.service",
                                  "action": "restart-unit"}
        config["check guarded"] = {"type": "exec", "command": "/bin/false", "interval": "1s",
                                   "timeout": "500ms", "fail_after": "1",
                                   "action": "restart-unit", "action_unit": "dbus.service"}
        config["check logged"] = {"type": "journal", "match": "SYSLOG_IDENTIFIER=pkgtest",
                                  "pattern": "disk on fire"}
        # A glob broad enough to reach sleep.target: the rule still refuses it (protected).
        config["commands"] = {"allow": "ping, start-units", "units": "s*.target"}
        text = ini(config)

        with Container("pkg-dpkg") as c:
            c.install_units("crashy.service")
            c.systemctl("start", "crashy.service")
            # The admin's configuration is there first; dpkg keeps it (conffile).
            c.write_file(CONFIG, text, mode=0o600)
            out = c.run(["dpkg", "-i", "--force-confdef", "--force-confold",
                         f"/opt/heald/build/{deb(OLD)}"], timeout=120)
            pid = self.wait_ready(c)
            self.assertEqual(c.systemctl("is-enabled", "heald.service"), "enabled", out.stdout)
            self.assertEqual(c.run(["ps", "-o", "user=", "-p", str(pid)]).stdout.strip(), "heald")
            # The packaged unit keeps GnuTLS (loaded by libcurl's librtmp, unused) from
            # initialising itself: ~0.6 MiB of RSS (tests/bench/RESULTS.md).
            environ = c.run(["cat", f"/proc/{pid}/environ"]).stdout.split("\0")
            self.assertIn("GNUTLS_NO_IMPLICIT_INIT=1", environ)
            self.assertEqual(c.read_file(CONFIG), text, "dpkg kept the admin's heald.ini")
            self.assertEqual(c.run(["stat", "-c", "%a %U:%G", CONFIG]).stdout.strip(),
                             "640 root:heald")
            self.assertEqual(c.run(["stat", "-c", "%a %U", "/var/lib/heald"]).stdout.strip(),
                             "700 heald")
            agent.events(1, timeout=20, detail_type="Agent Started")
            self.assertIn("dbus.service", c.read_file("/etc/polkit-1/rules.d/50-heald.rules"))

            # The polkit rule in action, for heald's user: crashy yes, db (not configured) no.
            c.install_units("db.service")
            c.run(["runuser", "-u", "heald", "--", "systemctl", "restart", "crashy.service"])
            denied = c.run(["runuser", "-u", "heald", "--", "systemctl", "start", "db.service"],
                           check=False)
            self.assertNotEqual(denied.returncode, 0, "heald's user may not start db.service")
            self.assertEqual(c.show("db.service", "ActiveState"), "inactive")
            # start-units on s*.target: sockets.target is granted, sleep.target never is.
            c.run(["runuser", "-u", "heald", "--", "systemctl", "start", "sockets.target"])
            denied = c.run(["runuser", "-u", "heald", "--", "systemctl", "start", "sleep.target"],
                           check=False)
            self.assertNotEqual(denied.returncode, 0, "heald's user may not start sleep.target")
            self.assertEqual(c.show("sleep.target", "ActiveState"), "inactive")

            # Journal checks read the journal (group systemd-journal) from inside the sandbox.
            c.run(["logger", "-t", "pkgtest", "the disk on fire again"])
            # guarded's own Check Failed comes first or second.
            failed = {e["detail"]["check"]
                      for e in agent.events(2, timeout=20, detail_type="Check Failed")}
            self.assertEqual(failed, {"guarded", "logged"})

            # An allowed unit is restarted; a protected one is refused by systemd, and said so.
            c.kill_unit("crashy.service")
            ok = agent.events(1, timeout=30, detail_type="Remediation Succeeded")[0]["detail"]
            self.assertEqual((ok["check"], ok["action_target"]), ("crashy", "crashy.service"))
            c.wait_unit("crashy.service", "active")
            refused = agent.events(1, timeout=30, detail_type="Remediation Failed")[0]["detail"]
            self.assertEqual(refused["check"], "guarded")
            self.assertRegex(refused["reason"], r"^systemd refused restart-unit dbus\.service",
                             refused)
            self.assertEqual(c.show("dbus.service", "ActiveState"), "active")

            # systemctl reload: a new polkit rule, then SIGHUP; heald logs "reloaded".
            c.systemctl("reload", "heald.service")
            c.wait_for(lambda: self.journal_lines(c, r"Configuration reloaded"), 10,
                       "the reloaded line in the journal")
            self.assertEqual(self.main_pid(c), pid, "a reload is not a restart")

            # kill -9: systemd restarts heald and the outbox is intact.
            held = self.hold_events(c, bed)
            c.wait_for(lambda: self.heartbeat_seq(c) >= 2, 10, "two heartbeats made")
            seq_before = self.heartbeat_seq(c)
            c.kill_unit("heald.service")
            pid = self.wait_ready(c, old_pid=pid)
            self.assertEqual(c.show("heald.service", "NRestarts"), "1")
            self.assertGreaterEqual(self.status(c)["outbox_depth"], held,
                                    "the events held before kill -9 are still in the outbox")
            bed.reset()
            # Every heartbeat from before the kill is delivered (at least once).
            seen: set[int] = set()
            while not set(range(1, seq_before + 1)) <= seen:
                seen |= {e["detail"]["seq"]
                         for e in agent.events(1, timeout=30, detail_type="Agent Heartbeat")}

            # Upgrade: heald.ini as the admin left it, the outbox kept, heald restarted.
            c.run(["sh", "-c", f"echo '; edited by the admin' >> {CONFIG}"])
            edited = c.read_file(CONFIG)
            held = self.hold_events(c, bed)
            c.run(["dpkg", "-i", "--force-confdef", "--force-confold",
                   f"/opt/heald/build/{deb(NEW)}"], timeout=120)
            pid = self.wait_ready(c, old_pid=pid)
            self.assertEqual(c.run(["dpkg-query", "-W", "-f", "${Version}", "heald"]).stdout, NEW)
            self.assertEqual(c.read_file(CONFIG), edited, "the upgrade kept the edited heald.ini")
            self.assertGreaterEqual(self.status(c)["outbox_depth"], held,
                                    "the outbox survives the upgrade")
            bed.reset()

            # remove: stopped, configuration and state kept, no grant left.
            c.run(["dpkg", "-r", "heald"], timeout=60)
            self.assertIn(c.show("heald.service", "ActiveState"), ("inactive", "failed"))
            self.assertFalse(os.path.exists(c.path("/usr/sbin/heald")))
            self.assertFalse(os.path.exists(c.path("/lib/systemd/system/heald.service")))
            self.assertFalse(os.path.exists(c.path("/etc/polkit-1/rules.d/50-heald.rules")))
            self.assertEqual(c.read_file(CONFIG), edited, "remove keeps the configuration")
            self.assertTrue(os.listdir(c.path("/var/lib/heald/outbox")),
                            "remove keeps the state (the outbox)")

            # purge: configuration and state gone.
            c.run(["dpkg", "-P", "heald"], timeout=60)
            self.assertFalse(os.path.exists(c.path("/etc/heald")))
            self.assertFalse(os.path.exists(c.path("/var/lib/heald")))
            self.assertEqual(c.run(["dpkg-query", "-W", "-f", "${Status}", "heald"],
                                   check=False).stdout.strip(), "")

    # ---- apt-get install ./heald.deb, offline; an invalid configuration -----------------
    def test_apt_install_with_invalid_config_stays_stopped(self):
        with Container("pkg-apt") as c:
            c.write_file(CONFIG, "[agent]\nheartbeat_interval = soon\n")
            # The rootfs has every dependency and apt's package lists: no network needed.
            cp = c.run(["apt-get", "install", "-y",
                        "-o", "Dpkg::Options::=--force-confdef",
                        "-o", "Dpkg::Options::=--force-confold",
                        f"/opt/heald/build/{deb(OLD)}"], timeout=180,
                       check=False)
            self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
            said = cp.stdout + cp.stderr
            self.assertIn("Need to get 0 B/", said)
            self.assertNotRegex(said, r"(?m)^(Get|Err):\d+ (https?|ftp):", "apt fetched nothing")
            self.assertIn("heartbeat_interval", said, "the problem is named")
            self.assertIn("systemctl enable --now heald", said, "and what to do")
            self.assertEqual(c.show("heald.service", "ActiveState"), "inactive")
            self.assertNotEqual(c.systemctl("is-enabled", "heald.service", check=False), "enabled")

            c.write_file(CONFIG, "[agent]\nheartbeat_interval = 0\n"
                                 "[aws]\nimds_endpoint = http://127.0.0.1:9\nimds_timeout = 100ms\n")
            c.systemctl("enable", "--now", "heald.service")
            self.wait_ready(c)
            if container.ARCH:
                return  # the sandbox's namespaces are off under qemu-user (container.py)
            score = c.run(["systemd-analyze", "security", "--no-pager", "heald.service"]).stdout
            # make check prints the score from here (tests/run-all.sh, packages section).
            with open(os.path.join(container.log_dir(), "systemd-analyze-security.txt"), "w") as f:
                f.write(score)
            m = re.search(r"Overall exposure level for heald\.service: ([0-9.]+)", score)
            self.assertTrue(m, score[-500:])
            self.assertLessEqual(float(m.group(1)), 3.0, score)


if __name__ == "__main__":
    import unittest
    unittest.main()
