"""Middleware every response passes through: security headers and the JSON access log."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from website.errors import BodyTooLarge
from website.logs import ACCESS_LOGGER

if TYPE_CHECKING:
    from sanic import Request, Sanic
    from sanic.response import BaseHTTPResponse

access_logger = logging.getLogger(ACCESS_LOGGER)

# The page loads only its own stylesheet and icon; nothing may frame it, no script runs.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), geolocation=(), microphone=()",
}
# Two years, the preload list's minimum; sent only when the client reached the ALB over HTTPS.
HSTS = "max-age=63072000; includeSubDomains"


def xray_trace_id(header: str | None) -> str | None:
    """Return the ``Root`` of an ``X-Amzn-Trace-Id`` header, the id X-Ray searches by.

    Example
    -------
    >>> xray_trace_id("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    '1-5759e988-bd862e3fe1be46a994272793'
    """
    if not header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Root" and value:
            return value[:64]
    return None


def came_over_https(request: Request) -> bool:
    """True when the nearest proxy (the ALB) says the client used HTTPS."""
    proto = request.headers.get("x-forwarded-proto", "")
    return proto.rsplit(",", 1)[-1].strip().lower() == "https"


def client_ip(request: Request) -> str:
    """The client as the ALB saw it (the last X-Forwarded-For hop), else the peer address."""
    forwarded = request.headers.get("x-forwarded-for", "")
    if forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()[:64]
    return request.ip


def request_id(request: Request) -> str:
    """Sanic's request id: the client's ``X-Request-ID`` if sent (bounded), else a UUID."""
    return str(request.id)[:128]


async def start_timer(request: Request) -> None:
    request.ctx.started = time.perf_counter()


async def refuse_large_bodies(request: Request) -> None:
    """Answer 413 from the declared Content-Length, before routing and before reading.

    Runs on the ``http.routing.before`` signal so an oversized body gets 413 on every URL,
    not 404/405 after Sanic has read it. Chunked bodies have no declared length; Sanic's
    REQUEST_MAX_SIZE stops those while reading.
    """
    declared = request.headers.get("content-length", "")
    limit = request.app.config.REQUEST_MAX_SIZE
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(context={"limit_bytes": limit})


async def add_security_headers(request: Request, response: BaseHTTPResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if came_over_https(request):
        response.headers["Strict-Transport-Security"] = HSTS
    response.headers.pop("server", None)
    response.headers["X-Request-Id"] = request_id(request)


async def log_access(request: Request, response: BaseHTTPResponse) -> None:
    started = getattr(request.ctx, "started", None)
    duration_ms = (time.perf_counter() - started) * 1000 if started is not None else None
    access_logger.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": round(duration_ms, 3) if duration_ms is not None else None,
            "request_id": request_id(request),
            "xray_trace_id": xray_trace_id(request.headers.get("x-amzn-trace-id")),
            "client_ip": client_ip(request),
            "user_agent": request.headers.get("user-agent", "")[:256],
        },
    )


def register(app: Sanic) -> None:
    """Attach the middleware; the access log runs last so it sees the final status."""
    app.on_request(start_timer, priority=100)
    app.add_signal(refuse_large_bodies, "http.routing.before")
    app.on_response(add_security_headers, priority=100)
    app.on_response(log_access, priority=0)
