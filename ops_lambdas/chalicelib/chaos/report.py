"""What a chaos run tells: its JSON answer, its records in the ledger (the history line and
the run record of each experiment) and its Slack posts.

A failed ledger write is logged and the experiment goes on: the records are for on-call and
the dashboards, the minimum gap's memory (the last kill) is written by the kill itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.errors import OpsError
from chalicelib.observability import logger, metrics
from chalicelib.results import JobResult, Status
from chalicelib.runbooks import CHAOS_KILL, runbook_url
from chalicelib.slack import build_message

if TYPE_CHECKING:
    from collections.abc import Callable

    from chalicelib.chaos.facts import ChaosRecords
    from chalicelib.chaos.guards import Decision, ServiceFacts, TaskFacts
    from chalicelib.toolkit import Toolkit

JOB = "chaos"


def result(status: Status, reason: str, **facts: Any) -> JobResult:
    """The chaos job's answer, for the run or for one service."""
    return JobResult(JOB, status, reason, facts)


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def seconds_metric(name: str, value: float) -> None:
    if metrics.dimension_set.get("job") != JOB:
        metrics.add_dimension(name="job", value=JOB)
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)


def where(task: TaskFacts) -> str:
    """Where the task ran, for a post: its capacity provider and zone."""
    parts = [p for p in (task.capacity_provider, task.availability_zone) if p]
    return ", ".join(parts) or "capacity unknown"


class RunReport:
    """The ledger records and Slack posts of one run (``run_id``)."""

    def __init__(
        self, *, kit: Toolkit, records: ChaosRecords, run_id: str, clock: Callable[[], float]
    ) -> None:
        self.kit = kit
        self.records = records
        self.run_id = run_id
        self.clock = clock

    def history(self, key: str, status: Status, detail: str) -> None:
        """One line of the service's history (``spotops status`` reads it)."""
        try:
            self.kit.ledger.record_history(key, JOB, status.value, detail)
        except OpsError as exc:
            logger.error("chaos history not written", extra={"reason": str(exc)})

    def run_record(self, service: ServiceFacts, status: Status, **fields: Any) -> None:
        """The experiment's record (``CHAOS#<svc>`` / ``RUN#<time>#<run id>``), overwritten as
        it goes from ``recovering`` to its verdict."""
        try:
            self.records.put_run(
                service.key,
                self.run_id,
                utc(self.clock()),
                {"status": status.value, **fields},
            )
        except OpsError as exc:
            logger.error("chaos run record not written", extra={"reason": str(exc)})

    def facts(self, decision: Decision, seed: str, *, leashed: bool) -> list[tuple[str, str]]:
        """The facts every post of a decision carries: the run, its dice and the mode."""
        return [
            ("Run", self.run_id),
            ("Seed", seed),
            ("Draw", f"{decision.draw:.4f} < p={decision.probability:.4f}"),
            ("Mode", "leashed" if leashed else "unleashed"),
        ]

    def post(self, title: str, body: str, *, facts: list[tuple[str, str]]) -> None:
        settings = self.kit.settings
        message = build_message(
            title,
            body,
            facts=facts,
            runbook=runbook_url(settings.runbook_base_url, CHAOS_KILL),
            footer=f"{settings.app_name}-{settings.stage} · {JOB} · run {self.run_id}",
        )
        self.kit.notifier.post(message, job=JOB)
