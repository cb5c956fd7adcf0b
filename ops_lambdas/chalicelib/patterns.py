"""EventBridge patterns of the functions, built from the names the stage is packaged with.

``chalice package`` imports ``app.py`` with the stage's environment, so the rules it writes
match only this stage's repository and service. Without the names (a bare import, the
tests) the patterns are broader; the handlers check the names again at run time, so a
broader pattern is safe, only noisier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# How often the chaos schedule runs; the per-run kill probability is derived from it and the
# mean time between kills (chaos_guards).
CHAOS_TICK_MINUTES = 60


def ecr_push(env: Mapping[str, str]) -> dict[str, Any]:
    """Successful pushes to the site's repository (``ECR Image Action``)."""
    repository = env.get("REPOSITORY_NAME", "")
    return {
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Action"],
        "detail": {
            "action-type": ["PUSH"],
            "result": ["SUCCESS"],
            "repository-name": [repository] if repository else [{"prefix": "spotops-"}],
        },
    }


def ecr_scan(env: Mapping[str, str]) -> dict[str, Any]:
    """Finished image scans in the site's repository (``ECR Image Scan``)."""
    repository = env.get("REPOSITORY_NAME", "")
    return {
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Scan"],
        "detail": {
            "repository-name": [repository] if repository else [{"prefix": "spotops-"}],
        },
    }


def ecs_deployment(env: Mapping[str, str]) -> dict[str, Any]:
    """Deployment state changes of the site's service (``ECS Deployment State Change``)."""
    pattern: dict[str, Any] = {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Deployment State Change"],
    }
    cluster, service = env.get("CLUSTER_NAME", ""), env.get("SERVICE_NAME", "")
    if cluster and service:
        pattern["resources"] = [{"wildcard": f"arn:*:ecs:*:*:service/{cluster}/{service}"}]
    return pattern


def alarm_topic(env: Mapping[str, str]) -> str:
    """The site's alarm topic: ``ALARM_TOPIC_ARN`` (the site stack's ``AlarmTopicArn``,
    written when the app is packaged), else the topic's name by convention
    (``<app>-<stage>-alarms``), which Chalice turns into an ARN in this account and region."""
    arn = env.get("ALARM_TOPIC_ARN", "").strip()
    if arn:
        return arn
    return f"{env.get('APP_NAME') or 'spotops'}-{env.get('STAGE') or 'dev'}-alarms"
