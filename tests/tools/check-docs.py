#!/usr/bin/env python3
"""check-docs.py: the README says what the code does: the IAM policy it shows is
packaging/iam-policy.json, every event type with a schema in agent/schemas/ is in its events
table, and its example detail of each type is valid against the schema; heald(8) has every
command, option and exit code of agent/main.c; every ini example of the README, the man
pages and config/ passes heald check-config, and every heald command line they show uses a
verb of heald --help (check-config, --help and --version ones are run). Prints what differs;
exit 1 if anything does."""
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

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

# The examples run: every ini example of the README, the man pages and config/ passes
# heald check-config; every heald command line the README and the man pages show uses a verb
# heald --help lists, and check-config ones run (with the installed file, config/heald.ini).
heald = os.path.join(root, "build", "heald")


def roff_text(s):
    return s.replace("\\-", "-").replace("\\(dq", '"').replace("\\e", "\\").replace("\\&", "")


def heald_run(*args):
    return subprocess.run([heald, *args], capture_output=True, text=True, timeout=30)


if not os.access(heald, os.X_OK):
    problems.append("build/heald is missing: run make before check-docs.py")
else:
    ini_examples, command_lines = [], []
    for m in re.finditer(r"```(\w*)\n(.*?)```", readme, re.S):
        if m.group(1) == "ini":
            ini_examples.append(("README.md", m.group(2)))
        elif m.group(1) in ("sh", "bash", "console"):
            command_lines += [("README.md", line) for line in m.group(2).splitlines()]
    for page in ("heald.8", "heald.ini.5"):
        text = open(os.path.join(root, "packaging", "man", page)).read()
        for block in re.findall(r"^\.(?:EX|nf)\n(.*?)^\.(?:EE|fi)", text, re.S | re.M):
            block = roff_text(block)
            if re.search(r"^\[[\w ]+\]$", block, re.M):
                ini_examples.append((page, block))
            else:
                command_lines += [(page, line) for line in block.splitlines()]
    for path in sorted(glob.glob(os.path.join(root, "config", "*.ini")) +
                       glob.glob(os.path.join(root, "config", "examples", "*.ini"))):
        ini_examples.append((os.path.relpath(path, root), open(path).read()))
    with tempfile.TemporaryDirectory() as tmp:
        for n, (where, text) in enumerate(ini_examples):
            path = os.path.join(tmp, f"example-{n}.ini")
            with open(path, "w") as f:
                f.write(text)
            cp = heald_run("check-config", "--config", path)
            if cp.returncode != 0:
                first = text.strip().splitlines()[0]
                problems.append(f"{where}: the ini example starting '{first}' fails check-config: "
                                f"{cp.stderr.strip()[:300]}")

    help_text = heald_run("--help").stdout
    help_verbs = set(re.findall(r"^(?:Usage:)?\s+heald ([a-z][a-z-]+)", help_text, re.M))
    installed = os.path.join(root, "config", "heald.ini")
    for where, line in command_lines:
        m = re.match(r"\s*(?:sudo\s+)?heald(\s+.*)?$", line.split("#")[0].rstrip())
        if not m:
            continue
        words = shlex.split(m.group(1) or "")
        verb = next((w for i, w in enumerate(words)
                     if not w.startswith("-") and (i == 0 or words[i - 1] not in ("--config", "-c", "--output", "-o"))),
                    None)
        if verb and verb not in help_verbs:
            problems.append(f"{where}: '{line.strip()}' uses a command heald --help does not list")
        elif verb == "check-config" or any(w in ("--help", "--version", "-h", "-V") for w in words):
            words = [installed if w == "/etc/heald/heald.ini" else w for w in words]
            cp = heald_run(*words)
            if cp.returncode != 0:
                problems.append(f"{where}: '{line.strip()}' fails here ({cp.returncode}): {cp.stderr.strip()[:200]}")
    for verb in sorted(help_verbs):
        if f"heald {verb}" not in readme:
            problems.append(f"README never shows heald {verb} (heald --help lists it)")

for p in problems:
    print(p)
print(f"{len(problems)} documentation problems")
sys.exit(1 if problems else 0)
