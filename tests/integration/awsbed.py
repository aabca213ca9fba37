"""awsbed.py: the AWS side of the test bed: moto with IAM auth, set up as a fleet would be.

MotoServer runs moto_aws.py (moto_server with IAM authentication on) on a free port.
Fleet bootstraps it: an admin IAM user (the only use of the unauthenticated requests),
the heald-instance role whose inline policy is packaging/iam-policy.json, STS AssumeRole
for the instance's credentials, and "taps": an EventBridge rule per event source with an
SQS queue target that tests read like a real subscriber.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from string import Template

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
POLICY_FILE = os.path.join(REPO, "packaging", "iam-policy.json")
ACCOUNT_ID = "123456789012"
ADMIN_USER = "heald-admin"
INSTANCE_ID = "i-0123456789abcdef0"  # imds_server.INSTANCE_ID: the bed's one instance


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class MotoServer:
    """moto_aws.py as a child process; its log goes to log_path."""

    def __init__(self, log_path: str, port: int = 0, no_auth_count: int = 3):
        self.port = port or free_port()
        self.log_path = log_path
        self.no_auth_count = no_auth_count
        self.proc = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "MotoServer":
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.no_auth_count)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "moto_aws.py"), "-H", "127.0.0.1",
             "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited with {self.proc.returncode}; see {self.log_path}")
            try:
                # /moto-api/ is moto's own dashboard: it does not use up an unauthenticated request.
                urllib.request.urlopen(self.endpoint + "/moto-api/data.json", timeout=1).read()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"moto did not answer within {timeout}s")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


def render_policy(region: str, account_id: str, event_bus: str, path: str = POLICY_FILE,
                  instance_id: str = INSTANCE_ID) -> str:
    """packaging/iam-policy.json with its ${Region}/${AccountId}/${EventBus}/${InstanceId}
    filled in."""
    with open(path) as f:
        return Template(f.read()).substitute(Region=region, AccountId=account_id,
                                             EventBus=event_bus, InstanceId=instance_id)


def command_queue_name(instance_id: str = INSTANCE_ID) -> str:
    """The instance's command queue: the naming scheme of iam-policy.json and [sqs] queue_url."""
    return f"heald-{instance_id}"


def new_command(action: str, instance_id: str = INSTANCE_ID, command_id: str | None = None,
                ttl: float | None = 300, **fields) -> dict:
    """A command object as the fleet sends it (command.h); fields add or override keys
    (units, checks, reason, task_token, expires_at, ...)."""
    now = time.time()
    cmd = {"command_id": command_id or f"cmd-{uuid.uuid4()}", "action": action,
           "instance_id": instance_id, "issued_at": iso8601(now)}
    if ttl is not None:
        cmd["expires_at"] = iso8601(now + ttl)
    cmd.update(fields)
    return cmd


def iso8601(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class CommandQueue:
    """An instance's command queue (and its dead-letter queue), seen from the fleet's side."""

    def __init__(self, sqs, url: str, dlq_url: str | None):
        self.sqs = sqs
        self.url = url
        self.dlq_url = dlq_url

    def send(self, body: dict | str, **kw) -> str:
        """Send a command (a dict is sent as JSON); returns the MessageId."""
        if not isinstance(body, str):
            body = json.dumps(body, separators=(",", ":"))
        return self.sqs.send_message(QueueUrl=self.url, MessageBody=body, **kw)["MessageId"]

    def attributes(self, url: str | None = None) -> dict:
        return self.sqs.get_queue_attributes(QueueUrl=url or self.url,
                                             AttributeNames=["All"])["Attributes"]

    def depth(self, url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages."""
        a = self.attributes(url)
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

    def dead_letters(self) -> list[dict]:
        """Messages in the DLQ (received with visibility 0: they stay there)."""
        r = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10,
                                     VisibilityTimeout=0, WaitTimeSeconds=0,
                                     MessageSystemAttributeNames=["ApproximateReceiveCount"])
        return r.get("Messages", [])


class Tap:
    """An SQS queue subscribed (through an EventBridge rule) to one event source."""

    def __init__(self, sqs, queue_url: str, source: str):
        self.sqs = sqs
        self.queue_url = queue_url
        self.source = source

    def receive(self, max_messages: int = 10, wait: int = 1) -> list:
        """Envelopes received (and deleted) in one long poll; may be empty."""
        r = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=max_messages,
                                     WaitTimeSeconds=wait)
        out = []
        for m in r.get("Messages", []):
            out.append(json.loads(m["Body"]))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return out


class Fleet:
    def __init__(self, endpoint: str, region: str = "us-east-1", role: str = "heald-instance",
                 account_id: str = ACCOUNT_ID, instance_id: str = INSTANCE_ID):
        self.endpoint = endpoint
        self.region = region
        self.role = role
        self.account_id = account_id
        self.instance_id = instance_id
        self.admin_key = None
        self.event_bus = "default"
        self._taps = 0

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{self.role}"

    def client(self, service: str, key: dict | None = None):
        key = key or self.admin_key
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=key["AccessKeyId"],
                            aws_secret_access_key=key["SecretAccessKey"],
                            aws_session_token=key.get("SessionToken"),
                            config=Config(retries={"max_attempts": 2}))

    def bootstrap(self, event_bus: str = "default") -> None:
        """Spend moto's unauthenticated requests on an admin user; set up the role."""
        anon = boto3.client("iam", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        anon.create_user(UserName=ADMIN_USER)
        anon.put_user_policy(UserName=ADMIN_USER, PolicyName="allow-all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = anon.create_access_key(UserName=ADMIN_USER)["AccessKey"]
        self.admin_key = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
        self.event_bus = event_bus
        iam = self.client("iam")
        # moto matches the trust policy's principal against the caller's exact ARN.
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": f"arn:aws:iam::{self.account_id}:user/{ADMIN_USER}",
                          "Service": "ec2.amazonaws.com"}}]}
        iam.create_role(RoleName=self.role, AssumeRolePolicyDocument=json.dumps(trust))
        self.set_role_policy()
        if event_bus != "default":
            self.client("events").create_event_bus(Name=event_bus)

    def set_role_policy(self, document: str | None = None) -> None:
        """Replace the role's inline policy (default: packaging/iam-policy.json)."""
        if document is None:
            document = render_policy(self.region, self.account_id, self.event_bus,
                                     instance_id=self.instance_id)
        self.client("iam").put_role_policy(RoleName=self.role, PolicyName="heald",
                                           PolicyDocument=document)

    def assume_role(self, duration: int = 900) -> dict:
        """Fresh role credentials, as the EC2 service would fetch for the instance profile."""
        c = self.client("sts").assume_role(RoleArn=self.role_arn, RoleSessionName="i-0123456789abcdef0",
                                           DurationSeconds=duration)["Credentials"]
        return {k: c[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")}

    def new_tap(self, source: str, event_bus: str | None = None) -> Tap:
        bus = event_bus or self.event_bus
        self._taps += 1
        name = f"tap-{self._taps}-{source.replace('.', '-')}"[:64]
        sqs, events = self.client("sqs"), self.client("events")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule_arn = events.put_rule(Name=name, EventBusName=bus,
                                   EventPattern=json.dumps({"source": [source]}))["RuleArn"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage", "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]})})
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "tap", "Arn": arn}])
        return Tap(sqs, url, source)

    def write_tap_file(self, path: str, tap: Tap) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"endpoint": self.endpoint, "region": self.region,
                       "queue_url": tap.queue_url, "admin": self.admin_key}, f)

    # ---- the command channel ----------------------------------------------------------
    def command_queue(self, max_receive_count: int | None = None, visibility_timeout: int = 30,
                      instance_id: str | None = None) -> CommandQueue:
        """(Re)create the instance's command queue, empty, with a dead-letter queue when
        max_receive_count is given (its RedrivePolicy), as the fleet would."""
        sqs = self.client("sqs")
        name = command_queue_name(instance_id or self.instance_id)
        dlq_url = None
        for n in (name, name + "-dlq"):
            try:
                sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=n)["QueueUrl"])
            except sqs.exceptions.QueueDoesNotExist:
                pass
        attrs = {"VisibilityTimeout": str(visibility_timeout)}
        if max_receive_count is not None:
            dlq_url = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
            attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn,
                                                 "maxReceiveCount": str(max_receive_count)})
        url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        return CommandQueue(sqs, url, dlq_url)

    def delete_command_queue(self, instance_id: str | None = None) -> None:
        sqs = self.client("sqs")
        try:
            url = sqs.get_queue_url(QueueName=command_queue_name(instance_id or self.instance_id))
            sqs.delete_queue(QueueUrl=url["QueueUrl"])
        except sqs.exceptions.QueueDoesNotExist:
            pass

    def command_rule(self, queue: CommandQueue, source: str, event_bus: str | None = None) -> str:
        """An EventBridge rule that routes the fleet's command events (this source, detail-type
        "Heald Command") to the instance's queue, as a fleet could instead of SendMessage."""
        bus = event_bus or self.event_bus
        sqs, events = self.client("sqs"), self.client("events")
        arn = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        name = f"cmd-{source.replace('.', '-')}"[:64]
        rule_arn = events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(
            {"source": [source], "detail-type": ["Heald Command"]}))["RuleArn"]
        sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage", "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]})})
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "instance-queue", "Arn": arn}])
        return name

    def command_state_machine(self, name: str, queue: CommandQueue, command: dict) -> str:
        """A state machine that sends command (plus the task token) to the queue with
        sqs:sendMessage.waitForTaskToken and ends with heald's answer; returns its ARN."""
        body = dict(command)
        body["task_token.$"] = "$$.Task.Token"
        definition = {"StartAt": "Command", "States": {"Command": {
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": queue.url, "MessageBody": body},
            "TimeoutSeconds": 60, "End": True}}}
        sfn = self.client("stepfunctions")
        return sfn.create_state_machine(
            name=name, definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{self.account_id}:role/heald-fleet-commands")["stateMachineArn"]


def _fleet_from_tap_file(path: str) -> Fleet:
    """The fleet's admin side, from the file imds_server.py --tap-file writes."""
    with open(path) as f:
        tap = json.load(f)
    fleet = Fleet(tap["endpoint"], region=tap["region"])
    fleet.admin_key = tap["admin"]
    return fleet


def main() -> None:
    """For demo.sh: create the instance's command queue, or send it a command."""
    import argparse

    ap = argparse.ArgumentParser(description="the fleet's side of heald's command channel")
    sub = ap.add_subparsers(dest="what", required=True)
    q = sub.add_parser("command-queue", help="(re)create the instance's queue and its DLQ")
    q.add_argument("tap_file")
    s = sub.add_parser("send-command", help="send a command to the instance's queue")
    s.add_argument("tap_file")
    s.add_argument("action")
    s.add_argument("--checks", nargs="*", help="run-checks: the checks to run (default all)")
    s.add_argument("--reason", default="sent by demo.sh")
    args = ap.parse_args()

    fleet = _fleet_from_tap_file(args.tap_file)
    if args.what == "command-queue":
        queue = fleet.command_queue(max_receive_count=3, visibility_timeout=60)
        print(f"demo: command queue {queue.url} (dead letters after 3 receives: {queue.dlq_url})")
        return
    sqs = fleet.client("sqs")
    url = sqs.get_queue_url(QueueName=command_queue_name(fleet.instance_id))["QueueUrl"]
    fields = {"reason": args.reason}
    if args.checks:
        fields["checks"] = args.checks
    cmd = new_command(args.action, **fields)
    CommandQueue(sqs, url, None).send(cmd)
    print(f"demo: sent {json.dumps(cmd, separators=(',', ':'))}", flush=True)


if __name__ == "__main__":
    main()
