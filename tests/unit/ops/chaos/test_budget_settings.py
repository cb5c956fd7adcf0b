"""CHAOS_MIN_BUDGET_PERCENT: 25 by default, 0 to 100, a bad value refused naming it."""

from __future__ import annotations

import pytest

from chalicelib.chaos.settings import load_chaos_settings
from chalicelib.errors import SettingsError


def test_the_default_minimum_is_a_quarter_of_the_budget_and_reaches_the_policy() -> None:
    settings = load_chaos_settings({})

    assert settings.min_budget_percent == 25.0
    assert settings.policy(60).min_budget_percent == 25.0


@pytest.mark.parametrize(("raw", "value"), [("0", 0.0), ("100", 100.0), ("12.5", 12.5)])
def test_the_minimum_takes_0_to_100(raw: str, value: float) -> None:
    assert load_chaos_settings({"CHAOS_MIN_BUDGET_PERCENT": raw}).min_budget_percent == value


@pytest.mark.parametrize("raw", ["-1", "100.5", "nan", "inf", "lots"])
def test_a_bad_minimum_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match="CHAOS_MIN_BUDGET_PERCENT"):
        load_chaos_settings({"CHAOS_MIN_BUDGET_PERCENT": raw})
