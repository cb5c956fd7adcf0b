"""Load AWS event fixtures (shaped exactly as AWS documents them) by name.

Most live in tests/events/. The examples spotops itself ships (package data under
spotops/data/events/, read by its event builders at run time) are read from there rather
than copied: one file per event, so a test and the product cannot drift apart.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import spotops

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
PACKAGE_EVENTS_DIR = Path(spotops.__file__).resolve().parent / "data" / "events"


def event_path(name: str) -> Path:
    """``tests/events/<name>.json``, else the package's ``spotops/data/events/<name>.json``."""
    path = EVENTS_DIR / f"{name}.json"
    return path if path.exists() else PACKAGE_EVENTS_DIR / f"{name}.json"


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads(event_path(name).read_text())


def load_event(name: str) -> dict[str, Any]:
    """Return a fresh, mutable copy of the fixture ``<name>.json`` (see ``event_path``)."""
    return copy.deepcopy(_read(name))
