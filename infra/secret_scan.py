"""Secret scan of the tree, and no account id, access key or webhook URL in configuration.

``make lint`` runs ``python -m infra.secret_scan``. It checks every file git tracks or would
track (untracked files that are not ignored too, so a new file is checked before its first
commit), in two ways:

1. **detect-secrets**, with the plugins and filters recorded in ``.secrets.baseline``. A
   finding fails unless the baseline lists it (same file, same secret, same kind: moving a
   line does not matter). The baseline holds only audited false positives (``is_secret:
   false``), e.g. ``AWS_SECRET_ACCESS_KEY: testing`` for the local emulator. After auditing
   a new false positive, ``python -m infra.secret_scan --update-baseline`` rewrites the
   baseline, keeping the audit marks of the findings it already had.

2. **Identifiers that must never be committed**, by pattern:

   - an AWS access key id (``AKIA...``, ``ASIA...``) anywhere;
   - an incoming-webhook URL (Slack, Discord, Microsoft Teams, Google Chat) anywhere;
   - a 12-digit AWS account id in a template, workflow or configuration file
     (``infra/cloudformation/``, ``.github/``, ``config/``, ``ops_lambdas/.chalice/``,
     ``site/Dockerfile``, ``Makefile``, ``pyproject.toml``, ``requirements/``, ``.ci/``,
     ``infra/*.yaml``), where every 12-digit number is taken for one.

   Allowed: AWS's documented fakes (account ``123456789012``, the example key of AWS's
   documentation, Slack's ``T000.../B000...`` webhook shape) only under ``tests/``; and
   ``017000801446``, the account that publishes AWS's public Powertools for AWS Lambda
   layer, only in ``infra/cloudformation/ops.yaml`` (``ALLOWED_IDS``).

Exit codes: 0 clean, 1 findings, 2 the baseline cannot be read.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".secrets.baseline"
MAX_BYTES = 2_000_000  # larger files are data, not configuration or code

# Files whose every 12-digit number is taken for an account id (globs on the path from the
# repository's root).
CONFIGURATION = (
    "infra/cloudformation/*",
    "infra/*.yaml",
    ".github/*",
    "config/*",
    "ops_lambdas/.chalice/*",
    "site/Dockerfile",
    "Makefile",
    "pyproject.toml",
    "requirements/*",
    ".ci/*",
)
TESTS = ("tests/*",)

# Real account ids that are public and meant to be referenced, and the only file each may
# appear in.
ALLOWED_IDS = {
    "017000801446": (
        "infra/cloudformation/ops.yaml",
        "AWS's publisher account of the public Powertools for AWS Lambda layer",
    ),
}
# AWS's documentation placeholders: fine in tests, nowhere else.
FAKE_ACCOUNT_IDS = frozenset({"123456789012", "111122223333", "444455556666", "000000000000"})
# Spelt in two halves so that this file does not carry the key it allows.
FAKE_ACCESS_KEYS = frozenset({"AKIA" + "IOSFODNN7EXAMPLE", "ASIA" + "IOSFODNN7EXAMPLE"})

ACCOUNT_ID = re.compile(r"(?<![\w.])(\d{12})(?!\w)")
ACCESS_KEY = re.compile(r"(?<![A-Z0-9])((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})(?![A-Z0-9])")
WEBHOOK = re.compile(
    r"https?://(?:hooks\.slack\.com/(?:services|workflows|triggers)/[\w/-]+"
    r"|(?:discord|discordapp)\.com/api/webhooks/\d+/[\w-]+"
    r"|[\w-]+\.webhook\.office\.com/webhookb2/[\w@/-]+"
    r"|outlook\.office\.com/webhook/[\w@/-]+"
    r"|chat\.googleapis\.com/v1/spaces/[\w-]+/messages\?[\w=&%-]*key=[\w-]+)"
)
FAKE_WEBHOOK = re.compile(r"hooks\.slack\.com/services/T0+/B0+/")


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.detail}"


def _matches(path: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in globs)


def tree_files(root: Path = ROOT) -> list[str]:
    """Files git tracks or would track (not ignored), relative to ``root``."""
    done = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    )
    names = sorted({name for name in done.stdout.decode().split("\0") if name})
    return [name for name in names if (root / name).is_file()]


def _text(path: Path) -> str | None:
    if path.stat().st_size > MAX_BYTES:
        return None
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _mask(value: str) -> str:
    return value[:4] + "..." + value[-2:] if len(value) > 8 else value


# ---- identifiers ------------------------------------------------------------------------


def scan_identifiers(path: str, text: str) -> Iterator[Finding]:
    """Account ids (configuration only), access keys and webhook URLs in one file."""
    in_tests = _matches(path, TESTS)
    configuration = _matches(path, CONFIGURATION)
    for number, line in enumerate(text.splitlines(), start=1):
        for match in ACCESS_KEY.finditer(line):
            key = match.group(1)
            if not (in_tests and key in FAKE_ACCESS_KEYS):
                yield Finding(path, number, "AWS access key id", _mask(key))
        for match in WEBHOOK.finditer(line):
            url = match.group(0)
            if not (in_tests and FAKE_WEBHOOK.search(url)):
                yield Finding(path, number, "webhook URL", url.split("/", 3)[2] + "/...")
        if not configuration:
            continue
        for match in ACCOUNT_ID.finditer(line):
            account = match.group(1)
            allowed = ALLOWED_IDS.get(account)
            if allowed and allowed[0] == path:
                continue
            why = " (a documented fake: tests only)" if account in FAKE_ACCOUNT_IDS else ""
            yield Finding(path, number, "AWS account id", account + why)


# ---- detect-secrets --------------------------------------------------------------------


class BaselineError(Exception):
    """The baseline file cannot be read."""


def _load_baseline(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BaselineError(f"cannot read {path}: {exc}") from exc
    if not isinstance(loaded, dict) or "plugins_used" not in loaded:
        raise BaselineError(f"{path} is not a detect-secrets baseline")
    return loaded


def _scan(files: Sequence[str], root: Path, settings: dict[str, Any]) -> Any:
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import transient_settings

    config = {"plugins_used": settings["plugins_used"], "filters_used": settings["filters_used"]}
    # Findings carry the path as scanned; the baseline's are relative to the root.
    with transient_settings(config), contextlib.chdir(root):
        found = SecretsCollection()
        if files:
            found.scan_files(*files)
    return found


def scan_secrets(
    files: Sequence[str], root: Path = ROOT, baseline: Path = BASELINE
) -> list[Finding]:
    """detect-secrets findings that the baseline does not list."""
    from detect_secrets.core.secrets_collection import SecretsCollection

    loaded = _load_baseline(baseline)
    known = SecretsCollection.load_from_baseline(loaded)
    found = _scan([f for f in files if (root / f).resolve() != baseline.resolve()], root, loaded)
    return sorted(
        Finding(name, secret.line_number or 0, secret.type, "not in .secrets.baseline")
        for name, secret in found - known
    )


def update_baseline(files: Sequence[str], root: Path = ROOT, baseline: Path = BASELINE) -> int:
    """Rescan and rewrite the baseline; keep the audit marks it had. Return the count."""
    from detect_secrets.core import baseline as ds_baseline
    from detect_secrets.core.secrets_collection import SecretsCollection

    loaded = _load_baseline(baseline)
    old = SecretsCollection.load_from_baseline(loaded)
    marks = {(name, secret.secret_hash, secret.type): secret.is_secret for name, secret in old}
    found = _scan([f for f in files if (root / f).resolve() != baseline.resolve()], root, loaded)
    for name, secret in found:
        secret.is_secret = marks.get((name, secret.secret_hash, secret.type))
    output = ds_baseline.format_for_output(found)
    output["plugins_used"], output["filters_used"] = loaded["plugins_used"], loaded["filters_used"]
    output.pop("generated_at", None)  # a timestamp would change the file on every update
    baseline.write_text(json.dumps(output, indent=2) + "\n")
    return sum(1 for _ in found)


# ---- command line ----------------------------------------------------------------------


def check(files: Sequence[str], root: Path = ROOT, baseline: Path = BASELINE) -> list[Finding]:
    """Everything this module checks, over ``files`` (relative to ``root``)."""
    findings = scan_secrets(files, root, baseline)
    for name in files:
        text = _text(root / name)
        if text is not None:
            findings.extend(scan_identifiers(name, text))
    return sorted(set(findings))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.secret_scan", description=__doc__)
    parser.add_argument("paths", nargs="*", help="files to check (default: the whole tree)")
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument(
        "--update-baseline", action="store_true", help="rescan and rewrite the baseline"
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    baseline = (args.baseline or root / ".secrets.baseline").resolve()
    files = [str(Path(p)) for p in args.paths] if args.paths else tree_files(root)
    try:
        if args.update_baseline:
            count = update_baseline(files, root, baseline)
            print(f"{baseline.name}: {count} finding(s) recorded; audit new ones.", file=sys.stderr)
            return 0
        findings = check(files, root, baseline)
    except BaselineError as exc:
        print(exc, file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    if findings:
        print(
            f"{len(findings)} finding(s). A real secret: remove it, rotate it. A false "
            "positive of detect-secrets: audit it into .secrets.baseline (python -m "
            "infra.secret_scan --update-baseline). See infra/secret_scan.py.",
            file=sys.stderr,
        )
        return 1
    print(f"Secret scan: {len(files)} files clean.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
