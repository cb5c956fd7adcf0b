"""The default runbook link: derived from the checkout's git remote, below the stage's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from spotops.stage.config import StageConfig
from spotops.stage.deploy import StageDeployment
from spotops.stage.runbook_url import (
    GitOrigin,
    github_runbook_url,
    read_git_origin,
    runbook_default,
)
from tests.support.fakes import FakeRunner
from tests.unit.spotops.stage.test_deployment import (
    BOOTSTRAP,
    DEPLOYED_BOOTSTRAP,
    SITE,
    SITE_STACKS,
    FakeIam,
    FakeImages,
    FakeS3,
    FakeStacks,
    Progress,
)

# The fixture, re-exported: the same checkout of the real templates.
from tests.unit.spotops.stage.test_deployment import project as project

FORK = "https://github.com/ana/spotops/blob/main/runbooks"


@pytest.mark.parametrize(
    "remote",
    [
        "https://github.com/ana/spotops.git",
        "https://github.com/ana/spotops",
        "https://github.com/ana/spotops/",
        "http://github.com/ana/spotops.git",
        "https://ana:secret-token@github.com/ana/spotops.git",  # pragma: allowlist secret
        "https://www.github.com/ana/spotops.git",
        "git@github.com:ana/spotops.git",
        "git@github.com:ana/spotops",
        "github.com:ana/spotops.git",
        "ssh://git@github.com/ana/spotops.git",
        "ssh://git@github.com:22/ana/spotops.git",
        "git://github.com/ana/spotops.git",
        "  https://GitHub.com/ana/spotops.git\n",
    ],
)
def test_every_form_of_a_github_remote_gives_its_runbooks_folder(remote):
    assert github_runbook_url(remote, "main") == FORK


def test_the_repository_name_and_branch_are_kept_as_they_are():
    assert (
        github_runbook_url("git@github.com:Ana-B/my.spot_ops.git", "release/2026")
        == "https://github.com/Ana-B/my.spot_ops/blob/release/2026/runbooks"
    )


@pytest.mark.parametrize(
    "remote",
    [
        "",
        "https://gitlab.com/ana/spotops.git",
        "git@gitlab.com:ana/spotops.git",
        "https://github.example.com/ana/spotops.git",  # GitHub Enterprise: its own URL scheme
        "https://notgithub.com/ana/spotops.git",
        "https://github.com/ana",  # no repository
        "/srv/git/spotops.git",
        "file:///srv/git/spotops.git",
    ],
)
def test_any_other_remote_gives_no_url(remote):
    assert github_runbook_url(remote, "main") == ""


def test_the_default_branch_comes_from_origin_head():
    found = runbook_default(
        GitOrigin("git@github.com:ana/spotops.git", "refs/remotes/origin/trunk"), "qa"
    )

    assert found.url == "https://github.com/ana/spotops/blob/trunk/runbooks"
    assert found.url in found.note
    assert "config/qa.json" in found.note


def test_without_origin_head_main_is_assumed_and_the_note_says_so():
    found = runbook_default(GitOrigin("git@github.com:ana/spotops.git", ""), "dev")

    assert found.url == FORK
    assert "branch main assumed" in found.note


def test_no_remote_keeps_the_template_default_and_says_why():
    found = runbook_default(GitOrigin(), "dev")

    assert found.url == ""
    assert "no git remote 'origin'" in found.note
    assert "config/dev.json" in found.note


def test_a_remote_elsewhere_keeps_the_template_default_without_echoing_the_remote():
    found = runbook_default(GitOrigin("https://ana:tok@gitlab.com/ana/spotops.git", ""), "dev")

    assert found.url == ""
    assert "not on github.com" in found.note
    assert "tok" not in found.note


def test_git_is_asked_for_origin_and_its_head_in_the_checkout(tmp_path: Path):
    runner = FakeRunner(
        {
            ("git", "remote", "get-url"): (0, "git@github.com:ana/spotops.git\n", ""),
            ("git", "symbolic-ref", "--quiet"): (0, "refs/remotes/origin/main\n", ""),
        }
    )

    origin = read_git_origin(runner, tmp_path)

    assert origin == GitOrigin("git@github.com:ana/spotops.git", "refs/remotes/origin/main")
    assert {call.cwd for call in runner.calls} == {tmp_path}


def test_no_remote_or_no_repository_reads_as_no_origin(tmp_path: Path):
    runner = FakeRunner({("git", "remote", "get-url"): (2, "", "error: No such remote 'origin'\n")})

    assert read_git_origin(runner, tmp_path) == GitOrigin()
    assert len(runner.calls) == 1  # no second question without a remote


def test_an_unset_origin_head_leaves_the_branch_unknown(tmp_path: Path):
    runner = FakeRunner(
        {
            ("git", "remote", "get-url"): (0, "https://github.com/ana/spotops\n", ""),
            ("git", "symbolic-ref", "--quiet"): (1, "", ""),
        }
    )

    assert read_git_origin(runner, tmp_path) == GitOrigin("https://github.com/ana/spotops", "")


def _deploy(project: Path, parameters: dict[str, str], defaults: dict[str, str]) -> FakeStacks:
    stacks = FakeStacks({})
    stacks.existing[BOOTSTRAP] = DEPLOYED_BOOTSTRAP
    StageDeployment(
        project,
        SITE_STACKS,
        stacks=stacks,  # type: ignore[arg-type]
        images=FakeImages(),  # type: ignore[arg-type]
        ops_builder=lambda: None,
        iam=FakeIam(),
        s3=FakeS3(),
        region="us-east-1",
        progress=Progress(),
        parameter_defaults=defaults,
    ).run(
        StageConfig("dev", {"AppName": "spotops", "StageName": "dev", **parameters}),
        image=None,
        yes=True,
    )
    return stacks


def test_deploy_passes_the_default_to_the_stacks_that_declare_it(project):
    stacks = _deploy(project, {}, {"RunbookBaseUrl": FORK})

    assert stacks.parameters[SITE]["RunbookBaseUrl"] == FORK
    assert "RunbookBaseUrl" not in stacks.parameters["spotops-dev-network"]


def test_the_stage_config_wins_over_the_default(project):
    own = "https://runbooks.example.com/spotops"

    stacks = _deploy(project, {"RunbookBaseUrl": own}, {"RunbookBaseUrl": FORK})

    assert stacks.parameters[SITE]["RunbookBaseUrl"] == own
