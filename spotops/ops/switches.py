"""The ops toolkit's run-time controls, set from the command line without a deploy: the
Slack webhook URL (a secret), the kill switch, the dry-run switch and the chaos leash (SSM
parameters).

The names are the ones ``infra/cloudformation/ops.yaml`` gives them. The ops stack creates
all four; the functions read them at run time (with a short cache), so a change here takes
effect within ``KILL_SWITCH_CACHE_SECONDS`` (30 s) for the switches (the chaos leash: at the
next hourly chaos run) and ``SECRET_CACHE_SECONDS`` (300 s) for the webhook.
"""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from spotops.errors import NotDeployedError, UsageError, is_error

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient

# Every switch takes the same words, in any case: `on` makes it act (the kill switch stops
# automation, dry run only reports, the leash holds chaos back), `off` lets things happen.
ON_WORDS = ("on", "true", "yes", "1")
OFF_WORDS = ("off", "false", "no", "0")
SWITCH_WORDS_HELP = "on or off (also true/false, yes/no, 1/0; any case)"
# What is written to each parameter: the words the ops stack creates it with, which the
# functions and `spotops doctor` read (the functions accept the synonyms too).
STORED = {
    "kill-switch": {True: "on", False: "off"},
    "dry-run": {True: "true", False: "false"},
    "chaos-leash": {True: "on", False: "off"},
}
SWITCHES = tuple(STORED)


def parse_switch_word(switch: str, word: str) -> bool:
    """``True`` for on, ``False`` for off.

    Raises
    ------
    UsageError
        A word that is neither, with the words every switch takes.
    """
    text = word.strip().lower()
    if text in ON_WORDS:
        return True
    if text in OFF_WORDS:
        return False
    raise UsageError(f"{switch} takes {SWITCH_WORDS_HELP}, not {word[:40]!r}.")


def shown_value(switch: str, stored: str) -> str:
    """A parameter's value as every switch shows it: ``on`` or ``off`` for the words spotops
    stores (:data:`STORED`); anything else as it is. A word set by hand is not translated:
    the functions read their own words (the kill switch takes ``no`` for on, its safe side),
    so calling it ``off`` here could show automation acting while it is stopped."""
    text = stored.strip().lower()
    for value, word in STORED[switch].items():
        if text == word:
            return "on" if value else "off"
    return stored


def webhook_secret_name(app: str, stage: str) -> str:
    return f"{app}/{stage}/slack-webhook"


def switch_parameter_name(app: str, stage: str, switch: str) -> str:
    """``/<app>/<stage>/kill-switch``, ``/<app>/<stage>/dry-run`` or ``.../chaos-leash``."""
    if switch not in STORED:
        raise UsageError(f"Unknown switch {switch!r}: use {', '.join(SWITCHES)}.")
    return f"/{app}/{stage}/{switch}"


def check_webhook_url(url: str) -> str:
    """The URL, stripped, if it can be a webhook: https, or http only on loopback (a local
    receiver). Never echoes the URL back in an error: it is a secret.

    Raises
    ------
    UsageError
        Empty, not http(s), or plain http to a non-loopback host.
    """
    url = url.strip()
    parsed = urlparse(url)
    if not url or parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise UsageError(
            "That is not a webhook URL: expected https://hooks.slack.com/services/... "
            "(read from standard input)."
        )
    if parsed.scheme == "http" and not is_loopback_host(parsed.hostname):
        raise UsageError("A webhook URL must use https (plain http only to 127.0.0.1).")
    return url


def is_loopback_host(host: str) -> bool:
    """True for this machine (``localhost``, 127.0.0.0/8, ``::1``): where a webhook may be
    plain http, and the only place the emulator's checks may reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def set_webhook(
    secretsmanager: SecretsManagerClient, name: str, url: str, *, create_missing: bool
) -> str:
    """Store ``url`` in the secret as ``{"url": ...}``; return ``updated`` or ``created``.

    ``create_missing`` is for the local emulator, which does not create the secret the ops
    stack declares; against AWS a missing secret means the ops stack is not deployed.

    Raises
    ------
    NotDeployedError
        The secret does not exist and may not be created here.
    """
    body = json.dumps({"url": check_webhook_url(url)})
    try:
        secretsmanager.put_secret_value(SecretId=name, SecretString=body)
        return "updated"
    except ClientError as exc:
        if not is_error(exc, "ResourceNotFoundException"):
            raise
        if not create_missing:
            stage = name.split("/")[1] if name.count("/") >= 2 else "<stage>"
            raise NotDeployedError(
                f"Secret {name} does not exist: the ops stack creates it. Deploy first with "
                f"`spotops deploy --stage {stage}`."
            ) from exc
    secretsmanager.create_secret(Name=name, SecretString=body)
    return "created"


def read_switch(ssm: SSMClient, name: str) -> str | None:
    """The switch's value, or ``None`` when the parameter does not exist."""
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        if is_error(exc, "ParameterNotFound"):
            return None
        raise


def set_switch(ssm: SSMClient, name: str, switch: str, value: str) -> str:
    """Set a switch the ops stack created to on or off (any word :func:`parse_switch_word`
    takes); return the value written.

    Raises
    ------
    UsageError
        A word the switches do not take (nothing is written).
    NotDeployedError
        The parameter does not exist (the ops stack is not deployed).
    """
    stored = STORED[switch][parse_switch_word(switch, value)]
    if read_switch(ssm, name) is None:
        raise NotDeployedError(
            f"Parameter {name} does not exist: the ops stack creates it. Deploy first with "
            "`spotops deploy`."
        )
    ssm.put_parameter(Name=name, Value=stored, Type="String", Overwrite=True)
    return stored
