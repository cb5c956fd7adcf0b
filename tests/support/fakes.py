"""In-memory fakes shared by several test files: no network, no AWS."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Call:
    args: list[str]
    input_text: str | None
    cwd: Path | None


@dataclass
class FakeRunner:
    """Records commands; answers from ``responses`` keyed by the command's first words."""

    responses: dict[tuple[str, ...], tuple[int, str, str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    on_call: Any = None

    def __call__(self, args, *, input_text=None, cwd=None, env=None):
        from spotops.commands import CommandResult

        self.calls.append(Call(list(args), input_text, cwd))
        if self.on_call:
            self.on_call(list(args))
        for size in (3, 2, 1):
            key = tuple(args[:size])
            if key in self.responses:
                return CommandResult(*self.responses[key])
        return CommandResult(0, "", "")

    def commands(self) -> list[str]:
        return [" ".join(c.args[:2]) for c in self.calls]


class FakeCloudFormation:
    """Enough of the CloudFormation API for :class:`StackDeployer`'s logic."""

    def __init__(self) -> None:
        self.stacks: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}  # newest first, like the API
        self.change_set: dict[str, Any] = {"Status": "CREATE_COMPLETE", "Changes": []}
        self.create_error: Exception | None = None
        self.after_execute: str = "UPDATE_COMPLETE"
        self.deleted_change_sets: list[str] = []
        self.executed: list[str] = []
        self.deleted_stacks: list[str] = []
        self.execute_events: list[dict[str, Any]] = []
        self.interrupt_on_describe = False

    def add_stack(self, name: str, status: str, outputs: dict[str, str] | None = None) -> None:
        self.stacks[name] = {
            "StackName": name,
            "StackStatus": status,
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in (outputs or {}).items()],
        }
        self.events.setdefault(name, [])

    def add_event(
        self,
        name: str,
        logical: str,
        status: str,
        reason: str = "",
        rtype: str = "AWS::EC2::Subnet",
    ) -> None:
        events = self.events.setdefault(name, [])
        events.insert(
            0,
            {
                "EventId": f"e{len(events) + 1}",
                "StackName": name,
                "LogicalResourceId": logical,
                "ResourceType": rtype,
                "ResourceStatus": status,
                "ResourceStatusReason": reason,
            },
        )

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        if self.interrupt_on_describe and StackName in self.executed:
            raise KeyboardInterrupt
        if StackName not in self.stacks:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationError",
                        "Message": f"Stack with id {StackName} does not exist",
                    }
                },
                "DescribeStacks",
            )
        return {"Stacks": [self.stacks[StackName]]}

    def describe_stack_events(self, StackName: str, **_: Any) -> dict[str, Any]:
        return {"StackEvents": list(self.events.get(StackName, []))}

    def create_change_set(self, **kwargs: Any) -> dict[str, Any]:
        if self.create_error:
            raise self.create_error
        self.last_create = kwargs
        return {"Id": "arn:change-set/1", "StackId": "arn:stack/1"}

    def describe_change_set(self, ChangeSetName: str, **_: Any) -> dict[str, Any]:
        return dict(self.change_set)

    def delete_change_set(self, ChangeSetName: str) -> None:
        self.deleted_change_sets.append(ChangeSetName)

    def execute_change_set(self, ChangeSetName: str) -> None:
        name = self.last_create["StackName"]
        self.executed.append(name)
        for event in self.execute_events:
            self.add_event(name, **event)
        self.stacks.setdefault(name, {"StackName": name, "Outputs": []})["StackStatus"] = (
            self.after_execute
        )

    def delete_stack(self, StackName: str) -> None:
        self.deleted_stacks.append(StackName)
        self.stacks.pop(StackName, None)
