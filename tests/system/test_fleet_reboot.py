"""test_fleet_reboot.py: the fleet coordinator's reboot rung with a real heald really
rebooting its machine: the container.

The fleet stack (packaging/cloudformation/heald-fleet.yaml) is deployed into the host bed's
moto as a stack of its own (its own fleet tag value); a moto EC2 instance of that fleet stands
for the container. The container's heald is a real, enabled unit (it comes back after the
boot) with that instance's identity from an IMDS server of its own, the credentials of the
stack's instance role, and the queue heald-INSTANCE_ID the lifecycle state machine made on the
instance's running event (fleetbed.Instance sets all that up; its host heald is never started).
An operator run with the ladder ["reboot"] sends heald `reboot`; heald reboots the container
(systemd-nspawn exits 133; it is booted again as a machine would be), and the run succeeds only
once heald answers its ping from the new boot, run-checks passes and EC2's status checks are OK.
Every ping is answered within heald's visibility timeout: before heald stopped polling once it
reported Rebooting, its last long poll lived on in SQS past the shutdown and took the ping,
which came back only after that timeout.
Test bed in integration/ (fleetbed.py says what it does in AWS's place).
"""
import time

import container
from test_commands import STATE_DIR, CommandsTestCase, unit_check

STACK = "heald-fleet-st-reboot"
GROUP = "rebooters"
# heald's [sqs] visibility_timeout: a command a dying heald's last long poll took (SQS hands
# it to a connection nobody reads any more) is delivered again only after it.
VISIBILITY_TIMEOUT = 10
# PollSeconds 1: the run pings again a second after an answer from the old boot.
# RebootSeconds, how long heald has to answer reboot and then each ping across the reboot:
# the container is down for about a second and heald up again within a few; longer than the
# visibility timeout, so that the test fails on its own assertion (a ping answered only
# after it) rather than on the rung's time.
STACK_PARAMETERS = {"S3PublicAccessRemediation": "false", "PollSeconds": "1", "MaxPolls": "20",
                    "RebootSeconds": str(3 * VISIBILITY_TIMEOUT), "RunChecksSeconds": "15"}
_deployed = 0  # stacks this run deployed (a retried test deploys one of its own)


class FleetRebootTest(CommandsTestCase):
    def setUp(self):
        container.HealdTestCase.setUp(self)  # no command queue of the bed's own instance
        import fleetbed  # noqa: PLC0415 - the bed's folder is on sys.path once HealdTestCase ran
        self.fleetbed = fleetbed
        global _deployed
        _deployed += 1
        # Its own name and fleet tag value: only this test's instance is of its fleet.
        fleet = f"st-reboot-{_deployed}"
        self.stack = fleetbed.Stack(self.bed, f"{STACK}-{_deployed}", FleetTagValue=fleet,
                                    **STACK_PARAMETERS).deploy()
        self.addCleanup(self.stack.close)
        self.c = container.Container("fleet-reboot")
        self.addCleanup(self.c.close)
        self.c.boot()
        self.c.install_units("crashy.service")

    def fleet_instance(self):
        """A running instance of the stack's fleet, its IMDS server and its queue (made by the
        lifecycle state machine); the container plays its machine, so fleetbed's host heald
        for it is never started (nor is the instance in stack.instances, whose EC2 watcher
        would boot that heald)."""
        inst = self.fleetbed.Instance(self.stack, "st-reboot", GROUP, {})
        self.addCleanup(inst.imds.stop)
        self.c.wait_for(lambda: self.stack.queue_url(inst.id), 30,
                        f"the lifecycle machine to make heald-{inst.id}", interval=0.2)
        return inst

    def start_heald_as(self, inst) -> None:
        """The container's heald, as a real enabled unit, is inst's heald: fleetbed's config
        for it (IMDS, EventBridge source, queue), the state dir inside, a unit check in place
        of the host's marker file, and the commands the reboot rung sends."""
        config = {section: dict(keys) for section, keys in inst.heald.config.items()
                  if not section.startswith("check ")}
        config["agent"]["state_dir"] = STATE_DIR
        config["sqs"].update(wait_time="2s", visibility_timeout=f"{VISIBILITY_TIMEOUT}s")
        config["commands"] = {"verify_timeout": "20s", "allow": "ping, run-checks, reboot"}
        config["check crashy"] = unit_check("crashy.service")
        self.install_heald(config)
        self.wait_heald_up()

    def boot_id(self) -> str:
        """The container's boot id (systemd-nspawn gives each boot its own)."""
        return self.c.run(["cat", "/proc/sys/kernel/random/boot_id"]).stdout.strip()

    def ping_waits(self, run: str) -> list[float]:
        """How long each of the run's pings waited for heald's answer, in seconds."""
        history = self.stack.sfn.get_execution_history(executionArn=run, maxResults=1000)["events"]
        waits, entered = [], None
        for e in history:
            if e.get("stateEnteredEventDetails", {}).get("name") == "Ping":
                entered = e["timestamp"]
            elif e.get("stateExitedEventDetails", {}).get("name") == "Ping" and entered:
                waits.append(round((e["timestamp"] - entered).total_seconds(), 2))
                entered = None
        return waits

    def test_reboot_rung_verified_from_the_new_boot(self):
        s = self.stack
        self.enable_at_boot("crashy.service")
        self.start_unit("crashy.service")
        inst = self.fleet_instance()
        self.start_heald_as(inst)
        self.write_marker("before")
        pid1 = self.c.pid1
        boot_before = self.boot_id()

        with s.sample_states(inst) as ec2:
            t0 = time.monotonic()
            run = s.start_operator({"instance_id": inst.id, "action": "reboot", "reason": "kernel update",
                                    "ladder": ["reboot"]}, "st-reboot")
            down_at = self.wait_reboot_from_inside(timeout=60)
            self.assertNotEqual(self.c.pid1, pid1, "a new init")
            self.assertEqual(self.read_marker(), "", "a new /run")
            boot_after = self.boot_id()
            self.assertNotEqual(boot_after, boot_before, "a new boot id")
            self.wait_heald_up()
            d = s.wait_done(run, timeout=90)
            took = time.monotonic() - t0
        states = s.states_entered(run)
        self.assertEqual(d["status"], "SUCCEEDED", f"{states}\n{self.heald_journal()}")
        self.assertLess(states.index("RebootCommand"), states.index("NewBoot"))
        self.assertLess(states.index("NewBoot"), states.index("RunChecks"))
        self.assertLess(states.index("RunChecks"), states.index("StatusChecks"))
        self.assertIn("Verified", states)
        for fallback in ("Reboot", "PrepareStop", "Stop", "Start", "ClimbRung", "Withdraw"):
            self.assertNotIn(fallback, states, "neither EC2's reboot nor stop-start")
        self.assertEqual(ec2.states(inst.id), {"running"}, "EC2 never stopped the instance")
        # heald opened no long poll after Rebooting: none lived on in SQS past the shutdown to
        # take the ping and hide it for the visibility timeout.
        pings = self.ping_waits(run)
        self.assertLess(max(pings), VISIBILITY_TIMEOUT, f"a ping waited for the visibility timeout: {pings}")

        # heald's side: Rebooting from the old boot, Command Verified from the new one.
        rebooting = s.heald_events.wait("Rebooting", inst.id)["detail"]
        self.assertEqual(rebooting["command_id"], "st-reboot-0-reboot")
        self.assertEqual(rebooting["boot_id"], boot_before)
        verified = s.heald_events.wait("Command Verified", inst.id)["detail"]
        self.assertEqual((verified["command_id"], verified["action"], verified["verified"]),
                         ("st-reboot-0-reboot", "reboot", True))
        self.assertEqual((verified["previous_boot_id"], verified["boot_id"]), (boot_before, boot_after))
        (checked,) = [e["detail"] for e in s.heald_events.matching("Command Succeeded", inst.id)
                      if e["detail"]["action"] == "run-checks"]
        self.assertIs(checked["verified"], True, checked)
        self.assertEqual([(c["check"], c["healthy"]) for c in checked["checks"]], [("crashy", True)])

        # The coordinator's side: the rung's steps name both boots; its event is valid (the
        # subscriber validates it against its schema).
        done = s.coordinator_events.wait("Fleet Remediation Succeeded", inst.id)["detail"]
        self.assertEqual(done["execution"], run)
        self.assertEqual(done["ladder"], ["reboot"])
        steps = done["steps"]
        self.assertEqual((steps["reboot"]["by"], steps["reboot"]["boot_id"], steps["booted"]["boot_id"]),
                         ("heald", boot_before, boot_after))
        held = {pk: holders for pk, holders in s.lease_holders().items() if holders}
        self.assertEqual(held, {}, "every lease released")
        self.assertEqual(s.run_audit(inst.id, run)["outcome"], "succeeded")
        print(f"\n# fleet reboot rung: start -> container down {down_at - t0:.2f} s, -> run SUCCEEDED "
              f"{took:.2f} s (pings answered after {pings} s)", flush=True)


if __name__ == "__main__":
    import unittest
    unittest.main()
