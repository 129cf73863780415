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

Each adapter runs two tasks. The *subscriber* reads Pub/Sub; when the connection breaks it logs
it, waits and subscribes again, so a restarted Redis is picked up by itself. The *publisher* sends
queued messages in order over one connection (pipelined). Local delivery never waits for Redis:
while Redis is down this node keeps serving its own clients, and what is lost is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import msgpack
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sio_teach.adapters.memory import BroadcastOptions, MemoryAdapter, OnAck, OnCount, Send
from sio_teach.errors import AckTimeoutError
from sio_teach.sio.packet import Packet, PacketType
from sio_teach.tasks import spawn

if TYPE_CHECKING:
    from sio_teach.server import Socket

log = logging.getLogger("sio_teach.adapters.redis")
OUTBOX_LIMIT = 10_000  # messages waiting for Redis; beyond that they are dropped (and logged)
FAILURES = (RedisError, OSError, TimeoutError)


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

    def factory(nsp: str, send: Send) -> RedisAdapter:
        return RedisAdapter(nsp, send, url=url, key=key, requests_timeout=requests_timeout)

    return factory


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


def _decode(data: bytes) -> Any:
    """A request or a response: "if the buffer starts with a '{' character" JSON, else msgpack."""
    if data[:1] == b"{":
        return json.loads(data)
    value = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext)
    return _js_dates(value) if any(mark in data for mark in _TIMESTAMPS) else value


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


@dataclass
class _Pending:
    """A request of ours, waiting for one response from each of ``expected`` other servers."""

    type: RequestType
    expected: int
    done: asyncio.Future[None]
    items: list[Any] = field(default_factory=list)
    answers: int = 0


class RedisAdapter(MemoryAdapter):
    """The in-memory bookkeeping of this node, plus Redis for everything cluster-wide."""

    def __init__(
        self,
        nsp: str,
        send: Send,
        *,
        url: str,
        key: str = "socket.io",
        requests_timeout: float = 5.0,
    ) -> None:
        super().__init__(nsp, send)
        self.uid = secrets.token_hex(3)  # reference: uid2(6)
        self.requests_timeout = requests_timeout
        self.channel = f"{key}#{nsp}#"
        self.request_channel = f"{key}-request#{nsp}#"
        self.response_channel = f"{key}-response#{nsp}#"
        self.specific_response_channel = f"{self.response_channel}{self.uid}#"
        # One immediate retry inside redis-py (a pooled connection is stale after a Redis
        # restart); any further failure surfaces at once, and the two loops below handle it.
        retry = Retry(NoBackoff(), 1)
        self.redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, retry=retry)
        self.subscribed = asyncio.Event()  # set while this node listens to Redis
        self.failing: set[str] = set()  # what fails now: "publish", "subscribe", "count servers"
        self.lost = 0  # messages that never reached Redis
        self.requests: dict[str, _Pending] = {}
        self.ack_requests: dict[str, tuple[OnCount, OnAck]] = {}
        self._outbox: asyncio.Queue[tuple[str, bytes | str]] = asyncio.Queue(OUTBOX_LIMIT)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: asyncio.Task[None] | None = None
        self._start()

    # -- running -------------------------------------------------------------------------------

    def _start(self) -> None:
        """Start the subscriber and the publisher once an event loop runs (now, or at first use)."""
        if self._tasks or self._closing is not None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a Server made before the loop runs: started by the first use inside it
        self._tasks = [
            spawn(self._subscriber(), "Redis subscriber"),
            spawn(self._publisher(), "Redis publisher"),
        ]

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Wait until this node listens to Redis. Await it after creating the Server (or after a
        Redis outage) before counting on messages from other nodes. Raises TimeoutError."""
        self._start()
        await asyncio.wait_for(self.subscribed.wait(), timeout)

    def close(self) -> None:
        """Stop listening and publishing (``Server.close`` calls it); see :meth:`aclose`."""
        if self._closing is not None:
            return
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(RuntimeError):  # no running loop: nothing was started
            self._closing = spawn(self._shutdown(), "closing the Redis adapter")

    async def aclose(self) -> None:
        """Close, and wait (at most a few seconds) until the Redis connections are closed."""
        self.close()
        if self._closing is not None:
            await asyncio.wait_for(asyncio.shield(self._closing), 5.0)

    async def _shutdown(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(*FAILURES):
            await asyncio.wait_for(self.redis.aclose(), 2.0)

    def _failed(self, what: str, error: BaseException | str) -> None:
        """Log a failure: a warning when ``what`` starts failing, then debug until it works."""
        level = logging.DEBUG if what in self.failing else logging.WARNING
        self.failing.add(what)
        reason = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
        log.log(level, "redis adapter %s (%s): %s failed: %s", self.nsp, self.uid, what, reason)

    def _works(self, what: str) -> None:
        if what in self.failing:
            self.failing.discard(what)
            log.warning("redis adapter %s (%s): %s works again", self.nsp, self.uid, what)

    def _publish(self, channel: str, message: bytes | str) -> None:
        """Queue one message for Redis; the publisher sends the queue in order."""
        self._start()
        try:
            self._outbox.put_nowait((channel, message))
        except asyncio.QueueFull:
            self.lost += 1
            self._failed("publish", f"{OUTBOX_LIMIT} messages wait already; one dropped")

    def _request(self, body: dict[str, Any], encode: Callable[[Any], Any] = _json) -> None:
        self._publish(self.request_channel, encode({"uid": self.uid, **body}))

    def _respond(self, body: dict[str, Any], encode: Callable[[Any], Any] = _json) -> None:
        # publishOnSpecificResponseChannel "defaults to false": the shared response channel
        self._publish(self.response_channel, encode(body))

    async def _publisher(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < 100 and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for channel, message in batch:
                        pipe.publish(channel, message)
                    await pipe.execute()
            except FAILURES as error:
                self.lost += len(batch)
                self._failed("publish", error)
            else:
                self._works("publish")

    async def _subscriber(self) -> None:
        """Listen until closed. Ready once Redis confirmed the four subscriptions the reference
        makes; when the connection breaks, wait (50 ms doubling to 1 s) and subscribe again."""
        delay = 0.05
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(self.channel + "*")
                await pubsub.subscribe(
                    self.request_channel, self.response_channel, self.specific_response_channel
                )
                confirmed = 0
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] in ("subscribe", "psubscribe"):
                        confirmed += 1
                        if confirmed == 4:
                            self.subscribed.set()
                            self._works("subscribe")
                            delay = 0.05
                    else:
                        self._on_message(message)
            except FAILURES as error:
                self.subscribed.clear()
                self._failed("subscribe", error)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)
            await asyncio.sleep(delay)
            delay = min(2 * delay, 1.0)

    # -- what comes from Redis -------------------------------------------------------------------

    def _on_message(self, message: dict[str, Any]) -> None:
        """One Pub/Sub message: a broadcast (pattern channel), a request or a response."""
        channel = message["channel"].decode()
        try:
            if message["type"] == "pmessage":
                self._on_broadcast(channel, message["data"])
            elif channel.startswith(self.response_channel):
                self._on_response(_decode(message["data"]))
            elif channel == self.request_channel:
                self._on_request(_decode(message["data"]))
        except Exception:  # a malformed message (or a bug) must not stop the subscriber
            log.exception("redis adapter %s: cannot handle a message on %s", self.nsp, channel)

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
        elif kind == RequestType.REMOTE_JOIN and "opts" in request:
            super().add_sockets(_opts(request["opts"]), request["rooms"])
        elif kind == RequestType.REMOTE_LEAVE and "opts" in request:
            super().del_sockets(_opts(request["opts"]), request["rooms"])
        elif kind == RequestType.REMOTE_DISCONNECT and "opts" in request:
            super().disconnect_sockets(_opts(request["opts"]), bool(request.get("close")))
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
        super().broadcast_with_ack(packet, _opts(request["opts"]), on_count, on_ack)

    def _on_response(self, response: dict[str, Any]) -> None:
        rid, kind = response.get("requestId"), response.get("type")
        if rid in self.ack_requests:
            on_count, on_ack = self.ack_requests[rid]
            if kind == RequestType.BROADCAST_CLIENT_COUNT:
                on_count(response["clientCount"])
            elif kind == RequestType.BROADCAST_ACK:
                on_ack([response.get("packet")])
            return
        pending = self.requests.get(rid)  # type: ignore[arg-type]
        if pending is None:
            return  # another node's request, or ours after its timeout
        pending.answers += 1
        if pending.type == RequestType.SERVER_SIDE_EMIT:
            pending.items.append(response.get("data"))
        else:
            pending.items.extend(response.get("sockets") or response.get("rooms") or ())
        if pending.answers >= pending.expected and not pending.done.done():
            pending.done.set_result(None)

    # -- asking the other nodes ------------------------------------------------------------------

    async def server_count(self) -> int:
        """The servers of this namespace: subscribers of the request channel (``PUBSUB NUMSUB``).
        1 (this node alone) while Redis cannot be reached."""
        try:
            [(_, count)] = await asyncio.wait_for(self.redis.pubsub_numsub(self.request_channel), 5)
        except FAILURES as error:
            self._failed("count servers", error)
            return 1
        self._works("count servers")
        return max(int(count), 1)

    async def _ask(
        self, kind: RequestType, body: dict[str, Any], timeout: float | None = None
    ) -> list[Any]:
        """Publish a request; return one response's items per other server. Raises
        AckTimeoutError (a TimeoutError; ``responses`` holds what came) after ``timeout`` s
        (default ``requests_timeout``) — the reference rejects its promise likewise."""
        done = asyncio.get_running_loop().create_future()
        pending = _Pending(kind, await self.server_count() - 1, done)
        if pending.expected <= 0:
            return []
        rid = secrets.token_hex(4)
        self.requests[rid] = pending
        self._request({"requestId": rid, "type": kind, **body})
        try:
            await asyncio.wait_for(done, timeout or self.requests_timeout)
        except TimeoutError:
            got, wanted = pending.answers, pending.expected
            error = AckTimeoutError(
                f"timeout reached: {got} of {wanted} servers answered {kind.name}"
            )
            error.responses = pending.items  # type: ignore[attr-defined]
            raise error from None
        finally:
            del self.requests[rid]
        return pending.items

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

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        on_count: OnCount,
        on_ack: OnAck,
        timeout: float | None = None,
    ) -> None:
        if not opts.flags.get("local"):
            rid = secrets.token_hex(4)
            self.ack_requests[rid] = (on_count, on_ack)
            raw_opts = _raw_opts(opts, timeout=timeout)
            body = {"requestId": rid, "type": RequestType.BROADCAST, "packet": _packet(packet)}
            self._request({**body, "opts": raw_opts}, _pack)
            # "we have no way to know at this level whether the server has received an
            # acknowledgement from each client, so we will simply clean up ... after the delay"
            loop = asyncio.get_running_loop()
            loop.call_later(timeout or self.requests_timeout, self.ack_requests.pop, rid, None)
        super().broadcast_with_ack(packet, opts, on_count, on_ack, timeout)

    # socketsJoin / socketsLeave / disconnectSockets: the reference acts on its own sockets when
    # its request comes back from Redis; we act at once (so it works without Redis too).
    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        super().add_sockets(opts, rooms := list(rooms))
        self._tell(opts, RequestType.REMOTE_JOIN, rooms=rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        super().del_sockets(opts, rooms := list(rooms))
        self._tell(opts, RequestType.REMOTE_LEAVE, rooms=rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        super().disconnect_sockets(opts, close)
        self._tell(opts, RequestType.REMOTE_DISCONNECT, close=close)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        found = await super().fetch_sockets(opts)
        if opts.flags.get("local"):
            return found
        return found + await self._ask(RequestType.REMOTE_FETCH, {"opts": _raw_opts(opts, False)})

    async def fetch_all_rooms(self) -> set[str]:
        return self.all_rooms() | set(await self._ask(RequestType.ALL_ROOMS, {}))

    def server_side_emit(self, args: list[Any]) -> None:
        self._request({"type": RequestType.SERVER_SIDE_EMIT, "data": args})

    async def server_side_emit_with_ack(
        self, args: list[Any], timeout: float | None = None
    ) -> list[Any]:
        return await self._ask(RequestType.SERVER_SIDE_EMIT, {"data": args}, timeout)
