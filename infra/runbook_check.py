"""``make lint``'s runbook check: the runbooks and the things that link them agree.

Three rules, each failure printed as one line naming the file to fix:

1. every CloudWatch alarm (metric or composite) in ``infra/cloudformation/*.yaml`` has
   ``Runbook: ${RunbookBaseUrl}/<file>.md`` in its ``AlarmDescription``, and
   ``runbooks/<file>.md`` exists;
2. every runbook in ``runbooks/`` is linked by some alarm or by some automated action (the
   ``.md`` names of ``ops_lambdas/chalicelib/runbooks.py``, which the ops functions link in
   their Slack messages), except the pages that are not runbooks (:data:`NOT_RUNBOOKS`), and
   every action runbook named there exists;
3. no relative link in a runbook (``[text](other.md)``, ``[text](../infra/x.py#anchor)``)
   points at a file that does not exist. Links in code are not links.

Run ``python -m infra.runbook_check [--root DIR]``; exit status 1 when anything is wrong.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = Path("infra") / "cloudformation"
RUNBOOKS = Path("runbooks")
ACTIONS = Path("ops_lambdas") / "chalicelib" / "runbooks.py"
ALARM_TYPES = ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
# Pages of runbooks/ that are not the runbook of one alarm or action, and why.
NOT_RUNBOOKS = {
    "README.md": "the index and the on-call process",
    "TEMPLATE.md": "what a new runbook starts from",
    "during-an-incident.md": "the major-incident page every runbook's Escalation links",
}
RUNBOOK_LINK = re.compile(
    r"Runbook: (?:\$\{RunbookBaseUrl\}|https?://\S+/runbooks)/(?P<file>[A-Za-z0-9._-]+\.md)"
)
# [text](target "title"): the target up to a space or the closing parenthesis.
MARKDOWN_LINK = re.compile(
    r"\[(?:[^\]\\]|\\.)*\]\(\s*<?(?P<target>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"`[^`]*`")


@dataclass
class Report:
    """What the check found."""

    alarms: dict[str, str | None] = field(default_factory=dict)  # "<template>:<id>" -> file
    actions: set[str] = field(default_factory=set)
    runbooks: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    """The text of a description: a plain string or an ``Fn::Sub`` (either form)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and list(value) == ["Fn::Sub"]:
        body = value["Fn::Sub"]
        if isinstance(body, list) and body:
            body = body[0]
        return body if isinstance(body, str) else ""
    return ""


def alarm_runbooks(templates: Path) -> Iterator[tuple[str, str | None, str]]:
    """``(label, runbook file or None, template path)`` of every alarm in ``templates``."""
    for path in sorted(templates.glob("*.yaml")):
        template, errors = decode(str(path))
        if errors or template is None:
            yield f"{path.name}: cannot be read", None, str(path)
            continue
        for logical_id, resource in (template.get("Resources") or {}).items():
            if not isinstance(resource, dict) or resource.get("Type") not in ALARM_TYPES:
                continue
            properties = resource.get("Properties") or {}
            found = RUNBOOK_LINK.search(_text(properties.get("AlarmDescription")))
            yield f"{path.name}:{logical_id}", found.group("file") if found else None, str(path)


def action_runbooks(module: Path) -> set[str]:
    """The ``.md`` names assigned at the top of ``chalicelib/runbooks.py``."""
    tree = ast.parse(module.read_text(), filename=str(module))
    names = set()
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        constant = value.value if isinstance(value, ast.Constant) else None
        if isinstance(constant, str) and constant.endswith(".md"):
            names.add(constant)
    return names


def relative_links(markdown: str) -> Iterator[tuple[int, str]]:
    """``(line number, target)`` of every relative link outside code."""
    fenced = False
    for number, line in enumerate(markdown.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        for found in MARKDOWN_LINK.finditer(CODE_SPAN.sub("", line)):
            target = found.group("target")
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "/")):
                continue  # a URL (http:, mailto:), an anchor on the same page, a site path
            yield number, target


def check(root: Path) -> Report:
    """Run the three rules over the repository at ``root``."""
    report = Report()
    runbooks_dir = root / RUNBOOKS
    report.runbooks = {p.name for p in runbooks_dir.glob("*.md")}

    for label, name, path in alarm_runbooks(root / TEMPLATES):
        report.alarms[label] = name
        if name is None:
            report.problems.append(
                f"{path}: alarm {label.split(':', 1)[-1]} has no 'Runbook: "
                "${RunbookBaseUrl}/<file>.md' in its AlarmDescription"
            )
        elif name not in report.runbooks:
            report.problems.append(f"{path}: alarm {label} links runbooks/{name}, which is missing")

    actions_module = root / ACTIONS
    report.actions = action_runbooks(actions_module) if actions_module.is_file() else set()
    for name in sorted(report.actions - report.runbooks):
        report.problems.append(f"{actions_module}: action runbook runbooks/{name} is missing")

    linked = {name for name in report.alarms.values() if name} | report.actions
    for name in sorted(report.runbooks - linked - set(NOT_RUNBOOKS)):
        report.problems.append(
            f"{runbooks_dir / name}: no alarm and no action links it (link it from an alarm's "
            f"description or name it in {ACTIONS}, or delete it)"
        )

    for page in sorted(runbooks_dir.glob("*.md")):
        for number, target in relative_links(page.read_text()):
            file_part = target.split("#", 1)[0]
            if file_part and not (page.parent / file_part).exists():
                report.problems.append(f"{page}:{number}: broken link to {target}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the repository (default: this one)"
    )
    args = parser.parse_args(argv)
    report = check(args.root)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    print(
        f"runbook check: {len(report.alarms)} alarms, {len(report.actions)} action runbooks, "
        f"{len(report.runbooks)} pages, {len(report.problems)} problems",
        file=sys.stderr,
    )
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
