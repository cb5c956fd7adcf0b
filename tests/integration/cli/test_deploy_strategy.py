"""``spotops deploy`` with the real network and site templates and DeploymentStrategy, against
the moto server: a CANARY stage deploys, and going back to ROLLING on the live stage is
refused before any change set. moto itself would let that update through and delete the
production listener rule; AWS would too (with the site down after an odd number of
deployments)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.templates import TEMPLATES

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning"),
]

SITE = "spotops-dev-site"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A checkout with the real network and site templates and a CANARY stage file."""
    infra = tmp_path / "infra" / "cloudformation"
    infra.mkdir(parents=True)
    for name in ("bootstrap", "network", "site"):
        shutil.copy(TEMPLATES / f"{name}.yaml", infra)
    (tmp_path / "config").mkdir()
    stage = {
        "description": "a CANARY stage",
        "parameters": {"ZoneCount": "2", "DeploymentStrategy": "CANARY"},
        "estimate": {},
    }
    (tmp_path / "config" / "dev.json").write_text(json.dumps(stage))
    return tmp_path


def _change_sets(cfn) -> list[dict]:
    return cfn.list_change_sets(StackName=SITE)["Summaries"]


def test_a_live_canary_stage_cannot_go_back_to_rolling(spotops, aws):
    deployed = spotops("deploy", "--yes")
    assert deployed.exit_code == 0, deployed.output
    cfn = aws("cloudformation")
    site = cfn.describe_stacks(StackName=SITE)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in site["Parameters"]}
    assert parameters["DeploymentStrategy"] == "CANARY"
    change_sets = _change_sets(cfn)

    refused = spotops("deploy", "--yes", "--param", "DeploymentStrategy=ROLLING")

    assert refused.exit_code == 2, refused.output
    assert "DeploymentStrategy 'CANARY' -> 'ROLLING' on live stack spotops-dev-site" in (
        refused.stderr
    )
    assert "alternate target group" in refused.stderr
    site = cfn.describe_stacks(StackName=SITE)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in site["Parameters"]}
    assert parameters["DeploymentStrategy"] == "CANARY"
    assert site["StackStatus"] == "CREATE_COMPLETE"
    assert _change_sets(cfn) == change_sets  # none was made for the refused deploy

    # CANARY to LINEAR keeps the rules and goes through.
    switched = spotops("deploy", "--yes", "--param", "DeploymentStrategy=LINEAR")
    assert switched.exit_code == 0, switched.output
