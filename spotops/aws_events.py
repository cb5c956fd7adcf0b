"""Events of the exact shapes AWS sends the ops functions, built for a rehearsal.

The local emulator emits none of these (ECR, ECS and CloudWatch publish nothing to its
EventBridge), so ``spotops demo`` and ``spotops simulate`` build them here, field for field
as the AWS documentation shows them (sources are named on each builder).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


def _envelope(
    detail_type: str, source: str, account: str, region: str, resources: list[str]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": resources,
    }


def ecr_push(
    *, account: str, region: str, repository: str, digest: str, tag: str
) -> dict[str, Any]:
    """``ECR Image Action`` for a successful push (Amazon ECR User Guide, "Amazon ECR events
    and EventBridge", event for a completed image push)."""
    event = _envelope("ECR Image Action", "aws.ecr", account, region, [])
    event["detail"] = {
        "result": "SUCCESS",
        "repository-name": repository,
        "image-digest": digest,
        "action-type": "PUSH",
        "image-tag": tag,
    }
    return event


def scheduled(*, account: str, region: str, rule_name: str) -> dict[str, Any]:
    """``Scheduled Event`` from an EventBridge schedule rule (EventBridge User Guide)."""
    rule = f"arn:aws:events:{region}:{account}:rule/{rule_name}"
    event = _envelope("Scheduled Event", "aws.events", account, region, [rule])
    event["detail"] = {}
    return event


def deployment_state(
    *, account: str, region: str, service_arn: str, deployment_id: str, name: str, reason: str
) -> dict[str, Any]:
    """``ECS Deployment State Change`` (Amazon ECS Developer Guide, "Amazon ECS service
    deployment events"); ``name`` is ``SERVICE_DEPLOYMENT_COMPLETED``, ``_FAILED`` or
    ``_IN_PROGRESS``."""
    event = _envelope("ECS Deployment State Change", "aws.ecs", account, region, [service_arn])
    event["detail"] = {
        "eventType": "ERROR" if name.endswith("FAILED") else "INFO",
        "eventName": name,
        "deploymentId": deployment_id,
        "updatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "reason": reason,
    }
    return event
