"""The delivery model's settings: Hypothesis profiles, and the Powertools environment the
ops functional tests use (tests/functional/ops/conftest.py).

Profiles (``HYPOTHESIS_PROFILE``, default ``ci``):

* ``ci``: what ``make test`` runs. Few examples per property, no deadline (a stream runs
  dozens of handlers against moto), derandomized and without an example database, so every
  run of the suite tries the same streams and a failure is reproducible from the log.
* ``dev``: many more random examples, to look for new counterexamples by hand
  (``HYPOTHESIS_PROFILE=dev .venv/bin/pytest tests/functional/delivery``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, settings

from chalicelib import toolkit as toolkit_module
from chalicelib.observability import logger as ops_logger
from chalicelib.observability import metrics

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    # No explain phase: it traces every line of a stream, which takes minutes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=300,
    deadline=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _clean_powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "spotops-test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    toolkit_module.reset_toolkit()
    # Hundreds of handler runs per property: only warnings and errors are worth keeping.
    stdlib_logger = logging.getLogger(ops_logger.name)
    level = stdlib_logger.level
    stdlib_logger.setLevel(logging.WARNING)
    yield
    stdlib_logger.setLevel(level)
    metrics.clear_metrics()
    toolkit_module.reset_toolkit()
