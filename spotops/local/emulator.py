"""What the local emulator (moto 5.2.5) gets wrong when a stage is destroyed, put right.

moto's CloudFormation cannot delete the network stack: it never deletes the route tables it
created (nor their routes to the internet gateway and the S3 endpoint), so deleting the VPC
fails with DependencyViolation. The stack is then gone from the listings but its exports
stay, and the next deploy fails with "Export names must be unique". Removing those pieces
first lets moto finish the deletion, exports included. Only ever called against the
emulator: on AWS, CloudFormation deletes all of this itself.

And ECS's end of a deployment, which moto never plays (:func:`roll_back_service`), for
``spotops simulate deployment failed``.
"""

from __future__ import annotations

from typing import Any


def clear_network_for_deletion(ec2: Any, vpc_id: str) -> list[str]:
    """Delete the VPC's endpoints, internet gateways and non-main route tables.

    Returns
    -------
    list[str]
        What was deleted, for the record (``igw-...``, ``vpce-...``, ``rtb-...``).
    """
    removed: list[str] = []
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    for endpoint in ec2.describe_vpc_endpoints(Filters=in_vpc).get("VpcEndpoints", []):
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
        removed.append(endpoint["VpcEndpointId"])
    attached = [{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
    for gateway in ec2.describe_internet_gateways(Filters=attached).get("InternetGateways", []):
        ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc_id)
        ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
        removed.append(gateway["InternetGatewayId"])
    for table in ec2.describe_route_tables(Filters=in_vpc).get("RouteTables", []):
        associations = table.get("Associations", [])
        if any(a.get("Main") for a in associations):
            continue  # the VPC's own: deleted with it
        for association in associations:
            ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=table["RouteTableId"])
        removed.append(table["RouteTableId"])
    return removed


def leftover_exports(cfn: Any, stack_name: str) -> list[str]:
    """Exports named for ``stack_name`` although no such stack exists: what moto keeps after
    a deletion that failed half-way (the next create of the stack would fail on them)."""
    names: list[str] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = cfn.list_exports(**kwargs)
        names += [
            str(e["Name"])
            for e in page.get("Exports", [])
            if str(e["Name"]).startswith(f"{stack_name}-")
        ]
        if not page.get("NextToken"):
            return names
        kwargs["NextToken"] = page["NextToken"]


def reset_advice(endpoint: str) -> str:
    """Exactly what to do when the emulator holds a deleted stack's exports."""
    return (
        "The local emulator still holds the exports of a deleted stack (moto keeps them when "
        "a deletion fails half-way), so the stack cannot be created again. Reset the emulator, "
        f"which empties it: `curl -X POST {endpoint}/moto-api/reset` (or stop and restart "
        "`make emulator`), then deploy again."
    )


def roll_back_service(ecs: Any, cluster: str, service: str) -> str:
    """What ECS's deployment circuit breaker does after a failed deployment: the service goes
    back to the revision before the one it runs (the family's previous one). Returns the task
    definition it runs now (unchanged when there is no earlier revision)."""
    current = str(
        ecs.describe_services(cluster=cluster, services=[service])["services"][0]["taskDefinition"]
    )
    family = current.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    revisions = ecs.list_task_definitions(familyPrefix=family, sort="ASC")["taskDefinitionArns"]
    earlier = [arn for arn in revisions if _revision(arn) < _revision(current)]
    if not earlier:
        return current
    ecs.update_service(cluster=cluster, service=service, taskDefinition=earlier[-1])
    return str(earlier[-1])


def _revision(task_definition_arn: str) -> int:
    return int(task_definition_arn.rsplit(":", 1)[-1])
