"""The destroy engine: stacks in reverse order, what would stop their deletion first, the
stage's artifacts after; the target's own step only where it has one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest

from spotops.errors import UsageError
from spotops.stage.config import STACKS, StageConfig
from spotops.stage.destroy import DeletionFacts, StageDestruction, blockers
from spotops.stage.stacks import StackEvent, StackInfo
from spotops.target import AWS, AwsTarget

NETWORK, SITE, BOOTSTRAP = "spotops-dev-network", "spotops-dev-site", "spotops-bootstrap"
LOAD_BALANCER = "arn:aws:elasticloadbalancing:lb/site"
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


def _clients(images: tuple[str, ...] = (), *, protected: bool = False) -> mock.Mock:
    """One stand-in for every client: ECR holding ``images``, the site's load balancer with
    or without deletion protection, S3 as a plain mock."""
    clients = mock.Mock()
    aws = clients.return_value
    aws.list_images.return_value = {"imageIds": [{"imageDigest": d} for d in images]}
    aws.batch_delete_image.return_value = {"imageIds": [{"imageDigest": d} for d in images]}
    resources = [
        {"LogicalResourceId": "Service", "PhysicalResourceId": "arn:aws:ecs:service/site"},
        {"LogicalResourceId": "LoadBalancer", "PhysicalResourceId": LOAD_BALANCER},
    ]
    aws.get_paginator.return_value.paginate.return_value = [
        {"StackResourceSummaries": resources, "Versions": []}
    ]
    aws.describe_load_balancer_attributes.return_value = {
        "Attributes": [
            {"Key": "idle_timeout.timeout_seconds", "Value": "30"},
            {"Key": "deletion_protection.enabled", "Value": "true" if protected else "false"},
        ]
    }
    return clients


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
    engine, progress = _destruction(stacks, _clients())

    existing = engine.find(CONFIG)
    engine.run(CONFIG, existing, empty_repository=False)

    assert existing.names == [SITE, NETWORK]
    assert stacks.deleted == [SITE, NETWORK]
    assert [c for c in progress.calls if c[0] == "deleted"] == [
        ("deleted", SITE),
        ("deleted", NETWORK),
    ]


def test_a_repository_holding_images_is_emptied_first_when_asked():
    site = _info(SITE, {"RepositoryName": "spotops-dev-site"})
    stacks = FakeStacks({SITE: site, NETWORK: _info(NETWORK)})
    engine, emptied = _destruction(stacks, _clients(("sha256:a",)))

    engine.run(CONFIG, engine.find(CONFIG), empty_repository=True)

    assert emptied.calls[0] == ("note", "Deleted 1 image(s) from spotops-dev-site.")
    assert emptied.calls[1] == ("deleted", SITE)


def test_the_targets_step_runs_just_before_the_stack_it_is_for():
    stacks = FakeStacks(
        {NETWORK: _info(NETWORK, {"VpcId": "vpc-1"}), SITE: _info(SITE)},
    )
    engine, progress = _destruction(stacks, _clients(), ClearsNetwork())

    engine.run(CONFIG, engine.find(CONFIG), empty_repository=False)

    assert progress.calls == [
        ("deleted", SITE),
        ("note", "cleared vpc-1"),
        ("deleted", NETWORK),
    ]


def test_retained_data_is_named_and_the_stages_artifacts_leave_the_shared_bucket():
    site = _info(SITE, {"RepositoryName": "spotops-dev-site"}, RetainData="true")
    bootstrap = _info(BOOTSTRAP, {"ArtifactBucketName": "artifacts"})
    clients = _clients(("sha256:a",))
    s3 = clients.return_value
    versions = [{"Key": "spotops/dev/ops/abc.zip", "VersionId": "v1"}]
    s3.get_paginator.return_value.paginate.return_value = [{"Versions": versions}]
    engine, progress = _destruction(FakeStacks({SITE: site, BOOTSTRAP: bootstrap}), clients)

    engine.run(CONFIG, engine.find(CONFIG), empty_repository=False)

    notes = [message for kind, message in progress.calls if kind == "note"]
    assert (
        notes[0] == "Kept (RetainData): the repository spotops-dev-site and the log groups of dev."
    )
    assert notes[1].startswith("Deleted 1 template and package version(s) of dev from artifacts")
    s3.get_paginator.return_value.paginate.assert_called_with(
        Bucket="artifacts", Prefix="spotops/dev/"
    )


# ---- refused before deleting anything (issue 25, item 5) ----------------------------------


def test_images_without_empty_repository_refuse_the_destroy_before_any_deletion():
    site = _info(SITE, {"RepositoryName": "spotops-dev-site"})
    stacks = FakeStacks({NETWORK: _info(NETWORK), SITE: site, "spotops-dev-ops": _info("o")})
    clients = _clients(("sha256:a", "sha256:b"))
    engine, progress = _destruction(stacks, clients)

    with pytest.raises(UsageError) as caught:
        engine.run(CONFIG, engine.find(CONFIG), empty_repository=False)

    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert "Refused before deleting anything" in message
    assert "spotops-dev-site holds 2 image(s)" in message
    assert "pass --empty-repository" in message
    assert stacks.deleted == []
    assert progress.calls == []
    clients.return_value.batch_delete_image.assert_not_called()


def test_deletion_protection_refuses_the_destroy_naming_the_step_that_clears_it():
    site = _info(SITE, {"RepositoryName": "spotops-dev-site"}, RetainData="true")
    stacks = FakeStacks({NETWORK: _info(NETWORK), SITE: site})
    engine, _ = _destruction(stacks, _clients(("sha256:a",), protected=True))

    with pytest.raises(UsageError) as caught:
        engine.run(CONFIG, engine.find(CONFIG), empty_repository=False)

    message = str(caught.value)
    assert "has deletion protection" in message
    assert f"--load-balancer-arn {LOAD_BALANCER}" in message
    assert "deletion_protection.enabled,Value=false" in message
    assert "image(s)" not in message  # a retained repository keeps its images: no blocker
    assert stacks.deleted == []


@pytest.mark.parametrize(
    ("facts", "empty_repository", "blocked"),
    [
        (DeletionFacts("s", "r", 0, retained=False, protected_load_balancer=None), False, 0),
        (DeletionFacts("s", "r", 1, retained=False, protected_load_balancer=None), False, 1),
        (DeletionFacts("s", "r", 1, retained=False, protected_load_balancer=None), True, 0),
        (DeletionFacts("s", "r", 1, retained=True, protected_load_balancer=None), False, 0),
        (DeletionFacts("s", "r", 1, retained=False, protected_load_balancer="arn"), False, 2),
        (DeletionFacts("s", None, 0, retained=True, protected_load_balancer="arn"), True, 1),
    ],
)
def test_what_blocks_a_destroy(facts, empty_repository, blocked):
    assert len(blockers(facts, empty_repository=empty_repository)) == blocked
