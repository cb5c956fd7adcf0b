"""Mutation testing of the pure decision modules, each against its own unit tests (issue 28).

`make mutants` runs this. Each module in `DECISION_MODULES` gets a work folder under
`build/mutants/work/<name>/` holding a snapshot of its package, the tests and what the tests
import, laid out so `chalicelib` imports from the folder's top as mutmut expects; mutmut then
mutates that one file and runs only the module's own unit tests against every mutant. Two
modules run at once (the CI machine has two cores). The report goes to
`build/mutants/report.md` and `build/mutants/report.json`.

A module whose source and tests hash the same as at its last run is not run again: its last
results are reported (`--all` runs every module). Survivors listed in
`tests/mutation/equivalent.toml` with a reason count as killed. The exit code is 1 when any
module scores under `--threshold` (90 by default), 2 when the tooling itself failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS_FILE = Path("tests/mutation/equivalent.toml")
DEFAULT_BUILD_DIR = Path("build/mutants")
DEFAULT_THRESHOLD = 90.0
WORKERS = 2


@dataclass(frozen=True)
class DecisionModule:
    """One module under mutation and the unit tests that must notice a wrong decision in it.

    Paths are relative to the repository root. `import_root` is the folder the module is
    imported from (pytest's pythonpath entry), so the module's package is the first folder of
    `source` below it.
    """

    name: str
    source: str
    tests: tuple[str, ...]
    import_root: str = "ops_lambdas"
    # Tests not run against mutants, with the reason (make test still runs them). A mutant
    # only they would kill is reported as a survivor, so the score errs low, never high.
    not_against_mutants: tuple[tuple[str, str], ...] = ()


DECISION_MODULES: tuple[DecisionModule, ...] = (
    DecisionModule(
        name="redeploy-decisions",
        source="ops_lambdas/chalicelib/redeploy/decisions.py",
        tests=("tests/unit/ops/redeploy/test_decisions.py",),
    ),
    DecisionModule(
        name="alarm-rules",
        source="ops_lambdas/chalicelib/alarms/rules.py",
        tests=(
            "tests/unit/ops/alarms/test_rules.py",
            "tests/unit/ops/alarms/test_remediation_settings.py",
            "tests/unit/ops/alarms/test_events.py",
            "tests/unit/ops/alarms/test_rule_reasons.py",
        ),
    ),
    DecisionModule(
        name="chaos-guards",
        source="ops_lambdas/chalicelib/chaos/guards.py",
        tests=("tests/unit/ops/chaos/test_guards.py",),
        not_against_mutants=tuple(
            (
                f"tests/unit/ops/chaos/test_guards.py::{test}",
                "a statistical simulation of years of draws: 4 s alone, about 20 s through "
                "mutmut's trampolines, for each of some 600 mutants: past the 15 min bound",
            )
            for test in (
                "test_over_simulated_years_without_a_gap_kills_come_at_the_per_run_probability",
                "test_seeded_draws_hit_at_the_per_run_probability",
            )
        ),
    ),
)

# What the unit tests import besides the module's own package: the tests package itself (its
# conftest and tests.support) and spotops (the root conftest installs spotops.local.limits).
SUPPORT_COPIES: tuple[str, ...] = ("tests", "spotops")

# mutmut's verdicts as it writes them (exit codes of the test run against a mutant).
_KILLED_CODES = {1, 3}
_SURVIVED_CODES = {0}
_TIMEOUT_CODES = {-24, 24, 152, 255, 36}
_NO_TESTS_CODES = {5, 33}


class MutantsError(Exception):
    """The tooling could not produce a verdict (mutmut failed, a listed file is missing)."""


@dataclass
class Mutant:
    """One mutant that the tests did not kill, named so the name survives edits elsewhere."""

    stable_id: str
    mutmut_name: str
    function: str
    status: str
    line: int | None
    source_line: str
    mutation: str

    @property
    def text_only(self) -> bool:
        """The mutation changes only the text inside string literals (a message, a label)."""
        return self.source_line != self.mutation and _STRING.sub('""', self.source_line) == (
            _STRING.sub('""', self.mutation)
        )


_STRING = re.compile(r"""(["'])(?:\\.|(?!\1).)*\1""")


@dataclass
class ModuleResult:
    name: str
    source: str
    content_key: str
    mutants: int
    killed: int
    timeouts: int
    survived: int
    no_tests: int
    suspicious: int
    seconds: float
    undetected: list[Mutant] = field(default_factory=list)


@dataclass
class ModuleScore:
    result: ModuleResult
    equivalent: list[tuple[Mutant, str]]
    survivors: list[Mutant]
    ran: bool
    not_against_mutants: tuple[tuple[str, str], ...] = ()

    @property
    def score(self) -> float:
        detected = self.result.killed + self.result.timeouts + len(self.equivalent)
        return 100.0 * detected / self.result.mutants if self.result.mutants else 100.0


# ---- the work folder mutmut runs in --------------------------------------------------------


def content_key(module: DecisionModule, root: Path) -> str:
    """Hash of what decides a module's verdicts: its source, its tests and this tool."""
    digest = hashlib.sha256()
    for relative in (module.source, *module.tests):
        digest.update(relative.encode())
        digest.update(_read_bytes(root / relative))
    digest.update(Path(__file__).read_bytes())
    digest.update(_mutmut_version().encode())
    return digest.hexdigest()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise MutantsError(f"{path} is listed in the mutation table but does not exist") from exc


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def _package_of(module: DecisionModule) -> tuple[Path, Path]:
    """(the package folder to copy, the module's path inside the work folder)."""
    inside = Path(module.source).relative_to(module.import_root)
    return Path(module.import_root) / inside.parts[0], inside


def prepare_work_folder(
    module: DecisionModule, root: Path, work: Path, support: Sequence[str]
) -> Path:
    """A fresh folder where `package/...` and `tests/...` sit at the top, as mutmut expects."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    package, inside = _package_of(module)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")
    shutil.copytree(root / package, work / package.name, ignore=ignore)
    for relative in support:
        if (root / relative).is_dir():
            shutil.copytree(root / relative, work / relative, ignore=ignore)
        elif (root / relative).exists():
            shutil.copy2(root / relative, work / relative)
    for test in module.tests:
        if not (work / test).exists():
            (work / test).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / test, work / test)
    (work / "pyproject.toml").write_text(_work_pyproject(package.name, inside, module, support))
    link_repository_data(root, work / "mutants")
    return inside


# Never linked: the repository's history, environments and caches, and build/ (which holds
# the work folders themselves).
_NOT_DATA = {".git", ".venv", ".venv-checkov", "build", "mutants", "__pycache__"}


def link_repository_data(root: Path, mutants: Path) -> None:
    """Link every other top-level file and folder of the repository into mutmut's folder.

    Some unit tests read the repository's data next to them (templates in infra/, runbooks/,
    README.md), found from the test file's own path; mutmut runs the tests from its copy, so
    the data must be beside that copy. Links, not copies: the tests only read them, and
    mutmut copies the package and the tests itself (so those are never linked).
    """
    mutants.mkdir(parents=True, exist_ok=True)
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name in _NOT_DATA or name.endswith("_cache") or (mutants / name).exists():
            continue
        if (mutants.parent / name).exists():
            continue
        (mutants / name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())


def _work_pyproject(
    package: str, inside: Path, module: DecisionModule, support: Sequence[str]
) -> str:
    def toml_list(items: Iterable[str]) -> str:
        return "[" + ", ".join(json.dumps(item) for item in items) + "]"

    pytest_args = ["-p", "no:cacheprovider"]
    for test, _reason in module.not_against_mutants:
        pytest_args += ["--deselect", test]

    # The test selection is the module's own unit tests only: a mutant another layer would
    # catch still counts as a survivor, because the unit tests are what guard the decision.
    return "\n".join(
        [
            "[tool.mutmut]",
            f"source_paths = {toml_list([package])}",
            f"only_mutate = {toml_list([inside.as_posix()])}",
            f"also_copy = {toml_list(s for s in support if s != 'tests')}",
            f"pytest_add_cli_args_test_selection = {toml_list(module.tests)}",
            f"pytest_add_cli_args = {toml_list(pytest_args)}",
            "use_git_change_detection = false",
            "",
            "[tool.pytest.ini_options]",
            'pythonpath = ["."]',
            'filterwarnings = ["ignore::DeprecationWarning:botocore.*"]',
            "",
        ]
    )


def run_mutmut(work: Path, max_children: int, log: Path) -> None:
    mutmut = Path(sys.executable).with_name("mutmut")
    command = [str(mutmut), "run", "--max-children", str(max_children)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with log.open("w") as out:
        finished = subprocess.run(command, cwd=work, stdout=out, stderr=subprocess.STDOUT, env=env)
    if finished.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise MutantsError(f"mutmut failed in {work} (exit {finished.returncode}):\n{tail}")


# ---- reading mutmut's verdicts ---------------------------------------------------------------


def read_verdicts(work: Path, inside: Path) -> dict[str, int | None]:
    meta = json.loads((work / "mutants" / f"{inside.as_posix()}.meta").read_text())
    verdicts: dict[str, int | None] = meta["exit_code_by_key"]
    return verdicts


def mutant_diffs(work: Path, names: Sequence[str]) -> dict[str, str]:
    """mutmut's diff of each named mutant against the original function.

    Read in a child process run inside the work folder, because mutmut resolves every path
    against the current folder and caches its configuration per process.
    """
    if not names:
        return {}
    script = (
        "import json, sys\n"
        "from mutmut.mutation.diff_apply import get_diff_for_mutant\n"
        "names = json.load(sys.stdin)\n"
        "print(json.dumps({n: get_diff_for_mutant(n) for n in names}))\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script],
        cwd=work,
        input=json.dumps(list(names)),
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise MutantsError(f"could not read the mutants' diffs in {work}:\n{finished.stderr}")
    diffs: dict[str, str] = json.loads(finished.stdout)
    return diffs


_HUNK = re.compile(r"^@@ -(\d+)")


def describe(diff: str) -> tuple[list[str], list[str], int]:
    """(original lines, mutated lines, offset of the first changed line in the function)."""
    removed: list[str] = []
    added: list[str] = []
    offset = 0
    for number, line in enumerate(diff.splitlines()):
        if line.startswith(("---", "+++")) and number < 2:
            continue
        hunk = _HUNK.match(line)
        if hunk and not removed and not added:
            offset = int(hunk.group(1))
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
        elif not removed and not added and not hunk:
            offset += 1
    return removed, added, offset


def function_of(mutmut_name: str) -> str:
    """`Class.method` or `function` from mutmut's mangled `x_function__mutmut_3` name."""
    mangled = mutmut_name.rpartition(".")[2].partition("__mutmut_")[0]
    if mangled.startswith("xǁ"):
        _, class_name, method = mangled.split("ǁ")
        return f"{class_name}.{method}"
    return mangled.removeprefix("x_")


def stable_id(module_dotted: str, function: str, removed: list[str], added: list[str]) -> str:
    """module.function:hash of the changed text, so it moves with the code, not its line."""
    text = "\n".join(removed) + "\n=>\n" + "\n".join(added)
    return f"{module_dotted}.{function}:{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def source_line_number(source: str, removed: list[str], offset: int, function: str) -> int | None:
    """The line of the original file a mutation changed (the first of them)."""
    if not removed:
        return None
    lines = source.splitlines()
    start, end = _function_span(source, function) or (1, len(lines))
    candidates = [n for n in range(start, end + 1) if lines[n - 1].strip() == removed[0]]
    if not candidates:
        return None
    guess = start + max(offset, 1) - 1
    return min(candidates, key=lambda n: abs(n - guess))


def _function_span(source: str, function: str) -> tuple[int, int] | None:
    import ast

    names = function.split(".")
    body: list[ast.stmt] = ast.parse(source).body
    node: ast.stmt | None = None
    for name in names:
        node = next(
            (
                n
                for n in body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name == name
            ),
            None,
        )
        if node is None:
            return None
        body = node.body
    if node is None:
        return None
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return first, node.end_lineno or node.lineno


def collect_result(
    module: DecisionModule, root: Path, work: Path, inside: Path, key: str, seconds: float
) -> ModuleResult:
    verdicts = read_verdicts(work, inside)
    counts = {"killed": 0, "timeouts": 0, "survived": 0, "no_tests": 0, "suspicious": 0}
    undetected_status: dict[str, str] = {}
    for name, code in verdicts.items():
        if code in _KILLED_CODES:
            counts["killed"] += 1
        elif code in _TIMEOUT_CODES:
            counts["timeouts"] += 1
        elif code in _SURVIVED_CODES:
            counts["survived"] += 1
            undetected_status[name] = "survived"
        elif code in _NO_TESTS_CODES:
            counts["no_tests"] += 1
            undetected_status[name] = "no tests"
        else:
            counts["suspicious"] += 1
            undetected_status[name] = f"suspicious (exit {code})"
    diffs = mutant_diffs(work, sorted(undetected_status))
    source = (root / module.source).read_text()
    module_dotted = ".".join(inside.with_suffix("").parts)
    undetected: list[Mutant] = []
    seen: dict[str, int] = {}
    for name in sorted(undetected_status, key=_mutmut_order):
        function = function_of(name)
        removed, added, offset = describe(diffs[name])
        ident = stable_id(module_dotted, function, removed, added)
        # The same change of the same text twice in one function: number them in order.
        seen[ident] = seen.get(ident, 0) + 1
        if seen[ident] > 1:
            ident = f"{ident}-{seen[ident]}"
        undetected.append(
            Mutant(
                stable_id=ident,
                mutmut_name=name,
                function=function,
                status=undetected_status[name],
                line=source_line_number(source, removed, offset, function),
                source_line=" / ".join(removed),
                mutation=" / ".join(added),
            )
        )
    undetected.sort(key=lambda m: (m.line or 0, m.stable_id))
    return ModuleResult(
        name=module.name,
        source=module.source,
        content_key=key,
        mutants=len(verdicts),
        seconds=round(seconds, 1),
        undetected=undetected,
        **counts,
    )


def _mutmut_order(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


# ---- equivalent mutants ----------------------------------------------------------------------


def load_equivalents(path: Path) -> tuple[dict[str, str], list[str]]:
    """(reason by stable id, problems): an entry without a reason is a problem, not a kill."""
    if not path.exists():
        return {}, []
    data = tomllib.loads(path.read_text())
    reasons: dict[str, str] = {}
    problems: list[str] = []
    for entry in data.get("equivalent", []):
        ident = str(entry.get("id", "")).strip()
        reason = str(entry.get("reason", "")).strip()
        if not ident:
            problems.append(f"{path}: an entry has no id")
        elif not reason:
            problems.append(f"{path}: {ident} has no reason, so it does not count as killed")
        else:
            reasons[ident] = reason
    return reasons, problems


def score_module(
    module: DecisionModule, result: ModuleResult, reasons: dict[str, str], ran: bool
) -> ModuleScore:
    equivalent = [(m, reasons[m.stable_id]) for m in result.undetected if m.stable_id in reasons]
    listed = {m.stable_id for m, _ in equivalent}
    survivors = [m for m in result.undetected if m.stable_id not in listed]
    return ModuleScore(result, equivalent, survivors, ran, module.not_against_mutants)


# ---- the run -------------------------------------------------------------------------------


@dataclass
class Options:
    root: Path = REPO_ROOT
    build: Path = REPO_ROOT / DEFAULT_BUILD_DIR
    equivalents: Path = REPO_ROOT / EQUIVALENTS_FILE
    threshold: float = DEFAULT_THRESHOLD
    run_all: bool = False
    workers: int = WORKERS
    support: tuple[str, ...] = SUPPORT_COPIES
    only: tuple[str, ...] = ()


@dataclass
class Report:
    scores: list[ModuleScore]
    problems: list[str]
    seconds: float
    threshold: float

    @property
    def below_threshold(self) -> list[ModuleScore]:
        return [s for s in self.scores if s.score < self.threshold]


def run(modules: Sequence[DecisionModule], options: Options) -> Report:
    started = time.monotonic()
    options.build.mkdir(parents=True, exist_ok=True)
    cache_file = options.build / "cache.json"
    cache: dict[str, dict[str, Any]] = (
        json.loads(cache_file.read_text()) if cache_file.exists() else {}
    )
    chosen = [m for m in modules if not options.only or m.name in options.only]
    keys = {m.name: content_key(m, options.root) for m in chosen}
    stale = [
        m
        for m in chosen
        if options.run_all or cache.get(m.name, {}).get("content_key") != keys[m.name]
    ]
    # Largest first, so the two workers finish close together.
    stale.sort(key=lambda m: -len((options.root / m.source).read_bytes()))
    # Two modules at once, each testing two mutants at a time: while both run the cores are
    # shared, and the one that finishes last still has both to itself.
    children = options.workers

    def run_one(module: DecisionModule) -> ModuleResult:
        began = time.monotonic()
        work = options.build / "work" / module.name
        inside = prepare_work_folder(module, options.root, work, options.support)
        run_mutmut(work, children, options.build / f"{module.name}.log")
        return collect_result(
            module, options.root, work, inside, keys[module.name], time.monotonic() - began
        )

    fresh: dict[str, ModuleResult] = {}
    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        for result in pool.map(run_one, stale):
            fresh[result.name] = result
            cache[result.name] = asdict(result)
            # Saved after each module, so an interrupted run keeps what it finished.
            cache_file.write_text(json.dumps(cache, indent=2))

    reasons, problems = load_equivalents(options.equivalents)
    scores = []
    for module in chosen:
        result = fresh.get(module.name) or _result_from_cache(cache[module.name])
        scores.append(score_module(module, result, reasons, ran=module.name in fresh))
    known = {m.stable_id for s in scores for m in s.result.undetected}
    problems += [
        f"{options.equivalents.name}: {ident} matches no surviving mutant (killed now, or the "
        "code it names changed): remove it or update its id"
        for ident in sorted(reasons)
        if ident not in known and any(ident.startswith(_dotted(m) + ".") for m in chosen)
    ]
    report = Report(scores, problems, time.monotonic() - started, options.threshold)
    write_reports(report, options.build)
    return report


def _dotted(module: DecisionModule) -> str:
    return ".".join(Path(module.source).relative_to(module.import_root).with_suffix("").parts)


def _result_from_cache(data: dict[str, Any]) -> ModuleResult:
    fields = dict(data)
    undetected = [Mutant(**m) for m in fields.pop("undetected")]
    return ModuleResult(**fields, undetected=undetected)


# ---- the report ------------------------------------------------------------------------------


def write_reports(report: Report, build: Path) -> None:
    (build / "report.json").write_text(json.dumps(report_json(report), indent=2) + "\n")
    (build / "report.md").write_text(report_markdown(report))


def report_json(report: Report) -> dict[str, Any]:
    return {
        "threshold": report.threshold,
        "seconds": round(report.seconds, 1),
        "problems": report.problems,
        "modules": [
            {
                "name": s.result.name,
                "source": s.result.source,
                "ran": s.ran,
                "mutants": s.result.mutants,
                "killed": s.result.killed,
                "timeouts": s.result.timeouts,
                "equivalent": len(s.equivalent),
                "survived": len(s.survivors),
                "survived_text_only": sum(m.text_only for m in s.survivors),
                "score": round(s.score, 1),
                "seconds": s.result.seconds,
                "survivors": [{**asdict(m), "text_only": m.text_only} for m in s.survivors],
                "equivalents": [{**asdict(m), "reason": why} for m, why in s.equivalent],
                "not_against_mutants": [
                    {"test": test, "reason": why} for test, why in s.not_against_mutants
                ],
            }
            for s in report.scores
        ],
    }


def score_table(report: Report) -> str:
    rows = [
        "| module | mutants | killed | timeouts | equivalent | survived | of which text | score "
        "| run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.scores:
        r = s.result
        flag = "" if s.score >= report.threshold else " ✗"
        rows.append(
            f"| `{r.source}` | {r.mutants} | {r.killed} | {r.timeouts} | {len(s.equivalent)} "
            f"| {len(s.survivors)} | {sum(m.text_only for m in s.survivors)} "
            f"| {s.score:.1f}%{flag} | "
            f"{f'{r.seconds:.0f} s' if s.ran else 'cached'} |"
        )
    return "\n".join(rows)


def report_markdown(report: Report) -> str:
    parts = [
        "# Mutation testing of the decision modules",
        "",
        f"Threshold {report.threshold:g}%; this run took {report.seconds:.0f} s. "
        "Score = (killed + timeouts + listed equivalent) / mutants; a survivor counts as "
        "killed only when `tests/mutation/equivalent.toml` lists its id with a reason. "
        "'Of which text': survivors that change only the text of a string (a message).",
        "",
        score_table(report),
    ]
    if report.problems:
        parts += ["", "## Problems", "", *(f"- {p}" for p in report.problems)]
    for s in report.scores:
        parts += ["", f"## {s.result.source}: {len(s.survivors)} survivors", ""]
        for m in s.survivors:
            where = f"line {m.line}" if m.line else "line ?"
            status = "" if m.status == "survived" else f" ({m.status})"
            parts.append(
                f"- `{m.stable_id}`{status}, {where} in `{m.function}`: "
                f"`{m.source_line}` → `{m.mutation}`"
            )
        if s.equivalent:
            parts += ["", "Equivalent (counted as killed):", ""]
            parts += [f"- `{m.stable_id}`: {why}" for m, why in s.equivalent]
        if s.not_against_mutants:
            parts += ["", "Not run against the mutants (a mutant only these kill survives):", ""]
            parts += [f"- `{test}`: {why}" for test, why in s.not_against_mutants]
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--all", action="store_true", help="run every module, not only the changed ones"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="fail when a module scores under this percentage (default %(default)s)",
    )
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        choices=[m.name for m in DECISION_MODULES],
        help="only this module (repeatable)",
    )
    args = parser.parse_args(argv)
    options = Options(threshold=args.threshold, run_all=args.all, only=tuple(args.module))
    try:
        report = run(DECISION_MODULES, options)
    except MutantsError as exc:
        print(f"mutants: {exc}", file=sys.stderr)
        return 2
    print(score_table(report))
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"\n{report.seconds:.0f} s; survivors listed in {options.build / 'report.md'}")
    for s in report.below_threshold:
        print(
            f"{s.result.source}: {s.score:.1f}% is under the threshold of {report.threshold:g}%",
            file=sys.stderr,
        )
    return 1 if report.below_threshold else 0


if __name__ == "__main__":
    sys.exit(main())
