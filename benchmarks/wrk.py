"""``wrk``, the load generator of the site figures: found, or installed from Debian, or a loud
failure. There is no fallback: a Python client would measure itself as much as the server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from benchmarks.machine import pinned_to

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


class WrkMissingError(RuntimeError):
    """wrk is not installed and could not be installed here."""


def ensure_wrk(*, install: bool = True, say: bool = True) -> str:
    """The path of ``wrk``; ``apt-get install wrk`` first when it is missing and we are root.

    Raises
    ------
    WrkMissingError
        With what to run instead, when wrk is missing and cannot be installed.
    """
    found = shutil.which("wrk")
    if found:
        return found
    why = _install() if install else "installing was not allowed"
    found = shutil.which("wrk")
    if found:
        if say:
            print("wrk was missing: installed it from Debian (apt-get install wrk)", flush=True)
        return found
    raise WrkMissingError(
        "\n" + "!" * 78 + "\n"
        f"!! wrk is NOT installed and could not be installed: {why}\n"
        "!! The site figures need it (there is no fallback). Install it and run again:\n"
        "!!     sudo apt-get install wrk\n" + "!" * 78
    )


def _install() -> str:
    if not shutil.which("apt-get"):
        return "apt-get is not available (not a Debian-based machine)"
    if os.geteuid() != 0:
        return "installing needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode == 0:
        return ""
    # A fresh machine has no package lists yet.
    subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600, check=False)
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode == 0:
        return ""
    return f"apt-get install wrk failed: {result.stderr.strip()[-300:]}"


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reported."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx_3xx: int

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def failed(self) -> int:
        return self.socket_errors + self.non_2xx_3xx


def run_wrk(
    wrk: str, url: str, *, seconds: float, connections: int, core: int, timeout_s: float = 5
) -> WrkResult:
    """One bounded load: one wrk thread pinned to ``core``, ``connections`` keep-alive
    connections, for ``seconds``, with the latency distribution."""
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(round(seconds), 1)}s",
        f"--timeout={timeout_s:g}s",
        "--latency",
        url,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + timeout_s + 30,
        check=False,
        preexec_fn=pinned_to(core),
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return parse(done.stdout)


def parse(output: str) -> WrkResult:
    """Read wrk's report (``wrk --latency``).

    Example
    -------
    >>> text = "  50%  1.50ms\\n  99%  12.00ms\\n  100 requests in 2.00s, 1KB read\\n"
    >>> parse(text).requests_per_s
    50.0
    """
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if done is None:
        raise RuntimeError(f"cannot read wrk's report:\n{output}")
    seconds = float(done.group(2)) * _UNITS[done.group(3)] / 1000
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(done.group(1)),
        seconds=seconds,
        p50_ms=_percentile(output, "50"),
        p99_ms=_percentile(output, "99"),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def _percentile(output: str, which: str) -> float:
    match = re.search(rf"^\s*{which}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)
    if match is None:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]
