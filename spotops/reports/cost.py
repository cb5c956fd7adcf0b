"""Monthly cost estimate of a stage, from the templates and a price table kept as data.

Two steps, both pure:

* :func:`inventory` reads the templates (network, site and the ops merge template) with the
  stage's parameters, conditions evaluated, and counts what they create: NAT gateways,
  interface endpoints, alarm metrics (metric-math and anomaly-detection alarms by their
  metrics, target-tracking policies by the two alarms each makes), dashboards, KMS keys,
  Container Insights, secrets, the tasks and where they run, and what sidecars reserve of
  each task.
* :func:`peak_vcpu` works out the most vCPU the service can run at once, on demand and on
  Spot, to compare with the account's Fargate vCPU quotas.
* :func:`estimate` prices that inventory with the usage assumptions (log volume, LCUs, data
  transfer...) of the price table, which ``config/<stage>.json`` can override under
  ``estimate``.

The price table (``spotops/data/prices.json``) records its region, sources and the date the
figures were taken. List prices; AWS's always-free allowances are worked out separately
(:attr:`Estimate.free_tier`), never taken off the total.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from spotops.errors import ConfigError, UsageError
from spotops.stage.templates import TemplateLogic, effective_values, template_parameters


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
    free_tier: dict[str, float] = field(default_factory=dict)
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
            free_tier={k: float(v) for k, v in raw.get("free_tier", {}).items()},
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
    # What AWS's always-free allowances would take off when nothing else in the account
    # uses them; never subtracted from the total.
    free_tier: float = 0.0
    # The part of the Fargate lines that pays for what sidecars reserve of each task (Fargate
    # bills the task's size, whoever inside uses it); already in the total.
    sidecar_monthly: float = 0.0
    peak: VcpuPeak | None = None

    @property
    def total(self) -> float:
        return sum(item.monthly for item in self.items)


# ---- the most vCPU a stage can run --------------------------------------------------

# The account's per-region Service Quotas that Fargate tasks count against (vCPUs of running
# tasks, every service of the account together); codes for `aws service-quotas
# get-service-quota --service-code fargate --quota-code <code>`.
ON_DEMAND_QUOTA = ("Fargate On-Demand vCPU resource count", "L-3032A538")
SPOT_QUOTA = ("Fargate Spot vCPU resource count", "L-36FBB829")
TRAFFIC_SHIFTING = ("CANARY", "LINEAR")


@dataclass(frozen=True)
class VcpuPeak:
    """The most tasks and vCPU a service runs at once: during a deployment at its largest
    steady count, split by its capacity provider strategy."""

    steady_tasks: int
    steady_source: str
    strategy: str
    maximum_percent: int
    tasks: int
    task_vcpu: float
    # Each an upper bound: ECS shares the tasks beyond the base by weight in whole tasks, and
    # rounds a share that is not whole one way or the other.
    on_demand_tasks: int
    spot_tasks: int

    @property
    def vcpu(self) -> float:
        return self.tasks * self.task_vcpu

    @property
    def on_demand_vcpu(self) -> float:
        return self.on_demand_tasks * self.task_vcpu

    @property
    def spot_vcpu(self) -> float:
        return self.spot_tasks * self.task_vcpu


def peak_vcpu(
    *,
    steady_tasks: int,
    steady_source: str,
    task_cpu: int,
    strategy: str,
    maximum_percent: int,
    base: int,
    on_demand_weight: int,
    spot_weight: int,
) -> VcpuPeak:
    """The most vCPU a service of ``steady_tasks`` tasks of ``task_cpu`` units can need.

    CANARY and LINEAR start the new revision at full size beside the old one, so both run
    until the bake time ends: twice the tasks. ROLLING starts new tasks up to
    ``maximum_percent`` of the desired count, rounded down (and never below the count
    itself). The ``base`` tasks run on FARGATE first (ECS keeps the base for each service);
    the rest are shared by weight, each side rounded up, since either may get the odd task.

    Example
    -------
    >>> p = peak_vcpu(steady_tasks=12, steady_source="MaxTasks", task_cpu=512,
    ...               strategy="CANARY", maximum_percent=200, base=1,
    ...               on_demand_weight=1, spot_weight=3)
    >>> (p.tasks, p.vcpu, p.on_demand_tasks, p.spot_tasks)
    (24, 12.0, 7, 18)
    """
    if on_demand_weight + spot_weight <= 0:
        raise UsageError(
            "OnDemandWeight and SpotWeight must not both be 0; set SpotWeight (or "
            "OnDemandWeight) to 1 or more."
        )
    if strategy in TRAFFIC_SHIFTING:
        tasks = 2 * steady_tasks
    else:
        # Whole numbers: ECS rounds down, and in floats 100 x 1.15 is 114.99..., a task short.
        tasks = max(steady_tasks, steady_tasks * maximum_percent // 100)
    first = min(base, tasks)
    rest = tasks - first
    weights = on_demand_weight + spot_weight
    return VcpuPeak(
        steady_tasks=steady_tasks,
        steady_source=steady_source,
        strategy=strategy,
        maximum_percent=maximum_percent,
        tasks=tasks,
        task_vcpu=task_cpu / 1024,
        on_demand_tasks=first + math.ceil(rest * on_demand_weight / weights),
        spot_tasks=math.ceil(rest * spot_weight / weights),
    )


# ---- what the templates create ---------------------------------------------------------


@dataclass(frozen=True)
class Sidecar:
    """A non-essential container of the site task and what it reserves of every task."""

    name: str
    cpu: int
    memory: int


@dataclass(frozen=True)
class Inventory:
    """What a stage's templates create, as far as the bill is concerned."""

    zones: int = 3
    task_cpu: int = 256
    task_memory: int = 512
    tasks: int = 2
    on_demand_tasks: float = 0.0
    spot_tasks: float = 2.0
    public_task_addresses: int = 2
    nat_gateways: int = 0
    interface_endpoints: int = 0
    load_balancers: int = 1
    alarms: int = 0
    alarm_metrics: int = 0
    high_resolution_alarm_metrics: int = 0
    composite_alarms: int = 0
    target_tracking_alarms: int = 0
    dashboards: int = 0
    kms_keys: int = 0
    container_insights_services: int = 0
    web_acls: int = 0
    waf_rules: int = 0
    secrets: int = 0
    functions: int = 0
    tables: int = 0
    queues: int = 0
    log_retention_days: int = 30
    sidecars: tuple[Sidecar, ...] = ()
    peak: VcpuPeak | None = None


def _number(values: Mapping[str, str], name: str, default: int) -> int:
    raw = str(values.get(name, "")).strip()
    if not raw:
        return default
    try:
        number = int(float(raw))
    except ValueError:
        raise UsageError(f"{name} must be a number, not {raw!r}.") from None
    if number < 0:
        raise UsageError(f"{name} must not be negative, not {raw}.")
    return number


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
        raise UsageError(
            "OnDemandWeight and SpotWeight must not both be 0; set SpotWeight (or "
            "OnDemandWeight) to 1 or more."
        )
    first = min(base, count)
    rest = count - first
    on_demand = first + rest * on_demand_weight / (on_demand_weight + spot_weight)
    return float(on_demand), float(count - on_demand)


def _alarm_metrics(properties: Mapping[str, Any]) -> tuple[int, bool]:
    """How many metrics an alarm is billed for, and whether at high resolution.

    A plain alarm watches one metric. A metric-math alarm is billed for each metric its
    expression reads; an anomaly-detection alarm for three (the metric and the two bands).
    """
    metrics = properties.get("Metrics")
    if not metrics:
        period = int(properties.get("Period", 60) or 60)
        return 1, period < 60
    stats = [m for m in metrics if "MetricStat" in m]
    bands = [m for m in metrics if "ANOMALY_DETECTION_BAND" in str(m.get("Expression", ""))]
    periods = [int(m["MetricStat"].get("Period", 60) or 60) for m in stats]
    return max(len(stats), 1) + 2 * len(bands), bool(periods) and min(periods) < 60


def inventory(
    templates: Mapping[str, Mapping[str, Any]], parameters: Mapping[str, str]
) -> Inventory:
    """Count what ``templates`` (by part: ``network``, ``site``, ``ops``) create for
    ``parameters`` (the stage's, checked against the templates beforehand).

    Raises
    ------
    UsageError
        A parameter the estimate needs is not a number, or is negative.
    """
    # Priced as the stage runs once an image is pushed (autoscaling exists only then).
    parameters = {**parameters, "ImageUri": parameters.get("ImageUri") or "<the running image>"}
    counts: dict[str, int] = {}
    values: dict[str, str] = {}
    sidecars: list[Sidecar] = []
    # The service's largest steady count and deployment configuration, as the templates set
    # them: MaxCapacity of a scalable target, else the service's DesiredCount.
    max_capacity: int | None = None
    desired: int | None = None
    deployment: dict[str, Any] = {}
    for part, template in templates.items():
        declared = template_parameters(template)
        for name, value in effective_values(declared, parameters).items():
            values.setdefault(name, value)  # the first template declaring it decides
        logic = TemplateLogic(template, parameters)
        for resource in logic.resources().values():
            kind = str(resource.get("Type", ""))
            # As CloudFormation sends them: conditional properties (Fn::If) chosen.
            props = logic.choose(resource.get("Properties") or {})
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "AWS::CloudWatch::Alarm":
                metrics, high = _alarm_metrics(props)
                key = "high_resolution_alarm_metrics" if high else "alarm_metrics"
                counts[key] = counts.get(key, 0) + metrics
            elif kind == "AWS::ApplicationAutoScaling::ScalingPolicy":
                if props.get("PolicyType") == "TargetTrackingScaling":
                    counts["target_tracking_alarms"] = counts.get("target_tracking_alarms", 0) + 2
            elif kind == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType") == "Interface":
                counts["interface_endpoints"] = counts.get("interface_endpoints", 0) + 1
            elif kind == "AWS::ECS::Cluster":
                settings = {
                    s.get("Name"): logic.value(s.get("Value"))
                    for s in props.get("ClusterSettings", [])
                }
                if settings.get("containerInsights") in {"enabled", "enhanced"}:
                    counts["insights"] = counts.get("insights", 0) + 1
            elif kind == "AWS::ApplicationAutoScaling::ScalableTarget":
                max_capacity = int(logic.value(props["MaxCapacity"]))
            elif kind == "AWS::ECS::Service":
                desired = int(logic.value(props.get("DesiredCount", 1)))
                deployment = dict(props.get("DeploymentConfiguration") or {})
                deployment["Strategy"] = logic.value(deployment.get("Strategy", "ROLLING"))
                deployment["MaximumPercent"] = logic.value(deployment.get("MaximumPercent", 200))
            elif kind == "AWS::ECS::TaskDefinition":
                sidecars += [
                    Sidecar(
                        name=str(c.get("Name", "")),
                        cpu=int(logic.value(c.get("Cpu", 0))),
                        memory=int(logic.value(c.get("MemoryReservation", c.get("Memory", 0)))),
                    )
                    for c in props.get("ContainerDefinitions", [])
                    if str(logic.value(c.get("Essential", True))).lower() == "false"
                ]
            elif kind == "AWS::WAFv2::WebACL":
                counts["waf_rules"] = counts.get("waf_rules", 0) + len(props.get("Rules", []))
            elif part == "ops" and "Type" not in resource and "FunctionName" in props:
                # ops.yaml completes Chalice's functions under their logical IDs, untyped.
                counts["functions"] = counts.get("functions", 0) + 1
    zones = _number(values, "ZoneCount", 3)
    tasks = _number(values, "DesiredCount", 2)
    if values.get("EnableAutoScaling", "false").lower() == "true":
        tasks = max(
            _number(values, "MinTasks", tasks), min(tasks, _number(values, "MaxTasks", tasks))
        )
    on_demand, spot = task_split(
        tasks,
        _number(values, "OnDemandBase", 0),
        _number(values, "OnDemandWeight", 0),
        _number(values, "SpotWeight", 1),
    )
    public_tasks = tasks if values.get("NatMode", "none") == "none" else 0
    peak = None
    if desired is not None:
        peak = peak_vcpu(
            steady_tasks=desired if max_capacity is None else max_capacity,
            steady_source="DesiredCount" if max_capacity is None else "MaxTasks",
            task_cpu=_number(values, "TaskCpu", 256),
            strategy=str(deployment["Strategy"]),
            maximum_percent=int(deployment["MaximumPercent"]),
            base=_number(values, "OnDemandBase", 0),
            on_demand_weight=_number(values, "OnDemandWeight", 0),
            spot_weight=_number(values, "SpotWeight", 1),
        )
    services = counts.get("AWS::ECS::Service", 0)
    return Inventory(
        zones=zones,
        task_cpu=_number(values, "TaskCpu", 256),
        task_memory=_number(values, "TaskMemory", 512),
        tasks=tasks,
        on_demand_tasks=on_demand,
        spot_tasks=spot,
        public_task_addresses=public_tasks,
        nat_gateways=counts.get("AWS::EC2::NatGateway", 0),
        interface_endpoints=counts.get("interface_endpoints", 0),
        load_balancers=counts.get("AWS::ElasticLoadBalancingV2::LoadBalancer", 0),
        alarms=counts.get("AWS::CloudWatch::Alarm", 0),
        alarm_metrics=counts.get("alarm_metrics", 0),
        high_resolution_alarm_metrics=counts.get("high_resolution_alarm_metrics", 0),
        composite_alarms=counts.get("AWS::CloudWatch::CompositeAlarm", 0),
        target_tracking_alarms=counts.get("target_tracking_alarms", 0),
        dashboards=counts.get("AWS::CloudWatch::Dashboard", 0),
        kms_keys=counts.get("AWS::KMS::Key", 0),
        container_insights_services=services if counts.get("insights") else 0,
        web_acls=counts.get("AWS::WAFv2::WebACL", 0),
        waf_rules=counts.get("waf_rules", 0),
        secrets=counts.get("AWS::SecretsManager::Secret", 0),
        functions=counts.get("functions", 0) + counts.get("AWS::Lambda::Function", 0),
        tables=counts.get("AWS::DynamoDB::Table", 0),
        queues=counts.get("AWS::SQS::Queue", 0),
        log_retention_days=_number(values, "LogRetentionDays", 30),
        sidecars=tuple(sidecars),
        peak=peak,
    )


# ---- the estimate ----------------------------------------------------------------------


def check_usage(usage: Mapping[str, float], prices: PriceTable) -> None:
    """Refuse an unknown or negative usage assumption (``config/<stage>.json`` ``estimate``)."""
    unknown = sorted(set(usage) - set(prices.assumptions))
    if unknown:
        raise ConfigError(
            f"Unknown cost assumption(s) {', '.join(unknown)} under 'estimate'. Known: "
            f"{', '.join(sorted(prices.assumptions))}."
        )
    negative = sorted(k for k, v in usage.items() if v < 0)
    if negative:
        raise ConfigError(f"Cost assumption(s) {', '.join(negative)} must not be negative.")


def estimate(found: Inventory, usage: Mapping[str, float], prices: PriceTable) -> Estimate:
    """Price ``found`` with the usage assumptions (the table's, overridden by ``usage``).

    Every billable line of the inventory gets a row, even when it rounds to zero.
    """
    check_usage(usage, prices)
    p = prices.prices
    u = {**prices.assumptions, **usage}
    hours = prices.hours_per_month
    items: list[LineItem] = []
    free = prices.free_tier

    def add(name: str, detail: str, monthly: float) -> None:
        items.append(LineItem(name, detail, monthly))

    # Fargate.
    vcpu, gb = found.task_cpu / 1024, found.task_memory / 1024

    def month_of(cpu_units: float, memory_mib: float) -> float:
        return (
            cpu_units / 1024 * p["fargate_vcpu_hour"] + memory_mib / 1024 * p["fargate_gb_hour"]
        ) * hours

    task_month = month_of(found.task_cpu, found.task_memory)
    size = f"{vcpu:g} vCPU / {gb:g} GB"
    # Fargate bills the task's size: a sidecar costs nothing on top, but its reservation is
    # that much of every task the site cannot use, so each line says what it pays for it.
    reserved = ", ".join(
        f"the {s.name} sidecar reserves {s.cpu} CPU units / {s.memory} MiB" for s in found.sidecars
    )
    share = (
        sum(month_of(s.cpu, s.memory) for s in found.sidecars) / task_month if task_month else 0.0
    )
    sidecar_monthly = 0.0

    def with_sidecars(detail: str, monthly: float) -> str:
        nonlocal sidecar_monthly
        if not found.sidecars:
            return detail
        sidecar_monthly += monthly * share
        return f"{detail}; {reserved} of each task ({monthly * share:.2f} of this line)"

    if found.on_demand_tasks:
        monthly = found.on_demand_tasks * task_month
        add(
            "Fargate on-demand",
            with_sidecars(f"{found.on_demand_tasks:g} task(s) x {size}", monthly),
            monthly,
        )
    if found.spot_tasks:
        spot_rate = 1 - p["fargate_spot_discount"]
        monthly = found.spot_tasks * task_month * spot_rate
        add(
            "Fargate Spot",
            with_sidecars(
                f"{found.spot_tasks:g} task(s) x {size} at {spot_rate:.0%} of on-demand", monthly
            ),
            monthly,
        )

    # Load balancer: one public IPv4 address per zone it spans.
    if found.load_balancers:
        add("Application Load Balancer", f"{hours:g} h", p["alb_hour"] * hours)
        add(
            "ALB capacity units",
            f"{u['alb_lcu']:g} LCU average",
            u["alb_lcu"] * p["alb_lcu_hour"] * hours,
        )
    if found.nat_gateways:
        add(
            "NAT gateways",
            f"{found.nat_gateways} x {hours:g} h",
            found.nat_gateways * p["nat_gateway_hour"] * hours,
        )
        add(
            "NAT data processed",
            f"{u['nat_gb_per_month']:g} GB",
            u["nat_gb_per_month"] * p["nat_gateway_gb"],
        )
    lb_addresses = found.zones * found.load_balancers
    addresses = lb_addresses + found.nat_gateways + found.public_task_addresses
    add(
        "Public IPv4 addresses",
        f"{addresses} ({lb_addresses} load balancer, {found.nat_gateways} NAT, "
        f"{found.public_task_addresses} task)",
        addresses * p["public_ipv4_hour"] * hours,
    )
    if found.interface_endpoints:
        add(
            "Interface endpoints",
            f"{found.interface_endpoints} services x {found.zones} zones",
            found.interface_endpoints * found.zones * p["interface_endpoint_az_hour"] * hours,
        )
        add(
            "Interface endpoint data",
            f"{u['interface_endpoint_gb_per_month']:g} GB",
            u["interface_endpoint_gb_per_month"] * p["interface_endpoint_gb"],
        )
    add(
        "Data transfer out",
        f"{u['data_transfer_out_gb_per_month']:g} GB to the internet",
        u["data_transfer_out_gb_per_month"] * p["data_transfer_out_gb"],
    )

    # CloudWatch.
    alarm_metrics = found.alarm_metrics + found.target_tracking_alarms
    add(
        "CloudWatch alarms",
        f"{alarm_metrics} alarm metrics ({found.alarms} alarms, "
        f"{found.target_tracking_alarms} made by target tracking)",
        alarm_metrics * p["cloudwatch_alarm_metric_month"],
    )
    if found.high_resolution_alarm_metrics:
        add(
            "CloudWatch high-resolution alarms",
            f"{found.high_resolution_alarm_metrics} alarm metrics",
            found.high_resolution_alarm_metrics
            * p["cloudwatch_high_resolution_alarm_metric_month"],
        )
    if found.composite_alarms:
        add(
            "CloudWatch composite alarms",
            f"{found.composite_alarms} alarms",
            found.composite_alarms * p["cloudwatch_composite_alarm_month"],
        )
    insights = found.container_insights_services * u["container_insights_metrics_per_service"]
    if found.container_insights_services:
        add(
            "Container Insights metrics",
            f"{insights:g} custom metrics ({found.container_insights_services} service)",
            insights * p["cloudwatch_custom_metric_month"],
        )
    custom = u["custom_metrics"]
    add(
        "Custom metrics (ops toolkit)",
        f"{custom:g} metrics",
        custom * p["cloudwatch_custom_metric_month"],
    )
    if found.dashboards:
        add(
            "CloudWatch dashboards",
            f"{found.dashboards} dashboard(s)",
            found.dashboards * p["cloudwatch_dashboard_month"],
        )
    ingest = u["log_ingestion_gb_per_month"]
    if found.container_insights_services:
        ingest += found.tasks * u["container_insights_log_gb_per_task"]
    add("CloudWatch Logs ingestion", f"{ingest:g} GB", ingest * p["logs_ingestion_gb"])
    stored = ingest * min(found.log_retention_days, 365) / 30 * u["logs_compression_ratio"]
    add(
        "CloudWatch Logs storage",
        f"{stored:.2g} GB compressed ({found.log_retention_days} days kept)",
        stored * p["logs_storage_gb_month"],
    )

    # Encryption, secrets, images, artifacts.
    if found.kms_keys:
        add("KMS keys", f"{found.kms_keys} key(s)", found.kms_keys * p["kms_key_month"])
    if found.secrets:
        add(
            "Secrets Manager",
            f"{found.secrets} secret(s)",
            found.secrets * p["secrets_manager_secret_month"],
        )
    add(
        "ECR storage",
        f"{u['ecr_storage_gb']:g} GB of images",
        u["ecr_storage_gb"] * p["ecr_storage_gb_month"],
    )
    add(
        "S3 storage (ops packages)",
        f"{u['s3_storage_gb']:g} GB",
        u["s3_storage_gb"] * p["s3_storage_gb_month"],
    )
    if found.web_acls:
        add(
            "WAF",
            f"{found.web_acls} web ACL, {found.waf_rules} rules, "
            f"{u['requests_millions_per_month']:g} M requests",
            found.web_acls * p["waf_web_acl_month"]
            + found.waf_rules * p["waf_rule_month"]
            + u["requests_millions_per_month"] * p["waf_million_requests"],
        )

    # The ops toolkit: functions, tables, queues, traces.
    if found.functions:
        requests = u["ops_invocations_per_month"] / 1e6
        add(
            "Lambda (ops functions)",
            f"{found.functions} functions, {u['ops_invocations_per_month']:g} invocations, "
            f"{u['ops_gb_seconds_per_month']:g} GB-s",
            requests * p["lambda_million_requests"]
            + u["ops_gb_seconds_per_month"] * p["lambda_gb_second"],
        )
        add(
            "X-Ray traces",
            f"{u['xray_traces_millions_per_month']:g} M traces",
            u["xray_traces_millions_per_month"] * p["xray_million_traces"],
        )
    if found.tables:
        add(
            "DynamoDB on demand",
            f"{found.tables} tables, {u['dynamodb_write_millions_per_month']:g} M writes, "
            f"{u['dynamodb_read_millions_per_month']:g} M reads",
            u["dynamodb_write_millions_per_month"] * p["dynamodb_million_write_units"]
            + u["dynamodb_read_millions_per_month"] * p["dynamodb_million_read_units"],
        )
    if found.queues:
        add(
            "SQS (dead-letter queues)",
            f"{found.queues} queues, {u['sqs_requests_millions_per_month']:g} M requests",
            u["sqs_requests_millions_per_month"] * p["sqs_million_requests"],
        )

    by_name = {item.name: item.monthly for item in items}
    # Each free-tier allowance covers some line items, up to (free quantity x unit price).
    capped = (
        (("CloudWatch alarms",), "alarm_metrics", "cloudwatch_alarm_metric_month"),
        (
            ("Container Insights metrics", "Custom metrics (ops toolkit)"),
            "custom_metrics",
            "cloudwatch_custom_metric_month",
        ),
        (("CloudWatch dashboards",), "dashboards", "cloudwatch_dashboard_month"),
        (
            ("CloudWatch Logs ingestion", "CloudWatch Logs storage"),
            "logs_gb",
            "logs_ingestion_gb",
        ),
        (("Data transfer out",), "data_transfer_out_gb", "data_transfer_out_gb"),
        (("X-Ray traces",), "xray_traces_millions", "xray_million_traces"),
        (("SQS (dead-letter queues)",), "sqs_requests_millions", "sqs_million_requests"),
    )
    allowance = sum(
        min(sum(by_name.get(name, 0.0) for name in names), free.get(key, 0) * p[price])
        for names, key, price in capped
    )
    # The Lambda free tier (requests and compute) covers the ops functions entirely.
    allowance += by_name.get("Lambda (ops functions)", 0.0) * (1.0 if free.get("lambda") else 0.0)
    return Estimate(
        items=tuple(items),
        region=prices.region,
        currency=prices.currency,
        taken_on=prices.taken_on,
        usage=u,
        free_tier=allowance,
        sidecar_monthly=sidecar_monthly,
        peak=found.peak,
    )
