"""Inject faults into the calls a job makes, one call at a time, as AWS and Lambda cause them.

A :class:`Faults` plan names one *step* (``ecs.update_service``, ``ledger.LOCK``,
``slack.post``...) and one *fault*; the proxies below fire it once, on the first call of
that step:

* ``crash``: the invocation fails with an exception before the call (Lambda retries it).
* ``timeout``: Lambda kills the invocation at its time limit before the call. Nothing of
  that invocation reaches AWS afterwards (no ``finally`` clean-up gets through: every later
  call raises too), and Powertools' in-progress record is left behind, as in Lambda.
* ``throttle``: AWS answers ``ThrottlingException`` (after botocore's own retries).
* ``denied``: AWS answers ``AccessDeniedException``.
* ``lost-reply``: AWS carries the call out, then the answer is lost (a read timeout).

For ``slack.post`` only ``crash`` and ``timeout`` apply, and they strike right *after* the
message was delivered: the case where a retry could post it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError

FAULTS = ("crash", "timeout", "throttle", "denied", "lost-reply")
AWS_STEPS = (
    "ecr.describe_images",
    "ecs.describe_services",
    "ecs.register_task_definition",
    "ecs.update_service",
    "ledger.LOCK",
    "ledger.BUDGET",
    "ledger.DEPLOYMENT",
    "ledger.IMAGE",
    "ledger.HISTORY",
)
SLACK_STEP = "slack.post"
_CODES = {"throttle": "ThrottlingException", "denied": "AccessDeniedException"}


class LambdaTimeout(BaseException):
    """Lambda ended the invocation at its time limit (not an ``Exception``: nothing of ours
    catches it, like the real kill)."""


class InjectedCrash(RuntimeError):
    """The invocation failed (an unexpected exception); Lambda retries it."""


@dataclass
class Faults:
    """The plan for one sequence: which step fails how, and what happened."""

    step: str = ""
    fault: str = ""
    fired: bool = False
    dead: bool = False  # after a timeout, until the next invocation
    calls: dict[str, int] = field(default_factory=dict)
    performed: dict[str, int] = field(default_factory=dict)

    def next_invocation(self) -> None:
        self.dead = False

    def before(self, step: str) -> None:
        """Raise what strikes before ``step`` is carried out (or nothing)."""
        self.calls[step] = self.calls.get(step, 0) + 1
        if self.dead:
            raise LambdaTimeout(f"invocation already timed out ({step})")
        if self.fired or step != self.step or step == SLACK_STEP:
            return
        if self.fault == "crash":
            self.fired = True
            raise InjectedCrash(f"injected crash before {step}")
        if self.fault == "timeout":
            self.fired = self.dead = True
            raise LambdaTimeout(f"injected Lambda timeout before {step}")
        if self.fault in _CODES:
            self.fired = True
            code = _CODES[self.fault]
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, step)

    def after(self, step: str) -> None:
        """Raise what strikes once ``step`` was carried out (or nothing)."""
        self.performed[step] = self.performed.get(step, 0) + 1
        if self.fired or step != self.step:
            return
        if self.fault == "lost-reply" and step != SLACK_STEP:
            self.fired = True
            raise ReadTimeoutError(endpoint_url=f"https://{step}.invalid")
        if step == SLACK_STEP and self.fault == "crash":
            self.fired = True
            raise InjectedCrash("injected crash after the Slack post")
        if step == SLACK_STEP and self.fault == "timeout":
            self.fired = self.dead = True
            raise LambdaTimeout("injected Lambda timeout after the Slack post")


class FaultyClient:
    """A boto3 client whose named operations go through the plan (others pass through)."""

    def __init__(self, real: Any, service: str, faults: Faults, ledger_table: str = "") -> None:
        self._real = real
        self._service = service
        self._faults = faults
        self._ledger_table = ledger_table

    def _step(self, operation: str, kwargs: dict[str, Any]) -> str | None:
        if self._service != "dynamodb":
            return f"{self._service}.{operation}"
        if kwargs.get("TableName") != self._ledger_table or operation == "get_item":
            return None  # reads of the ledger and the idempotency table are not in the plan
        key = kwargs.get("Item") or kwargs.get("Key") or {}
        pk = str(key.get("pk", {}).get("S", ""))
        return f"ledger.{pk.split('#', 1)[0]}" if pk else None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._real, name)
        if not callable(attribute) or name.startswith(("get_paginator", "meta", "exceptions")):
            return attribute

        def call(**kwargs: Any) -> Any:
            step = self._step(name, kwargs)
            if step is None:
                if self._faults.dead:
                    raise LambdaTimeout(f"invocation already timed out ({name})")
                return attribute(**kwargs)
            self._faults.before(step)
            result = attribute(**kwargs)
            self._faults.after(step)
            return result

        return call


class FaultyNotifier:
    """The Slack notifier, with the plan applied around each post."""

    def __init__(self, real: Any, faults: Faults) -> None:
        self._real = real
        self._faults = faults

    def post(self, message: Any, *, job: str) -> Any:
        self._faults.before(SLACK_STEP)
        result = self._real.post(message, job=job)
        self._faults.after(SLACK_STEP)
        return result
