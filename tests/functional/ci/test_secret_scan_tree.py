"""`python -m infra.secret_scan` (what `make lint` runs): a secret planted in a new,
uncommitted file is found, and the real tree is clean against its baseline."""

from __future__ import annotations

import json
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BASELINE = REPO / ".secrets.baseline"


def scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.secret_scan", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def fake_key_id() -> str:
    """A key id of the real shape, random, so that no file carries it."""
    alphabet = string.ascii_uppercase + string.digits
    return "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))


def fake_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout with one committed, harmless file."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "README.md").write_text("Nothing to see.\n")
    subprocess.run(["git", "add", "README.md"], cwd=tmp_path, check=True)
    return tmp_path


def test_a_planted_key_in_an_uncommitted_file_is_found(checkout: Path) -> None:
    key_id, secret = fake_key_id(), fake_secret_key()
    planted = checkout / "config" / "settings.ini"
    planted.parent.mkdir()
    planted.write_text(f"[aws]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")
    done = scan("--root", str(checkout), "--baseline", str(BASELINE))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # detect-secrets finds it, and so does the identifier check.
    assert "config/settings.ini:2: AWS Access Key: not in .secrets.baseline" in lines
    assert any(line.startswith("config/settings.ini:2: AWS access key id: AKIA") for line in lines)
    assert any(line.startswith("config/settings.ini:3:") for line in lines)
    assert key_id not in done.stdout  # the report masks it
    assert "README.md" not in done.stdout


def test_an_ignored_file_is_not_scanned(checkout: Path) -> None:
    (checkout / ".gitignore").write_text("*.local\n")
    (checkout / "keys.local").write_text(f"aws_access_key_id = {fake_key_id()}\n")
    done = scan("--root", str(checkout), "--baseline", str(BASELINE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_real_tree_is_clean() -> None:
    done = scan()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "files clean" in done.stderr


def test_the_baseline_holds_only_audited_false_positives() -> None:
    results = json.loads(BASELINE.read_text())["results"]
    unaudited = [
        f"{name}:{item['line_number']} {item['type']}"
        for name, items in results.items()
        for item in items
        if item.get("is_secret") is not False
    ]
    assert unaudited == []


def test_a_missing_baseline_is_a_usage_error(tmp_path: Path) -> None:
    done = scan("--baseline", str(tmp_path / "none.json"), "README.md")
    assert done.returncode == 2
    assert "cannot read" in done.stderr
