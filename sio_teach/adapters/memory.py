"""The in-memory adapter: rooms of one namespace on one node (the default).

A room is a name and a set of socket ids; every socket is in the room named by its own id.
:meth:`MemoryAdapter.broadcast` encodes the packet **once** and hands the same bytes to every
recipient (socket.io-adapter ``in-memory-adapter.ts`` does the same). A multi-node adapter keeps
this bookkeeping and also publishes the broadcast to the other nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sio_teach.sio.packet import Packet, encode

Send = Callable[[str, str, list[bytes], bool], None]  # (sid, text, attachments, volatile)


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
        self.rooms: dict[str, set[str]] = {}  # room -> socket ids
        self.sids: dict[str, set[str]] = {}  # socket id -> rooms

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        for room in rooms:
            self.sids.setdefault(sid, set()).add(room)
            self.rooms.setdefault(room, set()).add(sid)

    def delete(self, sid: str, room: str) -> None:
        self.sids.get(sid, set()).discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self.rooms[room]

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
            excluded |= self.rooms.get(room, set())
        return [sid for sid in sids if sid not in excluded]

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> list[str]:
        """Encode ``packet`` once and send it to every recipient; returns their ids."""
        text, attachments = encode(packet)
        sids = self.recipients(opts)
        for sid in sids:
            self.send(sid, text, attachments, opts.volatile)
        return sids

    def all_rooms(self) -> set[str]:
        return set(self.rooms)
