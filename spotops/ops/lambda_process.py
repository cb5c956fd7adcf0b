"""One ops function invoked the way Lambda invokes it: the program
:func:`spotops.ops.local_lambda.invoke` starts in a fresh, isolated Python process
(``python -I -m spotops.ops.lambda_process``) with exactly the function's environment.

Arguments: the unpacked zip's directory, the handler's name, the event file, the function's
name and ARN, the milliseconds the context reports left, then any ``module:function``
preludes to call first (the target's, e.g. the emulator's strict limits). The preludes run
before the zip's directory is put first on the path, so they are spotops' own modules, never
something the zip ships.

It prints, on its last line, the handler's result and where each module it needed came
from, so a test can prove the zip ships our code and the runtime provides the rest.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

# What the zip must ship and what the runtime (and the layer) must provide.
REPORTED_MODULES = ("app", "chalicelib", "slack_sdk", "boto3", "botocore", "aws_lambda_powertools")


class Context:
    """The parts of Lambda's context object the handlers read."""

    function_version = "$LATEST"
    memory_limit_in_mb = 256
    log_stream_name = "local"

    def __init__(self, function: str, function_arn: str, handler: str, remaining_ms: int):
        self.function_name = function
        self.invoked_function_arn = function_arn
        self.aws_request_id = "local-" + handler
        self.log_group_name = "/aws/lambda/" + function
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


def run_prelude(spec: str) -> None:
    """Call ``module:function``."""
    module, _, function = spec.partition(":")
    getattr(importlib.import_module(module), function)()


def main(argv: Sequence[str]) -> None:
    zip_dir, handler, event_file, function, function_arn, remaining_ms, *preludes = argv
    for prelude in preludes:
        run_prelude(prelude)
    sys.path[:0] = [zip_dir]
    app = importlib.import_module("app")
    event = json.loads(Path(event_file).read_text())
    result = getattr(app, handler)(
        event, Context(function, function_arn, handler, int(remaining_ms))
    )
    origins = {
        name: getattr(sys.modules[name], "__file__", None) or ""
        for name in REPORTED_MODULES
        if name in sys.modules
    }
    print("\n" + json.dumps({"result": result, "origins": origins}, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
