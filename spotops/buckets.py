"""Emptying the artifact bucket, which CloudFormation cannot delete while it holds objects."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from spotops.errors import is_error


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker of a (versioned) bucket.

    Returns
    -------
    int
        How many versions and markers were deleted; 0 when the bucket is already gone.
    """
    deleted = 0
    try:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            keys = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            for start in range(0, len(keys), 1000):  # DeleteObjects' limit per call
                batch = keys[start : start + 1000]
                s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                deleted += len(batch)
    except ClientError as exc:
        if is_error(exc, "NoSuchBucket"):
            return deleted
        raise
    return deleted
