"""`spotops logs --follow` says when it has shown what exists and waits for new events."""

from __future__ import annotations

from datetime import UTC, datetime

from spotops.reports.logs import LogReader
from tests.unit.spotops.cli.test_main import FakeDeployer, invoke

# The fixtures, re-exported: the same fake factory and checkout as the other CLI tests.
from tests.unit.spotops.cli.test_main import factory as factory
from tests.unit.spotops.cli.test_main import project as project
from tests.unit.spotops.reports.test_logs import FakeLogs, _event


def test_follow_says_it_waits_after_the_backlog_then_ctrl_c_exits_0(factory):
    now = int(datetime.now(UTC).timestamp() * 1000)
    logs = FakeLogs({"/ecs/spotops-dev/site": [_event(now, "old line", "1")]})

    def ctrl_c(_: float) -> None:
        raise KeyboardInterrupt

    factory.deployer.return_value = FakeDeployer({})
    factory.log_reader.return_value = LogReader(logs, sleep=ctrl_c)

    result = invoke(factory, "logs", "--follow")

    assert result.exit_code == 0, result.output
    assert "old line" in result.stdout
    assert result.stderr.count("Waiting for new events from site (Ctrl-C stops).") == 1
    assert "Waiting" not in result.stdout  # data on stdout, messages on stderr


def test_follow_names_a_log_group_that_does_not_exist_yet(factory):
    def ctrl_c(_: float) -> None:
        raise KeyboardInterrupt

    factory.deployer.return_value = FakeDeployer({})
    factory.log_reader.return_value = LogReader(FakeLogs({}), sleep=ctrl_c)

    result = invoke(factory, "logs", "--follow")

    assert result.exit_code == 0, result.output
    assert "No log group /ecs/spotops-dev/site yet (site has not run)." in result.stderr
    assert "Waiting for new events from site" in result.stderr
