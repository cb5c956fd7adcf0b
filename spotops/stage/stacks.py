"""CloudFormation work: change sets, execution, stack events, outputs, deletion.

No printing here. Long operations are generators of :class:`StackEvent` so the command
layer can show them as they happen (and Ctrl-C simply stops the iteration: the stack
carries on in CloudFormation).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from spotops.errors import (
    ChangeSetError,
    DeployError,
    ParameterError,
    StackStateError,
    is_error,
)
from spotops.stage import limits

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# A change set with nothing to do fails with this status reason; CloudFormation gives it no
# code of its own (the AWS CLI's `cloudformation deploy` reads the same words). It is a
# status reason, not an error: errors are read by code (spotops.errors.error_code).
_EMPTY_CHANGE_SET = "didn't contain changes"
_SUCCESS = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
_ABSENT = frozenset({"REVIEW_IN_PROGRESS", "DELETE_COMPLETE"})


@dataclass(frozen=True)
class StackEvent:
    """One line of a stack's event history."""

    timestamp: datetime
    stack_name: str
    logical_id: str
    resource_type: str
    status: str
    reason: str = ""
    event_id: str = ""

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> StackEvent:
        return cls(
            timestamp=raw.get("Timestamp") or datetime.now(UTC),
            stack_name=str(raw.get("StackName", "")),
            logical_id=str(raw.get("LogicalResourceId", "")),
            resource_type=str(raw.get("ResourceType", "")),
            status=str(raw.get("ResourceStatus", "")),
            reason=str(raw.get("ResourceStatusReason") or ""),
            event_id=str(raw.get("EventId", "")),
        )


@dataclass(frozen=True)
class ResourceChange:
    """One row of a change set summary."""

    action: str
    logical_id: str
    resource_type: str
    replacement: str = ""

    @property
    def destructive(self) -> bool:
        """True when the change deletes or (maybe) replaces a resource."""
        return self.action == "Remove" or self.replacement in {"True", "Conditional"}


@dataclass
class ChangeSetReview:
    """A change set ready to execute, or the news that the stack is up to date."""

    stack_name: str
    change_set_type: str
    change_set_id: str = ""
    changes: list[ResourceChange] = field(default_factory=list)
    up_to_date: bool = False

    @property
    def needs_confirmation(self) -> bool:
        return any(change.destructive for change in self.changes)


@dataclass(frozen=True)
class StackInfo:
    name: str
    status: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    reason: str = ""


class StackDeployer:
    """Deploy, follow and delete CloudFormation stacks.

    Parameters
    ----------
    cfn:
        A boto3 CloudFormation client.
    poll_seconds:
        Pause between polls while waiting.
    direct_execute:
        Execute a reviewed change set as ``CreateStack``/``UpdateStack`` with the same
        inputs. Only for the local emulator: moto 5.2.5 executes change sets without
        computing the stack's outputs and exports, so a stack that imports them would fail.
    sleep:
        Injected for tests.
    """

    def __init__(
        self,
        cfn: Any,
        *,
        poll_seconds: float = 3.0,
        direct_execute: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._cfn = cfn
        self._poll = poll_seconds
        self._direct = direct_execute
        self._sleep = sleep

    @property
    def client(self) -> Any:
        """The CloudFormation client (for the emulator's housekeeping)."""
        return self._cfn

    # ---- reading --------------------------------------------------------------------

    def describe(self, stack_name: str) -> StackInfo | None:
        """The stack, or ``None`` when it does not exist."""
        try:
            stacks = self._cfn.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            # The code CloudFormation answers for a stack that does not exist; our stack
            # names are well formed, so no other ValidationError can come from this call.
            if is_error(exc, "ValidationError"):
                return None
            raise
        if not stacks:
            return None
        raw = stacks[0]
        return StackInfo(
            name=str(raw["StackName"]),
            status=str(raw["StackStatus"]),
            outputs={o["OutputKey"]: str(o["OutputValue"]) for o in raw.get("Outputs") or []},
            parameters={
                p["ParameterKey"]: str(p.get("ParameterValue", ""))
                for p in raw.get("Parameters") or []
            },
            reason=str(raw.get("StackStatusReason") or ""),
        )

    def events(self, stack_name: str, *, since_id: str | None = None) -> list[StackEvent]:
        """Events newer than ``since_id`` (all when ``None``), oldest first."""
        collected: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StackName": stack_name}
        while True:
            page = self._cfn.describe_stack_events(**kwargs)
            for raw in page.get("StackEvents", []):
                if since_id is not None and raw.get("EventId") == since_id:
                    return [StackEvent.from_api(r) for r in reversed(collected)]
                collected.append(raw)
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        return [StackEvent.from_api(r) for r in reversed(collected)]

    def _latest_event_id(self, stack_name: str) -> str | None:
        try:
            page = self._cfn.describe_stack_events(StackName=stack_name)
        except ClientError:
            return None
        events = page.get("StackEvents", [])
        return str(events[0]["EventId"]) if events else None

    def first_failure(self, stack_name: str) -> StackEvent | None:
        """The oldest ``*_FAILED`` event of the stack's last operation, if any."""
        failures = [e for e in self.events(stack_name) if e.failed]
        return failures[0] if failures else None

    # ---- change sets ----------------------------------------------------------------

    def prepare(
        self,
        stack_name: str,
        template_body: str,
        parameters: Mapping[str, str],
        tags: Mapping[str, str],
        *,
        template_url: str = "",
    ) -> ChangeSetReview:
        """Create a change set (CREATE or UPDATE) and wait until it can be reviewed.

        Raises
        ------
        StackStateError
            The stack is in ROLLBACK_COMPLETE or an operation is in progress.
        ParameterError / ChangeSetError
            CloudFormation refused the inputs or could not compute the changes.
        """
        existing = self.describe(stack_name)
        if existing is not None:
            self._check_deployable(existing)
        change_set_type = "UPDATE" if existing and existing.status not in _ABSENT else "CREATE"
        name = f"spotops-{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
        try:
            created = self._cfn.create_change_set(
                ChangeSetName=name,
                ChangeSetType=change_set_type,
                Description="spotops deploy",
                **_stack_inputs(stack_name, template_body, parameters, tags, template_url),
            )
        except ClientError as exc:
            if is_error(exc, "ValidationError"):
                raise _refused(stack_name, exc) from exc
            raise
        change_set_id = str(created["Id"])
        described = self._wait_for_change_set(change_set_id)
        review = ChangeSetReview(stack_name, change_set_type, change_set_id)
        if described["Status"] == "FAILED":
            reason = str(described.get("StatusReason") or "no reason given")
            if _EMPTY_CHANGE_SET in reason:
                self.discard(review)
                review.up_to_date = True
                return review
            self.discard(review)
            raise ChangeSetError(
                f"CloudFormation could not build the change set for {stack_name}: {reason}. "
                "Fix the template or parameters and deploy again."
            )
        review.changes = list(self._changes(described))
        return review

    def _check_deployable(self, stack: StackInfo) -> None:
        if stack.status == "ROLLBACK_COMPLETE":
            failure = self.first_failure(stack.name)
            cause = (
                f" Its creation failed at {failure.logical_id} ({failure.resource_type}): "
                f"{failure.reason}."
                if failure
                else ""
            )
            raise StackStateError(
                f"Stack {stack.name} is in ROLLBACK_COMPLETE: its first creation failed and "
                f"CloudFormation cannot update it.{cause} Delete it with `spotops destroy` "
                "(or in the CloudFormation console), then deploy again."
            )
        if stack.status.endswith("_IN_PROGRESS") and stack.status != "REVIEW_IN_PROGRESS":
            raise StackStateError(
                f"Stack {stack.name} is busy ({stack.status}). Wait for it to settle "
                "(`spotops status`) and deploy again."
            )

    def _wait_for_change_set(self, change_set_id: str) -> dict[str, Any]:
        while True:
            described: dict[str, Any] = self._cfn.describe_change_set(ChangeSetName=change_set_id)
            if described.get("Status") in {"CREATE_COMPLETE", "FAILED"}:
                pages = [described]
                token = described.get("NextToken")
                while token:
                    page = self._cfn.describe_change_set(
                        ChangeSetName=change_set_id, NextToken=token
                    )
                    pages.append(page)
                    token = page.get("NextToken")
                described["Changes"] = [c for p in pages for c in p.get("Changes", [])]
                return described
            self._sleep(self._poll)

    @staticmethod
    def _changes(described: Mapping[str, Any]) -> Iterator[ResourceChange]:
        for change in described.get("Changes", []):
            raw = change.get("ResourceChange", {})
            yield ResourceChange(
                action=str(raw.get("Action", "")),
                logical_id=str(raw.get("LogicalResourceId", "")),
                resource_type=str(raw.get("ResourceType", "")),
                replacement=str(raw.get("Replacement") or ""),
            )

    def discard(self, review: ChangeSetReview) -> None:
        """Delete a change set that will not run (and the empty stack a CREATE one made)."""
        if review.change_set_id:
            with contextlib.suppress(ClientError):  # already gone: nothing to clean up
                self._cfn.delete_change_set(ChangeSetName=review.change_set_id)
        if review.change_set_type == "CREATE":
            stack = self.describe(review.stack_name)
            if stack is not None and stack.status == "REVIEW_IN_PROGRESS":
                self._cfn.delete_stack(StackName=review.stack_name)

    # ---- execution ------------------------------------------------------------------

    def execute(
        self,
        review: ChangeSetReview,
        template_body: str,
        parameters: Mapping[str, str],
        tags: Mapping[str, str],
        *,
        template_url: str = "",
    ) -> Iterator[StackEvent]:
        """Execute the reviewed change set and yield stack events until the stack settles.

        Raises
        ------
        DeployError
            The stack ended in failure; names the first failing resource and its reason.
        """
        stack_name = review.stack_name
        since = self._latest_event_id(stack_name) if review.change_set_type == "UPDATE" else None
        try:
            if self._direct:
                self._execute_directly(review, template_body, parameters, tags, template_url)
            else:
                self._cfn.execute_change_set(ChangeSetName=review.change_set_id)
        except ClientError as exc:
            if is_error(exc, "ValidationError"):
                raise _refused(stack_name, exc) from exc
            raise
        final = yield from self._follow(stack_name, since)
        if final not in _SUCCESS:
            raise self._failure(stack_name, final, since)

    def _execute_directly(
        self,
        review: ChangeSetReview,
        template_body: str,
        parameters: Mapping[str, str],
        tags: Mapping[str, str],
        template_url: str = "",
    ) -> None:
        self.discard(review)
        kwargs = _stack_inputs(review.stack_name, template_body, parameters, tags, template_url)
        if review.change_set_type == "CREATE":
            self._cfn.create_stack(**kwargs)
        else:
            self._cfn.update_stack(**kwargs)

    def _follow(self, stack_name: str, since: str | None) -> Generator[StackEvent, None, str]:
        """Yield new events until the stack leaves ``*_IN_PROGRESS``; return the final status."""
        last = since
        while True:
            stack = self.describe(stack_name)
            status = stack.status if stack else "DELETE_COMPLETE"
            fresh = self.events(stack_name, since_id=last) if stack else []
            if fresh:
                yield from fresh
                last = fresh[-1].event_id or last
            if not status.endswith("_IN_PROGRESS"):
                return status
            self._sleep(self._poll)

    def _failure(self, stack_name: str, status: str, since: str | None) -> DeployError:
        failures = [e for e in self.events(stack_name, since_id=since) if e.failed]
        if failures:
            first = failures[0]
            where = f"{first.logical_id} ({first.resource_type}): {first.reason or first.status}"
        else:
            where = "CloudFormation gave no resource failure"
        advice = (
            "Delete it with `spotops destroy` and deploy again."
            if status == "ROLLBACK_COMPLETE"
            else "The stack was rolled back to its previous state; fix the cause and deploy again."
        )
        return DeployError(
            f"Stack {stack_name} ended in {status}. First failure: {where}. {advice}"
        )

    # ---- deletion -------------------------------------------------------------------

    def delete(self, stack_name: str) -> Iterator[StackEvent]:
        """Delete the stack and yield its events until it is gone."""
        since = self._latest_event_id(stack_name)
        self._cfn.delete_stack(StackName=stack_name)
        final = yield from self._follow_delete(stack_name, since)
        if final != "DELETE_COMPLETE":
            failures = [e for e in self.events(stack_name, since_id=since) if e.failed]
            cause = (
                f" First failure: {failures[0].logical_id} ({failures[0].resource_type}): "
                f"{failures[0].reason}."
                if failures
                else ""
            )
            raise DeployError(
                f"Deleting {stack_name} ended in {final}.{cause} Fix the cause (e.g. empty the "
                "image repository with --empty-repository) and run destroy again."
            )

    def _follow_delete(
        self, stack_name: str, since: str | None
    ) -> Generator[StackEvent, None, str]:
        last = since
        while True:
            stack = self.describe(stack_name)
            if stack is None or stack.status == "DELETE_COMPLETE":
                return "DELETE_COMPLETE"
            fresh = self.events(stack_name, since_id=last)
            if fresh:
                yield from fresh
                last = fresh[-1].event_id or last
            if not stack.status.endswith("_IN_PROGRESS"):
                return stack.status
            self._sleep(self._poll)


def _stack_inputs(
    stack_name: str,
    template_body: str,
    parameters: Mapping[str, str],
    tags: Mapping[str, str],
    template_url: str = "",
) -> dict[str, Any]:
    """What a change set and a direct CreateStack/UpdateStack are both given: the template
    from S3 when it has a URL (over 51,200 bytes), else inline.

    Raises
    ------
    LimitError
        An inline template over CloudFormation's limit (the caller should have sent a URL).
    """
    if not template_url:
        limits.refuse(
            limits.template_source_breaches(template_body, by_url=False, subject=stack_name),
            before=f"sending the template of {stack_name}",
        )
    source = {"TemplateURL": template_url} if template_url else {"TemplateBody": template_body}
    return {
        "StackName": stack_name,
        **source,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Capabilities": CAPABILITIES,
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }


def _refused(stack_name: str, exc: ClientError) -> Exception:
    """CloudFormation's ValidationError: it refused the template or the parameters. (A stack
    in a state that blocks the change is caught before, from its status.)"""
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return ParameterError(
        f"CloudFormation refused the template or parameters of {stack_name}: {message}. Fix "
        "them in config/<stage>.json or with --param Key=Value."
    )
