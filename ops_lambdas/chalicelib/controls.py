"""Run-time controls read through Powertools Parameters (cached per container).

* the **kill switch**: an SSM parameter read at run time (short cache) so automation can be
  stopped without a deploy. ``off`` lets automation act; ``on`` stops every action that
  changes production. Anything else, a missing parameter or a failed read counts as ``on``:
  when we cannot tell, we do not touch production.
* **dry run**: ``DRY_RUN`` (set at deploy) or, when ``DRY_RUN_PARAMETER`` names one, an SSM
  parameter read at run time with the kill switch's cache, so on-call can switch dry run on
  or off without a deploy. Either one saying "dry run" makes the run dry. An unrecognised
  value, a missing parameter or a failed read counts as dry run: a switch meant to make
  automation harmless must not make it act when it cannot be read.
* the **Slack webhook URL**: a Secrets Manager secret (plain URL, or JSON with ``url`` or
  ``webhook_url``). The URL is secret: it is never logged and never put in an error message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

from chalicelib.aws import error_code
from chalicelib.errors import ControlsError
from chalicelib.runbooks import SLACK_WEBHOOK_MISSING

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient

KILL_SWITCH_OFF = frozenset({"off", "false", "0", "disabled"})
DRY_RUN_ON = frozenset({"true", "on", "1", "yes"})
DRY_RUN_OFF = frozenset({"false", "off", "0", "no"})
_ECHO_LIMIT = 40  # an operator's typo is echoed back, a pasted essay is not


@dataclass(frozen=True)
class KillSwitchState:
    """Whether automation is stopped, and why (for logs and reports)."""

    engaged: bool
    reason: str


@dataclass(frozen=True)
class DryRunState:
    """Whether this run only reports what it would do, and which control decided."""

    active: bool
    reason: str


def dry_run_state(
    *,
    env_dry_run: bool,
    parameter: str,
    value: str | None = None,
    failure: str | None = None,
) -> DryRunState:
    """Decide dry run from ``DRY_RUN`` and the dry-run parameter's value (pure: no reads).

    ``DRY_RUN=true`` wins whatever the parameter says: a stage deployed dry stays dry until
    it is deployed otherwise. Otherwise the parameter decides, failing safe (dry run) on a
    read failure or a value that is not clearly on or off.

    Parameters
    ----------
    env_dry_run:
        ``DRY_RUN`` from the settings.
    parameter:
        ``DRY_RUN_PARAMETER``; empty when no parameter is used.
    value:
        The parameter's value, when it was read.
    failure:
        Why the parameter could not be read (``"does not exist"``, ``"is unreadable (...)"``).

    Returns
    -------
    DryRunState
        ``active`` and a ``reason`` naming the control that decided.

    Example
    -------
    >>> dry_run_state(env_dry_run=False, parameter="/spotops/dev/dry-run", value="on").active
    True
    """
    if env_dry_run:
        return DryRunState(True, "DRY_RUN is true (set at deploy)")
    if not parameter:
        return DryRunState(False, "DRY_RUN is false and no DRY_RUN_PARAMETER is set")
    if failure is not None:
        return DryRunState(True, f"dry-run parameter {parameter} {failure}; failing safe")
    text = (value or "").strip().lower()
    if text in DRY_RUN_ON:
        return DryRunState(True, f"dry-run parameter {parameter} is {text!r}")
    if text in DRY_RUN_OFF:
        return DryRunState(False, f"DRY_RUN is false and dry-run parameter {parameter} is {text!r}")
    return DryRunState(
        True,
        f"dry-run parameter {parameter} is {text[:_ECHO_LIMIT]!r}, not one of "
        f"{'/'.join(sorted(DRY_RUN_ON))} or {'/'.join(sorted(DRY_RUN_OFF))}; failing safe",
    )


def _read_failure(exc: BaseException) -> str:
    """The AWS error code behind a Powertools read failure (it wraps the ``ClientError``)."""
    cause = exc.__cause__ or exc.__context__
    return error_code(cause) if cause is not None and error_code(cause) else type(exc).__name__


class Controls:
    """Reads the kill switch, dry run and the Slack webhook URL, with Powertools' cache.

    Parameters
    ----------
    ssm, secretsmanager:
        boto3 clients (``AWS_ENDPOINT_URL`` aware).
    kill_switch_parameter, kill_switch_cache_seconds:
        SSM parameter name and how long a read value is trusted; the cache applies to the
        dry-run parameter too.
    dry_run, dry_run_parameter:
        ``DRY_RUN`` and ``DRY_RUN_PARAMETER`` (empty: no parameter).
    webhook_secret_name, secret_cache_seconds:
        Secrets Manager secret holding the Slack webhook URL and its cache lifetime.
    stage:
        The stage, so a missing webhook error says the command that sets it.
    """

    def __init__(
        self,
        *,
        ssm: SSMClient,
        secretsmanager: SecretsManagerClient,
        kill_switch_parameter: str,
        kill_switch_cache_seconds: int,
        dry_run: bool,
        dry_run_parameter: str,
        webhook_secret_name: str,
        secret_cache_seconds: int,
        stage: str,
    ) -> None:
        self._ssm = SSMProvider(boto3_client=ssm)
        self._secrets = SecretsProvider(boto3_client=secretsmanager)
        self._kill_switch_parameter = kill_switch_parameter
        self._switch_max_age = kill_switch_cache_seconds
        self._dry_run = dry_run
        self._dry_run_parameter = dry_run_parameter
        self._secret_name = webhook_secret_name
        self._secret_max_age = secret_cache_seconds
        self._stage = stage

    def kill_switch(self) -> KillSwitchState:
        """Read the kill switch (fail closed: unreadable means engaged)."""
        try:
            value = self._ssm.get(self._kill_switch_parameter, max_age=self._switch_max_age)
        except Exception as exc:  # any read failure must stop automation, not crash it
            return KillSwitchState(
                True,
                f"kill switch {self._kill_switch_parameter} unreadable "
                f"({type(exc).__name__}); failing closed",
            )
        text = str(value).strip().lower()
        if text in KILL_SWITCH_OFF:
            return KillSwitchState(False, f"kill switch {self._kill_switch_parameter} is off")
        return KillSwitchState(
            True, f"kill switch {self._kill_switch_parameter} is {text!r} (automation stopped)"
        )

    def dry_run(self) -> DryRunState:
        """Is this run dry, and why: the one place every job asks.

        ``DRY_RUN=true`` decides without a read. Otherwise the dry-run parameter is read
        (cached ``KILL_SWITCH_CACHE_SECONDS``); unreadable or unclear means dry run.
        """
        if self._dry_run or not self._dry_run_parameter:
            return dry_run_state(env_dry_run=self._dry_run, parameter=self._dry_run_parameter)
        try:
            value = self._ssm.get(self._dry_run_parameter, max_age=self._switch_max_age)
        except Exception as exc:  # any read failure must make the run dry, not crash it
            code = _read_failure(exc)
            failure = "does not exist" if code == "ParameterNotFound" else f"is unreadable ({code})"
            return dry_run_state(
                env_dry_run=False, parameter=self._dry_run_parameter, failure=failure
            )
        return dry_run_state(env_dry_run=False, parameter=self._dry_run_parameter, value=str(value))

    def _webhook_error(self, problem: str, secret_name: str) -> ControlsError:
        if secret_name == self._secret_name:
            fix = f"set it with `spotops slack-webhook set --stage {self._stage}`"
        else:  # a severity's own channel (SLACK_WEBHOOK_SECRETS_BY_SEVERITY)
            fix = f"set it with `aws secretsmanager put-secret-value --secret-id {secret_name}`"
        return ControlsError(f"{problem}; {fix} (runbooks/{SLACK_WEBHOOK_MISSING})")

    def webhook_url(self) -> str:
        """The Slack webhook URL of the default channel (``SLACK_WEBHOOK_SECRET_NAME``)."""
        return self.webhook_url_of(self._secret_name)

    def webhook_url_of(self, secret_name: str) -> str:
        """A Slack webhook URL from Secrets Manager (cached ``secret_cache_seconds``).

        Raises
        ------
        ControlsError
            When the secret cannot be read or holds no URL. The message (it becomes the
            dead-letter reason and a log warning) says how to set the secret and never
            holds the URL.
        """
        try:
            value = self._secrets.get(secret_name, max_age=self._secret_max_age)
        except Exception as exc:
            raise self._webhook_error(
                f"cannot read secret {secret_name} ({_read_failure(exc)})", secret_name
            ) from None
        text = value.decode() if isinstance(value, bytes) else str(value)
        text = text.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                raise self._webhook_error(
                    f"secret {secret_name} is not valid JSON", secret_name
                ) from None
            text = str(data.get("url") or data.get("webhook_url") or "").strip()
        if not text.startswith(("https://", "http://")):
            raise self._webhook_error(
                f"secret {secret_name} does not hold an http(s) URL", secret_name
            )
        return text
