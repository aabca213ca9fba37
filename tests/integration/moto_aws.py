"""moto_aws.py: moto_server with IAM auth made closer to AWS for what heald touches.

Run as `python3 tests/integration/moto_aws.py -p PORT` (same arguments as moto_server),
with INITIAL_NO_AUTH_ACTION_COUNT set so IAM authentication is on.

Two gaps in moto 5.2 would make the test bed lie about AWS, so they are patched here
rather than worked around in heald or in the tests (plus one speed fix):

* moto authorises every non-S3 action against resource "*", so a least-privilege policy
  naming the event bus ARN (packaging/iam-policy.json) is always denied. Here
  events:PutEvents is authorised against the ARN of the bus the entries name, as AWS does.
* moto answers authentication and authorisation failures with the XML Query-protocol error
  (`<Code>AccessDenied</Code>`, HTTP 403) even for AWS JSON 1.1 services. EventBridge
  answers with a JSON body: {"__type": "AccessDeniedException" | "InvalidSignatureException"
  | "UnrecognizedClientException", "message": ...}, HTTP 400. Set
  HEALD_TB_AUTH_ERRORS=moto to keep moto's XML errors.
* Speed: moto renders each event for a rule target by compiling 8 JSONPath expressions with
  jsonpath_ng, which rebuilds its parser tables every time (about 90 ms per delivered event;
  a 10-entry PutEvents took ~1 s and tripped heald's request timeout). The compiled
  expressions are cached.

For the command channel (SQS and Step Functions):

* moto authorises SQS actions on a queue that does not exist against "*", so a policy scoped
  to the instance's queue gets AccessDenied where AWS answers QueueDoesNotExist. Here the
  resource is the ARN the queue URL names, existing or not.
* State machines really run (moto's execute_state_machine setting), so a Task state with
  arn:aws:states:::sqs:sendMessage.waitForTaskToken sends its message and waits for
  SendTaskSuccess/SendTaskFailure. moto's interpreter calls the services through this server
  (MOTO_PORT) signed with the fixed access key "ak"; those calls stand for the state machine's
  execution role, which moto does not model, so they skip authentication. Four moto bugs on
  that path are fixed (_patch_stepfunctions), and an aws-sdk task's PascalCase Parameters are
  mapped onto the API's own names as AWS does (_patch_sdk_parameters).
"""
import copy
import json
import os
import sys
import time


def _bus_arn(handler) -> str:
    """The ARN of the event bus a PutEvents call writes to (the first entry's bus)."""
    try:
        entries = json.loads(handler.body or "{}").get("Entries") or [{}]
        bus = entries[0].get("EventBusName") or "default"
    except (ValueError, AttributeError, IndexError):
        bus = "default"
    if bus.startswith("arn:"):
        return bus
    return f"arn:aws:events:{handler.region}:{handler.current_account}:event-bus/{bus}"


def _sqs_queue_arn(handler) -> str:
    """The ARN of the queue a request names (by URL or name), whether it exists or not."""
    name = handler._get_queue_name()
    return f"arn:aws:sqs:{handler.region}:{handler.current_account}:{name}"


def _patch_commands() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.config import default_user_config
    from moto.sqs.exceptions import QueueDoesNotExist
    from moto.sqs.responses import SQSResponse

    def sqs_resource(self):
        try:
            return self.sqs_backend.get_queue(self._get_queue_name()).queue_arn
        except QueueDoesNotExist:
            return _sqs_queue_arn(self)

    SQSResponse._determine_resource = sqs_resource
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True

    orig_auth = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self, iam_request_cls, resource="*"):
        if "Credential=ak/" in (self.headers.get("Authorization") or ""):
            return None  # moto's state machine interpreter, acting as the execution role
        return orig_auth(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate
    _patch_stepfunctions()


def _patch_stepfunctions() -> None:
    """Four moto 5.2 bugs that break the task-token round trip."""
    import copy

    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    from moto.core.responses import EmptyResult
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import StepFunctionResponse

    # StartExecution deep-copies the state machine, and with it its backend (which holds
    # the running executions and their locks): every execution after the first one failed
    # with "cannot pickle '_thread.RLock' object". The copy shares those two instead.
    shared = ("backend", "executions")

    def state_machine_deepcopy(self, memo):
        clone = StateMachine.__new__(StateMachine)
        memo[id(self)] = clone
        for k, v in vars(self).items():
            setattr(clone, k, v if k in shared else copy.deepcopy(v, memo))
        return clone

    StateMachine.__deepcopy__ = state_machine_deepcopy

    # SendTaskFailure dropped its cause.
    def send_task_failure(self):
        self.stepfunction_backend.send_task_failure(self._get_param("taskToken"),
                                                    error=self._get_param("error"),
                                                    cause=self._get_param("cause"))
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure

    # SendTaskHeartbeat to a task without HeartbeatSeconds answered InvalidToken, as if its run
    # had ended; AWS accepts it (there is only no heartbeat clock to reset).
    def notify_heartbeat(self):
        if self._heartbeat_endpoint:
            self._heartbeat_endpoint.notify()
        return True

    CallbackEndpoint.notify_heartbeat = notify_heartbeat

    # StopExecution left a run waiting for its task token RUNNING until the task's own timeout
    # (its wait is not woken by the stop); on AWS it is ABORTED at once, and its token is spent.
    # Woken here, the wait ends as a task timeout: the run is still reported ABORTED (its
    # history, which no test reads for a stopped run, ends in ExecutionFailed).
    orig_set_stop = Environment.set_stop

    def set_stop(self, stop_date, cause, error):
        orig_set_stop(self, stop_date, cause, error)
        self.heald_tb_stopped = True
        for endpoint in list(self.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()

    Environment.set_stop = set_stop
    orig_reflect = BaseExecutionWorkerCommunication._reflect_execution_status

    def reflect_execution_status(self):
        orig_reflect(self)
        if getattr(self.execution.exec_worker.env, "heald_tb_stopped", False):
            self.execution.exec_status = ExecutionStatus.ABORTED

    BaseExecutionWorkerCommunication._reflect_execution_status = reflect_execution_status

    _patch_sdk_parameters()


def _patch_sdk_parameters() -> None:
    """moto 5.2.1's aws-sdk integration hands a task's Parameters to boto3 as the state machine
    wrote them, in PascalCase, as Step Functions wants them ("Parameters in Step Functions are
    expressed in PascalCase, even if the native service API is in camelCase", Step Functions
    Developer Guide, AWS SDK service integrations): an API in camelCase failed, e.g.
    sfn:describeExecution's ExecutionArn (States.Runtime: 'ExecutionArn'). Here they are mapped
    onto the API's own names, as AWS does, with moto's own _to_boto_request (which its
    _normalise_parameters no longer calls)."""
    import functools

    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    @functools.lru_cache(maxsize=None)
    def service_model(name: str):
        return botocore.session.get_session().get_service_model(name)

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        action = service_action_name or self.resource.api_action
        operation = service_model(self._get_boto_service_name(boto_service_name)).operation_model(
            action[0].upper() + action[1:])
        self._to_boto_request(parameters, operation.input_shape)

    StateTaskServiceAwsSdk._normalise_parameters = normalise_parameters


MACHINE_HALT_SECONDS = 30
SYSTEM_STATUS_TAG = "heald-test:system-status"


def _patch_fleet() -> None:
    """What the fleet stack (packaging/cloudformation/heald-fleet.yaml) needs of moto 5.2.1
    beyond the above; each patch names the moto behaviour it replaces.

    * CloudFormation ignores a state machine's Definition + DefinitionSubstitutions (it
      reads DefinitionString only), drops the nulls of a definition, and creates the state
      machine in a backend the Step Functions API does not see when execute_state_machine
      is on: here it is created as CloudFormation would, in the backend that runs executions.
    * CloudFormation skips AWS::Config::ConfigRule (no model), so a !Ref to one is null:
      here the rule gets the name CloudFormation would give it (nothing evaluates it: the
      tests put Config's compliance events on the bus themselves).
    * a role's inline policies from CloudFormation cannot be read by moto's IAM
      authorisation: they are kept as PutRolePolicy keeps them.
    * EventBridge rules with Step Functions or SNS targets fail (500 NotImplemented): here
      they start an execution (always named) or publish, as EventBridge would.
    * moto emits no EC2 state-change events and changes an instance's state at once: here
      stop and start pass through stopping/pending for HEALD_TB_EC2_TRANSITION seconds
      (default 0.5; the tag heald-test:transition-seconds overrides it per instance, to
      test a wait loop's timeout), and every state an instance enters is put on the
      default bus as the "EC2 Instance State-change Notification" AWS sends. As on EC2, a
      stopping instance is stopped only once its machine has halted: while the test bed's
      tag heald-test:machine=up is on it (its heald still runs), it stays stopping (at most
      MACHINE_HALT_SECONDS, then it is stopped anyway, as EC2 forces a stop).
    * moto's system status check is always ok: here a running instance's is the value of its
      tag heald-test:system-status when it has one, and a stop removes the tag (a stop and
      start moves the instance to another host).
    """
    import threading
    import uuid

    from moto.cloudformation import parsing as cfn_parsing
    from moto.core.common_models import CloudFormationModel
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.events.models import Rule, events_backends
    from moto.iam.models import Role
    from moto.events.utils import EventTemplateParser
    from moto.sns.models import sns_backends
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend
    from moto.utilities.arns import parse_arn

    def state_machine_from_cfn(cls, resource_name, cloudformation_json, account_id, region_name,
                               **kwargs):
        props = cloudformation_json["Properties"]
        definition = props.get("DefinitionString") or json.dumps(props.get("Definition", {}))
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", json.dumps(str(value))[1:-1])
        return get_backend(account_id, region_name).create_state_machine(
            name=props.get("StateMachineName", resource_name), definition=definition,
            roleArn=props.get("RoleArn", ""))

    StateMachine.create_from_cloudformation_json = classmethod(state_machine_from_cfn)

    class ConfigRuleName(CloudFormationModel):
        """Only the name of an AWS::Config::ConfigRule (a subclass is all moto's
        CloudFormation needs to know the type)."""
        __module__ = "moto.config.models"  # moto's model registry names the service by module

        def __init__(self, name: str):
            self.name = name

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Config::ConfigRule"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "ConfigRuleName"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id,
                                            region_name, **kwargs):
            return cls(cloudformation_json["Properties"].get("ConfigRuleName", resource_name))

        @property
        def physical_resource_id(self) -> str:
            return self.name

    # moto's CloudFormation drops every null from a resource's properties while it resolves
    # intrinsic functions, and "ResultPath": null means something in a definition: the
    # definition is kept as written (it holds no intrinsic function, only ${substitutions}).
    orig_parse_resource = cfn_parsing.parse_resource

    def parse_resource(resource_json, resources_map):
        definition = (resource_json.get("Properties") or {}).get("Definition")
        parsed = orig_parse_resource(resource_json, resources_map)
        if parsed and definition is not None and parsed[2] == "AWS::StepFunctions::StateMachine":
            parsed[1]["Properties"]["Definition"] = copy.deepcopy(definition)
        return parsed

    cfn_parsing.parse_resource = parse_resource

    # A role's inline policies from CloudFormation are kept as objects, which moto's IAM
    # authorisation cannot read (KeyError 'policy_document' on every request the role
    # signs): kept as JSON text, as PutRolePolicy keeps them.
    orig_put_policy = Role.put_policy

    def put_policy(self, policy_name, policy_json):
        if not isinstance(policy_json, str):
            policy_json = json.dumps(policy_json)
        return orig_put_policy(self, policy_name, policy_json)

    Role.put_policy = put_policy

    orig_send = Rule.send_to_targets

    def as_delivered(rule, target, event) -> dict:
        # The event's time as EventBridge writes it (moto keeps seconds since the epoch), for an
        # input transformer's $.time too.
        event = dict(event)
        if isinstance(event.get("time"), (int, float)):
            event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["time"]))
        transformer = target.get("InputTransformer")
        if transformer:
            return EventTemplateParser.parse(input_template=transformer.get("InputTemplate"),
                                             input_paths_map=transformer.get("InputPathsMap", {}),
                                             event=event)
        return {k: v for k, v in event.items() if k != "ingestion-time"}

    def send_to_targets(self, original_event, transform_input=True):
        if not self.event_pattern.matches_event(original_event):
            return
        rest = []
        for target in self.targets:
            arn = parse_arn(target["Arn"])
            if arn.service == "states":
                get_backend(arn.account, arn.region).start_execution(
                    target["Arn"], name=str(uuid.uuid4()),
                    execution_input=json.dumps(as_delivered(self, target, original_event)))
            elif arn.service == "sns":
                sns_backends[arn.account][arn.region].publish(
                    message=json.dumps(as_delivered(self, target, original_event)), arn=target["Arn"])
            else:
                rest.append(target)
        if rest:
            others = copy.copy(self)
            others.targets = rest
            orig_send(others, original_event, transform_input)

    Rule.send_to_targets = send_to_targets

    def announce(instance) -> None:
        account, region = instance.ec2_backend.account_id, instance.ec2_backend.region_name
        arn = f"arn:aws:ec2:{region}:{account}:instance/{instance.id}"
        events_backends[account][region].put_events([{
            "Source": "aws.ec2", "DetailType": "EC2 Instance State-change Notification",
            "Resources": [arn],
            "Detail": json.dumps({"instance-id": instance.id, "state": instance._state.name})}])

    def transition_seconds(instance) -> float:
        for tag in instance.get_tags():
            if tag["key"] == "heald-test:transition-seconds":
                return float(tag["value"])
        return float(os.environ.get("HEALD_TB_EC2_TRANSITION", "0.5"))

    def machine_halting(instance) -> bool:
        return any(tag["key"] == "heald-test:machine" and tag["value"] == "up" for tag in instance.get_tags())

    def passing_through(orig, name: str, code: int, final: str):
        def change(self):
            previous = orig(self)  # moto's own bookkeeping, then the state AWS shows meanwhile
            self._state.name, self._state.code = name, code
            announce(self)
            give_up = time.monotonic() + MACHINE_HALT_SECONDS

            def arrive():
                if self._state.name != name:
                    return
                if final == "stopped" and machine_halting(self) and time.monotonic() < give_up:
                    threading.Timer(0.1, arrive).start()
                    return
                self._state.name = final
                self._state.code = 80 if final == "stopped" else 16
                announce(self)
            threading.Timer(transition_seconds(self), arrive).start()
            return previous
        return change

    Instance.stop = passing_through(Instance.stop, "stopping", 64, "stopped")
    Instance.start = passing_through(Instance.start, "pending", 0, "running")
    orig_terminate = Instance.terminate

    def terminate(self):
        previous = orig_terminate(self)
        announce(self)
        return previous

    Instance.terminate = terminate
    orig_run = InstanceBackend.run_instances

    def run_instances(self, *args, **kwargs):
        reservation = orig_run(self, *args, **kwargs)
        for instance in reservation.instances:
            announce(instance)
        return reservation

    InstanceBackend.run_instances = run_instances

    # moto's system status check is always ok: here it is what the tag heald-test:system-status
    # says while the instance runs (the bed sets impaired with a system status alarm; a test
    # playing EC2's automatic recovery removes it). A stop moves the instance to another host,
    # so the stop takes the tag with it.
    orig_system_status = Instance.system_status.fget

    def system_status(self) -> dict:
        said = [t["value"] for t in self.get_tags() if t["key"] == SYSTEM_STATUS_TAG]
        if said and self.state_code == 16:
            return {"Status": said[0], "Details": [{"Name": "reachability", "Status": "failed"}]}
        return orig_system_status(self)

    Instance.system_status = property(system_status)
    stop_on_this_host = Instance.stop

    def stop_moves_host(self):
        self.ec2_backend.delete_tags([self.id], {SYSTEM_STATUS_TAG: None})
        return stop_on_this_host(self)

    Instance.stop = stop_moves_host


def _count_requests() -> None:
    """GET /heald-tb/requests: the AWS requests this server answered, per service and caller
    (state machines: moto's interpreter; instances: temporary role credentials, i.e. heald;
    test bed: the rest), for the tests to print. DynamoDB requests are served one at a time."""
    import threading
    from collections import Counter

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    counts: Counter = Counter()
    # DynamoDB applies each update atomically; moto's threaded server reads, changes and
    # writes an item without a lock, so two concurrent ADDs to one set could lose one (the
    # fleet simulation's lifecycle runs did). Its DynamoDB requests are served one at a time.
    dynamodb_lock = threading.Lock()

    def call(self, environ, start_response):
        if environ.get("PATH_INFO") == "/heald-tb/requests":
            body = json.dumps([[service, caller, n] for (service, caller), n in counts.items()]).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        app = self.get_application(environ)
        auth = environ.get("HTTP_AUTHORIZATION") or ""
        caller = ("state machines" if "Credential=ak/" in auth else "instances" if "Credential=ASIA" in auth
                  else "test bed")
        service = getattr(app, "service", "?")
        counts[(service, caller)] += 1
        if service == "dynamodb":
            with dynamodb_lock:
                return app(environ, start_response)
        return app(environ, start_response)

    DomainDispatcherApplication.__call__ = call


def _server_port(argv: list) -> str | None:
    """The -p/--port argument, for the state machine interpreter's calls back to this server."""
    for i, a in enumerate(argv):
        if a in ("-p", "--port") and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--port="):
            return a.split("=", 1)[1]
    return None


def _patch() -> None:
    import functools

    import jsonpath_ng.ext
    from moto.core.exceptions import JsonRESTError
    from moto.events.responses import EventsHandler
    from moto.iam import access_control

    def determine_resource(self):
        if self._get_action() == "PutEvents":
            return _bus_arn(self)
        return "*"

    EventsHandler._determine_resource = determine_resource
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)

    if os.environ.get("HEALD_TB_AUTH_ERRORS", "aws") == "moto":
        return

    class JsonAuthError(JsonRESTError):
        code = 400

    def is_json_protocol(req) -> bool:
        return bool(req._headers.get("X-Amz-Target"))

    cls = access_control.IAMRequest
    orig_sig, orig_key, orig_denied = (cls._raise_signature_does_not_match,
                                       cls._raise_invalid_access_key,
                                       cls._raise_access_denied)

    def raise_sig(self):
        if not is_json_protocol(self):
            return orig_sig(self)
        raise JsonAuthError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. "
            "Consult the service documentation for details.")

    def raise_key(self, reason):
        if not is_json_protocol(self):
            return orig_key(self, reason)
        raise JsonAuthError("UnrecognizedClientException",
                            "The security token included in the request is invalid.")

    def raise_denied(self):
        if not is_json_protocol(self):
            return orig_denied(self)
        raise JsonAuthError(
            "AccessDeniedException",
            f"User: {self._access_key.arn} is not authorized to perform: {self._action}")

    cls._raise_signature_does_not_match = raise_sig
    cls._raise_invalid_access_key = raise_key
    cls._raise_access_denied = raise_denied


def main() -> None:
    port = _server_port(sys.argv[1:])
    if port:
        os.environ["MOTO_PORT"] = port
    _patch()
    _patch_commands()
    _patch_fleet()
    _count_requests()
    from moto.server import main as moto_main
    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
