"""Probes: ``/healthz`` (liveness, for the container HEALTHCHECK) and ``/readyz``.

``/readyz`` is the load balancer's health check. It turns 503 once SIGTERM starts the drain,
so the ALB marks the target unhealthy even before ECS's deregistration reaches it;
``/healthz`` stays 200 so nothing restarts a task that is only leaving politely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sanic import Blueprint

from website.responses import JSON, SiteResponse, get_and_head

if TYPE_CHECKING:
    from website.context import SiteRequest

bp = Blueprint("health")

OK = b'{"status":"ok"}'
READY = b'{"status":"ready"}'
DRAINING = b'{"status":"draining"}'
_NO_STORE = {"Cache-Control": "no-store"}


@get_and_head(bp, "/healthz", name="healthz")
async def healthz(request: SiteRequest) -> SiteResponse:
    return SiteResponse(OK, content_type=JSON)


@get_and_head(bp, "/readyz", name="readyz")
async def readyz(request: SiteRequest) -> SiteResponse:
    if request.app.ctx.drain.is_draining:
        return SiteResponse(DRAINING, status=503, headers=_NO_STORE, content_type=JSON)
    return SiteResponse(READY, headers=_NO_STORE, content_type=JSON)
