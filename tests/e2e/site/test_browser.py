"""A real browser loads the site: it renders, styled, with no console errors or CSP violations.

A CSP that blocks the page's own stylesheet is exactly the bug only a browser catches; the
second test proves this check notices such a violation on a deliberately broken page.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.site.cdp import Chromium
from tests.support.net import LOOPBACK, free_port
from tests.support.siteproc import SiteProcess, launch, site_env, wait_until_serving
from website.responses import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ACCENT_RGB = "rgb(232, 89, 12)"  # h1 colour in site/website/static/site.css (#e8590c)


@pytest.fixture(scope="module")
def running_site() -> Iterator[SiteProcess]:
    port = free_port()
    site = launch(port, site_env(port, ENABLE_TEST_ROUTES="false"))
    try:
        wait_until_serving(site)
        yield site
    finally:
        site.process.kill()
        site.process.wait(timeout=10)


def test_home_page_renders_styled_without_errors_or_csp_violations(
    chromium: str, running_site: SiteProcess
) -> None:
    with Chromium(chromium) as browser:
        report = browser.load(running_site.url + "/")
        browser.screenshot(ARTIFACTS / "site-home.png")

    assert report.h1 == "spotops"
    assert report.h1_color == ACCENT_RGB  # the site's own stylesheet was applied
    assert report.stylesheets_applied == 1
    assert report.csp_violations == []
    assert report.problems == []
    assert (ARTIFACTS / "site-home.png").read_bytes().startswith(b"\x89PNG")


BROKEN_PAGE = b"""<!doctype html><html><head><title>broken</title>
<style>h1 { color: red; }</style></head><body><h1 style="color: blue">broken</h1></body></html>"""


class _BrokenPage(BaseHTTPRequestHandler):
    """Serves a page with inline styles under the site's own CSP."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("Content-Length", str(len(BROKEN_PAGE)))
        self.end_headers()
        self.wfile.write(BROKEN_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_the_check_reports_a_csp_violation_on_a_broken_page(chromium: str) -> None:
    server = ThreadingHTTPServer((LOOPBACK, 0), _BrokenPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Chromium(chromium) as browser:
            report = browser.load(f"http://{LOOPBACK}:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()

    assert report.h1 == "broken"
    assert report.h1_color != "rgb(255, 0, 0)"  # the inline style really was blocked
    assert report.csp_violations, report.problems
    assert any("style" in violation for violation in report.csp_violations)
