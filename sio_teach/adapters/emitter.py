"""The emitter: talk to the clients of a cluster from a process that is not a Socket.IO server (a
worker, a cron job, a script), through the cluster's Redis.

    from sio_teach.adapters.emitter import Emitter

    emitter = Emitter("redis://127.0.0.1:6379")
    emitter.emit("news", {"id": 1})                       # every client of "/"
    emitter.to("room1").except_("room2").emit("news", 2)
    emitter.of("/admin").in_("ops").sockets_join("alerts")  # socketsJoin; sockets_leave too
    emitter.to("room1").disconnect_sockets(close=True)
    emitter.server_side_emit("reload", "config")          # the servers' on_server_side handlers
    emitter.close()

It writes what ``@socket.io/redis-emitter`` 5.x writes (``lib/index.ts``), with the uid
``"emitter"``, so the nodes of either language on the Pub/Sub adapter (``createAdapter``,
:func:`~sio_teach.adapters.redis.redis_adapter`) act on it:

* a broadcast is msgpack ``["emitter", packet, {rooms, flags, except}]`` published on
  ``socket.io#<nsp>#``, or ``socket.io#<nsp>#<room>#`` for exactly one room (:func:`broadcast`);
* socketsJoin, socketsLeave, disconnectSockets and serverSideEmit are JSON requests on
  ``socket.io-request#<nsp>#`` (:func:`request`). Nothing is answered: no acks, no fetch.

``Emitter(url, sharded=True)`` *(sio_teach)* speaks to nodes on sharded Pub/Sub instead
(``createShardedAdapter``, :func:`~sio_teach.adapters.redis_sharded.redis_sharded_adapter`): the
same operations as ``ClusterAdapter`` messages with the uid ``"emitter"``, over ``SPUBLISH`` (the
official emitter has no such mode). Give it the nodes' ``subscription_mode``.

The methods publish at once and block (a plain ``redis.Redis``); inside an event loop call them
in a thread (``await asyncio.to_thread(emitter.emit, "news", 1)``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import redis

from sio_teach.adapters.redis import RequestType, _pack
from sio_teach.adapters.redis_sharded import (
    MessageType,
    SubscriptionMode,
    compute_channel,
    encode_message,
)

UID = "emitter"
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)


@dataclass(frozen=True)
class Target:
    """Who an operation is for: the sockets of ``nsp`` in any of ``rooms`` (all when empty),
    minus those in ``except_``; ``flags`` as the reference sends them (``volatile``,
    ``compress``)."""

    nsp: str = "/"
    rooms: tuple[str, ...] = ()
    except_: tuple[str, ...] = ()
    flags: dict[str, Any] = field(default_factory=dict)


def _names(rooms: str | Iterable[str]) -> tuple[str, ...]:
    return (rooms,) if isinstance(rooms, str) else tuple(rooms)


# -- the messages (pure: what goes on which channel) -------------------------------------------


def event_packet(target: Target, event: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """The socket.io-parser EVENT packet object; a reserved event name raises ValueError."""
    if event in RESERVED_EVENTS:
        raise ValueError(f'"{event}" is a reserved event name')
    return {"type": 2, "data": [event, *args], "nsp": target.nsp}


def broadcast(key: str, target: Target, event: str, args: tuple[Any, ...]) -> tuple[str, bytes]:
    """The Pub/Sub adapter's broadcast of ``event`` to ``target``: (channel, msgpack)."""
    packet = event_packet(target, event, args)
    opts = {"rooms": list(target.rooms), "flags": target.flags, "except": list(target.except_)}
    channel = f"{key}#{target.nsp}#"
    if len(target.rooms) == 1:
        channel += f"{target.rooms[0]}#"
    return channel, _pack([UID, packet, opts])


def request(key: str, target: Target, kind: RequestType, **body: Any) -> tuple[str, str]:
    """A request to the Pub/Sub adapter's nodes: (channel, JSON). Only SERVER_SIDE_EMIT carries
    the uid, as in the reference."""
    if kind == RequestType.SERVER_SIDE_EMIT:
        message: dict[str, Any] = {"uid": UID, "type": kind, **body}
    else:
        opts = {"rooms": list(target.rooms), "except": list(target.except_)}
        message = {"type": kind, "opts": opts, **body}
    return f"{key}-request#{target.nsp}#", json.dumps(message, separators=(",", ":"))


def cluster_message(
    key: str, target: Target, kind: MessageType, mode: SubscriptionMode, **data: Any
) -> tuple[str, bytes | str]:
    """The same for nodes on sharded Pub/Sub: a ``ClusterAdapter`` message from ``"emitter"``."""
    if kind != MessageType.SERVER_SIDE_EMIT:
        opts = {"rooms": list(target.rooms), "except": list(target.except_), "flags": target.flags}
        data = {"opts": opts, **data}
    message = {"uid": UID, "nsp": target.nsp, "type": kind, "data": data}
    return compute_channel(f"{key}#{target.nsp}#", message, mode), encode_message(message)


# -- the API ------------------------------------------------------------------------------------


class Emitter:
    """Publishes to the cluster sharing the Redis at ``url`` (or the given ``redis.Redis``).
    ``key`` is the nodes' channel prefix."""

    def __init__(
        self,
        url: str | None = None,
        *,
        key: str = "socket.io",
        sharded: bool = False,
        subscription_mode: SubscriptionMode = "dynamic",
        client: redis.Redis | None = None,
        target: Target | None = None,
    ) -> None:
        if client is None and url is None:
            raise ValueError("Emitter needs a Redis URL (or a redis.Redis client)")
        self.redis = client if client is not None else redis.Redis.from_url(url)  # type: ignore[arg-type]
        self.key = key
        self.sharded = sharded
        self.subscription_mode: SubscriptionMode = subscription_mode
        self.target = target or Target()

    def _with(self, **changes: Any) -> Emitter:
        target = replace(self.target, **changes)
        return Emitter(
            key=self.key,
            sharded=self.sharded,
            subscription_mode=self.subscription_mode,
            client=self.redis,
            target=target,
        )

    def of(self, nsp: str) -> Emitter:
        """The same emitter for namespace ``nsp`` (no room, no flag)."""
        return self._with(nsp=nsp if nsp.startswith("/") else "/" + nsp, rooms=(), except_=())

    def to(self, rooms: str | Iterable[str]) -> Emitter:
        """Only the sockets in ``rooms`` (added to those already targeted)."""
        return self._with(rooms=tuple(dict.fromkeys(self.target.rooms + _names(rooms))))

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> Emitter:
        """Not the sockets in ``rooms``."""
        return self._with(except_=tuple(dict.fromkeys(self.target.except_ + _names(rooms))))

    @property
    def volatile(self) -> Emitter:
        """Dropped for a client that cannot receive it right now."""
        return self._with(flags={**self.target.flags, "volatile": True})

    def compress(self, compress: bool) -> Emitter:
        return self._with(flags={**self.target.flags, "compress": compress})

    def _send(self, channel: str, message: bytes | str) -> None:
        if self.sharded:
            self.redis.spublish(channel, message)
        else:
            self.redis.publish(channel, message)

    def _cluster(self, kind: MessageType, **data: Any) -> None:
        self._send(*cluster_message(self.key, self.target, kind, self.subscription_mode, **data))

    def emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to the targeted clients (no acks). Always True, as the reference."""
        if self.sharded:
            packet = event_packet(self.target, event, args)
            self._cluster(MessageType.BROADCAST, packet=packet)
        else:
            self._send(*broadcast(self.key, self.target, event, args))
        return True

    def sockets_join(self, rooms: str | Iterable[str]) -> None:
        """The targeted sockets join ``rooms`` (``socketsJoin``)."""
        if self.sharded:
            self._cluster(MessageType.SOCKETS_JOIN, rooms=list(_names(rooms)))
        else:
            self._send(
                *request(self.key, self.target, RequestType.REMOTE_JOIN, rooms=list(_names(rooms)))
            )

    def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        """The targeted sockets leave ``rooms`` (``socketsLeave``)."""
        if self.sharded:
            self._cluster(MessageType.SOCKETS_LEAVE, rooms=list(_names(rooms)))
        else:
            self._send(
                *request(self.key, self.target, RequestType.REMOTE_LEAVE, rooms=list(_names(rooms)))
            )

    def disconnect_sockets(self, close: bool = False) -> None:
        """The targeted sockets are disconnected (``close``: their whole connection)."""
        if self.sharded:
            self._cluster(MessageType.DISCONNECT_SOCKETS, close=close)
        else:
            self._send(*request(self.key, self.target, RequestType.REMOTE_DISCONNECT, close=close))

    def server_side_emit(self, event: str, *args: Any) -> None:
        """``event`` to every server's ``on_server_side`` handler (no acks: "Acknowledgements
        are not supported")."""
        if self.sharded:
            self._cluster(MessageType.SERVER_SIDE_EMIT, packet=[event, *args])
        else:
            self._send(
                *request(self.key, self.target, RequestType.SERVER_SIDE_EMIT, data=[event, *args])
            )

    def close(self) -> None:
        """Close the Redis connection."""
        self.redis.close()
