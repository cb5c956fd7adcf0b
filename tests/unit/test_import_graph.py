"""The folder tree is the map only while imports follow it: no circles in either package,
``spotops.local`` (the emulator and its stand-ins) reached only through the factory, and the
shared top of ``chalicelib`` importing no job."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.import_graph import cycles, import_graph

ROOT = Path(__file__).resolve().parents[2]
SPOTOPS = ROOT / "spotops"
CHALICELIB = ROOT / "ops_lambdas" / "chalicelib"

# The composition root chooses the emulator's target when the endpoint is on loopback; no
# other module outside local/ may know the emulator exists.
MAY_IMPORT_LOCAL = {"spotops.factory"}
JOBS = ("alarms", "chaos", "hook", "redeploy", "scan")
# The toolkit builds every job's kit; it is the composition root of the Lambda side.
COMPOSITION_ROOTS = {"chalicelib.toolkit"}


@pytest.mark.parametrize(("root", "package"), [(SPOTOPS, "spotops"), (CHALICELIB, "chalicelib")])
def test_no_import_circles(root: Path, package: str) -> None:
    assert cycles(import_graph(root, package)) == []


def test_only_the_factory_imports_spotops_local() -> None:
    graph = import_graph(SPOTOPS, "spotops")

    offenders = {
        module: sorted(t for t in targets if t.startswith("spotops.local"))
        for module, targets in graph.items()
        if not module.startswith("spotops.local") and module not in MAY_IMPORT_LOCAL
    }

    assert {m: t for m, t in offenders.items() if t} == {}
    assert any(t.startswith("spotops.local") for t in graph["spotops.factory"])


def test_the_shared_top_of_chalicelib_imports_no_job() -> None:
    graph = import_graph(CHALICELIB, "chalicelib")
    shared = {
        module for module in graph if module.count(".") == 1 and module.split(".")[1] not in JOBS
    } - COMPOSITION_ROOTS

    offenders = {
        module: sorted(t for t in graph[module] if t.split(".")[1] in JOBS)
        for module in sorted(shared)
    }

    assert {m: t for m, t in offenders.items() if t} == {}
    assert {"chalicelib.ledger", "chalicelib.settings", "chalicelib.slack"} <= shared


def test_what_ships_to_lambda_imports_nothing_outside_ops_lambdas() -> None:
    ours = {"spotops", "website", "tests", "infra", "benchmarks", "loadtest"}
    offenders = []
    for path in sorted((ROOT / "ops_lambdas").rglob("*.py")):
        if ".chalice" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            where = path.relative_to(ROOT)
            offenders += [f"{where}: {n}" for n in names if n.split(".")[0] in ours]

    assert offenders == []


# ---- the checker itself finds what it is meant to find ------------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_sees_a_lazy_circle_and_ignores_type_checking_imports(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg import b\n",
            "b.py": "def later():\n    from pkg.c import thing\n",
            "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n"
            "from . import a\n",
            "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n",
        },
    )

    graph = import_graph(root, "pkg")

    assert graph["pkg.b"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.a"}
    assert graph["pkg.d"] == set()
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_checker_reads_subpackages_and_relative_imports(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "jobs/__init__.py": "",
            "jobs/flow.py": "from .rules import decide\nfrom pkg.shared import x\n",
            "jobs/rules.py": "",
            "shared.py": "import pkg.jobs.rules\n",
        },
    )

    graph = import_graph(root, "pkg")

    assert graph["pkg.jobs.flow"] == {"pkg.jobs.rules", "pkg.shared"}
    assert graph["pkg.shared"] == {"pkg.jobs.rules"}
    assert cycles(graph) == []
