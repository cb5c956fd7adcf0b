"""``python -m website``: read the settings, then serve (what the container and tests run)."""

from __future__ import annotations

import errno
import os
import sys

from website.server import serve
from website.settings import Settings, SettingsError


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"website: invalid setting {exc}", file=sys.stderr)
        return 2
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
