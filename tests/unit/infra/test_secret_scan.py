"""infra/secret_scan.py's identifier rules: account ids in configuration, access keys and
webhook URLs anywhere, documented fakes in tests only, the Powertools account in ops.yaml
only. (The detect-secrets half runs in tests/functional/ci/test_secret_scan_tree.py.)"""

from __future__ import annotations

import pytest

from infra.secret_scan import scan_identifiers

# Built from parts, so that this file carries none of what it tests.
FAKE_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
REAL_LOOKING_KEY = "AKIA" + "Z7Q3XK2M5VB8NW4P"
REAL_LOOKING_ACCOUNT = "4096" + "81726354"
POWERTOOLS = "0170" + "00801446"
SLACK = "https://hooks." + "slack.com/services/"


def kinds(path: str, text: str) -> list[str]:
    return [finding.kind for finding in scan_identifiers(path, text)]


@pytest.mark.parametrize(
    "path",
    [
        "infra/cloudformation/site.yaml",
        ".github/workflows/deploy.yml",
        "config/prod.json",
        "ops_lambdas/.chalice/config.json",
        "Makefile",
    ],
)
def test_an_account_id_in_configuration_is_found(path: str) -> None:
    text = f'RoleArn: "arn:aws:iam::{REAL_LOOKING_ACCOUNT}:role/deploy"\n'
    assert kinds(path, text) == ["AWS account id"]
    assert kinds(path, f"image: {REAL_LOOKING_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/x\n")


def test_the_documented_fake_account_is_not_allowed_in_configuration() -> None:
    found = list(scan_identifiers("config/dev.json", '"account": "123456789012"\n'))
    assert [f.kind for f in found] == ["AWS account id"]
    assert "tests only" in found[0].detail


def test_account_ids_outside_configuration_are_not_this_checks_business() -> None:
    assert (
        kinds("tests/unit/test_x.py", f'ARN = "arn:aws:sns:us-east-1:{REAL_LOOKING_ACCOUNT}:t"')
        == []
    )
    assert kinds("runbooks/x.md", "arn:aws:sts::123456789012:assumed-role/r") == []


def test_the_powertools_publisher_is_allowed_in_ops_yaml_only() -> None:
    layer = f"arn:aws:lambda:us-east-1:{POWERTOOLS}:layer:AWSLambdaPowertoolsPythonV3:27"
    assert kinds("infra/cloudformation/ops.yaml", layer) == []
    assert kinds("infra/cloudformation/site.yaml", layer) == ["AWS account id"]


def test_numbers_that_are_not_whole_12_digit_tokens_are_ignored() -> None:
    text = "Threshold: 1234567890123\nVersion: 1.123456789012\nId: a123456789012\nPort: 8080\n"
    assert kinds("infra/cloudformation/site.yaml", text) == []


def test_access_keys_are_found_anywhere_but_the_documented_fake_in_tests() -> None:
    assert kinds("spotops/aws.py", f'KEY = "{REAL_LOOKING_KEY}"') == ["AWS access key id"]
    assert kinds("tests/unit/test_x.py", f'KEY = "{REAL_LOOKING_KEY}"') == ["AWS access key id"]
    assert kinds("tests/unit/test_x.py", f'KEY = "{FAKE_KEY}"') == []
    assert kinds("README.md", f"export AWS_ACCESS_KEY_ID={FAKE_KEY}") == ["AWS access key id"]


def test_webhook_urls_are_found_anywhere_but_slacks_zero_fake_in_tests() -> None:
    real = SLACK + "T8K2M4Q7X/B9Z3N5P6R/" + "x" * 24
    assert kinds("config/dev.json", f'"webhook": "{real}"') == ["webhook URL"]
    assert kinds("tests/unit/test_x.py", f'URL = "{real}"') == ["webhook URL"]
    assert kinds("tests/unit/test_x.py", f'URL = "{SLACK}T000/B000/not-a-real-token"') == []
    teams = "https://contoso.webhook." + "office.com/webhookb2/abc@def/IncomingWebhook/123/456"
    assert kinds("ops_lambdas/app.py", teams) == ["webhook URL"]
    discord = "https://discord." + "com/api/webhooks/123456/abcDEF-123"
    assert kinds("site/website/app.py", discord) == ["webhook URL"]
    # Naming the service is fine: only a URL with a path to post to is a webhook.
    assert kinds("README.md", "paste the https://hooks.slack.com/... URL") == []
