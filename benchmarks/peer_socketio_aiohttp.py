"""The bench app on python-socketio with ``async_mode="aiohttp"``.

python -m benchmarks.peer_socketio_aiohttp --port 3000 [--ping-interval 25 --ping-timeout 20]
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from benchmarks._peer_app import make_server, parse_args
from sio_teach.examples import stop_on_signals


async def serve(port: int, host: str, ping_interval: float, ping_timeout: float) -> None:
    sio = make_server("aiohttp", ping_interval, ping_timeout)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = stop_on_signals()
    print(f"python-socketio (aiohttp) on http://{host}:{port}/socket.io/", flush=True)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    asyncio.run(serve(args.port, args.host, args.ping_interval, args.ping_timeout))


if __name__ == "__main__":
    main()
