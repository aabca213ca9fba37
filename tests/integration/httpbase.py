"""httpbase.py: a threaded HTTP/1.1 server that can drop every open connection at once.

ThreadingHTTPServer.shutdown() only stops accepting; keep-alive connections already open
would go on being served, so "the endpoint went down" needs their sockets closed too.
"""
import socket
import sys
import threading
from http.server import ThreadingHTTPServer


class DroppableHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        """Clients going away mid-request is what the tests provoke: not worth a traceback."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        """Stop accepting, close the listener and every open connection."""
        self.shutdown()
        self.server_close()
        self.drop_connections()
