"""The stylesheet and icon are served from memory, revalidated with 304, nothing else."""

from __future__ import annotations

import pytest
from sanic import Sanic

from website.static import STATIC_DIR, read_static


def test_every_file_of_the_folder_is_read_once_with_its_type() -> None:
    files = read_static()

    assert set(files) == {p.name for p in STATIC_DIR.iterdir() if p.is_file()}
    assert files["site.css"].content_type == "text/css; charset=utf-8"
    assert files["favicon.svg"].content_type == "image/svg+xml"
    assert files["site.css"].body == (STATIC_DIR / "site.css").read_bytes()


def test_a_file_is_served_with_validators(app: Sanic) -> None:
    _, response = app.test_client.get("/static/site.css")

    assert response.status == 200
    assert response.body == (STATIC_DIR / "site.css").read_bytes()
    assert response.headers["etag"].startswith('"')
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["last-modified"].endswith("GMT")


def test_a_current_copy_gets_304(app: Sanic) -> None:
    _, first = app.test_client.get("/static/site.css")

    _, by_tag = app.test_client.get(
        "/static/site.css", headers={"If-None-Match": first.headers["etag"]}
    )
    _, by_date = app.test_client.get(
        "/static/site.css", headers={"If-Modified-Since": first.headers["last-modified"]}
    )
    _, stale = app.test_client.get("/static/site.css", headers={"If-None-Match": '"other"'})

    assert (by_tag.status, by_tag.body) == (304, b"")
    assert by_date.status == 304
    assert stale.status == 200


@pytest.mark.parametrize("name", ["nope.css", "..%2fapp.py", "%2e%2e"])
def test_anything_else_is_a_quiet_404(app: Sanic, name: str) -> None:
    _, response = app.test_client.get(f"/static/{name}")

    assert response.status == 404
    assert response.json["status"] == 404
