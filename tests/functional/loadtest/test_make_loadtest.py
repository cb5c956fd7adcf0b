"""``python -m loadtest`` against the real site on 127.0.0.1: a few seconds of the mix, the
reports saved, the summary printed, the exit code set by the thresholds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.siteproc import SiteProcess

ROOT = Path(__file__).resolve().parents[3]


def run_loadtest(site: SiteProcess, out: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest", "--url", site.url, "--out", str(out), *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_short_load_saves_reports_and_holds_generous_thresholds(
    site: SiteProcess, tmp_path: Path
) -> None:
    done = run_loadtest(
        site,
        tmp_path,
        "--users",
        "4",
        "--spawn-rate",
        "4",
        "--duration",
        "3s",
        "--max-error-rate",
        "0",
        "--max-p99-ms",
        "10000",
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "p99 ms" in done.stdout
    assert "thresholds held" in done.stdout
    assert (tmp_path / "report.html").stat().st_size > 0
    assert (tmp_path / "stats_stats.csv").exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["total"]["requests"] > 0
    assert summary["total"]["failures"] == 0  # the 404 in the mix is the right answer
    assert summary["broken"] == []
    assert "/" in {entry["path"] for entry in site.access_entries()}


def test_a_broken_threshold_is_exit_code_1(site: SiteProcess, tmp_path: Path) -> None:
    done = run_loadtest(
        site, tmp_path, "--users", "2", "--spawn-rate", "2", "--duration", "2s", "--max-p99-ms", "0"
    )

    assert done.returncode == 1
    assert "THRESHOLD BROKEN: p99" in done.stderr
