"""The bench app of ``sio_teach.examples.bench_server``, written with python-socketio.

Shared by ``peer_socketio_tornado`` and ``peer_socketio_aiohttp``, which differ only in the web
framework under the same :class:`socketio.AsyncServer`.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio

ROOM = "r"


def make_server(
    async_mode: str, ping_interval: float = 25.0, ping_timeout: float = 20.0
) -> socketio.AsyncServer:
    """``echo`` → ack with the same args; ``bcast`` → ``msg`` to room ``r``; ``ping`` → ``pong``.
    ``ping_interval`` and ``ping_timeout`` in seconds (the defaults of every server here)."""
    sio = socketio.AsyncServer(
        async_mode=async_mode,
        cors_allowed_origins="*",
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )

    @sio.event
    async def connect(sid: str, environ: dict, auth: Any = None) -> None:
        # python-socketio sends the CONNECT reply after this handler returns: the socket is in
        # the room before the client hears it is connected.
        await sio.enter_room(sid, ROOM)

    @sio.event
    async def echo(sid: str, *args: Any) -> tuple:
        return args  # a tuple is the list of ACK arguments

    @sio.event
    async def bcast(sid: str, *args: Any) -> None:
        await sio.emit("msg", args, room=ROOM)  # a tuple is the list of event arguments

    @sio.event
    async def ping(sid: str, *args: Any) -> None:
        await sio.emit("pong", args, to=sid)

    return sio


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ping-interval", type=float, default=25.0, help="seconds")
    parser.add_argument("--ping-timeout", type=float, default=20.0, help="seconds")
    return parser.parse_args()
