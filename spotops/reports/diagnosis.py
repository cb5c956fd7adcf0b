"""Why the site's last deployment failed, read with spotops's own clients and told by the
functions' own :mod:`chalicelib.diagnosis` (through :mod:`spotops.lambda_code`), so the
terminal says what the outcome's Slack post says: the stopped tasks' reasons and exit codes,
the unhealthy targets' reasons and the last log lines of a failed task. Every read may fail;
the text then says what could not be read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

import spotops.lambda_code  # noqa: F401  (puts ops_lambdas on sys.path)

# isort: split
from chalicelib.deployments import DeploymentRecord
from chalicelib.diagnosis import Diagnosis
from chalicelib.errors import LedgerError
from chalicelib.gateway import DiagnosisReads
from chalicelib.ledger import SafetyLedger

# The ledger's words for a deployment of ours that did not end running its image.
_FAILED_RECORDS = frozenset({"ROLLED_BACK", "FAILED"})

HEADING = "Why the last deployment failed"


def read_diagnosis(
    client: Callable[[str], Any], cluster: str, service: str, task_definition: str = ""
) -> Diagnosis:
    """The diagnosis of the service's deployment of ``task_definition`` (``""``: of every
    stopped task ECS still keeps, about an hour's). ``client`` makes boto3 clients by name."""
    reads = DiagnosisReads(
        client("ecs"), client("elbv2"), client("logs"), cluster=cluster, service=service
    )
    return reads.diagnose(task_definition)


def diagnosis_block(session: Any, cluster: str | None, service: str | None) -> str:
    """The block ``spotops deploy`` prints when the site's ECS service did not stabilise."""
    if not cluster or not service:
        return (
            f"{HEADING}: not read (the site stack has no ClusterName/ServiceName outputs; its "
            "first creation failed). See the stopped tasks in the ECS console."
        )
    found = read_diagnosis(session.client, cluster, service)
    return f"{HEADING}:\n" + "\n".join(f"  {line}" for line in found.text().splitlines())


def failed_task_definition(
    rollouts: Sequence[tuple[str, str]], record: DeploymentRecord | None
) -> str | None:
    """The revision whose deployment failed, or ``None`` when the last one did not: a
    deployment ECS marks ``rolloutState`` FAILED (``rollouts`` is ``(rolloutState,
    taskDefinition)`` of the service's deployments), else the ledger's latest record when it
    is ROLLED_BACK or FAILED."""
    for state, task_definition in rollouts:
        if state == "FAILED":
            return task_definition
    if record is not None and record.status in _FAILED_RECORDS:
        return record.task_definition
    return None


def last_failure(
    client: Callable[[str], Any],
    cluster: str,
    service: str,
    rollouts: Sequence[tuple[str, str]],
    ledger_table: str | None,
) -> list[str]:
    """``spotops status``'s lines on why the last deployment failed; none when it did not."""
    record = None
    if ledger_table:
        try:
            ledger = SafetyLedger(client("dynamodb"), ledger_table)
            record = ledger.read_deployment(f"{cluster}/{service}")
        except (LedgerError, ClientError, BotoCoreError):
            record = None  # ECS's own rollout state still says whether it failed
    task_definition = failed_task_definition(rollouts, record)
    if task_definition is None:
        return []
    return read_diagnosis(client, cluster, service, task_definition).text().splitlines()
