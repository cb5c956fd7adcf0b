"""The GitHub workflows: they pass zizmor and GitHub's workflow schema, pin every action by
commit, ask for least privilege, and do what the README's "Continuous delivery" says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
WORKFLOWS = REPO / ".github" / "workflows"
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(name: str) -> dict[str, Any]:
    # PyYAML reads the `on:` key as True.
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True)
    return dict(data)


def steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def step(workflow: dict[str, Any], job: str, name_part: str) -> dict[str, Any]:
    found = [s for s in steps(workflow, job) if name_part in s.get("name", "")]
    assert len(found) == 1, f"{job}: one step named like {name_part!r}"
    return found[0]


def test_zizmor_finds_nothing() -> None:
    done = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--format", "plain", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


def test_workflows_match_githubs_schema() -> None:
    files = sorted(str(path) for path in WORKFLOWS.glob("*.yml"))
    assert len(files) == 2
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_every_action_is_pinned_by_commit(name: str) -> None:
    for job_name, job in load(name)["jobs"].items():
        if "uses" in job:  # a reusable workflow of this repository
            assert job["uses"].startswith("$/.github/workflows/"), job_name
            continue
        for item in job["steps"]:
            if "uses" in item:
                assert PINNED.match(item["uses"]), f"{name}/{job_name}: {item['uses']}"


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_permissions_are_none_by_default_and_minimal_per_job(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {}
    for job_name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert permissions is not None, f"{job_name} states its permissions"
        allowed = {"contents": "read"}
        if name == "deploy.yml" and job_name == "deploy":
            allowed["id-token"] = "write"
        assert set(permissions.items()) <= set(allowed.items()), job_name
    text = (WORKFLOWS / name).read_text()
    assert "write-all" not in text
    assert "pull_request_target" not in text


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_no_literal_account_role_or_region(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    assert not re.search(r"\d{12}", text)
    assert "arn:aws" not in text
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af)-[a-z]+-\d\b", text)


def test_ci_runs_make_test_then_builds_and_scans_the_image() -> None:
    ci = load("ci.yml")
    assert set(ci["on"]) >= {"pull_request", "push", "workflow_call"}
    assert step(ci, "test", "make test")["run"] == "make test"
    assert "make image" in step(ci, "image", "make image")["run"]
    scan = step(ci, "image", "Trivy")
    assert scan["uses"].startswith("aquasecurity/trivy-action@")
    assert scan["with"]["severity"] == "HIGH,CRITICAL"
    assert scan["with"]["ignore-unfixed"] is True
    assert scan["with"]["exit-code"] == "1"
    assert scan["with"]["image-ref"] == "${{ env.IMAGE }}"
    uploads = [
        s for job in ("test", "image") for s in steps(ci, job) if "upload" in s["name"].lower()
    ]
    assert len(uploads) == 2
    for upload in uploads:
        assert upload["uses"].startswith("actions/upload-artifact@")
        assert upload["if"] == "${{ !cancelled() }}"


def test_deploy_runs_ci_first_then_deploys_pushes_waits_and_smoke_tests() -> None:
    deploy = load("deploy.yml")
    assert deploy["on"]["push"] == {"branches": ["main"]}
    job = deploy["jobs"]["deploy"]
    assert set(job["needs"]) == {"ci", "configured"}
    assert deploy["jobs"]["ci"]["uses"] == "$/.github/workflows/ci.yml"
    assert "github.ref == 'refs/heads/main'" in job["if"]
    # Two deploys of one stage never overlap, and none cancels a rollout under way.
    assert job["concurrency"] == {
        "group": "deploy-${{ vars.SPOTOPS_STAGE || 'dev' }}",
        "cancel-in-progress": False,
    }
    assume = step(deploy, "deploy", "Assume the deploy role")
    assert assume["uses"].startswith("aws-actions/configure-aws-credentials@")
    assert assume["with"]["role-to-assume"] == "${{ secrets.AWS_DEPLOY_ROLE_ARN }}"
    assert assume["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
    names = [s["name"] for s in steps(deploy, "deploy")]
    order = [
        "Assume",
        "need spotops deploy",
        "spotops deploy --yes",
        "spotops push",
        "Wait",
        "Smoke",
    ]
    positions = [next(i for i, n in enumerate(names) if part in n) for part in order]
    assert positions == sorted(positions)
    infra = step(deploy, "deploy", "spotops deploy --yes")
    assert infra["if"] == "${{ steps.plan.outputs.infra == 'true' }}"
    assert 'spotops deploy --stage "$STAGE" --yes' in infra["run"]
    assert "delivery.py wait" in step(deploy, "deploy", "Wait")["run"]
    assert "delivery.py smoke" in step(deploy, "deploy", "Smoke")["run"]
    assert '--commit "$GITHUB_SHA"' in step(deploy, "deploy", "Smoke")["run"]


def test_expressions_never_reach_a_shell_directly() -> None:
    """Values from the event or inputs go through env:, never into run: text."""
    for name in ("ci.yml", "deploy.yml"):
        for job in load(name)["jobs"].values():
            for item in job.get("steps", []):
                run = item.get("run", "")
                for expression in re.findall(r"\$\{\{(.*?)\}\}", run):
                    pytest.fail(f"{name}: {item.get('name')}: ${{{{{expression}}}}} in run:")
