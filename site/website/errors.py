"""The site's own errors. Sanic renders them as JSON; ``extra`` never reaches clients."""

from __future__ import annotations

from sanic.exceptions import BadRequest, PayloadTooLarge


class InvalidDelay(BadRequest):
    """The test-only slow route got a delay it will not sleep for."""

    message = "seconds must be a number between 0 and 30"
    quiet = True


class BodyTooLarge(PayloadTooLarge):
    """The declared body is bigger than ``REQUEST_MAX_BYTES``; refused before it is read."""

    message = "request body is too large"
    quiet = True
