"""How the command line shows things: tables, progress, stack events, outputs.

The only module besides ``cli.py`` that prints, and the only one that imports rich. The
modules that do the work hand it data (or, for a deploy, call a :class:`ConsoleProgress`).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from spotops.proof.rows import ProofReport
from spotops.reports import cost as cost_model
from spotops.stage.deploy import ordered_outputs
from spotops.stage.images import ImageChoice
from spotops.stage.stacks import ChangeSetReview, StackEvent

_STATUS_STYLE = (
    ("FAILED", "red"),
    ("ROLLBACK", "red"),
    ("COMPLETE", "green"),
    ("PROGRESS", "yellow"),
)
DESCRIPTION_WIDTH = 60


def console(*, err: bool) -> Console:
    """A console on stderr (messages) or stdout (data); 120 columns when not a terminal."""
    stream = sys.stderr if err else sys.stdout
    width = None if stream.isatty() else 120
    return Console(file=stream, width=width, highlight=False, soft_wrap=True)


def short(text: str, width: int = DESCRIPTION_WIDTH) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


# ---- cost ------------------------------------------------------------------------------


def peak_text(peak: cost_model.VcpuPeak) -> str:
    """The stage's peak vCPU and its split, named as the account's quotas are."""
    if peak.strategy in cost_model.TRAFFIC_SHIFTING:
        during = f"doubled while a {peak.strategy} deployment runs both revisions"
    else:
        during = (
            f"up to MaximumPercent {peak.maximum_percent}% of them, rounded down, while a "
            f"{peak.strategy} deployment starts new tasks"
        )
    (on_demand, on_demand_code), (spot, spot_code) = (
        cost_model.ON_DEMAND_QUOTA,
        cost_model.SPOT_QUOTA,
    )
    return (
        f"Peak: {peak.tasks} tasks x {peak.task_vcpu:g} vCPU = {peak.vcpu:g} vCPU "
        f"({peak.steady_source} {peak.steady_tasks}, {during}); up to "
        f"{peak.on_demand_vcpu:g} vCPU ({peak.on_demand_tasks} tasks) on Fargate On-Demand and "
        f"up to {peak.spot_vcpu:g} vCPU ({peak.spot_tasks} tasks) on Fargate Spot. Compare with "
        f'the region\'s Service Quotas "{on_demand}" ({on_demand_code}) and "{spot}" '
        f"({spot_code}), which every Fargate task of the account counts against."
    )


def cost_table(estimate: cost_model.Estimate, title: str) -> Table:
    caption = escape(peak_text(estimate.peak)) if estimate.peak else None
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("Item")
    table.add_column("Quantity")
    table.add_column(f"{estimate.currency}/month", justify="right")
    for item in estimate.items:
        table.add_row(item.name, escape(item.detail), f"{item.monthly:,.2f}")
    table.add_section()
    table.add_row("Total", "", f"{estimate.total:,.2f}")
    return table


# ---- deploy ----------------------------------------------------------------------------


def event_line(event: StackEvent, descriptions: Mapping[str, str] | None = None) -> str:
    """One stack event: time, resource, what it is (its Metadata.Description), status."""
    style = next((s for marker, s in _STATUS_STYLE if marker in event.status), "white")
    reason = f" [dim]{escape(event.reason)}[/dim]" if event.reason else ""
    about = (descriptions or {}).get(event.logical_id) or event.resource_type
    return (
        f"{event.timestamp:%H:%M:%S} {escape(event.logical_id)} [dim]{escape(short(about))}"
        f"[/dim] [{style}]{event.status}[/{style}]{reason}"
    )


def change_table(
    review: ChangeSetReview, descriptions: Mapping[str, str] | None = None, hidden: int = 0
) -> Table:
    caption = (
        f"{hidden} resource(s) whose conditions are false left out: the local emulator lists "
        "them in change sets, AWS does not."
        if hidden
        else None
    )
    table = Table(
        title=f"{review.stack_name}: {review.change_set_type} change set",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    for column in ("Action", "Logical ID", "What it is", "Replacement"):
        table.add_column(column)
    for change in review.changes:
        style = "red" if change.destructive else None
        about = (descriptions or {}).get(change.logical_id) or change.resource_type
        table.add_row(
            change.action,
            change.logical_id,
            escape(short(about)),
            change.replacement or "-",
            style=style,
        )
    if not review.changes:
        table.add_row("-", "(parameters or outputs only)", "", "")
    return table


class ConsoleProgress:
    """A deploy's progress on stderr: spinners, change tables, streamed stack events.

    ``target`` names where the deploy goes (``region us-east-1``, or ``the local emulator
    at http://127.0.0.1:4566``): every question says it.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self._err = console(err=True)

    def note(self, message: str) -> None:
        self._err.print(escape(message))

    def image(self, choice: ImageChoice) -> None:
        self._err.print(
            f"Image: {escape(choice.uri or '(none)')} [dim]({escape(choice.source)})[/dim]"
        )

    def working(self, label: str) -> AbstractContextManager[Any]:
        return self._err.status(escape(label))

    def up_to_date(self, stack_name: str) -> None:
        self._err.print(f"[green]{stack_name}: up to date[/green]")

    def review(self, review: ChangeSetReview, descriptions: Mapping[str, str], hidden: int) -> None:
        self._err.print(change_table(review, descriptions, hidden))

    def confirm(self, review: ChangeSetReview) -> bool:
        try:
            return click.confirm(
                f"{review.stack_name}: this change set replaces or deletes resources (red "
                f"rows). Execute it on {self.target}?",
                default=False,
                err=True,
            )
        except click.Abort:
            return False

    def follow(
        self, label: str, events: Iterator[StackEvent], descriptions: Mapping[str, str]
    ) -> None:
        with self._err.status(escape(label)) as spinner:
            for event in events:
                self._err.print(event_line(event, descriptions))
                spinner.update(f"{escape(label)} ({escape(event.logical_id)} {event.status})")

    def done(self, stack_name: str) -> None:
        self._err.print(f"[green]{stack_name}: done[/green]")


class ConsoleDestroyProgress:
    """A destroy's progress: notes and each stack's deletion events on stderr, the name of
    each deleted stack on stdout."""

    def note(self, message: str) -> None:
        click.echo(message, err=True)

    def deleting(self, stack_name: str, events: Iterator[StackEvent]) -> None:
        follow_deletion(f"Deleting {stack_name}", events)
        console(err=True).print(f"[green]{stack_name}: deleted[/green]")
        click.echo(stack_name)


def follow_deletion(label: str, events: Iterator[StackEvent]) -> None:
    """Stream a stack's deletion events on stderr."""
    err = console(err=True)
    with err.status(escape(label)) as spinner:
        for event in events:
            err.print(event_line(event))
            spinner.update(f"{escape(label)} ({escape(event.logical_id)} {event.status})")


def print_outputs(outputs: Mapping[str, Mapping[str, str]]) -> None:
    """Every stack's outputs on stdout, one per line, ``SiteUrl`` last."""
    rows = ordered_outputs(outputs)
    width = max((len(key) for _, key, _ in rows), default=0)
    current = None
    for stack, key, value in rows:
        if key != "SiteUrl" and stack != current:
            click.echo(f"# {stack}")
            current = stack
        click.echo(f"{key:<{width}}  {value}")


# ---- logs ------------------------------------------------------------------------------

_LEVEL_STYLE = {"ERROR": "red", "CRITICAL": "red", "WARNING": "yellow", "WARN": "yellow"}
# Keys every structured line has, shown in the line's head rather than its tail.
_HEAD_KEYS = ("timestamp", "time", "level", "message", "msg", "service", "location")


def log_line(line: Any, *, width: int) -> str:
    """One log event for a terminal: time, source, level, message, then the other fields.

    JSON lines (the site's and Powertools' structured logs) are unpacked; other lines (the
    Lambda runtime's START/END/REPORT) are shown as they are.
    """
    import json

    head = f"[dim]{line.timestamp:%H:%M:%S}[/dim] [cyan]{escape(line.source):<{width}}[/cyan]"
    try:
        parsed = json.loads(line.message)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return f"{head} {escape(line.message)}"
    level = str(parsed.get("level", "")).upper()
    style = _LEVEL_STYLE.get(level, "white")
    message = parsed.get("message", parsed.get("msg", ""))
    rest = {k: v for k, v in parsed.items() if k not in _HEAD_KEYS}
    extra = " ".join(
        f"{k}={v if isinstance(v, str | int | float) else json.dumps(v, separators=(',', ':'))}"
        for k, v in rest.items()
        if v not in (None, "", [], {})
    )
    level_text = f"[{style}]{level:<7}[/{style}] " if level else ""
    tail = f" [dim]{escape(extra)}[/dim]" if extra else ""
    return f"{head} {level_text}{escape(str(message))}{tail}"


# ---- status ----------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def print_status(report: Any) -> None:
    """A :class:`spotops.reports.status.StatusReport` on stdout, the site URL last."""
    click.echo(f"Stacks ({report.region})")
    for name, info in report.stacks:
        click.echo(f"  {name:<28} {info.status if info else 'NOT DEPLOYED'}")
        if info and info.reason and "FAILED" in info.status + info.reason:
            click.echo(f"    {info.reason}")
    service = report.service
    if service:
        click.echo(f"Service {service.name} (cluster {service.cluster}): {service.status}")
        click.echo(
            f"  desired {service.desired}  running {service.running}  pending {service.pending}"
        )
        click.echo(
            f"  cpu {_percent(service.cpu_percent)}  memory {_percent(service.memory_percent)}"
            "  (service average, last 5 minutes)"
        )
        if service.strategy:
            click.echo(f"  strategy: {'; '.join(service.strategy)}")
        for provider, counts in service.tasks_by_provider.items():
            states = "  ".join(f"{state.lower()} {n}" for state, n in sorted(counts.items()))
            click.echo(f"  tasks on {provider}: {states}")
        for task in service.tasks:
            kind = "Spot" if task.spot else "on-demand"
            digest = task.digest[:19] if task.digest else "-"
            click.echo(
                f"    {task.task_id[:12]:<12} {task.last_status:<8} {kind:<9} "
                f"{task.zone or '-':<11} {task.address or '-':<15} target {task.health:<9} "
                f"{digest}"
            )
        for d in service.deployments:
            state = d.rollout_state or "-"
            click.echo(
                f"  deployment {d.status} {state}: desired {d.desired} running {d.running} "
                f"pending {d.pending}  {d.task_definition.rsplit('/', 1)[-1]}"
            )
            if d.reason:
                click.echo(f"    {d.reason}")
        click.echo(f"  image: {service.image or '-'}")
        if service.digests:
            click.echo(f"  running digests: {', '.join(service.digests)}")
    if report.failure:
        click.echo("Why the last deployment failed")
        for line in report.failure:
            click.echo(f"  {line}")
    if report.pushes:
        click.echo(f"Pushes: {report.pushes}")
    if report.alarms:
        click.echo("Alarms in ALARM")
        for name, reason in report.alarms:
            click.echo(f"  {name}: {reason}")
    else:
        click.echo("Alarms in ALARM: none")
    if report.budget:
        click.echo("Error budget (left over the window; burn rate 1x spends it exactly)")
        for line in report.budget:
            click.echo(f"  {line}")
    if report.ops is not None:
        click.echo("Ops toolkit")
        for function in report.ops.functions:
            if not function.exists:
                said = "no logs yet"
            elif function.last_error_at is None:
                said = "no error in the last 24 h"
            else:
                when = f"{function.last_error_at:%Y-%m-%d %H:%M:%S} UTC"
                said = f"last error {when}: {function.last_error}"
            click.echo(f"  {function.name}: {said}")
        webhook = report.ops.slack_webhook
        if webhook is not None:
            advice = (
                ""
                if webhook == "set"
                else " (no message reaches Slack; `spotops slack-webhook set`, "
                "runbooks/slack-webhook-missing.md)"
            )
            click.echo(f"  slack webhook: {webhook}{advice}")
        for label, depth in report.ops.dead_letters.items():
            shown = "queue missing" if depth is None else str(depth)
            click.echo(f"  dead letters ({label}): {shown}")
    if report.site_url:
        click.echo(f"SiteUrl  {report.site_url}")


# ---- doctor and verify -----------------------------------------------------------------

_PROOF_STYLE = {
    "ok": "green",
    "warn": "yellow",
    "fail": "red",
    "emulator": "cyan",
    "skip": "dim",
}


def print_proof(report: ProofReport) -> None:
    """One row per check or flow on stdout; the verdict, and the first failure's runbook, last.

    The advice column is the reason the table exists: a failing row says what to do.
    """
    out = console(err=False)
    table = Table(title=f"spotops {report.command}: stage {report.stage}, {report.target}")
    table.add_column("check" if report.command == "doctor" else "flow")
    table.add_column("state")
    table.add_column("seen")
    table.add_column("what to do")
    table.add_column("s", justify="right")
    for row in report.rows:
        style = _PROOF_STYLE.get(row.state.value, "")
        advice = " ".join(
            part for part in (row.advice, f"({row.runbook})" if row.runbook else "") if part
        )
        table.add_row(
            escape(row.name),
            f"[{style}]{row.state.value}[/{style}]" if style else row.state.value,
            escape(row.detail),
            escape(advice),
            f"{row.seconds:.1f}",
        )
    out.print(table)
    counts = Counter(row.state.value for row in report.rows)
    tally = ", ".join(f"{counts[state]} {state}" for state in _PROOF_STYLE if counts[state])
    first = report.first_failure
    if first is None:
        out.print(f"{report.command}: nothing fails ({tally or 'no rows'}).")
    else:
        where = f"; runbook {first.runbook}" if first.runbook else ""
        out.print(f"{report.command}: {first.name} fails ({tally}){where}.")


# ---- timeline ------------------------------------------------------------------------------


def print_timeline(timeline: Any, *, as_json: bool) -> None:
    """The events on stdout (lines, or one JSON list); each source not read on stderr."""
    import json

    from spotops.reports.timeline import render_lines

    for gap in timeline.gaps:
        click.echo(gap.line, err=True)
    if as_json:
        click.echo(json.dumps([e.as_json() for e in timeline.events], indent=2))
        return
    for line in render_lines(timeline):
        click.echo(line)
    if not timeline.events:
        click.echo("No events in range.", err=True)
