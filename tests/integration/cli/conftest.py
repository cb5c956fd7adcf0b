"""Fixtures for driving ``spotops`` against the moto server with small fixture templates."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from spotops.cli.main import cli
from spotops.factory import CLIFactory
from spotops.stage.config import STACKS, StackSpec
from tests.support.templates import CLI_FIXTURE_TEMPLATES, TEMPLATES

DEV_CONFIG = {
    "description": "integration test profile",
    "parameters": {"NatMode": "none", "TaskCpu": 256, "TaskMemory": 512, "DesiredCount": 2},
    "estimate": {},
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A checkout with the fixture templates and a small config/dev.json."""
    infra = tmp_path / "infra" / "cloudformation"
    infra.mkdir(parents=True)
    for template in CLI_FIXTURE_TEMPLATES.glob("*.yaml"):
        shutil.copy(template, infra / template.name)
    # Every deploy makes (or finds) the app's artifact bucket first, with the real template.
    shutil.copy(TEMPLATES / "bootstrap.yaml", infra / "bootstrap.yaml")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "dev.json").write_text(json.dumps(DEV_CONFIG))
    return tmp_path


class SiteOnlyFactory(CLIFactory):
    """The real factory, for the network and site stacks only: these tests use small fixture
    templates, and the ops stack (a Chalice package) has tests of its own."""

    def stack_specs(self) -> tuple[StackSpec, ...]:
        return tuple(spec for spec in STACKS if not spec.packaged)


@pytest.fixture
def spotops(emulator: str, project: Path) -> Callable[..., Result]:
    """Run ``spotops --project-dir <project> <args>`` against the emulator."""

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            ["--project-dir", str(project), *args],
            input=input,
            obj=SiteOnlyFactory(project_dir=project),
        )

    return run
