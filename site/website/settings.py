"""The site's settings: read once from the environment, at start, into one typed object.

Handlers never read ``os.environ``; they read ``request.app.ctx.settings``. A bad value stops
the site before it binds a port, with a one-line message naming the variable.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

# ECS stops a task with SIGTERM, then SIGKILL after the container's stopTimeout (at most
# 120 s; Fargate Spot gives the same two minutes). Drain window + in-flight grace must fit.
ECS_MAX_STOP_TIMEOUT_SECONDS = 120.0
_SHUTDOWN_HEADROOM_SECONDS = 10.0
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable holds a value the site cannot start with."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    """Everything the site is configured with. Every field has a default fit for production.

    Attributes
    ----------
    host, port:
        Where to listen (``HOST``, default ``0.0.0.0``; ``PORT``, default 8080).
    service_name:
        Name shown on the page and in every log line (``SERVICE_NAME``, default ``spotops``).
    app_version, git_commit, image_tag, image_digest:
        Build facts shown on ``/`` and ``/version`` (``APP_VERSION``, ``GIT_COMMIT``,
        ``IMAGE_TAG``, ``IMAGE_DIGEST``); the image bakes them in, ECS may override them.
    workers:
        Worker processes (``WORKERS``, default 1: one process, no process manager; see
        ``website.server``).
    drain_seconds:
        After SIGTERM, how long ``/readyz`` answers 503 while everything else keeps serving,
        so the load balancer takes the task out before it stops listening (``DRAIN_SECONDS``,
        default 20: longer than an ALB health check needs to notice, 2 x 5 s, plus the
        deregistration propagating).
    shutdown_grace_seconds:
        After the drain, how long requests still in flight may take to finish before they are
        cut (``SHUTDOWN_GRACE_SECONDS``, default 15). Drain + grace must stay under ECS's
        120 s stopTimeout with 10 s to spare.
    request_max_bytes:
        Largest request body accepted; bigger ones get 413 (``REQUEST_MAX_BYTES``, default
        65536: the site takes no uploads).
    keep_alive_seconds:
        Idle keep-alive timeout (``KEEP_ALIVE_SECONDS``, default 75: longer than the ALB's
        60 s idle timeout, so the ALB, not the site, closes idle connections and never sends
        a request down a socket the site is closing, which would surface as a 502).
    metadata_uri:
        ``ECS_CONTAINER_METADATA_URI_V4``, set by ECS; empty when not on ECS.
    metadata_timeout_seconds:
        Timeout for reading the task metadata once at start (``METADATA_TIMEOUT_SECONDS``,
        default 2).
    enable_test_routes:
        ``ENABLE_TEST_ROUTES``: adds ``/_test/slow`` so tests can hold a request in flight
        across SIGTERM. Default false; never set in a task definition.
    """

    host: str = "0.0.0.0"  # noqa: S104 - a container must listen on its ENI address
    port: int = 8080
    service_name: str = "spotops"
    app_version: str = "0.0.0-dev"
    git_commit: str = "unknown"
    image_tag: str = ""
    image_digest: str = ""
    workers: int = 1
    drain_seconds: float = 20.0
    shutdown_grace_seconds: float = 15.0
    request_max_bytes: int = 65536
    keep_alive_seconds: int = 75
    metadata_uri: str = ""
    metadata_timeout_seconds: float = 2.0
    enable_test_routes: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build the settings from an environment mapping.

        Raises
        ------
        SettingsError
            The first variable whose value is unusable, with the reason.
        """
        reader = _Reader(environ)
        settings = cls(
            host=reader.get("HOST", cls.host, _host),
            port=reader.get("PORT", cls.port, _int_between(1, 65535)),
            service_name=reader.get("SERVICE_NAME", cls.service_name, _name),
            app_version=reader.get("APP_VERSION", cls.app_version, _label),
            git_commit=reader.get("GIT_COMMIT", cls.git_commit, _label),
            image_tag=reader.get("IMAGE_TAG", cls.image_tag, _label),
            image_digest=reader.get("IMAGE_DIGEST", cls.image_digest, _digest),
            workers=reader.get("WORKERS", cls.workers, _int_between(1, 16)),
            drain_seconds=reader.get("DRAIN_SECONDS", cls.drain_seconds, _seconds(0, 100)),
            shutdown_grace_seconds=reader.get(
                "SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds, _seconds(1, 100)
            ),
            request_max_bytes=reader.get(
                "REQUEST_MAX_BYTES", cls.request_max_bytes, _int_between(1024, 100 * 2**20)
            ),
            keep_alive_seconds=reader.get(
                "KEEP_ALIVE_SECONDS", cls.keep_alive_seconds, _int_between(1, 3600)
            ),
            metadata_uri=reader.get("ECS_CONTAINER_METADATA_URI_V4", cls.metadata_uri, _http_url),
            metadata_timeout_seconds=reader.get(
                "METADATA_TIMEOUT_SECONDS", cls.metadata_timeout_seconds, _seconds(0.1, 30)
            ),
            enable_test_routes=reader.get("ENABLE_TEST_ROUTES", cls.enable_test_routes, _bool),
        )
        budget = ECS_MAX_STOP_TIMEOUT_SECONDS - _SHUTDOWN_HEADROOM_SECONDS
        if settings.drain_seconds + settings.shutdown_grace_seconds > budget:
            raise SettingsError(
                "DRAIN_SECONDS",
                f"DRAIN_SECONDS + SHUTDOWN_GRACE_SECONDS must be at most {budget:g} s "
                f"(ECS stopTimeout is at most {ECS_MAX_STOP_TIMEOUT_SECONDS:g} s)",
            )
        return settings


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self._environ.get(name)
        if raw is None:
            return default
        try:
            return parse(raw.strip())
        except ValueError as exc:
            raise SettingsError(name, f"{exc} (got {raw!r})") from exc


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw, 10)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("must be a number of seconds") from None
        if not low <= value <= high:  # also rejects nan
            raise ValueError(f"must be between {low:g} and {high:g} seconds")
        return value

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("must be true or false")


def _host(raw: str) -> str:
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        if raw != "localhost":
            raise ValueError("must be an IP address to listen on") from None
    return raw


def _name(raw: str) -> str:
    if not _NAME.match(raw):
        raise ValueError("must start with a letter and hold only letters, digits, '.', '_', '-'")
    return raw


def _label(raw: str) -> str:
    if len(raw) > 128 or not raw.isprintable():
        raise ValueError("must be at most 128 printable characters")
    return raw


def _digest(raw: str) -> str:
    if raw and not re.fullmatch(r"sha256:[0-9a-f]{64}", raw):
        raise ValueError("must be empty or sha256:<64 hex digits>")
    return raw


def _http_url(raw: str) -> str:
    if not raw:
        return raw
    parts = urlsplit(raw)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError("must be an http:// URL")
    return raw.rstrip("/")
