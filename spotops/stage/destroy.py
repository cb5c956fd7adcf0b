"""Destroy a stage: its stacks in reverse order, what would stop their deletion first, and
the stage's build artifacts after. The command layer asks for confirmation and renders.

Order: the site's image repository is emptied when asked (else a warning, as its stack
cannot be deleted while it holds images); the target puts right what it cannot delete
itself (:meth:`~spotops.target.Target.before_deletion`); each stack is deleted and followed;
the stage's templates and packages leave the app's artifact bucket, which stays for the
app's other stages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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

    def run(self, config: StageConfig, existing: StageStacks, *, empty_repository: bool) -> None:
        """Delete ``existing`` (from :meth:`find`); ``empty_repository`` deletes the site's
        images first.

        Raises
        ------
        DeployError
            A deletion did not complete; the message names the first failure.
        """
        site = existing.part("site")
        repository = site.outputs.get("RepositoryName") if site else None
        retained = site is not None and site.parameters.get("RetainData") == "true"
        if repository:
            self._repository(repository, empty=empty_repository, retained=retained)
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

    def _repository(self, repository: str, *, empty: bool, retained: bool) -> None:
        ecr = self._client("ecr")
        if empty:
            deleted = empty_repository_images(ecr, repository)
            self._progress.note(f"Deleted {deleted} image(s) from {repository}.")
        elif image_count(ecr, repository) and not retained:
            self._progress.note(
                f"Warning: {repository} still holds images; deleting the stack fails if the "
                "repository is not empty. Use --empty-repository to delete them first."
            )

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
