"""Fixtures of the integration layer (the moto server on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config


@pytest.fixture
def aws(emulator: str) -> Callable[[str], Any]:
    """boto3 clients for the emulator (no retries)."""

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=emulator,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
        )

    return client
