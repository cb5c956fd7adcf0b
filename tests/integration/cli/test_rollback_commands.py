"""``spotops rollback``, ``freeze`` and ``unfreeze`` on a stage that is not deployed: a clear
error naming the fix, exit 1, nothing written (the full flows run in
tests/e2e/test_rollback_emulator.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.emulator


@pytest.mark.parametrize(
    "args",
    [
        ("rollback", "--yes"),
        ("rollback", "--dry-run", "--to", "v1.0.0"),
        ("freeze", "--reason", "launch"),
        ("unfreeze", "--deploy-latest"),
    ],
)
def test_each_command_on_an_undeployed_stage_says_to_deploy_first(spotops, args) -> None:
    result = spotops(*args)

    assert result.exit_code == 1, result.output
    assert "Stack spotops-dev-site does not exist" in result.output
    assert "spotops deploy --stage dev" in result.output


def test_a_bad_stage_name_is_refused_before_any_call(spotops) -> None:
    result = spotops("rollback", "--stage", "Bad Stage!", "--yes")

    assert result.exit_code == 2
    assert "Bad Stage!" in result.output
