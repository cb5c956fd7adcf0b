"""Failure messages of ``spotops deploy`` against the moto server."""

from __future__ import annotations

import pytest
from moto.cloudformation.models import Event, cloudformation_backends

pytestmark = pytest.mark.emulator

NETWORK = "spotops-dev-network"


def _break_network_stack() -> None:
    """Put the network stack in ROLLBACK_COMPLETE with a failed subnet, as a failed create."""
    backend = cloudformation_backends["123456789012"]["us-east-1"]
    stack = next(s for s in backend.stacks.values() if s.name == NETWORK)
    for status, reason in (
        ("CREATE_FAILED", "The CIDR '10.0.0.0/20' conflicts with another subnet"),
        ("ROLLBACK_COMPLETE", None),
    ):
        stack.events.append(
            Event(
                stack_id=stack.stack_id,
                stack_name=stack.name,
                logical_resource_id="PublicSubnet" if reason else stack.name,
                physical_resource_id="",
                resource_type="AWS::EC2::Subnet" if reason else "AWS::CloudFormation::Stack",
                resource_status=status,
                resource_status_reason=reason,
                resource_properties=None,
            )
        )
    stack.status = "ROLLBACK_COMPLETE"


def test_error_if_a_stack_is_stuck_in_rollback_complete(spotops, aws):
    assert spotops("deploy", "--yes").exit_code == 0
    _break_network_stack()

    result = spotops("deploy", "--yes")

    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert f"Stack {NETWORK} is in ROLLBACK_COMPLETE" in message
    assert "PublicSubnet (AWS::EC2::Subnet): The CIDR '10.0.0.0/20' conflicts" in message
    assert "spotops destroy" in message
    assert "Traceback" not in result.output


def test_destroy_removes_a_stack_stuck_in_rollback_complete(spotops, aws):
    assert spotops("deploy", "--yes").exit_code == 0
    _break_network_stack()

    assert spotops("destroy", "--yes").exit_code == 0

    stacks = aws("cloudformation").describe_stacks()["Stacks"]
    assert [s["StackName"] for s in stacks] == ["spotops-bootstrap"]  # the app's, kept


def test_error_if_the_template_refuses_a_parameter(spotops, aws):
    result = spotops("deploy", "--yes", "--param", "NatMode=sometimes")

    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "NatMode must be one of none, single, per-az, not 'sometimes'" in message
    assert "--param Key=Value" in message
    assert aws("cloudformation").describe_stacks()["Stacks"] == []


def test_error_if_no_template_declares_a_parameter(spotops, aws):
    result = spotops("deploy", "--yes", "--param", "NatMod=single")

    assert result.exit_code == 2
    assert "No template declares NatMod" in result.stderr
    assert aws("cloudformation").describe_stacks()["Stacks"] == []


def test_error_without_credentials(spotops, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no metadata lookup off loopback

    result = spotops("status")

    assert result.exit_code == 1
    assert "No AWS credentials found" in result.stderr
