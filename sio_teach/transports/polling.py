"""Every HTTP request on the Engine.IO path, and long-polling, on Tornado's HTTP layer.

Mounted by :meth:`EngineServer.routes` as a Tornado *router* (``EngineRouter``): for each request
it makes one :class:`EngineRequest`, a ``tornado.httputil.HTTPMessageDelegate`` that Tornado's
HTTP/1.1 server feeds the request's headers, then its body, then its end. No ``RequestHandler``
is made: a long-poll costs two HTTP requests per message, and a handler per request (its headers
dict, its ``Date``, its access log, its Task) costs about as much again as Tornado's HTTP server
itself (``python -m benchmarks.run --servers tornado_polling,tornado_lean --scenarios polling``
measures both).

When the headers arrive, :func:`check` asks the rules (``eio/requests.py``) — before any body is
read — and then:

* a refusal is answered at once with the spec's status and ``{"code":N,"message":"..."}``
  (a refused POST's body is never read: its connection is closed after the answer);
* a WebSocket request (a handshake on ``transport=websocket``, an upgrade) goes on to the
  WebSocket handler (``eio_server.EngineHandler``), with what the checks found;
* a polling GET is answered from the session (at once, or when a packet is due); a POST's body
  is collected and fed to the session; an ``OPTIONS`` preflight gets the CORS headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import tornado.iostream
import tornado.routing
import tornado.web
from tornado.escape import parse_qs_bytes
from tornado.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerConnectionDelegate,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
    responses,
)

from sio_teach.eio.requests import BAD_REQUEST, FORBIDDEN, Request, Verdict, check_request, refusal
from sio_teach.errors import DisconnectReason, ProtocolError
from sio_teach.tasks import spawn
from sio_teach.transports import compression
from sio_teach.transports.engine_events import RequestRefused

if TYPE_CHECKING:
    from sio_teach.eio.packet import Packet as EioPacket
    from sio_teach.transports.eio_server import EngineServer, EngineSocket

PACKETS_PER_SLICE = 2000  # a POST body is delivered in slices of this many packets


async def check(
    engine: EngineServer, request: HTTPServerRequest
) -> tuple[Verdict, EngineSocket | None]:
    """The rules for one request, when its headers have arrived: its verdict and the session it
    belongs to, or a :class:`ProtocolError` with the spec's code and status. A refusal is
    reported to ``connection_error`` listeners, and one that breaks a session's rule (a second
    GET…) ends that session."""
    headers = request.headers
    checked = Request(
        request.method or "",
        request.query_arguments,
        headers.get("Upgrade", ""),
        headers.get("Content-Type", ""),
        headers.get("Content-Length", ""),
    )
    if checked.method == "GET":  # (a POST may carry the awaited pong: it is read first)
        attached = engine.sessions.get(checked.arg("sid") or "")
        if attached is not None:
            attached.catch_up(engine.now())
    try:
        verdict, socket = check_request(
            checked,
            engine.sessions,  # type: ignore[arg-type]
            transports=engine.transports,
            max_payload=engine.config.max_payload,
        )
        if verdict is Verdict.HANDSHAKE and engine.allow_request is not None:
            allowed = engine.allow_request(request)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                raise refusal(FORBIDDEN, status=403)
        if engine.block_websocket and checked.arg("transport") == "websocket":
            raise refusal(BAD_REQUEST, "WebSocket blocked (fault injection)")
    except ProtocolError as error:
        engine.emit("connection_error", RequestRefused.of(request, error))
        attached = engine.sessions.get(checked.arg("sid") or "")
        if error.close_session and attached is not None:
            attached.session.fail(DisconnectReason.TRANSPORT_ERROR, engine.now())
            attached.after()
        raise
    return verdict, socket  # type: ignore[return-value]


def cors_headers(engine: EngineServer, origin: str | None) -> list[tuple[str, str]]:
    """The CORS headers of an answer to a request from ``origin`` (none if it is not allowed)."""
    origins = engine.cors_origins
    if origins == "*":
        found = [("Access-Control-Allow-Origin", "*")]  # browsers refuse it with credentials
    elif origins and origin in origins:
        found = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]  # type: ignore[list-item]
    else:
        return []
    if engine.cors_credentials:
        found.append(("Access-Control-Allow-Credentials", "true"))
    return found


def refusal_body(error: ProtocolError) -> bytes:
    """``{"code":N,"message":"..."}``, the body of every refusal."""
    code = BAD_REQUEST[0] if error.code is None else error.code
    return json.dumps({"code": code, "message": error.message}, separators=(",", ":")).encode()


class EngineRouter(tornado.routing.Router):
    """What :meth:`EngineServer.routes` mounts: an :class:`EngineRequest` for every request.

    ``websocket_handler`` (with ``handler_kwargs``) serves the WebSocket requests, and
    ``request_class`` the others; the lab passes subclasses of both to inject faults."""

    def __init__(
        self,
        engine: EngineServer,
        paths: tuple[str, ...],
        websocket_handler: type[tornado.web.RequestHandler],
        request_class: type[EngineRequest] | None = None,
        **handler_kwargs: Any,
    ) -> None:
        self.engine = engine
        self.paths = paths  # the paths it serves (for EngineFirst)
        self.request_class = request_class or EngineRequest
        self.websocket_handler = websocket_handler
        self.handler_kwargs = {"engine": engine, **handler_kwargs}
        # the WebSocket handler runs in an application of its own (no settings of the host's)
        self.websocket_app = tornado.web.Application()

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> HTTPMessageDelegate:
        return self.request_class(self, request)


class EngineFirst(HTTPServerConnectionDelegate):
    """An application whose Engine.IO paths are found first, in a dict: what ``http.HTTPServer``
    serves. Tornado's ``Application`` tries its rules one by one (a regular expression and a few
    calls each), and its request deep-copies the parsed query; a long-poll makes two requests per
    message, so the Engine.IO path is served without either."""

    def __init__(self, app: tornado.web.Application) -> None:
        self.app = app
        self.engines = {  # path -> its EngineRouter, from what EngineServer.routes() mounted
            path: rule.target
            for rule in app.wildcard_router.rules
            if isinstance(rule.target, EngineRouter)
            for path in rule.target.paths
        }

    def start_request(
        self, server_conn: object, request_conn: HTTPConnection
    ) -> EngineFirstRequest:
        return EngineFirstRequest(self, server_conn, request_conn)


class EngineFirstRequest(HTTPMessageDelegate):
    """One request given to :class:`EngineFirst`: to an :class:`EngineRequest` if its path is an
    Engine.IO one, to the application otherwise (``tornado.routing``'s delegate does the same)."""

    def __init__(self, front: EngineFirst, server_conn: object, connection: HTTPConnection) -> None:
        self.front, self.server_conn, self.connection = front, server_conn, connection
        self.delegate: HTTPMessageDelegate | None = None

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, RequestStartLine)
        path, _, query = start_line.path.partition("?")
        engine = self.front.engines.get(path)
        if engine is None:
            self.delegate = self.front.app.start_request(self.server_conn, self.connection)
        else:  # Tornado's request, made without a query (which it would parse, then copy)
            bare = RequestStartLine(start_line.method, path, start_line.version)
            request = HTTPServerRequest(
                connection=self.connection,
                start_line=bare,
                headers=headers,
                server_connection=self.server_conn,
            )
            request.uri, request.query = start_line.path, query
            request.arguments = request.query_arguments = parse_qs_bytes(query, True)
            self.delegate = engine.find_handler(request)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self.delegate is not None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        assert self.delegate is not None
        self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()


class EngineRequest(HTTPMessageDelegate):
    """One HTTP request on the Engine.IO path, from its headers to its answer."""

    def __init__(self, router: EngineRouter, request: HTTPServerRequest) -> None:
        self.router = router
        self.engine = router.engine
        self.request = request
        self.connection = request.connection
        self.verdict: Verdict | None = None
        self.socket: EngineSocket | None = None
        self.chunks: list[bytes] | None = None  # the body of an accepted POST, as it arrives
        self.websocket: HTTPMessageDelegate | None = None  # the WebSocket handler, if it is one
        self.extra: list[tuple[str, str]] = []  # headers of the answer beside the usual ones
        self.woken = False  # a held GET has been told to answer (wake())

    # -- what Tornado's HTTP server calls ---------------------------------------------------

    async def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> None:
        request, engine = self.request, self.engine
        if request.method == "OPTIONS":
            return
        try:
            self.verdict, self.socket = await check(engine, request)
        except ProtocolError as error:
            sent = self.answer(error.status, refusal_body(error), "application/json")
            if request.method == "POST":  # the body stays unread: the connection goes
                with contextlib.suppress(tornado.iostream.StreamClosedError):
                    await sent  # the answer is out (unless the client left first) …
                self.connection.close()  # type: ignore[attr-defined]
            return
        if self.verdict in (Verdict.UPGRADE, Verdict.IGNORE) or (
            self.verdict is Verdict.HANDSHAKE
            and request.query_arguments["transport"] == [b"websocket"]
        ):
            router = self.router
            kwargs = {**router.handler_kwargs, "verdict": self.verdict, "socket": self.socket}
            self.websocket = router.websocket_app.get_handler_delegate(
                request, router.websocket_handler, kwargs
            )
            self.websocket.headers_received(start_line, headers)
        elif self.verdict is Verdict.PUSH:
            assert self.socket is not None
            self.socket.pushing = True
            self.chunks = []
            self.connection.set_max_body_size(engine.config.max_payload)  # type: ignore[attr-defined]

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.websocket is not None:
            return self.websocket.data_received(chunk)
        if self.chunks is not None:
            self.chunks.append(chunk)  # Tornado stops a chunked body past maxPayload
        return None

    def finish(self) -> None:
        """The whole request has arrived (a refused one never gets here)."""
        if self.websocket is not None:
            self.websocket.finish()
        elif self.request.method == "OPTIONS":
            self.preflight()
        elif self.verdict is Verdict.PUSH:
            self.post()
        elif self.verdict in (Verdict.HANDSHAKE, Verdict.POLL):
            self.poll()

    def on_connection_close(self) -> None:
        """The client went away while its request was being read (a POST cut off mid-body)."""
        if self.websocket is not None:
            self.websocket.on_connection_close()
        elif self.chunks is not None and self.socket is not None:
            self.socket.pushing = False

    # -- answering ----------------------------------------------------------------------------

    def answer(
        self,
        status: int,
        body: bytes,
        content_type: str,
        extra: list[tuple[str, str]] | tuple[()] = (),
    ) -> Awaitable[None]:
        """Write the whole answer; the result is done once it has been written."""
        headers = HTTPHeaders()
        headers["Content-Type"] = content_type
        headers["Content-Length"] = str(len(body))
        for name, value in cors_headers(self.engine, self.request.headers.get("Origin")):
            headers.add(name, value)
        for name, value in extra:
            headers.add(name, value)
        start = ResponseStartLine("HTTP/1.1", status, responses.get(status, "Unknown"))
        written = self.connection.write_headers(start, headers, body)
        self.connection.finish()
        return written

    def preflight(self) -> None:
        """The CORS preflight of a cross-origin POST."""
        allowed = [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "content-type"),
        ]
        self.answer(204, b"", "text/html; charset=UTF-8", allowed)

    def poll(self) -> None:
        """A long-polling GET: the handshake's open packet at once; else what the session has, at
        once or, held, when a packet is due (the socket wakes it: :meth:`wake`)."""
        engine = self.engine
        socket, extra = self.socket, self.extra
        if socket is None:  # a handshake: the open packet is queued, answered at once below
            socket = self.socket = engine.open_session("polling", self.request)
            if engine.cookie:
                cookie = f"{engine.cookie}={socket.sid}; Path=/; HttpOnly; SameSite=Lax"
                extra.append(("Set-Cookie", cookie))
        if engine.tracer.enabled:
            engine.tracer.request(socket.sid, "GET", "opened")
        if socket.session.polling_ready():
            self.respond()
        else:
            socket.get_waiter = self
            self.connection.set_close_callback(self.client_left)  # type: ignore[attr-defined]
            socket.after()  # a packet may be due already

    def wake(self) -> None:
        """The session has a payload for this held GET: answer it at the loop's next iteration,
        so that what the application sends in this one (a reply, a broadcast…) goes with it."""
        if not self.woken:
            self.woken = True
            asyncio.get_running_loop().call_soon(self.respond)

    def respond(self) -> None:
        """Answer the GET with the session's payload (gzip/deflate when large and accepted)."""
        engine, request, socket = self.engine, self.request, self.socket
        assert socket is not None
        if socket.get_waiter is self:
            socket.get_waiter = None
            if self.connection.stream is None or self.connection.stream.closed():  # type: ignore[attr-defined]
                return  # the client left: the packets stay queued for its next GET
        body = socket.session.take_payload()
        if engine.tracer.enabled:
            engine.tracer.record_payload(socket.sid, ">", "GET", body)
        socket.after()
        extra = self.extra
        extra += engine.response_headers(request, initial=self.verdict is Verdict.HANDSHAKE)
        data, options = body.encode(), engine.http_compression
        encoding = compression.http_encoding(
            options, len(data), request.headers.get("Accept-Encoding", "")
        )
        if encoding is not None:
            assert options is not None
            data = compression.compress_body(data, encoding, options)
            extra.append(("Content-Encoding", encoding))
        self.answer(200, data, "text/plain; charset=UTF-8", extra)
        if engine.tracer.enabled:
            engine.tracer.request(socket.sid, "GET", "answered")

    def client_left(self) -> None:
        """The client of a held GET closed its connection: wake the GET, which writes nothing."""
        if self.socket is not None and self.socket.get_waiter is self:
            self.wake()

    def post(self) -> None:
        """A POST's body: its packets, delivered to the session, then ``ok``. A body of many
        small packets goes in slices, with other clients served in between (:meth:`slices`)."""
        engine, socket = self.engine, self.socket
        assert socket is not None and self.chunks is not None
        body = b"".join(self.chunks)
        if engine.tracer.enabled:
            engine.tracer.request(socket.sid, "POST", "opened")
            engine.tracer.record_payload(socket.sid, "<", "POST", body.decode(errors="replace"))
        try:
            packets = socket.session.decode_payload(body, engine.now())
        except ProtocolError as error:
            return self.refuse_post(error)
        if len(packets) > PACKETS_PER_SLICE:
            spawn(self.slices(packets), "a long-polling POST")
        else:
            self.deliver(packets)

    async def slices(self, packets: list[EioPacket]) -> None:
        """Deliver a long body slice by slice, letting the loop serve others in between."""
        for start in range(0, len(packets), PACKETS_PER_SLICE):
            await asyncio.sleep(0)
            end = start + PACKETS_PER_SLICE
            if not self.deliver(packets[start:end], last=end >= len(packets)):
                return

    def deliver(self, packets: list[EioPacket], last: bool = True) -> bool:
        """Feed ``packets`` to the session; on the ``last`` slice, answer ``ok``. False when the
        session refused one (the POST is then answered with the error)."""
        engine, socket = self.engine, self.socket
        assert socket is not None
        now = engine.now()
        try:
            for packet in packets:
                socket.session.receive(packet, now)
        except ProtocolError as error:
            self.refuse_post(error)
            return False
        socket.after()
        if last:
            socket.pushing = False
            extra = engine.response_headers(self.request, initial=False)
            self.answer(200, b"ok", "text/html; charset=UTF-8", extra)
            if engine.tracer.enabled:
                engine.tracer.request(socket.sid, "POST", "answered")
        return True

    def refuse_post(self, error: ProtocolError) -> None:
        """A POST whose packets the session refused: the spec's status and body."""
        assert self.socket is not None
        self.socket.pushing = False
        self.socket.after()
        self.answer(error.status, refusal_body(error), "application/json")
