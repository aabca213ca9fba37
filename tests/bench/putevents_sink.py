#!/usr/bin/env python3
"""putevents_sink.py: a fast EventBridge PutEvents stand-in for the throughput benchmark.

HTTP/1.1 keep-alive (pipelining tolerated) on asyncio's raw protocol: every POST is answered
at once with success for each entry (signatures are not checked) and its entries counted.
  GET /count   -> {"entries": N, "requests": N}
  POST /reset  -> zeroes the counters
The count is also printed every --report seconds when it changed, and on exit.
Usage: putevents_sink.py [--host 127.0.0.1] [--port 0] [--report 1] [--port-file FILE]
"""
import argparse
import asyncio
import json
import signal
import sys
import uuid

MAX_HEADER = 64 * 1024


class Counters:
    entries = 0
    requests = 0


def response(status: str, body: bytes, ctype: bytes = b"application/x-amz-json-1.1") -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + ctype +
            b"\r\nx-amzn-RequestId: " + str(uuid.uuid4()).encode() +
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def put_events_answer(body: bytes) -> bytes:
    try:
        n = len(json.loads(body).get("Entries") or [])
    except (ValueError, AttributeError):
        return response("400 Bad Request",
                        b'{"__type":"ValidationException","message":"body is not JSON"}')
    Counters.entries += n
    Counters.requests += 1
    base = uuid.uuid4().hex[:24]
    entries = ",".join(f'{{"EventId":"{base}-{i:08x}"}}' for i in range(n))
    return response("200 OK", f'{{"FailedEntryCount":0,"Entries":[{entries}]}}'.encode())


class SinkProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER:
                    self.transport.close()
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            method, path = (head[0].split(" ") + ["", ""])[:2]
            length, close = 0, False
            for line in head[1:]:
                k, _, v = line.partition(":")
                k = k.strip().lower()
                if k == "content-length":
                    length = int(v.strip())
                elif k == "connection" and v.strip().lower() == "close":
                    close = True
                elif k == "transfer-encoding":
                    self.transport.write(response("411 Length Required", b""))
                    self.transport.close()
                    return
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            self.transport.write(self.answer(method, path, body))
            if close:
                self.transport.close()
                return

    @staticmethod
    def answer(method: str, path: str, body: bytes) -> bytes:
        if method == "GET" and path == "/count":
            return response("200 OK", json.dumps({"entries": Counters.entries,
                                                  "requests": Counters.requests}).encode(),
                            b"application/json")
        if method == "POST" and path == "/reset":
            Counters.entries = Counters.requests = 0
            return response("200 OK", b"{}", b"application/json")
        if method == "POST":
            return put_events_answer(body)
        return response("404 Not Found", b"")


async def serve(args) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SinkProtocol, args.host, args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"sink: listening on http://{args.host}:{port}", flush=True)
    if args.port_file:
        with open(args.port_file, "w") as f:
            f.write(f"{port}\n")
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    last = -1
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.report)
        except asyncio.TimeoutError:
            pass
        if Counters.entries != last:
            last = Counters.entries
            print(f"sink: entries {Counters.entries} requests {Counters.requests}", flush=True)
    server.close()
    print(f"sink: final entries {Counters.entries} requests {Counters.requests}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description="fast PutEvents sink for benchmarks")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--report", type=float, default=1.0, help="seconds between count lines")
    ap.add_argument("--port-file", help="write the port chosen here")
    asyncio.run(serve(ap.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
