"""`init --from-profile` names the stage profile; `--profile` stays the AWS profile's name
everywhere else, and on `init` still works for a while, with a warning."""

from __future__ import annotations

import json
import shutil

import pytest

from spotops.stage.config import STACKS
from tests.support.templates import TEMPLATES as REAL_TEMPLATES

# The fixtures, re-exported: the same fake factory and checkout as the other CLI tests.
from tests.unit.spotops.cli.test_main import factory as factory
from tests.unit.spotops.cli.test_main import invoke
from tests.unit.spotops.cli.test_main import project as project


@pytest.fixture
def real_templates(factory):
    """The profiles set parameters only the real templates declare."""
    infra = factory.project_dir / "infra" / "cloudformation"
    for name in ("network", "site", "ops"):
        shutil.copy(REAL_TEMPLATES / f"{name}.yaml", infra / f"{name}.yaml")
    factory.stack_specs.return_value = STACKS
    return factory


def _nat_mode(factory) -> str:
    path = factory.project_dir / "config" / "qa.json"
    return json.loads(path.read_text())["parameters"]["NatMode"]


def test_from_profile_writes_that_profile_without_a_warning(real_templates):
    result = invoke(real_templates, "init", "qa", "--from-profile", "prod", "--no-input")

    assert result.exit_code == 0, result.output
    assert _nat_mode(real_templates) == "per-az"  # the prod profile, not the default dev
    assert "--profile" not in result.stderr


def test_the_old_profile_option_still_works_and_warns(real_templates):
    result = invoke(real_templates, "init", "qa", "--profile", "prod", "--no-input")

    assert result.exit_code == 0, result.output
    assert _nat_mode(real_templates) == "per-az"
    assert "init --profile is now --from-profile prod" in result.stderr


def test_both_names_at_once_are_refused_and_nothing_is_written(real_templates):
    result = invoke(
        real_templates, "init", "qa", "--profile", "prod", "--from-profile", "dev", "--no-input"
    )

    assert result.exit_code == 2
    assert "--from-profile" in result.stderr
    assert not (real_templates.project_dir / "config" / "qa.json").exists()


def test_an_aws_profile_name_given_to_init_says_where_the_aws_profile_goes(real_templates):
    result = invoke(real_templates, "init", "qa", "--from-profile", "my-sso", "--no-input")

    assert result.exit_code == 2
    assert "Unknown stage profile 'my-sso'; choose one of dev, prod, seed." in result.stderr
    assert "spotops --profile NAME init qa" in result.stderr


def test_init_help_shows_from_profile_and_not_the_old_name(factory):
    result = invoke(factory, "init", "--help")

    assert "--from-profile" in result.stdout
    assert "--profile" not in result.stdout.replace("--from-profile", "")
