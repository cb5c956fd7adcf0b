"""boto3 clients, built lazily and once per container.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) natively, so the
same code talks to AWS or to the local emulator. Every client shares one botocore ``Config``
(standard retry mode, short timeouts) so a slow API fails fast instead of eating the
Lambda's time budget.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

SERVICES = (
    "ecs",
    "ecr",
    "dynamodb",
    "ssm",
    "secretsmanager",
    "sqs",
    "elbv2",
    "cloudwatch",
    "application-autoscaling",
)
_CREATE_LOCK = threading.Lock()


def boto_config(max_attempts: int) -> Config:
    """The botocore ``Config`` every client uses.

    Parameters
    ----------
    max_attempts:
        Total attempts per call in botocore's ``standard`` retry mode (throttling included).
    """
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=3,
        read_timeout=10,
        user_agent_extra="spotops-ops",
    )


class AwsClients:
    """Lazy holder of the clients a job needs: ``clients.ecs``, ``clients.sqs``, ...

    Each client is created on first use and kept for the container's life, all from one
    boto3 session (so botocore loads each service model once). Creation is guarded by a
    lock because a boto3 session is not thread safe.

    Example
    -------
    >>> clients = AwsClients(max_attempts=3)
    >>> clients.ecs.describe_services  # doctest: +SKIP
    """

    def __init__(self, max_attempts: int = 3, session: boto3.session.Session | None = None):
        self._config = boto_config(max_attempts)
        self._session = session
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """Return the (cached) client for ``service``."""
        found = self._clients.get(service)
        if found is not None:
            return found
        with _CREATE_LOCK:
            if service not in self._clients:
                if self._session is None:
                    self._session = boto3.session.Session()
                self._clients[service] = self._session.client(service, config=self._config)
            return self._clients[service]

    @property
    def ecs(self) -> ECSClient:
        return self.client("ecs")

    @property
    def ecr(self) -> ECRClient:
        return self.client("ecr")

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self.client("dynamodb")

    @property
    def ssm(self) -> SSMClient:
        return self.client("ssm")

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        return self.client("secretsmanager")

    @property
    def sqs(self) -> SQSClient:
        return self.client("sqs")

    @property
    def elbv2(self) -> ElasticLoadBalancingv2Client:
        return self.client("elbv2")

    @property
    def cloudwatch(self) -> CloudWatchClient:
        return self.client("cloudwatch")

    @property
    def autoscaling(self) -> ApplicationAutoScalingClient:
        """Application Auto Scaling (the service's scalable target)."""
        return self.client("application-autoscaling")


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
