"""container.py: a throwaway Debian container with a real systemd (systemd-nspawn) for system tests.

    rootfs = container.ensure_rootfs()            # cached under /var/cache/heald-tests/
    with container.Container("crash") as c:       # a fresh writable rootfs, booted
        c.install_units("crashy.service")
        c.run(["systemctl", "start", "crashy.service"])
        c.write_file("/root/marker", "x"); c.reboot_and_wait()
    # leaving the block powers the container off and deletes its files, also on failure

    c = container.shared()                        # one booted container reused by tests
                                                  # that need no fresh one; shutdown_all()
                                                  # (the runner calls it) powers it off

The container shares the host's network namespace (no --private-network): services the
test bed runs on the host's 127.0.0.1 (moto, IMDS) are reachable from inside, and ports a
service inside listens on are host ports. The repo's build/ is bound read-only at
/opt/heald/build and tests/system/units at /opt/heald/units. Every wait is bounded and
fails with what it saw (the console log is kept in LOG_DIR, one file per container).
require() raises unittest.SkipTest with the reason when containers cannot run here
(not root, tools missing, the rootfs cannot be built).
"""
import atexit
import fcntl
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if os.path.join(REPO, "tests", "lib") not in sys.path:
    sys.path.append(os.path.join(REPO, "tests", "lib"))

import testlib  # noqa: E402
from testlib.wait import wait_until  # noqa: E402
UNITS_DIR = os.path.join(HERE, "units")
BUILD_DIR = os.path.join(REPO, "build")
HEALD_INSIDE = "/opt/heald/build/heald"  # build/heald, bound read-only

SUITE = "bookworm"
# HEALD_CONTAINER_ARCH=arm64: containers of that Debian architecture, their programs run by
# qemu-user through binfmt_misc (make system-arm64); empty: this machine's.
ARCH = os.environ.get("HEALD_CONTAINER_ARCH", "")
# In such a container systemd itself runs under qemu-user, which cannot build the namespaces
# of heald's sandbox (systemd fails the start with status 226/NAMESPACE, EIO): this drop-in
# turns them off there, and only there. The sandbox is tested in this machine's architecture.
QEMU_USER_DROPIN = """[Service]
PrivateTmp=no
PrivateDevices=no
PrivateIPC=no
PrivateMounts=no
ProtectSystem=no
ProtectHome=no
ProtectKernelTunables=no
ProtectKernelModules=no
ProtectKernelLogs=no
ProtectControlGroups=no
ProtectClock=no
ProtectHostname=no
ProtectProc=default
RestrictNamespaces=no
"""
PACKAGES = ["systemd", "systemd-sysv", "dbus", "ca-certificates", "libcurl4", "libcjson1",
            "libinih1", "libsystemd0", "python3-minimal", "monit", "curl", "procps", "iproute2"]
# Installed with apt into the finished rootfs (systemd-nspawn, no boot): polkitd's postinst
# fails in debootstrap's second stage. The packaged heald manages units as its own user,
# authorised by polkit rules.
LATE_PACKAGES = ["polkitd"]
# Bump when _customize() changes, so that cached root file systems are rebuilt.
SETUP_VERSION = 2
CACHE_DIR = os.environ.get("HEALD_ROOTFS_CACHE", "/var/cache/heald-tests")
# Per-container copies: on the cache's file system so that --reflink can share blocks.
WORK_DIR = os.environ.get("HEALD_CONTAINER_TMP", "/var/tmp")
# Console logs and timings; the runner sets it (a temporary directory on first use if not).
LOG_DIR = os.environ.get("HEALD_SYSTEM_LOGDIR", "")

NSPAWN_REBOOT = 133  # systemd-nspawn's exit status when the container rebooted


class ContainerError(AssertionError):
    """The container misbehaved or a bounded wait ran out: fails the test."""


class Unavailable(Exception):
    """Containers cannot run on this machine; the message says why."""


def log_dir() -> str:
    global LOG_DIR
    if not LOG_DIR:
        LOG_DIR = tempfile.mkdtemp(prefix="heald-st-")
    os.makedirs(LOG_DIR, exist_ok=True)
    return LOG_DIR


def log(msg: str) -> None:
    """One line in LOG_DIR/container.log (timings, builds), for whoever reads a run."""
    with open(os.path.join(log_dir(), "container.log"), "a") as f:
        f.write(f"{time.strftime('%H:%M:%S')} {msg}\n")


# ---- root file system -------------------------------------------------------------------
def debian_mirror() -> str:
    """The machine's configured Debian mirror (deb822 .sources or one-line .list)."""
    files = sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    for path in files:
        with open(path) as f:
            for stanza in f.read().split("\n\n"):
                fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
                if ("deb" in fields.get("Types", "").split()
                        and SUITE in fields.get("Suites", "").split()
                        and fields.get("Enabled", "yes") != "no"):
                    return fields["URIs"].split()[0]
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                m = re.match(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", line)
                if m:
                    return m.group(1)
    raise Unavailable(f"no Debian {SUITE} mirror configured in /etc/apt/sources.list(.d)")


def rootfs_key() -> str:
    text = f"{SUITE}{ARCH} {SETUP_VERSION} {' '.join(sorted(PACKAGES))}"
    if LATE_PACKAGES:
        text += f" late: {' '.join(sorted(LATE_PACKAGES))}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _customize(root: str) -> None:
    """What every test container starts from, on top of debootstrap's result."""
    # mkdtemp made the root 0700: system users (messagebus) could not reach any file,
    # and dbus would hang the boot.
    os.chmod(root, 0o755)
    # monit is there for comparisons, not to watch anything by default; apt's timers
    # would only add noise to the journal of a container that lives for seconds.
    for unit in ("monit.service", "apt-daily.timer", "apt-daily-upgrade.timer"):
        subprocess.run(["systemctl", f"--root={root}", "disable", unit],
                       capture_output=True, check=False)
    # No getty: the console is a pipe.
    subprocess.run(["systemctl", f"--root={root}", "mask", "console-getty.service"],
                   capture_output=True, check=False)
    os.makedirs(os.path.join(root, "etc/heald"), exist_ok=True)
    # debootstrap copied the build machine's; without it the hostname is the -M name.
    os.unlink(os.path.join(root, "etc/hostname"))
    # An empty machine-id: each boot gets a transient one instead of the build's.
    with open(os.path.join(root, "etc/machine-id"), "w"):
        pass


def _install_late_packages(root: str, build_log: str, timeout: float) -> None:
    """apt-get install LATE_PACKAGES inside root (the package lists stay: apt can then
    resolve a local .deb's dependencies without the network)."""
    script = ("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
              "--no-install-recommends " + " ".join(LATE_PACKAGES) + " && apt-get clean")
    with open(build_log, "a") as out:
        rc = subprocess.run(["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", root,
                             "sh", "-c", script], stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, timeout=timeout).returncode
    if rc != 0:
        raise Unavailable(f"installing {' '.join(LATE_PACKAGES)} into the rootfs failed "
                          f"(exit {rc}; see {build_log})")


def ensure_rootfs(timeout: float = 900) -> str:
    """The cached root file system for PACKAGES (built on first use); raises Unavailable.

    Built in a temporary directory and renamed into place, so an interrupted build never
    leaves a directory that looks complete; a lock file serializes concurrent runs."""
    final = os.path.join(CACHE_DIR, f"{SUITE}-{ARCH + '-' if ARCH else ''}{rootfs_key()}")
    if os.path.isdir(final):
        return final
    os.makedirs(CACHE_DIR, exist_ok=True)
    with open(os.path.join(CACHE_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(final):
            return final
        for stale in glob.glob(os.path.join(CACHE_DIR, ".build-*")):  # interrupted builds
            shutil.rmtree(stale, ignore_errors=True)
        mirror = debian_mirror()
        tmp = tempfile.mkdtemp(prefix=".build-", dir=CACHE_DIR)
        build_log = os.path.join(CACHE_DIR, f"build-{rootfs_key()}.log")
        cmd = ["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
               *([f"--arch={ARCH}"] if ARCH else []), SUITE, tmp, mirror]
        t0 = time.monotonic()
        try:
            with open(build_log, "w") as out:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, timeout=timeout).returncode
            if rc != 0:
                with open(build_log, errors="replace") as f:
                    tail = "".join(f.readlines()[-5:]).strip()
                raise Unavailable(f"debootstrap from {mirror} failed (exit {rc}; "
                                  f"see {build_log}): {tail}")
            if LATE_PACKAGES:
                _install_late_packages(tmp, build_log, timeout)
            _customize(tmp)
            os.rename(tmp, final)
        except subprocess.TimeoutExpired as e:
            raise Unavailable(f"debootstrap from {mirror} took more than {timeout}s") from e
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        log(f"rootfs built in {time.monotonic() - t0:.1f}s: {final}")
        return final


_unavailable: str | None = None
_checked = False


def require() -> str:
    """The cached rootfs, or unittest.SkipTest saying why system tests cannot run here.
    The answer is remembered: a failed build is not retried by every test."""
    global _unavailable, _checked
    if not _checked:
        _checked = True
        if os.geteuid() != 0:
            _unavailable = "system tests need root (systemd-nspawn, nsenter)"
        else:
            missing = [t for t in ("systemd-nspawn", "debootstrap", "nsenter")
                       if shutil.which(t) is None]
            if missing:
                _unavailable = (f"{', '.join(missing)} not installed "
                                "(apt-get install systemd-container debootstrap)")
        if _unavailable is None:
            try:
                remove_stale_workdirs()
                ensure_rootfs()
            except (Unavailable, OSError) as e:
                _unavailable = f"cannot build the container rootfs: {e}"
    if _unavailable is not None:
        raise unittest.SkipTest(_unavailable)
    return ensure_rootfs()


# ---- containers ---------------------------------------------------------------------------
_live: set["Container"] = set()


class Container:
    """One systemd-nspawn container on a private writable layer over the cached rootfs.

    The layer lives as long as the object (it survives reboots); close() powers the
    container off and deletes it. Use as a context manager to boot and clean up."""

    def __init__(self, name: str, binds: dict[str, str] | None = None, boot_timeout: float = 60):
        # The pid keeps concurrent runs apart (nspawn keeps per-name state in /run).
        self.name = f"heald-{re.sub(r'[^A-Za-z0-9-]', '-', name)[:30]}-{os.getpid()}"
        self.boot_timeout = boot_timeout
        self.binds = {BUILD_DIR: "/opt/heald/build", UNITS_DIR: "/opt/heald/units"}
        self.binds.update(binds or {})
        self.console_log = os.path.join(log_dir(), f"console-{self.name}.log")
        self.workdir = None
        self.root = None
        self.proc = None
        self.pid1 = None
        self.timings: dict[str, float] = {}

    # ---- lifecycle ----------------------------------------------------------------------
    def _prepare_rootfs(self) -> None:
        """This container's writable root: an overlay on the cached rootfs (instant), or a
        full copy where overlayfs cannot be mounted. Either lives until close()."""
        cached = require()
        self.workdir = tempfile.mkdtemp(prefix=f"{self.name}-", dir=WORK_DIR)
        with open(os.path.join(self.workdir, "owner.pid"), "w") as f:
            f.write(str(os.getpid()))
        self.root = os.path.join(self.workdir, "rootfs")
        t0 = time.monotonic()
        if _mount_overlay(cached, self.workdir):
            how = "overlay mounted"
        else:
            subprocess.run(["cp", "-a", "--reflink=auto", cached, self.root], check=True)
            how = "copied"
        self.timings["rootfs"] = time.monotonic() - t0
        log(f"{self.name}: rootfs {how} in {self.timings['rootfs']:.2f}s")
        if ARCH:
            dropin = os.path.join(self.root, "etc/systemd/system/heald.service.d")
            os.makedirs(dropin, exist_ok=True)
            with open(os.path.join(dropin, "qemu-user.conf"), "w") as f:
                f.write(QEMU_USER_DROPIN)

    def boot(self) -> "Container":
        """Start the container (making its rootfs the first time); wait until it is up."""
        if self.root is None:
            self._prepare_rootfs()
        assert self.proc is None, "already booted"
        cmd = ["systemd-nspawn", "--register=no", "--keep-unit", "-q", "-D", self.root,
               "-M", self.name, "--console=read-only", "-b"]
        cmd += [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()
                if os.path.isdir(host)]
        # The whole journal on the console log too: it tells where a boot got stuck, and
        # survives a container whose journal cannot be read any more.
        cmd += ["--", "systemd.journald.forward_to_console=1"]
        t0 = time.monotonic()
        with open(self.console_log, "ab") as console:
            console.write(f"\n==== boot {time.strftime('%H:%M:%S')}: {' '.join(cmd)}\n".encode())
            console.flush()
            # Its own session: a Ctrl-C at the terminal must not reach systemd-nspawn
            # directly; close() shuts the container down in order.
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        _live.add(self)
        self.pid1 = self._wait_pid1(t0 + self.boot_timeout)
        state = self._wait_running(t0 + self.boot_timeout)
        self.timings["boot"] = time.monotonic() - t0
        log(f"{self.name}: booted ({state}) in {self.timings['boot']:.2f}s")
        return self

    def _wait_pid1(self, deadline: float) -> int:
        """The container's init: the child of systemd-nspawn that is PID 1 in its namespace."""
        while True:
            if self.proc.poll() is not None:
                raise ContainerError(f"systemd-nspawn exited ({self.proc.returncode}) while "
                                     f"booting; console:\n{self.console_tail()}")
            for child in _children(self.proc.pid):
                if _nspid(child)[-1:] == [1]:
                    return child
            if time.monotonic() > deadline:
                raise ContainerError(f"no container init under systemd-nspawn "
                                     f"(pid {self.proc.pid}); console:\n{self.console_tail()}")
            time.sleep(0.05)

    def _wait_running(self, deadline: float) -> str:
        """Wait for `systemctl is-system-running` = running or degraded; the state."""
        state = ""
        while True:
            if self.proc.poll() is not None:
                raise ContainerError(f"systemd-nspawn exited ({self.proc.returncode}) while "
                                     f"booting; console:\n{self.console_tail()}")
            cp = self.run(["systemctl", "is-system-running"], check=False, timeout=10)
            state = cp.stdout.strip()
            if state in ("running", "degraded"):
                if state == "degraded":
                    failed = self.run(["systemctl", "--failed", "--no-legend", "--plain"],
                                      check=False).stdout.strip()
                    log(f"{self.name}: degraded; failed units: {failed}")
                return state
            if time.monotonic() > deadline:
                raise ContainerError(f"container not up after {self.boot_timeout}s (state "
                                     f"{state!r}); jobs: {self._jobs()}; console:\n"
                                     f"{self.console_tail()}")
            time.sleep(0.1)

    def _jobs(self) -> str:
        try:
            return self.run(["systemctl", "list-jobs", "--no-legend"], check=False,
                            timeout=5).stdout.strip()
        except ContainerError:
            return "?"

    def _wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _shutdown(self, verb: str, timeout: float) -> int:
        """`systemctl VERB` inside and wait for systemd-nspawn to exit; its exit status."""
        t0 = time.monotonic()
        # --no-block: systemctl would otherwise die with the container and say so.
        self.run(["systemctl", "--no-block", verb], check=False, timeout=10)
        rc = self._wait_exit(timeout)
        if rc is None:
            raise ContainerError(f"container did not {verb} within {timeout}s; jobs: "
                                 f"{self._jobs()}; console:\n{self.console_tail()}")
        self.timings[verb] = time.monotonic() - t0
        self.proc = None
        self.pid1 = None
        return rc

    def reboot_and_wait(self, timeout: float = 30) -> "Container":
        """Reboot the container (systemd-nspawn exits 133) and boot it again on the same files."""
        t0 = time.monotonic()
        rc = self._shutdown("reboot", timeout)
        if rc != NSPAWN_REBOOT:
            raise ContainerError(f"systemd-nspawn exited {rc} on reboot, not {NSPAWN_REBOOT}; "
                                 f"console:\n{self.console_tail()}")
        _live.discard(self)
        self.boot()
        self.timings["reboot_total"] = time.monotonic() - t0
        log(f"{self.name}: rebooted in {self.timings['reboot_total']:.2f}s "
            f"(shutdown {self.timings['reboot']:.2f}s)")
        return self

    def poweroff(self, timeout: float = 30) -> None:
        """Power off in order; SIGTERM to systemd-nspawn if that hangs. Never SIGKILL
        systemd-nspawn (its container's systemd would live on as an orphan): as a last
        resort SIGKILL the container's PID 1, which takes its whole PID namespace along."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self._shutdown("poweroff", timeout)
                log(f"{self.name}: powered off in {self.timings['poweroff']:.2f}s")
            except ContainerError as e:
                log(f"{self.name}: {str(e).splitlines()[0]}; SIGTERM to systemd-nspawn")
                self.proc.send_signal(signal.SIGTERM)
                if self._wait_exit(timeout) is None and self.pid1:
                    log(f"{self.name}: still running; SIGKILL to the container's PID 1")
                    os.kill(self.pid1, signal.SIGKILL)
                    self._wait_exit(timeout)
        self.proc = None
        self.pid1 = None
        _live.discard(self)

    def close(self) -> None:
        """Power off (if running) and delete the container's files. Safe to call twice."""
        try:
            self.poweroff()
        finally:
            if self.proc is None and self.workdir:
                _remove_workdir(self.workdir)
                self.workdir = self.root = None

    def __enter__(self) -> "Container":
        try:
            return self.boot()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- inside -------------------------------------------------------------------------
    def run(self, cmd: list[str], check: bool = True, timeout: float = 30,
            input: str | None = None) -> subprocess.CompletedProcess:  # noqa: A002
        """Run a command in all of the container's namespaces (text output captured)."""
        if self.pid1 is None:
            raise ContainerError(f"{self.name} is not running")
        full = ["nsenter", "-t", str(self.pid1), "-a", "--", *cmd]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "TERM": "dumb",
               "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
        try:
            cp = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                                input=input, stdin=None if input is not None else
                                subprocess.DEVNULL, env=env)
        except subprocess.TimeoutExpired as e:
            raise ContainerError(f"`{' '.join(cmd)}` in {self.name} did not finish within "
                                 f"{timeout}s") from e
        if check and cp.returncode != 0:
            raise ContainerError(f"`{' '.join(cmd)}` in {self.name} exited {cp.returncode}:\n"
                                 f"{cp.stdout}{cp.stderr}")
        return cp

    def systemctl(self, *args: str, check: bool = True) -> str:
        return self.run(["systemctl", *args], check=check).stdout.strip()

    def kill_unit(self, unit: str, signal: str = "KILL") -> None:
        """Signal a unit's main process, as a crash would. Only the main process: systemd 252
        sometimes fails the cgroup-wide form with "Failed to send signal SIGKILL to auxiliary
        processes: Input/output error" while the cgroup is being torn down."""
        self.systemctl("kill", "--kill-whom=main", "-s", signal, unit)

    def show(self, unit: str, prop: str) -> str:
        """One property of a unit (`systemctl show -P`)."""
        return self.systemctl("show", "-P", prop, unit)

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 0.1):
        """Poll predicate() until truthy (its value) or fail naming what was awaited."""
        return wait_until(predicate, timeout, what, interval, ContainerError)

    def wait_unit(self, unit: str, state: str, timeout: float = 30) -> None:
        """Wait for ActiveState of unit to be state (active, failed, inactive...)."""
        seen = []

        def check():
            seen.append(self.show(unit, "ActiveState"))
            return seen[-1] == state
        try:
            self.wait_for(check, timeout, f"{unit} to be {state}")
        except ContainerError as e:
            raise ContainerError(f"{e} (last {seen[-1] if seen else '?'}); journal:\n"
                                 f"{self.journal(unit, lines=20)}") from None

    def journal(self, unit: str | None = None, lines: int = 200) -> str:
        """The journal of this boot (of one unit if given), short-precise format."""
        cmd = ["journalctl", "-b", "--no-pager", "-o", "short-precise", "-n", str(lines)]
        if unit:
            cmd += ["-u", unit]
        return self.run(cmd, check=False).stdout

    def path(self, inside: str) -> str:
        """The host path of a path inside the container's rootfs."""
        return os.path.join(self.root, inside.lstrip("/"))

    def write_file(self, inside: str, text: str, mode: int = 0o644) -> None:
        """Write a file into the rootfs (works whether or not the container runs)."""
        host = self.path(inside)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        with open(host, "w") as f:
            f.write(text)
        os.chmod(host, mode)

    def read_file(self, inside: str) -> str:
        with open(self.path(inside)) as f:
            return f.read()

    def install_units(self, *names: str) -> None:
        """Copy units from tests/system/units into /etc/systemd/system; daemon-reload."""
        for n in names:
            with open(os.path.join(UNITS_DIR, n)) as f:
                self.write_file(f"/etc/systemd/system/{n}", f.read())
        if self.pid1 is not None:
            self.systemctl("daemon-reload")

    def start_heald(self, config: dict[str, dict[str, str]], unit: str = "heald-test",
                    state_dir: str = "/var/lib/heald-test",
                    config_path: str = "/etc/heald/heald.ini",
                    properties: tuple[str, ...] = ()) -> None:
        """Run build/heald as a transient Type=notify unit with this config (sections of
        keys, e.g. an integration Agent's .config; state_dir is replaced by one inside) and
        these unit properties (e.g. "WatchdogSec=2s").
        Returns once systemd has READY=1; fails with the journal (and any library the
        binary misses in the container) if heald exits first. Stop it with
        `systemctl stop UNIT` (a cleanly stopped transient unit disappears)."""
        config = {section: dict(kv) for section, kv in config.items()}
        config.setdefault("agent", {})["state_dir"] = state_dir
        self.write_file(config_path, "".join(
            f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) + "\n"
            for s, kv in config.items()), mode=0o600)
        self.run(["systemctl", "reset-failed", f"{unit}.service"], check=False)
        # A stopped transient unit is unloaded by systemd's garbage collection a moment after
        # `systemctl stop` returns; systemd-run fails ("already loaded") until then.
        deadline = time.monotonic() + 30
        while (self.show(f"{unit}.service", "LoadState") != "not-found"
               and time.monotonic() < deadline):
            time.sleep(0.05)
        props = [arg for p in ("Type=notify", *properties) for arg in ("-p", p)]
        cp = self.run(["systemd-run", f"--unit={unit}", *props, HEALD_INSIDE,
                       "--config", config_path], check=False, timeout=60)
        if cp.returncode != 0:
            missing = self.run(["sh", "-c", f"ldd {HEALD_INSIDE} | grep 'not found'"],
                               check=False).stdout.strip()
            raise ContainerError(f"heald did not start in {self.name}: {cp.stderr.strip()}\n"
                                 f"libraries missing in the container: {missing or 'none'}\n"
                                 f"journal:\n{self.journal(unit + '.service', lines=30)}")

    def console_tail(self, n: int = 40) -> str:
        try:
            with open(self.console_log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no console log)"


def _mount_overlay(lower: str, workdir: str) -> bool:
    """Mount workdir/rootfs as an overlay (upper and work dirs beside it) on lower."""
    for d in ("upper", "work", "rootfs"):
        os.mkdir(os.path.join(workdir, d))
    opts = (f"lowerdir={lower},upperdir={workdir}/upper,workdir={workdir}/work")
    cp = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts,
                         os.path.join(workdir, "rootfs")], capture_output=True, text=True)
    if cp.returncode != 0:
        log(f"overlay mount failed ({cp.stderr.strip()}); copying the rootfs instead")
        os.rmdir(os.path.join(workdir, "rootfs"))
    return cp.returncode == 0


def _remove_workdir(workdir: str) -> None:
    """Unmount a container's overlay (if any) and delete its directory. Never deletes
    through a mount that is still there: that would write whiteouts, not free space."""
    root = os.path.join(workdir, "rootfs")
    if os.path.ismount(root):
        cp = subprocess.run(["umount", root], capture_output=True, text=True)
        if cp.returncode != 0:
            subprocess.run(["umount", "-l", root], capture_output=True, text=True)
        if os.path.ismount(root):
            log(f"cannot unmount {root}; left in place")
            return
    shutil.rmtree(workdir, ignore_errors=True)


def remove_stale_workdirs() -> None:
    """Remove the container directories of runs that died without cleaning up."""
    for workdir in glob.glob(os.path.join(WORK_DIR, "heald-*-*")):
        try:
            with open(os.path.join(workdir, "owner.pid")) as f:
                pid = int(f.read())
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            log(f"removing stale {workdir} (run {pid} is gone)")
            _remove_workdir(workdir)


def _children(pid: int) -> list[int]:
    out = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(task) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def _nspid(pid: int) -> list[int]:
    """A process's PIDs from the outermost PID namespace inwards ([] if gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


# ---- one container shared by tests that need no fresh one -------------------------------------
_shared: Container | None = None


def shared() -> Container:
    """The run's shared container, booted on first use. Tests must leave it as they found
    it (stop the units they started); a test that reboots or breaks it uses its own."""
    global _shared
    if _shared is None or _shared.pid1 is None:
        if _shared is not None:
            _shared.close()
        _shared = Container("shared")
        try:
            _shared.boot()
        except BaseException:
            _shared.close()
            raise
    return _shared


def shutdown_all() -> None:
    """Power off and delete every container still alive (the runner's and atexit's cleanup)."""
    for c in list(_live) + ([_shared] if _shared is not None else []):
        try:
            c.close()
        except Exception as e:  # keep cleaning up the others
            log(f"{c.name}: cleanup failed: {e}")


atexit.register(shutdown_all)


class SystemTestCase(unittest.TestCase):
    """A test that needs containers: skipped, with the reason, where they cannot run."""

    def setUp(self):
        require()


class HealdTestCase(SystemTestCase):
    """A test of build/heald in a container against the integration bed on the host (moto,
    IMDS, fault proxy): skipped where heald is not built or the bed cannot run. Sets
    self.bed (reset for this test)."""

    def setUp(self):
        super().setUp()
        if not os.access(os.path.join(BUILD_DIR, "heald"), os.X_OK):
            self.skipTest("build/heald is not built (make build/heald)")
        try:
            harness = testlib.import_bed()
        except ImportError as e:
            self.skipTest(f"the integration bed cannot run: {e}")
        self.bed = harness.bed()
        self.bed.reset()
