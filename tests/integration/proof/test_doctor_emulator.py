"""``spotops doctor`` against the moto server: before a deploy, after one, and with the
toolkit's inputs broken (webhook unset or answering 404, runbooks answering 404)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from spotops.factory import CLIFactory
from spotops.ops import switches as controls
from spotops.proof.doctor import OPS_ROWS, run_doctor
from spotops.proof.rows import ProofReport, State
from tests.support.net import LOOPBACK

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parents[3]


class LocalWeb:
    """Runbooks under /runbooks/ and a webhook at /hook on 127.0.0.1; each answers 200 until
    told otherwise."""

    def __init__(self) -> None:
        self.runbook_status = 200
        self.hook_status = 200
        self.posts: list[bytes] = []
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = self.path.startswith("/runbooks/") and self.path.endswith(".md")
                self._answer(web.runbook_status if found else 404)

            def do_POST(self) -> None:
                web.posts.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                self._answer(web.hook_status)

            def _answer(self, status: int) -> None:
                body = b"ok" if status == 200 else b"no_service"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.base = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def web() -> Iterator[LocalWeb]:
    server = LocalWeb()
    try:
        yield server
    finally:
        server.close()


def _project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "infra" / "cloudformation", tmp_path / "infra" / "cloudformation")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(
        ROOT / "ops_lambdas",
        tmp_path / "ops_lambdas",
        ignore=shutil.ignore_patterns("__pycache__", "deployments"),
    )
    return tmp_path


def _deploy(project: Path, emulator: str, runbooks: str) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator, "NO_COLOR": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spotops",
            "--project-dir",
            str(project),
            "deploy",
            "--yes",
            "--param",
            f"RunbookBaseUrl={runbooks}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _states(report: ProofReport) -> dict[str, State]:
    return {row.name: row.state for row in report.rows}


def _row(report: ProofReport, name: str) -> Any:
    return next(row for row in report.rows if row.name == name)


def test_before_the_first_deploy_doctor_passes_and_skips_the_ops_rows(emulator, tmp_path):
    report = run_doctor(CLIFactory(_project(tmp_path)), stage="dev", region=None)

    states = _states(report)
    assert report.exit_code == 0, report.to_json()
    assert states["credentials"] is State.EMULATOR
    assert states["config"] is State.OK
    assert states["fargate on-demand vcpu quota"] is State.EMULATOR
    assert states["fargate spot vcpu quota"] is State.EMULATOR
    assert states["stack site"] is State.OK
    assert "not deployed yet" in _row(report, "stack site").detail
    assert all(states[name] is State.SKIP for name in OPS_ROWS)
    assert report.target.startswith("emulator") or "127.0.0.1" in report.target


def test_a_fresh_deploy_with_its_webhook_set_passes(emulator, aws, tmp_path, web):
    project = _project(tmp_path)
    _deploy(project, emulator, f"{web.base}/runbooks")
    controls.set_webhook(
        aws("secretsmanager"), "spotops/dev/slack-webhook", f"{web.base}/hook", create_missing=True
    )

    report = run_doctor(CLIFactory(project), stage="dev", region=None, send_test=True)

    states = _states(report)
    assert report.exit_code == 0, report.to_json()
    assert [states[f"stack {part}"] for part in ("network", "site", "ops")] == [State.OK] * 3
    assert states["slack webhook"] is State.EMULATOR  # the local receiver answered
    assert len(web.posts) == 1
    assert states["runbook url"] is State.EMULATOR
    assert states["slack dead letters"] is State.OK
    assert states["events dead letters"] is State.OK
    assert "off: automation may act" in _row(report, "kill-switch").detail
    assert _row(report, "chaos-leash").detail.startswith("on:")

    # Broken: the webhook answers 404 (removed in Slack), the runbooks are not published.
    web.hook_status = 404
    web.runbook_status = 404
    broken = run_doctor(CLIFactory(project), stage="dev", region=None, send_test=True)

    assert broken.exit_code == 1
    webhook = _row(broken, "slack webhook")
    assert webhook.state is State.FAIL
    assert "404" in webhook.detail
    assert "spotops slack-webhook set --stage dev" in webhook.advice
    assert webhook.runbook == "slack-webhook-missing.md"
    runbook = _row(broken, "runbook url")
    assert runbook.state is State.FAIL
    assert "RunbookBaseUrl" in runbook.advice
    assert broken.first_failure is webhook

    # Broken: the webhook unset; a message waits in the Slack dead-letter queue.
    web.runbook_status = 200
    aws("secretsmanager").put_secret_value(
        SecretId="spotops/dev/slack-webhook", SecretString='{"url": ""}'
    )
    sqs = aws("sqs")
    sqs.send_message(
        QueueUrl=sqs.get_queue_url(QueueName="spotops-dev-slack-dlq")["QueueUrl"], MessageBody="{}"
    )
    unset = run_doctor(CLIFactory(project), stage="dev", region=None)

    assert unset.exit_code == 1
    assert _row(unset, "slack webhook").state is State.FAIL
    assert "holds no URL" in _row(unset, "slack webhook").detail
    dead = _row(unset, "slack dead letters")
    assert (dead.state, dead.runbook) == (State.WARN, "ops-dead-letters.md")
    assert "1 message" in dead.detail


def test_an_unknown_stage_is_bad_input(emulator, tmp_path):
    from spotops.errors import UsageError

    with pytest.raises(UsageError) as raised:
        run_doctor(CLIFactory(_project(tmp_path)), stage="nosuch", region=None)

    assert raised.value.exit_code == 2
