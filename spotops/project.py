"""Where the checkout is: the one lookup every entry point (the CLI, ``make image``, the
demo) shares, kept apart from the factory so that a module below it never imports it."""

from __future__ import annotations

from pathlib import Path


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest directory (from ``start`` up) holding ``infra/cloudformation``.

    Falls back to the checkout this package lives in.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "infra" / "cloudformation").is_dir():
            return candidate
    return Path(__file__).resolve().parent.parent
