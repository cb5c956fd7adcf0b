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


NO_VALUE = object()
"""What ``Ref: AWS::NoValue`` evaluates to; dropped from lists by :class:`Resolver`."""

PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
}


class Resolver:
    """Evaluate a template's values as CloudFormation would for some parameter values, with
    resources as placeholders (``<Vpc>``, ``<LoadBalancer.DNSName>``) and imports as
    ``<import NAME>``.

    Unlike :func:`evaluate` it knows resources and conditions: a ``Ref``/``Fn::GetAtt`` to a
    resource whose ``Condition`` is false raises, as CloudFormation refuses such a template.
    """

    def __init__(
        self, template: dict[str, Any], stack_name: str = "stack", **overrides: str
    ) -> None:
        self.template = template
        self.params = parameter_values(template, **overrides)
        self.pseudo = {**PSEUDO_PARAMETERS, "AWS::StackName": stack_name}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self._conditions[name]

    def exists(self, logical_id: str) -> bool:
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def _resource(self, logical_id: str, attribute: str | None = None) -> str:
        if not self.exists(logical_id):
            raise ValueError(f"{logical_id} does not exist under {self.params}")
        return f"<{logical_id}.{attribute}>" if attribute else f"<{logical_id}>"

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self._resource(name)

    def value(self, node: Any) -> Any:
        """The value of ``node``; raises :class:`UnsupportedIntrinsicError` on an unknown one."""
        if isinstance(node, bool):
            return str(node).lower()
        if isinstance(node, str | int | float):
            return str(node)
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            raise UnsupportedIntrinsicError(repr(node))
        if len(node) != 1 or not next(iter(node)).startswith(("Fn::", "Ref", "Condition")):
            values = {k: self.value(v) for k, v in node.items()}
            return {k: v for k, v in values.items() if v is not NO_VALUE}
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return self._ref(arg)
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._resource(logical_id, attribute)
        if fn == "Fn::If":
            name, if_true, if_false = arg
            return self.value(if_true if self.condition(name) else if_false)
        if fn == "Fn::Sub":
            text, mapping = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            local = {k: self.value(v) for k, v in mapping.items()}

            def one(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in local:
                    return str(local[name])
                if "." in name and name not in self.pseudo:
                    return self._resource(*name.split(".", 1))
                return str(self._ref(name))

            return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", one, text)
        if fn == "Fn::Join":
            return arg[0].join(str(v) for v in self.value(arg[1]))
        if fn == "Fn::Split":
            return self.value(arg[1]).split(arg[0])
        if fn == "Fn::Select":
            return self.value(arg[1])[int(self.value(arg[0]))]
        if fn == "Fn::GetAZs":
            return [f"{self.pseudo['AWS::Region']}{zone}" for zone in "abcdef"]
        if fn == "Fn::ImportValue":
            return f"<import {self.value(arg)}>"
        if fn == "Fn::Equals":
            left, right = self.value(arg)
            return left == right
        if fn == "Fn::Not":
            return not self.value(arg[0])
        if fn == "Fn::And":
            return all(self.value(item) for item in arg)
        if fn == "Fn::Or":
            return any(self.value(item) for item in arg)
        if fn == "Fn::Contains":
            return self.value(arg[1]) in self.value(arg[0])
        raise UnsupportedIntrinsicError(fn)


def references(node: Any) -> tuple[set[str], set[str]]:
    """The names ``node`` refers to: ``(parameters or resources by Ref/Sub/GetAtt, conditions
    by Fn::If/Condition)``. Pseudo parameters are left out."""
    names: set[str] = set()
    conditions: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, list):
            for child in item:
                walk(child)
            return
        if not isinstance(item, dict):
            return
        for key, arg in item.items():
            if key == "Ref" and isinstance(arg, str):
                names.add(arg)
            elif key == "Fn::GetAtt":
                names.add(arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                local = {} if isinstance(arg, str) else arg[1]
                for found in re.findall(r"\$\{([A-Za-z0-9:.]+)\}", text):
                    if found.split(".", 1)[0] not in local:
                        names.add(found.split(".", 1)[0])
                walk(local)
            elif key == "Fn::If":
                conditions.add(arg[0])
                walk(arg[1:])
            elif key == "Condition" and isinstance(arg, str):
                conditions.add(arg)
            else:
                walk(arg)

    walk(node)
    return {n for n in names if not n.startswith("AWS::")}, conditions


def immutable_parameters(template: dict[str, Any]) -> set[str]:
    """The parameters spotops refuses to change on a live stack (``Metadata.spotops``)."""
    return set(template.get("Metadata", {}).get("spotops", {}).get("immutable-parameters", []))


def render_with_values(name: str, directory: Path, label: str, **values: str) -> Path:
    """Write ``infra/cloudformation/<name>.yaml`` as JSON to ``directory/<label>.json`` with
    ``values`` as its parameters' defaults: the template as a stack with those parameters
    sees it, for tools that take no parameters (checkov) or one set per run (cfn-lint)."""
    template = load(name)
    for key, value in values.items():
        template["Parameters"][key]["Default"] = value
    path = directory / f"{label}.json"
    path.write_text(json.dumps(template, indent=1))
    return path


CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


def run_checkov(*paths: Path) -> dict[str, Any]:
    """Run checkov (its own virtual environment, as ``make lint-templates`` does) on
    CloudFormation files; return its JSON report (``summary``, ``results``)."""
    command = [str(CHECKOV), "--skip-download", "--framework", "cloudformation", "-o", "json"]
    for path in paths:
        command += ["-f", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    # Exit code 1 means failed checks (reported below); anything else is checkov failing.
    assert result.returncode in {0, 1}, result.stderr
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


TEMPLATE_BUCKET = "spotops-test-templates"


def template_source(s3: Any, name: str) -> dict[str, str]:
    """How a test hands infra/cloudformation/<name>.yaml to the emulator, as spotops deploy
    does: inline up to CloudFormation's 51,200 bytes, else from S3 by ``TemplateURL`` (the
    strict layer refuses a larger inline body, as AWS does)."""
    import hashlib

    from spotops.stage.limits import TEMPLATE_BODY

    body = (TEMPLATES / f"{name}.yaml").read_text()
    data = body.encode()
    if len(data) <= TEMPLATE_BODY.maximum:
        return {"TemplateBody": body}
    key = f"{name}-{hashlib.sha256(data).hexdigest()}.yaml"
    s3.create_bucket(Bucket=TEMPLATE_BUCKET)  # moto answers an existing own bucket with 200
    s3.put_object(Bucket=TEMPLATE_BUCKET, Key=key, Body=data)
    return {"TemplateURL": f"https://{TEMPLATE_BUCKET}.s3.us-east-1.amazonaws.com/{key}"}
