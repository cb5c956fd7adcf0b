"""The ops toolkit's deployment package, built once per ``make bench`` for the Lambda and
package parts: the zip exactly as ``spotops deploy`` builds it (offline, for a bench stage),
unpacked, with each function's handler, environment and tracing from its template.
"""

from __future__ import annotations

import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.report import ROOT
from spotops.commands import run_command
from spotops.ops.package import offline_artifact_bucket, offline_site_outputs, write_package

STAGE = "bench"
REGION = "us-east-1"


@dataclass(frozen=True)
class Function:
    """One function of the package, as deployed."""

    name: str
    handler: str
    environment: dict[str, str]
    tracing: bool


@dataclass(frozen=True)
class BuiltPackage:
    zip_path: Path
    unpacked: Path
    functions: dict[str, Function]
    build_seconds: float

    def lambda_environment(self, function: Function) -> dict[str, str]:
        """What the Lambda runtime would set for ``function`` (no credentials)."""
        env = {
            **function.environment,
            "LAMBDA_TASK_ROOT": str(self.unpacked),
            "AWS_LAMBDA_FUNCTION_NAME": f"spotops-{STAGE}-{function.name}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "_HANDLER": function.handler,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # Tracing: where the SDK would send segments; nothing is sent by an import.
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        }
        if not function.tracing:
            env["POWERTOOLS_TRACE_DISABLED"] = "true"
        return env


_built: dict[Path, BuiltPackage] = {}


def build(work_dir: Path) -> BuiltPackage:
    """Build (once per process and ``work_dir``) and unpack the package."""
    if work_dir in _built:
        return _built[work_dir]
    out = work_dir / "package"
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    written = write_package(
        ROOT,
        app="spotops",
        stage=STAGE,
        region=REGION,
        site_outputs=offline_site_outputs("spotops", STAGE),
        tags={"spotops:app": "spotops", "spotops:stage": STAGE},
        out_dir=out,
        runner=run_command,
        bucket=offline_artifact_bucket("spotops", REGION),
    )
    took = time.perf_counter() - started
    zip_path = next(path for path in written if path.suffix == ".zip")
    sam = next(path for path in written if path.name == "sam.yaml")
    unpacked = work_dir / "unpacked"
    if unpacked.exists():
        shutil.rmtree(unpacked)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(unpacked)
    built = BuiltPackage(zip_path, unpacked, _functions(yaml.safe_load(sam.read_text())), took)
    _built[work_dir] = built
    return built


def _functions(template: dict[str, Any]) -> dict[str, Function]:
    globals_ = template.get("Globals", {}).get("Function", {})
    defaults = {
        name: parameter["Default"]
        for name, parameter in template.get("Parameters", {}).items()
        if "Default" in parameter
    }
    functions = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = {**globals_, **resource.get("Properties", {})}
        handler = str(props.get("Handler", ""))
        variables = props.get("Environment", {}).get("Variables", {})
        functions[handler.rsplit(".", 1)[-1] or logical_id] = Function(
            name=handler.rsplit(".", 1)[-1] or logical_id,
            handler=handler,
            environment={k: _resolved(k, v, defaults) for k, v in variables.items()},
            tracing=props.get("Tracing") == "Active",
        )
    return functions


def _resolved(name: str, value: Any, defaults: dict[str, Any]) -> str:
    """A deploy-time value: a parameter's default, else a stand-in (a resource's name)."""
    if isinstance(value, str | int | float | bool):
        return str(value)
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in defaults:
        return str(defaults[value["Ref"]])
    return f"bench-{name.lower().replace('_', '-')}"
