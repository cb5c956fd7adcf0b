"""The destroy engine: stacks in reverse order, what would stop their deletion first, the
stage's artifacts after; the target's own step only where it has one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from spotops.stage.config import STACKS, StageConfig
from spotops.stage.destroy import StageDestruction
from spotops.stage.stacks import StackEvent, StackInfo
from spotops.target import AWS, AwsTarget

NETWORK, SITE, BOOTSTRAP = "spotops-dev-network", "spotops-dev-site", "spotops-bootstrap"
CONFIG = StageConfig("dev", {"AppName": "spotops", "StageName": "dev"})


class FakeStacks:
    def __init__(self, existing: dict[str, StackInfo]) -> None:
        self.existing = existing
        self.deleted: list[str] = []

    def describe(self, name: str) -> StackInfo | None:
        return self.existing.get(name)

    def delete(self, name: str) -> Iterator[StackEvent]:
        self.deleted.append(name)
        yield from ()


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def note(self, message: str) -> None:
        self.calls.append(("note", message))

    def deleting(self, stack_name: str, events: Iterator[StackEvent]) -> None:
        list(events)
        self.calls.append(("deleted", stack_name))


class ClearsNetwork(AwsTarget):
    """A target with a step before the network stack's deletion."""

    def before_deletion(
        self, part: str, stack: StackInfo, client: Callable[[str], Any]
    ) -> str | None:
        return f"cleared {stack.outputs['VpcId']}" if part == "network" else None


def _info(name: str, outputs: dict[str, str] | None = None, **parameters: str) -> StackInfo:
    return StackInfo(name, "CREATE_COMPLETE", outputs or {}, dict(parameters))


def _destruction(stacks: FakeStacks, clients: mock.Mock, target: Any = AWS):
    progress = Progress()
    engine = StageDestruction(
        STACKS,
        stacks=stacks,  # type: ignore[arg-type]
        clients=clients,
        region="us-east-1",
        target=target,
        progress=progress,
    )
    return engine, progress


def test_stacks_are_deleted_last_deployed_first_and_only_those_that_exist():
    stacks = FakeStacks({NETWORK: _info(NETWORK), SITE: _info(SITE)})
    engine, progress = _destruction(stacks, mock.Mock())

    existing = engine.find(CONFIG)
    engine.run(CONFIG, existing, empty_repository=False)

    assert existing.names == [SITE, NETWORK]
    assert stacks.deleted == [SITE, NETWORK]
    assert [c for c in progress.calls if c[0] == "deleted"] == [
        ("deleted", SITE),
        ("deleted", NETWORK),
    ]


def test_a_repository_holding_images_is_emptied_when_asked_else_warned_about():
    site = _info(SITE, {"RepositoryName": "spotops-dev-site"})
    clients = mock.Mock()
    ecr = clients.return_value
    ecr.list_images.return_value = {"imageIds": [{"imageDigest": "sha256:a"}]}
    ecr.batch_delete_image.return_value = {"imageIds": [{"imageDigest": "sha256:a"}]}

    engine, warned = _destruction(FakeStacks({SITE: site}), clients)
    engine.run(CONFIG, engine.find(CONFIG), empty_repository=False)
    engine, emptied = _destruction(FakeStacks({SITE: site}), clients)
    engine.run(CONFIG, engine.find(CONFIG), empty_repository=True)

    assert warned.calls[0][1].startswith("Warning: spotops-dev-site still holds images")
    assert emptied.calls[0] == ("note", "Deleted 1 image(s) from spotops-dev-site.")
    assert emptied.calls[1] == ("deleted", SITE)


def test_the_targets_step_runs_just_before_the_stack_it_is_for():
    stacks = FakeStacks(
        {NETWORK: _info(NETWORK, {"VpcId": "vpc-1"}), SITE: _info(SITE)},
    )
    engine, progress = _destruction(stacks, mock.Mock(), ClearsNetwork())

    engine.run(CONFIG, engine.find(CONFIG), empty_repository=False)

    assert progress.calls == [
        ("deleted", SITE),
        ("note", "cleared vpc-1"),
        ("deleted", NETWORK),
    ]


def test_retained_data_is_named_and_the_stages_artifacts_leave_the_shared_bucket():
    site = _info(SITE, {"RepositoryName": "spotops-dev-site"}, RetainData="true")
    bootstrap = _info(BOOTSTRAP, {"ArtifactBucketName": "artifacts"})
    clients = mock.Mock()
    s3 = clients.return_value
    s3.list_images.return_value = {"imageIds": [{"imageDigest": "sha256:a"}]}
    versions = [{"Key": "spotops/dev/ops/abc.zip", "VersionId": "v1"}]
    s3.get_paginator.return_value.paginate.return_value = [{"Versions": versions}]
    engine, progress = _destruction(FakeStacks({SITE: site, BOOTSTRAP: bootstrap}), clients)

    engine.run(CONFIG, engine.find(CONFIG), empty_repository=False)

    notes = [message for kind, message in progress.calls if kind == "note"]
    assert not any(note.startswith("Warning") for note in notes)  # kept on purpose
    assert (
        notes[0] == "Kept (RetainData): the repository spotops-dev-site and the log groups of dev."
    )
    assert notes[1].startswith("Deleted 1 template and package version(s) of dev from artifacts")
    s3.get_paginator.return_value.paginate.assert_called_with(
        Bucket="artifacts", Prefix="spotops/dev/"
    )
