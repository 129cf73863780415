"""What the Engine.IO server tells the application besides its sessions: engine.io's
``connection_error``, ``initial_headers`` and ``headers`` events.

    engine = sio.engine                        # (or an EngineServer of your own)

    @engine.on("connection_error")
    def refused(error):                        # every request refused, before any session
        print(error.code, error.message, error.context, error.req.uri)

    @engine.on("initial_headers")
    def cookie(headers, request):              # the handshake's answer only
        headers["Set-Cookie"] = "region=eu; Path=/"

    @engine.on("headers")
    def every(headers, request):               # every answer: polling GET and POST, WebSocket 101
        headers["X-Served-By"] = "node-1"

As in engine.io (``lib/server.ts``): ``connection_error`` carries ``{req, code, message,
context}`` with the code 0-5 and its standard message (``eio/requests.py``); the header events get
a dict to fill and the request. A header whose value is a list is written once per item (several
``Set-Cookie``). A listener that raises is logged; the request goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tornado.httputil import HTTPServerRequest

from sio_teach.eio.requests import BAD_REQUEST, MESSAGES
from sio_teach.errors import ProtocolError

log = logging.getLogger("sio_teach.eio")

EVENTS = ("connection_error", "initial_headers", "headers")

Headers = dict[str, str | list[str]]


@dataclass(frozen=True)
class RequestRefused:
    """What ``connection_error`` listeners get: engine.io's ``{req, code, message, context}``."""

    req: HTTPServerRequest
    code: int
    message: str  # the code's standard message ("Session ID unknown"…)
    context: dict[str, Any] = field(default_factory=dict)  # what was wrong, in detail

    @classmethod
    def of(cls, request: HTTPServerRequest, error: ProtocolError) -> RequestRefused:
        code = BAD_REQUEST[0] if error.code is None else error.code
        context = dict(error.context)
        if error.message != MESSAGES[code]:
            context.setdefault("message", error.message)  # "overlapping GET", "Payload too large"
        return cls(request, code, MESSAGES[code], context)


class EngineEvents:
    """The listeners of an Engine.IO server's own events (:data:`EVENTS`)."""

    def __init__(self) -> None:
        self.listeners: dict[str, list[Callable[..., Any]]] = {event: [] for event in EVENTS}

    def on(self, event: str, listener: Callable[..., Any] | None = None) -> Any:
        """Add a listener of ``event`` (usable as a decorator)."""
        if event not in self.listeners:
            raise ValueError(f"unknown engine event {event!r}: one of {', '.join(EVENTS)}")
        if listener is None:
            return lambda fn: self.on(event, fn)
        self.listeners[event].append(listener)
        return listener

    def emit(self, event: str, *args: Any) -> None:
        """Call every listener of ``event``; one that raises is logged and the rest still run."""
        for listener in self.listeners[event]:
            try:
                listener(*args)
            except Exception:
                log.exception("engine %s listener failed", event)

    def response_headers(self, request: HTTPServerRequest, initial: bool) -> list[tuple[str, str]]:
        """The headers the listeners add to the answer to ``request``: ``initial_headers`` (on a
        handshake's answer, ``initial``) then ``headers``. Call just before answering."""
        if not (self.listeners["headers"] or initial and self.listeners["initial_headers"]):
            return []
        headers: Headers = {}
        if initial:
            self.emit("initial_headers", headers, request)
        self.emit("headers", headers, request)
        return [
            (name, item)
            for name, value in headers.items()
            for item in (value if isinstance(value, list) else [value])
        ]
