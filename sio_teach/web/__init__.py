"""The demo page: a chat in the browser over the official socket.io client, with live traces.

    python -m sio_teach serve --port 3000        # then open http://127.0.0.1:3000/ twice

What is served (see :func:`make_app`):

* ``/`` — ``static/index.html``: the chat, this page's packets (traced in the browser by
  ``static/app.js``), and the server's packets (the *inspector*);
* ``/static/…`` — ``app.js`` and ``style.css``;
* ``/vendor/socket.io.min.js`` — the npm ``socket.io-client`` bundle, read from ``node_modules`` at
  run time (``make install`` puts it there; it is never copied into this repository);
* ``/socket.io/`` — the server: the chat of ``examples/chat.py`` plus the ``/inspector`` namespace;
* ``/faults`` — only with ``serve --faults``: the fault knobs of the notebooks' ``lab``
  (:class:`~sio_teach.lab.Lab`), turned by the page's buttons (:class:`FaultsHandler`).

The inspector streams the server's own :class:`~sio_teach.trace.Tracer` records to every socket
of ``/inspector`` (event ``trace``: a list of lines), and the sessions the server holds (event
``sessions``, see :func:`sessions_view`). The packets of ``/inspector`` itself are left out of the
trace: each would produce a trace line, which would be sent, which would produce a trace line…

The page's views are small ES modules in ``static/``: ``app.js`` (the connection, the chat, the
text traces), ``wire.js`` (taps the client's engine and decodes packets), ``diagram.js`` (the
sequence diagram), ``packet.js`` (inside a packet), ``heartbeat.js``, ``sessions.js`` and
``faults.js``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from pathlib import Path
from typing import Any

import tornado.escape
import tornado.ioloop
import tornado.web

from sio_teach.admin.ui import find_ui
from sio_teach.admin.ui import routes as admin_ui_routes
from sio_teach.examples.chat import chat_server
from sio_teach.lab import HOST, Lab
from sio_teach.server import Server, Socket
from sio_teach.tasks import spawn
from sio_teach.trace import Record, Tracer
from sio_teach.transports.eio_server import EngineServer

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


def sessions_view(sio: Server) -> list[dict]:
    """The sessions ``sio`` holds, as the inspector shows them: for each Engine.IO session its
    alias (S1…), transport (and whether a WebSocket is probing), and its namespaces with the rooms
    each socket is in (less the room every socket has, named by its own id)."""
    rows = {
        sid: {
            "alias": sio.tracer.alias(sid),
            "transport": eio.transport,
            "upgrading": eio.probe is not None,
            "namespaces": {},
        }
        for sid, eio in sio.engine.sessions.items()
    }
    for nsp in sio.namespaces.values():
        for socket in nsp.sockets.values():
            row = rows.get(socket.conn.eio.sid)
            if row is not None:
                row["namespaces"][nsp.name] = sorted(r for r in socket.rooms if r != socket.id)
    return list(rows.values())


def add_inspector(sio: Server, namespace: str = "/inspector", backlog: int = 200) -> None:
    """Stream ``sio.tracer`` to every socket of ``namespace``: event ``trace`` with a list of lines.

    A socket that connects first gets ``hello`` (the alias of its own session in the server's
    trace) and the last ``backlog`` lines. Lines are sent in batches, once per loop iteration, and
    never from inside the tracer's callback (which runs in the middle of a write). While anyone
    watches, :func:`sessions_view` is checked twice a second and sent (event ``sessions``) when it
    changed.
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

    shown: list[list[dict]] = [[]]
    watch = tornado.ioloop.PeriodicCallback(lambda: check_sessions(), 500)

    def check_sessions() -> None:
        if not nsp.sockets:  # nobody watches (or this server was closed): stop looking
            watch.stop()
            return
        view = sessions_view(sio)
        if view != shown[0]:
            shown[0] = view
            nsp.emit("sessions", view)

    def on_connect(socket: Socket, auth: dict) -> None:
        socket.emit("hello", tracer.alias(socket.conn.eio.sid))
        socket.emit("trace", list(recent))
        shown[0] = sessions_view(sio)
        nsp.emit("sessions", shown[0])
        if not watch.is_running():
            watch.start()

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


def page_routes(bundle: Path | None) -> list[tuple]:
    """The page, its static files and the browser client (pass :func:`find_bundle`)."""
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
    return routes


class FaultsHandler(tornado.web.RequestHandler):
    """``/faults``: the lab's knobs over HTTP, for the demo page's buttons (``serve --faults``).

    ``GET`` answers the state; ``POST`` a JSON object ``{"action": …, "value": …}`` turns a knob
    and answers the new state. Actions: ``latency`` (seconds), ``block`` (true/false: refuse new
    WebSockets), ``drop`` (a session's alias), ``partition`` (seconds; then it heals), ``restart``.
    Plain HTTP, not Socket.IO: a button must still work while the page's connection is broken.
    """

    def initialize(self, lab: Lab) -> None:
        self.lab = lab

    def state(self) -> dict[str, Any]:
        return {
            "latency": self.lab.latency,
            "block": self.lab.engine.block_websocket,
            "partitioned": self.lab.partitioned,
        }

    def get(self) -> None:
        self.finish(self.state())

    def post(self) -> None:
        lab, loop = self.lab, asyncio.get_running_loop()
        try:
            body = json.loads(self.request.body or b"{}")
            action, value = body["action"], body.get("value")
            if action == "latency":
                lab.latency = max(0.0, min(float(value), 10.0))
            elif action == "block":
                lab.engine.block_websocket = bool(value)
            elif action == "drop":
                lab.drop(str(value))
            elif action == "partition":
                lab.partitioned = True
                loop.call_later(
                    max(0.0, min(float(value), 60.0)), setattr, lab, "partitioned", False
                )
            elif action == "restart":
                blocked = lab.engine.block_websocket
                loop.call_soon(
                    spawn, restart(lab, blocked), "restarting the server"
                )  # after this answer
            else:
                raise ValueError(action)
        except (KeyError, TypeError, ValueError) as error:
            self.set_status(400)
            self.finish({"error": f"not a fault: {error}"})
            return
        self.finish(self.state())


async def restart(lab: Lab, block_websocket: bool) -> None:
    await lab.restart()
    lab.engine.block_websocket = block_websocket  # a setting of the deployment: it survives


def make_app(sio: Server, bundle: Path | None) -> tornado.web.Application:
    """The Tornado application of the demo page around ``sio`` (pass :func:`find_bundle`)."""
    return tornado.web.Application(page_routes(bundle) + sio.routes())


def start_demo(
    *,
    host: str = HOST,
    port: int = 0,
    faults: bool = False,
    block_websocket: bool = False,
    tracer: Tracer | None = None,
    bundle: Path | None = None,
    admin: dict[str, Any] | None = None,
) -> Lab:
    """The demo server (:func:`demo_server`) and its page, listening on ``host:port`` on the
    running loop, as a :class:`~sio_teach.lab.Lab` (``.url``, ``.server``, ``.stop()``).
    With ``faults``, ``/faults`` turns the lab's knobs (the page then shows its fault buttons).
    With ``admin`` (the ``instrument()`` options), the server is instrumented for the Admin UI,
    whose page is served at ``/admin/`` (``admin/ui.py``)."""
    tracer = tracer or Tracer("server", sio=True)
    kept = list(tracer.listeners)  # the caller's; a restarted server brings its own inspector

    def make() -> tuple[Server, EngineServer]:
        tracer.listeners[:] = kept
        sio = demo_server(tracer)
        sio.engine.block_websocket = block_websocket
        if admin is not None:
            sio.instrument(**admin)
        return sio, sio.engine

    def routes(lab: Lab) -> list[tuple]:
        extra = [(r"/faults", FaultsHandler, {"lab": lab})] if faults else []
        if admin is not None and (dist := find_ui()) is not None:
            extra += admin_ui_routes(dist)
        return page_routes(bundle) + extra

    return Lab(make, "/socket.io/", port, host=host, routes=routes)
