"""Destroy a stage: its stacks in reverse order, what would stop their deletion first, and
the stage's build artifacts after. The command layer asks for confirmation and renders.

Order: first what would stop a deletion halfway is looked for, and the destroy refused
before anything is deleted (:func:`blockers`: images in a repository the stack deletes,
without ``--empty-repository``; a load balancer with deletion protection); the site's image
repository is emptied when asked; the target puts right what it cannot delete itself
(:meth:`~spotops.target.Target.before_deletion`); each stack is deleted and followed; the
stage's templates and packages leave the app's artifact bucket, which stays for the app's
other stages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from spotops.errors import UsageError, is_error
from spotops.stage.artifacts import BUCKET_OUTPUT, ArtifactStore, bootstrap_stack_name
from spotops.stage.config import StackSpec, StageConfig
from spotops.stage.images import empty_repository as empty_repository_images
from spotops.stage.images import image_count
from spotops.stage.stacks import StackDeployer, StackEvent, StackInfo
from spotops.target import AWS, Target


class DestroyProgress(Protocol):
    """What a destroy reports while it runs; the command layer renders it."""

    def note(self, message: str) -> None:
        """A line of information (plain text)."""

    def deleting(self, stack_name: str, events: Iterator[StackEvent]) -> None:
        """Follow one stack's deletion until the iterator ends (it raises if it fails)."""


@dataclass(frozen=True)
class StageStacks:
    """The stacks of a stage that exist, in the order they are deleted."""

    found: tuple[tuple[StackSpec, StackInfo], ...]

    @property
    def names(self) -> list[str]:
        return [info.name for _, info in self.found]

    def part(self, part: str) -> StackInfo | None:
        return next((info for spec, info in self.found if spec.part == part), None)


@dataclass(frozen=True)
class DeletionFacts:
    """What decides whether the site stack's deletion could finish."""

    site_stack: str
    repository: str | None
    images: int
    retained: bool
    protected_load_balancer: str | None


def blockers(facts: DeletionFacts, *, empty_repository: bool) -> list[str]:
    """Why deleting the site stack would fail halfway, each with the flag or step that clears
    it; empty when nothing blocks.

    Example
    -------
    >>> facts = DeletionFacts("s", "repo", images=2, retained=False, protected_load_balancer=None)
    >>> blockers(facts, empty_repository=True)
    []
    """
    found = []
    # A retained repository (RetainData) leaves the stack with its images: no blocker.
    if facts.repository and facts.images and not facts.retained and not empty_repository:
        found.append(
            f"the repository {facts.repository} holds {facts.images} image(s), and "
            f"{facts.site_stack} cannot delete a repository that is not empty: pass "
            "--empty-repository to delete them first"
        )
    if facts.protected_load_balancer:
        found.append(
            f"the load balancer of {facts.site_stack} has deletion protection (RetainData): "
            "turn it off first with `aws elbv2 modify-load-balancer-attributes "
            f"--load-balancer-arn {facts.protected_load_balancer} --attributes "
            "Key=deletion_protection.enabled,Value=false`"
        )
    return found


class StageDestruction:
    """Delete every stack of a stage, in reverse order.

    Parameters
    ----------
    specs:
        The stacks (:data:`spotops.stage.config.STACKS`), in deploy order.
    stacks:
        The CloudFormation side (:class:`~spotops.stage.stacks.StackDeployer`).
    clients:
        A boto3 client by service name (ECR for the repository, S3 for the artifacts, and
        what the target needs).
    region:
        The stage's region.
    target:
        Where the stacks are (:mod:`spotops.target`).
    progress:
        Where progress goes.
    """

    def __init__(
        self,
        specs: Sequence[StackSpec],
        *,
        stacks: StackDeployer,
        clients: Callable[[str], Any],
        region: str,
        target: Target = AWS,
        progress: DestroyProgress,
    ) -> None:
        self._specs = specs
        self._stacks = stacks
        self._client = clients
        self._region = region
        self._target = target
        self._progress = progress

    def find(self, config: StageConfig) -> StageStacks:
        """The stage's stacks that exist, last deployed first."""
        found = (
            (spec, self._stacks.describe(spec.stack_name(config.app, config.stage)))
            for spec in reversed(self._specs)
        )
        return StageStacks(tuple((spec, info) for spec, info in found if info is not None))

    def refuse_blockers(self, existing: StageStacks, *, empty_repository: bool) -> None:
        """Raise before anything is deleted when a deletion could not finish.

        Raises
        ------
        UsageError
            Naming each blocker and the flag or step that clears it.
        """
        site = existing.part("site")
        if site is None:
            return
        found = blockers(self._deletion_facts(site), empty_repository=empty_repository)
        if found:
            raise UsageError(
                f"Refused before deleting anything ({', '.join(existing.names)} all stay): "
                + "; ".join(found)
                + ". Otherwise the destroy would stop halfway, with the stacks before "
                f"{site.name} deleted and the rest orphaned."
            )

    def _deletion_facts(self, site: StackInfo) -> DeletionFacts:
        repository = site.outputs.get("RepositoryName")
        return DeletionFacts(
            site_stack=site.name,
            repository=repository,
            images=image_count(self._client("ecr"), repository) if repository else 0,
            retained=site.parameters.get("RetainData") == "true",
            protected_load_balancer=self._protected_load_balancer(site.name),
        )

    def _protected_load_balancer(self, stack_name: str) -> str | None:
        """The ARN of the site's load balancer when its deletion protection is on."""
        try:
            # ListStackResources, not DescribeStackResource: moto 5.2.5 answers that one 500.
            pages = self._client("cloudformation").get_paginator("list_stack_resources")
            arn = next(
                (
                    r.get("PhysicalResourceId")
                    for page in pages.paginate(StackName=stack_name)
                    for r in page.get("StackResourceSummaries", [])
                    if r.get("LogicalResourceId") == "LoadBalancer"
                ),
                None,
            )
            if not arn:
                return None
            attributes = self._client("elbv2").describe_load_balancer_attributes(
                LoadBalancerArn=arn
            )["Attributes"]
        except ClientError as exc:
            # No such resource (a stack half-created) or load balancer: nothing protected.
            if is_error(exc, "ValidationError", "LoadBalancerNotFound"):
                return None
            raise
        protected = any(
            a.get("Key") == "deletion_protection.enabled" and a.get("Value") == "true"
            for a in attributes
        )
        return str(arn) if protected else None

    def run(self, config: StageConfig, existing: StageStacks, *, empty_repository: bool) -> None:
        """Delete ``existing`` (from :meth:`find`); ``empty_repository`` deletes the site's
        images first.

        Raises
        ------
        UsageError
            Before anything is deleted, when a deletion could not finish (:func:`blockers`).
        DeployError
            A deletion did not complete; the message names the first failure.
        """
        self.refuse_blockers(existing, empty_repository=empty_repository)
        site = existing.part("site")
        repository = site.outputs.get("RepositoryName") if site else None
        retained = site is not None and site.parameters.get("RetainData") == "true"
        if repository and empty_repository:
            deleted = empty_repository_images(self._client("ecr"), repository)
            self._progress.note(f"Deleted {deleted} image(s) from {repository}.")
        for spec, info in existing.found:
            done = self._target.before_deletion(spec.part, info, self._client)
            if done:
                self._progress.note(done)
            self._progress.deleting(info.name, self._stacks.delete(info.name))
        if retained:
            self._progress.note(
                f"Kept (RetainData): the repository {repository} and the log groups of "
                f"{config.stage}."
            )
        self._artifacts(config)

    def _artifacts(self, config: StageConfig) -> None:
        shared = bootstrap_stack_name(config.app)
        bootstrap = self._stacks.describe(shared)
        bucket = bootstrap.outputs.get(BUCKET_OUTPUT) if bootstrap else None
        if not bucket:
            return
        # Build artifacts only, rebuilt by every deploy; the bucket serves the other stages.
        store = ArtifactStore(self._client("s3"), bucket, self._region)
        count = store.delete_stage(config.app, config.stage)
        self._progress.note(
            f"Deleted {count} template and package version(s) of {config.stage} from {bucket} "
            f"(the bucket stays for the app's other stages: stack {shared})."
        )
