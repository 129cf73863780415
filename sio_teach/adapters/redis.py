"""The Redis adapter: the rooms of a namespace across many nodes, through Redis Pub/Sub.

    from sio_teach.adapters.redis import redis_adapter

    sio = Server(adapter=redis_adapter("redis://127.0.0.1:6379"))
    await sio.of("/").adapter.wait_ready()        # subscribed: messages from other nodes arrive

It speaks the format of the official ``@socket.io/redis-adapter`` 8.x (socket.io-redis-adapter
``lib/index.ts``), so Python nodes and Node.js nodes can share one Redis:

* **broadcast**: msgpack ``[uid, packet, {rooms, except, flags}]`` published on
  ``socket.io#<nsp>#``, or ``socket.io#<nsp>#<room>#`` when exactly one room is targeted. Every
  node pattern-subscribes ``socket.io#<nsp>#*`` and drops its own ``uid``. ``packet`` is the
  socket.io-parser packet object ``{"type": 2, "data": [...], "nsp": "/"}``, bytes as msgpack bin;
  each receiving node encodes it once for its own clients.
* **requests** on ``socket.io-request#<nsp>#``, **responses** on ``socket.io-response#<nsp>#``:
  JSON objects, except the two that carry a packet (BROADCAST, BROADCAST_ACK), which are msgpack.
  The reference tells them apart by the first byte: ``{`` (0x7b) means JSON.
* the number of servers is ``PUBSUB NUMSUB socket.io-request#<nsp>#``: each node subscribes once.

The connection, the publisher, the subscriber and the bookkeeping of requests are
``redis_base.py``'s (shared with the sharded adapter); this module is the wire format.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import msgpack
from redis.asyncio.client import PubSub

from sio_teach.adapters.memory import BroadcastOptions, MemoryAdapter, Send
from sio_teach.adapters.redis_base import RedisBaseAdapter
from sio_teach.sio.packet import Packet, PacketType

if TYPE_CHECKING:
    from sio_teach.server import Socket


class RequestType(IntEnum):
    """socket.io-redis-adapter ``enum RequestType``: the kinds of message between nodes."""

    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


def redis_adapter(
    url: str, *, key: str = "socket.io", requests_timeout: float = 5.0
) -> Callable[[str, Send], RedisAdapter]:
    """The ``adapter=`` argument of :class:`~sio_teach.server.Server` for a cluster sharing the
    Redis at ``url``. ``key`` is the channel prefix; ``requests_timeout`` (seconds) bounds every
    question to the other nodes (reference ``requestsTimeout``, default 5000 ms)."""

    return functools.partial(RedisAdapter, url=url, key=key, requests_timeout=requests_timeout)


# -- the wire format -------------------------------------------------------------------------


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # bytes → bin, str → str, as notepack.io


def _ext(code: int, data: bytes) -> Any:
    # notepack.io encodes JavaScript's `undefined` as a fixext 1 of type 0: read it as None
    return None if code == 0 else msgpack.ExtType(code, data)


# notepack.io writes a JavaScript Date as a msgpack timestamp (ext type -1, 32, 64 or 96 bits)
_TIMESTAMPS = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")


def _js_dates(value: Any) -> Any:
    """Each msgpack timestamp in ``value`` as the string JSON makes of a JavaScript Date (the
    Node.js node's clients would have received that string)."""
    if isinstance(value, msgpack.Timestamp):
        moment = value.to_datetime().isoformat(timespec="milliseconds")
        return moment.replace("+00:00", "Z")
    if isinstance(value, list):
        return [_js_dates(item) for item in value]
    if isinstance(value, dict):
        return {key: _js_dates(item) for key, item in value.items()}
    return value


def _unpack(data: bytes) -> Any:
    """msgpack as notepack.io writes it (``undefined`` as None, a Date as its JSON string)."""
    value = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext)
    return _js_dates(value) if any(mark in data for mark in _TIMESTAMPS) else value


def _decode(data: bytes) -> Any:
    """A request or a response: "if the buffer starts with a '{' character" JSON, else msgpack."""
    return json.loads(data) if data[:1] == b"{" else _unpack(data)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json_lenient(value: Any) -> str:  # socket details: what JSON cannot hold becomes its str()
    return json.dumps(value, separators=(",", ":"), default=str)


def _packet(packet: Packet) -> dict[str, Any]:
    """The socket.io-parser packet object (no ack id: each node gives its own)."""
    return {"type": int(packet.type), "data": packet.data, "nsp": packet.nsp}


def _raw_opts(opts: BroadcastOptions, flags: bool = True, timeout: float | None = None) -> dict:
    raw: dict[str, Any] = {"rooms": sorted(opts.rooms), "except": sorted(opts.except_)}
    if flags:
        raw["flags"] = dict(opts.flags)
        if opts.volatile:  # absent, not false: SessionAwareAdapter tests `=== undefined`
            raw["flags"]["volatile"] = True
        if timeout is not None:
            raw["flags"]["timeout"] = round(timeout * 1000)
    return raw


def _opts(raw: dict[str, Any]) -> BroadcastOptions:
    flags = raw.get("flags") or {}
    rooms, except_ = frozenset(raw.get("rooms") or ()), frozenset(raw.get("except") or ())
    return BroadcastOptions(rooms, except_, bool(flags.get("volatile")), flags)


def _details(socket: Socket) -> dict[str, Any]:
    """A socket as a REMOTE_FETCH response describes it."""
    rooms = sorted(socket.rooms)
    return {"id": socket.id, "handshake": socket.handshake, "rooms": rooms, "data": socket.data}


class RedisAdapter(RedisBaseAdapter):
    """The in-memory bookkeeping of this node, plus Redis for everything cluster-wide."""

    SOCKETS_JOIN, SOCKETS_LEAVE = RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE
    DISCONNECT_SOCKETS = RequestType.REMOTE_DISCONNECT

    def __init__(
        self,
        nsp: str,
        send: Send,
        *,
        url: str,
        key: str = "socket.io",
        requests_timeout: float = 5.0,
    ) -> None:
        # reference: uid2(6)
        super().__init__(
            nsp, send, url=url, requests_timeout=requests_timeout, uid=secrets.token_hex(3)
        )
        self.channel = f"{key}#{nsp}#"
        self.request_channel = f"{key}-request#{nsp}#"
        self.response_channel = f"{key}-response#{nsp}#"
        self.specific_response_channel = f"{self.response_channel}{self.uid}#"

    async def _subscribe(self, pubsub: PubSub) -> int:
        """The four subscriptions the reference makes."""
        await pubsub.psubscribe(self.channel + "*")
        await pubsub.subscribe(
            self.request_channel, self.response_channel, self.specific_response_channel
        )
        return 4

    def _request(self, body: dict[str, Any], encode: Callable[[Any], Any] = _json) -> None:
        self._publish(self.request_channel, encode({"uid": self.uid, **body}))

    def _respond(self, body: dict[str, Any], encode: Callable[[Any], Any] = _json) -> None:
        # publishOnSpecificResponseChannel "defaults to false": the shared response channel
        self._publish(self.response_channel, encode(body))

    # -- what comes from Redis -------------------------------------------------------------------

    def _on_message(self, message: dict[str, Any]) -> None:
        """One Pub/Sub message: a broadcast (pattern channel), a request or a response."""
        channel = message["channel"].decode()
        if message["type"] == "pmessage":
            self._on_broadcast(channel, message["data"])
        elif channel.startswith(self.response_channel):
            self._on_response(_decode(message["data"]))
        elif channel == self.request_channel:
            self._on_request(_decode(message["data"]))

    def _on_broadcast(self, channel: str, data: bytes) -> None:
        room = channel[len(self.channel) : -1]
        if room and room not in self.rooms:
            return  # reference: "ignore unknown room"
        uid, packet, opts = _decode(data)
        if uid == self.uid or packet.get("nsp", "/") != self.nsp:
            return  # "ignore same uid" (delivered here already), "ignore different namespace"
        super().broadcast(Packet(packet["type"], self.nsp, packet.get("data")), _opts(opts))

    def _on_request(self, request: dict[str, Any]) -> None:
        """Act on another node's request, and answer it (socket.io-redis-adapter ``onrequest``)."""
        kind, rid = request.get("type"), request.get("requestId")
        if request.get("uid") == self.uid:
            return  # our own request, back from Redis: this node acted on it already
        if kind == RequestType.SOCKETS:  # io.allSockets() (deprecated): the ids only
            rooms = BroadcastOptions(frozenset(request.get("rooms") or ()))
            self._respond({"requestId": rid, "sockets": self.recipients(rooms)})
        elif kind == RequestType.ALL_ROOMS:
            self._respond({"requestId": rid, "rooms": list(self.rooms)})
        elif kind == RequestType.REMOTE_FETCH:
            details = [_details(s) for s in self._sockets(_opts(request["opts"]))]
            self._respond({"requestId": rid, "sockets": details}, _json_lenient)
        # The per-socket forms (with "sid", no "opts") come only from adapters older than 7.x.
        # MemoryAdapter.*: act here only (this class's own methods would tell the nodes again)
        elif kind == RequestType.REMOTE_JOIN and "opts" in request:
            MemoryAdapter.add_sockets(self, _opts(request["opts"]), request["rooms"])
        elif kind == RequestType.REMOTE_LEAVE and "opts" in request:
            MemoryAdapter.del_sockets(self, _opts(request["opts"]), request["rooms"])
        elif kind == RequestType.REMOTE_DISCONNECT and "opts" in request:
            MemoryAdapter.disconnect_sockets(
                self, _opts(request["opts"]), bool(request.get("close"))
            )
        elif kind == RequestType.SERVER_SIDE_EMIT and self.namespace is not None:
            # "the presence of [requestId] defines whether an acknowledgement is needed"
            def reply(value: Any) -> None:
                self._respond({"type": kind, "requestId": rid, "data": value})

            self.namespace._on_server_side_emit(request["data"], None if rid is None else reply)
        elif kind == RequestType.BROADCAST and self.namespace is not None:
            self._answer_broadcast(rid, request)

    def _answer_broadcast(self, rid: str, request: dict[str, Any]) -> None:
        """Another node's broadcast with acks: tell it how many clients we asked, then forward
        each ACK. The reference forwards one value per client: its first ACK argument."""

        def on_count(count: int) -> None:
            kind = RequestType.BROADCAST_CLIENT_COUNT
            self._respond({"type": kind, "requestId": rid, "clientCount": count})

        def on_ack(args: list[Any]) -> None:
            value = args[0] if args else None
            self._respond(
                {"type": RequestType.BROADCAST_ACK, "requestId": rid, "packet": value}, _pack
            )

        ack_id = self.namespace.next_ack_id()  # type: ignore[union-attr]
        packet = Packet(PacketType.EVENT, self.nsp, request["packet"]["data"], ack_id)
        # this node's sockets only (the asking node asked the others itself)
        MemoryAdapter.broadcast_with_ack(self, packet, _opts(request["opts"]), on_count, on_ack)

    def _on_response(self, response: dict[str, Any]) -> None:
        rid, kind = response.get("requestId"), response.get("type")
        if kind == RequestType.BROADCAST_CLIENT_COUNT:
            self._on_ack_response(rid, count=response["clientCount"])
        elif kind == RequestType.BROADCAST_ACK:
            self._on_ack_response(rid, ack=response.get("packet"))
        elif rid in self.requests:
            if self.requests[rid].kind == RequestType.SERVER_SIDE_EMIT:
                self._answered(rid, [response.get("data")])
            else:
                self._answered(rid, response.get("sockets") or response.get("rooms") or [])

    # -- asking the other nodes ------------------------------------------------------------------

    async def _count_subscribers(self) -> int:
        """Subscribers of the request channel (``PUBSUB NUMSUB``)."""
        [(_, count)] = await self.redis.pubsub_numsub(self.request_channel)
        return int(count)

    async def _ask_nodes(
        self, kind: RequestType, body: dict[str, Any], timeout: float | None = None
    ) -> list[Any]:
        def publish(rid: str) -> None:
            self._request({"requestId": rid, "type": kind, **body})

        return await self._ask(kind, publish, timeout)

    def _tell(self, opts: BroadcastOptions, kind: RequestType, **body: Any) -> None:
        """A request that wants no answer (socketsJoin, socketsLeave, disconnectSockets)."""
        if not opts.flags.get("local"):
            self._request({"type": kind, "opts": _raw_opts(opts, False), **body})

    # -- the adapter seam: here at once, then the other nodes --------------------------------------

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        self._start()  # a Server made before its loop ran starts listening at its first socket
        super().add_all(sid, rooms)

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> list[str]:
        sids = super().broadcast(packet, opts)
        if not opts.flags.get("local"):
            channel = self.channel + (f"{next(iter(opts.rooms))}#" if len(opts.rooms) == 1 else "")
            self._publish(channel, _pack([self.uid, _packet(packet), _raw_opts(opts)]))
        return sids

    def _ask_acks(
        self, packet: Packet, opts: BroadcastOptions, rid: str, timeout: float | None
    ) -> None:
        body = {"requestId": rid, "type": RequestType.BROADCAST, "packet": _packet(packet)}
        self._request({**body, "opts": _raw_opts(opts, timeout=timeout)}, _pack)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        found = await super().fetch_sockets(opts)
        if opts.flags.get("local"):
            return found
        return found + await self._ask_nodes(
            RequestType.REMOTE_FETCH, {"opts": _raw_opts(opts, False)}
        )

    async def fetch_all_rooms(self) -> set[str]:
        return self.all_rooms() | set(await self._ask_nodes(RequestType.ALL_ROOMS, {}))

    def server_side_emit(self, args: list[Any]) -> None:
        self._request({"type": RequestType.SERVER_SIDE_EMIT, "data": args})

    async def server_side_emit_with_ack(
        self, args: list[Any], timeout: float | None = None
    ) -> list[Any]:
        return await self._ask_nodes(RequestType.SERVER_SIDE_EMIT, {"data": args}, timeout)
