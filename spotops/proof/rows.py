"""The rows ``spotops doctor`` and ``spotops verify`` answer with, and their exit codes.

A row is one check (doctor) or one flow (verify): its state, what was seen, what to do about
it and the runbook that says more. ``EMULATOR`` is a row the local emulator cannot prove
(moto has no Service Quotas values, no Lambda runtime, no SNS confirmation): the stand-in
answered, and the row says so instead of passing silently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class State(StrEnum):
    OK = "ok"
    # Works now, but worth acting on (a quota close to the need, a dead-letter message).
    WARN = "warn"
    FAIL = "fail"
    # Only a stand-in could answer on the local emulator: not a proof of the account.
    EMULATOR = "emulator"
    # Not asked for (``--no-slack``) or not applicable to this stage.
    SKIP = "skip"


@dataclass(frozen=True)
class Row:
    """One check or flow.

    ``advice`` is what to do, and is required for WARN and FAIL: a row that fails without
    saying what to do leaves on-call where they started.
    """

    name: str
    state: State
    detail: str
    advice: str = ""
    runbook: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.state in (State.WARN, State.FAIL) and not self.advice:
            raise ValueError(f"row {self.name!r} is {self.state} without advice")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "detail": self.detail,
            "advice": self.advice,
            "runbook": self.runbook,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ProofReport:
    """All rows of one run, in the order they were checked."""

    command: str  # "doctor" or "verify"
    stage: str
    target: str  # where the calls went, as Target.describe names it
    rows: Sequence[Row] = field(default_factory=tuple)

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if row.state is State.FAIL]

    @property
    def first_failure(self) -> Row | None:
        failures = self.failures
        return failures[0] if failures else None

    @property
    def exit_code(self) -> int:
        """0 when no row fails (warnings and emulator rows allowed), 1 otherwise."""
        return 1 if self.failures else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "stage": self.stage,
            "target": self.target,
            "exit_code": self.exit_code,
            "rows": [row.as_dict() for row in self.rows],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)
