"""A floor, not a server: the bench app's long-polling hand-rolled on bare Tornado HTTP.

    python -m benchmarks.peer_tornado_polling --port 3000 [--lean]

It speaks just enough of Engine.IO v4 / Socket.IO v5 over HTTP long-polling (no WebSocket, no
heartbeat, no binary, no checks, namespace ``/`` only) for the load generator's ``polling``
scenario: the handshake, a GET held until a packet is due, a POST answered ``ok``, CONNECT and
``echo`` (ACK). What it costs per ack is roughly what Tornado's HTTP/1.1 server costs for the two
requests an ack takes over long-polling, so a column of it shows how much of a real server's cost
is its own code.

Two ways to use Tornado, as two floors:

* default: a ``tornado.web.RequestHandler`` per request, as most Tornado applications do;
* ``--lean``: an ``HTTPServerConnectionDelegate`` that answers each request from its
  ``HTTPMessageDelegate`` (no handler, no routing, no ``HTTPServerRequest``): the least Tornado
  can do per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs

import tornado.httpserver
import tornado.httputil
import tornado.web

from sio_teach.examples import stop_on_signals

OPEN = '0{"sid":"%s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
SEPARATOR = "\x1e"
dumps = json.JSONEncoder(separators=(",", ":")).encode


class Session:
    """What one client has waiting, and the GET that waits for it."""

    def __init__(self) -> None:
        self.queue: list[str] = []
        self.waiter: asyncio.Future[None] | None = None

    def push(self, packet: str) -> None:
        self.queue.append(packet)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def take(self) -> str:
        if not self.queue:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None
        body, self.queue = SEPARATOR.join(self.queue), []
        return body

    def receive(self, body: str) -> None:
        for packet in body.split(SEPARATOR):
            if packet.startswith("40"):
                self.push('40{"sid":"' + secrets.token_urlsafe(15) + '"}')
            elif packet.startswith("42"):
                bracket = packet.index("[")
                ack_id = packet[2:bracket]
                name, *args = json.loads(packet[bracket:])
                if name == "echo" and ack_id:
                    self.push("43" + ack_id + dumps(args))


SESSIONS: dict[str, Session] = {}


def open_session() -> str:
    sid = secrets.token_urlsafe(15)
    SESSIONS[sid] = Session()
    return OPEN % sid


# -- the usual way: one RequestHandler per request ------------------------------------------------


class PollingHandler(tornado.web.RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("Access-Control-Allow-Origin", "*")

    def compute_etag(self) -> None:
        return None

    async def get(self) -> None:
        sid = self.get_query_argument("sid", None)
        if sid is None:
            self.finish(open_session())
        elif (session := SESSIONS.get(sid)) is not None:
            self.finish(await session.take())
        else:
            self.set_status(400)

    def post(self) -> None:
        session = SESSIONS.get(self.get_query_argument("sid", ""))
        if session is not None:
            session.receive(self.request.body.decode())
            self.finish("ok")
        else:
            self.set_status(400)


# -- the lean way: an HTTPMessageDelegate per request ----------------------------------------------


class LeanRequest(tornado.httputil.HTTPMessageDelegate):
    def __init__(self, connection: tornado.httputil.HTTPConnection) -> None:
        self.connection = connection
        self.method = self.sid = ""
        self.chunks: list[bytes] = []

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, tornado.httputil.RequestStartLine)
        self.method = start_line.method
        query = parse_qs(start_line.path.partition("?")[2])
        self.sid = query.get("sid", [""])[-1]

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def finish(self) -> None:
        session = SESSIONS.get(self.sid)
        if self.method == "GET" and not self.sid:
            self.answer(open_session())
        elif session is None:
            self.answer("", 400)
        elif self.method == "POST":
            session.receive(b"".join(self.chunks).decode())
            self.answer("ok")
        else:
            asyncio.ensure_future(self.poll(session))

    async def poll(self, session: Session) -> None:
        self.answer(await session.take())

    def answer(self, text: str, status: int = 200) -> None:
        body = text.encode()
        headers = tornado.httputil.HTTPHeaders(
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "Content-Length": str(len(body)),
                "Access-Control-Allow-Origin": "*",
            }
        )
        start = tornado.httputil.ResponseStartLine("HTTP/1.1", status, "OK")
        self.connection.write_headers(start, headers, body)
        self.connection.finish()


class LeanServer(tornado.httputil.HTTPServerConnectionDelegate):
    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> LeanRequest:
        return LeanRequest(request_conn)


async def serve(port: int, host: str, lean: bool) -> None:
    if lean:
        http = tornado.httpserver.HTTPServer(LeanServer())
        http.listen(port, host)
    else:
        app = tornado.web.Application([(r"/socket.io/", PollingHandler)])
        http = app.listen(port, host)
    stop = stop_on_signals()
    print(f"bare tornado polling{' (lean)' if lean else ''} on http://{host}:{port}/", flush=True)
    await stop.wait()
    http.stop()


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--lean", action="store_true", help="HTTPMessageDelegate, no handler")
    args = parser.parse_args()
    logging.getLogger("tornado.access").setLevel(logging.ERROR)
    asyncio.run(serve(args.port, args.host, args.lean))


if __name__ == "__main__":
    main()
