"""Where a load test may go without asking: this machine, or the site a stage deployed.

Anything else might be someone else's server, so ``python -m loadtest`` asks first (or
needs ``--yes``). The stage's own URL is the ``SiteUrl`` output that ``spotops deploy``
recorded in ``.spotops/deployed-<stage>.json``; no AWS call is made to find it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from spotops.stage.deploy import read_record

LOCAL_NAMES = {"localhost", "localhost.localdomain"}


class TargetError(ValueError):
    """The URL is not one a load test can go to."""


@dataclass(frozen=True)
class Target:
    """A load test's target and why it may be loaded."""

    url: str
    local: bool
    stage_url: str | None

    @property
    def needs_confirmation(self) -> bool:
        """Neither this machine nor the stage's own site: ask before sending load."""
        return not self.local and not _same_site(self.url, self.stage_url)


def parse_url(url: str) -> str:
    """The base URL without a trailing slash.

    Raises
    ------
    TargetError
        When it is not ``http(s)://host[:port][/path]``.

    Example
    -------
    >>> parse_url("http://127.0.0.1:8080/")
    'http://127.0.0.1:8080'
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"{url!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise TargetError(f"{url!r}: give the site's base URL, without ?query or #fragment")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise TargetError(f"{url!r}: {exc}") from None
    return url.strip().rstrip("/")


def is_local(url: str) -> bool:
    """Whether ``url`` points at this machine (loopback addresses and ``localhost``).

    Example
    -------
    >>> is_local("http://127.0.0.1:8080"), is_local("http://[::1]/"), is_local("https://example.com")
    (True, True, False)
    """
    host = (urlsplit(url).hostname or "").lower()
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def stage_site_url(project_dir: Path, stage: str) -> str | None:
    """The ``SiteUrl`` that ``spotops deploy`` recorded for ``stage``, if it did."""
    record = read_record(project_dir, stage)
    stacks = record.get("stacks") if record else None
    if not isinstance(stacks, dict):
        return None
    for outputs in stacks.values():
        if isinstance(outputs, dict) and outputs.get("SiteUrl"):
            return str(outputs["SiteUrl"])
    return None


def resolve(url: str, project_dir: Path, stage: str) -> Target:
    """Classify ``url`` (see :class:`Target`)."""
    base = parse_url(url)
    return Target(base, is_local(base), stage_site_url(project_dir, stage))


def _same_site(url: str, other: str | None) -> bool:
    if not other:
        return False
    a, b = urlsplit(url), urlsplit(other)
    default = {"http": 80, "https": 443}
    return (
        a.scheme == b.scheme
        and (a.hostname or "").lower() == (b.hostname or "").lower()
        and (a.port or default[a.scheme]) == (b.port or default.get(b.scheme, 0))
    )
