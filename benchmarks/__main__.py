"""``python -m benchmarks``: run the parts, print one table, write the figures as JSON.

``make bench`` runs the full mode (a few minutes); ``--short`` runs every part in seconds to
prove it works (the tests do). Exit code 1 when a part failed (a goal missed is reported, in
the table and the JSON, but is a figure, not a failure).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks import bench_lambda, bench_package, bench_site
from benchmarks.report import ROOT, Options, PartResult, render, write_json

PARTS: dict[str, Callable[[Options], PartResult]] = {
    "site": bench_site.run,
    "lambda": bench_lambda.run,
    "package": bench_package.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--short", action="store_true", help="seconds, not minutes (CI)")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes"
    )
    parser.add_argument(
        "--site-dir",
        type=Path,
        default=ROOT / "site",
        help="the folder holding the website package (to measure another version of it)",
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")
    options = Options(short=args.short, site_dir=args.site_dir.resolve())
    results: list[PartResult] = []
    for name in names:
        print(f"== {name} ...", flush=True)
        started = time.perf_counter()
        try:
            result = PARTS[name](options)
        except Exception as exc:  # report it and measure the other parts
            traceback.print_exc()
            result = PartResult(name, problems=[f"{name} failed: {exc}"])
        print(f"== {name} done in {time.perf_counter() - started:.0f} s", flush=True)
        results.append(result)
    print()
    print(render(results))
    path = write_json(results, options, args.out)
    print(f"figures written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    missed = [m for r in results for m in r.goals_missed]
    if missed:
        print(f"{len(missed)} figure(s) over their goal: see OVER GOAL above")
    problems = [p for r in results for p in r.problems]
    if problems:
        print(f"{len(problems)} failure(s): see the !! lines above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
