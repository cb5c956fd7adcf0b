"""Build the site image: one command line for ``make image`` and ``spotops push``.

Docker when its engine answers ``docker info``, else buildah, which needs no daemon. buildah
runs with ``--storage-driver vfs`` (no overlay mount needed, so it works inside a container
or a VM without the overlay module) and ``--isolation chroot`` (no user namespaces needed),
and writes Docker-format images so the Dockerfile's ``HEALTHCHECK`` survives (OCI images
have no health check).

``python -m spotops.image.build`` (what ``make image`` runs) builds ``site/`` and tags it
``spotops-site:<commit>`` unless told otherwise; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from spotops.commands import CommandRunner, first_line, run_command
from spotops.errors import PushError
from spotops.project import find_project_dir

# Global options of every buildah command that touches images, so build and push agree on
# where images are stored.
BUILDAH = ("buildah", "--storage-driver", "vfs")
PLATFORM = "linux/amd64"  # the site's task definition runs on X86_64 Fargate
DEFAULT_REPOSITORY = "spotops-site"


def build_command(
    engine: str,
    image: str,
    context: Path,
    build_args: Mapping[str, str],
    *,
    platform: str = PLATFORM,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command that builds ``context``'s Dockerfile into ``image`` with ``engine``.

    ``extra`` goes before the context, e.g. buildah's ``--volume`` for a build-time mount.
    """
    args = [f"--build-arg={name}={value}" for name, value in sorted(build_args.items())]
    if engine == "buildah":
        verb = [*BUILDAH, "bud", "--isolation", "chroot", "--format", "docker"]
    elif engine == "docker":
        verb = ["docker", "build"]
    else:
        raise ValueError(f"unknown build engine {engine!r} (docker or buildah)")
    return [
        *verb,
        "--platform",
        platform,
        *args,
        "-f",
        str(context / "Dockerfile"),
        "-t",
        image,
        *extra,
        str(context),
    ]


def push_command(engine: str, image: str) -> list[str]:
    """The command that pushes ``image`` (already tagged with its registry) with ``engine``."""
    if engine == "buildah":
        return [*BUILDAH, "push", image, f"docker://{image}"]
    return ["docker", "push", image]


def size_command(engine: str, image: str) -> list[str]:
    """A command that prints the image's size (bytes for docker, "220 MB" for buildah)."""
    if engine == "buildah":
        return [*BUILDAH, "images", "--format", "{{.Size}}", image]
    return ["docker", "image", "inspect", "--format", "{{.Size}}", image]


def _git(project_dir: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=project_dir, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def commit_tag(project_dir: Path) -> str:
    """``<short commit>``, ``<short commit>-dirty`` with uncommitted changes, ``unknown``
    outside a checkout: the tag ``spotops push`` would give the same tree."""
    commit = _git(project_dir, "rev-parse", "--short=12", "HEAD")
    if not commit:
        return "unknown"
    return f"{commit}-dirty" if _git(project_dir, "status", "--porcelain") else commit


@dataclass(frozen=True)
class BuildEngine:
    """The tool that builds and pushes, and why it was chosen."""

    name: str
    reason: str

    def login(self, registry: str) -> list[str]:
        return [self.name, "login", "--username", "AWS", "--password-stdin", registry]

    def build(self, image: str, context: Path, build_args: dict[str, str]) -> list[str]:
        # One build for `make image`, `make push` and CI.
        return build_command(self.name, image, context, build_args)

    def push(self, image: str) -> list[str]:
        return push_command(self.name, image)


def choose_engine(
    runner: CommandRunner, which: Callable[[str], str | None] = shutil.which
) -> BuildEngine:
    """Docker when its engine answers ``docker info``, else buildah when installed.

    Raises
    ------
    PushError
        Neither is usable; says how to get one.
    """
    if which("docker"):
        info = runner(["docker", "info"])
        if info.returncode == 0:
            return BuildEngine("docker", "the Docker engine answers `docker info`")
        why_not = f"`docker info` failed ({first_line(info.stderr or info.stdout)})"
    else:
        why_not = "docker is not installed"
    if which("buildah"):
        return BuildEngine("buildah", f"{why_not}, and buildah is installed (no daemon needed)")
    raise PushError(
        f"Cannot build the image: {why_not} and buildah is not installed. Start Docker or "
        "install buildah, then run `spotops push` again."
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spotops.image.build",
        description="Build the site image with Docker when its engine answers, else buildah.",
    )
    parser.add_argument(
        "--engine", choices=("auto", "docker", "buildah"), default="auto", help="default: auto"
    )
    parser.add_argument(
        "--tag", default="", help=f"image name (default: {DEFAULT_REPOSITORY}:<commit>)"
    )
    parser.add_argument(
        "--base-image", default="", help="BASE_IMAGE build argument (default: the Dockerfile's)"
    )
    parser.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another build argument (repeatable)",
    )
    parser.add_argument(
        "--ca-bundle",
        type=Path,
        default=None,
        help="buildah only: mount this CA bundle over the build's "
        "/etc/ssl/certs/ca-certificates.crt while it runs (a TLS-inspecting proxy between "
        "the build and PyPI); the image does not keep it",
    )
    parser.add_argument("--platform", default=PLATFORM, help=f"default: {PLATFORM}")
    parser.add_argument("--context", type=Path, default=None, help="default: <project>/site")
    parser.add_argument(
        "--project-dir", type=Path, default=None, help="default: found from the current directory"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    run: Callable[[list[str]], int] = lambda cmd: subprocess.call(cmd, stdout=sys.stderr),
    ask: Callable[[list[str]], str] | None = None,
) -> int:
    """Build the image; 0 when built, 1 when the build failed, 2 when it cannot start.

    ``run`` runs the build (its output goes to stderr: stdout carries only the image name);
    ``ask`` runs a query and returns its output (the image size).
    """
    options = _parser().parse_args(argv)
    project_dir = options.project_dir or find_project_dir()
    context = options.context or project_dir / "site"
    if options.engine == "auto":
        try:
            engine = choose_engine(run_command)
        except PushError as exc:
            print(exc, file=sys.stderr)
            return 2
    else:
        engine = BuildEngine(options.engine, "asked for with --engine")
    tag = commit_tag(project_dir)
    image = options.tag or f"{DEFAULT_REPOSITORY}:{tag}"
    build_args = {"GIT_COMMIT": tag.removesuffix("-dirty"), "IMAGE_TAG": tag}
    if options.base_image:
        build_args["BASE_IMAGE"] = options.base_image
    for item in options.build_arg:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"--build-arg {item!r} is not NAME=VALUE", file=sys.stderr)
            return 2
        build_args[name] = value
    extra: list[str] = []
    if options.ca_bundle is not None:
        if engine.name != "buildah":
            print(
                "--ca-bundle works with buildah only (docker build has no mounts)", file=sys.stderr
            )
            return 2
        mount = f"{options.ca_bundle.resolve()}:/etc/ssl/certs/ca-certificates.crt:ro"
        extra = ["--volume", mount]
    command = build_command(
        engine.name, image, context, build_args, platform=options.platform, extra=extra
    )
    print(f"Building {image} with {engine.name}: {engine.reason}.", file=sys.stderr)
    print("+ " + shlex.join(command), file=sys.stderr)
    started = time.monotonic()
    code = run(command)
    took = time.monotonic() - started
    if code != 0:
        print(f"Image build failed (exit {code}) after {took:.0f} s.", file=sys.stderr)
        return 1
    size = (ask or (lambda cmd: run_command(cmd).stdout))(size_command(engine.name, image)).strip()
    shown = f", {int(size) / 1e6:.0f} MB" if size.isdigit() else f", {size}" if size else ""
    print(f"Built {image} in {took:.0f} s{shown}.", file=sys.stderr)
    print(image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
