"""The bench app on python-socketio with ``async_mode="tornado"``.

python -m benchmarks.peer_socketio_tornado --port 3000 [--ping-interval 25 --ping-timeout 20]
"""

from __future__ import annotations

import asyncio
import logging

import socketio
import tornado.web

from benchmarks._peer_app import make_server, parse_args
from sio_teach.examples import stop_on_signals


async def serve(port: int, host: str, ping_interval: float, ping_timeout: float) -> None:
    sio = make_server("tornado", ping_interval, ping_timeout)
    app = tornado.web.Application([(r"/socket.io/", socketio.get_tornado_handler(sio))])
    http = app.listen(port, host)
    stop = stop_on_signals()
    print(f"python-socketio (tornado) on http://{host}:{port}/socket.io/", flush=True)
    await stop.wait()
    http.stop()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    logging.getLogger("tornado.access").setLevel(logging.ERROR)
    asyncio.run(serve(args.port, args.host, args.ping_interval, args.ping_timeout))


if __name__ == "__main__":
    main()
