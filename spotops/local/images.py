"""Put an image into the local emulator's ECR the way a push does, without Docker: for
``spotops demo`` and the tests (moto in-process or the server).

moto computes an image's digest from its manifest's layers (a manifest without layers always
gets the digest of the empty string), so each image gets one layer derived from ``seed``:
different seeds, different digests; the same seed, the same image.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient


def image_manifest(seed: str) -> str:
    """A Docker v2 manifest whose single layer (and config) is named after ``seed``."""
    layer = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 100,
                "digest": layer,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 100,
                    "digest": layer,
                }
            ],
        }
    )


def put_image(ecr: ECRClient, repository: str, tag: str | None, seed: str | None = None) -> str:
    """Push an image (tagged, or untagged when ``tag`` is None); return its digest."""
    kwargs: dict[str, Any] = {
        "repositoryName": repository,
        "imageManifest": image_manifest(seed or tag or "untagged"),
    }
    if tag:
        kwargs["imageTag"] = tag
    return str(ecr.put_image(**kwargs)["image"]["imageId"]["imageDigest"])
