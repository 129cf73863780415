"""The conformance app: what the official protocol test-suites and our interop tests talk to.

    python -m sio_teach.examples.conformance --port 3000

* ``/engine.io/`` — a raw Engine.IO echo: every message comes back as it came (text or binary).
* ``/socket.io/`` — the Socket.IO app of the conformance document (namespaces ``/`` and
  ``/custom``; events ``message``, ``message-with-ack``, ``join``, ``leave``, ``to-room``,
  ``broadcast``, ``call-me-back``, ``disconnect-me``).

Engine.IO settings: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000 bytes, CORS ``*``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import tornado.web

from sio_teach.transports.eio_server import EngineServer, EngineSocket

SETTINGS = dict(ping_interval=0.3, ping_timeout=0.2, max_payload=1_000_000, cors_origins="*")


def echo(socket: EngineSocket) -> None:
    """Raw Engine.IO: send every message straight back."""
    socket.on_message = socket.send


def make_app() -> tuple[tornado.web.Application, list[EngineServer]]:
    """The Tornado application and the Engine.IO servers it mounts (to close them on exit)."""
    engine = EngineServer(echo, **SETTINGS)  # type: ignore[arg-type]
    routes = engine.routes("/engine.io/")
    servers = [engine]
    try:
        from sio_teach.examples.conformance_sio import socketio_server
    except ImportError:  # the Socket.IO layer is optional for the raw Engine.IO checks
        pass
    else:
        sio = socketio_server(SETTINGS)
        routes += sio.routes("/socket.io/")
        servers.append(sio.engine)
    return tornado.web.Application(routes), servers


async def serve(port: int, host: str = "127.0.0.1") -> None:
    app, servers = make_app()
    http = app.listen(port, host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
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
    args = parser.parse_args()
    logging.getLogger("tornado.access").setLevel(logging.ERROR)
    asyncio.run(serve(args.port, args.host))


if __name__ == "__main__":
    main()
