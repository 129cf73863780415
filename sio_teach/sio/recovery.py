"""Connection state recovery: what a server keeps so that a client that lost its connection for a
short while comes back with the same id, the same rooms, and every event it missed.

Not in the protocol's Readme; it is the official server's feature since 4.6 (socket.io-adapter
``in-memory-adapter.ts`` ``SessionAwareAdapter``, the "connection-state-recovery" guide):

* the CONNECT reply carries a private session id: ``40{"sid":"..","pid":".."}``;
* every event sent without an ack and not volatile gets an **offset** appended as its last
  argument — ``42["chat","hi","MzUPkW0"]`` — and is kept for ``max_disconnection_duration``;
* when the connection drops for a recoverable reason, the session (id, pid, rooms, data) is kept;
* the client reconnects with ``40{"pid":"..","offset":".."}`` (its last offset); if the session is
  still there and the offset still known, the server restores the session and sends what came
  after that offset to the session's rooms.

Pure: time is passed in (``now``, seconds), nothing here touches a socket.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sio_teach.errors import DisconnectReason as Reason

# socket.io lib/socket.ts RECOVERABLE_DISCONNECT_REASONS
RECOVERABLE_REASONS = frozenset(
    {
        Reason.TRANSPORT_ERROR,
        Reason.TRANSPORT_CLOSE,
        Reason.FORCED_CLOSE,
        Reason.PING_TIMEOUT,
        Reason.SERVER_SHUTTING_DOWN,
    }
)


@dataclass(frozen=True, slots=True)
class Options:
    max_disconnection_duration: float = 120.0  # maxDisconnectionDuration 2 * 60 * 1000
    skip_middlewares: bool = True


@dataclass(slots=True)
class Session:
    """What a disconnected socket leaves behind; ``missed`` is filled in by :meth:`restore`."""

    sid: str
    pid: str
    rooms: set[str]
    data: dict[str, Any]
    disconnected_at: float = 0.0
    missed: list[list[Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Stored:
    offset: str
    rooms: frozenset[str]  # empty: the whole namespace
    except_: frozenset[str]
    data: list[Any]  # the EVENT's arguments, offset included
    at: float


class Recovery:
    """The sessions and recent events of one namespace."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.sessions: dict[str, Session] = {}  # pid -> session
        self.events: deque[Stored] = deque()
        self._counter = itertools.count()
        self._prefix = secrets.token_urlsafe(6)

    def new_pid(self) -> str:
        return secrets.token_urlsafe(15)

    def stamp(
        self, data: list[Any], rooms: frozenset[str], except_: frozenset[str], now: float
    ) -> list[Any]:
        """Append a fresh offset to an event's arguments and keep it; returns the new arguments."""
        self._forget_old(now)
        offset = f"{self._prefix}-{next(self._counter)}"
        stamped = [*data, offset]
        self.events.append(Stored(offset, rooms, except_, stamped, now))
        return stamped

    def persist(self, session: Session, now: float) -> None:
        """Keep a socket's session after a recoverable disconnection."""
        self._forget_old(now)
        session.disconnected_at = now
        self.sessions.pop(session.pid, None)
        self.sessions[session.pid] = session

    def restore(self, pid: Any, offset: Any, now: float) -> Session | None:
        """The session of ``pid`` with the events it missed after ``offset``, or None."""
        self._forget_old(now)
        if not isinstance(pid, str) or not isinstance(offset, str):
            return None
        session = self.sessions.pop(pid, None)
        if session is None:
            return None
        offsets = [event.offset for event in self.events]
        if offset not in offsets:
            return None  # too old, or not from this server: the client starts afresh
        for event in itertools.islice(self.events, offsets.index(offset) + 1, None):
            reached = not event.rooms or bool(event.rooms & session.rooms)
            if reached and not event.except_ & session.rooms:
                session.missed.append(event.data)
        return session

    def _forget_old(self, now: float) -> None:
        horizon = now - self.options.max_disconnection_duration
        while self.events and self.events[0].at < horizon:
            self.events.popleft()
        while self.sessions:  # kept in the order they were persisted: the oldest first
            oldest = next(iter(self.sessions))
            if self.sessions[oldest].disconnected_at >= horizon:
                break
            del self.sessions[oldest]
