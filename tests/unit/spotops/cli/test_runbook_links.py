"""`deploy` and `init` with the runbook link taken from the checkout's git remote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from spotops.cli import main as cli_module
from spotops.stage.config import STACKS
from tests.support.fakes import FakeRunner
from tests.support.templates import TEMPLATES as REAL_TEMPLATES
from tests.unit.spotops.cli.test_main import NETWORK, SITE, FakeDeployer, _review, invoke

# The fixtures, re-exported: the same fake factory and checkout as the other CLI tests.
from tests.unit.spotops.cli.test_main import factory as factory
from tests.unit.spotops.cli.test_main import project as project

FORK = "https://github.com/ana/spotops/blob/trunk/runbooks"
FORK_GIT = {
    ("git", "rev-parse"): (0, "abc123\n", ""),
    ("git", "remote", "get-url"): (0, "git@github.com:ana/spotops.git\n", ""),
    ("git", "symbolic-ref", "--quiet"): (0, "refs/remotes/origin/trunk\n", ""),
}


@pytest.fixture
def forked(factory):
    """A fork's checkout whose site template declares RunbookBaseUrl, as the real one does."""
    site = factory.project_dir / "infra" / "cloudformation" / "site.yaml"
    text = site.read_text()
    site.write_text(
        text.replace(
            "Parameters:\n",
            "Parameters:\n  RunbookBaseUrl: {Type: String, Default: "
            '"https://github.com/spotops/spotops/blob/main/runbooks"}\n',
            1,
        )
    )
    factory.runner = FakeRunner(dict(FORK_GIT))
    factory.deployer.return_value = FakeDeployer(
        {NETWORK: _review(NETWORK, up_to_date=True), SITE: _review(SITE)}
    )
    return factory


def _git_asked(factory) -> bool:
    return any(call.args[:2] == ["git", "remote"] for call in factory.runner.calls)


def test_deploy_links_the_runbooks_of_the_forks_own_remote(forked):
    result = invoke(forked, "deploy")

    assert result.exit_code == 0, result.output
    assert forked.deployer.return_value.reviews[SITE].parameters["RunbookBaseUrl"] == FORK
    assert f"Runbook links: {FORK}, from git remote origin" in result.stderr


def test_deploy_keeps_the_stage_configs_runbook_url_and_does_not_ask_git(forked):
    own = "https://runbooks.example.com/spotops"
    config = forked.project_dir / "config" / "dev.json"
    config.write_text(json.dumps({"parameters": {"RunbookBaseUrl": own}}))

    result = invoke(forked, "deploy")

    assert result.exit_code == 0, result.output
    assert forked.deployer.return_value.reviews[SITE].parameters["RunbookBaseUrl"] == own
    assert not _git_asked(forked)
    assert "Runbook links" not in result.stderr


def test_deploy_param_wins_over_the_remote_too(forked):
    own = "https://runbooks.example.com/spotops"

    result = invoke(forked, "deploy", "--param", f"RunbookBaseUrl={own}")

    assert result.exit_code == 0, result.output
    assert forked.deployer.return_value.reviews[SITE].parameters["RunbookBaseUrl"] == own


def test_deploy_without_a_remote_keeps_the_template_default_and_says_so_once(forked):
    forked.runner = FakeRunner(
        {("git", "remote", "get-url"): (2, "", "error: No such remote 'origin'\n")}
    )

    result = invoke(forked, "deploy")

    assert result.exit_code == 0, result.output
    assert "RunbookBaseUrl" not in forked.deployer.return_value.reviews[SITE].parameters
    assert result.stderr.count("no git remote 'origin'") == 1


@pytest.fixture
def real_templates(factory):
    """The profiles set parameters only the real templates declare."""
    infra = factory.project_dir / "infra" / "cloudformation"
    for name in ("network", "site", "ops"):
        shutil.copy(REAL_TEMPLATES / f"{name}.yaml", infra / f"{name}.yaml")
    factory.stack_specs.return_value = STACKS
    factory.runner = FakeRunner(dict(FORK_GIT))
    return factory


def _written(factory, stage: str = "qa") -> dict[str, object]:
    path: Path = factory.project_dir / "config" / f"{stage}.json"
    return json.loads(path.read_text())["parameters"]


def test_init_shows_the_default_and_leaves_it_to_the_remote(real_templates):
    result = invoke(real_templates, "init", "qa", "--from-profile", "dev", "--no-input")

    assert result.exit_code == 0, result.output
    assert f"Runbook links: {FORK}" in result.stderr
    assert "config/qa.json" in result.stderr
    assert "RunbookBaseUrl" not in _written(real_templates)


def test_init_param_sets_the_runbook_url_without_asking_git(real_templates):
    own = "https://runbooks.example.com/spotops"

    result = invoke(
        real_templates, "init", "qa", "--from-profile", "dev", "--param", f"RunbookBaseUrl={own}"
    )

    assert result.exit_code == 0, result.output
    assert _written(real_templates)["RunbookBaseUrl"] == own
    assert not _git_asked(real_templates)


def test_init_on_a_terminal_asks_for_the_runbook_url(real_templates, monkeypatch):
    monkeypatch.setattr(cli_module, "_interactive", lambda no_input: True)
    own = "https://runbooks.example.com/spotops"

    kept = invoke(real_templates, "init", "qa", input="dev\n2\n\n\n")
    set_ = invoke(real_templates, "init", "qb", input=f"dev\n2\n\n{own}\n")

    assert kept.exit_code == 0, kept.output
    assert "RunbookBaseUrl" not in _written(real_templates, "qa")
    assert set_.exit_code == 0, set_.output
    assert _written(real_templates, "qb")["RunbookBaseUrl"] == own


def test_init_refuses_a_runbook_url_the_templates_refuse_and_writes_nothing(real_templates):
    result = invoke(
        real_templates,
        "init",
        "qa",
        "--from-profile",
        "dev",
        "--param",
        "RunbookBaseUrl=https://runbooks.example.com/spotops/",
    )

    assert result.exit_code == 2
    assert "without a trailing slash" in result.stderr
    assert not (real_templates.project_dir / "config" / "qa.json").exists()
