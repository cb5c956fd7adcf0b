"""Recorded-shape AWS responses for the deployment diagnosis, shaped as the API references
document them (DescribeTasks, DescribeTargetHealth, GetLogEvents); each is checked against
botocore's output model in tests/unit/ops/test_diagnosis.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def load_response(name: str) -> dict[str, Any]:
    """A fresh copy of ``<name>.json``."""
    return dict(json.loads((HERE / f"{name}.json").read_text()))
