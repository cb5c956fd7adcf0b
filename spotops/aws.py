"""The one place boto3 clients are made.

Every client honours ``AWS_ENDPOINT_URL``, ``AWS_REGION`` and ``AWS_PROFILE``. What the
place the endpoint names needs beyond that (its retries, a guard on every call) comes from
the :class:`~spotops.target.Target` the factory chose for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from spotops.errors import CredentialsError, RegionError, translate_aws_error
from spotops.target import AWS, Target

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient


class ClientFactory(Protocol):
    """Makes a boto3 client by service name (:meth:`AwsSession.client`), typed for the
    services spotops calls; any other name gives an untyped client."""

    @overload
    def __call__(
        self, service: Literal["application-autoscaling"], /
    ) -> ApplicationAutoScalingClient: ...
    @overload
    def __call__(self, service: Literal["cloudwatch"], /) -> CloudWatchClient: ...
    @overload
    def __call__(self, service: Literal["dynamodb"], /) -> DynamoDBClient: ...
    @overload
    def __call__(self, service: Literal["ecr"], /) -> ECRClient: ...
    @overload
    def __call__(self, service: Literal["ecs"], /) -> ECSClient: ...
    @overload
    def __call__(self, service: Literal["elbv2"], /) -> ElasticLoadBalancingv2Client: ...
    @overload
    def __call__(self, service: Literal["lambda"], /) -> LambdaClient: ...
    @overload
    def __call__(self, service: Literal["logs"], /) -> CloudWatchLogsClient: ...
    @overload
    def __call__(self, service: Literal["secretsmanager"], /) -> SecretsManagerClient: ...
    @overload
    def __call__(self, service: Literal["sqs"], /) -> SQSClient: ...
    @overload
    def __call__(self, service: Literal["ssm"], /) -> SSMClient: ...
    @overload
    def __call__(self, service: str, /) -> Any: ...


@dataclass(frozen=True)
class AwsSettings:
    """Where AWS calls go.

    Parameters
    ----------
    region:
        ``--region``; ``None`` falls back to ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / profile.
    profile:
        ``--profile``; ``None`` falls back to ``AWS_PROFILE``.
    endpoint_url:
        ``AWS_ENDPOINT_URL``; ``None`` means the real AWS endpoints.
    """

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, region: str | None = None, profile: str | None = None) -> AwsSettings:
        """Settings from the flags, completed from the environment."""
        return cls(
            region=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            profile=profile or os.environ.get("AWS_PROFILE") or None,
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        )


class AwsSession:
    """A boto3 session plus the client configuration every spotops call shares.

    Example
    -------
    >>> session = AwsSession(AwsSettings(region="us-east-1"))  # doctest: +SKIP
    >>> session.client("cloudformation").describe_stacks()  # doctest: +SKIP
    """

    def __init__(self, settings: AwsSettings, target: Target = AWS) -> None:
        self.settings = settings
        self.target = target
        try:
            self._session = boto3.Session(
                profile_name=settings.profile, region_name=settings.region
            )
        except BotoCoreError as exc:
            raise translate_aws_error(exc) from exc
        target.guard_session(self._session.events)
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str:
        """The region in use; raises :class:`RegionError` when none is configured."""
        region = self._session.region_name
        if not region:
            raise RegionError("No AWS region set. Pass --region or set AWS_REGION.")
        return str(region)

    def config(self) -> Config:
        """The botocore configuration, with the target's retries."""
        return Config(retries={"max_attempts": self.target.retry_attempts, "mode": "standard"})

    def check(self) -> None:
        """Fail early, with advice, when credentials are missing or the region is unknown."""
        region = self.region
        try:
            credentials = self._session.get_credentials()
        except BotoCoreError as exc:
            raise translate_aws_error(exc, region=region) from exc
        if credentials is None:
            raise CredentialsError(
                "No AWS credentials found. Configure them (aws configure / AWS_PROFILE / "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or, for the local emulator, set "
                "AWS_ENDPOINT_URL=http://127.0.0.1:4566 with any non-empty fake keys."
            )
        if self.settings.endpoint_url is None:
            known: set[str] = set()
            for partition in self._session.get_available_partitions():
                known.update(
                    self._session.get_available_regions("cloudformation", partition_name=partition)
                )
            if known and region not in known:
                raise RegionError(
                    f"Unknown AWS region {region!r}. Pass a real one with --region "
                    "(e.g. us-east-1) or fix AWS_REGION."
                )

    @overload
    def client(
        self, service: Literal["application-autoscaling"]
    ) -> ApplicationAutoScalingClient: ...
    @overload
    def client(self, service: Literal["cloudwatch"]) -> CloudWatchClient: ...
    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["ecr"]) -> ECRClient: ...
    @overload
    def client(self, service: Literal["ecs"]) -> ECSClient: ...
    @overload
    def client(self, service: Literal["elbv2"]) -> ElasticLoadBalancingv2Client: ...
    @overload
    def client(self, service: Literal["lambda"]) -> LambdaClient: ...
    @overload
    def client(self, service: Literal["logs"]) -> CloudWatchLogsClient: ...
    @overload
    def client(self, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: Literal["ssm"]) -> SSMClient: ...
    @overload
    def client(self, service: str) -> Any: ...
    def client(self, service: str) -> Any:
        """A cached boto3 client for ``service`` with the shared endpoint and retry settings."""
        if service not in self._clients:
            kwargs: dict[str, Any] = {"region_name": self.region, "config": self.config()}
            if self.settings.endpoint_url:
                kwargs["endpoint_url"] = self.settings.endpoint_url
            self._clients[service] = self._session.client(service, **kwargs)
        return self._clients[service]

    def account_id(self) -> str:
        """The account the credentials belong to (STS GetCallerIdentity)."""
        try:
            return str(self.client("sts").get_caller_identity()["Account"])
        except (ClientError, BotoCoreError) as exc:
            raise translate_aws_error(exc, region=self.region) from exc
