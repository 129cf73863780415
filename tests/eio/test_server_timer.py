"""The server's one timer for all its sessions (``Deadlines`` in ``transports/eio_server.py``).

The heartbeat's rules are the pure session's (``tests/eio/test_server_session.py`` drives them with
a fake clock); these check what the shell adds: a pong that has reached the server when its
deadline comes is read before the deadline is judged, and a client cannot make the timer's heap
grow by ponging.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.conftest import EchoApp


async def recv(ws: Any, timeout: float = 5.0) -> str | bytes | None:
    return await asyncio.wait_for(ws.read_message(), timeout)


async def open_ws(ws_connect: Any, app: EchoApp) -> tuple[Any, str]:
    ws = await ws_connect(app.ws_url())
    sid = json.loads((await recv(ws))[1:])["sid"]
    return ws, sid


async def test_a_pong_waiting_to_be_read_beats_its_deadline(ws_connect: Any, eio_echo: Any) -> None:
    app = await eio_echo(ping_interval=0.3, ping_timeout=0.2)
    ws, sid = await open_ws(ws_connect, app)
    assert await recv(ws) == "2"
    # The pong goes to the socket at once (not awaited: the loop must not run before the sleep)
    # and the loop is busy past the pong deadline, as when many clients connect: when it runs
    # again, the pong's read and the deadline are both due.
    written = ws.write_message("3")
    time.sleep(0.35)
    await written
    assert await recv(ws) == "2"  # the pong counted: the session pings again
    assert sid not in app.closed and sid in app.engine.sessions


async def test_a_client_that_never_pongs_is_still_closed(ws_connect: Any, eio_echo: Any) -> None:
    app = await eio_echo(ping_interval=0.3, ping_timeout=0.2)
    ws, sid = await open_ws(ws_connect, app)
    started = time.monotonic()
    assert await recv(ws) == "2"
    assert await recv(ws) == "1"  # the close packet, pingInterval + pingTimeout after the open
    assert 0.45 <= time.monotonic() - started < 2.0
    assert app.closed[sid] == "ping timeout"


async def test_many_sessions_one_timeout_and_pongs_do_not_grow_the_heap(
    ws_connect: Any, eio_echo: Any
) -> None:
    app = await eio_echo(ping_interval=0.3, ping_timeout=0.2)
    clients = [await open_ws(ws_connect, app) for _ in range(20)]
    deadlines = app.engine.deadlines
    assert deadlines.wakeup is not None  # one IOLoop timeout for the 20 sessions
    ws, _ = clients[0]
    for _ in range(500):  # unsolicited pongs: each moves the next ping later
        await ws.write_message("3")

    async def answer_pings(ws: Any) -> None:  # every session pings (and gets its pong) 3 times
        for _ in range(3):
            assert await recv(ws) == "2"
            await ws.write_message("3")

    await asyncio.gather(*(answer_pings(ws) for ws, _ in clients))
    # at most one live entry per session, plus the few superseded ones not yet due
    assert len(deadlines.heap) <= 3 * len(clients), len(deadlines.heap)
    assert not app.closed
