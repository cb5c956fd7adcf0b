"""Why the site's last deployment failed, read with spotops's own clients and told by the
functions' own :mod:`chalicelib.diagnosis` (through :mod:`spotops.lambda_code`), so the
terminal says what the outcome's Slack post says: the stopped tasks' reasons and exit codes,
the unhealthy targets' reasons and the last log lines of a failed task. Every read may fail;
the text then says what could not be read."""

from __future__ import annotations

from typing import Any

import spotops.lambda_code  # noqa: F401  (puts ops_lambdas on sys.path)

# isort: split
from chalicelib.diagnosis import Diagnosis
from chalicelib.gateway import DiagnosisReads

HEADING = "Why the last deployment failed"


def read_diagnosis(
    session: Any, cluster: str, service: str, task_definition: str = ""
) -> Diagnosis:
    """The diagnosis of the service's deployment of ``task_definition`` (``""``: of every
    stopped task ECS still keeps, about an hour's)."""
    reads = DiagnosisReads(
        session.client("ecs"),
        session.client("elbv2"),
        session.client("logs"),
        cluster=cluster,
        service=service,
    )
    return reads.diagnose(task_definition)


def diagnosis_block(session: Any, cluster: str | None, service: str | None) -> str:
    """The block ``spotops deploy`` prints when the site's ECS service did not stabilise."""
    if not cluster or not service:
        return (
            f"{HEADING}: not read (the site stack has no ClusterName/ServiceName outputs; its "
            "first creation failed). See the stopped tasks in the ECS console."
        )
    found = read_diagnosis(session, cluster, service)
    return f"{HEADING}:\n" + "\n".join(f"  {line}" for line in found.text().splitlines())
