"""The ops Lambdas: cold-start import time of the Chalice app, and one warm push.

Cold start: a fresh ``python`` per sample imports ``app`` from ``ops_lambdas/`` with
tracing on (``LAMBDA_TASK_ROOT`` set, ``POWERTOOLS_TRACE_DISABLED=false``, as in Lambda),
with tracing off, and, as the yardstick, runs ``import boto3``. ``-X importtime`` of one
tracing-on import says what ``aws_xray_sdk.core`` adds on top of what the app needs anyway.

Warm: the redeploy job handles pushes of new images against moto in-process (ECS, ECR,
DynamoDB, SSM, Secrets Manager, SQS) with Slack as a stub on 127.0.0.1; the first push is
discarded, the rest are timed one by one. Everything stays on loopback.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPS_DIR = ROOT / "ops_lambdas"
COLD_SAMPLES = 9
WARM_PUSHES = 20

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}

_TIMED_IMPORT = (
    "import time, sys; t = time.perf_counter(); {stmt}; "
    "print(time.perf_counter() - t); print('aws_xray_sdk.core' in sys.modules)"
)


def _env(tracing: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.pop("LAMBDA_TASK_ROOT", None)
    env.update(_FAKE_AWS)
    env["POWERTOOLS_SERVICE_NAME"] = "spotops-ops"
    if tracing:
        env["LAMBDA_TASK_ROOT"] = str(OPS_DIR)
        env["POWERTOOLS_TRACE_DISABLED"] = "false"
    else:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def _timed_import(stmt: str, tracing: bool) -> tuple[float, bool, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _TIMED_IMPORT.format(stmt=stmt)],
        cwd=OPS_DIR,
        env=_env(tracing),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    wall = time.perf_counter() - started
    return float(out[0]), out[1] == "True", wall


def _cold_figures() -> dict[str, tuple[float, float, bool, float]]:
    """Per case: median and min in-process import time, xray loaded?, median process wall.

    The cases are interleaved sample by sample so that load from other processes on the
    machine hits all of them alike.
    """
    cases = {
        "boto3": ("import boto3", False),
        "app_on": ("import app", True),
        "app_off": ("import app", False),
    }
    samples: dict[str, list[tuple[float, bool, float]]] = {name: [] for name in cases}
    for _ in range(COLD_SAMPLES):
        for name, (stmt, tracing) in cases.items():
            samples[name].append(_timed_import(stmt, tracing))
    figures = {}
    for name, runs in samples.items():
        times = [r[0] for r in runs]
        figures[name] = (
            statistics.median(times),
            min(times),
            runs[-1][1],
            statistics.median(r[2] for r in runs),
        )
    return figures


def _xray_share() -> tuple[float, float]:
    """Cumulative import time of aws_xray_sdk.core and of app, from -X importtime (s)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=OPS_DIR,
        env=_env(tracing=True),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    cumulative: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s+(.*)$", line)
        if match:
            cumulative[match.group(2).strip()] = int(match.group(1))
    return cumulative.get("aws_xray_sdk.core", 0) / 1e6, cumulative.get("app", 0) / 1e6


def _warm_push() -> tuple[float, float, float, int]:
    os.environ.update(_FAKE_AWS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    for path in (str(OPS_DIR), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    from moto import mock_aws

    from chalicelib.events import EcrImageActionEvent
    from chalicelib.observability import logger, metrics
    from chalicelib.redeploy import handle_push
    from tests.support.events import load_event
    from tests.support.ops_world import build_world, make_kit
    from tests.support.slack_stub import SlackStub

    logger.setLevel("WARNING")  # keep the figures readable
    slack = SlackStub()
    try:
        with mock_aws():
            world = build_world(webhook_url=slack.url)
            kit = make_kit(world, REDEPLOY_MAX_PER_HOUR="1000")
            svc = kit.settings.service_key
            times: list[float] = []
            for i in range(WARM_PUSHES + 1):
                tag = f"v1.0.{i}"
                digest = world.push_image(tag)
                event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
                started = time.perf_counter()
                result = handle_push(EcrImageActionEvent(event), kit)
                elapsed = time.perf_counter() - started
                if result["status"] != "deploying":
                    raise RuntimeError(f"push {i} was not deployed: {result}")
                kit.ledger.release_lock(svc, action="redeploy")  # as the outcome event would
                metrics.clear_metrics()
                if i:
                    times.append(elapsed)
            delivered = len(slack.bodies)
    finally:
        slack.close()
    ordered = sorted(times)
    return (
        statistics.median(times),
        min(times),
        ordered[int(len(ordered) * 0.9) - 1],
        delivered,
    )


def main() -> int:
    cold = _cold_figures()
    boto_median, boto_min, _, boto_wall = cold["boto3"]
    on_median, on_min, xray_loaded, on_wall = cold["app_on"]
    off_median, off_min, xray_off, off_wall = cold["app_off"]
    xray_cumulative, app_cumulative = _xray_share()
    print(f"python {sys.version.split()[0]}, {COLD_SAMPLES} fresh processes per figure")
    print(
        f"cold  import boto3          median {boto_median:.3f} s  min {boto_min:.3f} s"
        f"  (whole process {boto_wall:.3f} s)"
    )
    print(
        f"cold  import app, tracing on   median {on_median:.3f} s  min {on_min:.3f} s"
        f"  (whole process {on_wall:.3f} s; {on_median / boto_median:.2f}x boto3;"
        f" aws_xray_sdk.core loaded: {xray_loaded})"
    )
    print(
        f"cold  import app, tracing off  median {off_median:.3f} s  min {off_min:.3f} s"
        f"  (whole process {off_wall:.3f} s; aws_xray_sdk.core loaded: {xray_off})"
    )
    print(
        f"-X importtime: aws_xray_sdk.core {xray_cumulative:.3f} s cumulative "
        f"of app {app_cumulative:.3f} s (one tracing-on import, own share after shared deps)"
    )
    warm_median, warm_min, warm_p90, delivered = _warm_push()
    print(
        f"warm  handle_push (moto in-process, Slack on loopback), {WARM_PUSHES} pushes: "
        f"median {warm_median * 1000:.1f} ms  min {warm_min * 1000:.1f} ms  "
        f"p90 {warm_p90 * 1000:.1f} ms  ({delivered} Slack posts)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
