"""A small Socket.IO server for load tests and benchmarks.

    python -m sio_teach.examples.bench_server --port 3000 [--adapter redis://127.0.0.1:6379]
    python -m sio_teach.examples.bench_server --port 3000 --adapter redis://… --kind streams

On the main namespace ``/``:

* every socket is in room ``r`` from the start: a middleware joins it, so it is a member *before*
  the CONNECT reply leaves (a broadcast sent right after a client connects already reaches it);
* ``echo`` (``...args``) → acknowledges with the same args (nothing when no ack was asked for);
* ``bcast`` (``...args``) → emits ``msg`` with the same args to room ``r``, the sender included;
* ``ping`` (``...args``) → emits ``pong`` with the same args to the sender.

With ``--adapter redis://HOST:PORT`` the node joins a cluster on that Redis (the default is the
in-memory adapter: one node); the "listening" line is printed once it is subscribed.
``--kind`` picks the Redis adapter as ``python -m sio_teach cluster`` does: ``pubsub`` (the
default), ``sharded`` (Redis 7+) or ``streams``.
``--per-message-deflate`` offers WebSocket permessage-deflate (``benchmarks/compression.py``).
It exits cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

import tornado.web

from sio_teach.cluster import ADAPTERS
from sio_teach.examples import run, stop_on_signals
from sio_teach.server import Server, Socket
from sio_teach.transports.http import listen

ROOM = "r"


def make_server(adapter: str | None = None, kind: str = "pubsub", **options: Any) -> Server:
    """The benchmark app (Engine.IO options such as ``ping_interval`` are passed through);
    ``adapter`` is a ``redis://`` URL, or None for the in-memory adapter; ``kind`` the Redis
    adapter (``pubsub``, ``sharded``, ``streams``)."""
    if adapter:
        from sio_teach.cluster import adapter_factory  # needs the `redis` extra

        options["adapter"] = adapter_factory(kind, adapter)
    sio = Server(**{"cors_origins": "*", **options})

    def join_room(socket: Socket) -> None:
        # Middlewares run before the CONNECT reply is sent; the connect handler runs after it.
        socket.join(ROOM)

    sio.use(join_room)

    @sio.on("echo")
    def echo(socket: Socket, *args: Any) -> tuple:
        return args  # the ACK carries the same args (sent only when the client asked for one)

    @sio.on("bcast")
    def bcast(socket: Socket, *args: Any) -> None:
        sio.to(ROOM).emit("msg", *args)  # encoded once, the sender included

    @sio.on("ping")
    def ping(socket: Socket, *args: Any) -> None:
        socket.emit("pong", *args)

    return sio


async def serve(port: int, host: str = "127.0.0.1", **options: Any) -> None:
    """Serve until SIGTERM / SIGINT, then close every session and stop listening."""
    sio = make_server(**options)
    if options.get("adapter"):
        await sio.of("/").adapter.wait_ready()  # type: ignore[attr-defined]
    http = listen(tornado.web.Application(sio.routes("/socket.io/")), port, host)
    stop = stop_on_signals()
    print(f"bench server on http://{host}:{port}/socket.io/", flush=True)
    await stop.wait()
    http.stop()
    sio.close()
    await asyncio.sleep(0.05)  # let the close packets leave


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ping-interval", type=float, default=25.0, help="seconds")
    parser.add_argument("--ping-timeout", type=float, default=20.0, help="seconds")
    parser.add_argument("--max-payload", type=int, default=1_000_000, help="bytes")
    parser.add_argument("--adapter", help="redis://HOST:PORT (default: in-memory, one node)")
    parser.add_argument("--kind", default="pubsub", choices=ADAPTERS, help="the Redis adapter")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    parser.add_argument("--per-message-deflate", action="store_true", help="WebSocket compression")
    args = parser.parse_args()
    logging.getLogger("tornado.access").setLevel(logging.ERROR)
    run(
        serve(
            args.port,
            args.host,
            ping_interval=args.ping_interval,
            ping_timeout=args.ping_timeout,
            max_payload=args.max_payload,
            adapter=args.adapter,
            kind=args.kind,
            per_message_deflate=args.per_message_deflate,
        ),
        uvloop=args.uvloop,
    )


if __name__ == "__main__":
    main()
