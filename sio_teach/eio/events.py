"""What an Engine.IO session tells the application, on either side (see ``events()``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    """The client sent a message (``str`` or ``bytes``)."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class Upgraded:
    """The session now runs over WebSocket."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over. ``reason`` as the reference server names it."""

    reason: str


Event = Message | Upgraded | Closed
