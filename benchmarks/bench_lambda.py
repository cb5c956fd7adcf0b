"""The ops Lambdas: cold start of the packaged app against ``import boto3`` plus one client,
and the warm path of every event kind against moto.

Cold start: fresh processes, alternating, each timing one statement in-process. The app is
the deployment zip, unpacked, first on the path as in Lambda, imported with the function's
environment as deployed (its template's variables, and tracing as its ``Tracing`` says:
Active means ``LAMBDA_TASK_ROOT`` set and Powertools' tracer on), with ``-B`` so our code is
compiled on every start, as on Lambda's read-only file system. The yardstick, in the same
environment: ``import boto3; boto3.client("ecs")``, which any handler that touches AWS pays
anyway. The ratio is taken per pair of neighbouring processes; the goal is at most 1.0
(import what a handler needs when it needs it).

Warm path: ``benchmarks/lambda_warm.py`` in its own process (see there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import ops_package
from benchmarks.figures import Figure
from benchmarks.report import ROOT, Options, PartResult, verdict

WARM = Path(__file__).resolve().parent / "lambda_warm.py"
YARDSTICK = 'import boto3; boto3.client("ecs")'
# What the push handler imports on its first event (app.py defers jobs to their handler):
# shown beside the goal so the deferred cost is visible, not hidden.
FIRST_PUSH = "import app; import chalicelib.toolkit, chalicelib.redeploy.flow, chalicelib.events"
GOAL_RATIO = 1.0
_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Runs in the fresh process: time one statement, then say what it loaded.
_TIMED = """
import json, sys, time
sys.path[:0] = [sys.argv[1]]
started = time.perf_counter()
exec(sys.argv[2])
took = time.perf_counter() - started
print(json.dumps({
    "seconds": took,
    "modules": len(sys.modules),
    "boto3": "boto3" in sys.modules,
    "xray": "aws_xray_sdk.core" in sys.modules,
}))
"""


@dataclass(frozen=True)
class Plan:
    cold_pairs: int
    warm_rounds: int

    @classmethod
    def for_options(cls, options: Options) -> Plan:
        return cls(cold_pairs=2, warm_rounds=2) if options.short else cls(11, 25)


def _base_env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    for name in ("LAMBDA_TASK_ROOT", "PYTHONPATH", "_HANDLER"):
        keep.pop(name, None)
    return {**keep, **_FAKE_AWS}


def _timed(statement: str, zip_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-I", "-B", "-c", _TIMED, str(zip_dir), statement],
        cwd=zip_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{statement!r} failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cold_start(package: ops_package.BuiltPackage, plan: Plan) -> dict[str, Any]:
    # Every function imports the same app; take the push handler's environment.
    functions = package.functions
    function = functions.get("redeploy_on_push") or next(iter(functions.values()))
    env = {**_base_env(), **package.lambda_environment(function)}
    apps: list[dict[str, Any]] = []
    yardsticks: list[dict[str, Any]] = []
    first_pushes: list[dict[str, Any]] = []
    for i in range(plan.cold_pairs):
        # Alternate which goes first, so a slow moment on the machine hits both alike.
        order = ("app", "yardstick") if i % 2 == 0 else ("yardstick", "app")
        for which in order:
            if which == "app":
                apps.append(_timed("import app", package.unpacked, env))
            else:
                yardsticks.append(_timed(YARDSTICK, package.unpacked, env))
        first_pushes.append(_timed(FIRST_PUSH, package.unpacked, env))
    ratios = [a["seconds"] / y["seconds"] for a, y in zip(apps, yardsticks, strict=True)]
    return {
        "function_environment_of": function.name,
        "tracing": function.tracing,
        "app_import": Figure.of((a["seconds"] * 1000 for a in apps), "ms"),
        "yardstick": Figure.of((y["seconds"] * 1000 for y in yardsticks), "ms"),
        "ratio": Figure.of(ratios, "x"),
        "first_push_imports": Figure.of((f["seconds"] * 1000 for f in first_pushes), "ms"),
        "modules_after_import": apps[-1]["modules"],
        "boto3_imported_by_app": apps[-1]["boto3"],
        "xray_imported_by_app": apps[-1]["xray"],
    }


def warm_path(package: ops_package.BuiltPackage, plan: Plan) -> dict[str, Figure]:
    env = {**_base_env(), "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    env["POWERTOOLS_TRACE_DISABLED"] = "true"
    env["POWERTOOLS_SERVICE_NAME"] = "spotops-ops"
    env["POWERTOOLS_METRICS_NAMESPACE"] = "spotops-bench"
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        out = Path(tmp) / "warm.json"
        log = Path(tmp) / "warm.log"
        with log.open("w") as sink:
            done = subprocess.run(
                [
                    sys.executable,
                    "-I",
                    "-B",
                    str(WARM),
                    str(package.unpacked),
                    str(ROOT),
                    str(plan.warm_rounds),
                    str(out),
                ],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=900,
                check=False,
            )
        if done.returncode != 0:
            tail = log.read_text().strip().splitlines()[-15:]
            raise RuntimeError("warm path failed:\n" + "\n".join(tail))
        measured = json.loads(out.read_text())
    return {
        kind: Figure.of((s * 1000 for s in measured["seconds"][kind]), "ms")
        for kind in measured["kinds"]
    }


def run(options: Options) -> PartResult:
    result = PartResult("lambda")
    plan = Plan.for_options(options)
    package = ops_package.build(options.work_dir)
    cold = cold_start(package, plan)
    ratio: Figure = cold["ratio"]
    result.rows += [
        ("cold: import app (packaged)", cold["app_import"].text()),
        (f"cold: {YARDSTICK}", cold["yardstick"].text()),
        (
            "cold: ratio app / yardstick",
            f"{ratio.text(2)}  {verdict(ratio.median, GOAL_RATIO, options)}",
        ),
        (
            "cold: what the import loads",
            f"{cold['modules_after_import']} modules; boto3 {_yes(cold['boto3_imported_by_app'])}"
            f"; aws_xray_sdk {_yes(cold['xray_imported_by_app'])}",
        ),
        ("cold: app + the push job's imports (first event)", cold["first_push_imports"].text()),
    ]
    if ratio.median > GOAL_RATIO and not options.short:
        result.goals_missed.append(
            f"the packaged app's cold import is {ratio.median:.2f}x import boto3 + one client "
            f"(goal {GOAL_RATIO}x)"
        )
    warm = warm_path(package, plan)
    for kind, figure in warm.items():
        result.rows.append((f"warm: {kind}", figure.text()))
    result.notes.append(
        f"cold: {plan.cold_pairs} pairs of fresh processes, environment of "
        f"{cold['function_environment_of']}, tracing {'on' if cold['tracing'] else 'off'} "
        f"as deployed; warm: {plan.warm_rounds} rounds after the first, moto in-process, "
        "tracing off"
    )
    result.data = {
        "cold_start": {
            key: value.as_dict() if isinstance(value, Figure) else value
            for key, value in cold.items()
        }
        | {"yardstick_statement": YARDSTICK},
        "warm_path": {kind: figure.as_dict() for kind, figure in warm.items()},
    }
    return result


def _yes(flag: bool) -> str:
    return "imported" if flag else "not imported"
