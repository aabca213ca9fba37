#!/usr/bin/env python3
"""check-docs.py: the README says what the code does: the IAM policy it shows is
packaging/iam-policy.json, and every event type with a schema in agent/schemas/ is in its
events table. Prints what differs; exit 1 if anything does."""
import glob
import json
import os
import sys

root = os.path.join(os.path.dirname(__file__), "..", "..")
readme = open(os.path.join(root, "README.md")).read()
problems = []

i = readme.index("## IAM")
j = readme.index("```json", i) + len("```json")
shown = json.loads(readme[j:readme.index("```", j)])
if shown != json.load(open(os.path.join(root, "packaging", "iam-policy.json"))):
    problems.append("README's IAM policy differs from packaging/iam-policy.json")

events = readme[readme.index("## Events"):readme.index("## Delivery guarantees")]
for path in sorted(glob.glob(os.path.join(root, "agent", "schemas", "*.json"))):
    title = json.load(open(path))["title"]
    if f"`{title}`" not in events:
        problems.append(f"README's events table lacks {title} ({os.path.basename(path)})")

for p in problems:
    print(p)
print(f"{len(problems)} documentation problems")
sys.exit(1 if problems else 0)
