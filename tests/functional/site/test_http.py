"""The real site over real HTTP: routes, headers, errors, access log."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.support.net import LOOPBACK
from tests.support.siteproc import SiteProcess

TRACE = "Root=1-67891233-abcdef012345678912345678;Sampled=1"


def _wait_for_access_line(site: SiteProcess, request_id: str) -> dict:  # type: ignore[type-arg]
    for _ in range(100):
        for entry in site.access_entries():
            if entry["request_id"] == request_id:
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {request_id}")


def test_home_page_names_the_service_and_shows_the_build(site: SiteProcess) -> None:
    response = site.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>spotops</h1>" in response.text
    assert "9.8.7" in response.text
    assert "c0ffee1" in response.text
    assert 'href="/static/site.css"' in response.text


def test_stylesheet_and_icon_are_served(site: SiteProcess) -> None:
    css = site.get("/static/site.css")
    icon = site.get("/static/favicon.svg")

    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ".facts" in css.text
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")


def test_probes_and_version(site: SiteProcess) -> None:
    health = site.get("/healthz")
    ready = site.get("/readyz")
    version = site.get("/version")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert version.status_code == 200
    body = version.json()
    assert body["version"] == "9.8.7"
    assert body["git_commit"] == "c0ffee1"
    assert body["image_tag"] == "c0ffee1"
    assert body["image_digest"] is None
    assert body["started_at"].endswith("+00:00")


def test_security_headers_and_no_server_header(site: SiteProcess) -> None:
    plain = site.get("/")
    https = site.get("/", headers={"X-Forwarded-Proto": "https"})

    csp = plain.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert plain.headers["referrer-policy"] == "no-referrer"
    assert "server" not in plain.headers
    assert "strict-transport-security" not in plain.headers
    assert "max-age=" in https.headers["strict-transport-security"]


def test_404_and_405_answer_json_without_traces(site: SiteProcess) -> None:
    missing = site.get("/no/such/page")
    with site.client() as client:
        wrong_method = client.delete("/healthz")

    assert missing.status_code == 404
    assert missing.json()["status"] == 404
    assert wrong_method.status_code == 405
    assert {m.strip() for m in wrong_method.headers["allow"].split(",")} == {"GET", "HEAD"}
    for response in (missing, wrong_method):
        assert response.headers["content-type"] == "application/json"
        assert "Traceback" not in response.text
        assert ".py" not in response.text
        assert response.headers["x-content-type-options"] == "nosniff"


def _raw_exchange(site: SiteProcess, head: str) -> tuple[int, str]:
    """Send only a request head (the body it declares never follows); return status, body."""
    with socket.create_connection((LOOPBACK, site.port), timeout=10) as sock:
        sock.sendall(head.encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.decode().partition("\r\n")
    return int(status_line.split()[1]), rest.partition("\r\n\r\n")[2]


@pytest.mark.parametrize(("method", "path"), [("POST", "/"), ("GET", "/healthz"), ("PUT", "/x")])
def test_413_before_the_body_is_read_on_any_route(
    site: SiteProcess, method: str, path: str
) -> None:
    head = f"{method} {path} HTTP/1.1\r\nHost: site\r\nContent-Length: 10485760\r\n\r\n"

    status, body = _raw_exchange(site, head)

    assert status == 413
    assert json.loads(body)["message"] == "request body is too large"
    assert "Traceback" not in body


def test_a_body_under_the_limit_is_fine(site: SiteProcess) -> None:
    with site.client() as client:
        response = client.request("GET", "/healthz", content=b"x" * 1000)

    assert response.status_code == 200


def test_one_json_access_line_per_request_with_trace_id(site: SiteProcess) -> None:
    response = site.get(
        "/healthz?probe=1", headers={"X-Amzn-Trace-Id": TRACE, "X-Request-ID": "req-functional-1"}
    )

    entry = _wait_for_access_line(site, "req-functional-1")
    assert response.headers["x-request-id"] == "req-functional-1"
    assert entry["method"] == "GET"
    assert entry["path"] == "/healthz"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert entry["xray_trace_id"] == "1-67891233-abcdef012345678912345678"
    assert entry["service"] == "spotops"
    assert sum(e["request_id"] == "req-functional-1" for e in site.access_entries()) == 1


def test_errors_are_access_logged_too(site: SiteProcess) -> None:
    site.get("/missing-page", headers={"X-Request-ID": "req-functional-404"})

    entry = _wait_for_access_line(site, "req-functional-404")
    assert entry["status"] == 404
    assert entry["xray_trace_id"] is None


def test_keep_alive_connection_serves_several_requests(site: SiteProcess) -> None:
    with httpx.Client(base_url=site.url, trust_env=False, timeout=10) as client:
        statuses = [client.get(path).status_code for path in ("/", "/healthz", "/version")]

    assert statuses == [200, 200, 200]
