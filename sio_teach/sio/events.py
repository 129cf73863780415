"""Events about acknowledgements, the same on both sides of a Socket.IO connection.

The server's machine (``server_connection.py``) and the client's (``client_connection.py``) each
await ACKs for the EVENTs they send with an ack id; each reports the answer, or its absence, with
these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
