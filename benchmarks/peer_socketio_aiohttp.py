"""The bench app on python-socketio with ``async_mode="aiohttp"``.

python -m benchmarks.peer_socketio_aiohttp --port 3000
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from benchmarks._peer_app import make_server, parse_args


async def serve(port: int, host: str) -> None:
    sio = make_server("aiohttp")
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"python-socketio (aiohttp) on http://{host}:{port}/socket.io/", flush=True)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    asyncio.run(serve(args.port, args.host))


if __name__ == "__main__":
    main()
