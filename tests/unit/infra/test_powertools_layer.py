"""The Powertools layer the ops functions load is the one AWS published for the pinned version.

``ops_lambdas/requirements-runtime.txt`` pins aws-lambda-powertools (what every test runs);
``spotops/data/powertools_layers.json`` says which version of AWS's public layer holds each
release, with its source; ``PowertoolsLayerVersion`` in ``ops.yaml`` is the layer Lambda loads.
The three must agree, and a pin without a row fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.templates import load

REPO = Path(__file__).resolve().parents[3]
PINS = REPO / "ops_lambdas" / "requirements-runtime.txt"
TABLE = REPO / "spotops" / "data" / "powertools_layers.json"
PIN = re.compile(r"^aws-lambda-powertools(\[[^\]]*\])?\s*(?P<op>[=<>!~]=?=?)\s*(?P<version>\S+)")


def pinned_version(text: str) -> str:
    """The aws-lambda-powertools version a requirements file pins exactly."""
    found = [m for line in text.splitlines() if (m := PIN.match(line.strip()))]
    assert len(found) == 1, "one aws-lambda-powertools line"
    assert found[0]["op"] == "==", "an exact pin: a range names no single layer"
    return found[0]["version"]


def disagreements(pin: str, table: dict[str, Any], default: int) -> list[str]:
    """Why the default layer does not hold the pinned version (empty when it does)."""
    row = table["versions"].get(pin)
    if row is None:
        return [
            f"aws-lambda-powertools {pin} (the pin) has no row in {TABLE.name}: add the layer "
            "AWS published for it, with its source"
        ]
    if row["layer_version"] is None:
        return [
            f"the layer of aws-lambda-powertools {pin} (the pin) is not confirmed "
            f"({row['source']}); the default {default} holds another version"
        ]
    if row["layer_version"] != default:
        return [
            f"ops.yaml's PowertoolsLayerVersion default is {default}, but "
            f"aws-lambda-powertools {pin} (the pin) is layer {row['layer_version']}"
        ]
    return []


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _table() -> dict[str, Any]:
    return dict(json.loads(TABLE.read_text()))


def _parameter() -> dict[str, Any]:
    return dict(load("ops")["Parameters"]["PowertoolsLayerVersion"])


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    if isinstance(node, dict):
        return [s for item in node.values() for s in _strings(item)]
    return []


def _pin_row_unconfirmed() -> bool:
    row = _table()["versions"].get(pinned_version(PINS.read_text()))
    return row is not None and row["layer_version"] is None


# ---- the real pin, table and template ---------------------------------------------------


def test_the_pin_has_a_row_with_its_source() -> None:
    pin = pinned_version(PINS.read_text())
    row = _table()["versions"].get(pin)
    assert row is not None, f"aws-lambda-powertools {pin} (the pin) has no row in {TABLE}"
    assert row["source"].strip()


@pytest.mark.xfail(
    condition=_pin_row_unconfirmed(),
    strict=True,
    reason=(
        "no public source names the layer of the pinned aws-lambda-powertools, so the default "
        "is not yet its layer; confirm it on an account (the table's how_to_check), fill in "
        "the row and the default"
    ),
)
def test_the_default_layer_is_the_one_published_for_the_pin() -> None:
    pin = pinned_version(PINS.read_text())
    default = int(_parameter()["Default"])
    assert disagreements(pin, _table(), default) == []


def test_the_default_is_a_confirmed_layer_and_its_description_says_which_version() -> None:
    parameter = _parameter()
    default = int(parameter["Default"])
    holds = [v for v, row in _table()["versions"].items() if row["layer_version"] == default]
    assert holds, f"the default {default} is no confirmed layer in {TABLE.name}: no guesses"
    (version,) = holds
    assert f"Default is {default}, the layer of {version}" in parameter["Description"]


def test_the_table_describes_the_layer_ops_yaml_loads() -> None:
    table = _table()
    arns = [
        arn
        for resource in load("ops")["Resources"].values()
        for arn in _strings(resource.get("Properties", {}).get("Layers", []))
        if ":layer:" in arn
    ]
    assert arns, "ops.yaml loads AWS's public Powertools layer"
    account_and_name = ":".join(table["layer_arn"].split(":")[4:])
    for arn in arns:
        assert f":{account_and_name}:" in arn


def test_every_row_has_a_source_and_newer_releases_have_newer_layers() -> None:
    rows = _table()["versions"]
    assert rows
    confirmed = []
    for version, row in rows.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
        assert row["source"].strip(), version
        layer = row["layer_version"]
        assert layer is None or (isinstance(layer, int) and layer >= 1), version
        if layer is not None:
            confirmed.append((_version_key(version), layer))
    # A layer version is published per release, so a typo that breaks the order shows here.
    confirmed.sort()
    layers = [layer for _, layer in confirmed]
    assert layers == sorted(set(layers)), confirmed


# ---- the comparison itself ----------------------------------------------------------------

TABLE_27 = {"versions": {"3.23.0": {"layer_version": 27, "source": "docs"}}}


@pytest.mark.parametrize(
    ("pin", "table", "default", "reason"),
    [
        ("3.23.0", TABLE_27, 27, None),
        ("3.23.0", TABLE_27, 26, "default is 26, but aws-lambda-powertools 3.23.0"),
        ("3.23.0", TABLE_27, 28, "default is 28, but aws-lambda-powertools 3.23.0"),
        ("3.23.1", TABLE_27, 27, "3.23.1 (the pin) has no row"),
        (
            "3.24.0",
            {"versions": {"3.24.0": {"layer_version": None, "source": "not confirmed"}}},
            27,
            "is not confirmed (not confirmed); the default 27",
        ),
    ],
)
def test_a_pin_the_table_and_the_default_that_disagree_are_named(
    pin: str, table: dict[str, Any], default: int, reason: str | None
) -> None:
    found = disagreements(pin, table, default)
    if reason is None:
        assert found == []
    else:
        assert len(found) == 1
        assert reason in found[0]


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("# layer\naws-lambda-powertools==3.37.0\naws-xray-sdk==2.15.0\n", "3.37.0"),
        ("aws-lambda-powertools[tracer] == 3.2.0\n", "3.2.0"),
    ],
)
def test_the_pin_is_read_from_the_requirements_file(text: str, version: str) -> None:
    assert pinned_version(text) == version


@pytest.mark.parametrize(
    "text", ["aws-lambda-powertools>=3.37.0\n", "aws-xray-sdk==2.15.0\n", "aws-lambda-powertools\n"]
)
def test_a_range_or_a_missing_pin_names_no_layer(text: str) -> None:
    with pytest.raises(AssertionError):
        pinned_version(text)
