"""fault_proxy.py: an HTTP/1.1 proxy in front of moto that injects AWS-shaped failures.

Requests are forwarded byte-for-byte with the Host header as the client sent it (the client
signed it and moto recomputes the signature from it). Every request is recorded (time,
X-Amz-Target, access key id from Credential=, status, entries) in `requests`; secrets and
signatures are never recorded.

Faults, consumed one per request in order (fail_next), or standing (down/up, clock offset,
credential expiry enforcement):
  "500" / "503"        HTTP 500/503 with an InternalFailure / ServiceUnavailable JSON body
  "throttle"           HTTP 400 {"__type":"ThrottlingException","message":"Rate exceeded"}
  "partial"            forwarded, then the 200 PutEvents response rewritten so the entries at
                       `entries` ({index: ErrorCode}) fail; FailedEntryCount adjusted
  "delay"              sleep `seconds`, then forward
  "drop"               close the connection without answering
  "html"               HTTP `status` (404 by default; 407, 408, ...) with an HTML page, as a
                       proxy, a captive portal or a misrouted endpoint answers: no AWS code
"""
import datetime as dt
import http.client
import json
import re
import socket
import threading
import time
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler

from httpbase import DroppableHTTPServer

CREDENTIAL_RE = re.compile(r"Credential=([A-Z0-9]+)/")
SIGNATURE_RE = re.compile(r"Signature=([0-9a-f]+)")
SKEW_LIMIT = 300  # AWS accepts X-Amz-Date within 5 minutes of its clock
ERROR_MESSAGES = {
    "ThrottlingException": "Rate exceeded",
    "InternalFailure": "Internal failure",
    "ValidationException": "Detail is malformed",
}


def _amz_date(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


class _Handler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes: with Nagle on, the body waits ~40 ms for
    # the client's delayed ACK, which every latency measured through the bed would carry.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the request log is proxy.requests
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def date_time_string(self, timestamp=None):
        """The Date header, from the proxy's (possibly skewed) clock, as AWS would send it."""
        return formatdate(time.time() + self.server.proxy.clock_offset, usegmt=True)

    def _answer(self, status: int, body: bytes, headers=()) -> None:
        self.send_response(status)  # adds Date (date_time_string) and Server
        for k, v in headers:
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "server",
                                 "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _json_error(self, status: int, type_: str, message: str) -> None:
        self._answer(status, json.dumps({"__type": type_, "message": message}).encode(),
                     [("Content-Type", "application/x-amz-json-1.1"),
                      ("x-amzn-RequestId", str(uuid.uuid4()))])

    def do_POST(self):  # noqa: N802 - http.server API
        self.server.proxy.handle(self)

    do_GET = do_PUT = do_DELETE = do_POST


class FaultProxy:
    def __init__(self, upstream_port: int, port: int = 0):
        self.upstream_port = upstream_port
        self.port = port
        self.requests: list[dict] = []
        self.clock_offset = 0.0
        self.key_expiry: dict[str, float] = {}  # access key id -> epoch when it expires
        self.signature_sink = None  # a set to collect signatures in (for leak checks), or None
        self._faults: list[dict] = []
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    # ---- lifecycle ------------------------------------------------------------------
    def start(self) -> "FaultProxy":
        httpd = DroppableHTTPServer(("127.0.0.1", self.port), _Handler)
        httpd.proxy = self  # type: ignore[attr-defined]
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="fault-proxy",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.stop()
            self._thread.join(timeout=5)
            self._httpd = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        """AWS unreachable: new connections are refused, open ones are closed."""
        self.stop()

    def up(self) -> None:
        if self._httpd is None:
            self.start()

    # ---- controls -------------------------------------------------------------------
    def fail_next(self, n: int, kind: str, **params) -> None:
        """The next n requests get fault `kind` (see the module docstring)."""
        if kind not in ("500", "503", "throttle", "partial", "delay", "drop", "html"):
            raise ValueError(kind)
        with self._lock:
            self._faults += [dict(kind=kind, **params) for _ in range(n)]

    def set_key_expiry(self, access_key_id: str, expiry: dt.datetime) -> None:
        """Answer ExpiredTokenException for requests signed with this key after expiry."""
        with self._lock:
            self.key_expiry[access_key_id] = expiry.timestamp()

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.clock_offset = 0.0
        self.up()

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def log(self, target_suffix: str = "PutEvents") -> list[dict]:
        with self._lock:
            return [r for r in self.requests if (r["target"] or "").endswith(target_suffix)]

    # ---- request path ---------------------------------------------------------------
    def _record(self, h, body: bytes) -> dict:
        auth = h.headers.get("Authorization", "")
        m = CREDENTIAL_RE.search(auth)
        sig = SIGNATURE_RE.search(auth)
        if sig and self.signature_sink is not None:
            self.signature_sink.add(sig.group(1))
        entries = None
        try:
            parsed = json.loads(body) if body else {}
            if isinstance(parsed, dict) and isinstance(parsed.get("Entries"), list):
                entries = [{"DetailType": e.get("DetailType"), "Detail": e.get("Detail"),
                            "Source": e.get("Source")} for e in parsed["Entries"]]
        except ValueError:
            pass
        rec = {"time": time.time(), "target": h.headers.get("X-Amz-Target"),
               "access_key_id": m.group(1) if m else None, "amz_date": h.headers.get("X-Amz-Date"),
               "status": None, "error": None, "fault": None,
               "entries": len(entries) if entries is not None else 0, "entry_list": entries or []}
        with self._lock:
            self.requests.append(rec)
        return rec

    def _standing_fault(self, h, rec) -> bool:
        """Clock skew and expired credentials; True when the request was answered."""
        now = time.time() + self.clock_offset
        amz = h.headers.get("X-Amz-Date")
        if amz:
            try:
                t = dt.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(
                    tzinfo=dt.timezone.utc).timestamp()
            except ValueError:
                t = None
            if t is not None and t < now - SKEW_LIMIT:
                rec.update(status=400, error="InvalidSignatureException", fault="clock-skew")
                h._json_error(400, "InvalidSignatureException",
                              f"Signature expired: {amz} is now earlier than "
                              f"{_amz_date(now - SKEW_LIMIT)} ({_amz_date(now)} - 5 min.)")
                return True
            if t is not None and t > now + SKEW_LIMIT:
                rec.update(status=400, error="InvalidSignatureException", fault="clock-skew")
                h._json_error(400, "InvalidSignatureException",
                              f"Signature not yet current: {amz} is still later than "
                              f"{_amz_date(now + SKEW_LIMIT)} ({_amz_date(now)} + 5 min.)")
                return True
        with self._lock:
            exp = self.key_expiry.get(rec["access_key_id"])
        if exp is not None and time.time() >= exp:
            rec.update(status=400, error="ExpiredTokenException", fault="expired")
            h._json_error(400, "ExpiredTokenException",
                          "The security token included in the request is expired")
            return True
        return False

    def handle(self, h) -> None:
        body = h._read_body()
        rec = self._record(h, body)
        if self._standing_fault(h, rec):
            return
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        kind = fault["kind"] if fault else None
        rec["fault"] = kind
        if kind == "drop":
            rec["status"] = "dropped"
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if kind in ("500", "503"):
            rec.update(status=int(kind), error="InternalFailure" if kind == "500"
                       else "ServiceUnavailable")
            return h._json_error(int(kind), rec["error"], "Injected failure")
        if kind == "html":
            status = fault.get("status", 404)
            rec.update(status=status, error="html")
            page = (f"<!DOCTYPE html><html><head><title>{status}</title></head>"
                    f"<body><h1>Not what you asked for</h1></body></html>").encode()
            return h._answer(status, page, [("Content-Type", "text/html")])
        if kind == "throttle":
            rec.update(status=400, error="ThrottlingException")
            return h._json_error(400, "ThrottlingException", "Rate exceeded")
        if kind == "delay":
            time.sleep(fault.get("seconds", 1))
        try:
            status, headers, resp = self._forward(h, body)
        except OSError as e:
            rec.update(status="upstream-error", error=type(e).__name__)
            h.close_connection = True
            return h._json_error(502, "InternalFailure", "proxy: upstream failed")
        if kind == "partial" and status == 200:
            resp = self._rewrite_partial(resp, fault.get("entries", {0: "InternalFailure"}))
        rec["status"] = status
        rec["forward_seconds"] = round(time.time() - rec["time"], 3)
        if status != 200:
            try:
                rec["error"] = json.loads(resp).get("__type")
            except (ValueError, AttributeError):
                rec["error"] = "non-json"
        h._answer(status, resp, headers)

    def _forward(self, h, body: bytes):
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            for k, v in h.headers.items():
                if k.lower() in ("transfer-encoding", "content-length", "connection",
                                 "keep-alive", "proxy-connection"):
                    continue
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    @staticmethod
    def _rewrite_partial(resp: bytes, failures: dict) -> bytes:
        doc = json.loads(resp)
        entries = doc.get("Entries", [])
        for idx, code in failures.items():
            idx = int(idx)
            if 0 <= idx < len(entries):
                entries[idx] = {"ErrorCode": code,
                                "ErrorMessage": ERROR_MESSAGES.get(code, "Injected failure")}
        doc["FailedEntryCount"] = sum(1 for e in entries if "ErrorCode" in e)
        return json.dumps(doc).encode()
