"""The conformance app: what the official protocol test-suites and our interop tests talk to.

    python -m sio_teach.examples.conformance --port 3000 [--adapter redis://127.0.0.1:6379]

* ``/engine.io/`` — a raw Engine.IO echo: every message comes back as it came (text or binary).
* ``/socket.io/`` — the Socket.IO app of the conformance document (namespaces ``/`` and
  ``/custom``; events ``message``, ``message-with-ack``, ``join``, ``leave``, ``to-room``,
  ``broadcast``, ``call-me-back``, ``disconnect-me``).

Engine.IO settings: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000 bytes, CORS ``*``.
With ``--adapter redis://HOST:PORT`` the Socket.IO app joins a cluster on that Redis (Pub/Sub);
``--adapter redis-sharded://HOST:PORT``: sharded Pub/Sub (``createShardedAdapter``, Redis 7+);
``--adapter redis-streams://HOST:PORT``: through a Redis stream (``adapters/redis_streams.py``).
``--recovery``: connection state recovery on (2 minutes).
With ``--per-message-deflate`` both endpoints offer WebSocket permessage-deflate (threshold 1024
bytes).
With ``--parser msgpack`` every namespace speaks the msgpack parser (npm
``socket.io-msgpack-parser``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

import tornado.web

from sio_teach.cluster import adapter_factory
from sio_teach.examples import run, stop_on_signals
from sio_teach.server import Server, Socket
from sio_teach.transports.eio_server import EngineServer, EngineSocket
from sio_teach.transports.http import listen

SETTINGS = dict(ping_interval=0.3, ping_timeout=0.2, max_payload=1_000_000, cors_origins="*")


def echo(socket: EngineSocket) -> None:
    """Raw Engine.IO: send every message straight back."""
    socket.on_message = socket.send


def register(nsp_server: Server, namespace: str) -> None:
    """The handlers of the conformance document, section 2.2, on one namespace."""
    nsp = nsp_server.of(namespace)

    @nsp.on("connect")
    def on_connect(socket: Socket, auth: dict) -> None:
        socket.emit("auth", auth)  # after the CONNECT reply, as the document asks

    @nsp.on("message")
    def message(socket: Socket, *args: object) -> None:
        socket.emit("message-back", *args)

    @nsp.on("message-with-ack")
    def message_with_ack(socket: Socket, *args: object) -> tuple:
        return args  # the ACK carries the same args (BINARY_ACK when one is bytes)

    # Arguments are taken as a JavaScript handler takes them: a missing one is undefined (nothing
    # to do), a room that is not a string is made one, extra arguments are ignored.
    @nsp.on("join")
    def join(socket: Socket, room: object = None, *_: object) -> object:
        if room is not None:
            socket.join(str(room))
        return () if room is None else room

    @nsp.on("leave")
    def leave(socket: Socket, room: object = None, *_: object) -> object:
        if room is not None:
            socket.leave(str(room))
        return () if room is None else room

    @nsp.on("to-room")
    def to_room(socket: Socket, room: object = None, *args: object) -> tuple:
        if room is not None:
            socket.to(str(room)).emit("room-message", *args)
        return ()

    @nsp.on("broadcast")
    def broadcast(socket: Socket, *args: object) -> tuple:
        socket.broadcast.emit("broadcast-message", *args)
        return ()

    @nsp.on("call-me-back")
    def call_me_back(socket: Socket, *args: object) -> None:
        socket.emit("callback", *args, callback=lambda *v: socket.emit("callback-ack", *v))

    @nsp.on("disconnect-me")
    def disconnect_me(socket: Socket, *_: object) -> None:
        socket.disconnect()


def socketio_server(**options: object) -> Server:
    """The Socket.IO app of the conformance document (namespaces ``/`` and ``/custom``)."""
    sio = Server(connect_timeout=1.0, **{**SETTINGS, **options})  # type: ignore[arg-type]
    for namespace in ("/", "/custom"):
        register(sio, namespace)
    seen: set[str] = set()  # the first arguments of "flaky" seen so far

    @sio.on("flaky")
    def flaky(socket: Socket, *args: object) -> tuple | None:
        """For clients with ``retries``: the first arrival of each distinct first argument gets
        no ACK (as if lost); every later one is acknowledged with the same arguments. The
        application de-duplicates by that argument: a retrying client may deliver twice."""
        key = json.dumps(args[0] if args else None, sort_keys=True, default=repr)
        if key not in seen:
            if len(seen) >= 10_000:  # a bound, for a test app facing anyone
                seen.clear()
            seen.add(key)
            return None
        return args

    return sio


# --adapter URL scheme -> the adapter (``cluster.adapter_factory``; each needs the `redis` extra)
ADAPTER_SCHEMES = {"redis": "pubsub", "redis-sharded": "sharded", "redis-streams": "streams"}


def make_app(
    adapter: str | None = None,
    recovery: bool = False,
    per_message_deflate: bool = False,
    parser: str = "json",
    admin: bool = False,
) -> tuple[tornado.web.Application, list[EngineServer]]:
    """The Tornado application and the Engine.IO servers it mounts (to close them on exit);
    ``adapter`` is a ``redis://``, ``redis-sharded://`` or ``redis-streams://`` URL, or None for
    the in-memory adapter; ``parser`` is ``"json"`` or ``"msgpack"``; ``admin`` instruments the
    server for the Admin UI (``/admin``, user ``admin``, password ``changeit``)."""
    engine = EngineServer(echo, **SETTINGS, per_message_deflate=per_message_deflate)  # type: ignore[arg-type]
    options: dict[str, object] = {
        "connection_state_recovery": recovery,
        "per_message_deflate": per_message_deflate,
        "parser": parser,
    }
    if adapter:  # one node of a cluster: it subscribes in the background, once the loop runs
        scheme, _, address = adapter.partition("://")
        if scheme not in ADAPTER_SCHEMES:
            raise ValueError(f"--adapter {adapter!r}: one of {', '.join(ADAPTER_SCHEMES)}://…")
        options["adapter"] = adapter_factory(ADAPTER_SCHEMES[scheme], "redis://" + address)
    sio = socketio_server(**options)
    if admin:  # needs the `admin` extra (bcrypt)
        from sio_teach.admin import hash_password

        auth = {"username": "admin", "password": hash_password("changeit")}
        sio.instrument(auth=auth, mode="development")
    routes = engine.routes("/engine.io/") + sio.routes("/socket.io/")
    return tornado.web.Application(routes), [engine, sio.engine]


async def serve(
    port: int,
    host: str = "127.0.0.1",
    adapter: str | None = None,
    recovery: bool = False,
    deflate: bool = False,
    parser: str = "json",
    admin: bool = False,
) -> None:
    app, servers = make_app(adapter, recovery, deflate, parser, admin)
    http = listen(app, port, host)
    stop = stop_on_signals()
    print(f"conformance app on http://{host}:{port}/", flush=True)
    await stop.wait()
    http.stop()
    for server in servers:
        server.close_all()
    await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--adapter",
        help="redis://, redis-sharded:// or redis-streams://HOST:PORT (default: in-memory)",
    )
    parser.add_argument("--recovery", action="store_true", help="connection state recovery on")
    parser.add_argument(
        "--per-message-deflate", action="store_true", help="offer WebSocket permessage-deflate"
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    parser.add_argument(
        "--parser", choices=["json", "msgpack"], default="json", help="the Socket.IO parser"
    )
    parser.add_argument(
        "--admin", action="store_true", help="the Admin UI's /admin (admin / changeit)"
    )
    args = parser.parse_args()
    logging.getLogger("tornado.access").setLevel(logging.ERROR)
    options = (args.adapter, args.recovery, args.per_message_deflate, args.parser, args.admin)
    run(serve(args.port, args.host, *options), uvloop=args.uvloop)


if __name__ == "__main__":
    main()
