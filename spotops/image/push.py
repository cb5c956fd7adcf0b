"""Build the site image, tag it with the git commit, push it to ECR, report its digest.

External commands (git, docker, buildah) go through a
:class:`~spotops.commands.CommandRunner`, so tests run without an engine or a registry.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from spotops.commands import CommandResult, CommandRunner, first_line
from spotops.errors import (
    DirtyTreeError,
    ImageTagExistsError,
    PushError,
    is_error,
)
from spotops.image.build import BuildEngine

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient


def git_tag(runner: CommandRunner, project_dir: Path, *, allow_dirty: bool) -> str:
    """The short commit of HEAD; ``<commit>-dirty`` when allowed to build a dirty tree.

    Raises
    ------
    DirtyTreeError
        Uncommitted changes and ``allow_dirty`` is false.
    PushError
        Not a git checkout.
    """
    head = runner(["git", "rev-parse", "--short=12", "HEAD"], cwd=project_dir)
    if head.returncode != 0:
        raise PushError(
            f"Cannot read the git commit in {project_dir} ({first_line(head.stderr)}). "
            "Images are tagged with the commit: run push from a git checkout with a commit."
        )
    commit = head.stdout.strip()
    status = runner(["git", "status", "--porcelain"], cwd=project_dir)
    changes = uncommitted_changes(status.stdout)
    if changes and not allow_dirty:
        raise DirtyTreeError(
            f"The working tree has {len(changes)} uncommitted change(s): "
            f"{describe_changes(changes)}; so tag {commit} would not describe the image. "
            "Commit them (or add an untracked file to .gitignore), or pass --allow-dirty to "
            f"push it as {commit}-dirty."
        )
    return f"{commit}-dirty" if changes else commit


# `git status --porcelain` (v1) codes, as a newcomer would say them.
_CHANGE_KINDS = {
    "??": "untracked",
    "M": "modified",
    "A": "added",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
    "U": "unmerged",
    "T": "type changed",
}
# How many changed files a message names before it says "and N more".
NAMED_CHANGES = 5


def uncommitted_changes(porcelain: str) -> list[tuple[str, str]]:
    r"""``(path, kind)`` for each line of ``git status --porcelain`` (v1) output.

    Example
    -------
    >>> uncommitted_changes("?? config/qa.json\n M site/app.py\nR  a.py -> b.py\n")
    [('config/qa.json', 'untracked'), ('site/app.py', 'modified'), ('b.py', 'renamed')]
    """
    changes = []
    for line in porcelain.splitlines():
        if len(line) < 4:
            continue
        code, path = line[:2], line[3:]
        path = path.split(" -> ")[-1]  # a rename or copy: the new path
        letter = "??" if code == "??" else next((c for c in code if c != " "), "")
        changes.append((path, _CHANGE_KINDS.get(letter, "changed")))
    return changes


def describe_changes(changes: list[tuple[str, str]]) -> str:
    """``config/qa.json (untracked), site/app.py (modified)``, the first
    :data:`NAMED_CHANGES` and how many more."""
    named = ", ".join(f"{path} ({kind})" for path, kind in changes[:NAMED_CHANGES])
    more = len(changes) - NAMED_CHANGES
    return f"{named} and {more} more" if more > 0 else named


@dataclass(frozen=True)
class RegistryLogin:
    registry: str
    username: str
    password: str


def ecr_login(ecr: ECRClient) -> RegistryLogin:
    """Decode an ECR authorization token (base64 of ``AWS:<password>``)."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    endpoint = str(data["proxyEndpoint"])
    registry = urlparse(endpoint).netloc or endpoint
    return RegistryLogin(registry=registry, username=username, password=password)


@dataclass(frozen=True)
class PushResult:
    image: str
    tag: str
    digest: str

    @property
    def pinned(self) -> str:
        """``<repository uri>@<digest>``, what the redeploy Lambda pins."""
        return f"{self.image.rsplit(':', 1)[0]}@{self.digest}"


class Pusher:
    """Build, tag and push one image to one ECR repository.

    Parameters
    ----------
    ecr:
        A boto3 ECR client.
    runner:
        Runs docker/buildah/git (injected in tests).
    notify:
        Receives one human sentence per step (the command layer prints them on stderr).
    """

    def __init__(
        self, ecr: ECRClient, runner: CommandRunner, notify: Callable[[str], None] = lambda _: None
    ) -> None:
        self._ecr = ecr
        self._run = runner
        self._notify = notify

    def existing_digest(self, repository_name: str, tag: str) -> str | None:
        """The digest already tagged ``tag`` in the repository, or ``None``."""
        try:
            found = self._ecr.describe_images(
                repositoryName=repository_name, imageIds=[{"imageTag": tag}]
            )
        except ClientError as exc:
            if is_error(exc, "ImageNotFoundException"):
                return None
            raise
        details = found.get("imageDetails", [])
        return str(details[0]["imageDigest"]) if details else None

    def tags_immutable(self, repository_name: str) -> bool:
        try:
            repos = self._ecr.describe_repositories(repositoryNames=[repository_name])
        except ClientError as exc:
            if is_error(exc, "RepositoryNotFoundException"):
                raise PushError(
                    f"ECR repository {repository_name} does not exist. Run `spotops deploy` "
                    "first: the site stack creates it."
                ) from exc
            raise
        return repos["repositories"][0].get("imageTagMutability", "MUTABLE").startswith("IMMUTABLE")

    def push(
        self,
        *,
        repository_name: str,
        repository_uri: str,
        tag: str,
        engine: BuildEngine,
        context: Path,
    ) -> PushResult:
        """Check the tag, log in, build, push; return the digest ECR recorded.

        Raises
        ------
        ImageTagExistsError
            The repository's tags are immutable and ``tag`` is already there.
        PushError
            A build, login or push command failed; carries the tool's own message.
        """
        image = f"{repository_uri}:{tag}"
        existing = self.existing_digest(repository_name, tag)
        if existing and self.tags_immutable(repository_name):
            raise ImageTagExistsError(
                f"{image} is already in ECR (digest {existing}) and the repository's tags are "
                "immutable, so it cannot be pushed again. Commit your change to get a new tag, "
                f"or deploy that image: spotops deploy --image {repository_uri}@{existing}"
            )
        if existing:
            self._notify(f"Tag {tag} exists ({existing}); it will point at the new build.")
        login = ecr_login(self._ecr)
        self._notify(f"Logging in to {login.registry} with {engine.name}")
        self._check(self._run(engine.login(login.registry), input_text=login.password), "login")
        self._notify(f"Building {image} from {context} with {engine.name}")
        # The site shows these on / and /version, so an operator can tell what a task runs.
        build_args = {"GIT_COMMIT": tag.removesuffix("-dirty"), "IMAGE_TAG": tag}
        self._check(self._run(engine.build(image, context, build_args)), "build")
        self._notify(f"Pushing {image}")
        self._check(self._run(engine.push(image)), "push")
        digest = self.existing_digest(repository_name, tag)
        if not digest:
            raise PushError(
                f"{engine.name} reported success but ECR has no image tagged {tag} in "
                f"{repository_name}. Check the registry address and run push again."
            )
        return PushResult(image=image, tag=tag, digest=digest)

    @staticmethod
    def _check(result: CommandResult, step: str) -> None:
        if result.returncode != 0:
            raise PushError(
                f"Image {step} failed (exit {result.returncode}): "
                f"{first_line(result.stderr or result.stdout)}"
            )
