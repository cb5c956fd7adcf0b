"""Where the stage's runbook links point by default: the checkout's own GitHub repository.

Every alarm and Slack message links ``<RunbookBaseUrl>/<runbook>.md``. The templates' default
is the upstream repository, so in a fork every link would lead to someone else's runbooks;
``deploy`` passes the URL derived here instead, unless ``config/<stage>.json`` (or
``--param``) sets ``RunbookBaseUrl`` itself.

:func:`runbook_default` decides from the facts (the ``origin`` remote and its default
branch); :func:`read_git_origin` is the one place that asks git for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from spotops.commands import CommandRunner

PARAMETER = "RunbookBaseUrl"
# When the clone does not know origin's default branch (``origin/HEAD`` unset).
ASSUMED_BRANCH = "main"

# owner/repo after github.com, in the forms git accepts for a remote:
#   https://github.com/o/r(.git)  https://user@github.com/o/r  http://…
#   git@github.com:o/r(.git)  ssh://git@github.com(:22)/o/r(.git)  git://github.com/o/r
_GITHUB_REMOTE = re.compile(
    r"""^(?:
        (?:https?|ssh|git|git\+ssh)://(?:[^@/]+@)?(?:www\.)?github\.com(?::\d+)?/
      | (?:[^@/:]+@)?github\.com:
    )
    (?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<repo>[A-Za-z0-9._-]+?)
    (?:\.git)?/?$""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class GitOrigin:
    """What git says about ``origin``: its URL and ``origin/HEAD`` (``""`` when unknown)."""

    url: str = ""
    head: str = ""


@dataclass(frozen=True)
class RunbookDefault:
    """The ``RunbookBaseUrl`` deploy passes (``""``: keep the template's default) and the
    one line that says where it comes from."""

    url: str
    note: str


def github_runbook_url(remote: str, branch: str) -> str:
    """The runbooks folder of a GitHub remote on ``branch``, without the trailing slash the
    templates refuse; ``""`` for any other host or form.

    Example
    -------
    >>> github_runbook_url("git@github.com:ana/spotops.git", "main")
    'https://github.com/ana/spotops/blob/main/runbooks'
    """
    found = _GITHUB_REMOTE.match(remote.strip())
    if not found or not branch:
        return ""
    return f"https://github.com/{found['owner']}/{found['repo']}/blob/{branch}/runbooks"


def runbook_default(origin: GitOrigin, stage: str) -> RunbookDefault:
    """Decide the default runbook URL from ``origin``'s URL and default branch."""
    branch = origin.head.removeprefix("refs/remotes/").removeprefix("origin/")
    url = github_runbook_url(origin.url, branch or ASSUMED_BRANCH)
    change = f"set {PARAMETER} in config/{stage}.json to change it"
    if url:
        assumed = "" if branch else f" (branch {ASSUMED_BRANCH} assumed: origin/HEAD is unset)"
        return RunbookDefault(
            url, f"Runbook links: {url}, from git remote origin{assumed}; {change}."
        )
    if not origin.url:
        why = "this checkout has no git remote 'origin'"
    else:
        why = "git remote origin is not on github.com"
    return RunbookDefault("", f"Runbook links keep the templates' default URL: {why}; {change}.")


def read_git_origin(runner: CommandRunner, project_dir: Path) -> GitOrigin:
    """Ask git for ``origin``'s URL and default branch; a failing command gives ``""``."""
    remote = runner(["git", "remote", "get-url", "origin"], cwd=project_dir)
    if remote.returncode != 0 or not remote.stdout.strip():
        return GitOrigin()
    head = runner(["git", "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"], cwd=project_dir)
    return GitOrigin(
        url=remote.stdout.strip(), head=head.stdout.strip() if head.returncode == 0 else ""
    )
