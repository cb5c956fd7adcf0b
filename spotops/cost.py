"""Monthly cost estimate of a stage, from a price table kept as data.

:func:`estimate` is a pure function of the template parameters, the usage assumptions and
the price table, so it is tested against hand-computed figures. The price table
(``spotops/data/prices.json``) records its region, sources and the date the figures were
taken.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from spotops.errors import ConfigError


@dataclass(frozen=True)
class PriceTable:
    """Unit prices, default usage assumptions, and where the figures come from."""

    region: str
    currency: str
    taken_on: str
    hours_per_month: float
    prices: dict[str, float]
    assumptions: dict[str, float]
    sources: dict[str, str] = field(default_factory=dict)
    assumption_notes: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PriceTable:
        return cls(
            region=str(raw["region"]),
            currency=str(raw.get("currency", "USD")),
            taken_on=str(raw["taken_on"]),
            hours_per_month=float(raw.get("hours_per_month", 730)),
            prices={k: float(v) for k, v in raw["prices"].items()},
            assumptions={k: float(v) for k, v in raw.get("assumptions", {}).items()},
            sources=dict(raw.get("sources", {})),
            assumption_notes=dict(raw.get("assumption_notes", {})),
            note=str(raw.get("note", "")),
        )


def load_price_table(path: Path | None = None) -> PriceTable:
    """Read the price table (the packaged ``data/prices.json`` by default)."""
    try:
        if path is None:
            text = resources.files("spotops").joinpath("data/prices.json").read_text()
        else:
            text = path.read_text()
        return PriceTable.from_dict(json.loads(text))
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"Cannot read the price table: {exc}") from exc


@dataclass(frozen=True)
class LineItem:
    """One row of the estimate."""

    name: str
    detail: str
    monthly: float


@dataclass(frozen=True)
class Estimate:
    items: tuple[LineItem, ...]
    region: str
    currency: str
    taken_on: str
    usage: dict[str, float]

    @property
    def total(self) -> float:
        return sum(item.monthly for item in self.items)


def _flag(parameters: Mapping[str, str], name: str, default: bool = False) -> bool:
    return parameters.get(name, "true" if default else "false").strip().lower() == "true"


def _int(parameters: Mapping[str, str], name: str, default: int) -> int:
    raw = parameters.get(name, "")
    return int(raw) if raw.strip() else default


def task_split(
    count: int, base: int, on_demand_weight: int, spot_weight: int
) -> tuple[float, float]:
    """Tasks on FARGATE and on FARGATE_SPOT for a capacity provider strategy.

    The ``base`` tasks go on demand first; the rest are shared by weight.

    Example
    -------
    >>> task_split(4, 1, 1, 2)
    (2.0, 2.0)
    """
    if on_demand_weight + spot_weight <= 0:
        raise ValueError("OnDemandWeight + SpotWeight must be positive")
    first = min(base, count)
    rest = count - first
    on_demand = first + rest * on_demand_weight / (on_demand_weight + spot_weight)
    return float(on_demand), float(count - on_demand)


def estimate(
    parameters: Mapping[str, str], usage: Mapping[str, float], prices: PriceTable
) -> Estimate:
    """The monthly estimate for one stage.

    Parameters
    ----------
    parameters:
        Template parameters (``NatMode``, ``TaskCpu``, ``DesiredCount``...); missing ones
        take the template contract's defaults.
    usage:
        Overrides of the price table's usage assumptions (``availability_zones``...).
    prices:
        The price table.

    Returns
    -------
    Estimate
        Line items (zero-cost items left out) and their total.
    """
    p = prices.prices
    u = {**prices.assumptions, **usage}
    hours = prices.hours_per_month
    azs = int(u["availability_zones"])
    items: list[LineItem] = []

    def add(name: str, detail: str, monthly: float) -> None:
        if monthly > 0:
            items.append(LineItem(name, detail, monthly))

    # Fargate: tasks at the desired count (clamped to the autoscaling range when on).
    cpu_units = _int(parameters, "TaskCpu", 256)
    memory_mb = _int(parameters, "TaskMemory", 512)
    tasks = _int(parameters, "DesiredCount", 2)
    autoscaling = _flag(parameters, "EnableAutoScaling")
    if autoscaling:
        tasks = max(
            _int(parameters, "MinTasks", tasks), min(tasks, _int(parameters, "MaxTasks", tasks))
        )
    on_demand, spot = task_split(
        tasks,
        _int(parameters, "OnDemandBase", 0),
        _int(parameters, "OnDemandWeight", 0),
        _int(parameters, "SpotWeight", 1),
    )
    vcpu, gb = cpu_units / 1024, memory_mb / 1024
    task_month = (vcpu * p["fargate_vcpu_hour"] + gb * p["fargate_gb_hour"]) * hours
    size = f"{vcpu:g} vCPU / {gb:g} GB"
    add("Fargate on-demand", f"{on_demand:g} task(s) x {size}", on_demand * task_month)
    spot_rate = 1 - p["fargate_spot_discount"]
    add(
        "Fargate Spot",
        f"{spot:g} task(s) x {size} at {spot_rate:.0%} of on-demand",
        spot * task_month * spot_rate,
    )

    # Load balancer.
    add("Application Load Balancer", f"{hours:g} h", p["alb_hour"] * hours)
    add(
        "ALB capacity units",
        f"{u['alb_lcu']:g} LCU average",
        u["alb_lcu"] * p["alb_lcu_hour"] * hours,
    )

    # NAT gateways by mode.
    nat_mode = parameters.get("NatMode", "none")
    nats = {"none": 0, "single": 1, "per-az": azs}.get(nat_mode, 0)
    add(
        "NAT gateways",
        f"{nats} x {hours:g} h (NatMode={nat_mode})",
        nats * p["nat_gateway_hour"] * hours,
    )
    if nats:
        add(
            "NAT data processed",
            f"{u['nat_gb_per_month']:g} GB",
            u["nat_gb_per_month"] * p["nat_gateway_gb"],
        )

    # Public IPv4: one per ALB node (AZ), one per NAT gateway, one per task in public subnets.
    public_tasks = tasks if nat_mode == "none" else 0
    addresses = azs + nats + public_tasks
    add(
        "Public IPv4 addresses",
        f"{addresses} ({azs} ALB, {nats} NAT, {public_tasks} task)",
        addresses * p["public_ipv4_hour"] * hours,
    )

    # Interface endpoints, each in every AZ.
    if _flag(parameters, "CreateInterfaceEndpoints"):
        services = int(u["interface_endpoint_services"])
        add(
            "Interface endpoints",
            f"{services} services x {azs} AZs",
            services * azs * p["interface_endpoint_az_hour"] * hours,
        )
        add(
            "Interface endpoint data",
            f"{u['interface_endpoint_gb_per_month']:g} GB",
            u["interface_endpoint_gb_per_month"] * p["interface_endpoint_gb"],
        )

    # Observability and secrets.
    add(
        "CloudWatch alarms",
        f"{u['alarms']:g} standard alarms",
        u["alarms"] * p["cloudwatch_alarm_month"],
    )
    add(
        "CloudWatch Logs ingestion",
        f"{u['log_ingestion_gb_per_month']:g} GB",
        u["log_ingestion_gb_per_month"] * p["logs_ingestion_gb"],
    )
    add(
        "Secrets Manager",
        f"{u['secrets']:g} secret(s)",
        u["secrets"] * p["secrets_manager_secret_month"],
    )

    if _flag(parameters, "CreateWaf"):
        add(
            "WAF",
            f"1 web ACL, {u['waf_rules']:g} rules, {u['requests_millions_per_month']:g} M requests",
            p["waf_web_acl_month"]
            + u["waf_rules"] * p["waf_rule_month"]
            + u["requests_millions_per_month"] * p["waf_million_requests"],
        )

    return Estimate(
        items=tuple(items),
        region=prices.region,
        currency=prices.currency,
        taken_on=prices.taken_on,
        usage=u,
    )
