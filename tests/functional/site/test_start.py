"""Bad settings stop the site at start, naming the variable, before it listens."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.support.net import LOOPBACK, free_port
from tests.support.siteproc import SITE_DIR, site_command, site_env


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PORT", "http"), ("WORKERS", "0"), ("DRAIN_SECONDS", "forever"), ("HOST", "not-an-ip")],
)
def test_error_if_a_setting_is_bad_exits_non_zero_naming_it(variable: str, value: str) -> None:
    env = site_env(free_port(), **{variable: value})

    result = subprocess.run(
        site_command(), cwd=SITE_DIR, env=env, capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"website: invalid setting {variable}: ")
    assert "Traceback" not in result.stderr


def test_error_if_the_port_is_taken_exits_non_zero_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = subprocess.run(
            site_command(),
            cwd=SITE_DIR,
            env=site_env(port),
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"website: cannot listen on {LOOPBACK}:{port}: Address already in use"
    )
