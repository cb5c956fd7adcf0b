"""``spotops init``'s profiles are the shipped stage files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spotops.stage.profiles import load_profiles, stage_file

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
