"""doctor checks the layer a deploy would use: the ARN it builds must be the one ops.yaml
builds, or doctor would prove a layer the functions never load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spotops.proof.doctor_facts import public_layer_arn

OPS_TEMPLATE = Path(__file__).resolve().parents[4] / "infra" / "cloudformation" / "ops.yaml"


@pytest.mark.parametrize(
    ("partition", "region", "version"),
    [("aws", "eu-west-1", "27"), ("aws-cn", "cn-north-1", "3")],
)
def test_the_layer_arn_is_the_one_the_ops_template_builds(
    partition: str, region: str, version: str
) -> None:
    (template,) = re.findall(
        r'!Sub "(arn:\$\{AWS::Partition\}:lambda:[^"]+)"', OPS_TEMPLATE.read_text()
    )
    built = (
        template.replace("${AWS::Partition}", partition)
        .replace("${AWS::Region}", region)
        .replace("${PowertoolsLayerVersion}", version)
    )
    assert public_layer_arn(partition, region, version) == built
