"""Graceful shutdown for Fargate Spot: drain, then stop, then finish what is in flight.

ECS stops a task (Spot interruption, scale-in, deployment) by deregistering it from the
target group and sending SIGTERM; SIGKILL follows after ``stopTimeout`` (at most 120 s).
On SIGTERM the site:

1. flips ``/readyz`` to 503 and keeps serving every request, old and new, for
   ``DRAIN_SECONDS``, so the load balancer stops routing to the task before it stops
   listening (requests that reach a closed port are 502s for users);
2. then stops accepting connections and closes idle keep-alive ones (Sanic's ``stop``);
3. gives requests still in flight ``SHUTDOWN_GRACE_SECONDS`` to finish, and exits 0.

Sanic's own handler would stop at once on SIGTERM, so the site replaces it once the server
is up. SIGINT (Ctrl-C in ``make run``) skips the drain; a second SIGTERM ends it early.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from multiprocessing.sharedctypes import RawValue
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import FrameType

    from website.context import SiteApp

logger = logging.getLogger("website.lifecycle")
STOPPING = "stopping: no new connections; in-flight requests may finish"


class DrainState:
    """Whether the drain has begun.

    With one process it is a plain flag. With several workers the main process receives
    SIGTERM and flips a byte of shared memory that every worker's ``/readyz`` reads.
    """

    def __init__(self) -> None:
        self._local = False
        self._shared: Any = None

    def attach(self, shared: Any) -> None:
        """Read and write the drain flag in ``shared`` (a ``RawValue('b')``) from now on."""
        self._shared = shared

    @property
    def is_draining(self) -> bool:
        if self._shared is not None:
            return bool(self._shared.value)
        return self._local

    def begin(self) -> bool:
        """Start draining; return False when the drain had already begun."""
        if self.is_draining:
            return False
        self._local = True
        if self._shared is not None:
            self._shared.value = 1
        return True


# ---- one process (the default): everything happens on the event loop ---------------------


def install_single_process_handlers(app: SiteApp) -> None:
    """Replace Sanic's SIGTERM/SIGINT handlers with draining ones (after_server_start)."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, _on_sigterm, app, loop)
    loop.add_signal_handler(signal.SIGINT, _stop_now, app, "SIGINT")


def _on_sigterm(app: SiteApp, loop: asyncio.AbstractEventLoop) -> None:
    if not app.ctx.drain.begin():
        _stop_now(app, "second SIGTERM")
        return
    seconds = app.ctx.settings.drain_seconds
    logger.info("SIGTERM: draining", extra={"drain_seconds": seconds})
    loop.call_later(seconds, _stop_now, app, "drain window over")


def _stop_now(app: SiteApp, reason: str) -> None:
    if app.ctx.stopping:
        return
    app.ctx.stopping = True
    logger.info(
        STOPPING,
        extra={"reason": reason, "grace_seconds": app.config.GRACEFUL_SHUTDOWN_TIMEOUT},
    )
    # terminate=False: Sanic closes the listener and idle connections, then waits up to
    # GRACEFUL_SHUTDOWN_TIMEOUT for in-flight requests before it cuts them.
    app.stop(terminate=False)


# ---- several workers: the main process drains, then asks Sanic's manager to stop ----------


def create_shared_flag(app: SiteApp) -> None:
    """main_process_start: the byte every worker's DrainState reads."""
    app.shared_ctx.draining = RawValue("b", 0)


def attach_shared_flag(app: SiteApp) -> None:
    """before_server_start: use the main process's flag when there is one."""
    shared = getattr(app.shared_ctx, "draining", None)
    if shared is not None:
        app.ctx.drain.attach(shared)


def install_main_process_handler(app: SiteApp) -> None:
    """main_process_ready: SIGTERM drains for DRAIN_SECONDS, then stops the workers.

    Sanic's manager, when stopped, sends SIGINT to each worker, whose own handler stops it
    gracefully (GRACEFUL_SHUTDOWN_TIMEOUT). SIGINT to the main process stays Sanic's.
    """
    drain = app.ctx.drain
    attach_shared_flag(app)

    def stop_workers(signum: int, frame: FrameType | None) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        reason = "drain window over" if signum == signal.SIGALRM else "second SIGTERM"
        logger.info(STOPPING, extra={"reason": reason, "workers": app.state.workers})
        app.manager.shutdown_signal(signal.SIGTERM, frame)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if not drain.begin():
            stop_workers(signum, frame)
            return
        seconds = app.ctx.settings.drain_seconds
        logger.info("SIGTERM: draining", extra={"drain_seconds": seconds})
        signal.signal(signal.SIGALRM, stop_workers)
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))

    signal.signal(signal.SIGTERM, on_sigterm)
