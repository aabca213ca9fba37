#!/usr/bin/env python3
"""check-docs.py: the README says what the code does: the IAM policy it shows is
packaging/iam-policy.json, every event type with a schema in agent/schemas/ is in its events
table, and its example detail of each type is valid against the schema. Prints what differs;
exit 1 if anything does."""
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

# The example details: one per type, each valid against its schema.
try:
    import jsonschema
    k = events.index("An example `detail` of every type")
    j = events.index("```json", k) + len("```json")
    examples = json.loads(events[j:events.index("```", j)])
    for path in sorted(glob.glob(os.path.join(root, "agent", "schemas", "*.json"))):
        schema = json.load(open(path))
        if schema["title"] not in examples:
            problems.append(f"README has no example detail for {schema['title']}")
            continue
        try:
            jsonschema.validate(examples[schema["title"]], schema)
        except jsonschema.ValidationError as e:
            problems.append(f"README's example {schema['title']} is not valid: {e.message[:200]}")
except ValueError as e:
    problems.append(f"README's example details cannot be read: {e}")

for p in problems:
    print(p)
print(f"{len(problems)} documentation problems")
sys.exit(1 if problems else 0)
