"""Probes: ``/healthz`` (liveness, for the container HEALTHCHECK) and ``/readyz``.

``/readyz`` is the load balancer's health check. It turns 503 once SIGTERM starts the drain,
so the ALB marks the target unhealthy even before ECS's deregistration reaches it;
``/healthz`` stays 200 so nothing restarts a task that is only leaving politely.
"""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, json

bp = Blueprint("health")


@bp.get("/healthz", name="healthz")
async def healthz(request: Request) -> HTTPResponse:
    return json({"status": "ok"})


@bp.get("/readyz", name="readyz")
async def readyz(request: Request) -> HTTPResponse:
    if request.app.ctx.drain.is_draining:
        return json({"status": "draining"}, status=503, headers={"Cache-Control": "no-store"})
    return json({"status": "ready"}, headers={"Cache-Control": "no-store"})
