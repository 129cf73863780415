"""The demo page: a chat in the browser over the official socket.io client, with live traces.

    python -m sio_teach serve --port 3000        # then open http://127.0.0.1:3000/ twice

What is served (see :func:`make_app`):

* ``/`` — ``static/index.html``: the chat, this page's packets (traced in the browser by
  ``static/app.js``), and the server's packets (the *inspector*);
* ``/static/…`` — ``app.js`` and ``style.css``;
* ``/vendor/socket.io.min.js`` — the npm ``socket.io-client`` bundle, read from ``node_modules`` at
  run time (``make install`` puts it there; it is never copied into this repository);
* ``/socket.io/`` — the server: the chat of ``examples/chat.py`` plus the ``/inspector`` namespace.

The inspector streams the server's own :class:`~sio_teach.trace.Tracer` records to every socket
of ``/inspector`` (event ``trace``: a list of lines). The packets of ``/inspector`` itself are left
out: each would produce a trace line, which would be sent, which would produce a trace line…
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from pathlib import Path

import tornado.escape
import tornado.web

from sio_teach.examples.chat import chat_server
from sio_teach.server import Server, Socket
from sio_teach.trace import Record, Tracer

STATIC = Path(__file__).resolve().parent / "static"
REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path("node_modules", "socket.io-client", "dist", "socket.io.min.js")


def bundle_places() -> list[Path]:
    """Where the browser client is looked for: under the current directory, then the repo root."""
    return [Path.cwd() / BUNDLE, REPO_ROOT / BUNDLE]


def find_bundle() -> Path | None:
    """The npm ``socket.io-client`` browser bundle, or ``None`` if ``node_modules`` lacks it."""
    return next((path for path in bundle_places() if path.is_file()), None)


def missing_bundle_message() -> str:
    places = " or ".join(str(path) for path in bundle_places())
    return (
        f"The official browser client is missing: looked for {places}. "
        "Run `make install` (or `npm ci`) in the repository root: it installs socket.io-client "
        "from package.json into node_modules/."
    )


def add_inspector(sio: Server, namespace: str = "/inspector", backlog: int = 200) -> None:
    """Stream ``sio.tracer`` to every socket of ``namespace``: event ``trace`` with a list of lines.

    A socket that connects first gets ``hello`` (the alias of its own session in the server's
    trace) and the last ``backlog`` lines. Lines are sent in batches, once per loop iteration, and
    never from inside the tracer's callback (which runs in the middle of a write).
    """
    tracer = sio.tracer
    tracer.enabled = True
    nsp = sio.of(namespace)
    own = re.compile(rf"4\d(\d+-)?{re.escape(namespace)},")  # 42/inspector,["trace",…]
    recent: deque[str] = deque(maxlen=backlog)
    pending: list[str] = []

    def flush() -> None:
        lines = pending.copy()
        pending.clear()
        nsp.emit("trace", lines)

    def on_record(record: Record) -> None:
        if own.match(record.wire):
            return
        line = record.line()
        recent.append(line)
        if not pending:
            asyncio.get_running_loop().call_soon(flush)
        pending.append(line)

    tracer.listeners.append(on_record)

    def on_connect(socket: Socket, auth: dict) -> None:
        socket.emit("hello", tracer.alias(socket.conn.eio.sid))
        socket.emit("trace", list(recent))

    nsp.on("connect", on_connect)


def demo_server(tracer: Tracer | None = None) -> Server:
    """The chat of ``examples/chat.py`` (room ``lobby``, event ``chat``) plus the inspector."""
    sio = chat_server(tracer or Tracer("server", sio=True))
    add_inspector(sio)
    return sio


class PageHandler(tornado.web.RequestHandler):
    """``/``: the page, or an error page that says how to install the browser client."""

    def initialize(self, bundle: Path | None) -> None:
        self.bundle = bundle

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        if self.bundle is None:
            self.set_status(500)
            message = tornado.escape.xhtml_escape(missing_bundle_message())
            self.finish(
                f"<!doctype html><title>sio_teach</title><h1>Cannot serve the demo</h1><p>{message}"
            )
            return
        self.finish((STATIC / "index.html").read_bytes())


def make_app(sio: Server, bundle: Path | None) -> tornado.web.Application:
    """The Tornado application of the demo page around ``sio`` (pass :func:`find_bundle`)."""
    routes: list[tuple] = [
        (r"/", PageHandler, {"bundle": bundle}),
        (r"/static/(.*)", tornado.web.StaticFileHandler, {"path": str(STATIC)}),
    ]
    if bundle is not None:
        routes.append(
            (
                r"/vendor/(socket\.io\.min\.js)",
                tornado.web.StaticFileHandler,
                {"path": str(bundle.parent)},
            )
        )
    return tornado.web.Application(routes + sio.routes())
