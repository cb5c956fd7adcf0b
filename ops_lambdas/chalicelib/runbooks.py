"""Runbook links: ``<RUNBOOK_BASE_URL>/<file>.md`` for every action and alarm."""

from __future__ import annotations

DEPLOY_FAILED = "deploy-failed.md"
REDEPLOY = "redeploy.md"
ACCESS_DENIED = "ops-access-denied.md"
CHAOS_KILL = "chaos-kill.md"


def runbook_url(base_url: str, file_name: str) -> str:
    """Join the runbook base URL and a runbook file name.

    Example
    -------
    >>> runbook_url("https://example.com/runbooks/", "deploy-failed.md")
    'https://example.com/runbooks/deploy-failed.md'
    """
    return f"{base_url.rstrip('/')}/{file_name.lstrip('/')}"
