"""Which image a deploy passes as ``ImageUri``.

CloudFormation and the redeploy Lambda must never fight: the Lambda moves the service to
new images outside CloudFormation, so a deploy passes the image the service runs *now*.
Order of preference:

1. the image named on the command line (``--image``);
2. the image of the site container in the task definition the service runs (the one of its
   PRIMARY deployment, so a rollout in progress counts as the newest), unless it is the
   ``<repository>:bootstrap`` placeholder of a deploy without image;
3. when the service does not exist yet (or runs the placeholder), the newest image in the
   ECR repository, as
   ``<repository uri>@<digest>``;
4. ``""``: first deploy, no image yet (the template then runs 0 tasks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from spotops.errors import UsageError, is_error

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecr.type_defs import ImageDetailTypeDef, ImageIdentifierTypeDef
    from mypy_boto3_ecs import ECSClient

SITE_CONTAINER = "site"
# The site template points the task definition at ``<repository>:bootstrap`` while
# ``ImageUri`` is empty: a placeholder, never an image to pass back.
BOOTSTRAP_TAG = "bootstrap"
# Tag names that conventionally move from image to image; never deployed by name.
MUTABLE_TAGS = frozenset({"latest", BOOTSTRAP_TAG, "main", "master", "stable", "edge"})
# A container definition: ECS's typed one, or a template's plain dict.
_Container = TypeVar("_Container", bound=Mapping[str, Any])


# ECR's rules: a tag is up to 128 of these characters; a digest is the algorithm and the hex.
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_reference(image: str, repository_uri: str) -> str | None:
    """``:<tag>`` or ``@<digest>`` of an image in ``repository_uri``, however ``--image``
    named it; ``None`` when it names another repository or nothing an image can be.

    Example
    -------
    >>> image_reference("v1.0.0", "r.example/site")
    ':v1.0.0'
    >>> image_reference("r.example/site@sha256:" + "a" * 64, "r.example/site")[:8]
    '@sha256:'
    >>> image_reference("public.ecr.aws/nginx:1", "r.example/site") is None
    True
    """
    if image.startswith(repository_uri):
        rest = image[len(repository_uri) :]
        return rest if rest[:1] in (":", "@") and len(rest) > 1 else None
    if _DIGEST_RE.match(image.removeprefix("@")):
        return "@" + image.removeprefix("@")
    if _TAG_RE.match(image.removeprefix(":")):
        return ":" + image.removeprefix(":")
    return None


def is_placeholder(image: str) -> bool:
    """True for the ``<repository>:bootstrap`` placeholder of a first deploy."""
    return "@" not in image and image.rsplit("/", 1)[-1].endswith(f":{BOOTSTRAP_TAG}")


@dataclass(frozen=True)
class ImageChoice:
    """The image to deploy and why it was chosen."""

    uri: str
    source: str


@dataclass(frozen=True)
class SiteLocation:
    """Where the site runs, from the site stack's outputs (any of them may be missing)."""

    cluster: str | None = None
    service: str | None = None
    repository_name: str | None = None
    repository_uri: str | None = None

    @classmethod
    def from_outputs(cls, outputs: dict[str, str]) -> SiteLocation:
        return cls(
            cluster=outputs.get("ClusterName"),
            service=outputs.get("ServiceName"),
            repository_name=outputs.get("RepositoryName"),
            repository_uri=outputs.get("RepositoryUri"),
        )


def site_container(containers: Sequence[_Container], port: int | None = None) -> _Container:
    """The site's container: named ``site``, else the one serving ``port``, else the first."""
    for container in containers:
        if container.get("name") == SITE_CONTAINER:
            return container
    if port is not None:
        for container in containers:
            ports = [m.get("containerPort") for m in container.get("portMappings", [])]
            if port in ports:
                return container
    essential = [c for c in containers if c.get("essential", True)]
    return (essential or containers)[0]


def describe_service(ecs: ECSClient, cluster: str, service: str) -> dict[str, Any] | None:
    """The service as ECS describes it, or ``None`` when it or its cluster does not exist."""
    try:
        described = ecs.describe_services(cluster=cluster, services=[service])
    except ClientError as exc:
        if is_error(exc, "ClusterNotFoundException"):
            return None
        raise
    services = [s for s in described.get("services", []) if s.get("status") != "INACTIVE"]
    return dict(services[0]) if services else None


def image_of_service(ecs: ECSClient, service: dict[str, Any]) -> str | None:
    """The site container image of a described service's current task definition.

    The one place spotops answers "which image does the service run": a deploy passes it back
    as ``ImageUri`` and ``spotops status`` shows it. The service's ``taskDefinition`` is its
    PRIMARY deployment's (the newest requested, a circuit-breaker rollback included); the
    deployment list is the fallback.
    """
    primary = [d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"]
    task_definition = service.get("taskDefinition") or (
        primary[0].get("taskDefinition") if primary else None
    )
    if not task_definition:
        return None
    definition = ecs.describe_task_definition(taskDefinition=task_definition)
    containers = definition["taskDefinition"].get("containerDefinitions", [])
    if not containers:
        return None
    image = site_container(containers).get("image")
    return str(image) if image else None


class ImageResolver:
    """Find the image a service runs, or the newest one in a repository."""

    def __init__(self, ecs: ECSClient, ecr: ECRClient) -> None:
        self._ecs = ecs
        self._ecr = ecr

    def running_image(self, cluster: str, service: str) -> str | None:
        """The site container image of the service's current task definition, or ``None``."""
        found = describe_service(self._ecs, cluster, service)
        return image_of_service(self._ecs, found) if found else None

    def newest_image(self, repository_name: str, repository_uri: str) -> str | None:
        """``<uri>@<digest>`` of the most recently pushed image, or ``None``."""
        images: list[ImageDetailTypeDef] = []
        kwargs: dict[str, Any] = {"repositoryName": repository_name}
        try:
            while True:
                page = self._ecr.describe_images(**kwargs)
                images.extend(page.get("imageDetails", []))
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except ClientError as exc:
            if is_error(exc, "RepositoryNotFoundException"):
                return None
            raise
        if not images:
            return None
        newest = max(images, key=lambda i: i.get("imagePushedAt") or 0)
        return f"{repository_uri}@{newest['imageDigest']}"

    def check_explicit(self, image: str, site: SiteLocation | None) -> ImageChoice:
        """The image named with ``--image``, checked and pinned by digest.

        ``image`` is a tag of the stage's repository (a release ``v1.0.0`` or a commit id), a
        digest (``sha256:...``) or the full ``<repository uri>:<tag>`` /
        ``<repository uri>@<digest>``.

        Raises
        ------
        UsageError
            The image is not in the stage's repository (the task execution role pulls from
            nowhere else), is named by a mutable tag such as ``latest`` or by no tag at all,
            or does not exist.
        """
        repository = site.repository_uri if site else None
        if not repository or not site or not site.repository_name:
            raise UsageError(
                f"--image {image}: the site stack does not exist yet, so neither does its "
                "repository. Deploy without --image first, then push (`spotops push`)."
            )
        reference = image_reference(image, repository)
        if reference is None and image.startswith("sha256:"):
            raise UsageError(
                f"--image {image} is not a whole digest: write sha256: and its 64 hex digits "
                "(`spotops status` shows the running image's)."
            )
        if reference is None:
            raise UsageError(
                f"--image {image} is not in this stage's repository {repository}: the site's "
                "task execution role pulls only from there. Name a tag (v1.0.0, a commit id), "
                "a digest (sha256:...) or the full URI in it; push with `spotops push`."
            )
        image_id: ImageIdentifierTypeDef
        if reference.startswith("@"):
            image_id = {"imageDigest": reference[1:]}
        else:
            tag = reference[1:]
            if tag in MUTABLE_TAGS:
                raise UsageError(
                    f"--image {image}: {tag!r} is a mutable tag name, so what it runs could "
                    "change under the service. Name a commit or release tag, or a digest "
                    "(sha256:...)."
                )
            image_id = {"imageTag": tag}
        try:
            found = self._ecr.describe_images(
                repositoryName=site.repository_name, imageIds=[image_id]
            ).get("imageDetails", [])
        except ClientError as exc:
            if not is_error(
                exc,
                "ImageNotFoundException",
                "RepositoryNotFoundException",
                "InvalidParameterException",
            ):
                raise
            found = []
        if not found:
            raise UsageError(
                f"--image {image} does not exist in {site.repository_name}. `spotops status` "
                "shows the image the service runs; `spotops push` pushes a new one."
            )
        pinned = f"{repository}@{found[0]['imageDigest']}"
        return ImageChoice(pinned, f"named with --image {reference}")

    def resolve(self, explicit: str | None, site: SiteLocation | None) -> ImageChoice:
        """Apply the order of preference in this module's docstring."""
        if explicit:
            return self.check_explicit(explicit, site)
        if site and site.cluster and site.service:
            running = self.running_image(site.cluster, site.service)
            if running and not is_placeholder(running):
                return ImageChoice(running, f"running now in {site.service}")
        if site and site.repository_name and site.repository_uri:
            newest = self.newest_image(site.repository_name, site.repository_uri)
            if newest:
                return ImageChoice(newest, f"newest in {site.repository_name}")
        return ImageChoice("", "no image yet: the service starts with 0 tasks")


def image_count(ecr: ECRClient, repository_name: str) -> int:
    """How many images the repository holds (0 when it does not exist)."""
    return len(_image_ids(ecr, repository_name))


def _image_ids(ecr: ECRClient, repository_name: str) -> list[ImageIdentifierTypeDef]:
    ids: list[ImageIdentifierTypeDef] = []
    kwargs: dict[str, Any] = {"repositoryName": repository_name}
    try:
        while True:
            page = ecr.list_images(**kwargs)
            ids.extend({"imageDigest": i["imageDigest"]} for i in page.get("imageIds", []))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except ClientError as exc:
        if is_error(exc, "RepositoryNotFoundException"):
            return []
        raise
    unique = {i["imageDigest"]: i for i in ids}
    return list(unique.values())


def empty_repository(ecr: ECRClient, repository_name: str) -> int:
    """Delete every image of the repository; return how many were deleted."""
    ids = _image_ids(ecr, repository_name)
    for start in range(0, len(ids), 100):
        ecr.batch_delete_image(repositoryName=repository_name, imageIds=ids[start : start + 100])
    return len(ids)
