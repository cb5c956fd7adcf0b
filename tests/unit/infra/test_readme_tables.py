"""infra/README.md's inputs/outputs tables match the templates."""

from __future__ import annotations

from infra.readme_tables import README, regenerate, render


def test_readme_tables_are_up_to_date():
    text = README.read_text()
    assert regenerate(text) == text, "run: .venv/bin/python -m infra.readme_tables"


def test_tables_list_every_parameter_and_output_with_its_default():
    table = render("network")
    assert "| `NatMode` | String (none, single, per-az) | `none` |" in table
    assert "| `TaskAssignPublicIp` |" in table
    assert '| `ImageUri` | String | `""` |' in render("site")
