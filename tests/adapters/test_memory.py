"""The in-memory adapter on its own: rooms, recipients, encode-once broadcasts, and the
cluster-wide operations of the adapter seam acting on one node."""

from __future__ import annotations

from typing import Any

import pytest

from sio_teach import Server
from sio_teach.adapters.memory import BroadcastOptions, MemoryAdapter
from sio_teach.sio.packet import Packet


def opts(rooms: tuple[str, ...] = (), except_: tuple[str, ...] = (), **kw: Any) -> BroadcastOptions:
    return BroadcastOptions(frozenset(rooms), frozenset(except_), **kw)


@pytest.fixture
def sent() -> list[tuple[str, str, list[bytes], bool]]:
    return []


@pytest.fixture
def adapter(sent: list[Any]) -> MemoryAdapter:
    adapter = MemoryAdapter("/", lambda *args: sent.append(args))
    for sid, rooms in {"s1": ["red"], "s2": ["red", "blue"], "s3": ["blue"], "s4": []}.items():
        adapter.add_all(sid, [sid, *rooms])
    return adapter


def test_rooms_both_ways(adapter: MemoryAdapter) -> None:
    assert set(adapter.rooms["red"]) == {"s1", "s2"} and adapter.socket_rooms("s2") == {
        "s2",
        "red",
        "blue",
    }
    adapter.delete("s1", "red")
    adapter.delete("s1", "no-such-room")  # harmless
    assert set(adapter.rooms["red"]) == {"s2"}
    adapter.del_all("s2")
    assert "red" not in adapter.rooms and "s2" not in adapter.sids  # empty rooms disappear
    assert adapter.all_rooms() == {"s1", "s3", "s4", "blue"}


@pytest.mark.parametrize(
    ("rooms", "except_", "expected"),
    [
        ((), (), ["s1", "s2", "s3", "s4"]),  # everyone, in arrival order
        (("red",), (), ["s1", "s2"]),
        (("red", "blue"), (), ["s1", "s2", "s3"]),  # a socket in two target rooms: once
        (("red", "blue"), ("s2",), ["s1", "s3"]),  # a socket id is a room
        ((), ("blue",), ["s1", "s4"]),
        (("nowhere",), (), []),
    ],
)
def test_recipients(adapter: MemoryAdapter, rooms: Any, except_: Any, expected: list[str]) -> None:
    assert sorted(adapter.recipients(opts(rooms, except_))) == sorted(expected)
    assert len(adapter.recipients(opts(rooms, except_))) == len(set(expected))


def test_broadcast_encodes_once_and_passes_volatile(
    adapter: MemoryAdapter, sent: list[Any]
) -> None:
    sids = adapter.broadcast(Packet.event("/", "news", b"\x01"), opts(("red",), volatile=True))
    assert sorted(sids) == ["s1", "s2"]
    texts = {
        (text.data, tuple(a.data for a in attachments), volatile)
        for _, text, attachments, volatile in sent
    }
    assert texts == {('51-["news",{"_placeholder":true,"num":0}]', (b"\x01",), True)}
    # one encoding: the very same Engine.IO packets for both recipients (their frames built once)
    (_, first, first_att, _), (_, second, second_att, _) = sent
    assert first is second and first_att[0] is second_att[0]


async def test_the_seam_acts_locally_on_one_node(adapter: MemoryAdapter) -> None:
    adapter.add_sockets(opts(("red",)), (room for room in ["green", "pink"]))  # any iterable
    assert set(adapter.rooms["green"]) == set(adapter.rooms["pink"]) == {"s1", "s2"}
    adapter.del_sockets(opts(except_=("s1",)), ["green", "blue"])
    assert set(adapter.rooms["green"]) == {"s1"} and "blue" not in adapter.rooms
    assert await adapter.server_count() == 1
    assert await adapter.fetch_all_rooms() == adapter.all_rooms()
    assert await adapter.fetch_sockets(opts()) == []  # no namespace: no Socket objects
    adapter.server_side_emit(["hello"])  # nobody else to tell
    assert await adapter.server_side_emit_with_ack(["hello"]) == []
    adapter.close()


async def test_a_single_server_exposes_the_cluster_api() -> None:
    """With the default adapter the cluster-wide API works on the one node."""
    sio = Server()
    assert isinstance(sio.of("/").adapter, MemoryAdapter)
    assert sio.of("/").adapter.namespace is sio.of("/")
    assert await sio.fetch_sockets() == []
    assert await sio.server_side_emit_with_ack("hello", 1) == []
    sio.server_side_emit("hello")
    with pytest.raises(ValueError, match="reserved"):
        sio.server_side_emit("connect")
    sio.sockets_join("x")
    sio.sockets_leave("x")
    sio.disconnect_sockets()
    assert await sio.to("r").timeout(0.1).emit_with_ack("q") == []
    sio.close()
