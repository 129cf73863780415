"""Shared test helpers: live servers on 127.0.0.1, an HTTP client, and a runner for Node scripts.

Everything here is generic so that the Engine.IO, Socket.IO and client tests can share it:

* :func:`free_port` — an unused TCP port on 127.0.0.1 (for a server in a *subprocess*; an in-process
  server binds port 0 directly, which cannot race).
* ``serve`` fixture — ``live = await serve(routes_or_app, engines=[...])`` starts a Tornado app on a
  free port inside the test's running event loop; every server is stopped at teardown
  (``engine.close_all()``, ``http_server.stop()``, open connections closed).
* ``eio_echo`` fixture — ``app = await eio_echo(ping_interval=0.3, ...)`` serves a raw Engine.IO
  echo (every message comes back as it came) and records the sessions it sees.
* ``http_client`` fixture — a private :class:`tornado.httpclient.AsyncHTTPClient`, closed afterwards.
* ``ws_connect`` fixture — ``ws = await ws_connect(url)`` opens a Tornado WebSocket client
  (bounded by a timeout) and closes it at teardown.
* ``run_node`` fixture / :func:`run_node` — run a script from ``tests/js/`` with ``node`` and return
  its JSON-lines stdout. A missing ``node`` or ``node_modules`` FAILS the test (``make test``
  installs them; a skip would hide that the interop tests did not run).

Every wait is bounded: helpers take a ``timeout`` and raise instead of hanging.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from sio_teach.transports.eio_server import EngineServer, EngineSocket
from sio_teach.transports.http import DEFAULT_LIMITS, HTTPServer, Limits

ROOT = Path(__file__).resolve().parent.parent
JS_DIR = ROOT / "tests" / "js"
NODE_MODULES = ROOT / "node_modules"
HOST = "127.0.0.1"


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (bind port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# -- live servers ---------------------------------------------------------------------------


@dataclass
class LiveServer:
    """A Tornado HTTP server listening on 127.0.0.1 inside the test's event loop."""

    port: int
    http_server: tornado.httpserver.HTTPServer
    engines: list[Any] = field(default_factory=list)  # objects with close_all(), closed first
    stopped: bool = False

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def url(self, path: str = "/", **query: Any) -> str:
        """``http://127.0.0.1:PORT{path}?{query}`` (``None`` values are left out)."""
        args = {k: v for k, v in query.items() if v is not None}
        return f"{self.base_url}{path}" + (f"?{urlencode(args)}" if args else "")

    def ws_url(self, path: str = "/", **query: Any) -> str:
        return "ws" + self.url(path, **query)[len("http") :]

    async def stop(self, timeout: float = 5.0) -> None:
        """Close every session, stop listening, close open connections (idempotent)."""
        if self.stopped:
            return
        self.stopped = True
        for engine in self.engines:
            engine.close_all()
        self.http_server.stop()
        await asyncio.sleep(0)  # let answered long-polls write their last body
        try:
            await asyncio.wait_for(self.http_server.close_all_connections(), timeout)
        except TimeoutError:
            pass  # a connection that will not close must not hang the suite


async def start_server(
    app_or_routes: tornado.web.Application | Sequence[Any],
    *,
    engines: Sequence[Any] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> LiveServer:
    """Start ``app_or_routes`` on a free port of 127.0.0.1 in the running loop, with the HTTP
    server sio_teach listens with (``transports/http.py``) and its ``limits``. Stop it yourself."""
    app = (
        app_or_routes
        if isinstance(app_or_routes, tornado.web.Application)
        else tornado.web.Application(list(app_or_routes))
    )
    sockets = tornado.netutil.bind_sockets(0, HOST)
    http_server = HTTPServer(app, limits=limits)
    http_server.add_sockets(sockets)
    return LiveServer(sockets[0].getsockname()[1], http_server, list(engines))


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[LiveServer]]]:
    """Factory fixture: ``live = await serve(routes_or_app, engines=[engine])``; stopped at teardown."""
    started: list[LiveServer] = []

    async def _serve(
        app_or_routes: tornado.web.Application | Sequence[Any],
        *,
        engines: Sequence[Any] = (),
        limits: Limits = DEFAULT_LIMITS,
    ) -> LiveServer:
        live = await start_server(app_or_routes, engines=engines, limits=limits)
        started.append(live)
        return live

    yield _serve
    for live in reversed(started):
        await live.stop()


@dataclass
class EchoApp:
    """A raw Engine.IO echo server and what it saw (sessions by sid, close reasons by sid)."""

    live: LiveServer
    engine: EngineServer
    path: str
    sockets: dict[str, EngineSocket] = field(default_factory=dict)
    closed: dict[str, str] = field(default_factory=dict)
    received: dict[str, list[str | bytes]] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.live.port

    def url(self, **query: Any) -> str:
        """The Engine.IO URL with ``EIO=4`` and the given query (``transport=``, ``sid=``)."""
        return self.live.url(self.path, **{"EIO": 4, **query})

    def ws_url(self, **query: Any) -> str:
        return self.live.ws_url(self.path, **{"EIO": 4, "transport": "websocket", **query})

    async def wait_closed(self, sid: str, timeout: float = 5.0) -> str:
        """Wait until the server reports session ``sid`` closed; return the reason."""

        async def poll() -> str:
            while sid not in self.closed:
                await asyncio.sleep(0.01)
            return self.closed[sid]

        return await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def eio_echo(
    serve: Callable[..., Awaitable[LiveServer]],
) -> Callable[..., Awaitable[EchoApp]]:
    """Factory fixture: ``app = await eio_echo(echo=True, path="/engine.io/", **EngineServer_options)``.

    With ``echo=False`` messages are only recorded in ``app.received`` (the test sends by hand through
    ``app.sockets[sid].send(...)``).
    """

    async def _start(*, echo: bool = True, path: str = "/engine.io/", **options: Any) -> EchoApp:
        holder: list[EchoApp] = []

        def on_connect(sock: EngineSocket) -> None:
            app = holder[0]
            app.sockets[sock.sid] = sock
            app.received[sock.sid] = received = []

            def on_message(data: str | bytes) -> None:
                received.append(data)
                if echo:
                    sock.send(data)

            def on_close(reason: str) -> None:
                app.closed[sock.sid] = reason

            sock.on_message = on_message
            sock.on_close = on_close

        engine = EngineServer(on_connect, **options)
        live = await serve(engine.routes(path), engines=[engine])
        holder.append(EchoApp(live, engine, path))
        return holder[0]

    return _start


@pytest.fixture
async def http_client() -> AsyncIterator[tornado.httpclient.AsyncHTTPClient]:
    """A private AsyncHTTPClient (not the per-loop singleton), closed at teardown."""
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=50)
    yield client
    client.close()


@pytest.fixture
async def ws_connect() -> AsyncIterator[
    Callable[..., Awaitable[tornado.websocket.WebSocketClientConnection]]
]:
    """Factory fixture: ``ws = await ws_connect(url_or_request, timeout=5.0, **options)``.

    Raises what ``websocket_connect`` raises (e.g. ``HTTPClientError`` for a refused handshake).
    Every connection opened is closed at teardown.
    """
    opened: list[tornado.websocket.WebSocketClientConnection] = []

    async def _connect(
        url: str | tornado.httpclient.HTTPRequest, *, timeout: float = 5.0, **options: Any
    ) -> tornado.websocket.WebSocketClientConnection:
        ws = await asyncio.wait_for(tornado.websocket.websocket_connect(url, **options), timeout)
        opened.append(ws)
        return ws

    yield _connect
    for ws in opened:
        ws.close()
    await asyncio.sleep(0)


# -- Node.js ----------------------------------------------------------------------------------


class NodeScriptError(AssertionError):
    """A Node script failed, timed out, or printed something that is not JSON."""


def node_executable() -> str:
    """The ``node`` binary; fails the test (never skips) when Node or node_modules is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "`node` is not on PATH: the interop tests need Node.js (>= 18). "
            "Install it, then run `make install` (or `npm ci`) in the repository root.",
            pytrace=False,
        )
    if not NODE_MODULES.is_dir():
        pytest.fail(
            f"{NODE_MODULES} is missing: run `make install` (or `npm ci`) in {ROOT} "
            "to install the official Engine.IO / Socket.IO clients pinned in package.json.",
            pytrace=False,
        )
    return node


async def run_node(
    script: str,
    *args: Any,
    timeout: float = 30.0,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run ``tests/js/<script>`` with ``node`` (cwd = repository root) and return its JSON lines.

    Each stdout line must be one JSON object. Fails (with the script's stderr) on a timeout, a
    non-JSON line, or — when ``check`` — a non-zero exit status.
    """
    node = node_executable()
    path = JS_DIR / script
    if not path.is_file():
        pytest.fail(f"Node script {path} does not exist", pytrace=False)
    proc = await asyncio.create_subprocess_exec(
        node,
        str(path),
        *map(str, args),
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out_lines: list[str] = []
    err_lines: list[str] = []

    async def pump(stream: asyncio.StreamReader, sink: list[str]) -> None:
        while line := await stream.readline():
            sink.append(line.decode("utf-8", errors="replace").rstrip("\n"))

    assert proc.stdout is not None and proc.stderr is not None
    pumps = asyncio.gather(pump(proc.stdout, out_lines), pump(proc.stderr, err_lines))
    try:
        await asyncio.wait_for(asyncio.shield(pumps), timeout)
        returncode = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        await asyncio.wait_for(pumps, 5.0)
        raise NodeScriptError(
            f"node {script} {' '.join(map(str, args))} timed out after {timeout} s\n"
            f"stdout:\n" + "\n".join(out_lines) + "\nstderr:\n" + "\n".join(err_lines)
        ) from None
    report = "stdout:\n" + "\n".join(out_lines) + "\nstderr:\n" + "\n".join(err_lines)
    if check and returncode != 0:
        raise NodeScriptError(f"node {script} exited with status {returncode}\n{report}")
    records = []
    for line in out_lines:
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise NodeScriptError(
                f"node {script} printed a non-JSON line: {line!r}\n{report}"
            ) from None
    return records


@pytest.fixture(name="run_node")
def run_node_fixture() -> Callable[..., Awaitable[list[dict[str, Any]]]]:
    """The :func:`run_node` helper as a fixture (``records = await run_node("x.js", url)``)."""
    return run_node
