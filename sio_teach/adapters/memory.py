"""The in-memory adapter: rooms of one namespace on one node (the default).

A room is a name and a set of socket ids; every socket is in the room named by its own id.
:meth:`MemoryAdapter.broadcast` encodes the packet **once** and hands the same Engine.IO message
packets to every recipient (socket.io-adapter ``in-memory-adapter.ts`` encodes once too); each
packet's WebSocket frame is then built once, for the first recipient on WebSocket
(``Packet.server_frame``). A multi-node adapter keeps
this bookkeeping and also publishes the broadcast to the other nodes.

The adapter seam is this class's public methods. The server calls only them, so another adapter
(``adapters/redis.py``) subclasses it and adds "and tell the other nodes" to each cluster-wide one:
``broadcast``, ``broadcast_with_ack``, ``add_sockets``, ``del_sockets``, ``disconnect_sockets``,
``fetch_sockets``, ``fetch_all_rooms``, ``server_side_emit[_with_ack]``, ``server_count``. On one
node they act locally, and "the other nodes" is nobody.

Connection state recovery goes through the adapter too (socket.io-adapter ``persistSession``,
``restoreSession``): ``stamp``, ``persist_session``, ``restore_session`` keep the sessions and
events in this node's memory (``sio/recovery.py``); an adapter that shares them between nodes
(``adapters/redis_streams.py``) overrides the three.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sio_teach.eio.packet import Packet as EioPacket
from sio_teach.eio.packet import PacketType as EioType
from sio_teach.sio.packet import Packet
from sio_teach.sio.parser import JSON_PARSER, Parser, encode

if TYPE_CHECKING:
    from sio_teach.server import Namespace, Socket
    from sio_teach.sio.recovery import Session

# (sid, the packet's Engine.IO message, one message per attachment, volatile)
Send = Callable[[str, EioPacket, list[EioPacket], bool], None]
OnCount = Callable[[int], None]  # how many clients one node asked for an ACK
OnAck = Callable[[list[Any]], None]  # the arguments of one client's ACK


def encode_once(packet: Packet, parser: Parser = JSON_PARSER) -> tuple[EioPacket, list[EioPacket]]:
    """``packet`` as the Engine.IO messages that carry it, built once for every recipient: the
    first one (the JSON parser's text, the msgpack parser's only message) and the rest."""
    first, *rest = (EioPacket(EioType.MESSAGE, m) for m in encode(packet, parser))
    return first, rest


@dataclass(frozen=True, slots=True)
class BroadcastOptions:
    """Who gets a broadcast: sockets in any of ``rooms`` (all when empty), minus ``except_``."""

    rooms: frozenset[str] = frozenset()
    except_: frozenset[str] = frozenset()
    volatile: bool = False  # dropped for sockets whose transport cannot write right now
    flags: dict[str, object] = field(default_factory=dict)


class MemoryAdapter:
    """Rooms and broadcasting for one namespace. ``send`` delivers encoded bytes to one socket."""

    def __init__(self, nsp: str, send: Send) -> None:
        self.nsp = nsp
        self.send = send
        # room -> socket ids, in join order (a dict as an ordered set: broadcasts reach the
        # members in the order they joined, run after run, as in the reference adapter)
        self.rooms: dict[str, dict[str, None]] = {}
        self.sids: dict[str, set[str]] = {}  # socket id -> rooms
        # The Namespace that owns this adapter (it sets this): operations on sockets go through it.
        self.namespace: Namespace | None = None
        self.parser: Parser = JSON_PARSER  # how a broadcast is encoded (the Namespace sets it)
        # called (room, sid) when a socket enters / leaves a room (socket.io-adapter's
        # ``join-room`` / ``leave-room`` events; see observer.py)
        self.on_join_room: list[Callable[[str, str], None]] = []
        self.on_leave_room: list[Callable[[str, str], None]] = []

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        for room in rooms:
            self.sids.setdefault(sid, set()).add(room)
            members = self.rooms.setdefault(room, {})
            joined = sid not in members
            members[sid] = None
            if joined:
                for listener in self.on_join_room:
                    listener(room, sid)

    def delete(self, sid: str, room: str) -> None:
        self.sids.get(sid, set()).discard(room)
        members = self.rooms.get(room)
        if members is not None and sid in members:
            del members[sid]
            if not members:
                del self.rooms[room]
            for listener in self.on_leave_room:
                listener(room, sid)

    def del_all(self, sid: str) -> None:
        for room in self.sids.pop(sid, set()):
            self.delete(sid, room)

    def socket_rooms(self, sid: str) -> set[str]:
        return set(self.sids.get(sid, ()))

    def recipients(self, opts: BroadcastOptions) -> list[str]:
        """The socket ids a broadcast with ``opts`` reaches on this node, each once."""
        if opts.rooms:
            found: dict[str, None] = {}
            for room in sorted(opts.rooms):
                found.update(dict.fromkeys(self.rooms.get(room, ())))
            sids: Iterable[str] = found
        else:
            sids = self.sids
        excluded: set[str] = set()
        for room in opts.except_:
            excluded.update(self.rooms.get(room, ()))
        return [sid for sid in sids if sid not in excluded]

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> list[str]:
        """Encode ``packet`` once and send it to every recipient; returns their ids."""
        text, attachments = encode_once(packet, self.parser)
        sids = self.recipients(opts)
        for sid in sids:
            self.send(sid, text, attachments, opts.volatile)
        return sids

    def all_rooms(self) -> set[str]:
        """The rooms of this node (see :meth:`fetch_all_rooms` for every node's)."""
        return set(self.rooms)

    # -- cluster-wide operations: on one node, local only -------------------------------------

    def _sockets(self, opts: BroadcastOptions) -> list[Socket]:
        nsp = self.namespace
        return [nsp.sockets[s] for s in self.recipients(opts) if s in nsp.sockets] if nsp else []

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        on_count: OnCount,
        on_ack: OnAck,
        timeout: float | None = None,
    ) -> None:
        """Send ``packet`` (it carries an ack id) to every recipient; ``on_count(n)`` once with the
        number of recipients, then ``on_ack(args)`` for each client's ACK (socket.io-adapter
        ``broadcastWithAck``; the same ack id for every recipient). ``timeout`` is for adapters
        that must forget the request later."""
        text, attachments = encode_once(packet, self.parser)
        sockets = self._sockets(opts)
        for socket in sockets:
            socket._expect_ack(packet.id, on_ack, None, timeout)  # type: ignore[arg-type]
            self.send(socket.id, text, attachments, opts.volatile)
        on_count(len(sockets))

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """The matching sockets join ``rooms`` (``socketsJoin``)."""
        rooms = list(rooms)
        for sid in self.recipients(opts):
            self.add_all(sid, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """The matching sockets leave ``rooms`` (``socketsLeave``)."""
        rooms = list(rooms)
        for sid in self.recipients(opts):
            for room in rooms:
                self.delete(sid, room)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        """The matching sockets are disconnected (``close``: their whole connection)."""
        for socket in self._sockets(opts):
            socket.disconnect(close)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        """The matching sockets: :class:`Socket` objects here, dicts ``{id, handshake, rooms,
        data}`` from other nodes."""
        return list(self._sockets(opts))

    async def fetch_all_rooms(self) -> set[str]:
        """The rooms of every node."""
        return self.all_rooms()

    def server_side_emit(self, args: list[Any]) -> None:
        """Send ``[event, *args]`` to the other servers' ``on_server_side`` handlers (none here)."""

    async def server_side_emit_with_ack(
        self, args: list[Any], timeout: float | None = None
    ) -> list[Any]:
        """Like :meth:`server_side_emit`, then one reply per other server (none here)."""
        return []

    async def server_count(self) -> int:
        """How many servers share the rooms: 1."""
        return 1

    # -- connection state recovery: this node's memory (the namespace's Recovery) ----------------

    def stamp(self, data: list[Any], opts: BroadcastOptions) -> list[Any]:
        """Call before broadcasting an event (not volatile, no ack) with recovery on: its
        arguments with an offset appended, the event kept for clients that come back."""
        nsp = self.namespace
        assert nsp is not None and nsp.recovery is not None
        return nsp.recovery.stamp(data, opts.rooms, opts.except_, nsp.server.engine.now())

    def persist_session(self, session: Session) -> None:
        """Call when a socket ends for a recoverable reason: keep its session."""
        nsp = self.namespace
        assert nsp is not None and nsp.recovery is not None
        nsp.recovery.persist(session, nsp.server.engine.now())

    async def restore_session(self, pid: Any, offset: Any) -> Session | None:
        """Call on a CONNECT carrying ``pid`` and ``offset``: the session with what it missed
        (``Session.missed``), or None (unknown, expired, or the offset is gone)."""
        nsp = self.namespace
        assert nsp is not None and nsp.recovery is not None
        return nsp.recovery.restore(pid, offset, nsp.server.engine.now())

    def close(self) -> None:
        """Stop talking to other nodes (``Server.close`` calls it); nothing to do here."""
