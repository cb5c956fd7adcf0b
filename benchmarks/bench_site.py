"""The site on loopback: time from process start to first 200, RSS, requests/s on ``/``.

Starts ``python -m website`` exactly as the container does (working directory ``site/``),
on 127.0.0.1 and a free port, in the default single-process mode and, for comparison, with
``WORKERS=2`` (Sanic's process manager). Load is bounded: ``wrk -t1 -c32 -d10s`` when wrk is
installed, else a Python keep-alive client loop for 10 s.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
SITE_DIR = Path(__file__).resolve().parent.parent / "site"
LOAD_SECONDS = 10
CONNECTIONS = 32
WARMUP_REQUESTS = 200


@dataclass
class Figures:
    mode: str
    start_to_first_200_s: float
    processes: int
    rss_mb_warm: float
    rss_mb_after_load: float | None = None
    requests_per_s: float | None = None
    load_tool: str = ""
    errors: str = ""
    exit_code: int | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _rss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total_kb += int(match.group(1))
    return total_kb / 1024


def _wrk(port: int) -> tuple[float, str]:
    result = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{LOAD_SECONDS}s", f"http://{LOOPBACK}:{port}/"],
        capture_output=True,
        text=True,
        timeout=LOAD_SECONDS + 30,
        check=True,
    )
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", result.stdout)
    return rate, errors.group(0) if errors else ""


def _python_load(port: int) -> tuple[float, str]:
    """Fallback without wrk: a few keep-alive clients in threads for LOAD_SECONDS."""
    counts: list[int] = []
    failures: list[int] = []
    deadline = time.monotonic() + LOAD_SECONDS

    def client() -> None:
        done = bad = 0
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
        while time.monotonic() < deadline:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            done += 1
            bad += response.status != 200
        conn.close()
        counts.append(done)
        failures.append(bad)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = f"non-200: {sum(failures)}" if sum(failures) else ""
    return sum(counts) / LOAD_SECONDS, errors


def measure(mode: str, workers: int, load: bool) -> Figures:
    port = _free_port()
    env = {
        **os.environ,
        "HOST": LOOPBACK,
        "PORT": str(port),
        "WORKERS": str(workers),
        "DRAIN_SECONDS": "0",
        "SHUTDOWN_GRACE_SECONDS": "5",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "website"],
        cwd=SITE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"site exited with {process.returncode} before answering")
            try:
                if _get(port, "/healthz", timeout=0.5) == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - started > 30:
                raise TimeoutError("no 200 within 30 s")
            time.sleep(0.005)
        first_200 = time.perf_counter() - started
        for _ in range(WARMUP_REQUESTS):
            _get(port, "/")
        time.sleep(0.5)
        pids = _process_tree(process.pid)
        figures = Figures(mode, first_200, len(pids), _rss_mb(pids))
        if load:
            if shutil.which("wrk"):
                figures.load_tool = f"wrk -t1 -c{CONNECTIONS} -d{LOAD_SECONDS}s"
                figures.requests_per_s, figures.errors = _wrk(port)
            else:
                figures.load_tool = f"python, 8 keep-alive clients, {LOAD_SECONDS}s"
                figures.requests_per_s, figures.errors = _python_load(port)
            figures.rss_mb_after_load = _rss_mb(_process_tree(process.pid))
        process.send_signal(signal.SIGTERM)
        figures.exit_code = process.wait(timeout=30)
        return figures
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def main() -> int:
    results = [
        measure("single process (default)", workers=1, load=True),
        measure("WORKERS=2 (process manager)", workers=2, load=False),
    ]
    for fig in results:
        rows = [
            ("start to first 200 on /healthz", f"{fig.start_to_first_200_s:.3f} s"),
            ("processes", str(fig.processes)),
            (f"RSS after {WARMUP_REQUESTS} requests", f"{fig.rss_mb_warm:.1f} MB"),
        ]
        if fig.requests_per_s is not None:
            rows += [
                (f"requests/s on / ({fig.load_tool})", f"{fig.requests_per_s:.0f}"),
                ("RSS after the load", f"{fig.rss_mb_after_load:.1f} MB"),
                ("load errors", fig.errors or "none"),
            ]
        rows.append(("exit code after SIGTERM", str(fig.exit_code)))
        width = max(len(label) for label, _ in rows)
        print(f"site, {fig.mode}:")
        for label, value in rows:
            print(f"  {label:<{width}} : {value}")
    return 0 if all(fig.exit_code == 0 for fig in results) else 1


if __name__ == "__main__":
    sys.exit(main())
