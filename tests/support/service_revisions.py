"""``ecs:DescribeServiceRevisions`` where moto 5.2.5 has none (tests only).

:class:`FakeServiceRevisions` stands in for the ECS client at the deployment hook's gateway
seam (:class:`chalicelib.hook.flow.ServiceRevisions`): it answers the documented
response shape (Amazon ECS API Reference, DescribeServiceRevisions: ``serviceRevisions[]``
with ``containerImages[]`` of ``containerName``, ``image``, ``imageDigest``; ``failures[]``
with ``arn`` and ``reason``) from the revisions a test registers, or raises the error a test
sets, and records every ARN it was asked about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

REVISION_ARN = (
    "arn:aws:ecs:us-west-2:123456789012:service-revision/my-cluster/my-service/9313423515462893900"
)


@dataclass
class FakeServiceRevisions:
    revisions: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    error: str | None = None  # an AWS error code to raise, e.g. "AccessDeniedException"
    asked: list[str] = field(default_factory=list)

    def add(self, arn: str, *, image: str, digest: str, container: str = "site") -> None:
        """A revision whose ``container`` runs ``image`` (ECS resolved it to ``digest``)."""
        self.revisions[arn] = [
            {"containerName": container, "image": image, "imageDigest": digest},
            {
                "containerName": "log-router",
                "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
                "imageDigest": "sha256:" + "f" * 64,
            },
        ]

    def describe_service_revisions(self, *, serviceRevisionArns: list[str]) -> dict[str, Any]:
        self.asked.extend(serviceRevisionArns)
        if self.error:
            raise ClientError(
                {"Error": {"Code": self.error, "Message": "refused"}}, "DescribeServiceRevisions"
            )
        found, failures = [], []
        for arn in serviceRevisionArns:
            if arn in self.revisions:
                found.append(
                    {
                        "serviceRevisionArn": arn,
                        "serviceArn": arn.replace(":service-revision/", ":service/").rsplit("/", 1)[
                            0
                        ],
                        "containerImages": self.revisions[arn],
                    }
                )
            else:
                failures.append({"arn": arn, "reason": "MISSING"})
        return {"serviceRevisions": found, "failures": failures}
