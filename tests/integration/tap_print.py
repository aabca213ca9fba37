"""tap_print.py: print each event the demo's subscriber queue receives, one line each:
time, detail-type, compact detail. Usage: tap_print.py TAP_FILE (written by imds_server.py)."""
import json
import sys

import boto3


def main() -> None:
    with open(sys.argv[1]) as f:
        tap = json.load(f)
    sqs = boto3.client("sqs", endpoint_url=tap["endpoint"], region_name=tap["region"],
                       aws_access_key_id=tap["admin"]["AccessKeyId"],
                       aws_secret_access_key=tap["admin"]["SecretAccessKey"])
    print("subscriber: waiting for events (Ctrl-C to stop)", flush=True)
    while True:
        r = sqs.receive_message(QueueUrl=tap["queue_url"], MaxNumberOfMessages=10,
                                WaitTimeSeconds=5)
        for m in r.get("Messages", []):
            ev = json.loads(m["Body"])
            print(f"{ev.get('time')}  {ev.get('detail-type')}  "
                  f"{json.dumps(ev.get('detail'), separators=(',', ':'))}", flush=True)
            sqs.delete_message(QueueUrl=tap["queue_url"], ReceiptHandle=m["ReceiptHandle"])


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
