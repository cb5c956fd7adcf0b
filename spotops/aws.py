"""The one place boto3 clients are made.

Every client honours ``AWS_ENDPOINT_URL`` (the local emulator), ``AWS_REGION`` and
``AWS_PROFILE``. Against an endpoint on a loopback host botocore's retries are turned off:
the emulator would otherwise replay calls that crashed it (HTTP 500) several times.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from spotops.errors import CredentialsError, RegionError, translate_aws_error

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


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

    @property
    def is_emulator(self) -> bool:
        """True when the endpoint is on this machine (the moto server)."""
        if not self.endpoint_url:
            return False
        return (urlparse(self.endpoint_url).hostname or "") in LOOPBACK_HOSTS


class AwsSession:
    """A boto3 session plus the client configuration every spotops call shares.

    Example
    -------
    >>> session = AwsSession(AwsSettings(region="us-east-1"))  # doctest: +SKIP
    >>> session.client("cloudformation").describe_stacks()  # doctest: +SKIP
    """

    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        try:
            self._session = boto3.Session(
                profile_name=settings.profile, region_name=settings.region
            )
        except BotoCoreError as exc:
            raise translate_aws_error(exc) from exc
        if settings.is_emulator:
            # moto enforces none of AWS's limits: this layer does, so nothing that AWS would
            # refuse passes on the emulator.
            from spotops.local.limits import install

            install(self._session.events, settings.endpoint_url)
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str:
        """The region in use; raises :class:`RegionError` when none is configured."""
        region = self._session.region_name
        if not region:
            raise RegionError("No AWS region set. Pass --region or set AWS_REGION.")
        return str(region)

    @property
    def is_emulator(self) -> bool:
        return self.settings.is_emulator

    def config(self) -> Config:
        """The botocore configuration: no retries against the local emulator."""
        if self.is_emulator:
            return Config(retries={"max_attempts": 1, "mode": "standard"})
        return Config(retries={"max_attempts": 5, "mode": "standard"})

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
