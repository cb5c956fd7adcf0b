"""``python -m website``: read the settings, then serve (what the container and tests run).

``python -m website --check-port`` only checks that ``HOST:PORT`` is free and exits: ``make
run`` calls it first, so a taken port fails before "Serving" is printed, naming a free one.
"""

from __future__ import annotations

import errno
import os
import socket
import sys

from website.server import serve
from website.settings import Settings, SettingsError

# How far above a taken port `--check-port` looks for a free one to suggest.
SUGGESTION_RANGE = 20


def bind_error(host: str, port: int) -> OSError | None:
    """Why the site could not listen on ``host:port`` now (``None``: it could).

    Binds as the server does (``SO_REUSEADDR``, as asyncio sets it), so a port left in
    TIME_WAIT counts as free and one with a listener as taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def free_port_above(host: str, port: int) -> int | None:
    """The first free port after ``port`` within :data:`SUGGESTION_RANGE`, if any."""
    for candidate in range(port + 1, min(port + SUGGESTION_RANGE, 65535) + 1):
        if bind_error(host, candidate) is None:
            return candidate
    return None


def check_port(settings: Settings) -> int:
    """``--check-port``: 0 when the port is free, else 1 with one line saying what to run."""
    error = bind_error(settings.host, settings.port)
    if error is None:
        return 0
    if error.errno == errno.EADDRINUSE:
        free = free_port_above(settings.host, settings.port)
        hint = f"PORT={free} make run" if free else "choose a free one with PORT=<port> make run"
        print(f"website: port {settings.port} is taken: {hint}", file=sys.stderr)
    else:
        print(
            f"website: cannot listen on {settings.host}:{settings.port}: {error.strerror}",
            file=sys.stderr,
        )
    return 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check-port"]):
        print(f"website: unknown arguments {' '.join(args)} (only --check-port)", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"website: invalid setting {exc}", file=sys.stderr)
        return 2
    if args:
        return check_port(settings)
    try:
        serve(settings)
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        print(
            f"website: cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
