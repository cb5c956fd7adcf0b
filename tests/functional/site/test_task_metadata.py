"""The ECS task metadata v4 endpoint, played by a small HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.events import load_event
from tests.support.net import LOOPBACK
from tests.support.siteproc import SiteProcess
from website.metadata import MetadataError, TaskInfo, fetch_task_info

TASK_PATH = "/v4/0123456789abcdef-2531612879/task"


class FakeMetadataEndpoint(ThreadingHTTPServer):
    """Answers ``GET <base>/task`` with the documented Fargate document, optionally stalling."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.document = load_event("ecsTaskMetadataV4Fargate")
        self.paths: list[str] = []
        self.stall = False
        self.received = threading.Event()
        self.release = threading.Event()

    @property
    def base_uri(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}{TASK_PATH.removesuffix('/task')}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeMetadataEndpoint

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        self.server.received.set()
        if self.server.stall:
            self.server.release.wait(timeout=30)
        if self.path != TASK_PATH:
            self.send_error(404)
            return
        body = json.dumps(self.server.document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def endpoint() -> Iterator[FakeMetadataEndpoint]:
    server = FakeMetadataEndpoint()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_fetch_reads_the_task_document(endpoint: FakeMetadataEndpoint) -> None:
    info = asyncio.run(fetch_task_info(endpoint.base_uri, timeout=5))

    assert info == TaskInfo.from_task_metadata(endpoint.document)
    assert endpoint.paths == [TASK_PATH]


def test_fetch_error_on_404_and_on_a_stall(endpoint: FakeMetadataEndpoint) -> None:
    with pytest.raises(MetadataError, match="404"):
        asyncio.run(fetch_task_info(endpoint.base_uri + "/elsewhere", timeout=5))

    endpoint.stall = True
    with pytest.raises(MetadataError, match=r"within 0\.3 s|timed out"):
        asyncio.run(fetch_task_info(endpoint.base_uri, timeout=0.3))


def test_site_shows_task_facts_read_once(
    start_site: Callable[..., SiteProcess], endpoint: FakeMetadataEndpoint
) -> None:
    site = start_site(ECS_CONTAINER_METADATA_URI_V4=endpoint.base_uri)

    _wait_for(lambda: "8f03e41243824aea923aca126495f665" in site.get("/").text, "task id on /")
    page = site.get("/").text

    assert "us-east-1b" in page
    assert "FARGATE" in page
    assert endpoint.paths == [TASK_PATH]  # read once, not per request


def test_a_stalled_endpoint_never_blocks_requests(
    start_site: Callable[..., SiteProcess], endpoint: FakeMetadataEndpoint
) -> None:
    endpoint.stall = True
    site = start_site(ECS_CONTAINER_METADATA_URI_V4=endpoint.base_uri, METADATA_TIMEOUT_SECONDS="1")
    assert endpoint.received.wait(timeout=10)

    response = site.get("/")

    assert not endpoint.release.is_set()  # the metadata read is still hanging...
    assert response.status_code == 200  # ...and the page answered anyway
    assert "not running on ECS" in response.text
    _wait_for(
        lambda: any(e["message"] == "ECS task metadata unavailable" for e in site.log_entries()),
        "the timeout to be logged",
    )
    assert site.get("/healthz").status_code == 200
