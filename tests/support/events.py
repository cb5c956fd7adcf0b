"""Load AWS event fixtures from tests/events/ (shaped exactly as AWS documents them)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


def load_event(name: str) -> dict[str, Any]:
    """Return a fresh, mutable copy of ``tests/events/<name>.json``."""
    return copy.deepcopy(_read(name))
