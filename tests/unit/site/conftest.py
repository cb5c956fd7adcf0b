"""Unit fixtures for the site: an app built by the factory, driven by sanic-testing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sanic import Sanic

from website import Settings, create_app
from website.context import SiteApp


@pytest.fixture
def make_app() -> Iterator[Callable[..., SiteApp]]:
    """Build apps from settings overrides; each test may build several."""
    Sanic.test_mode = True  # the factory always names the app the same

    def make(**overrides: Any) -> SiteApp:
        return create_app(Settings(**overrides))

    yield make
    Sanic._app_registry.clear()


@pytest.fixture
def app(make_app: Callable[..., SiteApp]) -> SiteApp:
    return make_app(app_version="1.2.3", git_commit="abc1234", image_tag="abc1234")
