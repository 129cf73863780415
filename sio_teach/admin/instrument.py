"""The server side of the official Admin UI: ``server.instrument(auth=..., mode=...)``.

npm ``@socket.io/admin-ui`` 0.5.x ``lib/index.ts`` ``instrument(io, options)`` does the same on
a Node server. Everything the UI hears is a broadcast on the admin namespace, so with a
multi-node adapter (``adapters/redis.py``) every node's events and ``server_stats`` reach a UI
connected to any node; ``all_sockets`` is ``fetch_sockets()`` of every namespace, on every node;
the commands are cluster-wide (``sockets_join``, ``sockets_leave``, ``disconnect_sockets``, and a
broadcast for ``emit``). A login's session id is told to the other nodes with
``server_side_emit``, so the UI's reconnection may land on any of them.

What the server tells the admin (``observer.py``): connections, messages and their sizes (the
aggregated events of ``server_stats``); in development mode also sockets, rooms (each adapter's
``on_join_room`` / ``on_leave_room``) and events (``on_any`` / ``on_any_outgoing``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket as socket_module
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sio_teach.admin import protocol
from sio_teach.errors import ConnectRefused
from sio_teach.observer import Observer
from sio_teach.tasks import spawn

if TYPE_CHECKING:
    from sio_teach.namespace import BroadcastOperator, Namespace, Socket
    from sio_teach.server import Connection, Server

log = logging.getLogger("sio_teach.admin")

STARTED = time.monotonic()  # the process's uptime is counted from the first import
MAX_SESSIONS = 1000  # the logins remembered (the oldest is forgotten first)
NO_AUTH = (None, False)


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt hash of ``password`` for ``instrument(auth={"password": ...})`` (call it once, at
    start-up: it costs about 70 ms at 10 rounds)."""
    import bcrypt

    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds)).decode()


def instrument(
    server: Server,
    *,
    auth: Mapping[str, str] | None | bool,
    mode: str = "development",
    namespace: str = "/admin",
    server_id: str | None = None,
    readonly: bool = False,
    stats_interval: float = 2.0,
    clock: Callable[[], float] = time.time,
) -> Admin:
    """Serve the Admin UI's namespace on ``server``; call once, before clients connect.

    ``auth`` must be given, as in the package: ``{"username": ..., "password": <bcrypt hash>}``
    (see :func:`hash_password`), or ``None`` / ``False`` for no authentication. ``mode``
    ``"production"`` sends only ``server_stats`` (no per-socket events, no ``all_sockets``).
    ``server_id`` names this node in the UI (default: the host name). ``clock`` gives the
    timestamps (Unix seconds)."""
    if auth not in NO_AUTH and not isinstance(auth, Mapping):
        raise ValueError("invalid `auth` option: a dict with username and password, or None")
    if isinstance(auth, Mapping) and not protocol.is_bcrypt_hash(str(auth.get("password"))):
        raise ValueError("the `password` field must be a valid bcrypt hash")
    if mode not in ("development", "production"):
        raise ValueError(f"mode must be 'development' or 'production', not {mode!r}")
    admin = Admin(server, auth or None, mode == "development", namespace, server_id, readonly)
    admin.stats_interval, admin.clock = stats_interval, clock
    admin.start()
    return admin


class Admin(Observer):
    """The admin namespace and what it is told. Made by :func:`instrument`."""

    def __init__(
        self,
        server: Server,
        auth: Mapping[str, str] | None,
        development: bool,
        namespace: str,
        server_id: str | None,
        readonly: bool,
    ) -> None:
        self.server = server
        self.auth = auth
        self.development = development
        self.readonly = readonly
        self.features = protocol.supported_features(readonly, development)
        hostname = socket_module.gethostname()
        self.base = {"serverId": server_id or hostname, "hostname": hostname, "pid": os.getpid()}
        self.stats_interval = 2.0
        self.clock: Callable[[], float] = time.time
        self.sessions: dict[str, None] = {}  # login session ids, oldest first
        self.logins: dict[str, str] = {}  # socket id -> the session id to send it once connected
        self.events = protocol.EventBuffer()
        self.nsp = server.of(namespace)
        self._stats: asyncio.Future[Any] | None = None

    def start(self) -> None:
        nsp = self.nsp
        if self.auth is not None:
            nsp.use(self.authenticate)
        nsp.on("connect", self.on_admin_connect)
        nsp.on_server_side("session", self.remember)
        if not self.readonly:
            nsp.on("emit", self.command_emit)
            nsp.on("join", self.command_join)
            nsp.on("leave", self.command_leave)
            nsp.on("_disconnect", self.command_disconnect)
        self.server.observers.append(self)
        for existing in [*self.server.namespaces.values()] + [
            parent for _, parent in self.server.parent_namespaces
        ]:
            self.namespace_created(existing)
        self.start_stats()

    # -- the admin namespace --------------------------------------------------------------------

    async def authenticate(self, socket: Socket) -> None:
        """The middleware of the admin namespace: a known ``sessionId``, or the username and
        password (checked against the bcrypt hash off the loop); else CONNECT_ERROR
        ``invalid credentials``."""
        import bcrypt

        assert self.auth is not None
        given = socket.handshake["auth"] if isinstance(socket.handshake["auth"], dict) else {}
        if given.get("sessionId") in self.sessions:
            return
        password = given.get("password")
        if given.get("username") == self.auth["username"] and isinstance(password, str):
            hashed = str(self.auth["password"]).encode()
            if await asyncio.to_thread(bcrypt.checkpw, password.encode()[:72], hashed):
                session_id = secrets.token_hex(8)
                self.remember(session_id)
                self.nsp.server_side_emit("session", session_id)
                self.logins[socket.id] = session_id
                return
        raise ConnectRefused("invalid credentials")

    def remember(self, session_id: str) -> None:
        """Accept ``session_id`` from now on (a login here, or on another node)."""
        self.sessions[str(session_id)] = None
        while len(self.sessions) > MAX_SESSIONS:
            del self.sessions[next(iter(self.sessions))]

    def on_admin_connect(self, socket: Socket, auth: Any) -> None:
        if (session_id := self.logins.pop(socket.id, None)) is not None:
            socket.emit("session", session_id)
        socket.emit("config", {"supportedFeatures": self.features})
        if self.development:
            spawn(self.send_all_sockets(socket), "admin all_sockets")

    async def send_all_sockets(self, admin: Socket) -> None:
        everyone: list[dict[str, Any]] = []
        for nsp in list(self.server.namespaces.values()):
            try:
                found = await nsp.fetch_sockets()
            except TimeoutError:  # a node did not answer: show what the others said
                log.warning("all_sockets: a node did not answer for %s", nsp.name)
                found = [s for s in nsp.sockets.values()]
            everyone += [
                protocol.serialize(s.id, nsp.name, s.handshake, s.rooms, s.data) for s in found
            ]
        admin.emit("all_sockets", everyone)

    def emit(self, event: str, *args: Any) -> None:
        """Tell every UI, on every node."""
        self.nsp.emit(event, *args)

    def now(self) -> str:
        return protocol.js_date(self.clock())

    # -- the commands (lib/index.ts registerFeatureHandlers, Socket.IO v4) ----------------------

    def target(self, name: Any, filter: Any) -> BroadcastOperator | None:
        """The sockets of namespace ``name`` (an existing one), in room ``filter`` if given."""
        nsp = self.server.namespaces.get(name) if isinstance(name, str) else None
        if nsp is None:
            return None
        return nsp.to(str(filter)) if filter else nsp.to()

    def command_emit(self, socket: Socket, nsp: Any, filter: Any, event: Any, *args: Any) -> None:
        if (target := self.target(nsp, filter)) is not None and isinstance(event, str):
            target.emit(event, *args)

    def command_join(self, socket: Socket, nsp: Any, room: Any, filter: Any = None) -> None:
        if (target := self.target(nsp, filter)) is not None:
            target.sockets_join(str(room))

    def command_leave(self, socket: Socket, nsp: Any, room: Any, filter: Any = None) -> None:
        if (target := self.target(nsp, filter)) is not None:
            target.sockets_leave(str(room))

    def command_disconnect(
        self, socket: Socket, nsp: Any, close: Any = False, filter: Any = None
    ) -> None:
        if (target := self.target(nsp, filter)) is not None:
            target.disconnect_sockets(bool(close))

    # -- server_stats ---------------------------------------------------------------------------

    def start_stats(self) -> None:
        """Send ``server_stats`` now and every ``stats_interval`` seconds (from the first
        connection if no loop runs yet)."""
        if self._stats is not None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._stats = spawn(self.stats_loop(), "admin server_stats")

    async def stats_loop(self) -> None:
        while True:
            self.emit("server_stats", self.stats())
            await asyncio.sleep(self.stats_interval)

    def stats(self) -> dict[str, Any]:
        sessions = self.server.engine.sessions.values()
        return protocol.server_stats(
            self.base,
            round(time.monotonic() - STARTED, 3),
            len(sessions),
            sum(1 for eio in sessions if eio.transport == "polling"),
            self.events.take(),
            {name: len(nsp.sockets) for name, nsp in self.server.namespaces.items()},
        )

    def server_closed(self) -> None:
        if self._stats is not None:
            self._stats.cancel()
            self._stats = None

    # -- what the server tells (observer.py) ----------------------------------------------------

    def connection_opened(self, conn: Connection) -> None:
        self.start_stats()
        self.events.push(self.clock(), "rawConnection")

    def connection_closed(self, conn: Connection, reason: str) -> None:
        self.events.push(self.clock(), "rawDisconnection", reason)

    def message_received(self, conn: Connection, size: int) -> None:
        now = self.clock()
        self.events.push(now, "packetsIn")
        self.events.push(now, "bytesIn", None, size)

    def message_sent(self, conn: Connection, size: int) -> None:
        now = self.clock()
        self.events.push(now, "packetsOut")
        self.events.push(now, "bytesOut", None, size)

    def namespace_created(self, nsp: Namespace) -> None:
        if not self.development:
            return
        name = nsp.name
        nsp.adapter.on_join_room.append(
            lambda room, sid: self.emit("room_joined", name, room, sid, self.now())
        )
        nsp.adapter.on_leave_room.append(
            lambda room, sid: self.emit("room_left", name, room, sid, self.now())
        )
        if nsp is not self.nsp and self.event_received not in nsp.any_handlers:
            nsp.on_any(self.event_received)  # a dynamic namespace's children share these lists
            nsp.on_any_outgoing(self.event_sent)

    def event_received(self, socket: Socket, event: str, *args: Any) -> None:
        self.emit("event_received", socket.nsp.name, socket.id, [event, *args], self.now())

    def event_sent(self, socket: Socket, event: str, *args: Any) -> None:
        self.emit("event_sent", socket.nsp.name, socket.id, [event, *args], self.now())

    def socket_connected(self, socket: Socket) -> None:
        if not self.development:
            return
        eio = socket.conn.eio
        if isinstance(socket.data, dict):

            def changed() -> None:  # the application changed socket.data: the UI shows it
                data = protocol.public_data(socket.data)
                self.emit("socket_updated", {"id": socket.id, "nsp": socket.nsp.name, "data": data})

            socket.data = protocol.WatchedData(socket.data, changed)
            # what another node's fetch_sockets() will see (not watched, as in the package)
            admin = protocol.admin_data(eio.sid, eio.transport, self.clock())
            dict.__setitem__(socket.data, "_admin", admin)
        serialized = protocol.serialize(
            socket.id, socket.nsp.name, socket.handshake, socket.rooms, socket.data
        )
        self.emit("socket_connected", serialized, self.now())

    def connection_upgraded(self, conn: Connection) -> None:
        if not self.development:
            return
        for socket in conn.sockets.values():
            if isinstance(socket.data, dict) and isinstance(socket.data.get("_admin"), dict):
                socket.data["_admin"]["transport"] = conn.eio.transport
            update = {"id": socket.id, "nsp": socket.nsp.name, "transport": conn.eio.transport}
            self.emit("socket_updated", update)

    def socket_disconnected(self, socket: Socket, reason: str) -> None:
        if self.development:
            self.emit("socket_disconnected", socket.nsp.name, socket.id, reason, self.now())
