"""One-time setup of the account a stage deploys into.

**The ECS service-linked role.** ECS creates ``AWSServiceRoleForECS`` on its own the first
time it needs it, but a CloudFormation stack that creates the first cluster of an account can
fail before it does ("Unable to assume the service linked role"). spotops creates the role
before the site stack, once; it is idempotent, so doing it again changes nothing. Without
the IAM permission, it says which command an administrator runs instead.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from spotops.errors import is_error

ECS_SERVICE = "ecs.amazonaws.com"
ECS_ROLE_PATH = f"/aws-service-role/{ECS_SERVICE}/"
MANUAL_COMMAND = f"aws iam create-service-linked-role --aws-service-name {ECS_SERVICE}"
_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


def ensure_ecs_service_linked_role(iam: Any) -> str:
    """Create ECS's service-linked role unless the account has it.

    Returns
    -------
    str
        ``"exists"``, ``"created"``, or ``"denied"`` when the caller may not read or create
        IAM roles (the deploy goes on; :data:`MANUAL_COMMAND` is the fix if it then fails).
    """
    try:
        found = iam.list_roles(PathPrefix=ECS_ROLE_PATH).get("Roles", [])
    except ClientError as exc:
        if is_error(exc, *_DENIED):
            return "denied"
        raise
    if found:
        return "exists"
    try:
        iam.create_service_linked_role(AWSServiceName=ECS_SERVICE)
    except ClientError as exc:
        if is_error(exc, "InvalidInput"):  # created meanwhile: the name is taken
            return "exists"
        if is_error(exc, *_DENIED):
            return "denied"
        raise
    return "created"
