"""The Engine.IO client on Tornado: HTTP long-polling, WebSocket, and the upgrade between them.

Every rule lives in :class:`sio_teach.eio.client_session.ClientSession`; this module makes the
requests, runs the loops, arms the heartbeat timer and records each packet in the tracer::

    client = EngineClient("http://127.0.0.1:3000", path="/engine.io/")
    client.on_message = print
    await client.connect()          # polling handshake, then upgrade to WebSocket in the background
    client.send("hello")
    await client.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any

import tornado.ioloop
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from sio_teach.eio.client_session import ClientSession, State
from sio_teach.eio.events import Closed, Message
from sio_teach.eio.packet import Packet, decode_ws, encode_ws
from sio_teach.errors import ConnectError, ProtocolError
from sio_teach.tasks import spawn
from sio_teach.trace import Tracer

log = logging.getLogger("sio_teach.eio.client")

TRANSPORT_ERRORS = (OSError, HTTPClientError)  # TimeoutError is an OSError


class EngineClient:
    """An Engine.IO v4 client. Set ``on_message(data)`` and ``on_close(reason)`` before connecting.

    ``transports`` as in the official client: ``("polling", "websocket")`` (the default) starts with
    long-polling and upgrades; ``("websocket",)`` opens a WebSocket only; ``("polling",)`` never
    upgrades.
    """

    def __init__(
        self,
        url: str,
        *,
        path: str = "/engine.io/",
        transports: tuple[str, ...] | list[str] = ("polling", "websocket"),
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        tracer: Tracer | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}{path}"
        self.transports = tuple(transports)
        self.query = dict(query or {})
        self.headers = dict(headers or {})
        self.tracer = tracer or Tracer("client", enabled=False)
        self.connect_timeout = connect_timeout
        self.on_message: Callable[[str | bytes], None] = lambda data: None
        self.on_close: Callable[[str], None] = lambda reason: None
        self.session = ClientSession(self.transports[0])
        self.ws: WebSocketClientConnection | None = None
        self._http = AsyncHTTPClient(force_instance=True, max_clients=4)
        self._tasks: set[asyncio.Future[None]] = set()
        self._poll_task: asyncio.Future[None] | None = None
        self._post_task: asyncio.Future[None] | None = None
        self._timer: object | None = None
        self.closed = asyncio.Event()

    # -- public API --------------------------------------------------------------------------

    @property
    def sid(self) -> str | None:
        return self.session.sid

    @property
    def transport(self) -> str:
        return self.session.transport

    async def connect(self) -> None:
        """Handshake on the first transport. Raises :class:`ConnectError` if the server refuses."""
        try:
            if self.transports[0] == "polling":
                self._receive(await self._get(), "GET")
                self._poll_task = self._spawn(self._poll_loop())
                upgrades = self.session.handshake.upgrades  # type: ignore[union-attr]  # open now
                if "websocket" in self.transports and "websocket" in upgrades:
                    self._spawn(self._upgrade())
            else:
                ws = await self._open_ws()
                self._receive(await self._read(ws), "ws")
                self.ws = ws
                self._spawn(self._ws_loop(ws))
        except (*TRANSPORT_ERRORS, ProtocolError, ConnectError) as error:
            self.session.lost("transport error")
            self._after()
            self._cleanup()
            raise ConnectError(f"cannot connect to {self.base}: {error}") from error
        self._after()

    def send(self, data: str | bytes) -> None:
        """Send one message (text or binary). Raises ``RuntimeError`` once closed."""
        self.session.send(data)
        self._after()

    async def close(self) -> None:
        """Send what is queued, then the close packet; wait until the session is over."""
        with contextlib.suppress(TimeoutError):  # engine.io-client waits for "drain" first
            await asyncio.wait_for(self._drain(sent_only=True), 2.0)
        self.session.close()  # (nothing if the session is over already)
        self._after()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drain(), 2.0)
        self._cleanup()

    # -- plumbing ----------------------------------------------------------------------------

    def _now(self) -> float:
        return tornado.ioloop.IOLoop.current().time()

    def _spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Future[None]:
        task = spawn(coro, "Engine.IO client task")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _url(self, transport: str) -> str:
        query = {**self.query, "EIO": "4", "transport": transport}
        if self.sid:
            query["sid"] = self.sid
        if transport == "polling":
            query["t"] = secrets.token_urlsafe(6)  # cache-buster, as the official client does
        url = f"{self.base}?{urllib.parse.urlencode(query)}"
        return url.replace("http", "ws", 1) if transport == "websocket" else url

    def _record(self, direction: str, transport: str, wire: str | bytes) -> None:
        """Note a WebSocket frame, or each packet of a polling body (``transport`` GET or POST)."""
        if not self.tracer.enabled:
            return
        if transport == "ws":
            self.tracer.record(self.sid or "?", direction, transport, wire)
        else:
            self.tracer.record_payload(self.sid or "?", direction, transport, str(wire))

    def _receive(self, wire: str | bytes, transport: str) -> None:
        """Feed a GET's body or a WebSocket frame to the session, then record it (recorded after:
        the handshake's record needs the sid it brings)."""
        try:
            if transport == "ws":
                self.session.receive(decode_ws(wire), self._now())
            else:
                self.session.receive_payload(wire, self._now())
        finally:
            self._record("<", transport, wire)

    async def _fetch(self, **options: Any) -> str:
        """One long-polling request (a GET, or a POST with ``method`` and ``body``): its answer."""
        response = await self._http.fetch(self._url("polling"), headers=self.headers, **options)
        return response.body.decode()

    async def _get(self) -> str:
        """The next GET: the server holds it up to a ping interval, so wait a little longer."""
        handshake = self.session.handshake
        timeout = handshake.ping_interval + handshake.ping_timeout + 5 if handshake else 30
        return await self._fetch(request_timeout=timeout)

    async def _post(self) -> None:
        while self.session.has_outgoing() and not self.session.pausing and self.ws is None:
            body = self.session.take_payload()
            self._record(">", "POST", body)
            try:
                await self._fetch(method="POST", body=body)
                self.session.post_done()
            except TRANSPORT_ERRORS as error:
                log.info("POST failed: %s", error)
                self.session.lost("transport error")
                break
        self._post_task = None
        self._after()

    async def _poll_loop(self) -> None:
        """Long-poll: one GET at a time, until closed or paused for the upgrade."""
        while self.session.state in (State.POLLING, State.UPGRADING) and not self.session.pausing:
            try:
                self._receive(await self._get(), "GET")
            except ProtocolError as error:
                log.info("bad payload: %s", error)
                self.session.lost("parse error")
            except TRANSPORT_ERRORS as error:
                log.info("GET failed: %s", error)
                self.session.lost("transport error")
            self._after()
        self._poll_task = None

    async def _open_ws(self) -> WebSocketClientConnection:
        request = HTTPRequest(self._url("websocket"), headers=self.headers)
        ws = await asyncio.wait_for(websocket_connect(request), self.connect_timeout)
        ws.protocol.set_nodelay(True)  # type: ignore[union-attr]  # small frames leave at once (no Nagle delay)
        return ws

    async def _read(self, ws: WebSocketClientConnection) -> str | bytes:
        frame = await asyncio.wait_for(ws.read_message(), self.connect_timeout)
        if frame is None:
            raise ConnectError("WebSocket closed")
        return frame

    def _write(self, ws: WebSocketClientConnection, packet: Packet) -> None:
        frame = encode_ws(packet)
        self._record(">", "ws", frame)
        with contextlib.suppress(WebSocketClosedError):
            ws.write_message(frame, binary=isinstance(frame, bytes))

    async def _upgrade(self) -> None:
        """Probe a WebSocket; once ``3probe`` arrives, pause polling and send ``5``."""
        try:
            ws = await self._open_ws()
            self._write(ws, self.session.start_upgrade())
            probe = await self._read(ws)
            self._record("<", "ws", probe)
            self.session.receive_probe(decode_ws(probe))
        except (*TRANSPORT_ERRORS, ProtocolError, ConnectError) as error:
            log.info("upgrade failed, staying on polling: %s", error)
            self.session.probe_failed()
            return
        # the probe paused polling: the server answers the pending GET with a noop
        await asyncio.gather(*(t for t in (self._poll_task, self._post_task) if t))
        if not self.session.closed and ws.protocol is not None and not ws.protocol.is_closing():
            self._write(ws, self.session.finish_upgrade())
            self.ws = ws
            self._spawn(self._ws_loop(ws))
        else:  # closed during the pause (the close packet left on polling), or the WebSocket died
            ws.close()
            if not self.session.closed:  # stay on polling: nothing queued is lost
                self.session.probe_failed()
                self._poll_task = self._spawn(self._poll_loop())
        self._after()

    async def _ws_loop(self, ws: WebSocketClientConnection) -> None:
        while (frame := await ws.read_message()) is not None:
            try:
                self._receive(frame, "ws")
            except ProtocolError as error:
                log.info("bad frame: %s", error)
                self.session.lost("parse error")
            self._after()
        self.session.lost("transport close")
        self._after()

    def _after(self) -> None:
        """After every change: deliver events, write what is queued, re-arm the heartbeat timer."""
        session = self.session
        for event in session.events():
            if isinstance(event, Message):
                self.on_message(event.data)
            elif isinstance(event, Closed):
                self.on_close(event.reason)
        if self.ws is not None:
            for packet in session.take_outgoing():
                self._write(self.ws, packet)
        elif session.has_outgoing() and self._post_task is None and not session.pausing:
            if session.handshake is not None:  # the first POST carries the sid
                self._post_task = self._spawn(self._post())
        loop = tornado.ioloop.IOLoop.current()
        if self._timer is not None:
            loop.remove_timeout(self._timer)
        deadline = session.next_deadline()
        self._timer = None if deadline is None else loop.call_at(deadline, self._on_timer)
        if session.closed and not self.closed.is_set():
            self.closed.set()
            if self.ws is not None:  # the close packet, if any, is written above
                self.ws.close()

    def _on_timer(self) -> None:
        self.session.handle_timeout(self._now())
        self._after()

    async def _drain(self, sent_only: bool = False) -> None:
        """Wait until everything queued has left (and, unless ``sent_only``, the loops ended)."""
        while (
            self.session.pausing
            or self._post_task
            or self.session.has_outgoing()
            or (self._poll_task and not sent_only)
        ):
            await asyncio.sleep(0.01)

    def _cleanup(self) -> None:
        """Close the WebSocket and the HTTP client, stop every task. The session is closed by
        now, and with it the heartbeat timer (:meth:`_after`)."""
        if self.ws is not None:
            self.ws.close()
        for task in list(self._tasks):
            task.cancel()
        self._http.close()
