"""Runbook links: ``<RUNBOOK_BASE_URL>/<file>.md`` for every action and alarm.

Every automated action names its runbook here (alarms name theirs in their description).
``infra/runbook_check.py`` (run by ``make lint``) reads the ``.md`` names of this module:
each must exist in ``runbooks/``, and a runbook named by no alarm and no action here fails.
"""

from __future__ import annotations

DEPLOY_FAILED = "deploy-failed.md"
REDEPLOY = "redeploy.md"
ACCESS_DENIED = "ops-access-denied.md"
CHAOS_KILL = "chaos-kill.md"
SLACK_WEBHOOK_MISSING = "slack-webhook-missing.md"
IMAGE_VULNERABILITY = "image-vulnerability.md"
# The alarm function: the index (alerts whose alarm names no runbook), Spot notices, and
# one runbook per remediation (remediation_rules.ACTION_RUNBOOKS maps the actions to them).
INDEX = "README.md"
SPOT_INTERRUPTION = "spot-interruption.md"
FORCE_NEW_DEPLOYMENT = "remediation-force-new-deployment.md"
SCALE_OUT = "remediation-scale-out.md"
ROLLBACK = "remediation-rollback.md"
CAPACITY_SHIFT = "capacity-shift.md"
# A rollback, the freeze of pushes that follows it, and how to lift it (``spotops unfreeze``).
ROLLBACK_COMMAND = "rollback.md"


def runbook_url(base_url: str, file_name: str) -> str:
    """Join the runbook base URL and a runbook file name.

    Example
    -------
    >>> runbook_url("https://example.com/runbooks/", "deploy-failed.md")
    'https://example.com/runbooks/deploy-failed.md'
    """
    return f"{base_url.rstrip('/')}/{file_name.lstrip('/')}"
