"""Each part of ``make bench`` in its short mode (seconds): it runs, measures what it says
and reports no failure. No test here asserts a speed; the figures only have to exist."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bench_lambda, bench_package, bench_site
from benchmarks.report import ROOT, Options
from benchmarks.wrk import WrkMissingError, ensure_wrk


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory) -> Options:
    """Short mode, one work folder per module: the ops package is built once for it."""
    return Options(short=True, work_dir=tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def wrk() -> str:
    """wrk, installed from Debian where missing and we are root; else skip, saying why."""
    try:
        return ensure_wrk(say=False)
    except WrkMissingError as exc:
        pytest.skip(str(exc).strip("!\n "))


def test_site_part_measures_the_site_against_bare_sanic(options: Options, wrk: str) -> None:
    result = bench_site.run(options)

    assert result.problems == []
    data = result.data
    for path in bench_site.PATHS:
        assert data["cpu_ratio_site_to_bare"][path]["median"] > 0
        for server in ("site", "bare"):
            figures = data[server][path]
            assert figures["cpu_per_request"]["median"] > 0
            assert figures["requests_per_s"]["median"] > 0
            assert figures["p50"]["median"] <= figures["p99"]["median"]
            assert figures["failed_requests"] == 0
    for server in ("site", "bare"):
        assert data[server]["time_to_first_200"]["median"] > 0
        assert data[server]["rss_after_load"]["median"] > 0
    assert data["site"]["access_log_lines"]["lines"] >= data["site"]["access_log_lines"]["requests"]
    assert data["sigterm_under_load"]["failed_requests"]["max"] == 0
    assert data["sigterm_under_load"]["exit_codes"] == [0]


def test_lambda_part_times_the_cold_start_and_every_event_kind(options: Options) -> None:
    result = bench_lambda.run(options)

    assert result.problems == []
    cold = result.data["cold_start"]
    assert cold["ratio"]["runs"] == 2
    assert cold["app_import"]["median"] > 0
    assert cold["yardstick_statement"] == 'import boto3; boto3.client("ecs")'
    assert cold["tracing"] is True  # as deployed: the functions' Tracing is Active
    # Every container imports app.py; boto3 and slack_sdk wait for a handler that needs them.
    assert cold["boto3_imported_by_app"] is False
    assert cold["first_push_imports"]["median"] > 0
    warm = result.data["warm_path"]
    assert set(warm) >= {"redeploy push", "deployment outcome", "reconcile"}
    assert all(figure["runs"] == 2 and figure["median"] > 0 for figure in warm.values())


def test_package_part_reads_the_zip(options: Options) -> None:
    result = bench_package.run(options)

    assert result.problems == []
    parts = result.data["parts"]
    assert {"app.py", "chalicelib"} <= set(parts)
    assert result.data["lambda_zip_bytes"] >= result.data["our_code_packed_bytes"] > 0


def test_make_bench_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--short",
            "--only",
            "package",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "Lambda zip (deployment.zip)" in done.stdout
    [written] = tmp_path.glob("bench-*-short.json")
    document = json.loads(written.read_text())
    assert document["context"]["mode"] == "short"
    assert document["context"]["taken_at"]
    assert document["parts"]["package"]["figures"]["lambda_zip_bytes"] > 0


def test_an_unknown_part_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "unknown part(s): nope" in done.stderr
