"""`make mutants` (tools/mutants.py) on a tiny module of two decisions, one tested at its
boundary and one not: the tool reports the first's mutant killed and the second's survived,
reuses its results while nothing changed, and counts a survivor as killed only when the
equivalents file gives a reason. One mutmut run of a handful of mutants, a few seconds."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tools.mutants import DecisionModule, Options, run

LIMITS = """\
def within_limit(value: int, limit: int) -> bool:
    return value <= limit


def size_label(value: int) -> str:
    if value > 100:
        return "big"
    return "small"
"""

# within_limit is pinned on both sides of its boundary; size_label is never asked about 100.
TESTS = """\
from smokepkg.limits import size_label, within_limit


def test_at_the_limit_is_within_and_one_past_is_not() -> None:
    assert within_limit(5, 5)
    assert not within_limit(6, 5)


def test_a_small_value_is_small() -> None:
    assert size_label(5) == "small"
"""

MODULE = DecisionModule(
    name="smoke-limits",
    source="lib/smokepkg/limits.py",
    tests=("tests/test_limits.py",),
    import_root="lib",
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def options(tmp_path: Path) -> Options:
    write(tmp_path / "lib/smokepkg/__init__.py", "")
    write(tmp_path / "lib/smokepkg/limits.py", LIMITS)
    write(tmp_path / "tests/__init__.py", "")
    write(tmp_path / "tests/test_limits.py", TESTS)
    return Options(
        root=tmp_path,
        build=tmp_path / "build",
        equivalents=tmp_path / "equivalent.toml",
        support=("tests",),
    )


def test_a_tested_boundary_is_killed_an_untested_one_survives_and_equivalents_need_a_reason(
    options: Options,
) -> None:
    first = run([MODULE], options).scores[0]

    assert first.ran
    survivors = {m.source_line + " -> " + m.mutation: m for m in first.survivors}
    # The boundary both tests pin: `<=` turned `<` must be killed.
    assert first.result.killed >= 1
    assert not [m for m in first.survivors if m.function == "within_limit"]
    # The boundary no test pins: `>` turned `>=` must survive, reported with its line.
    untested = survivors["if value > 100: -> if value >= 100:"]
    assert (untested.function, untested.line, untested.status) == ("size_label", 6, "survived")
    assert untested.stable_id.startswith("smokepkg.limits.size_label:")
    assert first.score < 100.0
    report = json.loads((options.build / "report.json").read_text())
    assert untested.stable_id in {s["stable_id"] for s in report["modules"][0]["survivors"]}
    assert untested.stable_id in (options.build / "report.md").read_text()

    # Nothing changed, so the second run reuses the first's verdicts; one survivor is listed
    # as equivalent with a reason (counted as killed), another without one (not counted).
    no_reason = next(m for m in first.survivors if m is not untested)
    options.equivalents.write_text(
        textwrap.dedent(
            f"""\
            [[equivalent]]
            id = "{untested.stable_id}"
            reason = "the smoke pretends 100 itself never reaches size_label"

            [[equivalent]]
            id = "{no_reason.stable_id}"
            reason = ""
            """
        )
    )
    again = run([MODULE], options)
    second = again.scores[0]

    assert not second.ran
    assert [m.stable_id for m, _ in second.equivalent] == [untested.stable_id]
    assert no_reason.stable_id in {m.stable_id for m in second.survivors}
    assert any(no_reason.stable_id in problem for problem in again.problems)
    assert second.score > first.score
