"""What people see: the home page and the version document."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from sanic import Blueprint, HTTPResponse, Request, html, json

if TYPE_CHECKING:
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


@bp.get("/", name="home")
async def home(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    return html(render_home(ctx.settings, ctx.started_at, ctx.task))


@bp.get("/version", name="version")
async def version(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    return json(version_document(ctx.settings, ctx.started_at))
