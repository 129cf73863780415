"""A server with fault knobs: the one implementation behind the notebooks' ``lab`` and ``serve --faults``.

:class:`Lab` runs a server on the running loop and holds the knobs; :class:`LabHandler` is the
Engine.IO handler that obeys them. ``sio_teach.lab.start_server`` (the notebooks) and
``python -m sio_teach serve --faults`` (the demo page's fault buttons, :class:`FaultsHandler`)
both use these two classes. The knobs:

* ``latency`` — seconds added to every server write (long-poll answers and WebSocket frames), in
  order;
* ``partitioned`` — WebSocket frames and closes vanish both ways while TCP stays up: only a
  heartbeat can tell;
* :meth:`Lab.drop` — cut a session's WebSocket, as a crash or a pulled cable would;
* ``engine.block_websocket`` — the server refuses WebSockets, as some proxies do;
* :meth:`Lab.restart` — a fresh server on the same port, as after a process restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import tornado.netutil
import tornado.web

from sio_teach.server import Server
from sio_teach.transports.eio_server import EngineHandler, EngineServer
from sio_teach.transports.http import HTTPServer

HOST = "127.0.0.1"


class Lab:
    """A server on the running loop, its tracer, and fault knobs (see the module's docstring).

    ``make()`` builds the server (and returns it with its Engine.IO server); ``setup(server)`` runs
    on each new server before it listens; ``routes(lab)`` adds Tornado routes beside the server's
    (the demo page). :meth:`restart` replaces the server by a fresh one on the same port."""

    def __init__(
        self,
        make: Callable[[], tuple[Server | EngineServer, EngineServer]],
        path: str,
        port: int = 0,
        setup: Callable[[Any], None] | None = None,
        *,
        host: str = HOST,
        routes: Callable[[Lab], list[Any]] | None = None,
    ) -> None:
        self.make, self.path, self.port, self.setup = make, path, port, setup
        self.host, self.routes = host, routes
        self.latency, self.partitioned = 0.0, False
        self.handlers: set[LabHandler] = set()  # every WebSocket, for stop()
        self._listen()

    def _listen(self) -> None:
        """A new server from ``make`` (then ``setup(server)``), listening on ``port`` (0: free)."""
        self.server, self.engine = self.make()
        self.tracer = self.engine.tracer
        if self.setup is not None:
            self.setup(self.server)  # before listening: no client can come in first
        extra = self.routes(self) if self.routes is not None else []
        app = tornado.web.Application(
            [*extra, (self.path, LabHandler, {"engine": self.engine, "lab": self})]
        )
        self.http_server = HTTPServer(app)
        sockets = tornado.netutil.bind_sockets(self.port, self.host)  # port 0: the OS picks one
        self.port = sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"  # the base URL, for a client
        self.http_server.add_sockets(sockets)
        self.running = True

    def endpoint(self, transport: str = "polling", **query: str) -> str:
        """The raw Engine.IO URL, for requests made by hand (``sid=`` etc. in ``query``)."""
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        url = f"{self.url}{self.path}?EIO=4&transport={transport}{extra}"
        return url.replace("http", "ws", 1) if transport == "websocket" else url

    def drop(self, alias: str) -> None:
        """Cut the WebSocket of session ``alias`` ("S1"…) as a crash or a pulled cable would."""
        for sid, socket in self.engine.sessions.items():
            if self.tracer.alias(sid) == alias and socket.ws and socket.ws.ws_connection:
                socket.ws.ws_connection.stream.close()

    async def stop(self) -> None:
        """Close every session and WebSocket, stop listening, close open HTTP connections."""
        self.latency, self.partitioned, self.running = 0.0, False, False
        self.engine.close_all()
        for handler in list(self.handlers):
            handler.close()
        self.handlers.clear()
        self.http_server.stop()
        await asyncio.sleep(0.05)  # let the last answers (close packets) leave
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.http_server.close_all_connections(), 2.0)

    async def shutdown(self) -> None:
        """:meth:`stop`, then close the server's adapters and wait for them (a Redis adapter
        stops listening and closes its Redis connections). For a raw Engine.IO lab: stop only."""
        await self.stop()
        if isinstance(self.server, Server):
            self.server.close()
            for nsp in list(self.server.namespaces.values()):
                aclose = getattr(nsp.adapter, "aclose", None)
                if aclose is not None:
                    await aclose()

    async def restart(self) -> None:
        """Start again on the same port (stopping first if still running), as after a process
        restart: a fresh server with the same options and ``setup``, so no session, socket or room
        survives; the tracer and the id counter carry on (aliases and ids stay unique)."""
        if self.running:
            await self.stop()
        self._listen()


class LabHandler(EngineHandler):
    """The Engine.IO handler plus the lab's fault knobs (at rest, it changes nothing)."""

    def initialize(self, engine: EngineServer, lab: Lab) -> None:  # type: ignore[override]
        super().initialize(engine)
        self.lab = lab

    def finish(self, chunk: Any = None) -> Any:
        if chunk is not None and self.lab.latency and self._auto_finish and not self._finished:
            self._auto_finish = False  # the answer waits out the latency: Tornado must not end it
            asyncio.get_running_loop().call_later(self.lab.latency, super().finish, chunk)
            return None
        return super().finish(chunk)

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.lab.handlers.add(self)
        super().open(*args, **kwargs)

    def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
        if not self.lab.partitioned:
            super().on_message(message)

    def on_ws_connection_close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.lab.partitioned:  # a partition hides the peer's close too
            super().on_ws_connection_close(code, reason)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.lab.partitioned:
            super().close(code, reason)

    def write_frame(self, data: bytes) -> None:
        if self.lab.partitioned:
            return  # lost: the tracer saw it leave, the client never sees it
        if not self.lab.latency:
            return super().write_frame(data)
        # the same delay for every frame: timers fire in order, so frames keep their order
        asyncio.get_running_loop().call_later(self.lab.latency, super().write_frame, data)


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
                loop.call_soon(asyncio.ensure_future, restart(lab, blocked))  # after this answer
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
