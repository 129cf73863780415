"""What a hostile or slow client may hold of the server: nothing, for long.

Each test is an attack made small (a few dozen connections, limits of a fraction of a second, all
from 127.0.0.1), with a witness that must keep working:

* half-sent POST bodies for an unknown session are refused before a byte of body is read;
* a body that trickles in is cut off by the body timeout, and the session takes POSTs again;
* slowloris (headers one byte at a time) is cut off by the header timeout;
* out of file descriptors, the server refuses new connections instead of spinning and flooding
  its log, and serves again once descriptors are free.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sio_teach.examples.conformance import socketio_server
from sio_teach.transports import polling
from sio_teach.transports.eio_server import EngineServer, EngineSocket
from sio_teach.transports.http import DEFAULT_LIMITS, Limits
from tests.conftest import HOST, free_port
from tests.reliability.conftest import RELAXED_HEARTBEAT, App, RawTcp, Serve, until

pytestmark = pytest.mark.usefixtures("no_errors_logged")

SHORT = Limits(header_timeout=0.5, body_timeout=0.5)


async def serve_app(serve: Serve, limits: Limits = DEFAULT_LIMITS) -> App:
    sio = socketio_server(**RELAXED_HEARTBEAT)
    live = await serve(sio.routes("/socket.io/"), engines=[sio.engine], limits=limits)
    return App(live, sio)


async def handshake(port: int, path: str = "/socket.io/") -> str:
    """Open a polling session with a raw request; return its sid."""
    tcp = await RawTcp.open(port)
    await tcp.send(f"GET {path}?EIO=4&transport=polling HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    _, headers = await tcp.read_head()
    body = await asyncio.wait_for(tcp.reader.readexactly(int(headers["content-length"])), 5)
    tcp.close()
    return json.loads(body[1:])["sid"]


def post_head(sid: str, length: int) -> bytes:
    return (
        f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {HOST}\r\n"
        f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def closed_by_server(tcp: RawTcp, timeout: float) -> bool:
    """True when the server closes the connection within ``timeout`` (whatever it sends first)."""
    try:
        async with asyncio.timeout(timeout):
            while await tcp.reader.read(65536):
                pass
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def test_posts_for_an_unknown_session_are_refused_before_their_body(serve: Serve) -> None:
    """40 POSTs announce a megabyte each for ``sid=doesnotexist`` and send a kilobyte: each gets
    400 "Session ID unknown" at once and its connection closed (nothing of the body is buffered);
    before, each waited for its body and held up to maxPayload in memory."""
    app = await serve_app(serve)
    attackers = [await RawTcp.open(app.port) for _ in range(40)]
    for tcp in attackers:
        await tcp.send(post_head("doesnotexist", 1_000_000) + b"4" + b"x" * 1023)
    for tcp in attackers:
        status, headers = await tcp.read_head(timeout=5)
        body = await tcp.reader.readexactly(int(headers["content-length"]))
        assert (status, json.loads(body)) == (400, {"code": 1, "message": "Session ID unknown"})
        assert await closed_by_server(tcp, timeout=5)
    assert await handshake(app.port)  # still serving


async def test_oversized_post_is_refused_before_its_body_and_the_session_lives_on(
    serve: Serve,
) -> None:
    app = await serve_app(serve)
    sid = await handshake(app.port)
    tcp = await RawTcp.open(app.port)
    await tcp.send(post_head(sid, 1_000_001) + b"4")
    status, _ = await tcp.read_head(timeout=5)
    assert status == 413
    assert await closed_by_server(tcp, timeout=5)
    ok = await RawTcp.open(app.port)
    await ok.send(post_head(sid, 2) + b"40")  # a CONNECT on the same session
    assert (await ok.read_head())[0] == 200


async def test_a_trickling_body_is_cut_off_and_the_session_takes_posts_again(
    serve: Serve,
) -> None:
    app = await serve_app(serve, SHORT)
    sid = await handshake(app.port)
    slow = await RawTcp.open(app.port)
    await slow.send(post_head(sid, 1000) + b"40")  # 998 bytes never come
    await until(lambda: app.sessions[sid].pushing, what="the POST to be accepted")
    assert await closed_by_server(slow, timeout=5)  # the body timeout (0.5 s)
    await until(lambda: not app.sessions[sid].pushing, what="the POST to be forgotten")
    ok = await RawTcp.open(app.port)
    await ok.send(post_head(sid, 2) + b"40")
    assert (await ok.read_head())[0] == 200


async def test_a_second_post_at_once_is_refused_and_ends_the_session(serve: Serve) -> None:
    """One POST at a time (engine.io: "data request overlap from client"): 400, session closed."""
    app = await serve_app(serve)
    sid = await handshake(app.port)
    first = await RawTcp.open(app.port)
    await first.send(post_head(sid, 10) + b"40")
    await until(lambda: app.sessions[sid].pushing, what="the first POST to be accepted")
    second = await RawTcp.open(app.port)
    await second.send(post_head(sid, 2) + b"40")
    assert (await second.read_head())[0] == 400
    assert app.sessions.get(sid) is None or app.sessions[sid].session.closed


async def test_slowloris_headers_are_cut_off(serve: Serve) -> None:
    """20 connections send their request line one byte every 0.1 s: the header timeout (0.5 s
    here, 60 s by default) closes every one, and a normal client is served meanwhile."""
    app = await serve_app(serve, SHORT)
    slow = [await RawTcp.open(app.port) for _ in range(20)]
    request = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"

    async def trickle(tcp: RawTcp) -> bool:
        for byte in request:
            try:
                await tcp.send(bytes([byte]), timeout=1)
            except (ConnectionError, TimeoutError):
                return True
            if tcp.reader.at_eof():
                return True
            await asyncio.sleep(0.1)
        return await closed_by_server(tcp, timeout=2)

    results = await asyncio.gather(*(trickle(tcp) for tcp in slow), handshake(app.port))
    assert all(results[:-1]), results
    assert results[-1]  # the witness got its handshake


SERVER = """
import asyncio, resource, sys
soft = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from sio_teach.examples.conformance import main
sys.argv = ["conformance", "--port", sys.argv[1]]
main()
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
async def test_out_of_descriptors_the_server_refuses_quietly_and_recovers(
    tmp_path: Path,
) -> None:
    """The conformance app with 256 file descriptors and 300 idle connections: new connections
    are closed at once, the server does not spin (well under half a core) and logs a line, not
    a flood; once the connections go, it serves again."""
    limit = 256
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > limit + 400  # room on our side
    port = free_port()
    log = (tmp_path / "server.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(limit)], stdout=log, stderr=subprocess.STDOUT
    )
    idle: list[RawTcp] = []
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    assert await handshake(port)
                    break
                except (ConnectionError, OSError):
                    await asyncio.sleep(0.1)
        for _ in range(300):
            try:
                idle.append(await RawTcp.open(port, timeout=2))
            except (ConnectionError, OSError, TimeoutError):
                break
        await asyncio.sleep(0.5)  # the server works through its accept queue
        before, start = cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(2.0)
        share = (cpu_seconds(server.pid) - before) / (time.monotonic() - start)
        assert share < 0.5, f"the server used {share:.0%} of a core while out of descriptors"
        assert server.poll() is None, "the server died"
        for tcp in idle:
            tcp.close()
        idle.clear()
        async with asyncio.timeout(20):
            while True:
                try:
                    assert await handshake(port)
                    break
                except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError):
                    await asyncio.sleep(0.2)
    finally:
        for tcp in idle:
            tcp.close()
        server.terminate()
        server.wait(10)
    log.seek(0)
    text = log.read()
    assert len(text) < 10_000, f"{len(text)} bytes of log:\n{text[:2000]}"
    assert "file descriptors nearly out" in text or "pausing new connections" in text, text


async def test_a_websocket_client_that_does_not_read_is_closed_past_max_buffer(
    eio_echo: Any,
) -> None:
    """A client that never reads its WebSocket: the server's write buffer grows to max_buffer
    (1 MB here), the session is closed with ``transport error``; before that, the session stops
    being ``writable`` (a volatile packet would be dropped)."""
    app = await eio_echo(echo=False, max_buffer=1_000_000)
    tcp = await RawTcp.open(app.port)
    await tcp.send(
        f"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {HOST}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode()
    )
    assert (await tcp.read_head())[0] == 101
    sid = await until(lambda: next(iter(app.sockets), None), what="the session")
    socket = app.sockets[sid]
    seen_unwritable = False
    for _ in range(400):  # at most 40 MB offered, 100 KiB at a time; nothing is read
        if socket.session.closed:
            break
        seen_unwritable = seen_unwritable or not socket.writable
        socket.send("x" * 102_400)
        await asyncio.sleep(0)
    assert socket.session.closed, "40 MB offered to a client that does not read, still open"
    assert await app.wait_closed(sid) == "transport error"
    assert seen_unwritable
    tcp.close()


async def test_a_post_of_many_packets_is_delivered_whole_and_in_order(eio_echo: Any) -> None:
    """More packets than one slice (2,000): every message arrives once, in order."""
    app = await eio_echo(echo=False)
    sid = await handshake(app.port, "/engine.io/")
    body = "\x1e".join(["6"] * 4_999 + [f"4m{i}" for i in range(3_001)])
    tcp = await RawTcp.open(app.port)
    head = post_head(sid, len(body)).replace(b"/socket.io/", b"/engine.io/")
    await tcp.send(head + body.encode())
    assert (await tcp.read_head())[0] == 200
    assert app.received[sid] == [f"m{i}" for i in range(3_001)]


async def test_a_post_of_many_packets_lets_other_work_run_between_slices(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body of many packets (a megabyte of noops, say) is delivered in slices with the event
    loop free in between, so other clients are not stalled until the last packet: here a callback
    scheduled by the first message runs before the last slice (slices of 10 packets)."""
    monkeypatch.setattr(polling, "PACKETS_PER_SLICE", 10)
    seen: list[str | bytes] = []

    def on_connect(sock: EngineSocket) -> None:
        def on_message(data: str | bytes) -> None:
            seen.append(data)
            if data == "m0":
                asyncio.get_running_loop().call_soon(seen.append, "other work")

        sock.on_message = on_message

    engine = EngineServer(on_connect)
    live = await serve(engine.routes("/engine.io/"), engines=[engine])
    sid = await handshake(live.port, "/engine.io/")
    body = "\x1e".join(f"4m{i}" for i in range(100))
    tcp = await RawTcp.open(live.port)
    await tcp.send(
        post_head(sid, len(body)).replace(b"/socket.io/", b"/engine.io/") + body.encode()
    )
    assert (await tcp.read_head())[0] == 200
    assert [data for data in seen if data != "other work"] == [f"m{i}" for i in range(100)]
    assert seen.index("other work") <= 10  # right after the first slice, not after the last


async def test_volatile_packets_are_dropped_while_a_websocket_cannot_write(serve: Serve) -> None:
    """A Socket.IO client that never reads; the server offers it 40 MB of ``volatile`` events:
    once its WebSocket has unwritten bytes they are dropped (as in the official server), so the
    session is neither closed for its backlog nor made to hold what was offered."""
    app = await serve_app(serve)
    tcp = await RawTcp.open(app.port)
    await tcp.send(
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {HOST}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode()
    )
    assert (await tcp.read_head())[0] == 101
    await tcp.send(b"\x81\x82\x00\x00\x00\x0040")  # a masked text frame (zero mask): CONNECT
    await until(lambda: app.sio.of("/").sockets, what="the socket")
    (socket,) = app.sio.of("/").sockets.values()
    eio = socket.conn.eio
    sent: list[int] = []
    send = eio.send
    eio.send = lambda data: (sent.append(1), send(data))  # type: ignore[method-assign]
    for _ in range(400):  # 40 MB offered, 100 KiB at a time; nothing is read
        app.sio.volatile.emit("big", "x" * 102_400)
        await asyncio.sleep(0)
    assert not eio.session.closed
    assert len(sent) < 100, (
        f"{len(sent)} of 400 volatile packets kept for a client that reads nothing"
    )
    tcp.close()
