"""The errors sio_teach raises, named by whose fault they are.

* :class:`ProtocolError` — the *remote* peer broke a rule of the protocol. It carries what the spec
  assigns to the fault: an HTTP status and an Engine.IO error code (for HTTP requests), or just a
  message (the connection is then closed).
* Local misuse (calling an API wrongly) raises the standard ``ValueError`` / ``TypeError`` /
  ``RuntimeError``: those are bugs in the caller's program, not in the peer.
"""

from __future__ import annotations

from enum import StrEnum


class SioTeachError(Exception):
    """Base class of every error raised by sio_teach itself."""


class ProtocolError(SioTeachError):
    """The remote peer sent something the protocol does not allow.

    ``status`` and ``code`` are the HTTP status and Engine.IO error code that the spec (and the
    reference server, engine.io ``lib/server.ts``) answer with; ``code`` is ``None`` when the fault
    is not one of the numbered HTTP errors (a malformed packet, say: the connection is closed).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: int | None = None,
        close_session: bool = False,
        context: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.close_session = close_session  # the fault also ends the session it was sent on
        self.context = context or {}  # what was wrong, as engine.io's ``connection_error`` says


class ConnectError(SioTeachError):
    """A connection could not be made or was lost (client side)."""


class AckTimeoutError(SioTeachError, TimeoutError):
    """An acknowledgement did not arrive in time."""


class ConnectRefused(SioTeachError):
    """Raise in a namespace middleware to refuse a connection.

    The client receives CONNECT_ERROR ``{"message": message, "data": data}`` (``data`` only when
    given) and its ``connect_error`` handler runs; the Engine.IO connection stays open.
    """

    def __init__(self, message: str = "Connection refused", data: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class DisconnectReason(StrEnum):
    """Why a connection or a namespace ended: the official strings, shared by both layers.

    The values are what the official packages report (socket.io ``lib/socket.ts``
    ``DisconnectReason``, socket.io-client ``Socket.DisconnectReason``), so a reason compares equal
    to the string a JavaScript user knows: ``DisconnectReason.PING_TIMEOUT == "ping timeout"``.
    """

    # the Socket.IO layer
    IO_SERVER_DISCONNECT = "io server disconnect"  # the server called socket.disconnect()
    IO_CLIENT_DISCONNECT = "io client disconnect"  # the client called socket.disconnect()
    SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"  # seen on the server side
    CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"  # seen on the server side
    FORCED_SERVER_CLOSE = "forced server close"  # the client broke the rules: all namespaces end
    # the Engine.IO layer
    PING_TIMEOUT = "ping timeout"  # no pong (server side) or no ping (client side) in time
    TRANSPORT_CLOSE = "transport close"  # the connection was closed (or the peer sent close)
    TRANSPORT_ERROR = "transport error"  # the connection failed, or broke a transport rule
    PARSE_ERROR = "parse error"  # the peer sent a packet that cannot be decoded
    FORCED_CLOSE = "forced close"  # the session was closed on purpose by this side
    SERVER_SHUTTING_DOWN = "server shutting down"  # the server is stopping
