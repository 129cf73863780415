"""The Redis Streams adapter: the reference's wire format, no broadcast lost while Redis connections
are killed, sessions restored on another node (our client and the official one), and a cluster
of two Python nodes and one Node.js node (``@socket.io/redis-streams-adapter``)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgpack
import pytest
import redis.asyncio
import tornado.netutil
import tornado.web

from sio_teach import Client, Server
from sio_teach.adapters.redis_streams import (
    APPEND_SCRIPT,
    RedisStreamsAdapter,
    decode_entry,
    decode_session,
    encode_entry,
    encode_session,
    redis_streams_adapter,
)
from sio_teach.examples.conformance import make_app
from sio_teach.sio.backoff import Backoff
from sio_teach.sio.recovery import Session
from sio_teach.transports.http import HTTPServer
from tests.adapters.conftest import WAIT, make_server
from tests.conftest import HOST, NODE_MODULES, ROOT, LiveServer, node_executable, start_server

STREAMS_NODE = ROOT / "tests" / "adapters" / "redis_node.js"  # with "streams"
RECOVERY_CLIENT = ROOT / "tests" / "adapters" / "recovery_client.js"

# -- the wire format (golden vectors: what dist/adapter.js encode() writes) -------------------


def test_a_broadcast_entry_is_four_string_fields_with_json_data() -> None:
    message = {
        "uid": "0123456789abcdef",
        "nsp": "/",
        "type": 3,
        "data": {
            "packet": {"type": 2, "data": ["chat", 1], "nsp": "/"},
            "opts": {"rooms": ["r1"], "except": [], "flags": {}},
        },
    }
    fields = encode_entry(message)
    assert fields == {
        "uid": "0123456789abcdef",
        "nsp": "/",
        "type": "3",
        "data": '{"packet":{"type":2,"data":["chat",1],"nsp":"/"},'
        '"opts":{"rooms":["r1"],"except":[],"flags":{}}}',
    }
    assert decode_entry({k.encode(): v.encode() for k, v in fields.items()}) == message


def test_bytes_make_the_data_base64_msgpack() -> None:
    data = {"packet": {"type": 2, "data": ["bin", b"\x01\x02"], "nsp": "/"}, "opts": {}}
    fields = encode_entry({"uid": "u", "nsp": "/", "type": 3, "data": data})
    assert fields["data"] == base64.b64encode(msgpack.packb(data, use_bin_type=True)).decode()
    assert decode_entry(fields)["data"] == data
    join = {"uid": "u", "nsp": "/", "type": 4, "data": {"opts": {}, "rooms": ["a"]}}
    assert encode_entry(join)["data"] == '{"opts":{},"rooms":["a"]}'  # never binary


def test_a_session_is_base64_msgpack_of_sid_pid_rooms_data() -> None:
    text = encode_session(Session("s1", "p1", {"s1", "r"}, {"k": 1}))
    expected = {"sid": "s1", "pid": "p1", "rooms": ["r", "s1"], "data": {"k": 1}}
    assert msgpack.unpackb(base64.b64decode(text)) == expected
    restored = decode_session(text)
    assert (restored.sid, restored.pid, restored.rooms, restored.data) == (
        "s1",
        "p1",
        {"s1", "r"},
        {"k": 1},
    )


async def test_a_batch_sent_again_is_written_once(redis_server: Any) -> None:
    """What the writer does when a reply is lost: the same batch again, answered from the record."""
    r = redis.asyncio.Redis.from_url(redis_server.url)
    script = r.register_script(APPEND_SCRIPT)
    entry = ["uid", "u", "nsp", "/", "type", "4", "data", '{"opts":{},"rooms":["a"]}']
    try:
        first = await script(keys=["s", "s#writer#u"], args=[1, 2, 10_000, 60_000, *entry, *entry])
        again = await script(keys=["s", "s#writer#u"], args=[1, 2, 10_000, 60_000, *entry, *entry])
        assert first == again and len(first.split()) == 2
        assert await r.xlen("s") == 2
        await script(keys=["s", "s#writer#u"], args=[3, 1, 10_000, 60_000, *entry])
        assert await r.xlen("s") == 3
    finally:
        await r.aclose()


# -- helpers ----------------------------------------------------------------------------------


def streams_server(url: str, **options: Any) -> Server:
    """A Python node with the handlers of ``redis_node.js``, on the streams adapter, recovering."""
    adapter = redis_streams_adapter(url, requests_timeout=3.0)
    return make_server(url, adapter=adapter, connection_state_recovery=True, **options)


def adapter_of(sio: Server) -> RedisStreamsAdapter:
    return sio.of("/").adapter  # type: ignore[return-value]


async def serve_on(sio: Server, port: int = 0) -> LiveServer:
    """``sio`` on ``port`` of 127.0.0.1 (0: a free one), ready on the stream."""
    if port == 0:
        live = await start_server(sio.routes(), engines=[sio.engine])
    else:  # a node taking the place of one that went away
        http_server = HTTPServer(tornado.web.Application(sio.routes()))
        http_server.add_sockets(tornado.netutil.bind_sockets(port, HOST))
        live = LiveServer(port, http_server, [sio.engine])
    await adapter_of(sio).wait_ready(WAIT)
    return live


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[..., Awaitable[tuple[Server, LiveServer]]]]:
    started: list[tuple[Server, LiveServer]] = []

    async def _start(url: str, port: int = 0) -> tuple[Server, LiveServer]:
        sio = streams_server(url)
        live = await serve_on(sio, port)
        started.append((sio, live))
        return sio, live

    yield _start
    for sio, live in started:
        await live.stop()
        await adapter_of(sio).aclose()


async def listeners(url: str) -> int:
    """How many nodes listen on ``/`` (subscribers of its public channel)."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        [(_, count)] = await client.pubsub_numsub("socket.io#/#")
        return int(count)
    finally:
        await client.aclose()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


class NodeProcess:
    """A Node.js script printing JSON lines; ``lines`` fills as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(json.loads(line))

    async def wait(self, predicate: Callable[[dict[str, Any]], bool], count: int = 1) -> list:
        async with asyncio.timeout(10.0):
            while len(found := [x for x in self.lines if predicate(x)]) < count:
                await asyncio.sleep(0.02)
        return found


@pytest.fixture
async def node_script() -> AsyncIterator[Callable[..., Awaitable[NodeProcess]]]:
    started: list[NodeProcess] = []

    async def _run(script: Any, *args: str) -> NodeProcess:
        node = node_executable()
        for package in ("@socket.io/redis-streams-adapter", "socket.io", "socket.io-client"):
            if not (NODE_MODULES / package).is_dir():
                pytest.fail(f"npm package {package} is missing: run `npm ci`", pytrace=False)
        proc = await asyncio.create_subprocess_exec(
            node, str(script), *args, cwd=ROOT, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        started.append(process := NodeProcess(proc))
        return process

    yield _run
    for process in started:
        if process.proc.returncode is None:
            process.proc.kill()
        await asyncio.wait_for(process.proc.wait(), WAIT)
        process.task.cancel()


# -- no broadcast lost ------------------------------------------------------------------------


async def test_no_broadcast_lost_or_doubled_while_redis_connections_are_killed(
    redis_server: Any, nodes: Any, client: Any
) -> None:
    (a, live_a), (_b, live_b) = await nodes(redis_server.url), await nodes(redis_server.url)
    clients = [await client(live.base_url, f"{n}{i}") for n, live in (("A", live_a), ("B", live_b))
               for i in range(2)]  # fmt: skip
    admin = redis.asyncio.Redis.from_url(redis_server.url)
    total = 300
    killed = 0
    done = asyncio.Event()

    async def kill() -> None:
        nonlocal killed
        for _ in range(2000):  # bounded; stops when the numbers are all sent
            if done.is_set():
                return
            killed += await admin.execute_command("CLIENT", "KILL", "TYPE", "normal")
            await asyncio.sleep(0.01)

    killer = asyncio.ensure_future(kill())
    for i in range(total):
        a.emit("n", i)
        if i % 5 == 4:
            await asyncio.sleep(0.005)  # pacing: the kills land in the middle of the stream
    done.set()
    await killer
    try:
        for rec in clients:
            got = await rec.wait("n", total, timeout=30.0)
            assert [g[0] for g in got] == list(range(total)), rec.name
        offsets = [[g[1] for g in rec.got("n")] for rec in clients]
        assert all(o == offsets[0] for o in offsets)  # the stream id, the same on every node
        entries = await admin.xrange("socket.io", "-", "+")
        mine = [e for _, e in entries if e[b"uid"] == adapter_of(a).uid.encode()]
        assert len(mine) == total  # each number written once, though replies were lost
        assert [_id.decode() for _id, _ in entries] == offsets[0]
    finally:
        await admin.aclose()
    assert killed > 0
    print(f"killed {killed} connections; {adapter_of(a).retries} batches sent again")


# -- connection state recovery across nodes -----------------------------------------------------


async def test_our_client_cut_from_one_node_is_restored_by_another(
    redis_server: Any, nodes: Any
) -> None:
    (_a, live_a), (b, _) = await nodes(redis_server.url), await nodes(redis_server.url)
    news: list[tuple[Any, ...]] = []
    client = Client(live_a.base_url, transports=["websocket"], backoff=Backoff(0.1, 0.2))
    client.on("news", lambda *args: news.append(args))
    await client.connect(timeout=WAIT)
    try:
        first_id = client.id
        assert await client.emit_with_ack("join", "r1", timeout=WAIT) == "r1"
        b.to("r1").emit("news", 1)
        async with asyncio.timeout(WAIT):
            while not news:
                await asyncio.sleep(0.01)

        await cut_then_miss(redis_server.url, live_a, b)
        a2, _ = await nodes(redis_server.url, live_a.port)  # another node where A was
        async with asyncio.timeout(10.0):
            while len(news) < 3:
                await asyncio.sleep(0.01)
        assert client.recovered and client.id == first_id
        assert [n[0] for n in news] == [1, 2, 3]
        assert len({n[1] for n in news}) == 3  # each with its offset
        (restored,) = a2.of("/").sockets.values()
        assert restored.recovered and "r1" in restored.rooms
    finally:
        await client.close()


async def cut_then_miss(redis_url: str, live_a: LiveServer, b: Server) -> None:
    """Node A goes away (its session goes to Redis); node B then sends news 2 and 3 to the
    session's room and to everyone, and one to another room."""
    await live_a.stop()
    admin = redis.asyncio.Redis.from_url(redis_url)
    try:
        await wait_for(lambda: _has_session(admin))
    finally:
        await admin.aclose()
    b.to("r1").emit("news", 2)
    b.to("elsewhere").emit("news", "not for r1")
    b.emit("news", 3)


async def _has_session(admin: redis.asyncio.Redis) -> bool:
    return bool(await admin.keys("sio:session:*"))


async def test_the_official_client_cut_from_one_node_is_restored_by_another(
    redis_server: Any, nodes: Any, node_script: Any
) -> None:
    (_a, live_a), (b, _) = await nodes(redis_server.url), await nodes(redis_server.url)
    js = await node_script(RECOVERY_CLIENT, live_a.base_url)
    await js.wait(lambda x: x["event"] == "ready")
    first_id = js.lines[0]["id"]
    b.to("r1").emit("news", 1)
    await js.wait(lambda x: x["event"] == "news")

    await cut_then_miss(redis_server.url, live_a, b)
    await nodes(redis_server.url, live_a.port)
    (again,) = await js.wait(lambda x: x["event"] == "connect" and x["recovered"])
    assert again["id"] == first_id
    got = await js.wait(lambda x: x["event"] == "news", 3)
    assert [g["args"][0] for g in got] == [1, 2, 3]
    assert all(isinstance(g["args"][1], str) for g in got)


# -- a mixed cluster: two Python nodes and the Node.js reference -------------------------------


async def test_two_python_nodes_and_a_node_js_node_share_one_stream(
    redis_server: Any, nodes: Any, node_script: Any, client: Any
) -> None:
    (_a, live_a), (_b, live_b) = await nodes(redis_server.url), await nodes(redis_server.url)
    js = await node_script(STREAMS_NODE, redis_server.url, "streams")
    (line,) = await js.wait(lambda x: "port" in x)
    await wait_for(lambda: _equals(listeners(redis_server.url), 3), timeout=10.0)
    urls = (("A", live_a.base_url), ("B", live_b.base_url), ("J", f"http://{HOST}:{line['port']}"))
    recs = [await client(url, name) for name, url in urls]

    for sender in recs:  # a broadcast from each node reaches every client
        sender.client.emit("chat", f"from {sender.name}")
    for rec in recs:
        got = await rec.wait("chat", 3, timeout=10.0)
        assert sorted(g[0] for g in got) == ["from A", "from B", "from J"], rec.name

    for rec in recs:  # fetch_sockets and server_side_emit reach every node
        sockets = await rec.call("fetch")
        assert len(sockets) == 3, rec.name
    assert sorted(await recs[0].call("server-side", 1)) == ["node:[1]", "py:[1]"]
    assert sorted(await recs[2].call("server-side", 2)) == ["py:[2]", "py:[2]"]
    assert sorted(await recs[0].call("ask", "q")) == ['A:["q"]', 'B:["q"]', 'J:["q"]']
    assert sorted(await recs[2].call("ask", "q")) == ['A:["q"]', 'B:["q"]', 'J:["q"]']

    await recs[2].call("sockets-join", recs[0].client.id, "joined")  # through the stream
    recs[1].client.emit("to-room", "joined", "hi")
    assert [g[0] for g in await recs[0].wait("room", 1, timeout=10.0)] == ["hi"]


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_the_conformance_app_runs_on_the_streams_adapter_with_recovery(
    redis_server: Any, client: Any
) -> None:
    address = redis_server.url.removeprefix("redis://")
    app, engines = make_app(f"redis-streams://{address}", recovery=True)
    live = await start_server(app, engines=engines)
    try:
        rec = await client(live.url("/").rstrip("/"), "C")
        rec.client.emit("message", "x")
        ((value, offset),) = await rec.wait("message-back", 1)
        assert value == "x" and re.fullmatch(r"\d+-\d+", offset)  # an id of the stream
    finally:
        await live.stop()


def test_a_javascript_date_in_an_entry_is_read_as_its_json_string() -> None:
    """A Node node's broadcast carrying a Date: notepack.io writes it as a msgpack timestamp; our
    node reads the string JSON.stringify would give (what that node's own clients receive), so
    it can send it on as JSON."""
    data = {
        "packet": {
            "type": 2,
            "nsp": "/",
            "data": ["at", msgpack.Timestamp(1_700_000_000, 5_000_000)],
        }
    }
    fields = {
        "uid": "node-js",
        "nsp": "/",
        "type": "3",
        "data": base64.b64encode(msgpack.packb(data)).decode(),
    }
    message = decode_entry(fields)
    assert message["data"]["packet"]["data"] == ["at", "2023-11-14T22:13:20.005Z"]
