"""verify's rows, decided from facts: each broken flow fails with its advice and runbook, and a
stand-in's answer says emulator, never ok."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from spotops.proof.rows import ProofReport, State
from spotops.proof.verify import (
    RUNBOOKS,
    decide_alarm_topic,
    decide_functions,
    decide_hook,
    decide_rules,
    decide_site,
    decide_slack,
    events_may_invoke,
    image_matches,
    marked,
    new_verification_id,
)
from spotops.proof.verify_facts import (
    AlarmFacts,
    AlarmTopicFacts,
    HookFacts,
    InvocationFacts,
    RuleFacts,
    SiteFacts,
    SlackFacts,
    SubscriptionFacts,
    logged_in_output,
    parse_policy_document,
)

ROOT = Path(__file__).resolve().parents[4]
FN = "arn:aws:lambda:us-east-1:123456789012:function:spotops-dev-chaos_tick"
RULE = "arn:aws:events:us-east-1:123456789012:rule/spotops-dev-ops-ChaosTick-ABC"
TOPIC = "arn:aws:sns:us-east-1:123456789012:spotops-dev-alarms"
ALARM_FN = "arn:aws:lambda:us-east-1:123456789012:function:spotops-dev-alarm_action"


def events_statement(**overrides: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": FN,
        "Condition": {"ArnLike": {"AWS:SourceArn": RULE}},
    }
    statement.update(overrides)
    return statement


def rule(**overrides: Any) -> RuleFacts:
    facts = RuleFacts(
        logical_id="ChaosTickChaosTickEvent",
        name="spotops-dev-ops-ChaosTick-ABC",
        function="spotops-dev-chaos_tick",
        function_arn=FN,
        exists=True,
        state="ENABLED",
        arn=RULE,
        schedule=True,
        targets=(FN,),
        policy={"Version": "2012-10-17", "Statement": [events_statement()]},
    )
    return replace(facts, **overrides)


def test_every_runbook_a_row_names_exists() -> None:
    for path in RUNBOOKS.values():
        assert (ROOT / path).is_file(), path


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        (events_statement(), True),
        (events_statement(Condition={}), True),  # no source limit: any rule may invoke
        (events_statement(Condition={"ArnLike": {"AWS:SourceArn": RULE[:-3] + "*"}}), True),
        (events_statement(Condition={"ArnLike": {"AWS:SourceArn": RULE + "-other"}}), False),
        (events_statement(Effect="Deny"), False),
        (events_statement(Principal={"Service": "sns.amazonaws.com"}), False),
        (events_statement(Action="lambda:GetFunction"), False),
        (events_statement(Action=["lambda:*"]), True),
        (events_statement(Resource=FN.replace("chaos_tick", "alarm_action")), False),
    ],
)
def test_events_may_invoke_reads_principal_action_resource_and_source(
    statement: dict[str, Any], allowed: bool
) -> None:
    policy = {"Statement": [statement]}
    assert events_may_invoke(policy, function_arn=FN, rule_arn=RULE) is allowed


def test_no_resource_policy_lets_nothing_invoke() -> None:
    assert events_may_invoke(None, function_arn=FN, rule_arn=RULE) is False


def test_rules_that_reach_their_functions_pass() -> None:
    row = decide_rules([rule(), rule(schedule=False, name="r2", arn=RULE)], stage="dev")
    assert row.state is State.OK
    assert "1 rules and 1 schedules" in row.detail


@pytest.mark.parametrize(
    ("broken", "seen", "advice"),
    [
        ({"state": "DISABLED"}, "is DISABLED", "aws events enable-rule --name spotops-dev-ops"),
        ({"policy": {"Statement": []}}, "resource policy does not let", "add-permission"),
        ({"policy": None}, "resource policy does not let", "spotops deploy --stage dev"),
        ({"exists": False}, "is missing", "spotops deploy --stage dev"),
        ({"targets": ()}, "does not target spotops-dev-chaos_tick", "spotops deploy"),
    ],
)
def test_a_broken_rule_fails_naming_it_with_the_fix(
    broken: dict[str, Any], seen: str, advice: str
) -> None:
    row = decide_rules([rule(), rule(**broken)], stage="dev")
    assert row.state is State.FAIL
    assert seen in row.detail
    assert advice in row.advice
    assert row.runbook == "runbooks/ops-dead-letters.md"


def test_an_ops_stack_without_rules_fails() -> None:
    assert decide_rules([], stage="dev").state is State.FAIL


def topic(**overrides: Any) -> AlarmTopicFacts:
    facts = AlarmTopicFacts(
        topic_arn=TOPIC,
        function_arn=ALARM_FN,
        subscription=SubscriptionFacts(f"{TOPIC}:1", pending=False),
        alarms=(AlarmFacts("spotops-dev-cpu-high", True, (TOPIC,)),),
        expected_alarms=("spotops-dev-cpu-high",),
    )
    return replace(facts, **overrides)


def test_a_confirmed_subscription_and_routed_alarms_pass_on_an_account() -> None:
    row = decide_alarm_topic(topic(), proves_account=True)
    assert row.state is State.OK


@pytest.mark.parametrize("proves_account", [True, False])
def test_a_pending_subscription_fails_on_any_target(proves_account: bool) -> None:
    row = decide_alarm_topic(
        topic(subscription=SubscriptionFacts("PendingConfirmation", pending=True)),
        proves_account=proves_account,
    )
    assert row.state is State.FAIL
    assert "pending confirmation" in row.detail
    assert "Delete the pending subscription" in row.advice
    assert row.runbook == RUNBOOKS["alarm-topic"]


@pytest.mark.parametrize(
    ("broken", "seen", "advice"),
    [
        (
            {"alarms": (AlarmFacts("spotops-dev-cpu-high", True, ("arn:aws:sns:x:1:other",)),)},
            "not " + TOPIC,
            "spotops deploy",
        ),
        (
            {"alarms": (AlarmFacts("spotops-dev-cpu-high", False, (TOPIC,)),)},
            "actions disabled",
            "enable-alarm-actions --alarm-names spotops-dev-cpu-high",
        ),
        ({"alarms": ()}, "gone: spotops-dev-cpu-high", "spotops deploy"),
        ({"subscription": None}, "not subscribed", "spotops deploy"),
    ],
)
def test_a_broken_alarm_route_fails_on_an_account(
    broken: dict[str, Any], seen: str, advice: str
) -> None:
    row = decide_alarm_topic(topic(**broken), proves_account=True)
    assert row.state is State.FAIL
    assert seen in row.detail
    assert advice in row.advice


def test_on_the_emulator_a_dropped_subscription_says_emulator() -> None:
    row = decide_alarm_topic(
        topic(subscription=None, alarms=(), expected_alarms=()), proves_account=False
    )
    assert row.state is State.EMULATOR
    assert "AWS::SNS::Subscription" in row.detail


def test_on_the_emulator_a_confirmed_subscription_is_still_only_the_emulator_s_word() -> None:
    assert decide_alarm_topic(topic(), proves_account=False).state is State.EMULATOR


VID = "verify-0123456789abcdef"


def answered(function: str, **answer: Any) -> InvocationFacts:
    return InvocationFacts(
        function, {"status": "skipped", "verification": VID, "dry_run": True, **answer}, logged=True
    )


def test_functions_that_answer_dry_and_log_pass_on_an_account_and_say_emulator_here() -> None:
    runs = [answered("alarm_action"), answered("chaos_tick")]
    on_aws = decide_functions(runs, VID, stand_in=False, log_place="its log group")
    here = decide_functions(runs, VID, stand_in=True, log_place="its output")
    assert on_aws.state is State.OK
    assert here.state is State.EMULATOR
    assert "cannot invoke Lambda" in here.detail


@pytest.mark.parametrize(
    ("run", "seen", "advice"),
    [
        (InvocationFacts("chaos_tick", None, error="Unhandled: boom"), "boom", "spotops logs"),
        (answered("chaos_tick", verification=None), "without the verification marker", "deploy"),
        (answered("chaos_tick", verification="verify-other"), "without the verification", "deploy"),
        (answered("chaos_tick", dry_run=False), "without forcing dry run", "kill-switch on"),
        (replace(answered("chaos_tick"), logged=False), "not in its log group", "logs:Put"),
    ],
)
def test_a_function_that_fails_its_verification_names_itself(
    run: InvocationFacts, seen: str, advice: str
) -> None:
    row = decide_functions(
        [answered("alarm_action"), run], VID, stand_in=False, log_place="its log group"
    )
    assert row.state is State.FAIL
    assert row.detail.startswith("chaos_tick")
    assert seen in row.detail
    assert advice in row.advice
    assert row.runbook == RUNBOOKS["functions"]


def test_the_marker_follows_the_contract() -> None:
    vid = new_verification_id()
    assert re.fullmatch(r"[A-Za-z0-9-]{1,64}", vid)
    assert new_verification_id() != vid
    event = {"version": "0", "detail": {}}
    assert marked(event, vid) == {"version": "0", "detail": {}, "spotopsVerification": vid}
    assert event == {"version": "0", "detail": {}}


def test_a_local_run_s_output_is_searched_for_the_marked_json_line() -> None:
    output = "START\n" + json.dumps({"level": "INFO", "verification": VID}) + '\n{"result":{}}\n'
    assert logged_in_output(output, VID) is True
    assert logged_in_output('{"verification":"verify-other"}\nnot json {\n', VID) is False


HOOK_ARN = "arn:aws:lambda:us-east-1:123456789012:function:spotops-dev-deployment_hook"
TRUST = {
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
}
INVOKE = {
    "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": HOOK_ARN}]
}


def hook(**overrides: Any) -> HookFacts:
    facts = HookFacts("CANARY", True, HOOK_ARN, "hook-role", TRUST, (INVOKE,))
    return replace(facts, **overrides)


def test_a_role_ecs_may_assume_and_invoke_the_hook_with_passes() -> None:
    assert decide_hook(hook(), image_deployed=True).state is State.OK


@pytest.mark.parametrize(
    ("facts", "image_deployed"),
    [
        (hook(strategy="ROLLING", role_name="", policies=()), True),
        (hook(hook_enabled=False), True),
        (hook(role_name=""), False),  # the site adds the hook with its first image
    ],
)
def test_no_hook_to_prove_is_skipped(facts: HookFacts, image_deployed: bool) -> None:
    assert decide_hook(facts, image_deployed=image_deployed).state is State.SKIP


@pytest.mark.parametrize(
    ("facts", "seen"),
    [
        (hook(policies=()), "does not allow lambda:InvokeFunction"),
        (
            hook(
                policies=(
                    INVOKE,
                    {"Statement": [{"Effect": "Deny", "Action": "lambda:*", "Resource": "*"}]},
                )
            ),
            "denies lambda:InvokeFunction",
        ),
        (hook(trust_policy={"Statement": []}), "does not let ecs.amazonaws.com assume it"),
        (hook(function_arn=""), "deployment_hook function does not exist"),
        (hook(role_name=""), "no SmokeTestHookRole"),
    ],
)
def test_a_hook_ecs_cannot_invoke_fails(facts: HookFacts, seen: str) -> None:
    row = decide_hook(facts, image_deployed=True)
    assert row.state is State.FAIL
    assert seen in row.detail
    assert "spotops deploy" in row.advice
    assert row.runbook == "runbooks/deploy-failed.md"


def test_policy_documents_are_read_as_json_or_as_moto_s_repr() -> None:
    assert parse_policy_document('{"Statement": []}') == {"Statement": []}
    assert parse_policy_document("{'Statement': []}") == {"Statement": []}
    assert parse_policy_document({"Statement": []}) == {"Statement": []}


@pytest.mark.parametrize(
    ("facts", "proves_account", "state"),
    [
        (None, True, State.SKIP),
        (SlackFacts(configured=True, status=200, body="ok"), True, State.OK),
        (SlackFacts(configured=True, status=200, body="ok"), False, State.EMULATOR),
    ],
)
def test_slack_delivered_or_not_asked(
    facts: SlackFacts | None, proves_account: bool, state: State
) -> None:
    assert decide_slack(facts, stage="dev", proves_account=proves_account).state is state


@pytest.mark.parametrize(
    ("facts", "seen", "advice"),
    [
        (SlackFacts(configured=False), "unset", "spotops slack-webhook set --stage dev"),
        (
            SlackFacts(configured=True, status=404, body="no_service"),
            "answers 404 (no_service)",
            "Create a new incoming webhook",
        ),
        (SlackFacts(configured=True, status=500, body="oops"), "HTTP 500", "Slack's status"),
        (SlackFacts(configured=True, error="connection refused"), "connection refused", "URL"),
    ],
)
def test_slack_not_reached_fails_with_the_webhook_runbook(
    facts: SlackFacts, seen: str, advice: str
) -> None:
    row = decide_slack(facts, stage="dev", proves_account=False)
    assert row.state is State.FAIL
    assert seen in row.detail
    assert advice in row.advice
    assert row.runbook == "runbooks/slack-webhook-missing.md"


REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/spotops-dev-site"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("version", "image", "matches"),
    [
        ({"image_digest": DIGEST}, f"{REPO}@{DIGEST}", True),
        ({"image_digest": "sha256:" + "cd" * 32}, f"{REPO}@{DIGEST}", False),
        ({"image_tag": "c0ffee1"}, f"{REPO}:c0ffee1", True),
        ({"image_tag": "c0ffee1"}, f"{REPO}@{DIGEST}", False),
        ({}, f"{REPO}:c0ffee1", False),
    ],
)
def test_the_site_s_image_is_the_service_s(
    version: dict[str, str], image: str, matches: bool
) -> None:
    assert image_matches(version, image) is matches


def site(**overrides: Any) -> SiteFacts:
    facts = SiteFacts(
        "http://site.example",
        f"{REPO}@{DIGEST}",
        healthz_status=200,
        version={"image_digest": DIGEST, "version": "1.0"},
    )
    return replace(facts, **overrides)


def test_the_site_on_its_image_passes_on_an_account() -> None:
    assert decide_site(site(), proves_account=True).state is State.OK


@pytest.mark.parametrize(
    ("facts", "seen"),
    [
        (site(healthz_status=503, error="HTTP 503"), "/healthz answered HTTP 503"),
        (site(healthz_status=0, error="timed out", version=None), "answered timed out"),
        (site(version={"image_digest": "sha256:" + "cd" * 32}), "another revision"),
    ],
)
def test_a_site_that_is_down_or_on_another_image_fails(facts: SiteFacts, seen: str) -> None:
    row = decide_site(facts, proves_account=True)
    assert row.state is State.FAIL
    assert seen in row.detail
    assert "spotops status" in row.advice


def test_on_the_emulator_the_site_row_never_passes_as_proven() -> None:
    unreached = decide_site(site(healthz_status=0, error="no such host"), proves_account=False)
    local = decide_site(site(version={"image_tag": "other"}), proves_account=False)
    broken = decide_site(site(healthz_status=500, error="HTTP 500"), proves_account=False)
    assert unreached.state is State.EMULATOR
    assert "serves nothing" in unreached.detail
    assert local.state is State.EMULATOR
    assert broken.state is State.FAIL


def test_the_report_names_the_first_failing_flow() -> None:
    rows = [
        decide_rules([rule()], stage="dev"),
        decide_alarm_topic(topic(subscription=None), proves_account=True),
        decide_slack(SlackFacts(configured=True, status=404), stage="dev", proves_account=True),
    ]
    report = ProofReport("verify", "dev", "region us-east-1", rows)
    assert report.exit_code == 1
    assert report.first_failure is not None
    assert report.first_failure.name == "alarm-topic"
    assert report.first_failure.runbook == RUNBOOKS["alarm-topic"]
