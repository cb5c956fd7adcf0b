"""Smoke tests of a candidate revision through the load balancer's test listener rule.

ECS routes requests that carry the test header to the new (green) revision while users stay
on the old one, then asks the deployment hook. These probes are what "the new version works"
means before any user sees it: each path answers 200 within its timeout (``/version`` with
a JSON body naming the commit). A probe is tried a few times, because the first requests
after a routing change can still land on a draining connection; the whole run has one time
budget, and running out of it is a failure, never a wait.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

USER_AGENT = "spotops-deployment-hook"


@dataclass(frozen=True)
class Probe:
    """One request and what a pass looks like."""

    path: str
    json_key: str | None = None  # the body must be a JSON object with this key


PROBES = (Probe("/healthz"), Probe("/version", json_key="git_commit"), Probe("/"))


@dataclass(frozen=True)
class Target:
    """Where the candidate answers: the site's URL and the header that routes to it."""

    base_url: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


@dataclass(frozen=True)
class ProbeResult:
    path: str
    passed: bool
    detail: str  # "200", "503", "timed out", "not JSON", ...
    attempts: int
    # The JSON object a passing JSON probe answered (``/version``: which build answered).
    document: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SmokeReport:
    results: list[ProbeResult] = field(default_factory=list)
    out_of_time: bool = False

    @property
    def passed(self) -> bool:
        """All probes passed and none was cut short by the time budget."""
        return (
            not self.out_of_time
            and len(self.results) == len(PROBES)
            and all(r.passed for r in self.results)
        )

    def document(self, path: str) -> Mapping[str, Any] | None:
        """The JSON object the probe of ``path`` answered when it passed (``None``: none)."""
        return next((r.document for r in self.results if r.path == path and r.passed), None)

    def summary(self) -> str:
        parts = [f"{r.path} {'ok' if r.passed else r.detail}" for r in self.results]
        if self.out_of_time:
            parts.append("time budget spent")
        return "; ".join(parts) or "no probe ran"


Fetch = Callable[[str, Mapping[str, str], float], Response]


def http_get(url: str, headers: Mapping[str, str], timeout: float) -> Response:
    """GET without following redirects (a redirect is an answer, not a pass)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url[:80]}")
    request = urllib.request.Request(url, headers=dict(headers), method="GET")  # noqa: S310
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as answer:
            return Response(answer.status, answer.read(65536))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, b"")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def judge(probe: Probe, response: Response) -> str | None:
    """Why ``response`` fails ``probe`` (``None``: it passes)."""
    if response.status != 200:
        return f"HTTP {response.status}"
    if probe.json_key is None:
        return None
    try:
        document = json.loads(response.body)
    except ValueError:
        return "not JSON"
    if not isinstance(document, dict) or probe.json_key not in document:
        return f"no {probe.json_key} in the JSON body"
    return None


def run_smoke_tests(
    target: Target,
    *,
    budget_seconds: float,
    request_timeout: float = 5.0,
    attempts: int = 3,
    pause_seconds: float = 2.0,
    probes: Sequence[Probe] = PROBES,
    fetch: Fetch = http_get,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SmokeReport:
    """Run ``probes`` in order; stop at the first that fails all its attempts."""
    deadline = clock() + budget_seconds
    headers = {"User-Agent": USER_AGENT, **target.headers}
    results: list[ProbeResult] = []
    for probe in probes:
        url = target.base_url.rstrip("/") + probe.path
        detail = "not tried"
        tried = 0
        while tried < attempts:
            left = deadline - clock()
            if left <= 0:
                results.append(ProbeResult(probe.path, False, detail, tried))
                return SmokeReport(results, out_of_time=True)
            tried += 1
            response: Response | None = None
            try:
                response = fetch(url, headers, min(request_timeout, left))
                why = judge(probe, response)
            except OSError as exc:  # URLError and socket timeouts included
                why = _network_error(exc)
            if why is None:
                document = _document(probe, response)
                results.append(ProbeResult(probe.path, True, "200", tried, document))
                break
            detail = why
            if tried < attempts:
                sleep(max(0.0, min(pause_seconds, deadline - clock())))
        else:
            results.append(ProbeResult(probe.path, False, detail, tried))
            return SmokeReport(results)
    return SmokeReport(results)


def _document(probe: Probe, response: Response | None) -> Mapping[str, Any] | None:
    """The JSON object of a passing JSON probe (``judge`` checked that it is one)."""
    if probe.json_key is None or response is None:
        return None
    document = json.loads(response.body)
    return document if isinstance(document, dict) else None


def _network_error(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "timed out"
    return f"{type(reason).__name__}: {reason}"[:200]
