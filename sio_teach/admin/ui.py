"""The Admin UI's page, served from ``node_modules`` (``python -m sio_teach serve --admin``).

The page is the npm package's ``ui/dist`` (a built Vue application, never copied into this
repository, never fetched from the internet): :func:`routes` serves it under ``/admin/``. Its
``index.html`` links two stylesheets on public CDNs (a web font and the icon font); they are left
out when the page is served, so the page asks nothing of the internet (icons then show as blanks).
In the page, log in with the server's URL (``http://127.0.0.1:3000``), the username and the
password; the namespace (``/admin``) and path (``/socket.io``) are the page's defaults.
"""

from __future__ import annotations

import re
from pathlib import Path

import tornado.web

UI_DIST = Path("node_modules", "@socket.io", "admin-ui", "ui", "dist")
REPO_ROOT = Path(__file__).resolve().parents[2]
EXTERNAL_LINK = re.compile(rb'<link rel="stylesheet" href="https://[^"]*">')


def find_ui() -> Path | None:
    """The UI's ``dist`` folder (under the current directory, then the repository root), or None
    if ``node_modules`` lacks it (``make install`` puts it there)."""
    places = [Path.cwd() / UI_DIST, REPO_ROOT / UI_DIST]
    return next((path for path in places if (path / "index.html").is_file()), None)


def local_index(html: bytes) -> bytes:
    """``index.html`` without its links to public CDNs."""
    return EXTERNAL_LINK.sub(b"", html)


class IndexHandler(tornado.web.RequestHandler):
    """``/admin/``: the UI's ``index.html``, with nothing loaded from the internet."""

    def initialize(self, dist: Path) -> None:
        self.dist = dist

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(local_index((self.dist / "index.html").read_bytes()))


def routes(dist: Path, prefix: str = "/admin/") -> list[tuple]:
    """Tornado routes serving the UI at ``prefix`` (pass :func:`find_ui`)."""
    return [
        (prefix.rstrip("/"), tornado.web.RedirectHandler, {"url": prefix}),
        (prefix, IndexHandler, {"dist": dist}),
        (prefix + "(.+)", tornado.web.StaticFileHandler, {"path": str(dist)}),
    ]
