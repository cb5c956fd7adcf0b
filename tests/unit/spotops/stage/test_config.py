"""Stage configuration, --param overrides and the parameters each stack receives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spotops.errors import ConfigError, ParameterError, UsageError
from spotops.stage.checks import fractional_counts
from spotops.stage.config import STACKS, load_stage_config, parse_overrides, schema_problems
from spotops.stage.deploy import ordered_outputs, plan_stacks, stack_parameters
from spotops.stage.profiles import load_profiles
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


# ---- the stage file's schema (issue 25, item 4) ------------------------------------------


def _write(project: Path, content: bytes | str) -> None:
    data = content.encode() if isinstance(content, str) else content
    (project / "config" / "dev.json").write_bytes(data)


@pytest.mark.parametrize(
    ("content", "facts"),
    [
        (
            {"params": {"DesiredCount": 1}},
            ["unknown key 'params' in config/dev.json: did you mean 'parameters'?"],
        ),
        ({"estimat": {}}, ["unknown key 'estimat'", "did you mean 'estimate'?"]),
        ({"zones": 2}, ["unknown key 'zones'", "valid keys are description, estimate, parameters"]),
        ({"parameters": ["DesiredCount"]}, ["'parameters' in config/dev.json must be an object"]),
        (
            {"parameters": {"DesiredCount": {"value": 1}}},
            ["'parameters.DesiredCount' in config/dev.json must be", "not an object"],
        ),
        (
            {"estimate": {"alb_lcu": "two"}},
            ["'estimate.alb_lcu' in config/dev.json must be a number, not a string"],
        ),
        ({"description": 3}, ["'description' in config/dev.json must be a string"]),
        ([], ["config/dev.json must be an object, not a list"]),
        ({"parameters": {"Desired Count": 1}}, ["'Desired Count' under 'parameters'"]),
    ],
)
def test_error_if_the_stage_file_breaks_the_schema(tmp_path, content, facts):
    project = _project(tmp_path, {})
    _write(project, json.dumps(content))

    with pytest.raises(ConfigError) as caught:
        load_stage_config(project, "dev")

    assert caught.value.exit_code == 2
    for fact in facts:
        assert fact in str(caught.value)
    assert str(caught.value).endswith("Nothing was changed.")


def test_every_schema_problem_is_named_at_once(tmp_path):
    project = _project(tmp_path, {})
    _write(project, json.dumps({"params": {}, "estimate": {"alb_lcu": "x"}}))

    with pytest.raises(ConfigError) as caught:
        load_stage_config(project, "dev")

    assert "unknown key 'params'" in str(caught.value)
    assert "'estimate.alb_lcu'" in str(caught.value)


def test_error_if_the_stage_file_is_not_utf8_names_the_file_and_byte(tmp_path):
    project = _project(tmp_path, {})
    _write(project, b'{"description": "caf\xe9"}')

    with pytest.raises(ConfigError) as caught:
        load_stage_config(project, "dev")

    assert caught.value.exit_code == 2
    assert "config/dev.json is not UTF-8 text (byte 0xe9 at offset 20)" in str(caught.value)


def test_error_if_the_stage_file_is_not_json_names_the_file_and_line(tmp_path):
    project = _project(tmp_path, {})
    _write(project, '{\n  "parameters": {"DesiredCount": 1,}\n}')

    with pytest.raises(ConfigError) as caught:
        load_stage_config(project, "dev")

    assert caught.value.exit_code == 2
    assert "config/dev.json is not valid JSON" in str(caught.value)
    assert "line 2" in str(caught.value)


def test_a_byte_order_mark_is_not_an_error(tmp_path):
    project = _project(tmp_path, {})
    _write(project, b"\xef\xbb\xbf" + json.dumps({"parameters": {"DesiredCount": 2}}).encode())

    assert load_stage_config(project, "dev").parameters["DesiredCount"] == "2"


def test_the_missing_stage_error_says_how_to_create_it(tmp_path):
    project = _project(tmp_path, {})

    with pytest.raises(ConfigError) as caught:
        load_stage_config(project, "qa")

    assert "config/qa.json does not exist" in str(caught.value)
    assert "`spotops init qa`" in str(caught.value)
    assert "Copy" not in str(caught.value)


def test_a_misspelled_parameter_names_the_nearest_one(tmp_path):
    project = _project(tmp_path, {"DesiredCont": 2})

    with pytest.raises(UsageError, match="Did you mean: DesiredCont -> DesiredCount"):
        plan_stacks(project, SITE_STACKS, load_stage_config(project, "dev"))


@pytest.mark.parametrize("stage", ["dev", "seed", "prod"])
def test_shipped_stage_files_and_profiles_fit_the_schema(stage):
    assert schema_problems(json.loads((ROOT / "config" / f"{stage}.json").read_text()), "x") == []
    assert schema_problems(load_profiles()[stage], "x") == []


# ---- counts are whole numbers, from the file and from --param alike ------------------------


@pytest.mark.parametrize("source", ["file", "param"])
def test_error_if_a_count_is_a_fraction_from_the_file_or_from_param(tmp_path, source):
    project = _project(tmp_path, {"DesiredCount": 1.5} if source == "file" else {})
    config = load_stage_config(project, "dev")
    if source == "param":
        config = config.with_overrides(parse_overrides(["DesiredCount=1.5"]))

    with pytest.raises(ParameterError) as caught:
        plan_stacks(project, SITE_STACKS, config)

    assert caught.value.exit_code == 2
    assert "DesiredCount '1.5' is not a whole number" in str(caught.value)
    assert "e.g. 1 or 2" in str(caught.value)


def test_whole_counts_pass_and_fractions_are_refused_by_name():
    assert fractional_counts({"DesiredCount": "2", "MinTasks": "0", "CanaryPercent": "0.5"}) == []
    assert [p.split()[0] for p in fractional_counts({"MaxTasks": "2.0", "SpotWeight": "0.5"})] == [
        "MaxTasks",
        "SpotWeight",
    ]


def test_cost_on_a_misspelled_key_exits_2_naming_it_without_a_traceback(tmp_path):
    project = _project(tmp_path, {})
    _write(project, json.dumps({"params": {"DesiredCount": 1}}))

    finished = subprocess.run(
        [sys.executable, "-m", "spotops", "--project-dir", str(project), "cost"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 2
    assert "did you mean 'parameters'?" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert finished.stdout == ""  # no estimate of the templates' defaults
