"""fleetbed.py: the fleet stack (packaging/cloudformation/heald-fleet.yaml) deployed into the
run's moto, and EC2 instances of moto played by real heald daemons.

    stack = fleetbed.stack()                       # deployed once per run, with short timings
    a = stack.instance("a")                        # a moto instance, its IMDS, its heald
    stack.alarm(a, "system")                       # its status-check alarm goes to ALARM
    run = stack.wait_execution("Coordinator", after=t0)
    stack.coordinator_events.wait("Fleet Remediation Succeeded", a.id)

What moto does not do is done here as AWS would do it, and said so where it happens:
alarm state changes are put on the bus as CloudWatch would send them, and EC2 hands the
instance role's credentials to the instance (through its own IMDS server). A heald is
stopped when its instance stops and started when it runs again (a watcher follows the
EC2 state-change events the moto shim announces), as a machine's boot would.
"""
import concurrent.futures
import json
import os
import threading
import time
import unittest

import jsonschema

import awsbed
import harness
import moto_aws
from imds_server import ImdsServer

TEMPLATE = os.path.join(awsbed.REPO, "packaging", "cloudformation", "heald-fleet.yaml")
SCHEMA_DIR = os.path.join(awsbed.REPO, "packaging", "cloudformation", "schemas")
STACK = "heald-fleet-it"
HEALD_SOURCE = "heald.it.fleet"
COORDINATOR_SOURCE = "heald.it.fleet.coordinator"
FLEET_TAG = ("heald:fleet", "true")
GROUP_TAG = "heald:group"
# The bed's machine runs (the moto shim keeps a stopping instance from being stopped until
# the bed removes this tag; see Instance.on_state).
MACHINE_UP = {"Key": "heald-test:machine", "Value": "up"}
# Short timings so that every wait loop and timeout runs within seconds.
PARAMETERS = {
    "HealdEventSource": HEALD_SOURCE, "CoordinatorEventSource": COORDINATOR_SOURCE,
    "PollSeconds": "1", "MaxPolls": "20", "PrepareStopSeconds": "6", "RunChecksSeconds": "10",
    "RestartUnitsSeconds": "3", "RebootSeconds": "8",
    "StormWindowSeconds": "1", "S3PublicAccessRemediation": "true",
    # No wait for EC2's automatic recovery but on the auto-recovery stack (health_stack()).
    "AutoRecoveryWaitSeconds": "0",
}
# The shared examples of AWS's events ($HEALD_TESTDATA, as the unit tests read them).
TESTDATA = os.environ.get("HEALD_TESTDATA", os.path.join(os.path.dirname(awsbed.REPO), "shared", "testdata"))


def load_schema(detail_type: str) -> dict:
    """The coordinator's events have their schemas beside the stack, heald's in agent/."""
    path = os.path.join(SCHEMA_DIR, harness.slug(detail_type) + ".json")
    if not os.path.exists(path):
        return harness.load_schema(detail_type)
    with open(path) as f:
        return json.load(f)


class Subscriber:
    """Every event an SQS tap receives, kept in order; waits look at all of them."""

    def __init__(self, tap: awsbed.Tap, validate: bool):
        self.tap = tap
        self.validate = validate
        self.seen: list[dict] = []
        self._lock = threading.Lock()

    def poll(self, wait: int = 1) -> None:
        for e in self.tap.receive(10, wait=wait):
            if self.validate:
                jsonschema.validate(e["detail"], load_schema(e["detail-type"]))
            with self._lock:
                self.seen.append(e)

    def matching(self, detail_type: str, instance_id: str | None = None) -> list[dict]:
        with self._lock:
            return [e for e in self.seen if e["detail-type"] == detail_type
                    and (instance_id is None or any(r.endswith("/" + instance_id) for r in e["resources"]))]

    def wait(self, detail_type: str, instance_id: str | None = None, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            got = self.matching(detail_type, instance_id)
            if got:
                return got[-1]
            if time.monotonic() > deadline:
                raise harness.HarnessError(f"no {detail_type!r} for {instance_id} within {timeout}s; "
                                           f"saw {[e['detail-type'] for e in self.seen]}")
            self.poll()


class Instance:
    """A moto EC2 instance of the fleet, its IMDS server, and the heald that runs on it."""

    def __init__(self, stack: "Stack", name: str, group: str | None, heald_overrides: dict):
        self.stack = stack
        self.name = name
        tags = [{"Key": FLEET_TAG[0], "Value": stack.fleet_tag_value}, MACHINE_UP]
        if group:
            tags.append({"Key": GROUP_TAG, "Value": group})
        r = stack.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                    TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        self.id = r["Instances"][0]["InstanceId"]
        self.arn = f"arn:aws:ec2:{harness.REGION}:{awsbed.ACCOUNT_ID}:instance/{self.id}"
        self.boots_heald = True  # False: the host is broken, heald does not come up
        self._boot_lock = threading.Lock()  # the watcher's boot and Stack.instance() may race
        bed = stack.bed
        self.imds = ImdsServer(self._credentials, region=harness.REGION, role=stack.instance_role,
                               instance_id=self.id, on_credentials=bed.proxy.set_key_expiry).start()
        self.marker = os.path.join(bed.run_dir, f"fleet-{name}-healthy")
        open(self.marker, "w").close()
        self.heald = harness.Agent(bed, f"fleet-{name}", **{
            "imds_endpoint": self.imds.endpoint, "source": HEALD_SOURCE,
            "queue_url": f"{bed.proxy.endpoint}/{{account_id}}/heald-{{instance_id}}",
            "wait_time": "1s", "visibility_timeout": "30s", "verify_timeout": "5s",
            "allow": "ping, run-checks, prepare-stop",
            "check marker__type": "file_age", "check marker__path": self.marker,
            "check marker__max_age": "1h", **heald_overrides})
        bed.agents.append(self.heald)

    def _credentials(self) -> dict:
        """The instance role's credentials, as EC2 delivers them to the instance (the
        session is named after the instance, as EC2 names it)."""
        c = self.stack.bed.fleet.client("sts").assume_role(
            RoleArn=self.stack.instance_role_arn, RoleSessionName=self.id, DurationSeconds=900)
        return {k: c["Credentials"][k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken",
                                                 "Expiration")}

    @property
    def state(self) -> str:
        r = self.stack.ec2.describe_instances(InstanceIds=[self.id])
        return r["Reservations"][0]["Instances"][0]["State"]["Name"]

    def heald_logs(self) -> list[str]:
        """The log of each start of this instance's heald, oldest first."""
        out = []
        for run in range(1, self.heald.runs + 1):
            with open(os.path.join(self.stack.bed.log_dir, f"heald-{self.heald.name}-{run}.log"),
                      errors="replace") as f:
                out.append(f.read())
        return out

    def heald_running(self) -> bool:
        return self.heald.proc is not None and self.heald.proc.poll() is None

    def boot(self) -> None:
        """heald starts with the machine, unless it is running already or the host is broken."""
        with self._boot_lock:
            if self.boots_heald and not self.heald_running():
                self.heald.start()

    def on_state(self, state: str) -> None:
        """The machine halts with the instance and boots with it. The instance is stopped
        only once the machine has halted (the moto shim waits for MACHINE_UP to go), as on
        EC2: otherwise a heald still stopping would poll the queue of an instance already
        started again, and take the run-checks meant for the heald that boots."""
        if state in ("stopping", "shutting-down"):
            if self.heald_running():
                self.heald.stop()
            self.stack.ec2.delete_tags(Resources=[self.id], Tags=[MACHINE_UP])
        elif state == "running":
            self.stack.ec2.create_tags(Resources=[self.id], Tags=[MACHINE_UP])
            self.boot()


# The EC2 states of an instance a stop/start has taken away.
AWAY = frozenset({"stopping", "stopped", "pending"})


class StateSampler:
    """EC2's view of some instances, sampled every 0.1 s while it runs (a context manager)."""

    def __init__(self, stack: "Stack", ids: list[str]):
        self.ec2 = stack.bed.fleet.client("ec2")
        self.ids = ids
        self.samples: list[dict[str, str]] = []
        self.interval_s = 0.0  # the mean time between samples, once it stopped
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            r = self.ec2.describe_instances(InstanceIds=self.ids)
            self.samples.append({i["InstanceId"]: i["State"]["Name"]
                                 for res in r["Reservations"] for i in res["Instances"]})
            self._stop.wait(0.1)
        self.interval_s = (time.monotonic() - started) / max(len(self.samples), 1)

    def __enter__(self) -> "StateSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def states(self, instance_id: str) -> set[str]:
        return {s[instance_id] for s in self.samples}

    def most_away(self) -> int:
        """The most instances away at once in any sample."""
        return max((sum(st in AWAY for st in x.values()) for x in self.samples), default=0)


def health_event_example() -> dict:
    """AWS Health's event for EC2, from the shared examples; a clone without them skips the test
    (call it before the test starts anything)."""
    path = os.path.join(TESTDATA, "aws", "events", "aws-health-ec2-issue-instance-store-degraded.json")
    if not os.path.exists(path):
        raise unittest.SkipTest(f"no shared test data ({path})")
    with open(path) as f:
        return json.load(f)


class Stack:
    def __init__(self, bed: harness.Bed, name: str = STACK, **parameters: str):
        """The stack deployed as `name`, with PARAMETERS and these overrides."""
        self.bed = bed
        self.name = name
        self.parameters = {**PARAMETERS, **parameters}
        self.fleet_tag_value = self.parameters.get("FleetTagValue", FLEET_TAG[1])
        self.injected: list[dict] = []  # the events put on the bus in AWS's place
        fleet = bed.fleet
        self.cfn = fleet.client("cloudformation")
        self.ec2 = fleet.client("ec2")
        self.sfn = fleet.client("stepfunctions")
        self.ddb = fleet.client("dynamodb")
        self.events = fleet.client("events")
        self.cloudwatch = fleet.client("cloudwatch")
        self.sqs = fleet.client("sqs")
        self.instances: dict[str, Instance] = {}
        self._watcher = None
        self._stop = threading.Event()

    def deploy(self) -> "Stack":
        with open(TEMPLATE) as f:
            body = f.read()
        self.cfn.create_stack(StackName=self.name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
                              Parameters=[{"ParameterKey": k, "ParameterValue": v}
                                          for k, v in self.parameters.items()])
        desc = self.cfn.describe_stacks(StackName=self.name)["Stacks"][0]
        if desc["StackStatus"] != "CREATE_COMPLETE":
            raise harness.HarnessError(f"stack {desc['StackStatus']}: {desc.get('StackStatusReason')}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in desc["Outputs"]}
        self.resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in
                          self.cfn.list_stack_resources(StackName=self.name)["StackResourceSummaries"]}
        self.instance_role = self.resources["InstanceRole"]
        self.instance_role_arn = f"arn:aws:iam::{awsbed.ACCOUNT_ID}:role/{self.instance_role}"
        # Test bed only: the admin user fetches the role's credentials in EC2's place.
        self.bed.fleet.client("iam").update_assume_role_policy(
            RoleName=self.instance_role, PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": "sts:AssumeRole",
                    "Principal": {"AWS": f"arn:aws:iam::{awsbed.ACCOUNT_ID}:user/{awsbed.ADMIN_USER}",
                                  "Service": "ec2.amazonaws.com"}}]}))
        self.heald_events = Subscriber(self.bed.fleet.new_tap(HEALD_SOURCE), validate=True)
        self.coordinator_events = Subscriber(self.bed.fleet.new_tap(COORDINATOR_SOURCE), validate=True)
        self.ec2_events = Subscriber(self.bed.fleet.new_tap("aws.ec2"), validate=False)
        self.alerts = self._subscribe_alerts()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()
        return self

    def _subscribe_alerts(self) -> str:
        """An SQS queue subscribed to the alert topic: what a person would receive."""
        url = self.sqs.create_queue(QueueName=f"{self.name}-alerts")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.bed.fleet.client("sns").subscribe(TopicArn=self.outputs["AlertTopicArn"], Protocol="sqs",
                                               Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        return url

    def alert_messages(self, wait: int = 1) -> list[str]:
        out = []
        while True:
            r = self.sqs.receive_message(QueueUrl=self.alerts, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
            msgs = r.get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(m["Body"])
                self.sqs.delete_message(QueueUrl=self.alerts, ReceiptHandle=m["ReceiptHandle"])

    def _watch(self) -> None:
        """Follows EC2 state-change events: a heald halts and boots with its instance."""
        done = 0
        while not self._stop.is_set():
            try:
                self.ec2_events.poll(wait=1)
            except Exception:  # the bed is going away
                return
            for e in self.ec2_events.seen[done:]:
                inst = next((i for i in self.instances.values() if i.id == e["detail"]["instance-id"]), None)
                if inst is not None:
                    inst.on_state(e["detail"]["state"])
            done = len(self.ec2_events.seen)

    def close(self) -> None:
        self._stop.set()
        for inst in self.instances.values():
            inst.heald.kill9()
            inst.imds.stop()

    # ---- instances --------------------------------------------------------------------
    def instance(self, name: str, group: str | None = None, **heald_overrides) -> Instance:
        """A running instance of the fleet with its heald polling its queue (created by the
        lifecycle state machine from the instance's "running" event)."""
        inst = Instance(self, name, group, heald_overrides)
        self.instances[name] = inst
        deadline = time.monotonic() + 30
        while not self.queue_url(inst.id):
            if time.monotonic() > deadline:
                raise harness.HarnessError(f"no queue for {inst.id} after 30 s")
            time.sleep(0.2)
        inst.boot()
        inst.heald.wait_for_log(r"Receiving commands from ", timeout=15)
        return inst

    def queue_url(self, instance_id: str) -> str | None:
        try:
            return self.sqs.get_queue_url(QueueName=f"heald-{instance_id}")["QueueUrl"]
        except self.sqs.exceptions.QueueDoesNotExist:
            return None

    # ---- what AWS would send -----------------------------------------------------------
    def alarm_at_once(self, insts: list[Instance], which: str = "system") -> None:
        """Their alarms at once, as CloudWatch would send them when a shared cause hits (8
        threads: moto is not made for many more). One after the other they would reach the
        coordinator spread over seconds on a loaded machine, longer than a test stack's
        PollSeconds: a storm's first runs would see a quiet group and act before the breaker
        tripped, which is the slow storm of its own test, not this one."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda inst: self.alarm(inst, which), insts))

    def alarm(self, inst: Instance, which: str) -> None:
        """The instance's status-check alarm goes to ALARM: CloudWatch's state change, and the
        event CloudWatch puts on the default bus for it (moto sends none)."""
        metric = {"system": "StatusCheckFailed_System", "instance": "StatusCheckFailed_Instance"}[which]
        name = f"heald-{which}-status-{inst.id}"
        # EC2's status check says the host is impaired (the moto shim), where a run reads it before
        # it acts: elsewhere the call would only spread a storm's alarms further apart.
        if which == "system" and self.parameters["AutoRecoveryWaitSeconds"] != "0":
            self.ec2.create_tags(Resources=[inst.id], Tags=[{"Key": moto_aws.SYSTEM_STATUS_TAG, "Value": "impaired"}])
        reason = "Threshold Crossed: 2 datapoints were greater than or equal to the threshold (1.0)."
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)
        self.put_aws_event("aws.cloudwatch", "CloudWatch Alarm State Change",
                           [f"arn:aws:cloudwatch:{harness.REGION}:{awsbed.ACCOUNT_ID}:alarm:{name}"], {
                               "alarmName": name,
                               "state": {"value": "ALARM", "reason": reason,
                                         "timestamp": awsbed.iso8601(time.time())},
                               "previousState": {"value": "OK", "reason": "",
                                                 "timestamp": awsbed.iso8601(time.time() - 300)},
                               "configuration": {"metrics": [{
                                   "id": "m1", "returnData": True,
                                   "metricStat": {"metric": {"namespace": "AWS/EC2", "name": metric,
                                                             "dimensions": {"InstanceId": inst.id}},
                                                  "period": 60, "stat": "Maximum"}}]}})

    def put_aws_event(self, source: str, detail_type: str, resources: list[str], detail: dict) -> None:
        r = self.events.put_events(Entries=[{"Source": source, "DetailType": detail_type,
                                             "Resources": resources, "Detail": json.dumps(detail)}])
        assert r["FailedEntryCount"] == 0, r
        self.injected.append({"source": source, "detail-type": detail_type, "resources": resources,
                              "detail": detail})

    def auto_recovered(self, inst: Instance, code: str) -> None:
        """EC2's automatic recovery ended on inst (code: AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_SUCCESS,
        ..._FAILURE, ...): the AWS Health event AWS puts on the default bus, built from the shared
        example envelope (moto cannot emit AWS Health events). After a success the instance boots
        on a healthy host: its system status check is initializing, then ok once the lifecycle
        recorded the outcome (so that a run sees the event before the status checks)."""
        example = health_event_example()
        detail = example["detail"]
        detail["eventTypeCode"] = code
        detail["eventArn"] = f"arn:aws:health:{harness.REGION}::event/EC2/{code}/{code}_{inst.id}"
        for entity in detail["affectedEntities"]:
            entity["entityValue"] = inst.id
        recovered = code.endswith("_SUCCESS")
        if recovered:
            self.ec2.create_tags(Resources=[inst.id], Tags=[{"Key": moto_aws.SYSTEM_STATUS_TAG, "Value": "initializing"}])
        self.put_aws_event(example["source"], example["detail-type"], [inst.id], detail)
        deadline = time.monotonic() + 30
        while self.auto_recovery_record(inst).get("auto_recovery_event") != code:
            if time.monotonic() > deadline:
                raise harness.HarnessError(f"the lifecycle did not record {code} for {inst.id} within 30 s")
            time.sleep(0.05)
        if recovered:
            self.ec2.delete_tags(Resources=[inst.id], Tags=[{"Key": moto_aws.SYSTEM_STATUS_TAG}])

    def execution_ended(self, execution_arn: str) -> None:
        """Step Functions' Execution Status Change for an execution that ended (moto sends none)."""
        d = self.wait_done(execution_arn, timeout=30)
        self.put_aws_event("aws.states", "Step Functions Execution Status Change", [execution_arn], {
            "executionArn": execution_arn, "stateMachineArn": d["stateMachineArn"], "name": d["name"],
            "status": d["status"], "startDate": int(d["startDate"].timestamp() * 1000),
            "stopDate": int(d["stopDate"].timestamp() * 1000), "input": d["input"],
            "inputDetails": {"included": True}, "output": None, "outputDetails": None})

    def compliance_change(self, bucket: str, rule: str, compliance: str = "NON_COMPLIANT") -> None:
        """AWS Config finds a bucket's compliance changed: the event Config puts on the
        default bus (moto's Config evaluates no managed rule and sends none)."""
        now = awsbed.iso8601(time.time())
        self.put_aws_event("aws.config", "Config Rules Compliance Change", [], {
            "resourceId": bucket, "awsRegion": harness.REGION, "awsAccountId": awsbed.ACCOUNT_ID,
            "configRuleName": rule, "recordVersion": "1.0", "messageType": "ComplianceChangeNotification",
            "configRuleARN": f"arn:aws:config:{harness.REGION}:{awsbed.ACCOUNT_ID}:config-rule/config-rule-{rule[-6:]}",
            "resourceType": "AWS::S3::Bucket",
            "newEvaluationResult": {
                "evaluationResultIdentifier": {"evaluationResultQualifier": {
                    "configRuleName": rule, "resourceType": "AWS::S3::Bucket", "resourceId": bucket},
                    "orderingTimestamp": now},
                "complianceType": compliance, "resultRecordedTime": now, "configRuleInvokedTime": now},
            "oldEvaluationResult": {"complianceType": "COMPLIANT"},
            "notificationCreationTime": now})

    def crash_on_request(self, inst: Instance) -> None:
        """inst's heald dies the moment it sends Remediation Requested: the request still
        reaches EventBridge (as a request on the wire does), heald answers nothing after it."""
        proxy, forward = self.bed.proxy, self.bed.proxy.handle

        def handle(h):
            if not (h.headers.get("X-Amz-Target") or "").endswith("PutEvents"):
                return forward(h)
            body = h._read_body()
            h._read_body = lambda: body  # this request's body only (see harness.Bed)
            try:
                if b"Remediation Requested" in body and inst.id.encode() in body:
                    inst.heald.kill9()
                    proxy.handle = forward
                forward(h)
            finally:
                del h._read_body

        proxy.handle = handle

    def sample_states(self, *insts: Instance) -> "StateSampler":
        return StateSampler(self, [i.id for i in insts])

    def seen_events(self) -> list[dict]:
        """Every event of the run: heald's, the coordinator's, the EC2 state changes the moto
        shim announced in EC2's place, and what the bed put on the bus in AWS's place."""
        return self.heald_events.seen + self.coordinator_events.seen + self.ec2_events.seen + self.injected

    # ---- the state machines -----------------------------------------------------------
    def machine_arn(self, which: str) -> str:
        return self.resources[f"{which}StateMachine"]

    def executions(self, which: str) -> list[dict]:
        return self.sfn.list_executions(stateMachineArn=self.machine_arn(which))["executions"]

    def start_operator(self, request: dict, name: str) -> str:
        """An operator's aws stepfunctions start-execution (always named: moto needs it)."""
        return self.sfn.start_execution(stateMachineArn=self.machine_arn("Coordinator"), name=name,
                                        input=json.dumps(request))["executionArn"]

    def wait_new_executions(self, which: str, known: set, n: int = 1, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            new = [e["executionArn"] for e in self.executions(which) if e["executionArn"] not in known]
            if len(new) >= n:
                return new
            if time.monotonic() > deadline:
                raise harness.HarnessError(f"{len(new)} new {which} executions after {timeout}s, not {n}")
            time.sleep(0.2)

    def wait_done(self, execution_arn: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            d = self.sfn.describe_execution(executionArn=execution_arn)
            if d["status"] != "RUNNING":
                return d
            if time.monotonic() > deadline:
                raise harness.HarnessError(f"{execution_arn} still RUNNING after {timeout}s")
            time.sleep(0.3)

    def states_entered(self, execution_arn: str) -> list[str]:
        """The states the execution went through, and the failures it met on the way."""
        history = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        out = []
        for e in history:
            if "stateEnteredEventDetails" in e:
                out.append(e["stateEnteredEventDetails"]["name"])
            for key in ("taskFailedEventDetails", "executionFailedEventDetails"):
                if key in e:
                    out.append(f"{e[key].get('error')}: {e[key].get('cause', '')[:300]}")
        return out

    # ---- leases and audit --------------------------------------------------------------
    def lease_holders(self) -> dict[str, list[str]]:
        """Every item that has held a lease (the groups' records without one are left out)."""
        items = self.ddb.scan(TableName=self.resources["LeaseTable"])["Items"]
        return {i["pk"]["S"]: i["holders"]["SS"] for i in items if "holders" in i}

    def group_record(self, group: str) -> dict:
        """The group's record (fleet#GROUP): its live members, its budgets and counts."""
        item = self.ddb.get_item(TableName=self.resources["LeaseTable"], Key={"pk": {"S": f"fleet#{group}"}},
                                 ConsistentRead=True).get("Item", {})
        return {k: (int(v["N"]) if "N" in v else v.get("SS", v.get("BOOL", v.get("S"))))
                for k, v in item.items()}

    def auto_recovery_record(self, inst: Instance) -> dict:
        """What the lifecycle recorded of EC2's automatic recovery on the instance's lease item."""
        item = self.ddb.get_item(TableName=self.resources["LeaseTable"], Key={"pk": {"S": f"instance#{inst.id}"}},
                                 ConsistentRead=True).get("Item", {})
        return {k: v["S"] for k, v in item.items() if k.startswith("auto_recovery")}

    def audit(self, subject: str) -> list[dict]:
        r = self.ddb.query(TableName=self.resources["AuditTable"],
                           KeyConditionExpression="subject = :s",
                           ExpressionAttributeValues={":s": {"S": subject}})
        return [{k: list(v.values())[0] for k, v in item.items()} for item in r["Items"]]

    def run_audit(self, subject: str, execution_arn: str) -> dict:
        """The run's own audit item, written at its end (beside it, items for each rung it
        climbed, outcome escalated, and for its wait, outcome waiting)."""
        (item,) = [r for r in self.audit(subject)
                   if r["execution"] == execution_arn and r["outcome"] not in ("escalated", "waiting")]
        return item

    def waiting(self, subject: str, execution_arn: str) -> tuple[list[dict], list[dict]]:
        """The run's Fleet Remediation Waiting events and its audit items of outcome waiting."""
        self.coordinator_events.poll(wait=0)
        events = [e for e in self.coordinator_events.matching("Fleet Remediation Waiting", subject)
                  if e["detail"]["execution"] == execution_arn]
        items = [r for r in self.audit(subject) if r["execution"] == execution_arn and r["outcome"] == "waiting"]
        return events, items


_stack = None
_stack_lock = threading.Lock()
_others: dict[str, Stack] = {}


def stack() -> Stack:
    """The run's fleet stack, deployed on first use; closed with the bed."""
    global _stack
    with _stack_lock:
        if _stack is None:
            bed = harness.bed()
            _stack = Stack(bed).deploy()
            import atexit
            atexit.register(_stack.close)
        return _stack


def _other_stack(fleet_tag_value: str, **parameters: str) -> Stack:
    """A second stack beside the run's, whose fleet is the instances tagged
    heald:fleet=fleet_tag_value (the first stack's coordinator finds them outside its fleet)."""
    stack()
    with _stack_lock:
        if fleet_tag_value not in _others:
            other = Stack(harness.bed(), f"{STACK}-{fleet_tag_value}", FleetTagValue=fleet_tag_value,
                          S3PublicAccessRemediation="false", **parameters).deploy()
            import atexit
            atexit.register(other.close)
            _others[fleet_tag_value] = other
        return _others[fleet_tag_value]


def other_stacks() -> list[Stack]:
    """The stacks deployed beside the run's so far."""
    with _stack_lock:
        return list(_others.values())


def shadow_stack() -> Stack:
    """A stack in shadow mode."""
    return _other_stack("shadow", ShadowMode="true")


# The limits' stack: MaxUnhealthy binds before MaxConcurrent (25% of a group of 4 or 5 is one
# instance), more than 60% asking is a storm, a request may wait for 4 runs before it, an
# instance's third automatic run of a day quarantines it, and the groups dry and dry-too are in
# shadow mode.
LIMITS = {"MaxConcurrent": "2", "MaxUnhealthy": "25%", "StormThreshold": "60", "MaxPolls": "120",
          "MaxRunsPerInstancePerDay": "2", "ShadowGroups": "dry,dry-too"}


# The auto-recovery stack: a system status check's run waits up to 20 s (20 polls) for EC2's
# automatic recovery (the template's default is 300 s; 0 on the other stacks and in fleet_sim).
AUTO_RECOVERY_WAIT_S = 20


def health_stack() -> Stack:
    """A stack whose system status runs wait for EC2's automatic recovery (AUTO_RECOVERY_WAIT_S)."""
    return _other_stack("health", AutoRecoveryWaitSeconds=str(AUTO_RECOVERY_WAIT_S))


def limits_stack() -> Stack:
    """A stack with the blast-radius limits and the storm breaker set tight (LIMITS)."""
    return _other_stack("limits", **LIMITS)
