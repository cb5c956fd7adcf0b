"""What the benchmarks read from Linux: process trees, their CPU time and memory, and cores.

CPU time is ``utime + stime`` from ``/proc/<pid>/stat`` summed over a process and all its
descendants, in clock ticks (100 per second here): the measured loads run for seconds, so
the tick is well under 1% of what is counted.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (processes that are gone count nothing)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / _TICKS_PER_SECOND


def rss_mb(pids: list[int]) -> float:
    """Resident memory of ``pids`` in MB (MiB, as ``ps`` counts)."""
    total_kb = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total_kb += int(match.group(1))
    return total_kb / 1024


@dataclass(frozen=True)
class Cores:
    """Where the server and the load generator run.

    ``shared`` is true when the machine offers one core only: both then run on it, and the
    figures say so, since the load generator's work lands on the server's core.
    """

    server: int
    load: int
    shared: bool

    @classmethod
    def pick(cls) -> Cores:
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2:
            return cls(available[0], available[0], shared=True)
        return cls(available[0], available[1], shared=False)

    def describe(self) -> str:
        if self.shared:
            return f"server and load generator SHARE core {self.server} (one core available)"
        return f"server on core {self.server}, load generator on core {self.load}"


def pinned_to(core: int) -> Callable[[], None]:
    """A ``preexec_fn`` that pins the child (and every thread it starts) to ``core``."""

    def pin() -> None:
        os.sched_setaffinity(0, {core})

    return pin


def python_version() -> str:
    return sys.version.split()[0]
