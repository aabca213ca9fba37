#!/usr/bin/env python3
"""sigv4_botocore.py: botocore SigV4Auth signatures per second for the request of bench_sigv4.c.

Usage: sigv4_botocore.py [SECONDS]          prints "sigv4 botocore: N/s" (default 2 seconds)
       sigv4_botocore.py --print-authorization
                                            prints the Authorization for 20240101T000000Z,
                                            which must equal bench_sigv4 --print-authorization.
"""
import datetime
import sys
import time

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BODY_SIZE = 2048
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEFAKESESSIONTOKENFORBENCHMARKONLY0123456789abcdefghijklmnopqrstuvwxyz"


def bench_body():
    head = ('{"Entries":[{"Source":"heald","DetailType":"heald.remediation",'
            '"EventBusName":"default","Detail":"{\\"instance\\":\\"i-0123456789abcdef0\\",'
            '\\"check\\":\\"nginx\\",\\"action\\":\\"restart\\",\\"log\\":\\"')
    tail = '\\"}"}]}'
    return (head + "x" * (BODY_SIZE - len(head) - len(tail)) + tail).encode()


def main():
    print_authz = sys.argv[1:2] == ["--print-authorization"]
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 and not print_authz else 2.0
    if not 0 < seconds <= 60:
        sys.exit("usage: sigv4_botocore.py [SECONDS (0..60]] | --print-authorization")

    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", TOKEN)
    auth = SigV4Auth(creds, "events", "us-east-1")
    request = AWSRequest(
        method="POST",
        url="https://events.us-east-1.amazonaws.com/",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSEvents.PutEvents"},
        data=bench_body(),
    )

    if print_authz:
        fixed = datetime.datetime(2024, 1, 1, 0, 0, 0)
        botocore.auth.get_current_datetime = lambda: fixed
        auth.add_auth(request)
        print(request.headers["Authorization"])
        return

    # add_auth replaces X-Amz-Date, the token and Authorization each time: a full re-sign.
    n = 0
    start = time.perf_counter()
    while True:
        for _ in range(100):
            auth.add_auth(request)
        n += 100
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    print(f"sigv4 botocore: {n / elapsed:.0f}/s")


if __name__ == "__main__":
    main()
