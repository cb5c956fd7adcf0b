"""The verification marker as the deployment zip honours it: the package built the way
``spotops package`` builds it (offline), unpacked, each handler run in a fresh process as
Lambda would (tests/support/packaged_handler.py). Neither case needs AWS: the hook's
verification calls nothing, and a malformed marker is refused before any client is made."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from spotops.commands import run_command
from spotops.ops.package import offline_artifact_bucket, offline_site_outputs, write_package
from tests.support.events import load_event
from tests.support.packaged_handler import invoke
from tests.support.smoke_target import SmokeTarget

ROOT = Path(__file__).resolve().parents[3]
VERIFY_ID = "verify-package-1"
# No AWS_ENDPOINT_URL and no credentials: a call to AWS would fail, not reach anything.
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "spotops-ops",
}


@pytest.fixture(scope="module")
def zip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ops-package")
    written = write_package(
        ROOT,
        app="spotops",
        stage="qa",
        region="us-east-1",
        site_outputs=offline_site_outputs("spotops", "qa"),
        tags={"spotops:app": "spotops", "spotops:stage": "qa"},
        out_dir=out,
        runner=run_command,
        bucket=offline_artifact_bucket("spotops", "us-east-1"),
    )
    (archive,) = [path for path in written if path.name == "deployment.zip"]
    target = out / "lambda-task-root"
    with zipfile.ZipFile(archive) as unzipped:
        unzipped.extractall(target)
    return target


def lines(logs: str) -> list[dict[str, Any]]:
    found = []
    for line in logs.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return [line for line in found if isinstance(line, dict)]


def test_the_packaged_hook_answers_a_marked_event_without_testing(
    zip_dir: Path, tmp_path: Path
) -> None:
    target = SmokeTarget()
    try:
        event = target.hook_event(load_event("ecsLifecycleHookPostTestTrafficShift"))
        event["spotopsVerification"] = VERIFY_ID

        ran = invoke(zip_dir, "deployment_hook", event, ENV, tmp_path)

        answer = ran["result"]
        assert answer["hookStatus"] == "IN_PROGRESS"
        assert answer["verification"] == VERIFY_ID
        assert answer["dry_run"] is True
        assert answer["would"].startswith(f"run the smoke tests on {target.url}")
        assert target.seen == []
        (logged,) = [line for line in lines(ran["logs"]) if line.get("verification") == VERIFY_ID]
        assert logged["message"] == "verification event answered"
        assert ran["origins"]["chalicelib"].startswith(str(zip_dir.resolve()))
    finally:
        target.close()


def test_the_packaged_redeploy_ignores_a_malformed_marker_before_touching_aws(
    zip_dir: Path, tmp_path: Path
) -> None:
    event = load_event("ecrImageActionPush")
    event["spotopsVerification"] = "not a valid id"

    ran = invoke(zip_dir, "redeploy_on_push", event, ENV, tmp_path)

    assert ran["result"]["status"] == "ignored"
    assert "malformed verification event" in ran["result"]["reason"]
    (warning,) = [line for line in lines(ran["logs"]) if line.get("message") == "event ignored"]
    assert "spotopsVerification must be 1 to 64 letters" in warning["reason"]
