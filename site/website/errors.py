"""The site's own errors. Sanic renders them as JSON; ``extra`` never reaches clients.

``website.responses.SiteErrorHandler`` renders every error page and decides what is logged.
"""

from __future__ import annotations

from sanic.exceptions import BadRequest, PayloadTooLarge, SanicException


class InvalidDelay(BadRequest):
    """The test-only slow route got a delay it will not sleep for."""

    message = "seconds must be a number between 0 and 30"
    quiet = True


class BodyTooLarge(PayloadTooLarge):
    """The declared body is bigger than ``REQUEST_MAX_BYTES``; refused before it is read."""

    message = "request body is too large"
    quiet = True


class HeadersTooLarge(SanicException):
    """The request head (request line and headers) is bigger than Sanic reads (8 KiB)."""

    status_code = 431
    message = "request headers are too large"
    quiet = True
