"""One measured figure: the median of several runs, with the lowest and highest run.

These machines are noisy (other jobs share the cores), so every figure is several runs and
every comparison is a ratio of two things measured in the same run.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """Median, min and max of ``runs`` values, in ``unit``."""

    median: float
    low: float
    high: float
    runs: int
    unit: str

    @classmethod
    def of(cls, values: Iterable[float], unit: str) -> Figure:
        """Summarise the values of several runs.

        Raises
        ------
        ValueError
            When there is no value at all.

        Example
        -------
        >>> Figure.of([3.0, 1.0, 2.0], "ms").median
        2.0
        """
        data = sorted(values)
        if not data:
            raise ValueError("a figure needs at least one run")
        return cls(statistics.median(data), data[0], data[-1], len(data), unit)

    def as_dict(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "runs": self.runs,
            "unit": self.unit,
        }

    def text(self, digits: int = 1) -> str:
        """``123.4 us (110.0-130.2)``: the median, then the range of the runs."""
        unit = f" {self.unit}" if self.unit and self.unit != "x" else ""
        suffix = "x" if self.unit == "x" else ""
        if self.runs == 1:
            return f"{self.median:.{digits}f}{suffix}{unit}"
        return (
            f"{self.median:.{digits}f}{suffix}{unit} ({self.low:.{digits}f}-{self.high:.{digits}f})"
        )
