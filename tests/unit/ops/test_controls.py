"""Dry run: ``DRY_RUN`` or the run-time parameter, failing safe when the parameter is unclear."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.controls import Controls, DryRunState, dry_run_state

PARAMETER = "/spotops/dev/dry-run"


class FakeSsm:
    """Just enough of the SSM client for Powertools' ``SSMProvider``; counts the reads."""

    def __init__(self, values: dict[str, str], error: str | None = None) -> None:
        self.values = values
        self.error = error
        self.reads = 0

    def get_parameter(self, *, Name: str, **_: Any) -> dict[str, Any]:
        self.reads += 1
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "GetParameter")
        if Name not in self.values:
            raise ClientError(
                {"Error": {"Code": "ParameterNotFound", "Message": Name}}, "GetParameter"
            )
        return {"Parameter": {"Name": Name, "Value": self.values[Name]}}


def controls(ssm: FakeSsm, *, dry_run: bool = False, parameter: str = PARAMETER) -> Controls:
    return Controls(
        ssm=ssm,
        secretsmanager=object(),
        kill_switch_parameter="/spotops/dev/kill-switch",
        kill_switch_cache_seconds=30,
        dry_run=dry_run,
        dry_run_parameter=parameter,
        webhook_secret_name="spotops/dev/slack-webhook",
        secret_cache_seconds=300,
        stage="dev",
    )


# ---- the pure decision --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", "on", "1", "yes", " ON ", "True"])
def test_parameter_on_values_mean_dry_run(value: str) -> None:
    state = dry_run_state(env_dry_run=False, parameter=PARAMETER, value=value)
    assert state.active
    assert state.reason == f"dry-run parameter {PARAMETER} is {value.strip().lower()!r}"


@pytest.mark.parametrize("value", ["false", "off", "0", "no", " Off "])
def test_parameter_off_values_let_the_job_act(value: str) -> None:
    state = dry_run_state(env_dry_run=False, parameter=PARAMETER, value=value)
    assert not state.active
    assert PARAMETER in state.reason


@pytest.mark.parametrize("value", ["maybe", "", "disabled", "tru", "2"])
def test_unclear_value_fails_safe(value: str) -> None:
    state = dry_run_state(env_dry_run=False, parameter=PARAMETER, value=value)
    assert state.active
    assert state.reason.endswith("failing safe")
    assert repr(value) in state.reason


def test_unclear_value_is_echoed_cut_short() -> None:
    state = dry_run_state(env_dry_run=False, parameter=PARAMETER, value="x" * 500)
    assert state.active
    assert "x" * 41 not in state.reason


def test_read_failure_fails_safe_with_the_reason() -> None:
    state = dry_run_state(env_dry_run=False, parameter=PARAMETER, failure="does not exist")
    assert state == DryRunState(True, f"dry-run parameter {PARAMETER} does not exist; failing safe")


@pytest.mark.parametrize("value", ["false", "off", None])
def test_env_forces_dry_run_whatever_the_parameter_says(value: str | None) -> None:
    state = dry_run_state(env_dry_run=True, parameter=PARAMETER, value=value)
    assert state == DryRunState(True, "DRY_RUN is true (set at deploy)")


def test_without_a_parameter_the_env_alone_decides() -> None:
    assert not dry_run_state(env_dry_run=False, parameter="").active
    assert dry_run_state(env_dry_run=True, parameter="").active


# ---- Controls.dry_run: the read --------------------------------------------------------------


def test_env_dry_run_decides_without_reading_the_parameter() -> None:
    ssm = FakeSsm({PARAMETER: "off"})
    state = controls(ssm, dry_run=True).dry_run()
    assert state.active
    assert "DRY_RUN" in state.reason
    assert ssm.reads == 0


def test_no_parameter_means_no_read() -> None:
    ssm = FakeSsm({})
    assert not controls(ssm, parameter="").dry_run().active
    assert ssm.reads == 0


@pytest.mark.parametrize(("value", "active"), [("on", True), ("off", False), ("maybe", True)])
def test_parameter_value_decides(value: str, active: bool) -> None:
    assert controls(FakeSsm({PARAMETER: value})).dry_run().active is active


def test_missing_parameter_fails_safe() -> None:
    state = controls(FakeSsm({})).dry_run()
    assert state.active
    assert state.reason == f"dry-run parameter {PARAMETER} does not exist; failing safe"


def test_unreadable_parameter_fails_safe_naming_the_error() -> None:
    state = controls(FakeSsm({}, error="AccessDeniedException")).dry_run()
    assert state.active
    assert "is unreadable (AccessDeniedException); failing safe" in state.reason


def test_parameter_read_is_cached_like_the_kill_switch() -> None:
    ssm = FakeSsm({PARAMETER: "on"})
    guard = controls(ssm)
    assert guard.dry_run().active
    ssm.values[PARAMETER] = "off"
    assert guard.dry_run().active  # still cached (KILL_SWITCH_CACHE_SECONDS=30)
    assert ssm.reads == 1
