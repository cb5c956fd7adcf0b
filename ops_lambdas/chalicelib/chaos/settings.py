"""The chaos job's own settings (``CHAOS_*``), parsed here with the readers of
:mod:`chalicelib.settings`; the toolkit adds them to the shared settings as ``chaos``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.chaos.guards import (
    MAX_HOURS,
    ChaosPolicy,
    FreezePeriod,
    Window,
    parse_days,
    parse_freeze,
    parse_hours,
    time_zone,
)
from chalicelib.errors import SettingsError
from chalicelib.settings import env_float, env_int, env_parsed

# Only the chaos_tick function gets these variables; every one is optional.

# The chaos function's Lambda timeout (ops.yaml) is 900 s; the recovery watch must end before
# it, with room to record and report.
CHAOS_MAX_RECOVERY_SECONDS = 840


@dataclass(frozen=True)
class ChaosSettings:
    """The chaos job's settings (``CHAOS_*``); ``README.md`` documents each one.

    Every field has a default, so the other functions, which do not get these variables,
    load their settings unchanged.

    Attributes
    ----------
    leash_parameter:
        ``CHAOS_LEASH_PARAMETER``: SSM parameter read on every run; only ``off`` unleashes
        (kills for real). Empty, missing, unreadable or anything else: leashed.
    window, freeze:
        ``CHAOS_WINDOW_DAYS`` (``mon-fri``), ``CHAOS_WINDOW_HOURS`` (``9-17``: from 09:00 up
        to 17:00), ``CHAOS_TIME_ZONE`` (``UTC``) and ``CHAOS_FREEZE_DATES`` (``YYYY-MM-DD``
        or ``YYYY-MM-DD..YYYY-MM-DD``, comma separated; none by default).
    mtbk_hours, min_gap_hours:
        ``CHAOS_MTBK_HOURS`` (16: mean window hours between kills of a service) and
        ``CHAOS_MIN_GAP_HOURS`` (4); a service's tags may set its own.
    min_budget_percent:
        ``CHAOS_MIN_BUDGET_PERCENT`` (25): chaos refuses while any service level objective
        has less than this share of its error budget left (exactly this much is enough), or
        while a budget cannot be read; 0 turns that guard off.
    recovery_timeout_seconds, poll_seconds:
        ``CHAOS_RECOVERY_TIMEOUT_SECONDS`` (600; at most 840, inside the function's 900 s):
        a kill not recovered by then is a failed experiment. ``CHAOS_POLL_SECONDS`` (10): how
        often recovery is checked.
    """

    leash_parameter: str = ""
    window: Window = field(default_factory=Window)
    freeze: tuple[FreezePeriod, ...] = ()
    mtbk_hours: float = 16.0
    min_gap_hours: float = 4.0
    recovery_timeout_seconds: int = 600
    poll_seconds: int = 10
    min_budget_percent: float = 25.0

    def policy(self, tick_minutes: int) -> ChaosPolicy:
        """The pure guards' view of these settings, for a schedule every ``tick_minutes``."""
        return ChaosPolicy(
            window=self.window,
            freeze=self.freeze,
            mtbk_hours=self.mtbk_hours,
            min_gap_hours=self.min_gap_hours,
            tick_minutes=tick_minutes,
            min_budget_percent=self.min_budget_percent,
        )


def _hours(env: Mapping[str, str], name: str, default: float, *, zero: bool = False) -> float:
    value = env_float(env, name, default)
    if not (value >= 0 if zero else value > 0) or value > MAX_HOURS:
        least = "0 or more" if zero else "more than 0"
        raise SettingsError(f"{name} must be {least} and at most a year of hours, got {value}")
    return value


def load_chaos_settings(env: Mapping[str, str]) -> ChaosSettings:
    """Read and validate the ``CHAOS_*`` settings; an absent one takes its default.

    Raises
    ------
    SettingsError
        When a variable is present but bad; the message names the variable.

    Example
    -------
    >>> load_chaos_settings({"CHAOS_WINDOW_HOURS": "10-16"}).window.start_hour
    10
    """
    zone = env.get("CHAOS_TIME_ZONE", "").strip() or "UTC"
    try:
        time_zone(zone)
    except ValueError as exc:
        raise SettingsError(f"CHAOS_TIME_ZONE is invalid: {exc}") from None
    start, end = env_parsed(env, "CHAOS_WINDOW_HOURS", "9-17", parse_hours)
    timeout = env_int(env, "CHAOS_RECOVERY_TIMEOUT_SECONDS", 600, minimum=1)
    if timeout > CHAOS_MAX_RECOVERY_SECONDS:
        raise SettingsError(
            f"CHAOS_RECOVERY_TIMEOUT_SECONDS must be <= {CHAOS_MAX_RECOVERY_SECONDS} (the "
            f"function stops at 900 s), got {timeout}"
        )
    return ChaosSettings(
        leash_parameter=env.get("CHAOS_LEASH_PARAMETER", "").strip(),
        window=Window(
            days=env_parsed(env, "CHAOS_WINDOW_DAYS", "mon-fri", parse_days),
            start_hour=start,
            end_hour=end,
            time_zone=zone,
        ),
        freeze=env_parsed(env, "CHAOS_FREEZE_DATES", "", parse_freeze),
        mtbk_hours=_hours(env, "CHAOS_MTBK_HOURS", 16.0),
        min_gap_hours=_hours(env, "CHAOS_MIN_GAP_HOURS", 4.0, zero=True),
        recovery_timeout_seconds=timeout,
        poll_seconds=env_int(env, "CHAOS_POLL_SECONDS", 10, minimum=1),
        min_budget_percent=_budget_percent(env),
    )


def _budget_percent(env: Mapping[str, str]) -> float:
    value = env_float(env, "CHAOS_MIN_BUDGET_PERCENT", 25.0)
    if not math.isfinite(value) or value > 100:
        raise SettingsError(f"CHAOS_MIN_BUDGET_PERCENT must be 0 to 100, got {value:g}")
    return value
