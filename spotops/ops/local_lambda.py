"""Run one ops function the way Lambda runs it, on this machine: from its deployment zip.

The local emulator stores functions but cannot invoke them (that needs Docker), so
``spotops demo`` and ``spotops simulate`` fetch the zip the ops stack deployed, unpack it,
and call the handler in a fresh Python process whose path starts with the unpacked zip,
with the function's deployed environment. The runtime's own packages (boto3, and
Powertools and the X-Ray SDK from the layer) come from this environment, as in Lambda they
come from the runtime and the layer.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spotops.errors import SpotopsError

# Runs inside the fresh process: argv = [zip dir, handler, event file, function name, ARN,
# milliseconds the context reports left]. Prints the result and where each module it needed
# came from, so a test can prove the zip ships our code and the runtime provides the rest.
_RUNNER = """
import json, os, sys
zip_dir, handler, event_file, function, function_arn, remaining_ms = sys.argv[1:7]
if os.environ.get("AWS_ENDPOINT_URL"):
    # The emulator enforces none of AWS's limits; the strict layer does (before the zip's
    # path comes first, so it is spotops' own module, never something the zip ships).
    from spotops.local.limits import install_everywhere
    install_everywhere()
sys.path[:0] = [zip_dir]

class Context:
    function_name = function
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = function_arn
    aws_request_id = "local-" + handler
    log_group_name = "/aws/lambda/" + function
    log_stream_name = "local"
    def get_remaining_time_in_millis(self):
        return int(remaining_ms)

import app
event = json.load(open(event_file))
result = getattr(app, handler)(event, Context())
origins = {
    name: getattr(sys.modules[name], "__file__", None) or ""
    for name in ("app", "chalicelib", "slack_sdk", "boto3", "botocore", "aws_lambda_powertools")
    if name in sys.modules
}
print("\\n" + json.dumps({"result": result, "origins": origins}, default=str))
"""


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
) -> Invocation:
    """Call ``handler`` of the unpacked zip on ``event`` with exactly ``env``.

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
            "-c",
            _RUNNER,
            str(zip_dir),
            handler,
            str(event_file),
            function_name,
            function_arn,
            str(remaining_ms),
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
