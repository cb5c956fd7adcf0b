"""``/static/<name>``: the page's stylesheet and icon, read once at start and served from
memory.

The folder holds two small files that change only with the image. Reading them once means
no file system access per request, and a name either is one of them or is a 404: a probe
such as ``/static/../app.py`` never reaches the file system (Sanic's directory handler logs
those at ERROR). Browsers revalidate with ``If-None-Match`` or ``If-Modified-Since`` and
get 304.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sanic import Blueprint, Request
from sanic.exceptions import NotFound

from website.responses import CSS, SVG, SiteResponse, get_and_head

if TYPE_CHECKING:
    from website.context import SiteRequest

STATIC_DIR = Path(__file__).resolve().parent / "static"
_TYPES = {".css": CSS, ".svg": SVG}

bp = Blueprint("static", url_prefix="/static")


class StaticNotFound(NotFound):
    """No such static file."""

    message = "not found"
    quiet = True


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str
    last_modified: str
    modified_epoch: int

    @classmethod
    def read(cls, path: Path) -> StaticFile:
        body = path.read_bytes()
        modified = int(path.stat().st_mtime)
        guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return cls(
            body=body,
            content_type=_TYPES.get(path.suffix, guessed),
            etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
            last_modified=formatdate(modified, usegmt=True),
            modified_epoch=modified,
        )

    def headers(self) -> dict[str, str]:
        # no-cache: the browser keeps the file but asks every time (a 304 when unchanged),
        # so a new image's stylesheet shows at once.
        return {
            "ETag": self.etag,
            "Last-Modified": self.last_modified,
            "Cache-Control": "no-cache",
        }

    def not_modified(self, request: Request[Any, Any]) -> bool:
        """Whether the client's copy is current (``If-None-Match`` wins, as RFC 9110 says)."""
        tags = request.headers.get("if-none-match")
        if tags is not None:
            return tags.strip() == "*" or self.etag in (t.strip() for t in tags.split(","))
        since = request.headers.get("if-modified-since")
        if since is None:
            return False
        try:
            return self.modified_epoch <= int(parsedate_to_datetime(since).timestamp())
        except (TypeError, ValueError):
            return False


def read_static(folder: Path = STATIC_DIR) -> dict[str, StaticFile]:
    """Every file directly in ``folder``, by name."""
    return {path.name: StaticFile.read(path) for path in sorted(folder.iterdir()) if path.is_file()}


@get_and_head(bp, "/<name:str>", name="file")
async def static_file(request: SiteRequest, name: str) -> SiteResponse:
    found = request.app.ctx.static_files.get(name)
    if found is None:
        raise StaticNotFound
    if found.not_modified(request):
        return SiteResponse(status=304, headers=found.headers())
    return SiteResponse(found.body, headers=found.headers(), content_type=found.content_type)
