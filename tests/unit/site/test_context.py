"""The site's context: one typed object, every attribute there from the start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest

from website import lifecycle
from website.context import SiteApp, SiteContext
from website.pages import RenderedPages


def test_a_new_app_holds_a_site_context_with_nothing_started_yet(app: SiteApp) -> None:
    context = app.ctx

    assert isinstance(context, SiteContext)
    assert (context.task, context.stopping, context.drain.is_draining) == (None, False, False)
    assert context.pages == RenderedPages.render(context.settings, context.started_at, None)
    assert set(context.static_files) == {"site.css", "favicon.svg"}


def test_the_context_holds_exactly_what_it_declares(app: SiteApp) -> None:
    declared = {field.name for field in fields(SiteContext)}

    assert set(vars(app.ctx)) == declared


def test_the_site_asks_sanic_to_stop_only_once(
    app: SiteApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    stops: list[dict[str, Any]] = []
    # Sanic refuses attributes on its instances, so the stop is replaced on the class.
    monkeypatch.setattr(type(app), "stop", lambda self, **options: stops.append(options))

    lifecycle._stop_now(app, "drain window over")
    lifecycle._stop_now(app, "second SIGTERM")

    assert stops == [{"terminate": False}]
    assert app.ctx.stopping


def test_every_app_gets_its_own_context(make_app: Callable[..., SiteApp]) -> None:
    first, second = make_app(), make_app()

    first.ctx.drain.begin()

    assert first.ctx is not second.ctx
    assert not second.ctx.drain.is_draining
