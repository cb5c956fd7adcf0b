"""Locust's CSV statistics, read back: per request name and overall, the counts, the error
rate and the latency percentiles; and the verdict against the thresholds given."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One line of Locust's ``*_stats.csv``."""

    name: str
    requests: int
    failures: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def error_rate_pct(self) -> float:
        return 100.0 * self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Thresholds:
    """Limits from the command line; ``None`` is no limit."""

    max_error_rate_pct: float | None = None
    max_p99_ms: float | None = None


@dataclass(frozen=True)
class Summary:
    rows: list[Row]
    total: Row

    def broken(self, limits: Thresholds) -> list[str]:
        """What broke a threshold, in words; empty when all held (or none was given)."""
        broken = []
        if self.total.requests == 0:
            broken.append("no request completed")
        rate = self.total.error_rate_pct
        if limits.max_error_rate_pct is not None and rate > limits.max_error_rate_pct:
            broken.append(f"error rate {rate:.2f}% > {limits.max_error_rate_pct:g}%")
        if limits.max_p99_ms is not None and self.total.p99_ms > limits.max_p99_ms:
            broken.append(f"p99 {self.total.p99_ms:g} ms > {limits.max_p99_ms:g} ms")
        return broken

    def table(self) -> str:
        header = f"{'request':<12} {'count':>8} {'errors':>8} {'error %':>8} {'req/s':>8} "
        header += f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        lines = [header, "-" * len(header)]
        for row in [*self.rows, self.total]:
            lines.append(
                f"{row.name:<12} {row.requests:>8} {row.failures:>8} "
                f"{row.error_rate_pct:>8.2f} {row.requests_per_s:>8.1f} "
                f"{row.p50_ms:>8g} {row.p95_ms:>8g} {row.p99_ms:>8g}"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": [asdict(row) | {"error_rate_pct": row.error_rate_pct} for row in self.rows],
            "total": asdict(self.total) | {"error_rate_pct": self.total.error_rate_pct},
        }


def read_stats(path: Path) -> Summary:
    """Read Locust's ``<prefix>_stats.csv``.

    Raises
    ------
    ValueError
        When the file has no "Aggregated" line (Locust did not finish).
    """
    rows: list[Row] = []
    total: Row | None = None
    with path.open(newline="") as handle:
        for record in csv.DictReader(handle):
            row = Row(
                name=record["Name"],
                requests=int(record["Request Count"]),
                failures=int(record["Failure Count"]),
                requests_per_s=float(record["Requests/s"]),
                p50_ms=_number(record["50%"]),
                p95_ms=_number(record["95%"]),
                p99_ms=_number(record["99%"]),
                max_ms=_number(record["Max Response Time"]),
            )
            if record["Name"] == "Aggregated":
                total = Row("all", *list(asdict(row).values())[1:])
            else:
                rows.append(row)
    if total is None:
        raise ValueError(f"{path} has no Aggregated line")
    return Summary(rows, total)


def _number(text: str) -> float:
    return float(text) if text not in ("", "N/A") else 0.0
