"""Invoke one handler of the *unpacked deployment zip*, as Lambda would, in a fresh process.

Run as ``python packaged_handler.py <unpacked zip dir> <function name> <event.json>`` with the
function's environment (as deployed) plus AWS credentials and ``AWS_ENDPOINT_URL``. Prints
one JSON line: the handler's result and where each module it needed was imported from, so a
test can prove the zip holds everything that ships in it (``app``, ``chalicelib``,
``slack_sdk``) and nothing the runtime provides (``boto3``, Powertools, the X-Ray SDK come
from the layer and the runtime; here, from the test environment's site-packages).

``invoke(...)`` is the test-side helper that runs this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SHIPPED = ("app", "chalicelib", "slack_sdk")
PROVIDED = ("boto3", "botocore", "aws_lambda_powertools")


class _Context:
    """The parts of the Lambda context Chalice and Powertools read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/11/28/[$LATEST]test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _main(zip_dir: str, handler: str, event_path: str) -> None:
    # Lambda puts the function's code first on the path; nothing of the checkout is on it.
    sys.path[:0] = [zip_dir]
    module = __import__("app")
    event = json.loads(Path(event_path).read_text())
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", handler)
    result = getattr(module, handler)(event, _Context(function_name))
    origins = {
        name: str(Path(sys.modules[name].__file__ or "").resolve())
        for name in (*SHIPPED, *PROVIDED)
        if name in sys.modules
    }
    print(json.dumps({"result": result, "origins": origins}))


def invoke(
    zip_dir: Path,
    handler: str,
    event: Mapping[str, Any],
    env: Mapping[str, str],
    tmp_path: Path,
) -> dict[str, Any]:
    """Run ``handler`` of the unpacked zip on ``event`` with exactly ``env``; return
    ``{"result": ..., "origins": {...}}``. Fails with the process's output when it crashes."""
    event_file = tmp_path / f"{handler}-event.json"
    event_file.write_text(json.dumps(event))
    # -I: ignore PYTHONPATH and the user site, so only the zip and the runtime's packages count.
    done = subprocess.run(
        [sys.executable, "-I", __file__, str(zip_dir), handler, str(event_file)],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{handler} crashed:\n{done.stdout}\n{done.stderr}")
    last = done.stdout.strip().splitlines()[-1]
    parsed: dict[str, Any] = json.loads(last)
    parsed["logs"] = done.stdout
    return parsed


if __name__ == "__main__":
    _main(*sys.argv[1:4])
