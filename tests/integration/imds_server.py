"""imds_server.py: an IMDSv2 stand-in (token flow only) serving identity and role credentials.

In-process: ImdsServer(mint=callable).start(); control it with rotate(), set_reported_expiry(),
set_fault(), set_secret_override(), and read counts / imdsv1_attempts.
Standalone: python3 tests/integration/imds_server.py --port P --moto-endpoint URL
(bootstraps the fleet set-up in moto, see awsbed.py) exposes the same controls over HTTP:
  POST /_control/rotate
  POST /_control/expiry?seconds=N       (empty: report the STS expiry)
  POST /_control/fault?mode=none|500|hang|refuse
  POST /_control/secret?value=S          (empty: the real secret)
  GET  /_control/counts                  -> {"paths": {...}, "imdsv1_attempts": N}
"""
import argparse
import datetime as dt
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from httpbase import DroppableHTTPServer

ACCOUNT_ID = "123456789012"  # moto's default account
INSTANCE_ID = "i-0123456789abcdef0"
ROLE_PATH = "/latest/meta-data/iam/security-credentials/"
IDENTITY_PATH = "/latest/dynamic/instance-identity/document"
MAX_TOKEN_TTL = 21600


def iso_z(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "EC2ws"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - keep stderr quiet; counts are the record
        pass

    @property
    def imds(self) -> "ImdsServer":
        return self.server.imds  # type: ignore[attr-defined]

    def _send(self, code: int, body: str = "", ctype: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fault(self) -> bool:
        """Apply the configured failure mode; True when the request was answered by it."""
        mode = self.imds.fault
        if mode == "500":
            self._send(500, "Internal Server Error")
            return True
        if mode == "hang":
            self.imds.unhang.wait(timeout=120)
            self.close_connection = True
            return True
        return False

    def do_PUT(self):  # noqa: N802 - http.server API
        path = urlparse(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.imds.count(path)
        if path.startswith("/_control/"):
            return self._control(path)
        if self._fault():
            return
        if path != "/latest/api/token":
            return self._send(405, "Method Not Allowed")
        if self.headers.get("X-Forwarded-For"):
            return self._send(403, "Forbidden")
        try:
            ttl = int(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
        except ValueError:
            return self._send(400, "Bad Request")
        if not 1 <= ttl <= MAX_TOKEN_TTL:
            return self._send(400, "Bad Request")
        token = self.imds.new_token(ttl)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))
        self.send_header("Content-Length", str(len(token)))
        self.end_headers()
        self.wfile.write(token.encode())

    do_POST = do_PUT  # only /_control/ takes POST; metadata paths answer 405

    def do_GET(self):  # noqa: N802 - http.server API
        path = urlparse(self.path).path
        self.imds.count(path)
        if path.startswith("/_control/"):
            return self._control(path)
        if self._fault():
            return
        token = self.headers.get("X-aws-ec2-metadata-token")
        if token is None:
            self.imds.note_imdsv1()
            return self._send(401, "Unauthorized")
        if not self.imds.token_valid(token):
            return self._send(401, "Unauthorized")
        body = self.imds.get(path)
        if body is None:
            return self._send(404, "Not Found")
        self._send(200, body)

    def _control(self, path: str):
        q = {k: v[-1] for k, v in parse_qs(urlparse(self.path).query).items()}
        imds = self.imds
        if path == "/_control/rotate":
            imds.rotate()
        elif path == "/_control/expiry":
            imds.set_reported_expiry(float(q["seconds"]) if q.get("seconds") else None)
        elif path == "/_control/fault":
            imds.set_fault(None if q.get("mode", "none") == "none" else q["mode"])
        elif path == "/_control/secret":
            imds.set_secret_override(q.get("value") or None)
        elif path == "/_control/counts":
            return self._send(200, json.dumps({"paths": imds.counts_snapshot(),
                                               "imdsv1_attempts": imds.imdsv1_attempts}),
                              "application/json")
        else:
            return self._send(404, "Not Found")
        self._send(200, "ok")


class ImdsServer:
    """IMDSv2 on 127.0.0.1:port. mint() returns STS-style credentials:
    {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration": datetime}.
    on_credentials(access_key_id, reported_expiry_datetime) is called whenever a credential
    set is served, so a proxy can enforce the expiry IMDS reported."""

    def __init__(self, mint, port: int = 0, role: str = "heald-instance",
                 region: str = "us-east-1", account_id: str = ACCOUNT_ID,
                 instance_id: str = INSTANCE_ID, on_credentials=None):
        self.mint = mint
        self.port = port
        self.role = role
        self.region = region
        self.account_id = account_id
        self.instance_id = instance_id
        self.on_credentials = on_credentials
        self.fault = None
        self.unhang = threading.Event()
        self.reported_expiry = None  # seconds after minting, or None for STS's value
        self.secret_override = None
        self.imdsv1_attempts = 0
        self.issued_secrets: list[str] = []  # every secret and token served, for leak checks
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._creds = None
        self._minted_at = None
        self._httpd = None
        self._thread = None

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> "ImdsServer":
        httpd = DroppableHTTPServer(("127.0.0.1", self.port), _Handler)
        httpd.imds = self  # type: ignore[attr-defined]
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="imds", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self.unhang.set()
        self._httpd.stop()
        self._thread.join(timeout=5)
        self._httpd = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- controls --------------------------------------------------------------------
    def rotate(self) -> dict:
        """Mint a new credential set (a new AssumeRole); returns it."""
        creds = self.mint()
        with self._lock:
            self._creds = creds
            self._minted_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            self.issued_secrets += [creds["SecretAccessKey"], creds["SessionToken"]]
        return creds

    def set_reported_expiry(self, seconds) -> None:
        """Report Expiration = minting time + seconds (None: what STS said); credentials
        are then rotated when half of that has passed."""
        self.reported_expiry = seconds

    def set_fault(self, mode) -> None:
        """None, "500" (every request), "hang" (never answer), "refuse" (listener closed)."""
        if mode not in (None, "500", "hang", "refuse"):
            raise ValueError(mode)
        old, self.fault = self.fault, mode
        if old == "hang":
            self.unhang.set()
        if mode == "hang":
            self.unhang.clear()
        if mode == "refuse" and self._httpd is not None:
            self.stop()
        elif mode != "refuse" and self._httpd is None:
            self.start()

    def set_secret_override(self, value) -> None:
        """Serve this SecretAccessKey instead of the real one (None: the real one)."""
        self.secret_override = value
        if value:
            self.issued_secrets.append(value)

    def counts_snapshot(self) -> dict:
        with self._lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    # ---- request side ----------------------------------------------------------------
    def count(self, path: str) -> None:
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1

    def note_imdsv1(self) -> None:
        with self._lock:
            self.imdsv1_attempts += 1

    def new_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(42)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl
        return token

    def token_valid(self, token: str) -> bool:
        with self._lock:
            exp = self._tokens.get(token)
        return exp is not None and exp > time.monotonic()

    def current_credentials(self) -> dict:
        """The credential document IMDS serves now (minting the first set lazily)."""
        now = dt.datetime.now(dt.timezone.utc)
        if self._creds is None:
            self.rotate()
        elif self.reported_expiry is not None and \
                (now - self._minted_at).total_seconds() >= self.reported_expiry / 2:
            # Like EC2, offer new credentials well before the old ones expire.
            self.rotate()
        elif self._creds["Expiration"] - now < dt.timedelta(minutes=5):
            self.rotate()
        with self._lock:
            c, minted = self._creds, self._minted_at
        if self.reported_expiry is not None:
            expiry = minted + dt.timedelta(seconds=self.reported_expiry)
        else:
            expiry = c["Expiration"]
        if self.on_credentials:
            self.on_credentials(c["AccessKeyId"], expiry)
        return {"Code": "Success", "LastUpdated": iso_z(minted), "Type": "AWS-HMAC",
                "AccessKeyId": c["AccessKeyId"],
                "SecretAccessKey": self.secret_override or c["SecretAccessKey"],
                "Token": c["SessionToken"], "Expiration": iso_z(expiry)}

    def get(self, path: str):
        if path == IDENTITY_PATH:
            return json.dumps({
                "accountId": self.account_id, "architecture": "x86_64",
                "availabilityZone": self.region + "a", "billingProducts": None,
                "devpayProductCodes": None, "marketplaceProductCodes": None,
                "imageId": "ami-0123456789abcdef0", "instanceId": self.instance_id,
                "instanceType": "t3.micro", "kernelId": None, "pendingTime":
                "2026-01-01T00:00:00Z", "privateIp": "10.0.0.10", "ramdiskId": None,
                "region": self.region, "version": "2017-09-30"}, indent=2)
        if path == ROLE_PATH:
            return self.role
        if path == ROLE_PATH + self.role:
            return json.dumps(self.current_credentials(), indent=2)
        if path == "/latest/meta-data/instance-id":
            return self.instance_id
        if path == "/latest/meta-data/placement/region":
            return self.region
        if path == "/latest/meta-data/iam/info":
            return json.dumps({"Code": "Success", "LastUpdated": iso_z(
                dt.datetime.now(dt.timezone.utc)), "InstanceProfileArn":
                f"arn:aws:iam::{self.account_id}:instance-profile/{self.role}",
                "InstanceProfileId": "AIPAEXAMPLEPROFILEID0"})
        return None


def main() -> None:
    import awsbed  # sibling module; only the standalone mode needs moto

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--role", default="heald-instance")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--moto-endpoint", required=True, help="moto_aws.py server URL")
    ap.add_argument("--source", default="heald", help="event source the tap rule matches")
    ap.add_argument("--event-bus", default="default")
    ap.add_argument("--expiry", type=float, default=None,
                    help="report credentials expiring this many seconds after minting")
    ap.add_argument("--tap-file", help="write the tap queue URL and admin credentials here (0600)")
    args = ap.parse_args()

    fleet = awsbed.Fleet(args.moto_endpoint, region=args.region, role=args.role)
    fleet.bootstrap(event_bus=args.event_bus)
    tap = fleet.new_tap(args.source, event_bus=args.event_bus)
    if args.tap_file:
        fleet.write_tap_file(args.tap_file, tap)
    imds = ImdsServer(fleet.assume_role, port=args.port, role=args.role, region=args.region)
    imds.set_reported_expiry(args.expiry)
    imds.start()
    print(f"imds: serving on {imds.endpoint} (role {args.role})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        imds.stop()


if __name__ == "__main__":
    main()
