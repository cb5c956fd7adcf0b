"""`make run` on a taken port: it fails before saying "Serving", naming a free port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from pathlib import Path

from tests.support.net import LOOPBACK, free_port
from tests.support.siteproc import SITE_DIR, site_command, site_env

ROOT = Path(__file__).resolve().parents[3]


def _check(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*site_command(), "--check-port"],
        cwd=SITE_DIR,
        env=site_env(port),
        capture_output=True,
        text=True,
        timeout=30,
    )


def _listening(port: int) -> socket.socket:
    taken = socket.socket()
    try:
        taken.bind((LOOPBACK, port))
        taken.listen()
    except OSError:
        taken.close()
        raise
    return taken


def test_check_port_skips_taken_ports_and_names_the_command_to_use_a_free_one() -> None:
    port = free_port()
    with contextlib.ExitStack() as held:
        held.enter_context(_listening(port))
        with contextlib.suppress(OSError):  # taken by someone else already: as good
            held.enter_context(_listening(port + 1))
        result = _check(port)

    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.startswith(f"website: port {port} is taken: PORT=")
    assert line.endswith(" make run")
    suggested = int(line.split("PORT=")[1].split()[0])
    assert port + 2 <= suggested <= port + 20  # the next one was taken too


def test_check_port_with_no_free_port_near_says_to_choose_one() -> None:
    port = free_port()
    held = []
    try:
        for offset in range(21):  # the port and the 20 it looks at
            with contextlib.suppress(OSError):  # taken by someone else already: as good
                held.append(_listening(port + offset))
        result = _check(port)
    finally:
        for sock in held:
            sock.close()

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"website: port {port} is taken: choose a free one with PORT=<port> make run"
    )


def test_check_port_on_a_free_port_says_nothing_and_leaves_it_free() -> None:
    port = free_port()

    result = _check(port)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    _listening(port).close()  # nothing holds it after the check


def test_make_run_on_a_taken_port_fails_before_saying_serving() -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = subprocess.run(
            ["make", "--no-print-directory", "run", f"HOST={LOOPBACK}", f"PORT={port}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode != 0
    assert "Serving" not in result.stdout + result.stderr
    assert f"website: port {port} is taken: PORT=" in result.stderr


def test_unknown_arguments_are_refused_with_exit_2() -> None:
    result = subprocess.run(
        [*site_command(), "--serve-forever"],
        cwd=SITE_DIR,
        env=site_env(free_port()),
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "--serve-forever" in result.stderr
