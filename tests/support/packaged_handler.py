"""Invoke one handler of the *unpacked deployment zip*, as Lambda would, in a fresh process:
the tests' face of :func:`spotops.ops.local_lambda.invoke` (the runner ``spotops demo`` and
``spotops simulate`` use), with the 60 s a test's Lambda context reports left.

The result says where each module the handler needed was imported from, so a test can prove
the zip holds everything that ships in it (``app``, ``chalicelib``, ``slack_sdk``) and
nothing the runtime provides (``boto3``, Powertools, the X-Ray SDK come from the layer and
the runtime; here, from the test environment's site-packages).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spotops.local.target import STRICT_LAMBDA_PRELUDES
from spotops.ops.local_lambda import invoke as invoke_locally

SHIPPED = ("app", "chalicelib", "slack_sdk")
PROVIDED = ("boto3", "botocore", "aws_lambda_powertools")


def invoke(
    zip_dir: Path,
    handler: str,
    event: Mapping[str, Any],
    env: Mapping[str, str],
    tmp_path: Path,
) -> dict[str, Any]:
    """Run ``handler`` of the unpacked zip on ``event`` with exactly ``env``; return
    ``{"result": ..., "origins": {...}, "logs": ...}``. Raises ``LocalInvokeError`` with the
    process's last lines when it crashes."""
    function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", handler)
    ran = invoke_locally(
        zip_dir,
        handler,
        event,
        env,
        function_name=function_name,
        function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
        work_dir=tmp_path,
        timeout=120,
        remaining_ms=60_000,
        preludes=STRICT_LAMBDA_PRELUDES if env.get("AWS_ENDPOINT_URL") else (),
    )
    origins = {name: str(Path(path).resolve()) for name, path in ran.origins.items() if path}
    return {"result": ran.result, "origins": origins, "logs": ran.logs}
