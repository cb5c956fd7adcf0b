"""cfn-lint rule E9002: every taggable resource carries the spotops app and stage tags.

A resource type is taggable when its CloudFormation resource schema says so
(``tagging.taggable``). Its tag property must hold ``spotops:app`` = ``!Ref AppName`` and
``spotops:stage`` = ``!Ref StageName``; a template shared by every stage (it declares no
``StageName``, as the bootstrap bucket's) carries only ``spotops:app``. A resource that cannot
carry tags for a reason outside our control says why in
``Metadata: {spotops: {untagged: <reason>}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

REQUIRED_TAGS = {"spotops:app": "AppName", "spotops:stage": "StageName"}


def tag_property(resource_type: str, region: str) -> str | None:
    """Return the name of the tag property of a taggable type, else ``None``."""
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except Exception:  # unknown or custom type: nothing to check
        return None
    tagging = schema.get("tagging") or {}
    if not tagging.get("taggable"):
        return None
    pointer = tagging.get("tagProperty", "/properties/Tags")
    return pointer.rsplit("/", 1)[-1]


def tag_problems(value: Any, required: dict[str, str] | None = None) -> list[str]:
    """Return what is wrong with a tag value (list of Key/Value, a map, or an Fn::If).

    ``required`` maps tag keys to the parameter each must reference (default: both).
    """
    required = REQUIRED_TAGS if required is None else required
    if isinstance(value, dict) and list(value) == ["Fn::If"]:
        branches = value["Fn::If"][1:]
        return [problem for branch in branches for problem in tag_problems(branch, required)]
    if isinstance(value, list):
        tags = {t.get("Key"): t.get("Value") for t in value if isinstance(t, dict)}
    elif isinstance(value, dict):
        tags = dict(value)
    else:
        tags = {}
    problems = []
    for key, parameter in required.items():
        if key not in tags:
            problems.append(f"missing tag {key}")
        elif tags[key] != {"Ref": parameter}:
            problems.append(f"tag {key} must be !Ref {parameter}")
    return problems


class SpotopsTags(CloudFormationLintRule):
    """Every taggable resource carries ``spotops:app`` and ``spotops:stage``."""

    id = "E9002"
    shortdesc = "Taggable resources carry the spotops tags"
    description = (
        "Every resource whose type supports tags has spotops:app (!Ref AppName) and "
        "spotops:stage (!Ref StageName), unless Metadata.spotops.untagged gives a reason"
    )
    source_url = "https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html"
    tags: ClassVar[list[str]] = ["resources", "tags", "spotops"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        region = cfn.regions[0] if getattr(cfn, "regions", None) else "us-east-1"
        declared = (cfn.template.get("Parameters") or {}) if hasattr(cfn, "template") else {}
        required = {
            key: parameter
            for key, parameter in REQUIRED_TAGS.items()
            if parameter in declared or parameter == "AppName"
        }
        for name, resource in cfn.get_resources().items():
            prop = tag_property(resource.get("Type", ""), region)
            if prop is None:
                continue
            metadata = resource.get("Metadata") or {}
            exemption = (metadata.get("spotops") or {}).get("untagged")
            if isinstance(exemption, str) and exemption.strip():
                continue
            properties = resource.get("Properties") or {}
            matches.extend(
                RuleMatch(["Resources", name, "Properties", prop], f"{name}: {problem}")
                for problem in tag_problems(properties.get(prop), required)
            )
        return matches
