"""Events about acknowledgements, and the application's listeners: the same on both sides.

The server's machine (``server_connection.py``) and the client's (``client_connection.py``) each
await ACKs for the EVENTs they send with an ack id; each reports the answer, or its absence, with
these. A server's namespace and a client's socket register the application's handlers alike
(:class:`Listeners`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class AckReceived:
    """The peer answered the EVENT that carried ``ack_id``."""

    nsp: str
    ack_id: int
    args: list[Any]


@dataclass(frozen=True, slots=True)
class AckTimedOut:
    """No ACK for ``ack_id`` before its deadline (a late one is ignored)."""

    nsp: str
    ack_id: int


class Listeners:
    """The handlers of one namespace (a server's :class:`~sio_teach.namespace.Namespace`, a
    client's socket), as socket.io's ``on``, ``onAny`` and ``onAnyOutgoing`` register them."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.any_handlers: list[Handler] = []
        self.any_outgoing: list[Handler] = []

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register the handler of ``event`` (usable as a decorator: ``@nsp.on("chat")``)."""
        if handler is None:
            return lambda h: self.on(event, h)
        self.handlers[event] = handler
        return handler

    def on_any(self, handler: Handler) -> Handler:
        """A catch-all, called with ``(event, *args)`` for every incoming event."""
        self.any_handlers.append(handler)
        return handler

    def on_any_outgoing(self, handler: Handler) -> Handler:
        """Called with ``(event, *args)`` for every event as it leaves."""
        self.any_outgoing.append(handler)
        return handler
