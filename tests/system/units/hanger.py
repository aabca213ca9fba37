"""hanger.py: GET /health answers 200 "ok" until $HANGER_FLAG exists; then every request
is accepted and read but never answered (the connection is held open).

Plain sockets: the container's python3-minimal has no http.server.
"""
import os
import socket
import threading

PORT = int(os.environ.get("HANGER_PORT", "18081"))
FLAG = os.environ.get("HANGER_FLAG", "/run/hanger/hang")


def serve(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(10)
        try:
            request = conn.recv(4096).decode("latin-1")
        except OSError:
            return
        if os.path.exists(FLAG):
            threading.Event().wait()  # hold the connection, never answer
        line = request.split("\r\n", 1)[0].split()
        if line[:2] == ["GET", "/health"]:
            status, body = "200 OK", "ok\n"
        else:
            status, body = "404 Not Found", "not found\n"
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: "
                     f"{len(body)}\r\nConnection: close\r\n\r\n{body}".encode())


def main() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", PORT))
    srv.listen(64)
    print(f"hanger: listening on 127.0.0.1:{PORT}, hangs when {FLAG} exists", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
