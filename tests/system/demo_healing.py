#!/usr/bin/env python3
"""demo_healing.py: heald healing a crashing service under a real systemd, watched from the
outside as an EventBridge subscriber sees it. Used by `make demo`.

A throwaway container (container.py) runs flaky.service, which crashes every 20-40 s, and
heald with a unit check on it (action restart-unit). The integration bed runs moto (IAM auth
on) and the IMDSv2 stand-in on the host; a subscriber queue gets heald's events through an
EventBridge rule, and each is printed on one line: time, detail-type, check, what was
observed or done. Ctrl-C stops heald (its Agent Stopping event is printed), powers the
container off and stops the bed.

Where containers cannot run (not root, no systemd-nspawn/debootstrap, no Debian mirror) or
the bed's Python packages are missing, it says why and runs tests/integration/demo.sh
instead: heald on the host, with the host-signal checks of config/demo.ini (disk, memory).
Usage: sudo tests/system/demo_healing.py
"""
import json
import os
import signal
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

HOST_DEMO = os.path.join(REPO, "tests", "integration", "demo.sh")


def say(msg: str) -> None:
    print(f"demo: {msg}", flush=True)


def host_demo(why: str) -> None:
    """Replace this process with the host demo (heald outside any container)."""
    say(f"no container demo: {why}")
    say("falling back to heald on this host with config/demo.ini's host-signal checks")
    os.execv(HOST_DEMO, [HOST_DEMO])


def event_line(env: dict) -> str:
    """One line for an event: local time, detail-type, check, what was seen or done."""
    d = env.get("detail") or {}
    kind = env.get("detail-type", "?")
    if kind == "Remediation Started":
        what = (f"{'would ' if d.get('dry_run') else ''}{d.get('action')} {d.get('action_target')}"
                f" (attempt {d.get('attempt')} of {d.get('max_actions')})")
    elif kind == "Remediation Succeeded":
        what = f"{d.get('action')} {d.get('action_target')} verified: {d.get('observed')}, " \
               f"{d.get('time_to_recovery_ms')} ms after detection"
    elif kind in ("Remediation Failed", "Remediation Escalated"):
        what = f"{d.get('action')} {d.get('action_target')}: {d.get('reason')}"
    elif kind.startswith("Command") or kind in ("Ready For Stop", "Rebooting"):
        units = ", ".join(f"{u.get('operation')} {u.get('unit')}: {u.get('result')}"
                          for u in d.get("units", []) if isinstance(u, dict))
        what = f"{d.get('command_id')} {d.get('action')}" + (f" [{units}]" if units else "") + \
            (f" verified={d['verified']}" if "verified" in d else "") + \
            (f" ({d['reason']})" if d.get("reason") else "")
    elif "observed" in d:
        what = f"{d['observed']}" + (f" ({d['message']})" if d.get("message") else "")
    else:
        what = json.dumps(d, separators=(",", ":"))
    return f"{time.strftime('%H:%M:%S')}  {kind:<22} {d.get('check', '-'):<8} {what}"


def run_container_demo(container, harness, c) -> None:
    """The demo in the booted container c, until Ctrl-C."""
    bed = harness.bed()
    say(f"moto (IAM auth on) at {bed.moto.endpoint}, IMDSv2 at {bed.imds.endpoint}; "
        f"logs in {bed.log_dir}")
    agent = harness.Agent(bed, "demo-healing")
    config = {section: dict(keys) for section, keys in agent.config.items()}
    config["agent"].update(log_level="info", heartbeat_interval="60s")
    # At most 3 crashes a minute: a budget of 5 a minute never escalates.
    config["check flaky"] = {"type": "unit", "unit": "flaky.service", "action": "restart-unit",
                             "max_actions": "5", "action_window": "1m", "verify_timeout": "20s"}
    # The fleet's hand: the instance's own queue, and what it may ask for.
    queue = bed.fleet.command_queue()
    config["sqs"] = {"queue_url": f"{bed.proxy.endpoint}/{{account_id}}/heald-{{instance_id}}",
                     "wait_time": "5s", "visibility_timeout": "30s"}
    config["commands"] = {"allow": "ping, run-checks, stop-start-units", "units": "flaky.service",
                          "verify_timeout": "30s"}
    c.install_units("flaky.service")
    c.systemctl("start", "flaky.service")
    c.start_heald(config)
    say(f"container {c.name} runs flaky.service (crashes every 20-40 s) and heald "
        "(restart-unit on it)")
    say(f"crash it yourself: sudo nsenter -t {c.pid1} -a systemctl kill -s KILL flaky")
    say(f"heald's view: sudo nsenter -t {c.pid1} -a {container.HEALD_INSIDE} status")
    say("events as the subscriber receives them (Ctrl-C stops):")
    sent = False
    try:
        while True:
            for env in agent.tap.receive(10, wait=2):
                print(event_line(env), flush=True)
                if not sent and env.get("detail-type") == "Agent Started":
                    # A coordinated stop/start, as a fleet workflow would send it.
                    queue.send({"command_id": f"demo-{int(time.time())}", "action": "stop-start-units",
                                "instance_id": bed.fleet.instance_id, "units": ["flaky.service"],
                                "reason": "demo: coordinated stop/start"})
                    say("sent stop-start-units for flaky.service to the instance's queue")
                    sent = True
    except KeyboardInterrupt:
        say("stopping heald")
    # A long poll cut short by Ctrl-C still waits in moto and would swallow the next
    # event (hidden for the visibility timeout): let it run out first.
    time.sleep(2.5)
    c.run(["systemctl", "stop", "heald-test.service"], check=False)
    deadline = time.monotonic() + 8  # Agent Stopping, published on the way out
    while time.monotonic() < deadline:
        evs = agent.tap.receive(10, wait=1)
        for env in evs:
            print(event_line(env), flush=True)
        if any(e.get("detail-type") == "Agent Stopping" for e in evs):
            break


def _terminate(signum, frame):
    # SIGTERM unwinds like Ctrl-C: the container and the bed are cleaned up.
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    if not os.access(os.path.join(REPO, "build", "heald"), os.X_OK):
        say("build/heald is missing (make build/heald)")
        return 1
    os.environ.setdefault("HEALD_SYSTEM_LOGDIR", tempfile.mkdtemp(prefix="heald-demo-healing-"))
    import container
    container.LOG_DIR = os.environ["HEALD_SYSTEM_LOGDIR"]
    try:
        say("checking that containers can run here (the first run builds a rootfs, ~1 min)")
        container.require()
    except unittest.SkipTest as e:
        host_demo(str(e))
    try:
        harness = container.testlib.import_bed()
    except ImportError as e:
        host_demo(f"the integration bed cannot run: {e}")
    say(f"container console logs in {container.LOG_DIR}")
    c = container.Container("demo")
    try:
        try:
            c.boot()
        except container.ContainerError as e:
            c.close()
            host_demo(f"the container did not boot: {str(e).splitlines()[0]}")
        run_container_demo(container, harness, c)
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        say("powering the container off")
        container.shutdown_all()
        if harness._bed is not None:
            harness._bed.stop()
        say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
