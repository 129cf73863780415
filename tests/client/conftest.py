"""Helpers for the Socket.IO client tests: servers to talk to, and a recorder of client events.

* ``node_sio`` fixture — ``server = await node_sio(port=None)`` starts ``tests/js/sio_server.js``
  (the official npm ``socket.io`` server) on 127.0.0.1 and reads its JSON-lines reports;
  ``server.kill()`` SIGKILLs it, ``node_sio(port=server.port)`` starts a new one on the same port.
  A missing ``node`` or ``node_modules`` FAILS the test (``tests/conftest.py:node_executable``).
* ``our_sio`` fixture — ``live = await our_sio(port=0)`` starts the conformance app of
  ``sio_teach.examples.conformance`` in the test's loop; ``await live.stop()`` stops it (HTTP server
  stopped, ``sio.close()``, connections closed) so that it can be started again on the same port.
* ``make_client`` fixture — ``client = make_client(url, ...)`` builds a :class:`Client` with a fast
  backoff and disconnects it at teardown.
* :class:`Events` — records the client's special events (connect, disconnect, reconnect…) and
  waits for them, every wait bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from sio_teach import Client, Server
from sio_teach.examples.conformance import socketio_server
from sio_teach.sio.backoff import Backoff
from tests.conftest import HOST, JS_DIR, NODE_MODULES, ROOT, free_port, node_executable

FAST_BACKOFF = Backoff(delay=0.1, delay_max=0.5)
SPECIAL_EVENTS = (
    "connect",
    "disconnect",
    "connect_error",
    "reconnect_attempt",
    "reconnect",
    "reconnect_error",
    "reconnect_failed",
)


async def eventually(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` every 10 ms until it returns something truthy; fail after ``timeout``."""

    async def poll() -> Any:
        while not (result := predicate()):
            await asyncio.sleep(0.01)
        return result

    try:
        return await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")


# -- the client's events --------------------------------------------------------------------


class Events:
    """Records the special events of a client socket as ``(name, args)``, in order."""

    def __init__(self, socket: Any, names: tuple[str, ...] = SPECIAL_EVENTS) -> None:
        self.log: list[tuple[str, tuple[Any, ...]]] = []
        for name in names:
            socket.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.log.append((name, args))

        return record

    def args(self, name: str) -> list[tuple[Any, ...]]:
        return [args for event, args in self.log if event == name]

    def count(self, name: str) -> int:
        return len(self.args(name))

    def names(self) -> list[str]:
        return [event for event, _ in self.log]

    async def wait(self, name: str, count: int = 1, timeout: float = 10.0) -> tuple[Any, ...]:
        """Wait until ``name`` fired ``count`` times; return the args of the ``count``-th."""
        await eventually(
            lambda: self.count(name) >= count,
            timeout,
            f"client event {name!r} x{count} (seen: {self.log})",
        )
        return self.args(name)[count - 1]


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Client]]:
    """Factory fixture: ``make_client(url, **options)``; every client is disconnected at teardown."""
    clients: list[Client] = []

    def _make(url: str, **options: Any) -> Client:
        options.setdefault("backoff", FAST_BACKOFF)
        client = Client(url, **options)
        clients.append(client)
        return client

    yield _make
    for client in clients:
        try:
            await asyncio.wait_for(client.disconnect(), 5.0)
        except Exception:  # noqa: BLE001 - teardown must go on for the other clients
            pass


# -- the official Node server ---------------------------------------------------------------


class NodeServer:
    """``tests/js/sio_server.js`` in a subprocess, with the JSON records it printed."""

    def __init__(self, port: int, args: tuple[str, ...] = ()) -> None:
        self.port = port
        self.args = args  # more command-line flags, e.g. "--parser=msgpack"
        self.records: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._pumps: asyncio.Future[Any] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self, timeout: float = 20.0) -> None:
        node = node_executable()  # fails the test when node / node_modules are missing
        if not (NODE_MODULES / "socket.io" / "package.json").is_file():
            pytest.fail(
                f"npm package `socket.io` is missing from {NODE_MODULES}: run `npm ci` in {ROOT}",
                pytrace=False,
            )
        self.proc = await asyncio.create_subprocess_exec(
            node,
            str(JS_DIR / "sio_server.js"),
            str(self.port),
            "--lifetime=120",
            *self.args,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ},
            limit=64 * 1024 * 1024,  # a report line carries binary args as base64 (up to MBs)
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._pumps = asyncio.gather(
            self._read_stdout(self.proc.stdout), self._read_stderr(self.proc.stderr)
        )
        await self.wait_for("listening", timeout=timeout)

    async def _read_stdout(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", errors="replace").strip()
            if text:
                try:
                    self.records.append(json.loads(text))
                except json.JSONDecodeError:
                    self.stderr.append(f"(non-JSON stdout) {text}")

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr.append(line.decode("utf-8", errors="replace").rstrip("\n"))

    def find(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """The records of kind ``event`` whose fields equal ``fields``."""
        return [
            r
            for r in self.records
            if r.get("event") == event and all(r.get(k) == v for k, v in fields.items())
        ]

    def events(self, name: str, nsp: str = "/") -> list[list[Any]]:
        """The args of every ``name`` event the server received on ``nsp``, in order."""
        return [r["args"] for r in self.find("event", name=name, nsp=nsp)]

    async def wait_for(
        self, event: str, count: int = 1, timeout: float = 10.0, **fields: Any
    ) -> dict[str, Any]:
        """Wait for the ``count``-th record of kind ``event`` matching ``fields``; return it."""

        def ready() -> bool:
            if self.proc is not None and self.proc.returncode is not None and event != "exit":
                pytest.fail(f"node sio_server.js exited ({self.proc.returncode})\n{self.report()}")
            return len(self.find(event, **fields)) >= count

        try:
            await asyncio.wait_for(self._poll(ready), timeout)
        except TimeoutError:
            pytest.fail(
                f"node sio_server.js: no {event!r} {fields or ''} x{count} within {timeout} s\n"
                + self.report()
            )
        return self.find(event, **fields)[count - 1]

    @staticmethod
    async def _poll(ready: Callable[[], bool]) -> None:
        while not ready():
            await asyncio.sleep(0.01)

    def report(self) -> str:
        records = "\n".join(json.dumps(r) for r in self.records)
        return f"records:\n{records}\nstderr:\n" + "\n".join(self.stderr)

    async def kill(self) -> None:
        """SIGKILL (no goodbye to the clients: their connections just break)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(self.proc.wait(), 10.0)
        if self._pumps is not None:
            try:
                await asyncio.wait_for(self._pumps, 5.0)
            except TimeoutError:
                self._pumps.cancel()


@pytest.fixture
async def node_sio() -> AsyncIterator[Callable[..., Any]]:
    """Factory fixture: ``server = await node_sio(port=None, *flags)``; every server is killed at
    teardown."""
    started: list[NodeServer] = []

    async def _start(port: int | None = None, *flags: str) -> NodeServer:
        server = NodeServer(port if port is not None else free_port(), flags)
        started.append(server)
        await server.start()
        return server

    yield _start
    for server in started:
        await server.kill()


# -- our server -----------------------------------------------------------------------------


@dataclass
class OurServer:
    """The conformance Socket.IO app (``/`` and ``/custom``) on 127.0.0.1, in the test's loop.

    ``received`` lists every event the app received as ``(nsp, event, args)``, in order.
    """

    sio: Server
    http_server: tornado.httpserver.HTTPServer
    port: int
    received: list[tuple[str, str, tuple[Any, ...]]] = field(default_factory=list)
    stopped: bool = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def events(self, name: str, nsp: str = "/") -> list[tuple[Any, ...]]:
        return [args for n, event, args in self.received if n == nsp and event == name]

    async def stop(self) -> None:
        """Stop listening, disconnect everyone (``sio.close()``), close open connections."""
        if self.stopped:
            return
        self.stopped = True
        self.http_server.stop()
        self.sio.close()
        await asyncio.sleep(0.01)  # let the answered long-polls and close frames go out
        try:
            await asyncio.wait_for(self.http_server.close_all_connections(), 5.0)
        except TimeoutError:
            pass


async def start_our_server(port: int = 0, **options: Any) -> OurServer:
    """Start the conformance app on ``port`` (0: a free one) of 127.0.0.1."""
    sio = socketio_server(**options)
    sockets = tornado.netutil.bind_sockets(port, HOST)  # SO_REUSEADDR: a restart can rebind
    http_server = tornado.httpserver.HTTPServer(tornado.web.Application(sio.routes("/socket.io/")))
    http_server.add_sockets(sockets)
    live = OurServer(sio, http_server, sockets[0].getsockname()[1])
    for name in ("/", "/custom"):
        sio.of(name).on_any(
            lambda socket, event, *args, nsp=name: live.received.append((nsp, event, args))
        )
    return live


@pytest.fixture
async def our_sio() -> AsyncIterator[Callable[..., Any]]:
    """Factory fixture: ``live = await our_sio(port=0, **Server_options)``; stopped at teardown."""
    started: list[OurServer] = []

    async def _start(port: int = 0, **options: Any) -> OurServer:
        live = await start_our_server(port, **options)
        started.append(live)
        return live

    yield _start
    for live in started:
        await live.stop()
