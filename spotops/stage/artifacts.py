"""The artifact bucket: where templates too large to send inline and the ops toolkit's
packages wait for CloudFormation and Lambda.

One bucket per app, account and region, made by the small bootstrap stack
(``infra/cloudformation/bootstrap.yaml``, ``<app>-bootstrap``) that the first
``spotops deploy`` in a region creates: it exists before every stack that needs it (the site
stack's template is over the inline limit, so its bucket cannot be one of its own resources),
as ``cdk bootstrap``'s and SAM's managed bucket do. Keys are
``<app>/<stage>/templates/<part>-<sha256>.<ext>`` and ``<app>/<stage>/ops/<sha256>.zip``:
content-addressed, so an unchanged template or package is never uploaded twice and a stage's
objects can be deleted with the stage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from spotops.errors import is_error

BOOTSTRAP_TEMPLATE = Path("infra") / "cloudformation" / "bootstrap.yaml"
BUCKET_OUTPUT = "ArtifactBucketName"
VERSION_OUTPUT = "BootstrapVersion"


def bootstrap_stack_name(app: str) -> str:
    """``<app>-bootstrap``: one per app, account and region, shared by every stage."""
    return f"{app}-bootstrap"


def template_version(template: dict[str, Any]) -> int:
    """The ``BootstrapVersion`` output's value in the bootstrap template."""
    output = (template.get("Outputs") or {}).get(VERSION_OUTPUT) or {}
    return int(str(output.get("Value", "0")))


def deployed_version(outputs: dict[str, str]) -> int:
    """The version a deployed bootstrap stack reports (0 when it reports none)."""
    try:
        return int(outputs.get(VERSION_OUTPUT, "0"))
    except ValueError:
        return 0


@dataclass(frozen=True)
class ArtifactStore:
    """The bucket of a deployed bootstrap stack.

    Parameters
    ----------
    s3:
        A boto3 S3 client of the account and region.
    bucket:
        The bootstrap stack's ``ArtifactBucketName``.
    region:
        The bucket's region, for the virtual-hosted URL CloudFormation reads templates by.
    """

    s3: Any
    bucket: str
    region: str

    def url(self, key: str) -> str:
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{key}"

    def put(self, key: str, content: bytes) -> bool:
        """Upload ``content`` unless the key is already there; ``True`` when uploaded."""
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return False  # the key is the content's hash: the same bytes are there
        except ClientError as exc:
            if not is_error(exc, "404", "NoSuchKey", "NotFound"):
                raise
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=content)
        return True

    def put_template(self, app: str, stage: str, part: str, body: str) -> str:
        """Upload a template for CloudFormation to read; return its ``TemplateURL``."""
        data = body.encode("utf-8")
        extension = "json" if body.lstrip().startswith("{") else "yaml"
        key = f"{app}/{stage}/templates/{part}-{hashlib.sha256(data).hexdigest()}.{extension}"
        self.put(key, data)
        return self.url(key)

    def delete_stage(self, app: str, stage: str) -> int:
        """Delete every version of the stage's objects; return how many were deleted."""
        prefix = f"{app}/{stage}/"
        deleted = 0
        try:
            pages = self.s3.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys = [
                    {"Key": item["Key"], "VersionId": item["VersionId"]}
                    for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                ]
                for start in range(0, len(keys), 1000):  # DeleteObjects' limit per call
                    batch = keys[start : start + 1000]
                    self.s3.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                    )
                    deleted += len(batch)
        except ClientError as exc:
            if is_error(exc, "NoSuchBucket"):
                return deleted
            raise
        return deleted
