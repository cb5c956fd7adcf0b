"""External commands (git, docker, buildah, chalice) go through a :class:`CommandRunner`, so
tests run without an engine, a registry or a checkout. Image build and push, and the ops
package, share it; it lives beside the one real runner, below all of them."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""


class CommandRunner(Protocol):
    """Runs one external command; the seam tests replace."""

    def __call__(
        self,
        args: Sequence[str],
        *,
        input_text: str | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult: ...


def run_command(
    args: Sequence[str],
    *,
    input_text: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> CommandResult:
    """The real runner: ``subprocess.run`` with captured text output."""
    try:
        done = subprocess.run(
            list(args),
            input=input_text,
            cwd=cwd,
            env=None if env is None else dict(env),
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        return CommandResult(127, "", str(exc))
    return CommandResult(done.returncode, done.stdout, done.stderr)


def first_line(text: str) -> str:
    """A command's first non-blank output line, for an error message."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no output"
