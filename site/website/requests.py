"""What the site reads from a request: the facts the access log and the response headers
need, and whether it declares a body over the limit.

The header names are case-insensitive ``istr`` keys made once, so a lookup does not fold
the name's case again on every request.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING, Any

from multidict import istr

if TYPE_CHECKING:
    from sanic import Request

CONTENT_LENGTH = istr("content-length")
REQUEST_ID = istr("x-request-id")
TRACE_ID = istr("x-amzn-trace-id")
FORWARDED_FOR = istr("x-forwarded-for")
FORWARDED_PROTO = istr("x-forwarded-proto")
USER_AGENT = istr("user-agent")

REQUEST_ID_MAX = 128
USER_AGENT_MAX = 256


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


def is_https(forwarded_proto: str) -> bool:
    """Whether an ``X-Forwarded-Proto`` value says the client used HTTPS (its last hop, the
    ALB, counts)."""
    return forwarded_proto.rsplit(",", 1)[-1].strip().lower() == "https"


def client_ip(request: Request[Any, Any]) -> str:
    """The client as the ALB saw it (the last X-Forwarded-For hop), else the peer address."""
    forwarded = request.headers.get(FORWARDED_FOR)
    if forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()[:64]
    if request.conn_info is not None:
        return request.conn_info.client_ip
    # A request refused while its head was parsed has no connection facts yet.
    try:
        peer = request.transport.get_extra_info("peername") if request.transport else None
    except (OSError, RuntimeError):  # a closed transport may refuse; the line goes on
        return ""
    return str(peer[0]) if peer else ""


# A request id must be unique, not secret: 16 random hex digits drawn once per process (a
# task, a worker), then a counter. No UUID object, no system call per request.
_ID_PREFIX = os.urandom(8).hex().encode("ascii")
_ID_COUNTER = itertools.count(1)


def new_request_id() -> bytes:
    """32 hex digits, unique to this process and request, ready for a header."""
    return b"%b%016x" % (_ID_PREFIX, next(_ID_COUNTER))


def request_id(request: Request[Any, Any]) -> str:
    """The client's ``X-Request-ID`` if it sent one (bounded), else a new id."""
    sent = request.headers.get(REQUEST_ID)
    if sent:
        return sent[:REQUEST_ID_MAX]
    return new_request_id().decode("ascii")


def declares_body_over(request: Request[Any, Any], limit: int) -> bool:
    """Whether the request's ``Content-Length`` is over ``limit`` (chunked bodies declare
    none; Sanic's REQUEST_MAX_SIZE stops those while reading)."""
    declared = request.headers.get(CONTENT_LENGTH)
    return declared is not None and declared.isdigit() and int(declared) > limit
