"""cfn-lint rule E9001: every CloudWatch alarm links a runbook that exists.

An alarm's ``AlarmDescription`` must be an ``Fn::Sub`` string containing
``Runbook: ${RunbookBaseUrl}/<file>.md``, and ``runbooks/<file>.md`` must exist in the
repository (the first ``runbooks/`` folder found walking up from the template).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

RUNBOOK_LINK = re.compile(r"Runbook: \$\{RunbookBaseUrl\}/(?P<file>[a-z0-9][a-z0-9-]*\.md)")


def find_runbooks_dir(template_file: str | None) -> Path | None:
    """Return the nearest ``runbooks/`` folder above the template, or ``None``.

    Parameters
    ----------
    template_file:
        Path of the template being linted (``None`` when linting a string).
    """
    starts = [Path(template_file).resolve().parent] if template_file else []
    starts.append(Path(__file__).resolve().parent)
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / "runbooks"
            if candidate.is_dir():
                return candidate
    return None


def sub_text(value: Any) -> str | None:
    """Return the text of an ``Fn::Sub`` (short or list form), or ``None``."""
    if isinstance(value, dict) and list(value) == ["Fn::Sub"]:
        body = value["Fn::Sub"]
        if isinstance(body, list) and body:
            body = body[0]
        if isinstance(body, str):
            return body
    return None


class AlarmRunbook(CloudFormationLintRule):
    """Every ``AWS::CloudWatch::Alarm`` names ``Runbook: ${RunbookBaseUrl}/<file>.md``."""

    id = "E9001"
    shortdesc = "Alarm links an existing runbook"
    description = (
        "Every AWS::CloudWatch::Alarm's AlarmDescription is an Fn::Sub containing "
        "'Runbook: ${RunbookBaseUrl}/<file>.md' and runbooks/<file>.md exists"
    )
    source_url = "https://github.com/prometheus-operator/runbooks"
    tags: ClassVar[list[str]] = ["resources", "cloudwatch", "spotops"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        runbooks = find_runbooks_dir(getattr(cfn, "filename", None))
        for name, resource in cfn.get_resources(["AWS::CloudWatch::Alarm"]).items():
            path = ["Resources", name, "Properties", "AlarmDescription"]
            properties = resource.get("Properties") or {}
            text = sub_text(properties.get("AlarmDescription"))
            found = RUNBOOK_LINK.search(text) if text else None
            if found is None:
                matches.append(
                    RuleMatch(
                        path,
                        f"Alarm {name}: AlarmDescription must be an Fn::Sub containing "
                        "'Runbook: ${RunbookBaseUrl}/<file>.md'",
                    )
                )
                continue
            filename = found.group("file")
            if runbooks is None or not (runbooks / filename).is_file():
                matches.append(
                    RuleMatch(path, f"Alarm {name}: runbook runbooks/{filename} does not exist")
                )
        return matches
