"""SIGTERM drains over real HTTP: /readyz turns 503, everything else keeps serving, the
request in flight finishes with 200, the listener closes, and the process exits 0."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.support.net import LOOPBACK
from tests.support.siteproc import SiteProcess

DRAIN = 2.0
GRACE = 5.0
SLOW = 4.0  # longer than the drain, so the request is still running when the listener closes


def _wait_for_log(site: SiteProcess, message: str, request_id: str | None = None) -> None:
    for _ in range(400):
        for entry in site.log_entries():
            if entry["message"] == message and request_id in (None, entry.get("request_id")):
                return
        time.sleep(0.05)
    raise AssertionError(f"never logged {message!r}:\n" + "".join(site.stdout))


def _wait_for_readyz(site: SiteProcess, status: int) -> None:
    for _ in range(200):
        if site.get("/readyz").status_code == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"/readyz never answered {status}")


def _slow_request(site: SiteProcess, outcome: dict[str, object]) -> None:
    try:
        with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as client:
            response = client.get(
                "/_test/slow", params={"seconds": SLOW}, headers={"X-Request-ID": "in-flight"}
            )
        outcome["status"] = response.status_code
        outcome["body"] = response.json()
    except httpx.HTTPError as exc:  # recorded so the assertion shows what went wrong
        outcome["error"] = repr(exc)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drains_then_finishes_in_flight_and_exits_0(
    start_site: Callable[..., SiteProcess], workers: str
) -> None:
    site = start_site(WORKERS=workers, DRAIN_SECONDS=str(DRAIN), SHUTDOWN_GRACE_SECONDS=str(GRACE))
    _wait_for_readyz(site, 200)
    outcome: dict[str, object] = {}
    slow = threading.Thread(target=_slow_request, args=(site, outcome))
    slow.start()
    _wait_for_log(site, "slow request in flight", "in-flight")

    site.terminate()

    _wait_for_readyz(site, 503)
    assert site.get("/healthz").status_code == 200  # liveness stays green: no restart
    assert site.get("/").status_code == 200  # new requests are still served while draining
    _wait_for_log(site, "stopping: no new connections; in-flight requests may finish")
    if workers == "1" and slow.is_alive():
        with pytest.raises(ConnectionRefusedError):  # listener closed, request still running
            socket.create_connection((LOOPBACK, site.port), timeout=2).close()
    slow.join(timeout=30)
    assert outcome == {"status": 200, "body": {"slept": SLOW}}
    assert site.wait(timeout=DRAIN + GRACE + 15) == 0
    messages = [entry["message"] for entry in site.log_entries()]
    assert messages.index("SIGTERM: draining") < messages.index("GET /_test/slow 200")


def test_second_sigterm_ends_the_drain_early(start_site: Callable[..., SiteProcess]) -> None:
    site = start_site(DRAIN_SECONDS="60")
    site.terminate()
    _wait_for_readyz(site, 503)

    site.terminate()

    assert site.wait(timeout=20) == 0
    reasons = [entry.get("reason") for entry in site.log_entries()]
    assert "second SIGTERM" in reasons
