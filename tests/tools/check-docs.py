#!/usr/bin/env python3
"""check-docs.py: the README says what the code does: the IAM policy it shows is
packaging/iam-policy.json, every event type with a schema in agent/schemas/ is in its events
table, and its example detail of each type is valid against the schema; heald(8) has every
command, option and exit code of agent/main.c. Prints what differs;
exit 1 if anything does."""
import glob
import json
import os
import re
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

# The README's full configuration lists every section and key of agent/config.c's table.
config_c = open(os.path.join(root, "agent", "config.c")).read()
table = config_c[config_c.index("static const ConfigKey config_keys[]"):]
table = table[:table.index("};")]
full = readme[readme.index("### Full configuration"):]
full = full[full.index("```ini"):full.index("```", full.index("```ini") + 6)]
shown, section = set(), None
for line in full.splitlines():
    m = re.match(r"\[(\w+)\]", line)
    if m:
        section = m.group(1)
    m = re.match(r"(\w+) *=", line)
    if m:
        shown.add((section, m.group(1)))
for section, key in re.findall(r'KEY\("(\w+)", "(\w+)"', table):
    if (section, key) not in shown:
        problems.append(f"README's full configuration lacks [{section}] {key}")
# The installed heald.ini lives in /etc: it points at the installed examples, not the source tree.
if "config/examples" in open(os.path.join(root, "config", "heald.ini")).read():
    problems.append("config/heald.ini points at config/examples/ (installed: /usr/share/doc/heald/examples/)")

# heald(8) documents every command of main.c's verb table and every exit code main.c returns.
main_c = open(os.path.join(root, "agent", "main.c")).read()
man8 = open(os.path.join(root, "packaging", "man", "heald.8")).read()
synopsis = man8[man8.index(".SH SYNOPSIS"):man8.index(".SH DESCRIPTION")]
commands = man8[man8.index(".SH COMMANDS"):man8.index(".SH OPTIONS")]
exit_status = man8[man8.index(".SH EXIT STATUS"):man8.index(".SH FILES")]
verb_table = main_c[main_c.index("static const Verb verbs[]"):]
verb_table = verb_table[:verb_table.index("};")]
for verb in re.findall(r'\{ "([a-z-]+)",', verb_table):
    if f".B heald {verb}" not in synopsis:
        problems.append(f"heald(8)'s SYNOPSIS lacks heald {verb}")
    if not re.search(rf"^\.B {re.escape(verb)}\b", commands, re.M):
        problems.append(f"heald(8)'s COMMANDS lacks {verb}")
exit_codes = {"EXIT_SUCCESS": 0, "EXIT_FAILURE": 1, "EX_USAGE": 64, "EX_DATAERR": 65, "EX_UNAVAILABLE": 69,
              "EX_CONFIG": 78}
for name in sorted(set(re.findall(r"\b(EXIT_SUCCESS|EXIT_FAILURE|EX_[A-Z]+)\b", main_c))):
    if name not in exit_codes:
        problems.append(f"check-docs.py does not know main.c's exit code {name}")
    elif f".B {exit_codes[name]}\n" not in exit_status:
        problems.append(f"heald(8)'s EXIT STATUS lacks {exit_codes[name]} ({name})")
for option in re.findall(r'\{ "([a-z-]+)", (?:no|required)_argument', main_c):
    if f"\\-\\-{option}" not in man8[man8.index(".SH OPTIONS"):man8.index(".SH EVENTS")]:
        problems.append(f"heald(8)'s OPTIONS lacks --{option}")

for p in problems:
    print(p)
print(f"{len(problems)} documentation problems")
sys.exit(1 if problems else 0)
