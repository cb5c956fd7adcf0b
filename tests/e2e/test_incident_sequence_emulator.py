"""Issue 26's sequence on the emulator, through the deployed functions and the CLI: two pushes
deployed, the second followed by a 5xx alarm, a rollback by command, a push refused while
frozen, the alarm's recovery, the freeze lifted with the held push deployed; then
`spotops timeline` and `spotops incident report` of it, against golden files.

The ledger stamps its entries to the second, and entries of one second are ordered by source
and text, so the order *inside* a second depends on where a step's second boundaries fall.
Each step therefore starts on a new second, and the golden file lists each step's lines as a
sorted set under the step's name: the order of the steps, and everything each step wrote, are
pinned; the order of lines written in the same second by one step is not. Values that differ
from run to run (times, digests, ECS's ids, durations) are replaced by numbered placeholders.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.test_rollback_emulator import push_and_complete, run, simulate
from tests.support.ops_stage import Stage, deployed_stage
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.emulator
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "emulator"


@pytest.fixture
def stage(emulator: str, tmp_path: Path) -> Stage:
    return deployed_stage(emulator, tmp_path)


class Normaliser:
    """Numbered placeholders, in order of first appearance, for what changes between runs."""

    PATTERNS = (
        ("digest", re.compile(r"sha256:[0-9a-f]{12,64}")),
        ("deployment", re.compile(r"ecs-svc/\d+")),
        ("time", re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?Z?( UTC)?|\b\d\d:\d\d UTC")),
        ("id", re.compile(r"\b[0-9a-f]{32}\b|\b[0-9a-f]{8}-[0-9a-f-]{27}\b")),
        ("seconds", re.compile(r"\b\d+(\.\d+)?\s?s\b")),
    )

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, str]] = {name: {} for name, _ in self.PATTERNS}

    def __call__(self, text: str) -> str:
        for name, pattern in self.PATTERNS:
            text = pattern.sub(lambda m, n=name: self._placeholder(n, m.group(0)), text)
        return text

    def _placeholder(self, name: str, value: str) -> str:
        known = self.seen[name]
        if name in ("time", "seconds"):
            return f"<{name}>"  # how many times or durations there are is what matters
        return known.setdefault(value, f"<{name}-{len(known) + 1}>")


def on_a_new_second() -> float:
    """Wait for the next whole second; that second, as epoch seconds."""
    now = time.time()
    start = math.floor(now) + 1
    time.sleep(start - now + 0.02)
    return float(start)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"differs from {path} (UPDATE_GOLDEN=1 rewrites it)"


def test_two_pushes_a_rollback_a_frozen_push_and_the_unfreeze_in_the_timeline_and_report(
    stage: Stage, slack: SlackStub
) -> None:
    assert run(stage, "slack-webhook", "set", stdin=slack.url).returncode == 0
    steps: list[tuple[str, float, float]] = []

    def step(title: str, work: Callable[[], object]) -> None:
        start = on_a_new_second()
        work()
        steps.append((title, start, math.floor(time.time())))

    def rollback() -> None:
        done = run(stage, "rollback", "--yes")
        assert done.returncode == 0, done.stderr[-3000:]

    def frozen_push() -> None:
        stage.push_image("v3.0.0")
        assert simulate(stage, "ecr-push", "v3.0.0")["status"] == "frozen"

    def alarm(state: str) -> Callable[[], None]:
        def change() -> None:
            simulate(stage, "alarm", "alb-5xx", state)  # notify only: alert, no remediation

        return change

    def unfreeze_and_deploy() -> None:
        done = run(stage, "unfreeze", "--deploy-latest")
        assert done.returncode == 0, done.stderr[-3000:]
        assert simulate(stage, "deployment", "completed")["status"] == "succeeded"

    step("push v1.0.0, deployed and completed", lambda: push_and_complete(stage, "v1.0.0"))
    step("push v2.0.0, deployed and completed", lambda: push_and_complete(stage, "v2.0.0"))
    step("alb-5xx ALARM", alarm("ALARM"))
    step("spotops rollback --yes", rollback)
    step("push v3.0.0 while frozen", frozen_push)
    step("alb-5xx OK", alarm("OK"))
    step("spotops unfreeze --deploy-latest, completed", unfreeze_and_deploy)

    shown = run(stage, "timeline", "--since", "1h", "--json")
    report = run(stage, "incident", "report", "--since", "1h")

    assert shown.returncode == 0, shown.stderr[-3000:]
    assert report.returncode == 0, report.stderr[-3000:]
    normalise = Normaliser()
    grouped: dict[str, set[str]] = {title: set() for title, _, _ in steps}
    grouped["before the first step"] = set()
    for event in json.loads(shown.stdout):
        at = datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp()
        title = next((t for t, start, end in steps if start <= at <= end), "before the first step")
        line = f"{event['source']:<10} {event['kind']:<14} {normalise(event['text'])}"
        grouped[title].add(line)
    order = ["before the first step", *(title for title, _, _ in steps)]
    timeline = "".join(
        f"## {title}\n" + "".join(f"{line}\n" for line in sorted(grouped[title])) for title in order
    )
    check_golden("rollback-sequence.timeline.txt", timeline)

    # The report's own words, with its timeline rows (ordered as above) set aside: its
    # sections, what it says automation did and refused, the runbooks, the times.
    prose = [
        normalise(line)
        for line in report.stdout.splitlines()
        if not line.startswith("| 20") and not line.startswith("- 20")
    ]
    check_golden("rollback-sequence.report.md", "\n".join(prose) + "\n")
    automation = report.stdout[report.stdout.index("### What automation did") :]
    refused = automation[automation.index("### What automation refused") :]
    assert "frozen: v3.0.0" in refused.split("## Detection")[0]
    assert "runbooks/rollback.md" in report.stdout
