"""The home page and /version render the build and task facts, escaped."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser

from sanic import Sanic

from website.metadata import TaskInfo
from website.pages import RenderedPages, render_home, version_document
from website.settings import Settings

STARTED = "2026-11-28T00:00:00+00:00"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline_styles = 0
        self.scripts = 0
        self.stylesheets: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.inline_styles += tag == "style" or "style" in found
        self.scripts += tag == "script"
        if tag == "link" and found.get("rel") == "stylesheet":
            self.stylesheets.append(found.get("href") or "")

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def _parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    return collector


def test_home_names_the_service_and_shows_build_facts() -> None:
    settings = Settings(service_name="spotops-dev", app_version="1.2.3", git_commit="abc1234")

    page = _parse(render_home(settings, STARTED, None))

    assert page.text[:2] == ["spotops-dev", "spotops-dev"]  # title, then h1
    assert {"1.2.3", "abc1234", STARTED, "not running on ECS"} <= set(page.text)


def test_home_shows_task_facts_when_on_ecs() -> None:
    task = TaskInfo(task_id="8f03e412", availability_zone="us-east-1b", launch_type="FARGATE")

    page = _parse(render_home(Settings(), STARTED, task))

    assert {"8f03e412", "us-east-1b", "FARGATE"} <= set(page.text)
    assert "not running on ECS" not in page.text


def test_home_uses_only_its_own_stylesheet_so_the_csp_allows_it() -> None:
    page = _parse(render_home(Settings(), STARTED, None))

    assert page.stylesheets == ["/static/site.css"]
    assert page.inline_styles == 0
    assert page.scripts == 0


def test_home_escapes_values() -> None:
    settings = Settings(app_version="<b>1</b>", git_commit='"&')

    page = render_home(settings, STARTED, None)

    assert "<b>1</b>" not in page
    assert "&lt;b&gt;1&lt;/b&gt;" in page
    assert "&quot;&amp;" in page


def test_version_document_has_build_and_start_facts() -> None:
    settings = Settings(app_version="1.2.3", git_commit="abc", image_tag="abc")

    assert version_document(settings, STARTED) == {
        "service": "spotops",
        "version": "1.2.3",
        "git_commit": "abc",
        "image_tag": "abc",
        "image_digest": None,
        "started_at": STARTED,
    }


def test_routes_answer_through_the_test_client(app: Sanic) -> None:
    _, home = app.test_client.get("/")
    _, version = app.test_client.get("/version")
    _, health = app.test_client.get("/healthz")
    _, ready = app.test_client.get("/readyz")
    _, css = app.test_client.get("/static/site.css")

    assert home.status == 200
    assert home.headers["content-type"].startswith("text/html")
    assert "abc1234" in home.text
    assert version.json["version"] == "1.2.3"
    assert version.json["started_at"] == app.ctx.started_at
    assert (health.status, health.json) == (200, {"status": "ok"})
    assert (ready.status, ready.json) == (200, {"status": "ready"})
    assert css.status == 200
    assert css.headers["content-type"].startswith("text/css")


def test_readyz_is_503_once_draining_while_healthz_stays_200(app: Sanic) -> None:
    app.ctx.drain.begin()

    _, ready = app.test_client.get("/readyz")
    _, health = app.test_client.get("/healthz")

    assert (ready.status, ready.json) == (503, {"status": "draining"})
    assert health.status == 200


def test_test_routes_are_absent_unless_enabled(make_app: Callable[..., Sanic]) -> None:
    _, off = make_app().test_client.get("/_test/slow", params={"seconds": "0"})
    _, on = make_app(enable_test_routes=True).test_client.get("/_test/slow?seconds=0")
    _, bad = make_app(enable_test_routes=True).test_client.get("/_test/slow?seconds=99")

    assert off.status == 404
    assert (on.status, on.json) == (200, {"slept": 0.0})
    assert bad.status == 400
    assert bad.json["message"] == "seconds must be a number between 0 and 30"


def test_pages_are_rendered_at_start_into_the_bytes_each_request_sends(app: Sanic) -> None:
    _, home = app.test_client.get("/")
    _, version = app.test_client.get("/version")

    assert home.body == app.ctx.pages.home
    assert version.body == app.ctx.pages.version
    assert version.json == version_document(app.ctx.settings, app.ctx.started_at)


def test_the_home_page_is_rendered_again_when_the_task_facts_arrive() -> None:
    task = TaskInfo(task_id="8f03e412", availability_zone="us-east-1b", launch_type="FARGATE")

    pages = RenderedPages.render(Settings(), STARTED, None)
    with_task = RenderedPages.render(Settings(), STARTED, task)

    assert b"8f03e412" not in pages.home
    assert b"8f03e412" in with_task.home
    assert pages.version == with_task.version
