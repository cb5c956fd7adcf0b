"""What a bench part hands back, the terminal table and the JSON file of one ``make bench``."""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.machine import python_version

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class PartResult:
    """One part's figures: table rows (label, value) and the same figures as JSON data.

    ``problems`` are failures (a part that crashed, requests that failed, a wrong exit
    code); any makes ``make bench`` exit 1. ``goals_missed`` are figures over their goal:
    shown loudly, written to the JSON, but a measurement is not a failure.
    """

    name: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    goals_missed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    """How a part runs: ``short`` proves it works in seconds (CI); the full mode measures."""

    short: bool = False
    site_dir: Path = ROOT / "site"
    work_dir: Path = ROOT / "build" / "bench"


def verdict(value: float, goal: float, options: Options) -> str:
    """How a median compares with its goal; a short run only proves the part works.

    Example
    -------
    >>> verdict(1.1, 1.2, Options())
    'within the 1.2x goal'
    """
    if options.short:
        return f"(short mode: too short to judge against the {goal:g}x goal)"
    return f"{'within' if value <= goal else 'OVER'} the {goal:g}x goal"


def render(results: list[PartResult]) -> str:
    """The terminal table: one block per part, labels aligned."""
    width = max((len(label) for r in results for label, _ in r.rows), default=10)
    lines: list[str] = []
    for result in results:
        lines.append(f"{result.name}")
        lines.append("-" * (width + 40))
        lines += [f"  {label:<{width}}  {value}" for label, value in result.rows]
        lines += [f"  note: {note}" for note in result.notes]
        lines += [f"  OVER GOAL: {missed}" for missed in result.goals_missed]
        lines += [f"  !! FAILED: {problem}" for problem in result.problems]
        lines.append("")
    return "\n".join(lines)


def context(options: Options) -> dict[str, Any]:
    """When and where the figures were taken."""
    return {
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "short" if options.short else "full",
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "site_dir": str(options.site_dir),
        "python": python_version(),
        "machine": platform.machine(),
        "cpus": _cpu_model(),
        "kernel": platform.release(),
    }


def write_json(
    results: list[PartResult], options: Options, out_dir: Path, name: str | None = None
) -> Path:
    """Write ``<out_dir>/<UTC time>.json`` (or ``name``); return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / (name or f"bench-{stamp}{'-short' if options.short else ''}.json")
    document = {
        "context": context(options),
        "parts": {
            r.name: {"figures": r.data, "problems": r.problems, "notes": r.notes} for r in results
        },
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
