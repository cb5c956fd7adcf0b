"""The app factory: ``create_app(settings)`` builds the whole site; nothing runs at import."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sanic import Sanic

from website import health, lifecycle, pages, static, testing
from website.context import SiteApp, SiteContext
from website.logs import STDOUT, AccessLog, logging_config
from website.metadata import load_task_info
from website.pages import RenderedPages
from website.responses import SiteErrorHandler
from website.settings import Settings

APP_NAME = "spotops-site"
READY_MESSAGE = "serving"
logger = logging.getLogger("website")


def create_app(settings: Settings | None = None) -> SiteApp:
    """Build the site.

    Parameters
    ----------
    settings:
        The configuration; ``Settings()`` (every default) when omitted.

    Returns
    -------
    SiteApp
        The app, ready for ``website.server.serve`` or a test client.

    Example
    -------
    >>> app = create_app(Settings(port=8081))
    """
    settings = settings or Settings()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    context = SiteContext(
        settings=settings,
        started_at=started_at,
        drain=lifecycle.DrainState(),
        # What changes only at start is made once, here, not per request.
        pages=RenderedPages.render(settings, started_at, None),
        static_files=static.read_static(),
        access_log=AccessLog(settings.service_name),
    )
    # env_prefix=None: Settings is the only reader of the environment (no SANIC_* overrides).
    app: SiteApp = Sanic(
        APP_NAME,
        ctx=context,
        log_config=logging_config(settings.service_name),
        env_prefix=None,
        error_handler=SiteErrorHandler(),
    )
    app.config.update(
        {
            # Production error pages: JSON, never a traceback (debug is off in serve()).
            "FALLBACK_ERROR_FORMAT": "json",
            "ACCESS_LOG": False,  # website.responses writes the JSON access log
            "MOTD": False,
            "REQUEST_MAX_SIZE": settings.request_max_bytes,
            "KEEP_ALIVE_TIMEOUT": settings.keep_alive_seconds,
            "GRACEFUL_SHUTDOWN_TIMEOUT": settings.shutdown_grace_seconds,
            "REQUEST_TIMEOUT": 30,
            "RESPONSE_TIMEOUT": 45,
        }
    )
    STDOUT.flush_at_exit()

    app.blueprint(pages.bp)
    app.blueprint(health.bp)
    app.blueprint(static.bp)
    if settings.enable_test_routes:
        app.blueprint(testing.bp)

    app.main_process_start(lifecycle.create_shared_flag)
    app.before_server_start(lifecycle.attach_shared_flag)

    @app.after_server_start
    async def started(app: SiteApp) -> None:
        if settings.workers == 1:
            lifecycle.install_single_process_handlers(app)
        logger.info(
            READY_MESSAGE,
            extra={
                "version": settings.app_version,
                "git_commit": settings.git_commit,
                "drain_seconds": settings.drain_seconds,
                "workers": settings.workers,
            },
        )
        # Read the ECS task metadata in the background: requests never wait for it.
        app.add_task(show_task_facts(app), name="ecs-task-metadata")

    @app.after_server_stop
    async def flush_logs(app: SiteApp) -> None:
        STDOUT.flush()

    if settings.workers > 1:
        app.main_process_ready(lifecycle.install_main_process_handler)
    return app


async def show_task_facts(app: SiteApp) -> None:
    """Read the task metadata once, then render the home page again with it."""
    await load_task_info(app)
    if app.ctx.task is not None:
        app.ctx.pages = RenderedPages.render(app.ctx.settings, app.ctx.started_at, app.ctx.task)
