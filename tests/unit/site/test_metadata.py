"""Task facts come from the documented ECS task metadata v4 ``/task`` document."""

from __future__ import annotations

import pytest

from tests.support.events import load_event
from website.metadata import MetadataError, TaskInfo


def test_reads_task_id_zone_and_launch_type_from_the_fargate_document() -> None:
    document = load_event("ecsTaskMetadataV4Fargate")

    info = TaskInfo.from_task_metadata(document)

    assert info == TaskInfo(
        task_id="8f03e41243824aea923aca126495f665",
        availability_zone="us-east-1b",
        launch_type="FARGATE",
        cluster="spotops-dev",
        family="spotops-dev-site",
        revision="7",
    )


def test_reads_the_old_task_arn_format() -> None:
    document = {"TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/9781c248-0edd-4cdb"}

    info = TaskInfo.from_task_metadata(document)

    assert info.task_id == "9781c248-0edd-4cdb"
    assert info.availability_zone == info.launch_type == ""


@pytest.mark.parametrize("arn", [None, 42, "arn:aws:ecs:us-east-1:123456789012:cluster/x"])
def test_error_if_the_document_has_no_task_arn(arn: object) -> None:
    with pytest.raises(MetadataError, match="TaskARN"):
        TaskInfo.from_task_metadata({"TaskARN": arn})
