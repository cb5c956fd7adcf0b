"""``make demo`` interrupted: exit 130, no traceback, everything it started stopped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from spotops.local import demo as demo_module
from spotops.local.demo import Demo


class RecordingReceiver:
    """The Slack receiver's stand-in: only whether it was closed."""

    instances: ClassVar[list[RecordingReceiver]] = []

    def __init__(self, printer=print) -> None:
        self.closed = False
        RecordingReceiver.instances.append(self)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def interrupted_demo(monkeypatch, tmp_path: Path) -> dict[str, bool]:
    """A demo whose first step after starting the emulator meets Ctrl-C."""
    started = {"emulator": False, "emulator stopped": False}

    @contextlib.contextmanager
    def emulator(self: Demo) -> Iterator[None]:
        started["emulator"] = True
        self.state.endpoint = "http://127.0.0.1:4566"
        try:
            yield
        finally:
            started["emulator stopped"] = True

    def prove(self: Demo, *args: str) -> None:
        raise KeyboardInterrupt

    RecordingReceiver.instances.clear()
    monkeypatch.setattr(Demo, "_emulator", emulator)
    monkeypatch.setattr(Demo, "prove", prove)
    monkeypatch.setattr(demo_module, "SlackReceiver", RecordingReceiver)
    monkeypatch.setattr(demo_module, "find_project_dir", lambda: tmp_path)
    return started


def test_ctrl_c_exits_130_after_stopping_what_the_demo_started(interrupted_demo, capsys):
    status = demo_module.main()

    assert status == 130
    assert interrupted_demo == {"emulator": True, "emulator stopped": True}
    assert [receiver.closed for receiver in RecordingReceiver.instances] == [True]
    err = capsys.readouterr().err
    assert "Interrupted: everything the demo started is stopped." in err
    assert "Traceback" not in err
