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
"""
import json
import os
import sys


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
    _patch()
    from moto.server import main as moto_main
    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
