"""test_aws_env.py: the AWS tools' environment variables in the order heald.ini(5) documents
(heald.ini, then the environment, then IMDS or the default): region, endpoints, the IMDS
endpoint and AWS_EC2_METADATA_DISABLED; and the proxy variables, which AWS calls follow
(unless NO_PROXY names the host) and IMDS never does."""
import http.client
import http.server
import re
import threading
import urllib.parse

from harness import REGION, BedTestCase

DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port: connection refused
SCOPE_RE = re.compile(r"Credential=[A-Z0-9]+/\d{8}/([a-z0-9-]+)/")


class LoopbackProxy:
    """A forward proxy on 127.0.0.1 for http:// targets (the bed's endpoints are plain
    http on loopback): absolute-URI requests are forwarded, each recorded as (method, target,
    signing region)."""

    def __init__(self):
        self.seen: list[tuple[str, str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                scope = SCOPE_RE.search(self.headers.get("Authorization", ""))
                outer.seen.append((self.command, self.path, scope.group(1) if scope else None))
                url = urllib.parse.urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("proxy-connection", "connection")}
                conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
                try:
                    conn.request(self.command, url.path + (f"?{url.query}" if url.query else "") or "/",
                                 body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _forward  # noqa: N815 - http.server API

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AwsEnvironmentTest(BedTestCase):
    def agent_without(self, *aws_keys: str, **overrides):
        """An agent whose heald.ini does not name the given [aws] keys at all."""
        agent = self.bed.agent(self, **overrides)
        for key in aws_keys:
            agent.config["aws"].pop(key, None)
        agent.configure()
        return agent

    def assert_delivered(self, agent, env: dict, n: int) -> None:
        cp = agent.send_event("Integration Test", {"n": n}, extra_env=env)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        agent.events(1, detail_type="Integration Test")

    def signing_region(self, env: dict, file_region: str | None = None) -> str:
        """The region of the first PutEvents heald signs with env (through a recording proxy)."""
        proxy = LoopbackProxy()
        self.addCleanup(proxy.close)
        agent = self.agent_without("region")
        if file_region:
            agent.configure(region=file_region)
        agent.start(extra_env={"HTTP_PROXY": proxy.url, **env})
        self.wait_until(lambda: any(region for _, _, region in proxy.seen), 15, "a signed request")
        agent.stop()
        return next(region for _, _, region in proxy.seen if region)

    # ---- region: [aws] region, then AWS_REGION, then AWS_DEFAULT_REGION, then IMDS ----
    def test_region_order(self):
        self.assertEqual(self.signing_region({}), REGION, "IMDS's region")
        self.assertEqual(self.signing_region({"AWS_DEFAULT_REGION": "us-west-2"}), "us-west-2")
        self.assertEqual(self.signing_region({"AWS_REGION": "eu-west-1",
                                              "AWS_DEFAULT_REGION": "us-west-2"}), "eu-west-1")
        self.assertEqual(self.signing_region({"AWS_REGION": "eu-west-1"}, file_region=REGION), REGION,
                         "heald.ini wins over AWS_REGION")

    def test_bad_region_in_environment_is_a_config_error(self):
        agent = self.agent_without("region")
        cp = agent.run_cli("check-config", extra_env={"AWS_REGION": "Not A Region"})
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("environment AWS_REGION (for [aws] region): must be empty or a region name", cp.stderr)

    # ---- endpoints: heald.ini (per service, then endpoint_url), then the variables ----
    def test_endpoint_url_from_environment(self):
        agent = self.agent_without("endpoint_url")
        self.assert_delivered(agent, {"AWS_ENDPOINT_URL": self.bed.proxy.endpoint}, 1)

    def test_service_variable_wins_over_endpoint_url_variable(self):
        agent = self.agent_without("endpoint_url")
        self.assert_delivered(agent, {"AWS_ENDPOINT_URL": DEAD,
                                      "AWS_ENDPOINT_URL_EVENTS": self.bed.proxy.endpoint}, 2)

    def test_file_endpoint_url_wins_over_service_variables(self):
        agent = self.bed.agent(self)
        self.assert_delivered(agent, {"AWS_ENDPOINT_URL": DEAD, "AWS_ENDPOINT_URL_EVENTS": DEAD}, 3)

    def test_sqs_and_sfn_variables_in_effective_configuration(self):
        agent = self.agent_without("endpoint_url")
        env = {"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:4001", "AWS_ENDPOINT_URL_SFN": "http://127.0.0.1:4002"}
        cp = agent.run_cli("check-config", extra_env=env)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("sqs_endpoint = http://127.0.0.1:4001\n", cp.stdout)
        self.assertIn("states_endpoint = http://127.0.0.1:4002\n", cp.stdout)
        agent.configure(sqs_endpoint="http://127.0.0.1:5001")
        cp = agent.run_cli("check-config", extra_env=env)
        self.assertIn("sqs_endpoint = http://127.0.0.1:5001\n", cp.stdout, "heald.ini wins")
        self.assertIn("states_endpoint = http://127.0.0.1:4002\n", cp.stdout)
        agent.configure(endpoint_url=self.bed.proxy.endpoint)
        cp = agent.run_cli("check-config", extra_env=env)
        self.assertIn("states_endpoint =\n", cp.stdout,
                      "[aws] endpoint_url in the file wins over every endpoint variable")

    # ---- IMDS: [aws] imds_endpoint, then AWS_EC2_METADATA_SERVICE_ENDPOINT, then the default ----
    def test_imds_endpoint_from_environment(self):
        agent = self.agent_without("imds_endpoint")
        self.assert_delivered(agent, {"AWS_EC2_METADATA_SERVICE_ENDPOINT": self.bed.imds.endpoint}, 4)

    def test_file_imds_endpoint_wins(self):
        agent = self.bed.agent(self)
        self.assert_delivered(agent, {"AWS_EC2_METADATA_SERVICE_ENDPOINT": DEAD}, 5)

    def test_imds_disabled_uses_environment_only(self):
        creds = self.bed.fleet.assume_role()
        self.bed.imds.issued_secrets += [creds["SecretAccessKey"], creds["SessionToken"]]
        env = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": REGION,
               "AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
               "AWS_SESSION_TOKEN": creds["SessionToken"]}
        self.bed.imds.reset_counts()
        agent = self.agent_without("region")
        self.assert_accepted_without_arn(agent, env, 6)
        self.assertEqual(self.bed.imds.counts_snapshot(), {}, "IMDS asked while disabled")

        agent.configure(aws__imds_disabled="false")
        self.assert_accepted_without_arn(agent, env, 7)
        self.assertTrue(self.bed.imds.counts_snapshot(), "heald.ini's imds_disabled = false wins")

    def assert_accepted_without_arn(self, agent, env: dict, n: int) -> None:
        """With environment credentials and region heald publishes before (or without) IMDS,
        so the event names no instance ARN and the harness's event checks do not apply: an
        accepted PutEvents of this event is the proof."""
        cp = agent.send_event("Integration Test", {"n": n}, extra_env=env)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        accepted = [r for r in self.bed.proxy.log() if r["status"] == 200
                    and any(e["Detail"] == f'{{"n":{n}}}' for e in r["entry_list"])]
        self.assertEqual(len(accepted), 1, self.bed.proxy.log())

    def test_imds_disabled_without_credentials_fails(self):
        agent = self.agent_without("region")
        cp = agent.send_event("Integration Test", {"n": 8},
                              extra_env={"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": REGION})
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("IMDS is disabled", cp.stderr)

    # ---- proxies: AWS calls through HTTP(S)_PROXY unless NO_PROXY; IMDS never ----
    def test_proxy_for_aws_not_for_imds(self):
        proxy = LoopbackProxy()
        self.addCleanup(proxy.close)
        self.bed.imds.reset_counts()
        agent = self.bed.agent(self)
        # HTTP_PROXY as the AWS tools read it (libcurl by itself reads only http_proxy).
        self.assert_delivered(agent, {"HTTP_PROXY": proxy.url}, 9)
        targets = [target for _, target, _ in proxy.seen]
        self.assertTrue(any(t.startswith(self.bed.proxy.endpoint) for t in targets), targets)
        self.assertFalse([t for t in targets if "/latest/" in t], "IMDS went through the proxy")
        self.assertTrue(self.bed.imds.counts_snapshot(), "IMDS was asked directly")

    def test_no_proxy_names_the_endpoint(self):
        proxy = LoopbackProxy()
        self.addCleanup(proxy.close)
        agent = self.bed.agent(self)
        self.assert_delivered(agent, {"HTTP_PROXY": proxy.url, "no_proxy": "127.0.0.1"}, 10)
        self.assertEqual(proxy.seen, [])
