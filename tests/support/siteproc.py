"""Run the real site as a subprocess on a free 127.0.0.1 port, exactly as the container does.

The container's WORKDIR holds the ``website`` package and runs ``python -m website``; here the
working directory is ``site/`` and the interpreter is the one running pytest (``.venv``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.net import LOOPBACK, wait_for_port
from website.app import READY_MESSAGE

SITE_DIR = Path(__file__).resolve().parents[2] / "site"
# Short windows keep the suite fast; each test that needs other values passes its own.
TEST_ENV = {
    "DRAIN_SECONDS": "2",
    "SHUTDOWN_GRACE_SECONDS": "5",
    "ENABLE_TEST_ROUTES": "true",
    "APP_VERSION": "9.8.7",
    "GIT_COMMIT": "c0ffee1",
    "IMAGE_TAG": "c0ffee1",
}


def site_command() -> list[str]:
    return [sys.executable, "-m", "website"]


def site_env(port: int, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECS_")}
    env.update(TEST_ENV, HOST=LOOPBACK, PORT=str(port), PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


@dataclass
class SiteProcess:
    """A running ``python -m website`` and everything it printed."""

    process: subprocess.Popen[str]
    port: int
    stdout: list[str] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, trust_env=False, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.get(path, **kwargs)

    def log_entries(self) -> list[dict[str, Any]]:
        """Every stdout line, parsed; a line that is not JSON fails the test."""
        return [json.loads(line) for line in list(self.stdout) if line.strip()]

    def access_entries(self) -> list[dict[str, Any]]:
        return [e for e in self.log_entries() if e.get("logger") == "website.access"]

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code


def wait_until_serving(site: SiteProcess, timeout: float = 30) -> None:
    """Wait for the port, then for the "serving" line (logged once SIGTERM drains)."""
    try:
        wait_for_port(site.port, timeout=timeout)
        deadline = time.monotonic() + timeout
        while not any(e["message"] == READY_MESSAGE for e in site.log_entries()):
            if time.monotonic() > deadline or site.process.poll() is not None:
                raise TimeoutError
            time.sleep(0.02)
    except TimeoutError:
        site.process.kill()
        pytest.fail("site did not start:\n" + "".join(site.stdout))


def _pump(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


def launch(port: int, env: dict[str, str]) -> SiteProcess:
    process = subprocess.Popen(
        site_command(),
        cwd=SITE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    site = SiteProcess(process=process, port=port)
    reader = threading.Thread(target=_pump, args=(process.stdout, site.stdout), daemon=True)
    reader.start()
    site._readers.append(reader)
    return site
