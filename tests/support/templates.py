"""Load the CloudFormation templates as cfn-lint sees them, and evaluate a few intrinsics.

``TEMPLATES`` are the real templates in ``infra/cloudformation/``; ``CLI_FIXTURE_TEMPLATES``
are the small network and site stand-ins the command line's unit and integration tests deploy.

The evaluator is deliberately small: it knows the functions our templates use where a test
needs a value (subnet CIDRs, Rules assertions), and raises on anything else so a template
change cannot slip past it silently.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "infra" / "cloudformation"
CLI_FIXTURE_TEMPLATES = Path(__file__).resolve().parent / "cli_templates"
RUNBOOKS = REPO / "runbooks"
RUNBOOK_LINK = re.compile(r"Runbook: \$\{RunbookBaseUrl\}/(?P<file>[a-z0-9-]+\.md)")


class UnsupportedIntrinsicError(ValueError):
    """The template uses a function this small evaluator does not know."""


def load(name: str) -> dict[str, Any]:
    """Return the decoded template ``infra/cloudformation/<name>.yaml`` (short tags expanded)."""
    template, errors = decode(str(TEMPLATES / f"{name}.yaml"))
    assert not errors, errors
    assert template is not None
    return template


def parameter_values(template: dict[str, Any], **overrides: str) -> dict[str, str]:
    """Return every parameter's value as CloudFormation passes it: a string."""
    values = {key: str(p.get("Default", "")) for key, p in template["Parameters"].items()}
    values.update(overrides)
    return values


def evaluate(node: Any, params: dict[str, str]) -> Any:
    """Evaluate Ref (to parameters), Select, Split, Join, Sub, Equals, Not, And, Or."""
    if isinstance(node, str | int | float | bool):
        return str(node).lower() if isinstance(node, bool) else str(node)
    if isinstance(node, list):
        return [evaluate(item, params) for item in node]
    if not isinstance(node, dict) or len(node) != 1:
        raise UnsupportedIntrinsicError(repr(node))
    ((fn, arg),) = node.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Fn::Select":
        return evaluate(arg[1], params)[int(evaluate(arg[0], params))]
    if fn == "Fn::Split":
        return evaluate(arg[1], params).split(arg[0])
    if fn == "Fn::Join":
        return arg[0].join(evaluate(arg[1], params))
    if fn == "Fn::Sub":
        text, mapping = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        names = {**params, **{k: evaluate(v, params) for k, v in mapping.items()}}
        return re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: names[m.group(1)], text)
    if fn == "Fn::Equals":
        left, right = evaluate(arg, params)
        return left == right
    if fn == "Fn::Not":
        return not evaluate(arg[0], params)
    if fn == "Fn::And":
        return all(evaluate(item, params) for item in arg)
    if fn == "Fn::Or":
        return any(evaluate(item, params) for item in arg)
    raise UnsupportedIntrinsicError(fn)


def failed_rule_assertions(template: dict[str, Any], **overrides: str) -> list[str]:
    """Return the AssertDescription of every Rules assertion the parameters break.

    This is how CloudFormation evaluates ``Rules`` before it creates anything: a rule whose
    ``RuleCondition`` holds must have every ``Assert`` true.
    """
    params = parameter_values(template, **overrides)
    failed = []
    for rule in template.get("Rules", {}).values():
        condition = rule.get("RuleCondition")
        if condition is not None and not evaluate(condition, params):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate(assertion["Assert"], params):
                failed.append(assertion["AssertDescription"])
    return failed


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    """Return ``{logical id: resource}`` for every resource of one type."""
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def sub_text(value: Any) -> str:
    """Return the text of an Fn::Sub (short or list form); fail the test otherwise."""
    assert isinstance(value, dict), value
    assert list(value) == ["Fn::Sub"], value
    body = value["Fn::Sub"]
    return body[0] if isinstance(body, list) else body


def run_cfn_lint(*paths: Path, parameters: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Run the cfn-lint command line with our rules; return its JSON matches."""
    command = [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json"]
    command += ["--append-rules", str(REPO / "infra" / "cfn_lint_rules")]
    if parameters:
        command += ["--parameters", *(f"{k}={v}" for k, v in parameters.items())]
    result = subprocess.run([*command, "--", *map(str, paths)], capture_output=True, text=True)
    # Exit codes: 0 clean, bit 2 errors, bit 4 warnings; anything else means it did not run.
    assert result.returncode in {0, 2, 4, 6}, result.stderr
    return json.loads(result.stdout)
