"""``make lint``'s runbook check: the runbooks and the things that link them agree, and
what they tell on-call to type works.

Six rules, each failure printed as one line naming the file to fix:

1. every CloudWatch alarm (metric or composite) in ``infra/cloudformation/*.yaml`` has
   ``Runbook: ${RunbookBaseUrl}/<file>.md`` in its ``AlarmDescription``, and
   ``runbooks/<file>.md`` exists;
2. every runbook in ``runbooks/`` is linked by some alarm or by some automated action (the
   ``.md`` names of ``ops_lambdas/chalicelib/runbooks.py``, which the ops functions link in
   their Slack messages), except the pages that are not runbooks (:data:`NOT_RUNBOOKS`), and
   every action runbook named there exists;
3. no relative link in a runbook (``[text](other.md)``, ``[text](../infra/x.py#anchor)``)
   points at a file that does not exist. Links in code are not links;
4. every ``spotops`` command in a runbook's code (fenced blocks and inline code) exists, with
   the options it is given, and a literal value where the command takes a fixed set of
   words: the click group of ``spotops/cli/main.py`` is the reference;
5. no runbook sets the stage itself (``export STAGE=dev`` pasted unchanged during a prod
   incident works on the wrong stage): the first code line that uses ``STAGE`` must be the
   check ``: "${STAGE:?...}"``, which refuses an unset one;
6. no ``TODO`` in a page on-call may open (all but :data:`TEMPLATE`).

Run ``python -m infra.runbook_check [--root DIR]``; exit status 1 when anything is wrong.
"""

from __future__ import annotations

import argparse
import ast
import re
import shlex
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
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
TEMPLATE = "TEMPLATE.md"
TODO = re.compile(r"\bTODO\b")
STAGE_USE = re.compile(r"\$\{?STAGE\b|\bSTAGE=")
STAGE_GUARD = re.compile(r'^\s*:\s+"\$\{STAGE:\?[^}]+\}"\s*$')
# Tokens after which a shell word is a command name (shlex's punctuation tokens, keywords).
COMMAND_STARTS = {"do", "then", "else", "time", "xargs", "!", "{"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# A placeholder such as <stage> or <repository uri>: one word, not a redirection.
PLACEHOLDER = re.compile(r"<[A-Za-z][^<>|;&]*>")
PLACEHOLDER_WORD = "PLACEHOLDER"


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


def code_lines(markdown: str) -> Iterator[tuple[int, str]]:
    """``(line number, code)`` of every line of a fenced block (continuation lines joined)
    and of every inline code span outside them."""
    fenced, pending, start = False, "", 0
    for number, line in enumerate(markdown.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            for span in CODE_SPAN.findall(line):
                yield number, span.strip("`")
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""


def _words(line: str) -> list[str]:
    line = PLACEHOLDER.sub(PLACEHOLDER_WORD, line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote (a quoted script over several lines)
        return line.split()


def _is_operator(word: str) -> bool:
    return bool(word) and all(c in "();<>|&" for c in word)


def spotops_commands(line: str) -> Iterator[list[str]]:
    """The arguments of every ``spotops`` (or ``<path>/spotops``) in command position."""
    words = _words(line)
    at_start = True
    for index, word in enumerate(words):
        if at_start and word.rsplit("/", 1)[-1] == "spotops":
            arguments = []
            for argument in words[index + 1 :]:
                if _is_operator(argument):
                    break
                arguments.append(argument)
            yield arguments
        at_start = (
            _is_operator(word)
            or word in COMMAND_STARTS
            or (at_start and bool(ASSIGNMENT.match(word)))
        )


def _literal(word: str) -> bool:
    """A value written out, not a placeholder (``$STAGE``, ``<task-id>``)."""
    return "$" not in word and PLACEHOLDER_WORD not in word


def _option(command: click.Command, name: str) -> click.Option | None:
    for param in command.params:
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def _choice_problem(param: click.Parameter, value: str, where: str) -> str | None:
    if not isinstance(param.type, click.Choice) or not _literal(value):
        return None
    choices = [str(c) for c in param.type.choices]
    fold = (lambda v: v.lower()) if not param.type.case_sensitive else (lambda v: v)
    if fold(value) in {fold(c) for c in choices}:
        return None
    return f"{where} takes {', '.join(choices)}, not {value!r}"


def command_problem(group: click.Group, arguments: Sequence[str]) -> str | None:
    """What is wrong with ``spotops <arguments>``, or ``None``: an unknown command, an
    option the command does not have, a word it does not take."""
    command: click.Command = group
    path = ["spotops"]
    positional = 0
    index = 0
    while index < len(arguments):
        word = arguments[index]
        index += 1
        where = " ".join(path)
        if word.startswith("-") and word != "-":
            name, _, inline = word.partition("=")
            if name == "--help":
                continue
            option = _option(command, name)
            if option is None:
                return f"`{where}` has no option {name}"
            if option.is_flag or option.count:
                continue
            if not inline:
                if index >= len(arguments):
                    return f"`{where} {name}` needs a value"
                inline = arguments[index]
                index += 1
            problem = _choice_problem(option, inline, f"`{where} {name}`")
            if problem:
                return problem
            continue
        if isinstance(command, click.Group):
            sub = command.commands.get(word)
            if sub is None:
                known = ", ".join(sorted(command.commands))
                return f"`{where}` has no command {word!r} (it has: {known})"
            command, positional = sub, 0
            path.append(word)
            continue
        params = [p for p in command.params if isinstance(p, click.Argument)]
        if positional >= len(params) and not (params and params[-1].nargs == -1):
            return f"`{where}` takes no argument {word!r}"
        param = params[min(positional, len(params) - 1)]
        positional += 1
        problem = _choice_problem(param, word, f"`{where}` ({param.name})")
        if problem:
            return problem
    return None


def page_problems(page: Path, group: click.Group) -> Iterator[str]:
    """Rules 4 to 6 over one page."""
    text = page.read_text()
    if page.name != TEMPLATE:
        for number, line in enumerate(text.splitlines(), start=1):
            if TODO.search(line):
                yield f"{page}:{number}: TODO in a runbook: write the step, or say who decides"
    guarded = False
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced or guarded or not STAGE_USE.search(line):
            continue
        if STAGE_GUARD.match(line):
            guarded = True
            continue
        yield (
            f"{page}:{number}: STAGE is used before the check that refuses an unset one; "
            'start with : "${STAGE:?set STAGE to the stage in trouble, e.g. export STAGE=prod}"'
            + (" instead of a hard-coded export STAGE=" if "export" in line else "")
        )
        break
    for number, code in code_lines(text):
        for arguments in spotops_commands(code):
            problem = command_problem(group, arguments)
            if problem:
                yield f"{page}:{number}: {problem}"


def _spotops_group() -> click.Group:
    from spotops.cli.main import cli

    return cli


def check(root: Path, group: click.Group | None = None) -> Report:
    """Run the six rules over the repository at ``root``; ``group`` is the command line the
    runbooks' commands must exist in (default: spotops's)."""
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
        report.problems.extend(page_problems(page, group or _spotops_group()))
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
