"""The spotops web site: a Sanic app built by ``create_app``; ``python -m website`` serves it."""

from __future__ import annotations

from website.app import create_app
from website.settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "create_app"]
