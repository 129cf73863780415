"""The lab's load balancer (notebook 09) on 127.0.0.1, with our client and server: round robin
sends a session's second request to a node that does not know it; sticky routing keeps a client on
one node, where it stays on long-polling because the balancer drops ``Upgrade``. And
``lab.relabel``, which prints random ids as stable names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sio_teach import Client, lab
from sio_teach.server import Server
from sio_teach.transports.eio_client import EngineClient


def echo_handler(server: Server) -> None:
    server.on("echo", lambda socket, value: value)


@pytest.fixture
async def nodes() -> AsyncIterator[list[lab.Lab]]:
    started = [await lab.start_server(node=name, ids=name, setup=echo_handler) for name in "AB"]
    yield started
    for node in started:
        await node.stop()


async def test_round_robin_loses_the_session(nodes: list[lab.Lab]) -> None:
    front = await lab.start_balancer(nodes)
    reasons: list[str] = []
    client = EngineClient(front.url, path="/socket.io/", transports=("polling",))
    client.on_close = reasons.append
    try:
        await client.connect()
        await lab.wait_until(lambda: reasons)
        assert front.lines() == [
            "GET  polling   → A 200",
            'GET  polling   → B 400 {"code":1,"message":"Session ID unknown"}',
        ]
        assert reasons == ["transport error"]
    finally:
        await client.close()
        await front.stop()


async def test_sticky_keeps_one_node_and_drops_upgrade(nodes: list[lab.Lab]) -> None:
    front = await lab.start_balancer(nodes, sticky=True)
    client = Client(front.url, reconnection=False)
    try:
        await client.connect()
        await lab.wait_until(lambda: any(entry[1] == "websocket" for entry in front.log))
        assert await client.emit_with_ack("echo", "hi", timeout=5) == "hi"
        assert client.transport == "polling"
    finally:
        await client.disconnect()
        await front.stop()
    assert len({node for _, _, node, _, _ in front.log}) == 1
    refused = [entry for entry in front.log if entry[1] == "websocket"]
    assert [(status, body) for *_, status, body in refused] == [
        (400, '{"code":3,"message":"Bad request"}')
    ]


def test_relabel_replaces_longest_first() -> None:
    text = '40{"pid":"abc","offset":"abc-1"}'
    assert (
        lab.relabel(text, {"abc": "PID", "abc-1": "OFFSET-1"})
        == '40{"pid":"PID","offset":"OFFSET-1"}'
    )
