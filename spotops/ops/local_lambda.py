"""Run one ops function the way Lambda runs it, on this machine: from its deployment zip.

The local emulator stores functions but cannot invoke them (that needs Docker), so
``spotops demo`` and ``spotops simulate`` fetch the zip the ops stack deployed, unpack it,
and call the handler in a fresh Python process (:mod:`spotops.ops.lambda_process`) whose
path starts with the unpacked zip, with the function's deployed environment. The runtime's
own packages (boto3, and Powertools and the X-Ray SDK from the layer) come from this
environment, as in Lambda they come from the runtime and the layer.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spotops.errors import SpotopsError


class LocalInvokeError(SpotopsError):
    """The handler crashed (its output says why)."""


@dataclass(frozen=True)
class Invocation:
    """What one local invocation returned, and everything it logged."""

    result: dict[str, Any]
    logs: str
    # Where each of app, chalicelib, slack_sdk, boto3, botocore, Powertools was imported from.
    origins: dict[str, str]


def unpack(zip_bytes: bytes, target: Path) -> Path:
    """Unpack a deployment zip into ``target`` (emptied first); return it."""
    if target.exists():
        for path in sorted(target.rglob("*"), reverse=True):
            path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        archive.extractall(target)
    return target


def invoke(
    zip_dir: Path,
    handler: str,
    event: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    function_name: str,
    function_arn: str,
    work_dir: Path,
    timeout: float = 900,
    remaining_ms: int = 900_000,
    preludes: Sequence[str] = (),
) -> Invocation:
    """Call ``handler`` of the unpacked zip on ``event`` with exactly ``env``.

    ``preludes`` are ``module:function`` calls the process makes first (the target's
    :attr:`~spotops.target.Target.lambda_preludes`).

    Raises
    ------
    LocalInvokeError
        The handler raised, or printed no result; the message holds its last output lines.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    event_file = work_dir / f"{handler}-event.json"
    event_file.write_text(json.dumps(event))
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-m",
            "spotops.ops.lambda_process",
            str(zip_dir),
            handler,
            str(event_file),
            function_name,
            function_arn,
            str(remaining_ms),
            *preludes,
        ],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise LocalInvokeError(f"{function_name} ({handler}) failed: {tail}")
    printed = json.loads(lines[-1])
    return Invocation(result=printed["result"], logs=done.stdout, origins=printed["origins"])
