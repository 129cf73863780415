"""Compression on the wire: gzip/deflate long-polling answers, WebSocket permessage-deflate.

The rules are engine.io's (``httpCompression`` on, ``perMessageDeflate`` off, both with a
threshold of 1024 bytes); the bytes are checked raw (``Content-Encoding`` and size, the RSV1 bit
of a frame), and the official engine.io-client talks to the server with both on.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import zlib

import pytest
import tornado.httpclient

from sio_teach.eio.packet import Packet, PacketType, decode_payload
from sio_teach.transports.compression import (
    Compression,
    choose_encoding,
    compress_body,
    compression_options,
    frame,
    http_encoding,
)
from sio_teach.transports.eio_client import EngineClient
from tests.conftest import ROOT, free_port

BIG = "4" + "".join(f'{{"id":{i},"name":"user-{i}"}},' for i in range(200))  # ~5 KB, compressible


# -- pure: which coding, which frame --------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip, deflate, br", "gzip"),
        ("deflate, gzip", "deflate"),  # equal q: the client's order
        ("deflate;q=0.5, gzip;q=0.8", "gzip"),
        ("gzip;q=0, deflate", "deflate"),
        ("gzip;q=0", None),
        ("br, identity", None),
        ("", None),
        ("*", "gzip"),  # the wildcard: our order
        ("*;q=0.1, deflate;q=0.2", "deflate"),
        ("GZIP", "gzip"),
        ("gzip;q=bad, deflate", "deflate"),
    ],
)
def test_choose_encoding(accept: str, expected: str | None) -> None:
    got = choose_encoding(accept)
    print(f"{accept!r}: got {got!r}, expected {expected!r}")
    assert got == expected


def test_http_encoding_threshold_and_off() -> None:
    on = Compression()
    assert http_encoding(on, 1023, "gzip") is None  # under the threshold: as it is
    assert http_encoding(on, 1024, "gzip") == "gzip"
    assert http_encoding(None, 10_000, "gzip") is None  # compression off
    assert http_encoding(Compression(threshold=10), 10, "deflate") == "deflate"


def test_compression_options() -> None:
    assert compression_options(False) is None and compression_options(None) is None
    assert compression_options(True) == Compression(1024)
    assert compression_options({"threshold": 5}) == Compression(threshold=5)


def test_compress_body_round_trips() -> None:
    body = BIG.encode()
    gz = compress_body(body, "gzip", Compression())
    zl = compress_body(body, "deflate", Compression())
    assert gzip.decompress(gz) == body and zlib.decompress(zl) == body
    assert len(gz) < len(body) / 3 and len(zl) < len(body) / 3
    assert gz == compress_body(body, "gzip", Compression())  # no timestamp: the same bytes


def test_frame_is_compressed_from_the_threshold_on() -> None:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)

    def deflate(data: bytes) -> bytes:
        return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]

    small, large = Packet(PacketType.MESSAGE, "hi"), Packet(PacketType.MESSAGE, BIG[1:])
    assert frame(small, deflate, 1024) is small.server_frame()  # shared, uncompressed
    assert frame(large, None, 1024) is large.server_frame()  # not negotiated
    built = frame(large, deflate, 1024)
    assert built[0] == 0x81 | 0x40  # FIN, RSV1 (compressed), text
    assert built[1] == 126  # a 16-bit length follows
    (length,) = struct.unpack("!H", built[2:4])
    assert length == len(built) - 4 < len(BIG) / 3
    inflater = zlib.decompressobj(-15)
    assert inflater.decompress(built[4:] + b"\x00\x00\xff\xff") == BIG.encode()
    binary = Packet(PacketType.MESSAGE, bytes(2000))
    assert frame(binary, deflate, 1024)[0] == 0x82 | 0x40  # binary, compressed
    # a text of 400 characters of 3 bytes each is 1200 bytes: compressed
    assert frame(Packet(PacketType.MESSAGE, "€" * 400), deflate, 1024)[0] & 0x40


# -- long-polling answers ---------------------------------------------------------------------


async def handshake(http_client: tornado.httpclient.AsyncHTTPClient, app) -> str:  # type: ignore[no-untyped-def]
    response = await http_client.fetch(app.url(transport="polling"))
    return json.loads(response.body[1:])["sid"]


async def poll(http_client, app, sid: str, accept: str | None):  # type: ignore[no-untyped-def]
    headers = {} if accept is None else {"Accept-Encoding": accept}
    return await http_client.fetch(
        app.url(transport="polling", sid=sid), headers=headers, decompress_response=False
    )


async def test_polling_answer_gzipped_when_large_and_asked(eio_echo, http_client) -> None:  # type: ignore[no-untyped-def]
    app = await eio_echo(echo=False)
    sid = await handshake(http_client, app)
    app.sockets[sid].send(BIG[1:])
    response = await poll(http_client, app, sid, "gzip, deflate")
    wire = response.body
    print("Content-Encoding:", response.headers.get("Content-Encoding"), len(wire), "bytes")
    assert response.headers.get("Content-Encoding") == "gzip"
    assert len(wire) < len(BIG) / 3  # what travelled is much smaller than the payload
    assert decode_payload(gzip.decompress(wire)) == [Packet(PacketType.MESSAGE, BIG[1:])]


async def test_polling_answer_deflate_small_and_unasked(eio_echo, http_client) -> None:  # type: ignore[no-untyped-def]
    app = await eio_echo(echo=False)
    sid = await handshake(http_client, app)
    app.sockets[sid].send(BIG[1:])
    response = await poll(http_client, app, sid, "deflate")
    assert response.headers.get("Content-Encoding") == "deflate"
    assert zlib.decompress(response.body).decode() == BIG
    app.sockets[sid].send("small")  # under the threshold: as it is
    response = await poll(http_client, app, sid, "gzip")
    assert "Content-Encoding" not in response.headers and response.body == b"4small"
    app.sockets[sid].send(BIG[1:])  # a client that did not ask
    response = await poll(http_client, app, sid, None)
    assert "Content-Encoding" not in response.headers and response.body.decode() == BIG


async def test_http_compression_off(eio_echo, http_client) -> None:  # type: ignore[no-untyped-def]
    app = await eio_echo(echo=False, http_compression=False)
    sid = await handshake(http_client, app)
    app.sockets[sid].send(BIG[1:])
    response = await poll(http_client, app, sid, "gzip")
    assert "Content-Encoding" not in response.headers and response.body.decode() == BIG


async def test_our_client_asks_for_gzip_and_reads_it(eio_echo) -> None:  # type: ignore[no-untyped-def]
    """EngineClient's HTTP client sends ``Accept-Encoding: gzip`` and inflates the answers."""
    app = await eio_echo()
    asked: list[str] = []
    app.engine.on(
        "headers", lambda headers, request: asked.append(request.headers.get("Accept-Encoding", ""))
    )
    client = EngineClient(app.live.base_url, transports=("polling",))
    got: asyncio.Queue[str | bytes] = asyncio.Queue()
    client.on_message = got.put_nowait
    await client.connect()
    try:
        client.send(BIG[1:])
        client.send(b"\x01" * 3000)
        assert await asyncio.wait_for(got.get(), 5) == BIG[1:]
        assert await asyncio.wait_for(got.get(), 5) == b"\x01" * 3000
    finally:
        await client.close()
    print("Accept-Encoding sent:", set(asked))
    assert asked and all("gzip" in value for value in asked)


# -- WebSocket permessage-deflate ----------------------------------------------------------------


class RawWebSocket:
    """A WebSocket client written by hand, to see the frames' bits: offers permessage-deflate,
    sends uncompressed masked frames, reads frames with their RSV1 bit."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.inflater = zlib.decompressobj(-15)

    @classmethod
    async def connect(cls, port: int, path: str, extensions: str) -> tuple[RawWebSocket, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                + (f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else "")
                + "\r\n"
            ).encode()
        )
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
        assert head.startswith("HTTP/1.1 101"), head
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        assert accept in head
        return cls(reader, writer), head

    def send_text(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        length = bytes([0x80 | n]) if n < 126 else struct.pack("!BH", 0x80 | 126, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.writer.write(bytes([0x81]) + length + mask + masked)

    async def read(self) -> tuple[bool, int, bytes]:
        """The next frame: (RSV1 set, its payload's length on the wire, the payload inflated)."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 5)
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        payload = await self.reader.readexactly(n)
        compressed = bool(first & 0x40)
        if compressed:
            payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
        return compressed, n, payload

    def close(self) -> None:
        self.writer.close()


async def test_websocket_frames_compressed_from_the_threshold(eio_echo) -> None:  # type: ignore[no-untyped-def]
    app = await eio_echo(per_message_deflate=True)
    ws, head = await RawWebSocket.connect(
        app.port, "/engine.io/?EIO=4&transport=websocket", "permessage-deflate"
    )
    try:
        print(head)
        assert "sec-websocket-extensions: permessage-deflate" in head.lower()
        compressed, _, opened = await ws.read()
        assert not compressed and opened.startswith(b'0{"sid"')  # a small frame: as it is
        ws.send_text("4hi")
        assert await ws.read() == (False, 3, b"4hi")
        for _ in range(2):  # twice: the second is smaller still (the first is its dictionary)
            ws.send_text(BIG)
            compressed, wire, payload = await ws.read()
            print(f"RSV1={compressed}, {wire} bytes on the wire for {len(BIG)}")
            assert compressed and payload == BIG.encode() and wire < len(BIG) / 3
    finally:
        ws.close()


async def test_websocket_not_compressed_unless_offered_and_on(eio_echo) -> None:  # type: ignore[no-untyped-def]
    app = await eio_echo(per_message_deflate=True)
    ws, head = await RawWebSocket.connect(app.port, "/engine.io/?EIO=4&transport=websocket", "")
    try:
        assert "sec-websocket-extensions" not in head.lower()  # the client did not offer it
        await ws.read()
        ws.send_text(BIG)
        assert await ws.read() == (False, len(BIG), BIG.encode())
    finally:
        ws.close()
    off = await eio_echo(per_message_deflate=False)  # the default
    ws, head = await RawWebSocket.connect(
        off.port, "/engine.io/?EIO=4&transport=websocket", "permessage-deflate"
    )
    try:
        assert "sec-websocket-extensions" not in head.lower()  # offered, and declined
    finally:
        ws.close()


async def test_websocket_context_takeover_as_agreed(eio_echo) -> None:  # type: ignore[no-untyped-def]
    """The server keeps its compression context only when the answer says so. Tornado (6.6)
    agrees to permessage-deflate without the offer's valueless parameters, so a client asking for
    ``server_no_context_takeover`` is answered without it: the context is kept, and a client
    reading the answer inflates every message with one window, as below."""
    app = await eio_echo(per_message_deflate=True)
    ws, head = await RawWebSocket.connect(
        app.port,
        "/engine.io/?EIO=4&transport=websocket",
        "permessage-deflate; server_no_context_takeover",
    )
    try:
        print(head)
        assert "permessage-deflate" in head and "server_no_context_takeover" not in head
        await ws.read()
        sizes = []
        for _ in range(2):
            ws.send_text(BIG)
            compressed, wire, payload = await ws.read()
            assert compressed and payload == BIG.encode()
            sizes.append(wire)
        assert sizes[1] < sizes[0]  # the second message used the first as its dictionary
    finally:
        ws.close()


# -- the official client -----------------------------------------------------------------------


async def test_official_client_websocket_per_message_deflate(eio_echo, run_node) -> None:  # type: ignore[no-untyped-def]
    app = await eio_echo(per_message_deflate=True)
    records = await run_node("eio_compression.js", app.live.base_url, "websocket", 20000)
    print(records)
    assert records[0]["event"] == "open" and records[0]["extensions"] == "permessage-deflate"
    echoes = [r for r in records if r["event"] == "echo"]
    assert [(r["kind"], r["same"]) for r in echoes] == [
        ("small", True),
        ("text", True),
        ("binary", True),
    ]
    done = records[-1]
    assert done["event"] == "done"
    # 40 KB of payload went each way: both directions were compressed
    assert done["bytesWritten"] < 10_000 and done["bytesRead"] < 10_000


async def test_official_client_websocket_without_deflate(eio_echo, run_node) -> None:  # type: ignore[no-untyped-def]
    app = await eio_echo()  # per_message_deflate off: the client's offer is declined
    records = await run_node("eio_compression.js", app.live.base_url, "websocket", 20000)
    assert records[0]["extensions"] == ""
    assert all(r["same"] for r in records if r["event"] == "echo")
    assert records[-1]["bytesRead"] > 40_000  # as it is


async def test_official_client_fetch_polling_gzip(eio_echo, run_node) -> None:  # type: ignore[no-untyped-def]
    app = await eio_echo()
    seen: list[tuple[str, str]] = []
    app.engine.on(
        "headers",
        lambda headers, request: seen.append(
            (request.method, request.headers.get("Accept-Encoding", ""))
        ),
    )
    records = await run_node("eio_compression.js", app.live.base_url, "fetch", 20000)
    print(records, seen)
    assert [r["same"] for r in records if r["event"] == "echo"] == [True, True, True]
    assert any(method == "GET" and "gzip" in accept for method, accept in seen)


# -- the conformance app's flag ------------------------------------------------------------------


async def test_conformance_app_per_message_deflate_flag(http_client) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    app = [sys.executable, "-m", "sio_teach.examples.conformance", "--port", str(port)]
    proc = await asyncio.create_subprocess_exec(
        *app, "--per-message-deflate", cwd=ROOT, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:

        async def ready() -> None:
            url = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
            while True:
                assert proc.returncode is None, await proc.stderr.read()  # type: ignore[union-attr]
                try:
                    if (await http_client.fetch(url, raise_error=False)).code == 200:
                        return
                except OSError:  # not listening yet
                    pass
                await asyncio.sleep(0.1)

        await asyncio.wait_for(ready(), 30.0)
        for path in ("/engine.io/", "/socket.io/"):
            ws, head = await RawWebSocket.connect(
                port, f"{path}?EIO=4&transport=websocket", "permessage-deflate"
            )
            try:
                assert "sec-websocket-extensions: permessage-deflate" in head.lower(), path
                if path == "/engine.io/":  # the echo: a large message comes back compressed
                    await ws.read()
                    ws.send_text(BIG)
                    compressed, wire, payload = await ws.read()
                    assert compressed and payload == BIG.encode() and wire < len(BIG) / 3
            finally:
                ws.close()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 5.0)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
