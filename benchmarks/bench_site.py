"""The site against bare Sanic on loopback: CPU per request, requests/s, latency, memory,
time to first 200, and requests lost to SIGTERM under load.

Each run starts both servers fresh (``python -m website`` from the site folder, exactly as
the container does, and ``benchmarks/bare_sanic.py``), one after the other in alternating
order, each pinned to one core with ``wrk`` pinned to another. For each path, one bounded
``wrk`` load (one thread, a fixed number of keep-alive connections, a fixed duration);
CPU per request is the server process tree's ``utime + stime`` over the load divided by the
requests wrk completed. The site runs as in production: JSON access log on (to a file, as
the container's stdout goes to the log driver; the line count is checked against the
requests), security headers on, ``PYTHONUNBUFFERED=1``.

SIGTERM under load: wrk loads ``/`` for a few seconds, the site gets SIGTERM a third of the
way in, with a drain window that outlasts the load (as the load balancer stops routing to a
draining task well inside its drain window). Every failed request (socket error or a status
other than 2xx/3xx) counts; the goal is 0, then an exit code of 0.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.figures import Figure
from benchmarks.machine import (
    LOOPBACK,
    Cores,
    cpu_seconds,
    free_port,
    pinned_to,
    process_tree,
    rss_mb,
)
from benchmarks.report import Options, PartResult, verdict
from benchmarks.wrk import WrkResult, ensure_wrk, run_wrk

BARE = Path(__file__).resolve().parent / "bare_sanic.py"
PATHS = ("/", "/healthz")
CONNECTIONS = 16
GOAL_RATIO = 1.2


@dataclass(frozen=True)
class Plan:
    runs: int
    load_seconds: int
    sigterm_runs: int
    sigterm_load_seconds: int
    warmup_requests: int

    @classmethod
    def for_options(cls, options: Options) -> Plan:
        if options.short:
            return cls(
                runs=1, load_seconds=1, sigterm_runs=1, sigterm_load_seconds=2, warmup_requests=50
            )
        return cls(
            runs=5, load_seconds=6, sigterm_runs=3, sigterm_load_seconds=6, warmup_requests=500
        )


@dataclass
class ServerRun:
    """One server, started once: everything measured on it."""

    first_200_s: float = 0.0
    rss_mb: float = 0.0
    cpu_us: dict[str, float] = field(default_factory=dict)
    loads: dict[str, WrkResult] = field(default_factory=dict)
    exit_code: int | None = None
    log_lines: int = 0


class Server:
    """How to start one of the two servers."""

    def __init__(self, name: str, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.name = name
        self.command = command
        self.cwd = cwd
        self.env = env

    def start(
        self, port: int, core: int, log: Path, **env: str
    ) -> tuple[subprocess.Popen[bytes], float]:
        """Start pinned to ``core`` with stdout and stderr to ``log``; return the process and
        the seconds from the start to the first 200 on ``/healthz``."""
        started = time.perf_counter()
        with log.open("ab") as sink:
            process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env={**self.env, "HOST": LOOPBACK, "PORT": str(port), **env},
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=pinned_to(core),
            )
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {process.returncode} before answering: "
                        + log.read_text()[-500:]
                    )
                if _status(port, "/healthz", timeout=0.5) == 200:
                    return process, time.perf_counter() - started
                if time.perf_counter() - started > 30:
                    raise TimeoutError(f"{self.name}: no 200 within 30 s")
                time.sleep(0.002)
        except BaseException:
            _kill(process)
            raise


def servers(site_dir: Path) -> dict[str, Server]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ECS_", "SANIC_"))}
    base["PYTHONUNBUFFERED"] = "1"  # as in the image: every log line reaches the driver
    return {
        "bare": Server("bare", [sys.executable, str(BARE)], site_dir, base),
        "site": Server(
            "site",
            [sys.executable, "-m", "website"],
            site_dir,
            {**base, "DRAIN_SECONDS": "0", "SHUTDOWN_GRACE_SECONDS": "5"},
        ),
    }


def _status(port: int, path: str, timeout: float = 2.0) -> int | None:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()


def _warm_up(port: int, count: int) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        for i in range(count):
            conn.request("GET", PATHS[i % len(PATHS)])
            conn.getresponse().read()
    finally:
        conn.close()


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def measure_once(server: Server, plan: Plan, cores: Cores, wrk: str, log: Path) -> ServerRun:
    port = free_port()
    process, first_200 = server.start(port, cores.server, log)
    run = ServerRun(first_200_s=first_200)
    try:
        _warm_up(port, plan.warmup_requests)
        for path in PATHS:
            pids = process_tree(process.pid)
            before = cpu_seconds(pids)
            load = run_wrk(
                wrk,
                f"http://{LOOPBACK}:{port}{path}",
                seconds=plan.load_seconds,
                connections=CONNECTIONS,
                core=cores.load,
            )
            spent = cpu_seconds(pids) - before
            run.loads[path] = load
            run.cpu_us[path] = spent / max(load.requests, 1) * 1e6
        run.rss_mb = rss_mb(process_tree(process.pid))
        process.send_signal(signal.SIGTERM)
        run.exit_code = process.wait(timeout=30)
    finally:
        _kill(process)
    run.log_lines = sum(1 for line in log.read_text().splitlines() if '"website.access"' in line)
    return run


@dataclass
class SigtermRun:
    requests: int
    failed: int
    exit_code: int | None
    seconds_to_exit: float


def sigterm_under_load(server: Server, plan: Plan, cores: Cores, wrk: str, log: Path) -> SigtermRun:
    port = free_port()
    drain = plan.sigterm_load_seconds + 2
    process, _ = server.start(
        port, cores.server, log, DRAIN_SECONDS=str(drain), SHUTDOWN_GRACE_SECONDS="5"
    )
    sent_at: list[float] = []

    def terminate_later() -> None:
        time.sleep(plan.sigterm_load_seconds / 3)
        sent_at.append(time.perf_counter())
        process.send_signal(signal.SIGTERM)

    try:
        _warm_up(port, 20)
        timer = threading.Thread(target=terminate_later)
        timer.start()
        load = run_wrk(
            wrk,
            f"http://{LOOPBACK}:{port}/",
            seconds=plan.sigterm_load_seconds,
            connections=CONNECTIONS,
            core=cores.load,
        )
        timer.join()
        code = process.wait(timeout=drain + 30)
        took = time.perf_counter() - sent_at[0]
    finally:
        _kill(process)
    return SigtermRun(load.requests, load.failed, code, took)


def run(options: Options) -> PartResult:
    result = PartResult("site")
    plan = Plan.for_options(options)
    cores = Cores.pick()
    wrk = ensure_wrk()
    pair = servers(options.site_dir)
    runs: dict[str, list[ServerRun]] = {"bare": [], "site": []}
    sigterms: list[SigtermRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        logs = Path(tmp)
        for i in range(plan.runs):
            order = ("bare", "site") if i % 2 == 0 else ("site", "bare")
            for name in order:
                log = logs / f"{name}-{i}.log"
                runs[name].append(measure_once(pair[name], plan, cores, wrk, log))
        for i in range(plan.sigterm_runs):
            sigterms.append(
                sigterm_under_load(pair["site"], plan, cores, wrk, logs / f"sigterm-{i}.log")
            )
    _summarise(result, runs, sigterms, plan, cores, options)
    return result


def _summarise(
    result: PartResult,
    runs: dict[str, list[ServerRun]],
    sigterms: list[SigtermRun],
    plan: Plan,
    cores: Cores,
    options: Options,
) -> None:
    data: dict[str, Any] = {
        "load": {
            "tool": f"wrk -t1 -c{CONNECTIONS} -d{plan.load_seconds}s --latency",
            "runs": plan.runs,
            "cores": cores.describe(),
        }
    }
    for path in PATHS:
        pairs = zip(runs["site"], runs["bare"], strict=True)
        ratios = [site.cpu_us[path] / bare.cpu_us[path] for site, bare in pairs]
        ratio = Figure.of(ratios, "x")
        data.setdefault("cpu_ratio_site_to_bare", {})[path] = ratio.as_dict()
        for name in ("site", "bare"):
            cpu = Figure.of((r.cpu_us[path] for r in runs[name]), "us")
            rps = Figure.of((r.loads[path].requests_per_s for r in runs[name]), "req/s")
            p50 = Figure.of((r.loads[path].p50_ms for r in runs[name]), "ms")
            p99 = Figure.of((r.loads[path].p99_ms for r in runs[name]), "ms")
            failed = sum(r.loads[path].failed for r in runs[name])
            data.setdefault(name, {})[path] = {
                "cpu_per_request": cpu.as_dict(),
                "requests_per_s": rps.as_dict(),
                "p50": p50.as_dict(),
                "p99": p99.as_dict(),
                "failed_requests": failed,
            }
            result.rows += [
                (f"{name:<4} {path:<8} CPU per request", cpu.text()),
                (f"{name:<4} {path:<8} requests/s", rps.text(0)),
                (f"{name:<4} {path:<8} p50 / p99", f"{p50.text(2)} / {p99.text(2)}"),
            ]
            if failed:
                result.problems.append(f"{name} {path}: {failed} requests failed under load")
        judged = verdict(ratio.median, GOAL_RATIO, options)
        result.rows.append((f"site/bare {path:<8} CPU ratio", f"{ratio.text(2)}  {judged}"))
        if ratio.median > GOAL_RATIO and not options.short:
            result.goals_missed.append(
                f"CPU per request on {path} is {ratio.median:.2f}x bare Sanic (goal {GOAL_RATIO}x)"
            )
    for name in ("site", "bare"):
        first = Figure.of((r.first_200_s * 1000 for r in runs[name]), "ms")
        memory = Figure.of((r.rss_mb for r in runs[name]), "MB")
        data[name]["time_to_first_200"] = first.as_dict()
        data[name]["rss_after_load"] = memory.as_dict()
        data[name]["exit_codes_after_sigterm"] = [r.exit_code for r in runs[name]]
        result.rows += [
            (f"{name:<4} time to first 200", first.text(0)),
            (f"{name:<4} RSS after the loads", memory.text()),
        ]
    served = sum(r.loads[p].requests for r in runs["site"] for p in PATHS)
    logged = sum(r.log_lines for r in runs["site"])
    data["site"]["access_log_lines"] = {"requests": served, "lines": logged}
    # Warm-up and readiness requests are logged too, so there are a few more lines.
    if logged < served:
        result.problems.append(f"the site logged {logged} access lines for {served} requests")
    if any(r.exit_code != 0 for r in runs["site"]):
        result.problems.append("the site did not exit 0 after SIGTERM")
    lost = Figure.of((s.failed for s in sigterms), "requests")
    to_exit = Figure.of((s.seconds_to_exit for s in sigterms), "s")
    data["sigterm_under_load"] = {
        "drain_seconds": plan.sigterm_load_seconds + 2,
        "load_seconds": plan.sigterm_load_seconds,
        "requests": [s.requests for s in sigterms],
        "failed_requests": lost.as_dict(),
        "exit_codes": [s.exit_code for s in sigterms],
        "seconds_from_sigterm_to_exit": to_exit.as_dict(),
    }
    codes = [s.exit_code for s in sigterms]
    result.rows += [
        ("site SIGTERM under load: failed", f"{lost.text(0)} (goal 0)"),
        (
            "site SIGTERM under load: exit",
            f"codes {codes}, {to_exit.text()} after SIGTERM "
            f"(drain {plan.sigterm_load_seconds + 2} s)",
        ),
    ]
    if lost.high or any(s.exit_code != 0 for s in sigterms):
        result.problems.append("requests failed or the exit code was not 0 on SIGTERM under load")
    result.data = data
    result.notes.append(
        f"wrk -t1 -c{CONNECTIONS} -d{plan.load_seconds}s per path, {plan.runs} runs "
        f"alternating bare/site; {cores.describe()}"
    )
    if cores.shared:
        result.notes.append("ONE CORE ONLY: the load generator competes with the server")
