"""The bench app on python-socketio with ``async_mode="tornado"``.

python -m benchmarks.peer_socketio_tornado --port 3000
"""

from __future__ import annotations

import asyncio
import logging
import signal

import socketio
import tornado.web

from benchmarks._peer_app import make_server, parse_args


async def serve(port: int, host: str) -> None:
    sio = make_server("tornado")
    app = tornado.web.Application([(r"/socket.io/", socketio.get_tornado_handler(sio))])
    http = app.listen(port, host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"python-socketio (tornado) on http://{host}:{port}/socket.io/", flush=True)
    await stop.wait()
    http.stop()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    logging.getLogger("tornado.access").setLevel(logging.ERROR)
    asyncio.run(serve(args.port, args.host))


if __name__ == "__main__":
    main()
