"""The yardstick: a bare Sanic hello world, served exactly the way ``website.server`` serves.

Same Sanic, one process (``single_process``), no access log, no MOTD, debug off, the same
timeouts and request size limit as the site's defaults. ``/`` answers a short text and
``/healthz`` the site's JSON body, so the site's figures can be set against the cost of the
framework itself. Run as ``python benchmarks/bare_sanic.py`` with ``HOST`` and ``PORT``.
"""

from __future__ import annotations

import os

from sanic import HTTPResponse, Request, Sanic, json, text


def create_app() -> Sanic:
    app = Sanic("bare", env_prefix=None)
    app.config.update(
        {
            "ACCESS_LOG": False,
            "MOTD": False,
            "FALLBACK_ERROR_FORMAT": "json",
            "REQUEST_MAX_SIZE": 65536,
            "KEEP_ALIVE_TIMEOUT": 75,
            "GRACEFUL_SHUTDOWN_TIMEOUT": 5,
            "REQUEST_TIMEOUT": 30,
            "RESPONSE_TIMEOUT": 45,
        }
    )

    @app.get("/")
    async def hello(request: Request) -> HTTPResponse:
        return text("Hello, world.")

    @app.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    return app


def main() -> None:
    app = create_app()
    app.prepare(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ["PORT"]),
        debug=False,
        access_log=False,
        motd=False,
        single_process=True,
    )
    Sanic.serve_single(primary=app)


if __name__ == "__main__":
    main()
