"""Faults: Redis restarts or goes away, a node dies or hangs. Local delivery never stops, every
failure is logged, and the cluster heals by itself."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis.asyncio

from sio_teach import AckTimeoutError
from tests.adapters.conftest import WAIT, make_server, wait_subscribers
from tests.conftest import free_port, start_server

LOGGER = "sio_teach.adapters.redis"


async def test_redis_restart_mid_test_then_cross_node_delivery_works_again(
    redis_server: Any, py_node: Any, js_node: Any, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    a, b = await py_node(redis_server.url), await py_node(redis_server.url)
    j = await js_node(redis_server.url)
    clients = [await client(url, name) for name, url in (("A0", a.url), ("B0", b.url), ("J0", j))]
    clients[0].client.emit("chat", "before")
    for rec in clients:
        assert await rec.wait("chat", 1) == [("before",)]

    await asyncio.to_thread(redis_server.stop)
    # Redis is down: each node still serves its own clients, and says what it lost
    clients[0].client.emit("chat", "while down")
    assert await clients[0].wait("chat", 2) == [("before",), ("while down",)]
    async with asyncio.timeout(WAIT):
        while "publish" not in a.adapter.failing or "subscribe" not in a.adapter.failing:
            await asyncio.sleep(0.02)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("publish failed" in w for w in warnings), warnings
    assert any("subscribe failed" in w for w in warnings), warnings
    assert a.adapter.lost >= 1

    await asyncio.to_thread(redis_server.start)  # the same port
    await a.adapter.wait_ready(WAIT)
    await b.adapter.wait_ready(WAIT)
    await wait_subscribers(redis_server.url, 3, timeout=10.0)  # node-redis resubscribed too
    for sender in clients:
        sender.client.emit("chat", f"after, from {sender.name}")
    for rec in clients:
        got = await rec.wait("chat", 5 if rec is clients[0] else 4)
        assert sorted(g[0] for g in got if g[0].startswith("after")) == [
            "after, from A0",
            "after, from B0",
            "after, from J0",
        ], rec.name
    assert any("works again" in r.getMessage() for r in caplog.records)
    assert len(await a.sio.fetch_sockets()) == 3


async def test_a_dead_node_does_not_stop_the_others(
    redis_server: Any, py_node: Any, js_node: Any, client: Any
) -> None:
    a, b = await py_node(redis_server.url), await py_node(redis_server.url)
    j = await js_node(redis_server.url)
    ra, rb, _ = [await client(url, n) for n, url in (("A0", a.url), ("B0", b.url), ("J0", j))]
    assert len(await a.sio.fetch_sockets()) == 3

    await b.live.stop()
    await b.adapter.aclose()  # node B is gone (its Redis connections too)
    await wait_subscribers(redis_server.url, 2)
    assert len(await a.sio.fetch_sockets()) == 2
    assert await a.sio.server_side_emit_with_ack("hello", 1) == ["node:[1]"]
    assert sorted(await a.sio.timeout(3.0).emit_with_ack("question", 2)) == ["A0:[2]", "J0:[2]"]
    ra.client.emit("chat", "still here")
    assert await ra.wait("chat", 1) == [("still here",)]


async def test_a_hung_node_costs_a_timeout_not_a_hang(
    redis_server: Any, py_node: Any, client: Any
) -> None:
    """A node that subscribes but never answers: requests time out (TimeoutError, or
    AckTimeoutError with the replies that did come), broadcasts still flow."""
    a = await py_node(redis_server.url, requests_timeout=0.3)
    b = await py_node(redis_server.url, requests_timeout=0.3)
    ra = await client(a.url, "A0")
    rb = await client(b.url, "B0")
    mute = redis.asyncio.Redis.from_url(redis_server.url)
    pubsub = mute.pubsub()
    await pubsub.subscribe("socket.io-request#/#")  # counted by PUBSUB NUMSUB, never answers
    try:
        await wait_subscribers(redis_server.url, 3)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(a.sio.fetch_sockets(), WAIT)
        with pytest.raises(AckTimeoutError) as error:
            await asyncio.wait_for(a.sio.server_side_emit_with_ack("hello"), WAIT)
        assert error.value.responses == ["py:[]"]  # type: ignore[attr-defined]
        # a broadcast with acks: the mute server never sends its client count
        with pytest.raises(AckTimeoutError):
            await asyncio.wait_for(a.sio.timeout(0.5).emit_with_ack("question"), WAIT)
        ra.client.emit("chat", "flows")
        assert await rb.wait("chat", 1) == [("flows",)]
    finally:
        await pubsub.aclose()
        await mute.aclose()


async def test_without_redis_a_node_serves_its_own_clients(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis never there (a closed port): the node starts, delivers locally, counts itself
    alone, and logs a warning instead of failing."""
    caplog.set_level(logging.WARNING, LOGGER)
    sio = make_server(f"redis://127.0.0.1:{free_port()}")
    live = await start_server(sio.routes(), engines=[sio.engine])
    try:
        rec = await client(live.base_url, "A0")
        rec.client.emit("chat", "local")
        assert await rec.wait("chat", 1) == [("local",)]
        assert await sio.fetch_sockets() and await sio.server_side_emit_with_ack("hello") == []
        assert await sio.timeout(1.0).emit_with_ack("question", 1) == ["A0:[1]"]
        async with asyncio.timeout(WAIT):
            while not any("failed" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.02)
    finally:
        await live.stop()
        await sio.of("/").adapter.aclose()  # type: ignore[attr-defined]
