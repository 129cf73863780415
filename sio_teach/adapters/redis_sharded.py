"""The sharded Redis adapter: the rooms of a namespace across many nodes, through Redis 7's sharded
Pub/Sub (``SSUBSCRIBE``/``SPUBLISH``), which a Redis Cluster spreads over its shards.

    from sio_teach.adapters.redis_sharded import redis_sharded_adapter

    sio = Server(adapter=redis_sharded_adapter("redis://127.0.0.1:6379"))
    await sio.of("/").adapter.wait_ready()

It speaks the format of ``createShardedAdapter`` (``@socket.io/redis-adapter`` 8.2+,
``lib/sharded-adapter.ts``), whose messages are socket.io-adapter's ``ClusterAdapter`` ones, so
Python and Node.js nodes on it share one Redis:

* a **message** is ``{uid, nsp, type, data}`` (``MessageType``), JSON — or msgpack when it may
  carry binary and does (``encode_message``); the first byte tells them apart, ``{`` is JSON;
* every node ``SSUBSCRIBE``\\ s ``socket.io#<nsp>#`` (messages for all) and
  ``socket.io#<nsp>#<uid>#`` (responses to its own requests; others answer there);
* ``subscription_mode`` decides where a broadcast to exactly one room goes (``compute_channel``):
  ``"static"`` — always the main channel; ``"dynamic"`` (the default) — a public room (not a
  socket id) has its own channel ``socket.io#<nsp>#<room>#``, which a node subscribes to while
  the room exists there, so a room's messages reach only the nodes that have it;
  ``"dynamic-private"`` — the same for every room, a socket's own too;
* the number of servers is ``PUBSUB SHARDNUMSUB socket.io#<nsp>#``.

A broadcast with acks always goes to the main channel (the count of servers is of all of them).
The connection, its two tasks and the bookkeeping of requests are ``redis_base.py``'s.
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
from collections.abc import Callable, Iterable
from typing import Any, Literal

from redis.asyncio.client import PubSub

from sio_teach.adapters.memory import BroadcastOptions, MemoryAdapter, Send
from sio_teach.adapters.redis import _decode, _details, _opts, _pack, _packet, _raw_opts
from sio_teach.adapters.redis_base import (
    FAILURES,
    MAY_CONTAIN_BINARY,
    MessageType,
    RedisBaseAdapter,
)
from sio_teach.sio.packet import Packet, PacketType, has_binary
from sio_teach.tasks import spawn

SubscriptionMode = Literal["static", "dynamic", "dynamic-private"]
SUBSCRIPTION_MODES = ("static", "dynamic", "dynamic-private")


def encode_message(message: dict[str, Any]) -> bytes | str:
    """A ``ClusterAdapter`` message on the wire (``ShardedRedisAdapter.encode``): msgpack when its
    type may carry binary and its data does, JSON otherwise. What JSON cannot hold (socket
    details) becomes its ``str()``."""
    if message["type"] in MAY_CONTAIN_BINARY and has_binary(message.get("data")):
        return _pack(message)
    return json.dumps(message, separators=(",", ":"), default=str)


def decode_message(data: bytes) -> dict[str, Any]:
    """A message from Redis: "if the buffer starts with a '{' character" JSON, else msgpack."""
    return _decode(data)


def looks_like_a_socket_id(room: str) -> bool:
    """socket.io's ids are 20 characters: such a room is a socket's own (reference heuristic)."""
    return len(room) == 20


def compute_channel(
    channel: str, message: dict[str, Any], mode: SubscriptionMode = "dynamic"
) -> str:
    """Where ``message`` is published: ``channel`` (``socket.io#<nsp>#``), or a broadcast's one
    room's channel (``computeChannel``). A broadcast with acks never uses a room's channel."""
    data = message.get("data") or {}
    rooms = (data.get("opts") or {}).get("rooms") or []
    dynamic = (
        message["type"] == MessageType.BROADCAST
        and data.get("requestId") is None
        and len(rooms) == 1
        and (
            (mode == "dynamic" and not looks_like_a_socket_id(rooms[0]))
            or mode == "dynamic-private"
        )
    )
    return f"{channel}{rooms[0]}#" if dynamic else channel


def redis_sharded_adapter(
    url: str,
    *,
    key: str = "socket.io",
    subscription_mode: SubscriptionMode = "dynamic",
    requests_timeout: float = 5.0,
) -> Callable[[str, Send], ShardedRedisAdapter]:
    """The ``adapter=`` argument of :class:`~sio_teach.server.Server` for a cluster sharing the
    Redis (7 or newer) at ``url`` through sharded Pub/Sub. ``key`` is the reference's
    ``channelPrefix``, ``subscription_mode`` its ``subscriptionMode``."""
    if subscription_mode not in SUBSCRIPTION_MODES:
        raise ValueError(f"subscription_mode must be one of {SUBSCRIPTION_MODES}")

    return functools.partial(
        ShardedRedisAdapter,
        url=url,
        key=key,
        subscription_mode=subscription_mode,
        requests_timeout=requests_timeout,
    )


class ShardedRedisAdapter(RedisBaseAdapter):
    """The in-memory bookkeeping of this node, plus sharded Pub/Sub for everything cluster-wide."""

    PUBLISH_COMMAND = "SPUBLISH"
    SOCKETS_JOIN, SOCKETS_LEAVE = MessageType.SOCKETS_JOIN, MessageType.SOCKETS_LEAVE
    DISCONNECT_SOCKETS = MessageType.DISCONNECT_SOCKETS

    def __init__(
        self,
        nsp: str,
        send: Send,
        *,
        url: str,
        key: str = "socket.io",
        subscription_mode: SubscriptionMode = "dynamic",
        requests_timeout: float = 5.0,
    ) -> None:
        self.mode: SubscriptionMode = subscription_mode
        self.channel = f"{key}#{nsp}#"
        self.room_channels: set[str] = set()  # the rooms' channels this node subscribes to
        # reference: randomId(), 8 random bytes
        super().__init__(
            nsp, send, url=url, requests_timeout=requests_timeout, uid=secrets.token_hex(8)
        )
        self.response_channel = f"{self.channel}{self.uid}#"

    # -- subscriptions: the two channels, and one per room in the dynamic modes -----------------

    async def _subscribe(self, pubsub: PubSub) -> int:
        """The main and the response channel, then every room's channel (until none is new)."""
        done = [self.channel, self.response_channel]
        await pubsub.ssubscribe(*done)
        while missing := self.room_channels.difference(done):
            await pubsub.ssubscribe(*missing)
            done += missing
        return len(done)

    def _own_channel(self, room: str) -> bool:
        """Whether ``room`` gets a channel of its own (``shouldUseASeparateNamespace``)."""
        return self.mode == "dynamic-private" or (self.mode == "dynamic" and room not in self.sids)

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        new = [room for room in rooms if room not in self.rooms]
        self._start()  # a Server made before its loop ran starts listening at its first socket
        super().add_all(sid, rooms)
        for room in new:  # "create-room"
            if self.mode != "static" and self._own_channel(room):
                self._change("SSUBSCRIBE", f"{self.channel}{room}#")

    def delete(self, sid: str, room: str) -> None:
        super().delete(sid, room)
        channel = f"{self.channel}{room}#"
        if room not in self.rooms and channel in self.room_channels:  # "delete-room"
            self._change("SUNSUBSCRIBE", channel)

    def _change(self, command: str, channel: str) -> None:
        """Subscribe to (or unsubscribe from) one room's channel, now if connected; the
        subscriber subscribes to ``room_channels`` whenever it (re)connects."""
        if command == "SSUBSCRIBE":
            self.room_channels.add(channel)
        else:
            self.room_channels.discard(channel)
        if self.pubsub is not None:
            spawn(self._send_change(self.pubsub, command, channel), f"{command} {channel}")

    async def _send_change(self, pubsub: PubSub, command: str, channel: str) -> None:
        with contextlib.suppress(*FAILURES):  # the subscriber sees a broken connection itself
            if command == "SSUBSCRIBE":
                await pubsub.ssubscribe(channel)
            else:
                await pubsub.sunsubscribe(channel)

    async def _count_subscribers(self) -> int:
        """``PUBSUB SHARDNUMSUB`` of the main channel."""
        [(_, count)] = await self.redis.pubsub_shardnumsub(self.channel)
        return int(count)

    # -- publishing ------------------------------------------------------------------------------

    def _send_message(self, kind: MessageType, data: dict[str, Any]) -> None:
        """Publish a message to the other nodes (``publish``)."""
        message = {"uid": self.uid, "nsp": self.nsp, "type": kind, "data": data}
        self._publish(compute_channel(self.channel, message, self.mode), encode_message(message))

    def _send_response(self, requester: str, kind: MessageType, data: dict[str, Any]) -> None:
        """Answer ``requester``'s request on its response channel (``publishResponse``)."""
        message = {"uid": self.uid, "nsp": self.nsp, "type": kind, "data": data}
        self._publish(f"{self.channel}{requester}#", encode_message(message))

    # -- what comes from Redis -------------------------------------------------------------------

    def _on_message(self, message: dict[str, Any]) -> None:
        body = decode_message(message["data"])
        if message["channel"].decode() == self.response_channel:
            self._on_response(body)
        elif body.get("uid") != self.uid and body.get("nsp") == self.nsp:
            # "ignore message from self", "ignore message from another namespace"
            self._on_cluster_message(body)

    def _on_cluster_message(self, message: dict[str, Any]) -> None:
        """Act on another node's message, answering it if asked (``ClusterAdapter.onMessage``)."""
        kind, data, sender = message.get("type"), message.get("data") or {}, message.get("uid")
        rid = data.get("requestId")
        if kind == MessageType.BROADCAST:
            packet = data["packet"]
            if rid is None:
                packet = Packet(packet["type"], self.nsp, packet.get("data"))
                super().broadcast(packet, _opts(data["opts"]))
            elif self.namespace is not None:
                self._answer_broadcast(sender, rid, data)
        # MemoryAdapter.*: act here only (this class's own methods would tell the nodes again)
        elif kind == MessageType.SOCKETS_JOIN:
            MemoryAdapter.add_sockets(self, _opts(data["opts"]), data["rooms"])
        elif kind == MessageType.SOCKETS_LEAVE:
            MemoryAdapter.del_sockets(self, _opts(data["opts"]), data["rooms"])
        elif kind == MessageType.DISCONNECT_SOCKETS:
            MemoryAdapter.disconnect_sockets(self, _opts(data["opts"]), bool(data.get("close")))
        elif kind == MessageType.FETCH_SOCKETS:
            sockets = [_details(s) for s in self._sockets(_opts(data["opts"]))]
            answer = {"requestId": rid, "sockets": sockets}
            self._send_response(sender, MessageType.FETCH_SOCKETS_RESPONSE, answer)
        elif kind == MessageType.SERVER_SIDE_EMIT and self.namespace is not None:
            # "the presence of [requestId] defines whether an acknowledgement is needed"
            def reply(value: Any) -> None:
                answer = {"requestId": rid, "packet": value}
                self._send_response(sender, MessageType.SERVER_SIDE_EMIT_RESPONSE, answer)

            self.namespace._on_server_side_emit(data["packet"], None if rid is None else reply)
        elif kind in (MessageType.BROADCAST_CLIENT_COUNT, MessageType.BROADCAST_ACK):
            self._on_response(message)  # "may always call the onMessage() method"

    def _answer_broadcast(self, sender: str, rid: str, data: dict[str, Any]) -> None:
        """Another node's broadcast with acks: tell it how many clients we asked, then forward
        each client's ACK (its first argument)."""

        def on_count(count: int) -> None:
            answer = {"requestId": rid, "clientCount": count}
            self._send_response(sender, MessageType.BROADCAST_CLIENT_COUNT, answer)

        def on_ack(args: list[Any]) -> None:
            answer = {"requestId": rid, "packet": args[0] if args else None}
            self._send_response(sender, MessageType.BROADCAST_ACK, answer)

        ack_id = self.namespace.next_ack_id()  # type: ignore[union-attr]
        packet = Packet(PacketType.EVENT, self.nsp, data["packet"]["data"], ack_id)
        # this node's sockets only (the asking node asked the others itself)
        MemoryAdapter.broadcast_with_ack(self, packet, _opts(data["opts"]), on_count, on_ack)

    def _on_response(self, response: dict[str, Any]) -> None:
        """An answer to one of our requests (``ClusterAdapter.onResponse``)."""
        kind, data = response.get("type"), response.get("data") or {}
        rid = data.get("requestId")
        if kind == MessageType.BROADCAST_CLIENT_COUNT:
            self._on_ack_response(rid, count=data["clientCount"])
        elif kind == MessageType.BROADCAST_ACK:
            self._on_ack_response(rid, ack=data.get("packet"))
        elif kind == MessageType.FETCH_SOCKETS_RESPONSE:
            self._answered(rid, data.get("sockets") or [])
        elif kind == MessageType.SERVER_SIDE_EMIT_RESPONSE:
            self._answered(rid, [data.get("packet")])

    # -- the adapter seam: here at once, then the other nodes --------------------------------------

    def _tell(self, opts: BroadcastOptions, kind: MessageType, **data: Any) -> None:
        if not opts.flags.get("local"):
            self._send_message(kind, {"opts": _raw_opts(opts), **data})

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> list[str]:
        sids = super().broadcast(packet, opts)
        self._tell(opts, MessageType.BROADCAST, packet=_packet(packet))
        return sids

    def _ask_acks(
        self, packet: Packet, opts: BroadcastOptions, rid: str, timeout: float | None
    ) -> None:
        data = {"packet": _packet(packet), "requestId": rid}
        self._send_message(MessageType.BROADCAST, {**data, "opts": _raw_opts(opts, True, timeout)})

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        found = await super().fetch_sockets(opts)
        if opts.flags.get("local"):
            return found

        def publish(rid: str) -> None:
            self._send_message(
                MessageType.FETCH_SOCKETS, {"opts": _raw_opts(opts), "requestId": rid}
            )

        return found + await self._ask(MessageType.FETCH_SOCKETS, publish)

    def server_side_emit(self, args: list[Any]) -> None:
        self._send_message(MessageType.SERVER_SIDE_EMIT, {"packet": args})

    async def server_side_emit_with_ack(
        self, args: list[Any], timeout: float | None = None
    ) -> list[Any]:
        def publish(rid: str) -> None:
            self._send_message(MessageType.SERVER_SIDE_EMIT, {"requestId": rid, "packet": args})

        return await self._ask(MessageType.SERVER_SIDE_EMIT, publish, timeout)
