"""What people see: the home page and the version document.

Both change only at start (and the home page once more, when the ECS task facts arrive), so
they are rendered then, into bytes, and every request sends those bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from sanic import Blueprint

from website.responses import HTML, JSON, SiteResponse, get_and_head

if TYPE_CHECKING:
    from website.context import SiteRequest
    from website.metadata import TaskInfo
    from website.settings import Settings

bp = Blueprint("pages")


def version_document(settings: Settings, started_at: str) -> dict[str, Any]:
    """The body of ``/version``."""
    return {
        "service": settings.service_name,
        "version": settings.app_version,
        "git_commit": settings.git_commit,
        "image_tag": settings.image_tag or None,
        "image_digest": settings.image_digest or None,
        "started_at": started_at,
    }


def render_home(settings: Settings, started_at: str, task: TaskInfo | None) -> str:
    """The home page: a static document with only its own stylesheet (see the CSP)."""
    facts: list[tuple[str, str]] = [
        ("Version", settings.app_version),
        ("Git commit", settings.git_commit),
    ]
    if settings.image_tag:
        facts.append(("Image tag", settings.image_tag))
    facts.append(("Started", started_at))
    if task is not None:
        facts += [
            ("Task", task.task_id),
            ("Availability Zone", task.availability_zone or "unknown"),
            ("Launch type", task.launch_type or "unknown"),
        ]
        if task.cluster:
            facts.append(("Cluster", task.cluster))
    else:
        facts.append(("Task", "not running on ECS"))
    rows = "\n".join(
        f'      <div class="fact"><dt>{escape(label)}</dt><dd>{escape(value)}</dd></div>'
        for label, value in facts
    )
    name = escape(settings.service_name)
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{name}</title>
  <link rel="stylesheet" href="/static/site.css">
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
  <main>
    <h1>{name}</h1>
    <p class="lead">Served by a container on AWS Fargate Spot.</p>
    <dl class="facts">
{rows}
    </dl>
  </main>
</body>
</html>
"""


@dataclass(frozen=True)
class RenderedPages:
    """The pages' bodies, ready to send."""

    home: bytes
    version: bytes

    @classmethod
    def render(cls, settings: Settings, started_at: str, task: TaskInfo | None) -> RenderedPages:
        """Render both pages (at start, and again when the task facts arrive)."""
        return cls(
            home=render_home(settings, started_at, task).encode(),
            version=json.dumps(
                version_document(settings, started_at), separators=(",", ":")
            ).encode(),
        )


@get_and_head(bp, "/", name="home")
async def home(request: SiteRequest) -> SiteResponse:
    return SiteResponse(request.app.ctx.pages.home, content_type=HTML)


@get_and_head(bp, "/version", name="version")
async def version(request: SiteRequest) -> SiteResponse:
    return SiteResponse(request.app.ctx.pages.version, content_type=JSON)
