"""The Admin UI protocol, pure: what the server sends to the UI (npm ``@socket.io/admin-ui`` 0.5.x,
``lib/typed-events.ts``) as plain values, time passed in.

The UI connects to the admin namespace (``/admin``) and hears::

    session(sessionId)                       after a login with username and password
    config({supportedFeatures})              once connected
    all_sockets([SerializedSocket])          once connected (development mode)
    server_stats(ServerStats)                every 2 s, from every server of the cluster
    socket_connected(socket, timestamp)      \\
    socket_updated(partial socket)            |
    socket_disconnected(nsp, id, reason, t)   | development mode: every namespace's life
    room_joined(nsp, room, id, timestamp)     |
    room_left(nsp, room, id, timestamp)       |
    event_received(nsp, id, args, t)          |
    event_sent(nsp, id, args, t)             /

and may send ``emit(nsp, filter, event, *args)``, ``join(nsp, room, filter)``,
``leave(nsp, room, filter)``, ``_disconnect(nsp, close, filter)``. Timestamps are JavaScript
``Date`` values as JSON writes them (ISO 8601, milliseconds, ``Z``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# lib/typed-events.ts Feature: which buttons the UI shows
EMIT, JOIN, LEAVE, DISCONNECT = "EMIT", "JOIN", "LEAVE", "DISCONNECT"
MJOIN, MLEAVE, MDISCONNECT = "MJOIN", "MLEAVE", "MDISCONNECT"
AGGREGATED_EVENTS, ALL_EVENTS = "AGGREGATED_EVENTS", "ALL_EVENTS"

# bcryptjs getRounds() accepts $2a$ / $2b$ / $2y$ and two digits of rounds; 22 + 31 characters
BCRYPT_HASH = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")


def supported_features(readonly: bool, development: bool) -> list[str]:
    """The ``config`` event's ``supportedFeatures``, as ``instrument()`` of the package computes
    them for a Socket.IO v4 server: the commands unless ``readonly``, then the aggregated events,
    then every event in development mode."""
    features = [] if readonly else [EMIT, JOIN, LEAVE, DISCONNECT, MJOIN, MLEAVE, MDISCONNECT]
    features.append(AGGREGATED_EVENTS)
    if development:
        features.append(ALL_EVENTS)
    return features


def is_bcrypt_hash(password: str) -> bool:
    """Is ``password`` a bcrypt hash (``$2b$10$…``)? The package refuses any other password."""
    return bool(BCRYPT_HASH.fullmatch(password))


def js_date(now: float) -> str:
    """``now`` (Unix seconds) as ``JSON.stringify(new Date())`` writes it."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _header(headers: dict[str, Any], name: str) -> Any:
    """A header by name, whatever the case of the keys (Tornado Title-Cases, Node lowercases)."""
    return next((v for k, v in headers.items() if k.lower() == name), None)


def admin_data(client_id: str, transport: str, issued: float) -> dict[str, Any]:
    """What the server keeps in ``socket.data["_admin"]``: the Engine.IO session id (its first
    12 characters, as the package: "this information is quite sensitive"), the transport, and,
    for sio_teach, when the socket connected (the handshake's ``issued``, in ms)."""
    return {"clientId": client_id[:12], "transport": transport, "issued": int(issued * 1000)}


def serialize(
    sid: str, nsp: str, handshake: dict[str, Any], rooms: list[str] | set[str], data: Any
) -> dict[str, Any]:
    """A socket as the UI receives it (``SerializedSocket``): its id, namespace, rooms, the
    Engine.IO session and transport (from ``data["_admin"]``), the handshake without ``auth``, and
    ``data`` without ``_admin``."""
    data = data if isinstance(data, dict) else {}
    admin = data.get("_admin") or {}
    headers = handshake.get("headers") or {}
    address = (
        _header(headers, "cf-connecting-ip")
        or _header(headers, "x-forwarded-for")
        or handshake.get("address")
    )
    issued = handshake.get("issued", admin.get("issued"))
    return {
        "id": sid,
        "clientId": admin.get("clientId"),
        "transport": admin.get("transport"),
        "nsp": nsp,
        "data": public_data(data),
        "handshake": {
            "address": address,
            "headers": headers,
            "query": handshake.get("query") or {},
            "issued": issued,
            "secure": handshake.get("secure", False),
            "time": handshake.get("time", js_date(issued / 1000) if issued else None),
            "url": handshake.get("url"),
            "xdomain": handshake.get("xdomain", _header(headers, "origin") is not None),
        },
        "rooms": sorted(rooms),
    }


class WatchedData(dict):  # type: ignore[type-arg]
    """``socket.data`` while the Admin UI watches (development mode): a dict that calls
    ``changed()`` after each assignment or deletion, in it or in a dict stored in it (the
    package's ``Proxy`` on ``socket.data``, whose ``set`` emits ``socket_updated``)."""

    def __init__(self, data: dict[str, Any], changed: Callable[[], None]) -> None:
        self.changed = changed
        super().__init__({key: self._watch(value) for key, value in data.items()})

    def _watch(self, value: Any) -> Any:
        return WatchedData(value, self.changed) if isinstance(value, dict) else value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, self._watch(value))
        self.changed()

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self.changed()

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            super().__setitem__(key, self._watch(value))
        self.changed()


def public_data(data: Any) -> dict[str, Any]:
    """``socket.data`` as the UI shows it: without the ``_admin`` entry."""
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k != "_admin"}


@dataclass
class EventBuffer:
    """The ``aggregatedEvents`` of ``server_stats``: counts per second and per kind
    (``rawConnection``, ``rawDisconnection`` with its reason, ``packetsIn``/``Out``,
    ``bytesIn``/``Out``), emptied by each ``server_stats`` (the package's ``EventBuffer``)."""

    counts: dict[tuple[int, str, str | None], int] = field(default_factory=dict)

    def push(self, now: float, kind: str, sub_type: str | None = None, count: int = 1) -> None:
        key = (int(now) * 1000, kind, sub_type)
        self.counts[key] = self.counts.get(key, 0) + count

    def take(self) -> list[dict[str, Any]]:
        """Every count since the last call, oldest first; the buffer is then empty."""
        values = []
        for (timestamp, kind, sub_type), count in self.counts.items():
            value: dict[str, Any] = {"timestamp": timestamp, "type": kind, "count": count}
            if sub_type is not None:
                value["subType"] = sub_type
            values.append(value)
        self.counts.clear()
        return values


def server_stats(
    base: dict[str, Any],
    uptime: float,
    clients: int,
    polling_clients: int,
    aggregated: list[dict[str, Any]],
    namespaces: dict[str, int],
) -> dict[str, Any]:
    """The ``server_stats`` event: ``base`` (serverId, hostname, pid), the process uptime in
    seconds, the Engine.IO clients (and how many are on long-polling), the aggregated events, and
    each namespace with its number of sockets."""
    return {
        **base,
        "uptime": uptime,
        "clientsCount": clients,
        "pollingClientsCount": polling_clients,
        "aggregatedEvents": aggregated,
        "namespaces": [{"name": n, "socketsCount": c} for n, c in namespaces.items()],
    }
