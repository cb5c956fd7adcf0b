"""Regenerate the inputs/outputs tables in infra/README.md from the templates.

Run ``.venv/bin/python -m infra.readme_tables`` after changing a template's parameters or
outputs; ``tests/unit/infra/test_readme_tables.py`` fails while the README is stale. Each
table sits between ``<!-- BEGIN <name> TABLES -->`` and ``<!-- END <name> TABLES -->``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

INFRA = Path(__file__).resolve().parent
README = INFRA / "README.md"
STACKS = ("network", "site", "ops")


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def render(stack: str) -> str:
    """Return the Markdown inputs and outputs tables of ``infra/cloudformation/<stack>.yaml``."""
    template, errors = decode(str(INFRA / "cloudformation" / f"{stack}.yaml"))
    if errors or template is None:
        raise ValueError(f"{stack}.yaml does not parse: {errors}")
    lines = ["**Inputs**", "", "| name | type | default | description |", "|---|---|---|---|"]
    for name, param in template["Parameters"].items():
        default = param.get("Default", "")
        allowed = param.get("AllowedValues")
        kind = param["Type"] + (
            f" ({', '.join(map(str, allowed))})" if allowed and len(allowed) <= 5 else ""
        )
        shown = f"`{default}`" if default != "" else '`""`'
        if "Default" not in param:
            shown = "required"
        lines.append(f"| `{name}` | {_cell(kind)} | {shown} | {_cell(param['Description'])} |")
    lines += ["", "**Outputs** (exported as `<stack name>-<name>`)", ""]
    lines += ["| name | description |", "|---|---|"]
    for name, output in template["Outputs"].items():
        lines.append(f"| `{name}` | {_cell(output['Description'])} |")
    return "\n".join(lines)


def regenerate(text: str) -> str:
    """Return ``text`` (the README) with every stack's tables replaced by fresh ones."""
    for stack in STACKS:
        begin, end = f"<!-- BEGIN {stack} TABLES -->", f"<!-- END {stack} TABLES -->"
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"markers for {stack} missing in {README}")
        replacement = f"{begin}\n{render(stack)}\n{end}"
        text = pattern.sub(lambda _match: replacement, text)  # noqa: B023 - used at once
    return text


def main() -> None:
    README.write_text(regenerate(README.read_text()))


if __name__ == "__main__":
    main()
