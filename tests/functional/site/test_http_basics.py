"""HTTP basics over real HTTP: HEAD on every GET route, 431 for an oversized head, and client
errors logged at INFO/WARNING, never at ERROR with a traceback."""

from __future__ import annotations

import json
import socket
import time
import uuid

import httpx
import pytest

from tests.support.net import LOOPBACK
from tests.support.siteproc import SiteProcess

GET_ROUTES = [
    "/",
    "/healthz",
    "/readyz",
    "/version",
    "/static/site.css",
    "/static/favicon.svg",
    "/_test/slow?seconds=0",
]
# Headers that differ between two responses by design.
PER_RESPONSE = {"x-request-id"}


def _exchange(site: SiteProcess, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes; return status, headers, body."""
    with socket.create_connection((LOOPBACK, site.port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("path", GET_ROUTES)
def test_head_answers_every_get_route_with_its_headers_and_no_body(
    site: SiteProcess, path: str
) -> None:
    with site.client() as client:
        get = client.get(path)
        head = client.head(path)

    assert get.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    same = {k: v for k, v in get.headers.items() if k not in PER_RESPONSE}
    assert {k: v for k, v in head.headers.items() if k not in PER_RESPONSE} == same


def test_head_of_a_missing_page_is_404(site: SiteProcess) -> None:
    with site.client() as client:
        response = client.head("/no/such/page")

    assert response.status_code == 404
    assert response.content == b""


def test_a_20_kb_header_gets_431_with_the_security_headers(site: SiteProcess) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: site\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"

    status, headers, body = _exchange(site, raw)

    assert status == 431
    assert json.loads(body)["message"] == "request headers are too large"
    assert headers["x-content-type-options"] == "nosniff"
    assert "Traceback" not in body.decode()


def test_a_head_just_under_the_limit_is_served(site: SiteProcess) -> None:
    response = site.get("/healthz", headers={"X-Big": "a" * 6_000})

    assert response.status_code == 200


def _wait_for_access(site: SiteProcess, count: int) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + 10
    while len(entries := site.access_entries()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return entries


def _settled_access_count(site: SiteProcess) -> int:
    """The number of access entries once every earlier request's entry is in.

    The site is shared by the module and its log is read by a thread, so an earlier test's entry
    can land after this test starts counting; a request of our own, waited for, is a barrier.
    """
    barrier = f"/barrier/{uuid.uuid4().hex}"
    assert site.get(barrier).status_code == 404
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        paths = [e["path"] for e in site.access_entries()]
        if barrier in paths:
            return paths.index(barrier) + 1
        time.sleep(0.05)
    raise AssertionError(f"the barrier request {barrier} was never logged")


def test_client_errors_are_logged_at_info_or_warning_never_error(site: SiteProcess) -> None:
    before = _settled_access_count(site)
    with httpx.Client(base_url=site.url, trust_env=False, timeout=10) as client:
        for path in ("/no/such/page", "/static/nope.css"):
            assert client.get(path).status_code == 404
        assert client.delete("/healthz").status_code == 405
    probes = [
        (b"GET /../../etc/passwd HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n", 404),
        (b"GET /static/../app.py HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n", 404),
        (
            b"GET /static/%2e%2e/website/app.py HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n",
            404,
        ),
        (b"GET /static/..%2f..%2fapp.py HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n", 404),
        (
            b"POST /x HTTP/1.1\r\nHost: s\r\nConnection: close\r\nContent-Length: 10485760\r\n\r\n",
            413,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: s\r\nConnection: close\r\nX-Big: "
            + b"a" * 20_000
            + b"\r\n\r\n",
            431,
        ),
        (b"NOT-HTTP\r\n\r\n", 400),
    ]
    for raw, expected in probes:
        assert _exchange(site, raw)[0] == expected, raw[:40]

    entries = _wait_for_access(site, before + 3 + len(probes))[before:]

    statuses = sorted(e["status"] for e in entries)
    assert statuses == sorted([404, 404, 405] + [code for _, code in probes])
    assert {e["level"] for e in entries} <= {"INFO", "WARNING"}
    for entry in site.log_entries():
        assert entry["level"] != "ERROR", entry
        assert "exception" not in entry, entry
