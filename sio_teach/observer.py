"""What the server tells a tool that watches it: the hook points of ``Server.observers``.

Add an :class:`Observer` to ``server.observers`` (``admin/`` does, for the official Admin UI) and
the server calls it as things happen: a namespace is created, an Engine.IO connection opens,
upgrades or closes, a message comes in or goes out, a socket connects or disconnects, the server
closes. Rooms are told by each namespace's adapter (``MemoryAdapter.on_join_room`` /
``on_leave_room``, socket.io-adapter's ``join-room`` / ``leave-room``) and events by the
namespace's ``on_any`` / ``on_any_outgoing`` listeners; an observer registers those in
:meth:`Observer.namespace_created`. Every method here does nothing: override what you need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sio_teach.namespace import Namespace, Socket
    from sio_teach.server import Connection


class Observer:
    """A watcher of one :class:`~sio_teach.server.Server`; each method is called right after the
    thing it names happened, on the server's loop, and must not raise."""

    def namespace_created(self, nsp: Namespace) -> None:
        """A namespace exists (a dynamic namespace's parent, too: its children share its
        handlers and listeners)."""

    def connection_opened(self, conn: Connection) -> None:
        """A new Engine.IO connection (its transport is ``conn.eio.transport``)."""

    def connection_upgraded(self, conn: Connection) -> None:
        """The connection now runs over WebSocket."""

    def connection_closed(self, conn: Connection, reason: str) -> None:
        """The Engine.IO connection ended, for ``reason``."""

    def message_received(self, conn: Connection, size: int) -> None:
        """An Engine.IO message of ``size`` bytes arrived (the server's observers are not empty)."""

    def message_sent(self, conn: Connection, size: int) -> None:
        """An Engine.IO message of ``size`` bytes was queued for the client."""

    def socket_connected(self, socket: Socket) -> None:
        """``socket`` joined its namespace: CONNECT answered, its connect handler not yet run."""

    def socket_disconnected(self, socket: Socket, reason: str) -> None:
        """``socket`` left its namespace (its rooms are already left)."""

    def server_closed(self) -> None:
        """``Server.close()`` was called: stop any timer."""
