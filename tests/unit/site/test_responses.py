"""Every response is a SiteResponse: security headers, request id, access line; error pages
too, and never a traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sanic import Sanic
from sanic.headers import format_http1_response

from website.requests import client_ip, xray_trace_id
from website.responses import (
    CONTENT_SECURITY_POLICY,
    GET_AND_HEAD,
    SECURITY_HEADERS,
    SiteResponse,
    header_block,
)

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def access_lines(captured: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    return [e for e in entries if e["logger"] == "website.access"]


@pytest.mark.parametrize("path", ["/", "/healthz", "/version", "/static/site.css", "/missing"])
def test_every_response_has_the_security_headers(app: Sanic, path: str) -> None:
    _, response = app.test_client.get(path)

    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert "server" not in headers
    assert "strict-transport-security" not in headers  # plain HTTP
    assert len(headers.get_list("content-security-policy")) == 1


def test_the_security_header_block_is_written_as_the_separate_headers() -> None:
    separate = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    assert format_http1_response(200, [header_block(SECURITY_HEADERS)]) == (
        format_http1_response(200, separate)
    )


def test_a_response_built_by_hand_still_encodes_its_headers() -> None:
    response = SiteResponse(b"{}", content_type="application/json", headers={"X-A": "b\r\nc"})

    encoded = dict(response.processed_headers)

    assert encoded[b"X-A"] == b"bc"  # sanitised as Sanic does
    assert encoded[b"content-type"] == b"application/json"
    assert b"Content-Security-Policy" in encoded


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
    assert response.json["message"] == "request body is too large"
    assert "Traceback" not in response.text


def test_access_line_has_request_facts(app: Sanic, capsys: pytest.CaptureFixture[str]) -> None:
    _, response = app.test_client.get(
        "/healthz", headers={"X-Amzn-Trace-Id": TRACE, "X-Request-ID": "req-42"}
    )

    [entry] = [e for e in access_lines(capsys.readouterr().out) if e["request_id"] == "req-42"]
    assert response.headers["x-request-id"] == "req-42"
    assert entry["level"] == "INFO"
    assert entry["service"] == "spotops"
    assert entry["message"] == "GET /healthz 200"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/healthz", 200)
    assert entry["duration_ms"] >= 0
    assert entry["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert entry["timestamp"].endswith("+00:00")
    assert list(entry) == [
        "timestamp",
        "level",
        "service",
        "logger",
        "message",
        "method",
        "path",
        "status",
        "duration_ms",
        "request_id",
        "xray_trace_id",
        "client_ip",
        "user_agent",
    ]


def test_each_request_gets_its_own_id(app: Sanic) -> None:
    ids = {app.test_client.get("/healthz")[1].headers["x-request-id"] for _ in range(3)}

    assert len(ids) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_every_get_route_answers_head(app: Sanic) -> None:
    routes = [route for route in app.router.routes if "GET" in route.methods]

    assert routes
    for route in routes:
        assert set(GET_AND_HEAD) <= set(route.methods), route.path


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
