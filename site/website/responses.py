"""Every response the site sends is a ``SiteResponse``: security headers, request id, HSTS
and the JSON access line, all at the moment Sanic encodes the response head.

Why there, and not in middleware: the site's CPU per request is held to 1.2x bare Sanic's
(``make bench``). Sanic's response middleware costs a coroutine per response, and a
middleware function per concern costs more. Sanic already reads each response's
``processed_headers`` exactly once, when it writes the head, with the status final and the
request at hand (``response.stream.request``); that is also where Sanic's own access log
writes its line. So ``SiteResponse.processed_headers`` does the per-request work:

- the constant security headers are checked and encoded once, at import, into one block
  of bytes (Sanic would sanitise every name and value again per response; the long CSP
  alone showed in profiles);
- ``X-Request-Id`` (and HSTS behind HTTPS) are added there;
- the access line is queued, with the request's facts, and rendered with the other lines
  of the same event-loop turn (``website.logs.STDOUT``).

Error pages are ``SiteResponse`` too: :class:`SiteErrorHandler` adopts every page Sanic
renders, answers 431 for an oversized request head (Sanic says 413, the status for bodies)
and keeps client errors out of the error log: a 4xx is logged once, in the access log at
WARNING, never at ERROR with a traceback. Only server errors (5xx) log a traceback.

Routes are declared with :func:`get_and_head`, so every page answers ``HEAD`` with the same
headers and no body (uptime checkers and ``curl -I`` send HEAD).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sanic.exceptions import MethodNotAllowed, NotFound, PayloadTooLarge
from sanic.handlers import ErrorHandler
from sanic.helpers import has_message_body
from sanic.response import HTTPResponse
from sanic.response.types import BaseHTTPResponse

from website.errors import BodyTooLarge, HeadersTooLarge
from website.logs import STDOUT
from website.requests import (
    FORWARDED_PROTO,
    REQUEST_ID,
    REQUEST_ID_MAX,
    TRACE_ID,
    USER_AGENT,
    USER_AGENT_MAX,
    client_ip,
    declares_body_over,
    is_https,
    new_request_id,
    xray_trace_id,
)

if TYPE_CHECKING:
    from sanic import Blueprint, Request

    from website.context import SiteRequest

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

HTML = "text/html; charset=utf-8"
JSON = "application/json"
CSS = "text/css; charset=utf-8"
SVG = "image/svg+xml"
GET_AND_HEAD = ("GET", "HEAD")
# What Sanic's HTTP/1.1 parser raises, as PayloadTooLarge, when the head is too big.
SANIC_HEAD_TOO_LARGE = "Request header exceeds the size limit"


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Encode constant headers once, refusing any that would need sanitising."""
    encoded = []
    for name, value in headers.items():
        if not (name.isascii() and value.isascii() and value.isprintable()):
            raise ValueError(f"header {name} must be printable ASCII")
        encoded.append((name.encode("ascii"), value.encode("ascii")))
    return encoded


def header_block(headers: dict[str, str]) -> tuple[bytes, bytes]:
    """Constant headers as one ``(name, value)`` pair that Sanic writes as all of them.

    Sanic writes each pair as ``name: value\r\n``; the block is the first name, and as its
    value the first value followed by the other lines. One pair instead of six saves Sanic's
    formatting loop five turns per response; a unit test checks the bytes are the same.
    """
    (first_name, first_value), *rest = _encoded(headers)
    lines = [first_value, *(name + b": " + value for name, value in rest)]
    return first_name, b"\r\n".join(lines)


_SECURITY_HEADERS_BLOCK = header_block(SECURITY_HEADERS)
_SECURITY_HEADER_NAMES = frozenset(name.lower() for name in SECURITY_HEADERS)
_X_REQUEST_ID = b"X-Request-Id"
_HSTS = header_block({"Strict-Transport-Security": HSTS})
_clean = BaseHTTPResponse._sanitize_header_value
# Headers the site's responses carry again and again, encoded once: (name, value) as Sanic
# and the handlers set them -> the bytes Sanic would write.
_KNOWN_HEADERS = {
    (name, value): (name.encode("ascii"), value.encode("ascii"))
    for name, value in [
        *(("content-type", kind) for kind in (HTML, JSON, CSS, SVG)),
        ("connection", "keep-alive"),
        ("connection", "close"),
        ("Cache-Control", "no-store"),
        ("Cache-Control", "no-cache"),
    ]
}


def _access_line(
    request: SiteRequest, status: int, rid: bytes, sent_at: float, started: float | None
) -> str:
    """Render the access line of a response (called at the flush, see ``website.logs``)."""
    headers = request.headers
    return request.app.ctx.access_log.line(
        STDOUT.wall_time(sent_at),
        request.method,
        request.path,
        status,
        None if started is None else (sent_at - started) * 1000,
        rid.decode(errors="surrogateescape"),
        xray_trace_id(headers.get(TRACE_ID)),
        client_ip(request),
        headers.get(USER_AGENT, "")[:USER_AGENT_MAX],
    )


class SiteResponse(HTTPResponse):
    """An ``HTTPResponse`` that finishes itself when Sanic encodes its head (see the module
    docstring). Handlers must not set a security header themselves (it would be sent twice).
    """

    __slots__ = ()

    @property
    def processed_headers(self) -> list[tuple[bytes, bytes]]:  # type: ignore[override]
        """Sanic's encoded headers: the security headers, the per-request ones, then the
        response's own (sanitised as Sanic does, unless known in advance). Queues the
        access line."""
        headers = self.headers
        if has_message_body(self.status):
            headers.setdefault("content-type", self.content_type)
        stream = self.stream
        request = stream.request if stream is not None else None
        # No request: not sent by a server (a test building a response by hand).
        encoded = [_SECURITY_HEADERS_BLOCK] if request is None else self._finish(request, stream)
        for pair in headers.items():
            try:
                known = _KNOWN_HEADERS.get(pair)
            except TypeError:  # an unhashable value: encode it as Sanic would
                known = None
            if known is None:
                name, value = pair
                if value.__class__ is int:  # Content-Length
                    known = (_clean(name).encode("ascii"), b"%d" % value)
                else:
                    known = (
                        _clean(name).encode("ascii"),
                        _clean(f"{value}").encode(errors="surrogateescape"),
                    )
            encoded.append(known)
        return encoded

    def _finish(self, request: Request, stream: Any) -> list[tuple[bytes, bytes]]:
        """Queue the access line; return the security headers, the request id header and,
        behind HTTPS, HSTS."""
        request_headers = request.headers
        sent = request_headers.get(REQUEST_ID)
        rid = (
            _clean(sent[:REQUEST_ID_MAX]).encode(errors="surrogateescape")
            if sent
            else new_request_id()
        )
        STDOUT.add_later(
            _access_line,
            request,
            self.status,
            rid,
            time.perf_counter(),
            getattr(stream, "perft0", None),
        )
        proto = request_headers.get(FORWARDED_PROTO)
        if proto is not None and is_https(proto):
            return [_SECURITY_HEADERS_BLOCK, (_X_REQUEST_ID, rid), _HSTS]
        return [_SECURITY_HEADERS_BLOCK, (_X_REQUEST_ID, rid)]

    @classmethod
    def adopt(cls, response: BaseHTTPResponse) -> BaseHTTPResponse:
        """The same response as a ``SiteResponse`` (for the pages Sanic renders).

        A response that is already one, or that is not a plain ``HTTPResponse``, is returned
        unchanged.
        """
        if isinstance(response, cls) or not isinstance(response, HTTPResponse):
            return response
        headers = response.headers
        for name in _SECURITY_HEADER_NAMES.intersection(k.lower() for k in headers):
            headers.popall(name, None)
        return cls(
            response.body,
            status=response.status,
            headers=headers,
            content_type=response.content_type,
        )


class SiteErrorHandler(ErrorHandler):
    """Sanic's error handler with the site's additions (see the module docstring)."""

    def response(self, request: Request, exception: BaseException) -> BaseHTTPResponse:
        return SiteResponse.adopt(super().response(request, self.translate(request, exception)))

    @staticmethod
    def translate(request: Request | None, exception: BaseException) -> BaseException:
        """The error the client should see.

        - Sanic's "header too large" (413) is 431.
        - A declared body over ``REQUEST_MAX_SIZE`` is 413 on every URL, before the body is
          read: Sanic refuses it itself on a route (before reading it), and here when the
          URL or method matched no route (it would be 404 or 405).
        """
        if isinstance(exception, PayloadTooLarge) and not isinstance(exception, BodyTooLarge):
            if str(exception) == SANIC_HEAD_TOO_LARGE:
                return HeadersTooLarge()
            limit = request.app.config.REQUEST_MAX_SIZE if request is not None else None
            return BodyTooLarge(context={"limit_bytes": limit})
        if isinstance(exception, NotFound | MethodNotAllowed) and request is not None:
            limit = request.app.config.REQUEST_MAX_SIZE
            if declares_body_over(request, limit):
                return BodyTooLarge(context={"limit_bytes": limit})
        return exception

    @staticmethod
    def log(request: Request, exception: Exception) -> None:
        status = getattr(exception, "status_code", 500)
        if isinstance(status, int) and status < 500:
            return  # a client error: the access log has it, at WARNING
        ErrorHandler.log(request, exception)


def get_and_head(bp: Blueprint, uri: str, *, name: str) -> Callable[[Any], Any]:
    """Route ``GET`` and ``HEAD`` of ``uri`` to the decorated handler (Sanic answers HEAD
    with the GET response's headers, ``Content-Length`` included, and no body)."""
    return bp.route(uri, methods=GET_AND_HEAD, name=name)
