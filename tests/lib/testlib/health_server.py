"""health_server.py: a local HTTP endpoint on 127.0.0.1 whose answer the test steers, for http
checks and for reaching the host from a container."""
import http.server
import threading
import time


class HealthServer:
    """Answers GET with (status, body, delay), changed with set() while it runs; paths outside
    path_prefix get 404. keep_alive answers HTTP/1.1 (connections reused, as a real service
    would); without it every answer closes its connection. Usable as a context manager."""

    def __init__(self, status: int = 200, body: bytes = b"ok\n", path_prefix: str = "/",
                 keep_alive: bool = False):
        self.status, self.body, self.delay = status, body, 0.0
        self.served: list[int] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_GET(self):  # noqa: N802 - http.server API
                status, body, delay = outer.status, outer.body, outer.delay
                if not self.path.startswith(path_prefix):
                    status = 404
                outer.served.append(status)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # a client may stop reading (heald after its 64 KiB): expected

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/healthz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def set(self, status: int, body: bytes = b"", delay: float = 0.0) -> None:
        self.status, self.body, self.delay = status, body, delay

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
