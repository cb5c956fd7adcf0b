"""The deploy workflow's own steps (``.github/scripts/delivery.py``), loaded as a module:
it is a script, not a package, and tests of the workflow read its functions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / ".github" / "scripts" / "delivery.py"
_NAME = "spotops_ci_delivery"


def load_delivery_script() -> ModuleType:
    """The script as a module, loaded once per test process."""
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    spec = importlib.util.spec_from_file_location(_NAME, SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module
