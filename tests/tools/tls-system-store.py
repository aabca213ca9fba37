#!/usr/bin/env python3
"""tls-system-store.py: does a heald binary trust the system's CA store and obey the system's
OpenSSL configuration (its crypto policy), as Debian's libcurl and libcrypto read them? Used to
compare builds (tests/bench/RESULTS.md §7, static linking); not part of make check. Root:
`heald send-event` to a local HTTPS PutEvents stand-in whose certificate a test CA signed, in a
private mount namespace (unshare -m) where that CA is, or is not, bind-mounted over
/etc/ssl/certs/ca-certificates.crt, and an openssl.cnf with MinProtocol = TLSv1.3 over the
system's for a server that speaks TLS 1.2 at most; strace lists the TLS files each run opened.
Usage: tls-system-store.py BIN [BIN ...]; exit 1 if any outcome differs from the expected."""
import http.server
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading

SYS_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SYS_CNF = os.path.realpath("/usr/lib/ssl/openssl.cnf")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"FailedEntryCount":0,"Entries":[{"EventId":"e1"}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def serve(d: str, max_tls12: bool) -> int:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{d}/srv.pem", f"{d}/srv.key")
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd.server_address[1]


def main() -> int:
    d = tempfile.mkdtemp(prefix="heald-tls-store-")
    subprocess.run(f"""cd {d} && exec >/dev/null 2>&1 &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=heald-test-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' >ext &&
      openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost &&
      openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext""",
                   shell=True, check=True)
    with open(SYS_CNF) as f:
        cnf = f.read().replace("[openssl_init]\n", "[openssl_init]\nssl_conf = ssl_sect\n", 1)
    with open(f"{d}/openssl.cnf", "w") as f:
        f.write(cnf + "\n[ssl_sect]\nsystem_default = system_default_sect\n"
                "[system_default_sect]\nMinProtocol = TLSv1.3\n")
    tls12 = serve(d, max_tls12=True)
    tls13 = serve(d, max_tls12=False)
    env = dict(PATH="/usr/bin:/bin", AWS_ACCESS_KEY_ID="AKIDTLS", AWS_SECRET_ACCESS_KEY="tls",
               HEALD_LOG_TARGET="stderr", GNUTLS_NO_IMPLICIT_INIT="1")
    cases = [  # (name, bind-mount CA, bind-mount cnf, port, expect success)
        ("system store without the test CA", False, False, tls13, False),
        ("test CA in the system store", True, False, tls13, True),
        ("test CA, TLS 1.2 server, system config", True, False, tls12, True),
        ("test CA, TLS 1.2 server, config MinProtocol=TLSv1.3", True, True, tls12, False),
    ]
    bad = 0
    for binary in sys.argv[1:]:
        for name, ca, cnf_, port, ok in cases:
            with open(f"{d}/send.ini", "w") as f:
                f.write(f"[agent]\nstate_dir = {d}/state\n[aws]\nregion = us-east-1\n"
                        f"events_endpoint = https://localhost:{port}\n")
            mounts = (f"mount --bind {d}/ca.pem {SYS_BUNDLE} && " if ca else "") + \
                     (f"mount --bind {d}/openssl.cnf {SYS_CNF} && " if cnf_ else "")
            cmd = (f"{mounts}exec strace -f -e trace=openat -o {d}/strace {binary} send-event "
                   f"--config {d}/send.ini 'TLS Check' '{{\"n\":1}}'")
            cp = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", cmd],
                                env=env, capture_output=True, text=True, timeout=60)
            with open(f"{d}/strace") as f:
                opened = sorted({line.split('"')[1] for line in f
                                 if '"' in line and ("ssl" in line or "cnf" in line)
                                 and "ENOENT" not in line and ".so" not in line})
            verdict = "ok" if (cp.returncode == 0) == ok else "UNEXPECTED"
            bad += verdict != "ok"
            err = cp.stderr.strip().splitlines()[-1][:150] if cp.returncode else ""
            print(f"{verdict}: {os.path.basename(binary)}: {name}: exit {cp.returncode} {err}\n"
                  f"    opened: {opened}")
    shutil.rmtree(d)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
