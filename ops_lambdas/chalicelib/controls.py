"""Run-time controls read through Powertools Parameters (cached per container).

* the **kill switch**: an SSM parameter read at run time (short cache) so automation can be
  stopped without a deploy. ``off`` lets automation act; ``on`` stops every action that
  changes production. Anything else, a missing parameter or a failed read counts as ``on``:
  when we cannot tell, we do not touch production.
* the **Slack webhook URL**: a Secrets Manager secret (plain URL, or JSON with ``url`` or
  ``webhook_url``). The URL is secret: it is never logged and never put in an error message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

from chalicelib.errors import ControlsError

KILL_SWITCH_OFF = frozenset({"off", "false", "0", "disabled"})


@dataclass(frozen=True)
class KillSwitchState:
    """Whether automation is stopped, and why (for logs and reports)."""

    engaged: bool
    reason: str


class Controls:
    """Reads the kill switch and the Slack webhook URL, with Powertools' cache.

    Parameters
    ----------
    ssm, secretsmanager:
        boto3 clients (``AWS_ENDPOINT_URL`` aware).
    kill_switch_parameter, kill_switch_cache_seconds:
        SSM parameter name and how long a read value is trusted.
    webhook_secret_name, secret_cache_seconds:
        Secrets Manager secret holding the Slack webhook URL and its cache lifetime.
    """

    def __init__(
        self,
        *,
        ssm: Any,
        secretsmanager: Any,
        kill_switch_parameter: str,
        kill_switch_cache_seconds: int,
        webhook_secret_name: str,
        secret_cache_seconds: int,
    ) -> None:
        self._ssm = SSMProvider(boto3_client=ssm)
        self._secrets = SecretsProvider(boto3_client=secretsmanager)
        self._kill_switch_parameter = kill_switch_parameter
        self._kill_switch_max_age = kill_switch_cache_seconds
        self._secret_name = webhook_secret_name
        self._secret_max_age = secret_cache_seconds

    def kill_switch(self) -> KillSwitchState:
        """Read the kill switch (fail closed: unreadable means engaged)."""
        try:
            value = self._ssm.get(self._kill_switch_parameter, max_age=self._kill_switch_max_age)
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

    def webhook_url(self) -> str:
        """The Slack webhook URL from Secrets Manager (cached ``secret_cache_seconds``).

        Raises
        ------
        ControlsError
            When the secret cannot be read or holds no URL; the message never holds the URL.
        """
        try:
            value = self._secrets.get(self._secret_name, max_age=self._secret_max_age)
        except Exception as exc:
            raise ControlsError(
                f"cannot read secret {self._secret_name} ({type(exc).__name__})"
            ) from None
        text = value.decode() if isinstance(value, bytes) else str(value)
        text = text.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                raise ControlsError(f"secret {self._secret_name} is not valid JSON") from None
            text = str(data.get("url") or data.get("webhook_url") or "").strip()
        if not text.startswith(("https://", "http://")):
            raise ControlsError(f"secret {self._secret_name} does not hold an http(s) URL")
        return text
