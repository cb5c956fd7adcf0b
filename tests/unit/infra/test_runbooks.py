"""The runbooks the alarms link follow runbooks/TEMPLATE.md and are indexed."""

from __future__ import annotations

import re

import pytest

from tests.support.templates import RUNBOOK_LINK, RUNBOOKS, TEMPLATES

SECTIONS = ["## Meaning", "## Impact", "## Diagnosis", "## Mitigation", "## Escalation"]
# Replacing tasks or the image is destructive; changing the desired count is not.
DESTRUCTIVE = ("--task-definition", "stop-task", "--force-new-deployment")


def linked_runbooks() -> list[str]:
    text = "\n".join(path.read_text() for path in sorted(TEMPLATES.glob("*.yaml")))
    return sorted({m.group("file") for m in RUNBOOK_LINK.finditer(text)})


def section(text: str, title: str) -> str:
    start = text.index(title)
    following = [text.find(s, start + 1) for s in [*SECTIONS, "<details>"]]
    return text[start : min(i for i in following if i > start)]


def test_the_alarms_link_runbooks():
    assert len(linked_runbooks()) >= 8


@pytest.mark.parametrize("name", linked_runbooks())
def test_runbook_has_the_template_sections_in_order(name):
    text = (RUNBOOKS / name).read_text()
    assert text.startswith(f"# {name[:-3]}\n")
    positions = [text.index(title) for title in SECTIONS]
    assert positions == sorted(positions)
    assert "<details>\n<summary>Full context</summary>" in text


@pytest.mark.parametrize("name", linked_runbooks())
def test_diagnosis_is_copy_paste_commands_with_placeholders(name):
    diagnosis = section((RUNBOOKS / name).read_text(), "## Diagnosis")
    assert "```sh" in diagnosis
    assert "$STAGE" in diagnosis


@pytest.mark.parametrize("name", linked_runbooks())
def test_destructive_mitigations_carry_a_warning(name):
    mitigation = section((RUNBOOKS / name).read_text(), "## Mitigation")
    if any(command in mitigation for command in DESTRUCTIVE):
        assert "**WARNING:**" in mitigation


def test_index_lists_every_linked_runbook():
    index = (RUNBOOKS / "README.md").read_text()
    rows = set(re.findall(r"^\| \[([a-z0-9-]+\.md)\]", index, re.MULTILINE))
    assert set(linked_runbooks()) <= rows
