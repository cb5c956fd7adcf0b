"""Stage configuration, --param overrides and the parameters each stack receives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spotops.errors import ConfigError, ParameterError, UsageError
from spotops.stage.config import STACKS, load_stage_config, parse_overrides
from spotops.stage.deploy import ordered_outputs, plan_stacks, stack_parameters
from spotops.stage.templates import TemplateParameter, select_parameters
from tests.support.templates import CLI_FIXTURE_TEMPLATES

ROOT = Path(__file__).resolve().parents[4]
# The fixture templates are the network and site stacks; the ops stack is tested on its own.
SITE_STACKS = tuple(spec for spec in STACKS if not spec.packaged)
FIXTURES = CLI_FIXTURE_TEMPLATES


def _project(tmp_path: Path, parameters: dict, templates: Path = FIXTURES) -> Path:
    infra = tmp_path / "infra" / "cloudformation"
    infra.mkdir(parents=True)
    for template in templates.glob("*.yaml"):
        (infra / template.name).write_text(template.read_text())
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "dev.json").write_text(json.dumps({"parameters": parameters}))
    return tmp_path


def test_can_parse_overrides_keeping_empty_values_and_equals_signs():
    assert parse_overrides(["DesiredCount=3", "DomainName=", "RunbookBaseUrl=https://x/?a=b"]) == {
        "DesiredCount": "3",
        "DomainName": "",
        "RunbookBaseUrl": "https://x/?a=b",
    }


@pytest.mark.parametrize("bad", ["DesiredCount", "=3", "Desired Count=3", "1Key=2"])
def test_error_if_an_override_is_not_key_value(bad):
    with pytest.raises(UsageError, match="Key=Value") as caught:
        parse_overrides([bad])
    assert caught.value.exit_code == 2


def test_error_if_stage_name_is_passed_as_a_parameter():
    with pytest.raises(UsageError, match="--stage"):
        parse_overrides(["StageName=prod"])


def test_stage_config_fills_app_and_stage_and_writes_booleans_as_cloudformation_does(tmp_path):
    project = _project(tmp_path, {"EnableAutoScaling": False, "DesiredCount": 2})

    config = load_stage_config(project, "dev")

    assert config.parameters == {
        "EnableAutoScaling": "false",
        "DesiredCount": "2",
        "AppName": "spotops",
        "StageName": "dev",
    }


def test_overrides_win_over_the_file(tmp_path):
    config = load_stage_config(_project(tmp_path, {"DesiredCount": 2}), "dev")

    assert config.with_overrides({"DesiredCount": "5"}).parameters["DesiredCount"] == "5"


def test_error_if_the_stage_has_no_file_lists_known_stages(tmp_path):
    project = _project(tmp_path, {})

    with pytest.raises(ConfigError, match=r"Known stages: dev"):
        load_stage_config(project, "qa")


def test_error_if_the_file_names_another_stage(tmp_path):
    project = _project(tmp_path, {"StageName": "prod"})

    with pytest.raises(ConfigError, match="remove StageName"):
        load_stage_config(project, "dev")


def test_error_if_a_parameter_is_declared_by_no_template(tmp_path):
    project = _project(tmp_path, {"DesiredCont": 2})

    with pytest.raises(UsageError, match="No template declares DesiredCont"):
        plan_stacks(project, SITE_STACKS, load_stage_config(project, "dev"))


def test_each_stack_gets_only_its_parameters_plus_stack_names_and_image(tmp_path):
    project = _project(tmp_path, {"NatMode": "single", "DesiredCount": 3})
    plans = plan_stacks(project, SITE_STACKS, load_stage_config(project, "dev"))
    values = load_stage_config(project, "dev").parameters

    network = stack_parameters(plans[0], plans, values, image_uri="ignored")
    site = stack_parameters(plans[1], plans, values, image_uri="repo@sha256:abc")

    assert network == {"AppName": "spotops", "StageName": "dev", "NatMode": "single"}
    assert site == {
        "AppName": "spotops",
        "StageName": "dev",
        "DesiredCount": "3",
        "NetworkStackName": "spotops-dev-network",
        "ImageUri": "repo@sha256:abc",
    }


@pytest.mark.parametrize(
    ("parameter", "value", "message"),
    [
        (TemplateParameter("NatMode", allowed_values=("none", "single")), "many", "must be one of"),
        (TemplateParameter("DesiredCount", type="Number", max_value=100), "101", "at most 100"),
        (TemplateParameter("DesiredCount", type="Number"), "two", "must be a number"),
        (TemplateParameter("StageName", allowed_pattern="^[a-z]{2,12}$"), "Dev", "must match"),
    ],
)
def test_error_if_the_template_refuses_a_value(parameter, value, message):
    with pytest.raises(ParameterError, match=message) as caught:
        select_parameters({parameter.name: parameter}, {parameter.name: value}, "stack")
    assert caught.value.exit_code == 2


def test_error_if_a_required_parameter_has_no_value():
    with pytest.raises(ParameterError, match="NetworkStackName has no default and no value"):
        select_parameters({"NetworkStackName": TemplateParameter("NetworkStackName")}, {}, "site")


def test_site_url_is_the_last_output_row():
    rows = ordered_outputs(
        {"net": {"VpcId": "vpc-1"}, "site": {"SiteUrl": "http://x", "ClusterName": "c"}}
    )

    assert rows == [
        ("net", "VpcId", "vpc-1"),
        ("site", "ClusterName", "c"),
        ("site", "SiteUrl", "http://x"),
    ]


@pytest.mark.parametrize("stage", ["dev", "seed", "prod"])
def test_shipped_stage_files_fit_the_real_templates(stage):
    config = load_stage_config(ROOT, stage)

    plans = plan_stacks(ROOT, STACKS, config)

    assert [plan.name for plan in plans] == [
        f"spotops-{stage}-network",
        f"spotops-{stage}-site",
        f"spotops-{stage}-ops",
    ]
