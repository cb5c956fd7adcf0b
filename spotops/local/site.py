"""A site as it runs on AWS, set by hand in the local emulator: for ``spotops demo`` and the
chaos tests.

moto's CloudFormation creates the service but starts no tasks, and drops its load balancer
(and the task definition's network mode, so tasks get no network interface). A function
that reads running tasks and target health (chaos) needs what ECS and the load balancer
would show; this puts it there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ecs.type_defs import TagTypeDef
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

CHAOS_TAGS: list[TagTypeDef] = [
    {"key": "spotops:chaos", "value": "on"},
    {"key": "spotops:chaos-mtbk-hours", "value": "0.001"},  # the dice always agree
]


def steady_site(
    ecs: ECSClient, elbv2: ElasticLoadBalancingv2Client, site: Mapping[str, str], tasks: int = 2
) -> list[str]:
    """``tasks`` tasks RUNNING behind the site's load balancer, room for one kill
    (minimumHealthyPercent 50), the service opted in to chaos; the task ARNs, sorted.

    ``site`` is the site stack's outputs (``ClusterName``, ``ServiceName``,
    ``LoadBalancerDnsName``).
    """
    cluster, name = site["ClusterName"], site["ServiceName"]
    # CloudFormation names the target group (a fixed name could not be replaced): find it
    # through the site's load balancer.
    balancer = next(
        lb
        for lb in elbv2.describe_load_balancers()["LoadBalancers"]
        if lb["DNSName"] == site["LoadBalancerDnsName"]
    )
    group = elbv2.describe_target_groups(LoadBalancerArn=balancer["LoadBalancerArn"])[
        "TargetGroups"
    ][0]
    ecs.update_service(
        cluster=cluster,
        service=name,
        desiredCount=tasks,
        deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200},
        loadBalancers=[
            {
                "targetGroupArn": group["TargetGroupArn"],
                "containerName": "site",
                "containerPort": 8080,
            }
        ],
    )
    service = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    ecs.tag_resource(resourceArn=service["serviceArn"], tags=CHAOS_TAGS)
    started = ecs.run_task(
        cluster=cluster,
        taskDefinition=service["taskDefinition"],
        count=tasks,
        group=f"service:{name}",
        capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    )["tasks"]
    # No network interface: the targets get made-up addresses (chaos reads target health,
    # not which task it is).
    elbv2.register_targets(
        TargetGroupArn=group["TargetGroupArn"],
        Targets=[{"Id": f"10.0.{n}.10", "Port": 8080} for n in range(len(started))],
    )
    return sorted(t["taskArn"] for t in started)
