"""``python -m infra.limits_check`` (run by ``make lint``): every profile's templates and
packaged ops template within AWS's limits, and a breach fails it naming the limit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from infra.limits_check import main, profile_measures
from spotops.stage import limits

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for part in ("infra", "config", "ops_lambdas"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_checkouts_profiles_pass_and_every_stack_is_measured(tmp_path, capsys):
    assert main(["--root", str(ROOT), "--stage", "prod"]) == 0

    report = capsys.readouterr().err
    assert "spotops-prod-site: template" in report
    assert "by URL" in report  # the site template is over the inline limit
    measured = profile_measures(ROOT, "prod", tmp_path)
    subjects = {m.subject for m in measured if m.limit is limits.TEMPLATE_URL}
    assert subjects == {"spotops-prod-site", "spotops-prod-ops"}
    kinds = {m.limit.key for m in measured}
    assert {"role-inline-policies", "lambda-environment", "lambda-zip", "alarm-description"} <= (
        kinds
    )


def test_a_profile_that_breaks_a_limit_fails_the_check_naming_it(checkout, capsys):
    profile = json.loads((checkout / "config" / "dev.json").read_text())
    profile["parameters"]["RunbookBaseUrl"] = "https://runbooks.example.com/" + "r" * 1_000
    (checkout / "config" / "dev.json").write_text(json.dumps(profile))

    assert main(["--root", str(checkout), "--stage", "dev"]) == 1

    report = capsys.readouterr().err
    assert "over AWS's limit of 1,024 characters for a CloudWatch AlarmDescription" in report
    assert "limits check: 1 profiles" in report
