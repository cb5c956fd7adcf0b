"""Every response carries the security headers; errors never carry a traceback."""

from __future__ import annotations

import logging

import pytest
from sanic import Sanic

from website.middleware import CONTENT_SECURITY_POLICY, client_ip, xray_trace_id

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.mark.parametrize("path", ["/", "/healthz", "/version", "/static/site.css", "/missing"])
def test_every_response_has_the_security_headers(app: Sanic, path: str) -> None:
    _, response = app.test_client.get(path)

    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "server" not in headers
    assert "strict-transport-security" not in headers  # plain HTTP


def test_hsts_only_when_the_alb_says_https(app: Sanic) -> None:
    _, https = app.test_client.get("/", headers={"X-Forwarded-Proto": "https"})
    _, http = app.test_client.get("/", headers={"X-Forwarded-Proto": "http"})

    assert https.headers["strict-transport-security"].startswith("max-age=63072000")
    assert "strict-transport-security" not in http.headers


def test_unhandled_error_is_a_500_without_traceback(app: Sanic) -> None:
    @app.get("/explode")
    async def explode(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internal detail")

    _, response = app.test_client.get("/explode")

    assert response.status == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json["status"] == 500
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert "frames" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"


def test_body_over_the_limit_is_413(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(request_max_bytes=1024)

    _, response = app.test_client.post("/", content=b"x" * 4096)

    assert response.status == 413
    assert "Traceback" not in response.text


def test_access_log_line_has_request_facts(app: Sanic, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="website.access"):
        _, response = app.test_client.get(
            "/healthz", headers={"X-Amzn-Trace-Id": TRACE, "X-Request-ID": "req-42"}
        )

    [record] = [r for r in caplog.records if r.name == "website.access"]
    assert record.method == "GET"  # type: ignore[attr-defined]
    assert record.path == "/healthz"  # type: ignore[attr-defined]
    assert record.status == 200  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]
    assert record.request_id == "req-42" == response.headers["x-request-id"]  # type: ignore[attr-defined]
    assert record.xray_trace_id == "1-5759e988-bd862e3fe1be46a994272793"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (TRACE, "1-5759e988-bd862e3fe1be46a994272793"),
        (
            "Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678",
            "1-67891233-abcdef012345678912345678",
        ),
        ("Sampled=1", None),
        ("", None),
        (None, None),
    ],
)
def test_xray_trace_id_is_the_root(header: str | None, expected: str | None) -> None:
    assert xray_trace_id(header) == expected


def test_client_ip_is_the_hop_the_alb_added(app: Sanic) -> None:
    request, _ = app.test_client.get("/", headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})

    assert client_ip(request) == "198.51.100.7"
