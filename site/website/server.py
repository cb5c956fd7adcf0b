"""Run the site: one process by default.

Why one process: the task has 0.25 vCPU and 512 MiB. Measured on this project, Sanic's
default multi-process mode runs a manager and helper processes besides the worker (4
processes, about 125 MB RSS for one worker, about 0.75 s to the first answer), while
``single_process`` serves from one process in about 38 MB and 0.25 s. A quarter of a CPU
cannot run two workers in parallel anyway, so extra workers buy memory use, not
throughput; the service scales out with more tasks instead. ``WORKERS`` > 1 still works
(for bigger task sizes) and drains the same way.
"""

from __future__ import annotations

from functools import partial

from sanic import Sanic
from sanic.worker.loader import AppLoader

from website.app import create_app
from website.settings import Settings


def serve(settings: Settings) -> None:
    """Serve until stopped; return normally after a graceful shutdown."""
    loader = AppLoader(factory=partial(create_app, settings))
    app = loader.load()
    prepare = partial(
        app.prepare,
        host=settings.host,
        port=settings.port,
        debug=False,
        access_log=False,
        motd=False,
    )
    if settings.workers == 1:
        prepare(single_process=True)
        Sanic.serve_single(primary=app)
    else:
        prepare(workers=settings.workers)
        Sanic.serve(primary=app, app_loader=loader)
