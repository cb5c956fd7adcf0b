"""The IAM harness can fail: a call outside the principal's one policy is denied.

Each test builds state with the fixture credentials, creates a user holding exactly one policy,
then makes calls as that user inside ``enforced_iam``. The last tests pin what moto 5.2.5 does
not check (conditions, ``iam:PassRole``) so a change in moto shows up here.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.iam import (
    enforced_iam,
    enforced_iam_in_process,
    principal_with_policy,
    use_principal,
)

pytestmark = pytest.mark.emulator

ACCOUNT = "123456789012"
REGION = "us-east-1"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"
KEY = {"pk": {"S": "a"}}


def aws(service: str, credentials: Mapping[str, str] | None = None) -> Any:
    """A client on the endpoint in the environment, as the fixture or as ``credentials``."""
    extra: dict[str, str] = {}
    if credentials is not None:
        extra = {
            "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": credentials.get("AWS_SESSION_TOKEN", ""),
        }
        extra = {name: value for name, value in extra.items() if value}
    return boto3.client(
        service, region_name=REGION, config=Config(retries={"max_attempts": 1}), **extra
    )


def allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    return {"Version": "2012-10-17", "Statement": [statement]}


def principal(name: str, document: Mapping[str, Any], **kwargs: Any) -> dict[str, str]:
    return principal_with_policy(aws("iam"), name, document, **kwargs)


def denied(call: Any, code: str = "AccessDeniedException") -> str:
    """Run ``call``; assert it was refused with ``code``; return the error message."""
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == code, caught.value.response
    return str(caught.value.response["Error"]["Message"])


def create_tables(*names: str) -> None:
    ddb = aws("dynamodb")
    for name in names:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def test_dynamodb_get_item_allowed_on_one_table_only(
    emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_tables("orders", "other")
    creds = principal("reader", allow("dynamodb:GetItem", TABLE_ARN))
    use_principal(monkeypatch, creds)  # the way a handler gets them: from the environment

    with enforced_iam(emulator):
        ddb = aws("dynamodb")
        ddb.get_item(TableName="orders", Key=KEY)
        message = denied(lambda: ddb.put_item(TableName="orders", Item=KEY))
        assert "dynamodb:PutItem" in message
        assert TABLE_ARN in message
        message = denied(lambda: ddb.get_item(TableName="other", Key=KEY))
        assert f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/other" in message
        denied(lambda: ddb.batch_get_item(RequestItems={"orders": {"Keys": [KEY]}}))


def test_dynamodb_batch_needs_every_table(emulator: str) -> None:
    create_tables("orders", "other")
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
    creds = principal("batcher", allow("dynamodb:BatchGetItem", arn + "orders"))

    with enforced_iam(emulator):
        ddb = aws("dynamodb", creds)
        ddb.batch_get_item(RequestItems={"orders": {"Keys": [KEY]}})
        both = {"orders": {"Keys": [KEY]}, "other": {"Keys": [KEY]}}
        denied(lambda: ddb.batch_get_item(RequestItems=both))


def test_ecs_describe_services_allowed_on_one_service_only(emulator: str) -> None:
    ecs = aws("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family="site", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    for name in ("site", "worker"):
        ecs.create_service(cluster="prod", serviceName=name, taskDefinition="site", desiredCount=0)
    service_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/site"
    creds = principal("watcher", allow("ecs:DescribeServices", service_arn))

    with enforced_iam(emulator):
        mine = aws("ecs", creds)
        found = mine.describe_services(cluster="prod", services=["site"])["services"]
        assert [service["serviceArn"] for service in found] == [service_arn]
        cluster_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod"
        mine.describe_services(cluster=cluster_arn, services=[service_arn])  # ARN forms too
        denied(lambda: mine.describe_services(cluster="prod", services=["worker"]))
        denied(lambda: mine.describe_services(cluster="prod", services=["site", "worker"]))
        denied(lambda: mine.update_service(cluster="prod", service="site", desiredCount=1))


def test_ssm_get_parameter_allowed_on_the_kill_switch_only(emulator: str) -> None:
    ssm = aws("ssm")
    ssm.put_parameter(Name="/x/kill-switch", Value="off", Type="String")
    ssm.put_parameter(Name="/x/other", Value="v", Type="String")
    arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/x/kill-switch"
    creds = principal("switch-reader", allow("ssm:GetParameter", arn))

    with enforced_iam(emulator):
        mine = aws("ssm", creds)
        assert mine.get_parameter(Name="/x/kill-switch")["Parameter"]["Value"] == "off"
        denied(lambda: mine.get_parameter(Name="/x/other"))
        denied(lambda: mine.put_parameter(Name="/x/kill-switch", Value="on", Overwrite=True))
        denied(lambda: mine.get_parameters(Names=["/x/kill-switch"]))


def test_sqs_send_message_allowed_on_one_queue_only(emulator: str) -> None:
    sqs = aws("sqs")
    alerts = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    creds = principal("sender", allow("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:alerts"))

    with enforced_iam(emulator):
        mine = aws("sqs", creds)
        mine.send_message(QueueUrl=alerts, MessageBody="hi")
        # SQS is "query compatible": botocore reads the code from x-amzn-query-error.
        denied(lambda: mine.send_message(QueueUrl=other, MessageBody="hi"), "AccessDenied")
        denied(lambda: mine.receive_message(QueueUrl=alerts), "AccessDenied")


def test_secret_suffix_wildcard_matches_exactly_six_characters(emulator: str) -> None:
    secrets = aws("secretsmanager")
    for name in ("app/token", "app/token-extra", "app/tokens"):
        secrets.create_secret(Name=name, SecretString=name)
    pattern = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/token-??????"
    creds = principal("secret-reader", allow("secretsmanager:GetSecretValue", pattern))

    with enforced_iam(emulator):
        mine = aws("secretsmanager", creds)
        assert mine.get_secret_value(SecretId="app/token")["SecretString"] == "app/token"
        denied(lambda: mine.get_secret_value(SecretId="app/token-extra"))
        denied(lambda: mine.get_secret_value(SecretId="app/tokens"))
        denied(lambda: mine.describe_secret(SecretId="app/token"))


def test_patterns_are_iam_wildcards_not_regular_expressions(emulator: str) -> None:
    create_tables("orders")
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
    wildcard = principal("wildcard", allow("DynamoDB:getitem", table + "order?"))
    regex = principal("regex", allow("dynamodb:GetItem", table + "o.*"))

    with enforced_iam(emulator):
        aws("dynamodb", wildcard).get_item(TableName="orders", Key=KEY)
        # Raw moto reads "o.*" as a regular expression and would allow this.
        denied(lambda: aws("dynamodb", regex).get_item(TableName="orders", Key=KEY))


def test_enforcement_is_off_again_after_the_block(emulator: str) -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicyStatement

    def moto_code() -> tuple[object, ...]:
        return (
            ActionAuthenticatorMixin.__dict__["_authenticate_and_authorize_normal_action"],
            IAMPolicyStatement.__dict__["_check_element_matches"],
        )

    before, unpatched = settings.INITIAL_NO_AUTH_ACTION_COUNT, moto_code()
    create_tables("orders")
    creds = principal("nobody", allow("dynamodb:GetItem", TABLE_ARN))
    admin = aws("dynamodb")

    with enforced_iam(emulator):
        denied(admin.list_tables, "UnrecognizedClientException")  # fixture keys are not a user
    assert admin.list_tables()["TableNames"] == ["orders"]

    with pytest.raises(ClientError), enforced_iam(emulator):
        aws("dynamodb", creds).put_item(TableName="orders", Item=KEY)
    assert before == settings.INITIAL_NO_AUTH_ACTION_COUNT
    assert moto_code() == unpatched
    admin.put_item(TableName="orders", Item=KEY)  # off again, even after an error


def test_user_keys_with_a_leftover_session_token_are_rejected(emulator: str) -> None:
    create_tables("orders")
    creds = principal("reader", allow("dynamodb:GetItem", TABLE_ARN))

    with enforced_iam(emulator):
        stale = aws("dynamodb", {**creds, "AWS_SESSION_TOKEN": "testing"})
        denied(lambda: stale.get_item(TableName="orders", Key=KEY), "UnrecognizedClientException")


def test_in_process_moto_is_enforced_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws, settings

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    with mock_aws():
        create_tables("orders", "other")
        creds = principal("reader", allow("dynamodb:GetItem", TABLE_ARN))
        with enforced_iam_in_process():
            ddb = aws("dynamodb", creds)
            ddb.get_item(TableName="orders", Key=KEY)
            denied(lambda: ddb.get_item(TableName="other", Key=KEY))
        aws("dynamodb").put_item(TableName="other", Item=KEY)
    assert before == settings.INITIAL_NO_AUTH_ACTION_COUNT


# --- what moto itself does, pinned ------------------------------------------------------


def test_raw_moto_checks_dynamodb_against_star_only(emulator: str) -> None:
    """Without the patch the allowed table is denied too, with an unparseable error."""
    create_tables("orders")
    creds = principal("reader", allow("dynamodb:GetItem", TABLE_ARN))

    with enforced_iam(emulator, faithful=False):
        denied(lambda: aws("dynamodb", creds).get_item(TableName="orders", Key=KEY), "403")


def test_principal_refuses_what_moto_would_over_grant(emulator: str) -> None:
    conditional = allow(
        "dynamodb:GetItem", "*", Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}
    )
    with pytest.raises(ValueError, match="Condition"):
        principal("conditional", conditional)
    not_resource = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "dynamodb:*", "NotResource": TABLE_ARN}],
    }
    with pytest.raises(ValueError, match="NotResource"):
        principal("not-resource", not_resource)


def test_moto_ignores_conditions_on_allow(emulator: str) -> None:
    ecs = aws("ecs")
    for cluster in ("prod", "dev"):
        ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family="site", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    ecs.create_service(cluster="dev", serviceName="site", taskDefinition="site", desiredCount=0)
    prod = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod"
    only_prod = allow("ecs:UpdateService", "*", Condition={"ArnEquals": {"ecs:cluster": prod}})
    creds = principal("prod-only", only_prod, allow_conditions=True)

    with enforced_iam(emulator):
        # AWS would deny this (the service is in "dev"); moto lets it through.
        aws("ecs", creds).update_service(cluster="dev", service="site", desiredCount=1)


def test_moto_applies_a_conditional_deny_unconditionally(emulator: str) -> None:
    create_tables("orders")
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE_ARN},
            {
                "Effect": "Deny",
                "Action": "dynamodb:GetItem",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},
            },
        ],
    }
    creds = principal("region-fenced", document, allow_conditions=True)

    with enforced_iam(emulator):
        # The call is in us-east-1, so AWS would allow it.
        denied(lambda: aws("dynamodb", creds).get_item(TableName="orders", Key=KEY))


def test_moto_never_checks_pass_role(emulator: str) -> None:
    role_arn = aws("iam").create_role(
        RoleName="task-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ecs:RegisterTaskDefinition", "lambda:CreateFunction"],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": role_arn,
                "Condition": {"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}},
            },
        ],
    }
    creds = principal("deployer", document, allow_conditions=True)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", "def handler(event, context):\n    return None\n")

    with enforced_iam(emulator):
        # AWS would refuse both: the role may only be passed to Step Functions.
        aws("ecs", creds).register_task_definition(
            family="site",
            taskRoleArn=role_arn,
            containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}],
        )
        aws("lambda", creds).create_function(
            FunctionName="fn",
            Runtime="python3.11",
            Role=role_arn,
            Handler="handler.handler",
            Code={"ZipFile": archive.getvalue()},
        )
