"""What ships: the ops toolkit's Lambda zip (its size, and how much of it is our code) and,
when one has been built here (``make image``), the site image.

The zip is built offline exactly as ``spotops deploy`` builds it (``chalice package`` for a
bench stage, then the SAM translation). Our code (``app.py`` and ``chalicelib/``) is held to
256 KiB packed. The image is looked up, never built: building it takes minutes and belongs
to ``make image``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from collections import defaultdict
from pathlib import Path

from benchmarks import ops_package
from benchmarks.report import Options, PartResult

OURS = ("app.py", "chalicelib")
GOAL_OURS_BYTES = 256 * 1024
IMAGE_REPOSITORY = "spotops-site"


def zip_parts(zip_path: Path) -> dict[str, tuple[int, int]]:
    """Packed and unpacked bytes per top-level part of the zip (a package, our code)."""
    parts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            top = info.filename.split("/", 1)[0]
            key = top if top in OURS else re.split(r"[.-]\d", top, maxsplit=1)[0]
            parts[key][0] += info.compress_size
            parts[key][1] += info.file_size
    return {name: (packed, unpacked) for name, (packed, unpacked) in parts.items()}


def site_image() -> tuple[str, int] | None:
    """The newest local ``spotops-site`` image and its size in bytes, if one was built."""
    if shutil.which("docker") and _ok(["docker", "info"]):
        listed = _out(["docker", "image", "ls", IMAGE_REPOSITORY, "--format", "{{.Tag}}\t{{.ID}}"])
        for line in listed.splitlines():
            tag, image_id = line.split("\t")
            size = _out(["docker", "image", "inspect", "--format", "{{.Size}}", image_id])
            return f"{IMAGE_REPOSITORY}:{tag}", int(size)
    if shutil.which("buildah"):
        listed = _out(["buildah", "--storage-driver", "vfs", "images", "--json"])
        images = json.loads(listed or "[]")
        ours = [
            image
            for image in images
            if any(
                name.split(":")[0].endswith(f"/{IMAGE_REPOSITORY}") for name in image["names"] or []
            )
        ]
        if ours:
            newest = max(ours, key=lambda image: image.get("createdatraw", ""))
            return newest["names"][0], int(newest.get("size", 0))
    return None


def _ok(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _out(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def run(options: Options) -> PartResult:
    result = PartResult("package")
    package = ops_package.build(options.work_dir)
    total = package.zip_path.stat().st_size
    parts = zip_parts(package.zip_path)
    ours = sum(parts.get(name, (0, 0))[0] for name in OURS)
    verdict = "within" if ours <= GOAL_OURS_BYTES else "OVER"
    result.rows += [
        ("Lambda zip (deployment.zip)", f"{total / 1024:.1f} KiB"),
        ("  of which our code, packed", f"{ours / 1024:.1f} KiB: {verdict} the 256 KiB goal"),
    ]
    for name, (packed, unpacked) in sorted(parts.items(), key=lambda item: -item[1][0])[:6]:
        result.rows.append(
            (f"  {name}", f"{packed / 1024:.1f} KiB packed, {unpacked / 1024:.1f} KiB unpacked")
        )
    if ours > GOAL_OURS_BYTES:
        result.goals_missed.append(f"our code is {ours / 1024:.0f} KiB packed (goal 256 KiB)")
    image = site_image()
    if image is None:
        result.rows.append(("site image", "not built here (make image builds it)"))
    else:
        name, size = image
        result.rows.append(("site image", f"{size / 1e6:.1f} MB ({name})"))
    result.notes.append(f"the zip is built offline in {package.build_seconds:.1f} s")
    result.data = {
        "lambda_zip_bytes": total,
        "our_code_packed_bytes": ours,
        "parts": {name: {"packed": p, "unpacked": u} for name, (p, u) in parts.items()},
        "site_image": None if image is None else {"name": image[0], "bytes": image[1]},
    }
    return result
