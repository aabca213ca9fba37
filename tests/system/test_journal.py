"""test_journal.py: what heald leaves in the journal under a real systemd: every line tied to an
event type carries that type's MESSAGE_ID (packaging/heald.catalog) and the HEALD_CHECK=,
HEALD_UNIT= fields of what it is about, read back with journalctl -o json; journalctl -x
explains the line from the installed catalog; STATUS= names the failing checks. The first
test needs no container: every event name the code logs has its catalog entry.
"""
import json
import os
import re
import unittest

import test_healing
from test_healing import HEALD_UNIT, unit_check

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
CATALOG = os.path.join(ROOT, "packaging", "heald.catalog")
CATALOG_INSIDE = "/usr/lib/systemd/catalog/heald.catalog"


def catalog_ids() -> dict[str, str]:
    """event name -> MESSAGE_ID, from the comment above each catalog entry."""
    text = open(CATALOG).read()
    return dict(re.findall(r"(?m)^# HEALD_EVENT=([a-z0-9-]+)\n-- ([0-9a-f]{32})$", text))


def logged_events() -> set[str]:
    """Every event name a log call in agent/ passes as a literal."""
    names = set()
    for folder, _, files in os.walk(os.path.join(ROOT, "agent")):
        for name in files:
            if name.endswith(".c"):
                text = open(os.path.join(folder, name)).read()
                names.update(re.findall(r'\blog_(?:event|event_about|check)\(\s*[^"()]*?,\s*"([a-z0-9-]+)"', text))
                names.update(re.findall(r'\blog_internal(?:_about)?\([^,]+,[^,]+,\s*"([a-z0-9-]+)"', text))
    return names


class CatalogTest(unittest.TestCase):
    def test_every_logged_event_has_a_catalog_entry(self):
        ids = catalog_ids()
        events = logged_events()
        self.assertGreater(len(events), 25, "the scan finds the log calls")
        self.assertEqual(sorted(events - set(ids)), [], "events logged without a catalog entry")
        self.assertEqual(len(set(ids.values())), len(ids), "one MESSAGE_ID per event")


class JournalTest(test_healing.HealingTestCase):
    def journal_entries(self) -> list[dict]:
        """heald's journal entries since the test started, every field (filtered here, as
        heald_journal(): --after-cursor with a match skips the first match)."""
        out = self.c.run(["journalctl", "--no-pager", "-o", "json", f"--after-cursor={self.cursor}"],
                         check=False).stdout
        return [e for e in map(json.loads, out.splitlines()) if e.get("_SYSTEMD_UNIT") == HEALD_UNIT]

    def entry(self, event: str) -> dict:
        (found,) = [e for e in self.journal_entries() if e.get("HEALD_EVENT") == event][:1] or [None]
        self.assertIsNotNone(found, f"no journal entry with HEALD_EVENT={event}")
        return found

    def test_message_ids_fields_catalog_and_status(self):
        ids = catalog_ids()
        self.start_unit("crashy.service")
        self.start_heald({"crashy": unit_check("crashy.service", action="restart-unit", verify_timeout="10s",
                                               max_actions=1)})
        self.wait_check("crashy", health="ok", phase="idle")
        self.c.kill_unit("crashy.service")
        self.event("Check Failed", check="crashy")
        self.event("Remediation Succeeded", check="crashy")
        self.wait_journal("remediation-succeeded")

        for event in ("started", "check-failed", "remediation-started", "remediation-succeeded"):
            e = self.entry(event)
            self.assertEqual(e.get("MESSAGE_ID"), ids[event], f"MESSAGE_ID of {event}")
            self.assertEqual(e.get("SYSLOG_IDENTIFIER"), "heald")
        for event in ("check-failed", "remediation-started", "remediation-succeeded"):
            e = self.entry(event)
            self.assertEqual((e.get("HEALD_CHECK"), e.get("HEALD_UNIT")), ("crashy", "crashy.service"), event)
        self.assertNotIn("HEALD_CHECK", self.entry("started"))
        # Lines of no event carry no MESSAGE_ID of ours.
        plain = [e for e in self.journal_entries() if "HEALD_EVENT" not in e and e.get("SYSLOG_IDENTIFIER") == "heald"]
        self.assertFalse([e for e in plain if e.get("MESSAGE_ID") in ids.values()])

        # journalctl -x explains the line from the installed catalog, fields filled in.
        self.c.write_file(CATALOG_INSIDE, open(CATALOG).read())
        self.addCleanup(lambda: self.c.run(["rm", "-f", CATALOG_INSIDE], check=False))
        self.c.run(["journalctl", "--update-catalog"])
        self.addCleanup(lambda: self.c.run(["journalctl", "--update-catalog"], check=False))
        out = self.c.run(["journalctl", "--no-pager", "-x", f"MESSAGE_ID={ids['check-failed']}"]).stdout
        self.assertIn("Check crashy failed", out)
        self.assertIn("Subject: Check crashy failed", out)
        self.assertIn("heald status crashy", out)

        # STATUS= names the failing check, and no longer once it recovered.
        self.assertNotIn("failing (", self.c.show(HEALD_UNIT, "StatusText"))
        # Its one action is spent: killed again, it stays down and the check stays failed.
        self.c.kill_unit("crashy.service")
        self.wait_check("crashy", health="failed")
        self.c.wait_for(lambda: "1 failing (crashy)" in self.c.show(HEALD_UNIT, "StatusText"), 10,
                        "STATUS= naming crashy")


class DryRunStatusTest(test_healing.HealingTestCase):
    def test_status_says_dry_run(self):
        self.start_unit("crashy.service")
        self.start_heald({"crashy": unit_check("crashy.service", action="restart-unit")}, dry_run="true")
        self.wait_check("crashy", health="ok")
        self.assertTrue(self.c.show(HEALD_UNIT, "StatusText").startswith("DRY RUN"),
                        self.c.show(HEALD_UNIT, "StatusText"))


if __name__ == "__main__":
    unittest.main()
