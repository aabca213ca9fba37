"""bed_check.py: the test bed itself, checked with boto3 alone; run.py runs it first (FIRST): when
a heald test fails, these say whether the stand-in for AWS is to blame."""
import datetime as dt
import json

import boto3
import botocore.exceptions
import requests
from botocore.config import Config

from harness import BedTestCase
from imds_server import ROLE_PATH


class BedTest(BedTestCase):
    def imds_credentials(self) -> dict:
        s, ep = requests.Session(), self.bed.imds.endpoint
        token = s.put(ep + "/latest/api/token", timeout=5,
                      headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}).text
        h = {"X-aws-ec2-metadata-token": token}
        role = s.get(ep + ROLE_PATH, headers=h, timeout=5).text
        return s.get(ep + ROLE_PATH + role, headers=h, timeout=5).json()

    def events_client(self, creds: dict):
        return boto3.client("events", endpoint_url=self.bed.proxy.endpoint, region_name="us-east-1",
                            aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["Token"],
                            config=Config(retries={"total_max_attempts": 1}))

    def put(self, client, source: str, n: int = 1):
        return client.put_events(Entries=[{"Source": source, "DetailType": "Integration Test",
                                           "Detail": json.dumps({"n": i})} for i in range(n)])

    def test_imds_requires_token(self):
        before = self.bed.imds.imdsv1_attempts
        ep = self.bed.imds.endpoint
        self.assertEqual(requests.get(ep + ROLE_PATH, timeout=5).status_code, 401)
        self.assertEqual(requests.put(ep + "/latest/api/token", timeout=5).status_code, 400)
        self.assertEqual(requests.get(ep + ROLE_PATH, timeout=5,
                                      headers={"X-aws-ec2-metadata-token": "forged"}).status_code, 401)
        self.assertEqual(self.bed.imds.imdsv1_attempts, before + 1)
        self.bed.imds.imdsv1_attempts = before  # the final check is about heald, not this test

    def test_role_credentials_publish_through_proxy_to_tap(self):
        creds = self.imds_credentials()
        self.assertTrue(creds["AccessKeyId"].startswith("ASIA"))
        tap = self.bed.fleet.new_tap("heald.it.bed")
        r = self.put(self.events_client(creds), "heald.it.bed", 3)
        self.assertEqual(r["FailedEntryCount"], 0)
        got = []
        for _ in range(5):
            got += tap.receive(10, wait=1)
            if len(got) >= 3:
                break
        self.assertEqual(sorted(e["detail"]["n"] for e in got), [0, 1, 2])
        self.assertEqual(self.bed.proxy.log()[0]["access_key_id"], creds["AccessKeyId"])

    def test_wrong_secret_and_missing_permission_refused(self):
        creds = dict(self.imds_credentials(), SecretAccessKey="wrong")
        with self.assertRaisesRegex(botocore.exceptions.ClientError, "InvalidSignatureException"):
            self.put(self.events_client(creds), "heald.it.bed")
        self.bed.fleet.set_role_policy('{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                                       '"Action":"events:ListRules","Resource":"*"}]}')
        with self.assertRaisesRegex(botocore.exceptions.ClientError, "AccessDeniedException"):
            self.put(self.events_client(self.imds_credentials()), "heald.it.bed")

    def test_policy_is_scoped_to_the_bus(self):
        ev = self.events_client(self.imds_credentials())
        with self.assertRaisesRegex(botocore.exceptions.ClientError, "AccessDenied"):
            ev.put_events(Entries=[{"Source": "heald.it.bed", "DetailType": "Integration Test",
                                    "Detail": "{}", "EventBusName": "other"}])

    def test_proxy_faults(self):
        ev = self.events_client(self.imds_credentials())
        p = self.bed.proxy
        p.fail_next(1, "throttle")
        with self.assertRaisesRegex(botocore.exceptions.ClientError, "ThrottlingException"):
            self.put(ev, "heald.it.bed")
        p.fail_next(1, "partial", entries={1: "InternalFailure"})
        r = self.put(ev, "heald.it.bed", 3)
        self.assertEqual(r["FailedEntryCount"], 1)
        self.assertEqual(r["Entries"][1]["ErrorCode"], "InternalFailure")
        p.clock_offset = 3600
        with self.assertRaisesRegex(botocore.exceptions.ClientError, "Signature expired"):
            self.put(ev, "heald.it.bed")
        p.clock_offset = 0
        p.set_key_expiry(p.log()[0]["access_key_id"], dt.datetime.now(dt.timezone.utc))
        with self.assertRaisesRegex(botocore.exceptions.ClientError, "ExpiredTokenException"):
            self.put(ev, "heald.it.bed")
        p.key_expiry.clear()
        p.down()
        with self.assertRaises(botocore.exceptions.EndpointConnectionError):
            self.put(ev, "heald.it.bed")
        p.up()
        self.assertEqual(self.put(ev, "heald.it.bed")["FailedEntryCount"], 0)

    def test_imds_rotation_and_faults(self):
        imds = self.bed.imds
        first = self.imds_credentials()
        imds.rotate()
        self.assertNotEqual(self.imds_credentials()["AccessKeyId"], first["AccessKeyId"])
        imds.set_reported_expiry(600)
        exp = dt.datetime.strptime(self.imds_credentials()["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
        self.assertLess(exp - dt.datetime.utcnow(), dt.timedelta(seconds=601))
        imds.set_fault("500")
        self.assertEqual(requests.put(imds.endpoint + "/latest/api/token", timeout=5,
                                      headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
                                      ).status_code, 500)
        imds.set_fault("refuse")
        with self.assertRaises(requests.ConnectionError):
            requests.get(imds.endpoint + ROLE_PATH, timeout=2)
        imds.set_fault(None)
        self.assertTrue(self.imds_credentials()["AccessKeyId"])
