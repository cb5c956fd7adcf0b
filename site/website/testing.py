"""Routes that exist only with ``ENABLE_TEST_ROUTES=true``, for the shutdown tests.

``/_test/slow?seconds=N`` holds a request in flight for N seconds so a test can prove that
SIGTERM lets it finish. Production never sets the variable, so the route is absent (404).
"""

from __future__ import annotations

import asyncio
import logging
import math

from sanic import Blueprint, Request, json
from sanic.response import BaseHTTPResponse

from website.errors import InvalidDelay
from website.requests import request_id
from website.responses import SiteResponse, get_and_head

bp = Blueprint("test_routes", url_prefix="/_test")
logger = logging.getLogger("website.testing")

MAX_DELAY_SECONDS = 30.0


@get_and_head(bp, "/slow", name="slow")
async def slow(request: Request) -> BaseHTTPResponse:
    try:
        seconds = float(request.args.get("seconds", "1"))
    except ValueError:
        raise InvalidDelay from None
    if not (0 <= seconds <= MAX_DELAY_SECONDS) or math.isnan(seconds):
        raise InvalidDelay
    # Tests wait for this line to know the request is in flight before they send SIGTERM.
    logger.info("slow request in flight", extra={"request_id": request_id(request)})
    await asyncio.sleep(seconds)
    return SiteResponse.adopt(json({"slept": seconds}))
