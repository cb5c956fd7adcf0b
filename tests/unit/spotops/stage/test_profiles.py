"""``spotops init``'s profiles are the shipped stage files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from spotops.cli import main as cli_module
from spotops.stage.profiles import load_profiles, prompted, stage_file

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize("name", ["dev", "seed", "prod"])
def test_the_shipped_stage_file_is_the_profile(name):
    assert json.loads((ROOT / "config" / f"{name}.json").read_text()) == load_profiles()[name]


def test_overrides_keep_the_type_the_profile_writes():
    content = stage_file(
        load_profiles()["dev"],
        {
            "DesiredCount": "3",
            "CreateWaf": "true",
            "DomainName": "www.example.com",
            "AlarmEmail": "",
        },
    )

    parameters = content["parameters"]
    assert parameters["DesiredCount"] == 3
    assert parameters["CreateWaf"] is True
    assert parameters["DomainName"] == "www.example.com"
    assert "AlarmEmail" not in parameters  # left empty: the template's default holds


def test_init_asks_for_desired_count_only_where_autoscaling_does_not_decide_it():
    profiles = load_profiles()

    assert prompted(profiles["dev"]) == ("DesiredCount", "AlarmEmail")
    assert prompted(profiles["prod"]) == ("AlarmEmail",)  # MinTasks..MaxTasks decide


def test_init_on_the_prod_profile_asks_no_desired_count_at_a_terminal(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "infra" / "cloudformation", tmp_path / "infra" / "cloudformation")
    monkeypatch.setattr(cli_module, "_interactive", lambda no_input: True)

    result = CliRunner().invoke(
        cli_module.cli,
        ["--project-dir", str(tmp_path), "init", "qa", "--from-profile", "prod"],
        input="ops@example.com\n\n",  # AlarmEmail, then the runbook link's default
    )

    assert result.exit_code == 0, result.output
    assert "DesiredCount" not in result.stderr
    assert "AlarmEmail" in result.stderr
    written = json.loads((tmp_path / "config" / "qa.json").read_text())["parameters"]
    assert (written["DesiredCount"], written["AlarmEmail"]) == (3, "ops@example.com")
