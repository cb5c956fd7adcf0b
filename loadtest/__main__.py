"""``python -m loadtest``: load a site with Locust, headless, and say how it held up.

    make loadtest                                    # the local site, 10 users, 30 s
    make loadtest URL=http://127.0.0.1:8081 USERS=50 DURATION=2m
    python -m loadtest --url https://... --users 20 --max-error-rate 1 --max-p99-ms 500

The mix is ``loadtest/locustfile.py``. Users arrive over a ramp (``--spawn-rate`` per second,
by default all of them within about 10 s). Locust's HTML report and CSV files are saved in
``bench/results/loadtest-<UTC time>/``; the summary printed is the count, error rate, p50,
p95 and p99 per request and overall. The exit code is 1 when a threshold given on the
command line is broken (or no request completed), 2 for bad input or a refused target.

The default URL is the local site; if nothing answers there, the site is started for the
run (``python -m website`` on that port) and stopped after. Another URL on this machine, or
the ``SiteUrl`` of the stage that ``spotops deploy`` recorded, is loaded as given; anything
else is someone's server, so it asks first (``--yes`` for scripts).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from loadtest.summary import Thresholds, read_stats
from loadtest.target import Target, TargetError, resolve

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
DEFAULT_URL = "http://127.0.0.1:8080"
_DURATION = re.compile(r"^(?:\d+h)?(?:\d+m)?(?:\d+s)?$")


class UsageError(Exception):
    """Bad input, or a target the user did not confirm: exit code 2."""


def duration(text: str) -> str:
    """Locust's run time: ``90`` (seconds), ``30s``, ``2m``, ``1h30m``."""
    text = text.strip()
    if text.isdigit():
        text += "s"
    if not text or not _DURATION.match(text) or not any(ch.isdigit() for ch in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30s, 2m or 1h30m")
    return text


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Load a site with Locust (headless) and summarise how it held up.",
    )
    parser.add_argument("--url", default=os.environ.get("URL") or DEFAULT_URL)
    parser.add_argument("--users", type=positive_int, default=10, help="simulated visitors")
    parser.add_argument(
        "--spawn-rate", type=float, help="visitors started per second (default: users / 10)"
    )
    parser.add_argument("--duration", type=duration, default="30s", help="e.g. 30s, 2m")
    parser.add_argument(
        "--max-error-rate", type=float, metavar="PCT", help="fail above this error rate, in %%"
    )
    parser.add_argument("--max-p99-ms", type=float, metavar="MS", help="fail above this p99")
    parser.add_argument(
        "--stage",
        default=os.environ.get("STAGE", "dev"),
        help="whose recorded SiteUrl may be loaded without asking (default dev)",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before loading a URL")
    parser.add_argument(
        "--out", type=Path, help="report folder (default bench/results/loadtest-<UTC time>)"
    )
    return parser.parse_args(argv)


def confirm(target: Target, args: argparse.Namespace) -> None:
    """Ask before loading someone else's server; refuse when no one can answer.

    Raises
    ------
    UsageError
        When the answer is not yes, or stdin is not a terminal and ``--yes`` was not given.
    """
    if not target.needs_confirmation or args.yes:
        return
    why = (
        f"{target.url} is not this machine and not the SiteUrl that `spotops deploy` recorded "
        f"for stage {args.stage!r}"
    )
    if not sys.stdin.isatty():
        raise UsageError(f"{why}. Pass --yes to load it anyway (nothing was sent).")
    answer = input(
        f"{why}.\nSend {args.users} simulated visitors to it for {args.duration}? [y/N] "
    )
    if answer.strip().lower() not in ("y", "yes"):
        raise UsageError("not confirmed: nothing was sent")


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=2)
    try:
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


@contextlib.contextmanager
def local_site(url: str) -> Iterator[None]:
    """Start the site on the URL's port for the run when it is the default URL and nothing
    answers there; otherwise do nothing (a local URL that does not answer is an error)."""
    if _answers(url):
        yield
        return
    if url != DEFAULT_URL:
        raise UsageError(f"nothing answers at {url}")
    port = urlsplit(url).port or 80
    print(f"nothing answers at {url}: starting the site there for this run", flush=True)
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "DRAIN_SECONDS": "0"}
    log = open(os.devnull, "wb")  # noqa: SIM115 - closed below, after the process
    process = subprocess.Popen(
        [sys.executable, "-m", "website"], cwd=ROOT / "site", env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise UsageError(f"the site did not start on {url}")
            time.sleep(0.1)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def run_locust(target: Target, args: argparse.Namespace, out: Path) -> int:
    spawn_rate = args.spawn_rate or max(1.0, args.users / 10)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        target.url,
        "--users",
        str(args.users),
        "--spawn-rate",
        f"{spawn_rate:g}",
        "--run-time",
        args.duration,
        "--stop-timeout",
        "5",
        "--html",
        str(out / "report.html"),
        "--csv",
        str(out / "stats"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",  # the thresholds below decide
    ]
    print(
        f"loading {target.url}: {args.users} users (+{spawn_rate:g}/s), {args.duration}",
        flush=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    with (out / "locust.log").open("w") as log:
        return subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        target = resolve(args.url, ROOT, args.stage)
        confirm(target, args)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = args.out or ROOT / "bench" / "results" / f"loadtest-{stamp}"
        out.mkdir(parents=True, exist_ok=True)
        with local_site(target.url) if target.local else contextlib.nullcontext():
            code = run_locust(target, args, out)
    except (TargetError, UsageError) as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    try:
        summary = read_stats(out / "stats_stats.csv")
    except (OSError, ValueError) as exc:
        tail = (out / "locust.log").read_text().strip().splitlines()[-10:]
        print(f"loadtest: Locust did not finish ({code}): {exc}", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)
        return 1
    limits = Thresholds(args.max_error_rate, args.max_p99_ms)
    broken = summary.broken(limits)
    print(summary.table())
    document = {
        "url": target.url,
        "users": args.users,
        "duration": args.duration,
        "thresholds": {
            "max_error_rate_pct": limits.max_error_rate_pct,
            "max_p99_ms": limits.max_p99_ms,
        },
        "broken": broken,
        **summary.as_dict(),
    }
    (out / "summary.json").write_text(json.dumps(document, indent=2) + "\n")
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"reports: {shown}/report.html and {shown}/stats_*.csv")
    if broken:
        print("THRESHOLD BROKEN: " + "; ".join(broken), file=sys.stderr)
        return 1
    given = (
        [f"error rate <= {limits.max_error_rate_pct:g}%"]
        if limits.max_error_rate_pct is not None
        else []
    )
    given += [f"p99 <= {limits.max_p99_ms:g} ms"] if limits.max_p99_ms is not None else []
    print("thresholds held: " + ", ".join(given) if given else "no thresholds given")
    return 0


if __name__ == "__main__":
    sys.exit(main())
