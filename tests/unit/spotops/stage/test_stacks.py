"""Change set review, execution and failure messages of :class:`StackDeployer`."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from spotops.errors import ChangeSetError, DeployError, ParameterError, StackStateError
from spotops.stage.stacks import StackDeployer

NAME = "spotops-dev-site"


def _deployer(cfn):
    return StackDeployer(cfn, poll_seconds=0, sleep=lambda _: None)


def _prepare(cfn):
    return _deployer(cfn).prepare(
        NAME, "Resources: {}", {"AppName": "spotops"}, {"spotops:app": "spotops"}
    )


def _change(action, logical, replacement=None):
    raw = {"Action": action, "LogicalResourceId": logical, "ResourceType": "AWS::ECS::Service"}
    if replacement:
        raw["Replacement"] = replacement
    return {"Type": "Resource", "ResourceChange": raw}


def test_a_new_stack_gets_a_create_change_set_with_tags_and_capabilities(fake_cfn):
    review = _prepare(fake_cfn)

    assert review.change_set_type == "CREATE"
    assert fake_cfn.last_create["ChangeSetType"] == "CREATE"
    assert fake_cfn.last_create["Tags"] == [{"Key": "spotops:app", "Value": "spotops"}]
    assert "CAPABILITY_NAMED_IAM" in fake_cfn.last_create["Capabilities"]


def test_an_existing_stack_gets_an_update_change_set(fake_cfn):
    fake_cfn.add_stack(NAME, "UPDATE_COMPLETE")

    assert _prepare(fake_cfn).change_set_type == "UPDATE"


def test_a_stack_left_in_review_is_created_again(fake_cfn):
    fake_cfn.add_stack(NAME, "REVIEW_IN_PROGRESS")

    assert _prepare(fake_cfn).change_set_type == "CREATE"


def test_no_changes_is_up_to_date_and_the_empty_change_set_is_deleted(fake_cfn):
    fake_cfn.add_stack(NAME, "UPDATE_COMPLETE")
    fake_cfn.change_set = {
        "Status": "FAILED",
        "StatusReason": (
            "The submitted information didn't contain changes. "
            "Submit different information to create a change set."
        ),
    }

    review = _prepare(fake_cfn)

    assert review.up_to_date
    assert fake_cfn.deleted_change_sets == ["arn:change-set/1"]


def test_a_refusal_is_read_by_its_code_not_its_words(fake_cfn):
    fake_cfn.add_stack(NAME, "UPDATE_COMPLETE")
    fake_cfn.create_error = ClientError(
        {"Error": {"Code": "ValidationError", "Message": "Template format error: reworded"}},
        "CreateChangeSet",
    )

    with pytest.raises(ParameterError, match="Template format error: reworded") as caught:
        _prepare(fake_cfn)
    assert caught.value.exit_code == 2


def test_a_missing_stack_is_none_whatever_the_message_says(fake_cfn):
    fake_cfn.stacks.clear()

    assert _deployer(fake_cfn).describe("spotops-dev-elsewhere") is None


def test_error_if_the_change_set_fails_gives_cloudformations_reason(fake_cfn):
    fake_cfn.add_stack(NAME, "UPDATE_COMPLETE")
    fake_cfn.change_set = {
        "Status": "FAILED",
        "StatusReason": "Template error: instance of Fn::GetAtt references undefined resource Nope",
    }

    with pytest.raises(ChangeSetError, match="undefined resource Nope"):
        _prepare(fake_cfn)
    assert fake_cfn.deleted_change_sets == ["arn:change-set/1"]


def test_error_if_cloudformation_refuses_a_parameter(fake_cfn):
    fake_cfn.create_error = ClientError(
        {
            "Error": {
                "Code": "ValidationError",
                "Message": "Parameter 'NatMode' must be one of AllowedValues",
            }
        },
        "CreateChangeSet",
    )

    with pytest.raises(ParameterError, match="NatMode' must be one of AllowedValues") as caught:
        _prepare(fake_cfn)
    assert caught.value.exit_code == 2


def test_error_if_the_stack_is_in_rollback_complete_names_the_first_failure(fake_cfn):
    fake_cfn.add_stack(NAME, "ROLLBACK_COMPLETE")
    fake_cfn.add_event(NAME, "Repository", "CREATE_FAILED", "Resource creation cancelled")
    fake_cfn.add_event(NAME, "Service", "CREATE_FAILED", "later failure")

    with pytest.raises(StackStateError) as caught:
        _prepare(fake_cfn)

    message = str(caught.value)
    assert "ROLLBACK_COMPLETE" in message
    assert "spotops destroy" in message
    assert "Repository (AWS::EC2::Subnet): Resource creation cancelled" in message
    assert not hasattr(fake_cfn, "last_create")


def test_error_if_an_operation_is_in_progress(fake_cfn):
    fake_cfn.add_stack(NAME, "UPDATE_IN_PROGRESS")

    with pytest.raises(StackStateError, match="busy"):
        _prepare(fake_cfn)


def test_replacements_and_removals_need_confirmation(fake_cfn):
    fake_cfn.add_stack(NAME, "UPDATE_COMPLETE")
    fake_cfn.change_set = {
        "Status": "CREATE_COMPLETE",
        "Changes": [_change("Modify", "Service", "False")],
    }
    assert not _prepare(fake_cfn).needs_confirmation

    for change in (
        _change("Modify", "Service", "True"),
        _change("Modify", "Service", "Conditional"),
        _change("Remove", "Old"),
    ):
        fake_cfn.change_set = {"Status": "CREATE_COMPLETE", "Changes": [change]}
        assert _prepare(fake_cfn).needs_confirmation


def test_execute_streams_new_events_in_order(fake_cfn):
    fake_cfn.add_stack(NAME, "UPDATE_COMPLETE")
    fake_cfn.add_event(NAME, "Old", "UPDATE_COMPLETE")
    fake_cfn.execute_events = [
        {"logical": NAME, "status": "UPDATE_IN_PROGRESS", "rtype": "AWS::CloudFormation::Stack"},
        {"logical": "Service", "status": "UPDATE_COMPLETE"},
    ]
    review = _prepare(fake_cfn)

    events = list(_deployer(fake_cfn).execute(review, "Resources: {}", {}, {}))

    assert [(e.logical_id, e.status) for e in events] == [
        (NAME, "UPDATE_IN_PROGRESS"),
        ("Service", "UPDATE_COMPLETE"),
    ]
    assert fake_cfn.executed == [NAME]


def test_error_if_execution_fails_names_the_first_failing_resource(fake_cfn):
    fake_cfn.add_stack(NAME, "UPDATE_COMPLETE")
    fake_cfn.add_event(NAME, "Earlier", "UPDATE_FAILED", "an older failure")
    fake_cfn.after_execute = "UPDATE_ROLLBACK_COMPLETE"
    fake_cfn.execute_events = [
        {"logical": "TaskDefinition", "status": "UPDATE_FAILED", "reason": "Invalid memory 100"},
        {"logical": "Service", "status": "UPDATE_FAILED", "reason": "Resource update cancelled"},
    ]
    review = _prepare(fake_cfn)

    with pytest.raises(DeployError) as caught:
        list(_deployer(fake_cfn).execute(review, "Resources: {}", {}, {}))

    message = str(caught.value)
    assert "ended in UPDATE_ROLLBACK_COMPLETE" in message
    assert "TaskDefinition (AWS::EC2::Subnet): Invalid memory 100" in message
    assert "older failure" not in message


def test_on_the_emulator_a_reviewed_create_runs_as_create_stack(fake_cfn):
    calls = []
    fake_cfn.create_stack = lambda **kw: (
        calls.append(kw),
        fake_cfn.add_stack(NAME, "CREATE_COMPLETE"),
    )
    deployer = StackDeployer(fake_cfn, poll_seconds=0, direct_execute=True, sleep=lambda _: None)
    review = deployer.prepare(NAME, "Resources: {}", {"AppName": "spotops"}, {})

    list(deployer.execute(review, "Resources: {}", {"AppName": "spotops"}, {"k": "v"}))

    assert fake_cfn.deleted_change_sets == ["arn:change-set/1"]
    assert calls[0]["Parameters"] == [{"ParameterKey": "AppName", "ParameterValue": "spotops"}]
    assert calls[0]["Tags"] == [{"Key": "k", "Value": "v"}]
    assert fake_cfn.executed == []


def test_status_reads_target_health_in_both_groups_of_a_traffic_shifting_service():
    from spotops.reports.status import StatusReader

    class Elbv2:
        def describe_target_health(self, TargetGroupArn: str) -> dict:
            address = {"tg-blue": "10.0.0.1", "tg-green": "10.0.0.2"}[TargetGroupArn]
            return {
                "TargetHealthDescriptions": [
                    {"Target": {"Id": address}, "TargetHealth": {"State": "healthy"}}
                ]
            }

    reader = StatusReader(None, lambda service: Elbv2())  # type: ignore[arg-type]
    service = {
        "loadBalancers": [
            {
                "targetGroupArn": "tg-blue",
                "advancedConfiguration": {"alternateTargetGroupArn": "tg-green"},
            }
        ]
    }
    assert reader._target_health(service) == {"10.0.0.1": "healthy", "10.0.0.2": "healthy"}
    assert reader._target_health({"loadBalancers": [{"targetGroupArn": "tg-blue"}]}) == {
        "10.0.0.1": "healthy"
    }
