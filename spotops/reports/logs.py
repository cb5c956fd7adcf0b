"""Reading the stage's logs: the site's container logs and each ops function's.

Log groups: the site's is the site stack's ``LogGroupName`` output (``/ecs/<app>-<stage>/site``
by default), each ops function's is ``/aws/lambda/<app>-<stage>-<function>``. Events of
several groups are merged by time. Nothing here prints; :mod:`spotops.cli.render` formats lines.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from spotops.errors import UsageError, is_error

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

SITE_SOURCE = "site"
ALL_OPS = "ops"
ALL = "all"
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class LogSource:
    """One log group and the short name lines are labelled with."""

    label: str
    group: str


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    source: str
    stream: str
    message: str
    event_id: str = ""


def site_log_group(app: str, stage: str, site_outputs: dict[str, str] | None = None) -> str:
    """The site's log group: the stack's output, else the name the template gives it."""
    return (site_outputs or {}).get("LogGroupName") or f"/ecs/{app}-{stage}/site"


def function_log_group(app: str, stage: str, function: str) -> str:
    return f"/aws/lambda/{app}-{stage}-{function}"


def choose_sources(
    which: Sequence[str],
    *,
    app: str,
    stage: str,
    functions: Sequence[str],
    site_outputs: dict[str, str] | None = None,
) -> list[LogSource]:
    """The log groups to read for ``--source`` values (``site``, ``ops``, ``all`` or a
    function name).

    Raises
    ------
    UsageError
        An unknown source, naming the known ones.
    """
    site = LogSource(SITE_SOURCE, site_log_group(app, stage, site_outputs))
    ops = [LogSource(f, function_log_group(app, stage, f)) for f in functions]
    chosen: list[LogSource] = []
    for name in which or (SITE_SOURCE,):
        if name == SITE_SOURCE:
            found = [site]
        elif name == ALL_OPS:
            found = ops
        elif name == ALL:
            found = [site, *ops]
        else:
            found = [s for s in ops if s.label == name]
            if not found:
                known = ", ".join([SITE_SOURCE, ALL_OPS, ALL, *functions])
                raise UsageError(f"Unknown log source {name!r}. Known: {known}.")
        chosen += [s for s in found if s not in chosen]
    return chosen


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: a duration back from now (``30s``, ``10m``, ``2h``, ``1d``, ``1w``) or an
    ISO-8601 time.

    Example
    -------
    >>> parse_since("2h", datetime(2026, 1, 1, 12, tzinfo=UTC)).hour
    10
    """
    now = now or datetime.now(UTC)
    matched = _DURATION.match(text.strip().lower())
    if matched:
        amount, unit = int(matched.group(1)), _UNITS[matched.group(2)]
        return now - timedelta(**{unit: amount})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r}: write a duration (30s, 10m, 2h, 1d, 1w) or an ISO-8601 time "
            "(2026-12-01T10:00:00Z)."
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class LogReader:
    """Read (and follow) log events of several groups, merged by time.

    Parameters
    ----------
    logs:
        A boto3 CloudWatch Logs client.
    sleep:
        Pause between polls while following; injected for tests.
    poll_seconds:
        How often ``follow`` asks for new events.
    """

    def __init__(
        self,
        logs: CloudWatchLogsClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = 2.0,
    ) -> None:
        self._logs = logs
        self._sleep = sleep
        self._poll = poll_seconds

    def read(
        self, sources: Sequence[LogSource], since: datetime, pattern: str = ""
    ) -> tuple[list[LogLine], list[LogSource]]:
        """Events since ``since`` matching ``pattern`` (CloudWatch filter syntax), oldest
        first, and the sources whose log group does not exist (yet)."""
        lines: list[LogLine] = []
        missing: list[LogSource] = []
        start = int(since.timestamp() * 1000)
        for source in sources:
            try:
                lines.extend(self._events(source, start, pattern))
            except ClientError as exc:
                if not is_error(exc, "ResourceNotFoundException"):
                    raise
                missing.append(source)
        lines.sort(key=lambda line: (line.timestamp, line.source, line.event_id))
        return lines, missing

    def follow(
        self,
        sources: Sequence[LogSource],
        since: datetime,
        pattern: str = "",
        *,
        caught_up: Callable[[Sequence[LogSource]], None] | None = None,
    ) -> Iterator[LogLine]:
        """Events since ``since``, then new ones as they arrive, until the caller stops
        (Ctrl-C). Events are never repeated.

        ``caught_up`` is called once, after the events since ``since`` and before the first
        wait, with the sources whose log group does not exist yet: from then on, silence
        means no new events, which the caller can say.
        """
        seen: set[str] = set()
        start = since
        waiting = caught_up
        while True:
            lines, missing = self.read(sources, start, pattern)
            for line in lines:
                key = line.event_id or f"{line.source}{line.timestamp}{line.message}"
                if key in seen:
                    continue
                seen.add(key)
                yield line
            if waiting is not None:
                waiting(missing)
                waiting = None
            if lines:
                # Events can arrive late within the same millisecond: re-read from the last one.
                start = lines[-1].timestamp
            self._sleep(self._poll)

    def _events(self, source: LogSource, start: int, pattern: str) -> Iterator[LogLine]:
        kwargs: dict[str, Any] = {"logGroupName": source.group, "startTime": start}
        if pattern:
            kwargs["filterPattern"] = pattern
        while True:
            page = self._logs.filter_log_events(**kwargs)
            for event in page.get("events", []):
                yield LogLine(
                    timestamp=datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC),
                    source=source.label,
                    stream=str(event.get("logStreamName", "")),
                    message=str(event.get("message", "")).rstrip("\n"),
                    event_id=str(event.get("eventId", "")),
                )
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                return
            kwargs["nextToken"] = token
