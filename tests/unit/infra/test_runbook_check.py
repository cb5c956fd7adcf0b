"""make lint's runbook check: passes on the repository, and catches what it is for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.runbook_check import (
    NOT_RUNBOOKS,
    check,
    code_lines,
    command_problem,
    main,
    relative_links,
    spotops_commands,
)
from spotops.cli.main import cli

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """What the check reads, copied: templates, runbooks, the actions' runbook names."""
    for folder in ("runbooks", "infra/cloudformation"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    actions = tmp_path / "ops_lambdas" / "chalicelib"
    actions.mkdir(parents=True)
    shutil.copy(ROOT / "ops_lambdas" / "chalicelib" / "runbooks.py", actions / "runbooks.py")
    return tmp_path


def test_the_repository_passes(capsys: pytest.CaptureFixture[str]) -> None:
    report = check(ROOT)
    assert report.problems == []
    assert len(report.alarms) >= 11  # the seed's 8, network, the two dead-letter alarms
    assert all(report.alarms.values())
    assert {"spot-interruption.md", "capacity-shift.md"} <= report.actions
    assert main(["--root", str(ROOT)]) == 0
    assert "0 problems" in capsys.readouterr().err


def test_a_broken_relative_link_is_caught(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = repo / "runbooks" / "cpu-high.md"
    page.write_text(page.read_text() + "\nSee [the old page](memory-hihg.md) too.\n")

    report = check(repo)

    lines = len(page.read_text().splitlines())
    assert report.problems == [f"{page}:{lines}: broken link to memory-hihg.md"]
    assert main(["--root", str(repo)]) == 1
    assert "broken link to memory-hihg.md" in capsys.readouterr().err


def test_a_broken_link_to_a_file_outside_runbooks_is_caught(repo: Path) -> None:
    page = repo / "runbooks" / "capacity-shift.md"
    page.write_text(page.read_text() + "\n[code](../ops_lambdas/chalicelib/nope.py#L3)\n")
    assert [p for p in check(repo).problems if "nope.py" in p]


def test_a_runbook_no_alarm_or_action_links_is_caught(repo: Path) -> None:
    orphan = repo / "runbooks" / "orphan.md"
    orphan.write_text("# orphan\n")
    (problem,) = check(repo).problems
    assert problem.startswith(f"{orphan}: no alarm and no action links it")


def test_an_alarm_without_a_runbook_or_with_a_missing_one_is_caught(repo: Path) -> None:
    (repo / "runbooks" / "network-anomaly.md").unlink()
    site = repo / "infra" / "cloudformation" / "site.yaml"
    text = site.read_text().replace(
        "for 5 minutes. Runbook: ${RunbookBaseUrl}/cpu-high.md", "for 5 minutes."
    )
    site.write_text(text)

    problems = check(repo).problems

    assert any("alarm CpuHighAlarm has no 'Runbook:" in p for p in problems)
    assert any(
        "NetworkAnomalyAlarm links runbooks/network-anomaly.md, which is missing" in p
        for p in problems
    )
    assert any(p.startswith(f"{repo / 'runbooks' / 'cpu-high.md'}: no alarm") for p in problems)


def test_an_action_runbook_that_does_not_exist_is_caught(repo: Path) -> None:
    (repo / "runbooks" / "spot-interruption.md").unlink()
    problems = check(repo).problems
    assert any("action runbook runbooks/spot-interruption.md is missing" in p for p in problems)


def test_links_in_code_urls_and_anchors_are_not_checked() -> None:
    text = "\n".join(
        [
            "[ok](cpu-high.md#diagnosis) and [web](https://example.com/x.md) [mail](mailto:a@b)",
            "`[not a link](missing.md)` and [here](#meaning)",
            "```sh",
            "echo '[also not](missing.md)'",
            "```",
            "[real](missing.md)",
        ]
    )
    assert list(relative_links(text)) == [(1, "cpu-high.md#diagnosis"), (6, "missing.md")]


def test_the_pages_that_are_not_runbooks_exist() -> None:
    for name in NOT_RUNBOOKS:
        assert (ROOT / "runbooks" / name).is_file()


# ---- what on-call types: spotops commands, the stage, no TODO ------------------------------

FIXTURES = Path(__file__).parent / "runbook_fixtures"


def test_a_bad_runbook_fails_with_one_line_per_mistake(repo: Path) -> None:
    page = repo / "runbooks" / "cpu-high.md"
    shutil.copy(FIXTURES / "bad.md", page)

    problems = [p.removeprefix(f"{page}:") for p in check(repo).problems]

    assert problems == [
        "25: TODO in a runbook: write the step, or say who decides",
        "8: STAGE is used before the check that refuses an unset one; start with "
        ': "${STAGE:?set STAGE to the stage in trouble, e.g. export STAGE=prod}" '
        "instead of a hard-coded export STAGE=",
        "13: `spotops` has no command 'dead-letter' (it has: "
        + ", ".join(sorted(cli.commands))
        + ")",
        "15: `spotops logs` has no option --tail",
        "18: `spotops dead-letters list --queue` takes slack, events, not 'sns'",
        "21: `spotops kill-switch --stage` needs a value",
    ]
    assert main(["--root", str(repo)]) == 1


def test_what_only_looks_like_a_command_or_a_stage_is_not_flagged(repo: Path) -> None:
    shutil.copy(FIXTURES / "good.md", repo / "runbooks" / "cpu-high.md")
    assert check(repo).problems == []


def test_the_real_runbooks_guard_the_stage_and_use_only_existing_commands() -> None:
    pages = sorted((ROOT / "runbooks").glob("*.md"))
    guarded = [p.name for p in pages if ': "${STAGE:?' in p.read_text()]
    assert len(guarded) >= 20  # every page with commands, TEMPLATE.md included
    assert not [p.name for p in pages if "export APP=spotops STAGE=" in p.read_text()]
    used = {
        " ".join(arguments[:2])
        for page in pages
        for _, code in code_lines(page.read_text())
        for arguments in spotops_commands(code)
    }
    assert {"dead-letters list", "dead-letters replay", "dead-letters purge"} <= used
    assert any(u.startswith("logs") for u in used)


def test_global_options_and_case_insensitive_choices_are_understood() -> None:
    assert command_problem(cli, ["--profile", "ops", "status", "--stage", "prod"]) is None
    assert command_problem(cli, ["dead-letters", "purge", "--queue", "EVENTS", "--yes"]) is None
    assert command_problem(cli, ["status", "extra"]) == "`spotops status` takes no argument 'extra'"


def test_the_fallback_for_an_unbalanced_quote_still_finds_the_command() -> None:
    assert list(spotops_commands("spotops status --stage $STAGE 'oops")) == [
        ["status", "--stage", "$STAGE", "'oops"]
    ]
