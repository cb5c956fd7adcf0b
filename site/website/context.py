"""The site's context: everything ``app.ctx`` holds, declared once with its type.

``create_app`` builds one ``SiteContext`` and hands it to Sanic, so ``app.ctx`` is typed
wherever the app is a ``SiteApp`` and a handler's request a ``SiteRequest``; no module
annotates ``app.ctx`` again, and no attribute appears on it that is not declared here.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, TypeAlias

from sanic import Request, Sanic
from sanic.config import Config

if TYPE_CHECKING:
    from website.lifecycle import DrainState
    from website.logs import AccessLog
    from website.metadata import TaskInfo
    from website.pages import RenderedPages
    from website.settings import Settings
    from website.static import StaticFile


@dataclass
class SiteContext:
    """What one worker's app holds for its whole life."""

    settings: Settings
    # When this worker built the app (ISO 8601, seconds, UTC): shown on both pages.
    started_at: str
    drain: DrainState
    # Rendered at start and once more when ``task`` arrives; never per request.
    pages: RenderedPages
    static_files: dict[str, StaticFile]
    access_log: AccessLog
    # The ECS task's facts, read in the background after start; None until then or off ECS.
    task: TaskInfo | None = None
    # Set by the first stop, so a second signal does not ask Sanic to stop again.
    stopping: bool = False


SiteApp: TypeAlias = Sanic[Config, SiteContext]
SiteRequest: TypeAlias = Request[SiteApp, SimpleNamespace]
