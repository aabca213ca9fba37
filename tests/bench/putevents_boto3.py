#!/usr/bin/env python3
"""putevents_boto3.py: the baseline for the drain benchmark: boto3's EventBridge client sending
N heartbeat-sized events in PutEvents batches of 10 to the same local sink, as a Python
publisher (a Lambda, a fleet script) would. Prints "drain boto3: N events/s".
Usage: putevents_boto3.py ENDPOINT N"""
import json
import sys
import time

import boto3


def main():
    endpoint, n = sys.argv[1], int(sys.argv[2])
    client = boto3.client("events", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench",
                          aws_session_token="token")
    start = time.monotonic()
    sent = 0
    while sent < n:
        batch = [{"Source": "heald", "DetailType": "Agent Heartbeat", "EventBusName": "default",
                  "Resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"],
                  "Time": time.time(),
                  "Detail": json.dumps({"seq": sent + i, "uptime_s": sent, "outbox_depth": n - sent})}
                 for i in range(min(10, n - sent))]
        client.put_events(Entries=batch)
        sent += len(batch)
    print(f"drain boto3: {sent / (time.monotonic() - start):.0f} events/s")


if __name__ == "__main__":
    main()
