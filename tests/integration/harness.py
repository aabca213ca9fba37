"""harness.py: one test bed per run (moto + IMDSv2 + fault proxy) and a handle on heald.

    bed = harness.bed()                  # started on first use, stopped by the runner
    agent = bed.agent(self, heartbeat_interval="1s")
    agent.start(); agent.wait_for_log(r"\\(event=started\\)")
    evs = agent.events(3, timeout=10, detail_type="Agent Heartbeat")
    agent.stop()

HEALD_BIN overrides the binary (default build/heald). Every wait is bounded and fails the test with what it saw. Each agent gets its own state
dir, event source and tap queue, so tests do not see each other's events. Set
HEALD_VALGRIND=1 to run every heald under valgrind (memcheck).

The default timeouts are generous on purpose: a wait returns as soon as its condition holds, so
a long timeout costs nothing when the machine is fast, and CI runs on 2 busy cores where a heald
start or a moto round trip can take seconds. A test that must bound how long something takes
asserts that bound itself, with its margin explained.
"""
import atexit
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
# This folder (the bed's modules) and tests/lib, appended: an importer's own folder keeps the
# first say for a module name both have (tests/system/test_commands.py).
for _folder in (HERE, os.path.join(os.path.dirname(HERE), "lib")):
    if _folder not in sys.path:
        sys.path.append(_folder)

import jsonschema  # noqa: E402

import awsbed  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from imds_server import ImdsServer  # noqa: E402
from testlib.wait import wait_until  # noqa: E402

REPO = awsbed.REPO
HEALD = os.environ.get("HEALD_BIN") or os.path.join(REPO, "build", "heald")
SCHEMA_DIRS = [os.path.join(REPO, "agent", "schemas"), os.path.join(HERE, "schemas")]
REGION = "us-east-1"
EX_CONFIG = 78
VALGRIND = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--error-exitcode=99", "--track-fds=no"]

# Which [section] each config key lives in, so tests can pass flat keyword overrides.
KEY_SECTION = {
    "state_dir": "agent", "log_level": "agent", "heartbeat_interval": "agent",
    "region": "aws", "imds_endpoint": "aws", "imds_timeout": "aws", "endpoint_url": "aws",
    "events_endpoint": "aws",
    "event_bus": "eventbridge", "source": "eventbridge", "max_request_bytes": "eventbridge",
    "retry_base": "eventbridge", "retry_max": "eventbridge",
    "auth_retry_interval": "eventbridge", "request_timeout": "eventbridge",
    "max_bytes": "outbox",
    "sqs_endpoint": "aws", "states_endpoint": "aws",
    "queue_url": "sqs", "wait_time": "sqs", "max_messages": "sqs", "visibility_timeout": "sqs",
    "allow": "commands", "units": "commands", "allowed_senders": "commands",
    "drain_units": "commands", "verify_timeout": "commands", "job_timeout": "commands",
}


class HarnessError(AssertionError):
    """A bounded wait ran out or the bed misbehaved: fails the test that waited."""


def slug(detail_type: str) -> str:
    return detail_type.lower().replace(" ", "-")


def load_schema(detail_type: str) -> dict:
    for d in SCHEMA_DIRS:
        path = os.path.join(d, slug(detail_type) + ".json")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
    raise HarnessError(f"no JSON Schema for detail-type {detail_type!r}: expected "
                       f"agent/schemas/{slug(detail_type)}.json")


class Bed:
    """moto (IAM auth on), the fleet set-up, the fault proxy and the IMDSv2 server."""

    def __init__(self):
        self.run_dir = tempfile.mkdtemp(prefix="heald-it-")
        self.log_dir = os.path.join(self.run_dir, "logs")
        os.makedirs(self.log_dir)
        self.moto = None
        self.fleet = None
        self.proxy = None
        self.imds = None
        self.agents: list["Agent"] = []
        self.signatures: set[str] = set()  # in memory only, for the leak check
        self.target_faults: list[tuple[str, int]] = []  # see fail_target()
        self.task_tokens: set[str] = set()  # seen in SendTask* calls; secrets, kept in memory
        self._target_lock = threading.Lock()

    def start(self) -> "Bed":
        try:
            self.moto = awsbed.MotoServer(os.path.join(self.log_dir, "moto.log")).start()
            self.fleet = awsbed.Fleet(self.moto.endpoint, region=REGION)
            self.fleet.bootstrap()
            self.proxy = FaultProxy(self.moto.port).start()
            self.proxy.signature_sink = self.signatures
            self._install_target_faults()
            self.imds = ImdsServer(self.fleet.assume_role, region=REGION,
                                   on_credentials=self.proxy.set_key_expiry).start()
        except BaseException:
            # A half-started bed (an interrupt while moto boots) must not leave moto behind.
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for a in self.agents:
            a.kill9()
        for part in (self.imds, self.proxy, self.moto):
            if part is not None:
                part.stop()

    def reset(self) -> None:
        """Undo what a test changed (faults, policy, credentials served)."""
        self.proxy.reset()
        self.imds.set_fault(None)
        self.imds.set_reported_expiry(None)
        self.imds.set_secret_override(None)
        self.fleet.set_role_policy()
        self.target_faults.clear()

    def fail_target(self, target_suffix: str, n: int = 1, status: int = 500) -> None:
        """The next n requests whose X-Amz-Target ends with target_suffix (e.g.
        "DeleteMessage") get HTTP status with an InternalFailure JSON body; other requests
        pass. (The proxy's own faults hit whatever request comes next.)"""
        with self._target_lock:
            self.target_faults += [(target_suffix, status)] * n

    def _install_target_faults(self) -> None:
        proxy, forward = self.proxy, self.proxy.handle

        def handle(h):
            target = h.headers.get("X-Amz-Target") or ""
            if not target.endswith(("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat")):
                return handle_request(h, target)
            body = h._read_body()
            try:
                self.task_tokens.add(json.loads(body)["taskToken"])
            except (ValueError, KeyError, TypeError):
                pass
            # The handler serves every request of its keep-alive connection: the body read
            # here is this request's only (kept, the next request on the connection got this
            # body and its own was read as a request line: 400 Bad request).
            h._read_body = lambda: body
            try:
                handle_request(h, target)
            finally:
                del h._read_body

        def handle_request(h, target):
            with self._target_lock:
                i = next((i for i, (suffix, _) in enumerate(self.target_faults)
                          if target.endswith(suffix)), None)
                fault = self.target_faults.pop(i) if i is not None else None
            if fault is None:
                return forward(h)
            rec = proxy._record(h, h._read_body())
            rec.update(status=fault[1], error="InternalFailure", fault=f"target-{fault[1]}")
            h._json_error(fault[1], "InternalFailure", "Injected failure")

        proxy.handle = handle

    def agent(self, test, **overrides) -> "Agent":
        a = Agent(self, test.id().split(".")[-1], **overrides)
        self.agents.append(a)
        test.addCleanup(a.kill9)
        return a

    @property
    def instance_arn(self) -> str:
        return f"arn:aws:ec2:{REGION}:{awsbed.ACCOUNT_ID}:instance/{self.imds.instance_id}"

    def secrets(self) -> set[str]:
        """Every secret the run issued: secret keys, session tokens, signatures, task tokens."""
        s = set(self.imds.issued_secrets) | set(self.signatures) | set(self.task_tokens)
        s.add(self.fleet.admin_key["SecretAccessKey"])
        return {x for x in s if x}


_bed = None
_bed_lock = threading.Lock()


def bed() -> Bed:
    """The run's test bed, started on first use."""
    global _bed
    with _bed_lock:
        if _bed is None:
            _bed = Bed().start()
            atexit.register(_bed.stop)
        return _bed


class Agent:
    """One heald instance: its config, state dir, tap, process and log."""

    def __init__(self, bed_: Bed, name: str, valgrind: bool | None = None, **overrides):
        self.bed = bed_
        self.name = re.sub(r"[^A-Za-z0-9_-]", "-", name)
        self.dir = tempfile.mkdtemp(prefix=self.name + "-", dir=bed_.run_dir)
        self.state_dir = os.path.join(self.dir, "state")
        self.config_path = os.path.join(self.dir, "heald.ini")
        self.source = "heald.it." + self.name.replace("_", "-")
        self.tap = bed_.fleet.new_tap(self.source)
        self.valgrind = (os.environ.get("HEALD_VALGRIND") == "1") if valgrind is None else valgrind
        self.proc = None
        self.runs = 0
        self.log_path = None
        self.unclaimed: list[dict] = []  # tap events read while waiting for other ones
        self.config = {
            "agent": {"state_dir": self.state_dir, "log_level": "debug",
                      "heartbeat_interval": "0"},
            "aws": {"region": "", "imds_endpoint": bed_.imds.endpoint, "imds_timeout": "1s",
                    "endpoint_url": bed_.proxy.endpoint},
            "eventbridge": {"event_bus": "default", "source": self.source,
                            "retry_base": "50ms", "retry_max": "1s",
                            "auth_retry_interval": "3s", "request_timeout": "3s"},
            "outbox": {"max_bytes": "64MiB"},
        }
        self.configure(**overrides)

    # ---- configuration --------------------------------------------------------------
    def configure(self, **overrides) -> None:
        """Set keys (flat names, or section__key) and rewrite the ini file."""
        for k, v in overrides.items():
            section, _, key = k.partition("__")
            if not key:
                section, key = KEY_SECTION[k], k
            self.config.setdefault(section, {})[key] = str(v)
        with open(self.config_path, "w") as f:
            for section, kv in self.config.items():
                f.write(f"[{section}]\n")
                for k, v in kv.items():
                    f.write(f"{k} = {v}\n")
                f.write("\n")

    # ---- process --------------------------------------------------------------------
    @staticmethod
    def env(extra: dict | None = None) -> dict:
        """A clean environment: no AWS_* variables, logs to stderr."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "HOME": os.environ.get("HOME", "/root"), "HEALD_LOG_TARGET": "stderr"}
        env.update(extra or {})
        return env

    def command(self, *args: str, log_name: str) -> list[str]:
        if not os.access(HEALD, os.X_OK):
            raise unittest.SkipTest("build/heald is not built (make build/heald)")
        cmd = [HEALD, *args]
        if self.valgrind:
            cmd = VALGRIND + [f"--log-file={os.path.join(self.bed.log_dir, log_name)}.valgrind"] + cmd
        return cmd

    def start(self, extra_env: dict | None = None, wait_started: bool = True,
              timeout: float = 30) -> "Agent":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        name = f"heald-{self.name}-{self.runs}"
        self.log_path = os.path.join(self.bed.log_dir, name + ".log")
        cmd = self.command("--config", self.config_path, log_name=name)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=self.env(extra_env), cwd=self.dir)
        if wait_started:
            self.wait_for_event_log("started", timeout=timeout * (5 if self.valgrind else 1))
        return self

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM and wait; returns the exit status (fails the test if it hangs)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout * (5 if self.valgrind else 1))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise HarnessError(f"heald did not exit within {timeout}s of SIGTERM; "
                               f"log tail:\n{self.log_tail()}")
        return rc

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def run_cli(self, *args: str, timeout: float = 30, extra_env: dict | None = None,
                config: str | None = None) -> subprocess.CompletedProcess:
        """Run a heald subcommand to completion (bounded); stderr also goes to a log file."""
        self.runs += 1
        name = f"heald-{self.name}-{self.runs}-{args[0]}"
        cmd = self.command(args[0], "--config", config or self.config_path, *args[1:],
                           log_name=name)
        try:
            cp = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                env=self.env(extra_env), cwd=self.dir,
                                timeout=timeout * (5 if self.valgrind else 1))
        except subprocess.TimeoutExpired as e:
            raise HarnessError(f"`heald {' '.join(args)}` did not finish within {timeout}s") from e
        with open(os.path.join(self.bed.log_dir, name + ".log"), "w") as f:
            f.write(cp.stderr)
        return cp

    def send_event(self, detail_type: str, detail: dict | str, **kw) -> subprocess.CompletedProcess:
        if not isinstance(detail, str):
            detail = json.dumps(detail, separators=(",", ":"))
        return self.run_cli("send-event", detail_type, detail, **kw)

    # ---- log ------------------------------------------------------------------------
    def log_text(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def mark(self) -> int:
        """A position in the current log; pass as since= to look only at what follows."""
        return len(self.log_text())

    def log_lines(self, regex: str, since: int = 0) -> list[str]:
        r = re.compile(regex)
        return [ln for ln in self.log_text()[since:].splitlines() if r.search(ln)]

    def event_lines(self, event: str, since: int = 0) -> list[str]:
        return self.log_lines(rf"\(event={re.escape(event)}\)$", since)

    def wait_for_log(self, regex: str, timeout: float = 30, since: int = 0) -> re.Match:
        r = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = r.search(self.log_text(), since)
            if m:
                return m
            if self.proc is not None and self.proc.poll() is not None:
                m = r.search(self.log_text(), since)
                if m:
                    return m
                raise HarnessError(f"heald exited ({self.proc.returncode}) before logging "
                                   f"/{regex}/; log tail:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise HarnessError(f"no log line /{regex}/ within {timeout}s; log tail:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)

    def wait_for_event_log(self, event: str, timeout: float = 30, since: int = 0) -> str:
        m = self.wait_for_log(rf"^\S+ heald\[\w+\]: .*\(event={re.escape(event)}\)$", timeout, since)
        return m.group(0)

    # ---- events ---------------------------------------------------------------------
    def validate(self, env: dict) -> None:
        """The EventBridge envelope as heald should fill it, and the detail's schema."""
        where = f"event {json.dumps(env)[:300]}"
        if env.get("source") != self.source:
            raise HarnessError(f"{where}: source is not {self.source!r}")
        if env.get("resources") != [self.bed.instance_arn]:
            raise HarnessError(f"{where}: resources is not [{self.bed.instance_arn}]")
        try:
            t = dt.datetime.strptime(env["time"], "%Y-%m-%dT%H:%M:%SZ")
        except (KeyError, ValueError) as e:
            raise HarnessError(f"{where}: bad time") from e
        if abs((t - dt.datetime.utcnow()).total_seconds()) > 3600:
            raise HarnessError(f"{where}: time is more than an hour away")
        try:
            jsonschema.validate(env.get("detail"), load_schema(env["detail-type"]))
        except jsonschema.ValidationError as e:
            raise HarnessError(f"{where}: detail does not match schema "
                               f"{slug(env['detail-type'])}.json: {e.message}") from e

    def events(self, n: int, timeout: float = 30, detail_type: str | None = None) -> list[dict]:
        """The next n events of detail_type (any if None) from the tap, each validated.
        Other events read meanwhile are kept for later calls."""
        got, keep, deadline = [], [], time.monotonic() + timeout
        pending, self.unclaimed = self.unclaimed, []
        while True:
            for e in pending:
                if len(got) < n and (detail_type is None or e.get("detail-type") == detail_type):
                    self.validate(e)
                    got.append(e)
                else:
                    keep.append(e)
            if len(got) >= n:
                break
            if time.monotonic() > deadline:
                self.unclaimed = keep + got
                raise HarnessError(
                    f"got {len(got)} of {n} {detail_type or 'events'} within {timeout}s: "
                    f"{[e.get('detail') for e in got][:20]}; heald log tail:\n{self.log_tail()}")
            pending = self.tap.receive(10, wait=1)
        self.unclaimed = keep
        return got

    def drain(self, wait: int = 1) -> list[dict]:
        """Everything on the tap now (validated), including unclaimed events."""
        out, self.unclaimed = self.unclaimed, []
        while True:
            evs = self.tap.receive(10, wait=wait)
            if not evs:
                break
            out += evs
        for e in out:
            self.validate(e)
        return out

    def heartbeat_seq(self) -> int | None:
        """The seq of the last heartbeat heald recorded (state_dir/heartbeat.seq, made durable
        before the heartbeat itself is recorded), or None before the first one."""
        try:
            with open(os.path.join(self.state_dir, "heartbeat.seq")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def wait_heartbeats_recorded(self, n: int, timeout: float = 30) -> int:
        """Wait until heald has recorded at least n heartbeats (a backlog of a known size,
        however slowly its timer fires on a busy machine); returns the last seq."""
        return wait_until(lambda: (self.heartbeat_seq() or 0) >= n, timeout,
                          f"heald to record {n} heartbeats (heartbeat.seq {self.heartbeat_seq()})",
                          error=HarnessError)

    def outbox_files(self) -> list[str]:
        root = os.path.join(self.state_dir, "outbox")
        out = []
        for d, _, files in os.walk(root):
            out += [os.path.join(d, f) for f in files]
        return out


class BedTestCase(unittest.TestCase):
    """A test that uses the run's bed; the bed is reset to a clean state before each test."""

    def setUp(self):
        self.bed = bed()
        self.bed.reset()

    @staticmethod
    def seqs(events: list[dict]) -> list[int]:
        return [e["detail"]["seq"] for e in events if e.get("detail-type") == "Agent Heartbeat"]

    def assertContiguous(self, seqs, first=None, msg=""):  # noqa: N802 - unittest style
        """Every number from min (or first) to max is present."""
        self.assertTrue(seqs, f"no heartbeats received {msg}")
        lo = min(seqs) if first is None else first
        missing = sorted(set(range(lo, max(seqs) + 1)) - set(seqs))
        self.assertEqual(missing, [], f"heartbeat seqs missing {msg} (got {sorted(seqs)})")

    def wait_until(self, predicate, timeout: float, what: str, interval: float = 0.1):
        return wait_until(predicate, timeout, what, interval, self.failureException)

    def heartbeats_through(self, agent: Agent, last: int, first: int = 1, timeout: float = 60) -> list[dict]:
        """Read the tap until every heartbeat seq from first to last has arrived; returns every
        event read (all kinds, validated). Waiting for the backlog itself before a stop (not a
        fixed sleep) leaves the stop's 2 s deadline only the newest events to send, so the
        contiguity a test then asserts does not depend on how fast the machine is. Fails
        naming the seqs still missing."""
        got, agent.unclaimed = agent.unclaimed, []
        for e in got:
            agent.validate(e)
        deadline = time.monotonic() + timeout
        while True:
            missing = sorted(set(range(first, last + 1)) - set(self.seqs(got)))
            if not missing:
                return got
            if time.monotonic() > deadline:
                agent.unclaimed = got
                self.fail(f"heartbeats {missing[:20]} (of {first}..{last}) did not arrive within "
                          f"{timeout}s; heald log tail:\n{agent.log_tail()}")
            for e in agent.tap.receive(10, wait=1):
                agent.validate(e)
                got.append(e)
