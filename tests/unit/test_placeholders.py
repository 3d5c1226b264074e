"""Contacts still holding a template's placeholders: `cockpit validate` warns at
file:line:col (exit 0), the contacts screen marks them in words."""

from __future__ import annotations

import textwrap

import pytest
from helpers import cockpit

from cockpit.runbook import Contact, Contacts
from cockpit.runbook.placeholders import placeholder
from cockpit.screens.contacts import PLACEHOLDER, contacts_text

BOOK = """
runbook: Contacts check
phases:
  - id: p
    steps: [{id: s, run: "true"}]
contacts:
  on_call:
    - {role: Primary, name: "[Name]", phone: "[Phone]"}
    - {role: Secondary, name: Dana Ortiz, phone: "555-xxx-xxxx"}
    - {role: Manager, name: Sam Lee, phone: "+1 555 0100", email: sam@example.com}
  escalation: [On-call engineer, "<name> (30 minutes)", TBD]
"""


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("[Name]", "[Name]"),
        ("<name>", "<name>"),
        ("TBD", "TBD"),
        ("call tbd", "tbd"),
        ("xxx-xxx", "xxx"),
        ("555-XXX-XXXX", "XXX"),
        ("Your Name", "Your Name"),
        ("Dana Ortiz", None),
        ("+1 555 0100", None),
        ("alex@example.com", None),
        ("Engineering lead (30 minutes)", None),
        ("Maxx Power", None),
    ],
)
def test_what_is_a_placeholder(text, found):
    assert placeholder(text) == found


def test_validate_warns_where_each_placeholder_is(tmp_path):
    path = tmp_path / "book.yaml"
    path.write_text(textwrap.dedent(BOOK))
    result = cockpit("validate", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: {path}: Contacts check")
    warnings = result.stderr.splitlines()
    fill = ": fill it in before the deployment window"
    assert warnings == [
        f"{path}:8:29: warning: contact name '[Name]' is a placeholder{fill}",
        f"{path}:8:46: warning: contact phone '[Phone]' is a placeholder{fill}",
        f"{path}:9:50: warning: contact phone '555-xxx-xxxx' holds a placeholder (xxx){fill}",
        f"{path}:11:34: warning: escalation level '<name> (30 minutes)' "
        f"holds a placeholder (<name>){fill}",
        f"{path}:11:57: warning: escalation level 'TBD' is a placeholder{fill}",
    ]


def test_the_contacts_screen_marks_placeholders():
    shown = contacts_text(
        Contacts(
            on_call=(
                Contact("Primary", "[Name]", "[Phone]"),
                Contact("Manager", "Sam Lee", "+1 555 0100"),
            ),
            escalation=("On-call engineer", "TBD"),
        )
    ).plain.splitlines()
    assert shown == [
        f"  Primary: [Name] · [Phone]{PLACEHOLDER}",
        "  Manager: Sam Lee · +1 555 0100",
        "  1. On-call engineer",
        f"  2. TBD{PLACEHOLDER}",
    ]
