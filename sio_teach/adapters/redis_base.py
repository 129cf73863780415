"""What every Redis adapter of sio_teach shares: a connection, a publisher, a subscriber, and
questions to the other nodes. The wire formats live in the subclasses:

* ``redis.py`` — ``RedisAdapter``, classic Pub/Sub (``PUBLISH``/``SUBSCRIBE``), the format of
  ``createAdapter`` (``@socket.io/redis-adapter`` ``lib/index.ts``);
* ``redis_sharded.py`` — ``ShardedRedisAdapter``, sharded Pub/Sub (``SPUBLISH``/``SSUBSCRIBE``),
  the format of ``createShardedAdapter`` (socket.io-adapter's ``ClusterAdapter`` messages).

Each adapter runs two tasks. The *subscriber* reads Pub/Sub; when the connection breaks it logs
it, waits and subscribes again, so a restarted Redis is picked up by itself. The *publisher* sends
queued messages in order over one connection (pipelined). Local delivery never waits for Redis:
while Redis is down this node keeps serving its own clients, and what is lost is logged.

A subclass says what to subscribe to (:meth:`RedisBaseAdapter._subscribe`), what to do with a
message (:meth:`RedisBaseAdapter._on_message`) and which command publishes (``PUBLISH_COMMAND``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sio_teach.adapters.memory import BroadcastOptions, MemoryAdapter, OnAck, OnCount, Send
from sio_teach.errors import AckTimeoutError
from sio_teach.sio.packet import Packet
from sio_teach.tasks import spawn

log = logging.getLogger("sio_teach.adapters.redis")
OUTBOX_LIMIT = 10_000  # messages waiting for Redis; beyond that they are dropped (and logged)
FAILURES = (RedisError, OSError, TimeoutError)
CONFIRMATIONS = ("subscribe", "psubscribe", "ssubscribe")  # Redis's answer to a subscription
MESSAGES = ("message", "pmessage", "smessage")  # a published message


# -- the message format of socket.io-adapter's ClusterAdapter (sharded Pub/Sub, streams) -------


class MessageType(IntEnum):
    """socket.io-adapter ``enum MessageType``: the messages between the nodes of a cluster."""

    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


# "mayContainBinary": the only types that are msgpack when their data holds bytes
MAY_CONTAIN_BINARY = {
    MessageType.BROADCAST,
    MessageType.BROADCAST_ACK,
    MessageType.FETCH_SOCKETS_RESPONSE,
    MessageType.SERVER_SIDE_EMIT,
    MessageType.SERVER_SIDE_EMIT_RESPONSE,
}


@dataclass
class Pending:
    """A request of ours, waiting for one response from each of ``expected`` other servers."""

    kind: int
    expected: int
    done: asyncio.Future[None]
    items: list[Any] = field(default_factory=list)
    answers: int = 0


class RedisBaseAdapter(MemoryAdapter):
    """The in-memory bookkeeping of this node, plus a Redis connection to the other nodes."""

    PUBLISH_COMMAND = "PUBLISH"
    # the kinds of message of socketsJoin, socketsLeave and disconnectSockets (see _tell)
    SOCKETS_JOIN: int
    SOCKETS_LEAVE: int
    DISCONNECT_SOCKETS: int

    def __init__(
        self, nsp: str, send: Send, *, url: str, requests_timeout: float, uid: str
    ) -> None:
        super().__init__(nsp, send)
        self.uid = uid
        self.requests_timeout = requests_timeout
        # One immediate retry inside redis-py (a pooled connection is stale after a Redis
        # restart); any further failure surfaces at once, and the two loops below handle it.
        retry = Retry(NoBackoff(), 1)
        self.redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, retry=retry)
        self.subscribed = asyncio.Event()  # set while this node listens to Redis
        self.failing: set[str] = set()  # what fails now: "publish", "subscribe", "count servers"
        self.lost = 0  # messages that never reached Redis
        self.requests: dict[str, Pending] = {}
        self.ack_requests: dict[str, tuple[OnCount, OnAck]] = {}
        self.pubsub: PubSub | None = None  # the subscriber's, while it is connected
        self._outbox: asyncio.Queue[tuple[str, bytes | str]] = asyncio.Queue(OUTBOX_LIMIT)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: asyncio.Task[None] | None = None
        self._start()

    # -- what a subclass says ---------------------------------------------------------------------

    async def _subscribe(self, pubsub: PubSub) -> int:
        """Subscribe ``pubsub`` to this adapter's channels; return how many confirmations come."""
        raise NotImplementedError

    def _on_message(self, message: dict[str, Any]) -> None:
        """One published message from Redis (``message["channel"]``, ``message["data"]``)."""
        raise NotImplementedError

    def _tell(self, opts: BroadcastOptions, kind: int, **body: Any) -> None:
        """Tell the other nodes what to do with their sockets matching ``opts`` (no answer)."""
        raise NotImplementedError

    def _ask_acks(
        self, packet: Packet, opts: BroadcastOptions, rid: str, timeout: float | None
    ) -> None:
        """Ask the other nodes to send ``packet`` to their sockets matching ``opts`` and to answer
        under request id ``rid`` with their client count and their clients' ACKs."""
        raise NotImplementedError

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        on_count: OnCount,
        on_ack: OnAck,
        timeout: float | None = None,
    ) -> None:
        """This node's sockets as :class:`MemoryAdapter` does, and (unless ``local``) the other
        nodes' through Redis: their counts and ACKs arrive under one request id."""
        if not opts.flags.get("local"):
            self._ask_acks(packet, opts, self._expect_acks(on_count, on_ack, timeout), timeout)
        super().broadcast_with_ack(packet, opts, on_count, on_ack, timeout)

    # -- running -------------------------------------------------------------------------------

    def _start(self) -> None:
        """Start the subscriber and the publisher once an event loop runs (now, or at first use)."""
        if self._tasks or self._closing is not None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a Server made before the loop runs: started by the first use inside it
        self._tasks = [spawn(work, name) for work, name in self._workers()]

    def _workers(self) -> list[tuple[Coroutine[Any, Any, None], str]]:
        """The background tasks of this adapter, with their names (a subclass may add some)."""
        return [(self._subscriber(), "Redis subscriber"), (self._publisher(), "Redis publisher")]

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

    # -- publishing ----------------------------------------------------------------------------

    def _publish(self, channel: str, message: bytes | str) -> None:
        """Queue one message for Redis; the publisher sends the queue in order."""
        self._start()
        try:
            self._outbox.put_nowait((channel, message))
        except asyncio.QueueFull:
            self.lost += 1
            self._failed("publish", f"{OUTBOX_LIMIT} messages wait already; one dropped")

    async def _publisher(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < 100 and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for channel, message in batch:
                        pipe.execute_command(self.PUBLISH_COMMAND, channel, message)
                    await pipe.execute()
            except FAILURES as error:
                self.lost += len(batch)
                self._failed("publish", error)
            else:
                self._works("publish")

    # -- subscribing ---------------------------------------------------------------------------

    async def _subscriber(self) -> None:
        """Listen until closed. Ready once Redis confirmed every subscription of
        :meth:`_subscribe`; when the connection breaks, wait (50 ms doubling to 1 s) and
        subscribe again."""
        delay = 0.05
        while True:
            pubsub = self.redis.pubsub()
            try:
                expected, confirmed = await self._subscribe(pubsub), 0
                self.pubsub = pubsub
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] in CONFIRMATIONS and not self.subscribed.is_set():
                        confirmed += 1
                        if confirmed >= expected:
                            self.subscribed.set()
                            self._works("subscribe")
                            delay = 0.05
                    elif message["type"] in MESSAGES:
                        self._dispatch(message)
            except FAILURES as error:
                self.subscribed.clear()
                self._failed("subscribe", error)
            finally:
                self.pubsub = None
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)
            await asyncio.sleep(delay)
            delay = min(2 * delay, 1.0)

    def _dispatch(self, message: dict[str, Any]) -> None:
        try:
            self._on_message(message)
        except Exception:  # a malformed message (or a bug) must not stop the subscriber
            channel = message["channel"]
            log.exception("redis adapter %s: cannot handle a message on %s", self.nsp, channel)

    # -- asking the other nodes ------------------------------------------------------------------

    async def server_count(self) -> int:
        """The servers of this namespace: subscribers of the channel every node subscribes to
        (:meth:`_count_subscribers`). 1 (this node alone) while Redis cannot be reached."""
        try:
            count = await asyncio.wait_for(self._count_subscribers(), 5)
        except FAILURES as error:
            self._failed("count servers", error)
            return 1
        self._works("count servers")
        return max(count, 1)

    async def _count_subscribers(self) -> int:
        raise NotImplementedError

    async def _ask(
        self, kind: int, publish: Callable[[str], None], timeout: float | None = None
    ) -> list[Any]:
        """``publish(request_id)`` a request; return one response's items per other server (as
        :meth:`_answered` collects them). Raises AckTimeoutError (a TimeoutError; ``responses``
        holds what came) after ``timeout`` s (default ``requests_timeout``) — the reference
        rejects its promise likewise."""
        done = asyncio.get_running_loop().create_future()
        pending = Pending(kind, await self.server_count() - 1, done)
        if pending.expected <= 0:
            return []
        rid = secrets.token_hex(8)  # reference: randomId(), 8 random bytes
        self.requests[rid] = pending
        publish(rid)
        try:
            await asyncio.wait_for(done, timeout or self.requests_timeout)
        except TimeoutError:
            got, wanted = pending.answers, pending.expected
            name = getattr(kind, "name", kind)
            error = AckTimeoutError(f"timeout reached: {got} of {wanted} servers answered {name}")
            error.responses = pending.items  # type: ignore[attr-defined]
            raise error from None
        finally:
            del self.requests[rid]
        return pending.items

    def _answered(self, rid: Any, items: list[Any]) -> None:
        """One server's response to our request ``rid``: its items (ignored if not ours, or if
        it came after the timeout)."""
        pending = self.requests.get(rid)
        if pending is None:
            return
        pending.answers += 1
        pending.items.extend(items)
        if pending.answers >= pending.expected and not pending.done.done():
            pending.done.set_result(None)

    def _expect_acks(self, on_count: OnCount, on_ack: OnAck, timeout: float | None) -> str:
        """A broadcast with acks to the other nodes: a request id under which their counts and
        ACKs arrive (:meth:`_on_ack_response`), forgotten after ``timeout`` — "we have no way to
        know at this level whether the server has received an acknowledgement from each client,
        so we will simply clean up ... after the delay"."""
        rid = secrets.token_hex(8)
        self.ack_requests[rid] = (on_count, on_ack)
        loop = asyncio.get_running_loop()
        loop.call_later(timeout or self.requests_timeout, self.ack_requests.pop, rid, None)
        return rid

    def _on_ack_response(self, rid: Any, count: int | None = None, ack: Any = None) -> None:
        """Another node's client count (``count``), or one of its clients' ACK (``ack``)."""
        callbacks = self.ack_requests.get(rid)
        if callbacks is not None:
            on_count, on_ack = callbacks
            if count is not None:
                on_count(count)
            else:
                on_ack([ack])

    # -- the adapter seam: here at once, then the other nodes --------------------------------------
    # socketsJoin / socketsLeave / disconnectSockets: the reference acts on its own sockets when
    # its request comes back from Redis; we act at once (so it works without Redis too).

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        super().add_sockets(opts, rooms := list(rooms))
        self._tell(opts, self.SOCKETS_JOIN, rooms=rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        super().del_sockets(opts, rooms := list(rooms))
        self._tell(opts, self.SOCKETS_LEAVE, rooms=rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        super().disconnect_sockets(opts, close)
        self._tell(opts, self.DISCONNECT_SOCKETS, close=close)
