"""Facts about the ECS task, read once from the task metadata endpoint v4.

ECS sets ``ECS_CONTAINER_METADATA_URI_V4`` in every container; ``GET ${URI}/task`` answers
with the task's ARN, Availability Zone and launch type (not its capacity provider, so the
page cannot tell Spot from on-demand). The site reads it once, in the background after it
starts listening, with a timeout; requests never wait for it, and a failure leaves the
page without task facts rather than taking the site down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from website.context import SiteApp

logger = logging.getLogger("website.metadata")

# Never route the link-local metadata endpoint through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_MAX_BYTES = 1 << 20


class MetadataError(Exception):
    """The task metadata endpoint could not be read or did not answer as documented."""


@dataclass(frozen=True)
class TaskInfo:
    """The task facts the page shows."""

    task_id: str
    availability_zone: str
    launch_type: str
    cluster: str = ""
    family: str = ""
    revision: str = ""

    @classmethod
    def from_task_metadata(cls, document: dict[str, Any]) -> TaskInfo:
        """Build from the ``/task`` JSON document.

        Raises
        ------
        MetadataError
            When ``TaskARN`` is missing or not a task ARN.
        """
        arn = document.get("TaskARN")
        if not isinstance(arn, str) or ":task/" not in arn:
            raise MetadataError("task metadata has no TaskARN")
        # arn:aws:ecs:<region>:<account>:task/<cluster>/<id> (older: task/<id>)
        task_id = arn.rsplit("/", 1)[-1]
        cluster = str(document.get("Cluster", ""))
        return cls(
            task_id=task_id,
            availability_zone=str(document.get("AvailabilityZone", "")),
            launch_type=str(document.get("LaunchType", "")),
            cluster=cluster.rsplit("/", 1)[-1],
            family=str(document.get("Family", "")),
            revision=str(document.get("Revision", "")),
        )


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            body = response.read(_MAX_BYTES)
        document = json.loads(body)
    except (OSError, ValueError) as exc:
        raise MetadataError(f"cannot read {url}: {exc}") from exc
    if not isinstance(document, dict):
        raise MetadataError(f"{url} did not answer with a JSON object")
    return document


async def fetch_task_info(base_uri: str, timeout: float) -> TaskInfo:
    """Read ``<base_uri>/task`` in a worker thread, giving up after ``timeout`` seconds.

    Raises
    ------
    MetadataError
        On a network error, a timeout, or a document without a task ARN.
    """
    url = f"{base_uri}/task"
    try:
        document = await asyncio.wait_for(asyncio.to_thread(_get_json, url, timeout), timeout)
    except TimeoutError as exc:
        raise MetadataError(f"no answer from {url} within {timeout:g} s") from exc
    return TaskInfo.from_task_metadata(document)


async def load_task_info(app: SiteApp) -> None:
    """Background task: fill ``app.ctx.task`` once; log and carry on if that fails."""
    settings = app.ctx.settings
    if not settings.metadata_uri:
        return
    try:
        task = await fetch_task_info(settings.metadata_uri, settings.metadata_timeout_seconds)
    except MetadataError as exc:
        logger.warning("ECS task metadata unavailable", extra={"error": str(exc)})
    else:
        app.ctx.task = task
        logger.info("ECS task metadata loaded", extra={"task_id": task.task_id})
