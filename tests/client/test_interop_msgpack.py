"""The msgpack parser against the official packages, both ways, on 127.0.0.1.

* The official npm ``socket.io-client`` with ``socket.io-msgpack-parser`` (``tests/js/sio_client.js
  ... msgpack``) against our conformance app with ``parser="msgpack"``.
* Our :class:`Client` with ``parser="msgpack"`` against the official npm ``socket.io`` server with
  ``socket.io-msgpack-parser`` (``tests/js/sio_server.js --parser=msgpack``).

Each in the three transport modes. A peer on the other parser could not even connect (the
msgpack decoder refuses text, the JSON decoder a lone binary message); the tracer shows, on top,
that every Socket.IO packet travelled as one msgpack message.

A missing ``node`` or ``node_modules`` fails these tests (never skips): see ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from sio_teach.trace import Tracer
from tests.client.conftest import Events, NodeServer, eventually
from tests.conftest import NODE_MODULES, run_node
from tests.sio.conftest import no_server_errors  # noqa: F401  (the fixture, used below)

pytestmark = pytest.mark.usefixtures("no_server_errors")

# the official client's mode name -> our client's transports
MODES = {"default": ("polling", "websocket"), "websocket": ("websocket",), "polling": ("polling",)}
TIMEOUT = 10.0


def only_msgpack(tracer: Tracer) -> list[str]:
    """The Socket.IO packets the tracer saw, checking that each was one msgpack message."""
    kinds = [r.kind for r in tracer.records if r.layer == "sio"]
    assert kinds, "no Socket.IO packet traced"
    assert all(r.wire.startswith("msgpack {") for r in tracer.records if r.layer == "sio")
    assert not {"BINARY_EVENT", "BINARY_ACK"} & set(kinds)  # bytes travel inside the map
    assert not [r for r in tracer.records if r.layer == "eio" and r.kind in ("binary", "message")]
    return kinds


def first_of_each(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        found.setdefault(record.pop("event"), record)
    return found


def buf(*values: int) -> dict[str, list[int]]:
    """How sio_client.js reports a Buffer."""
    return {"$bytes": list(values)}


def test_the_msgpack_parser_is_installed() -> None:
    manifest = NODE_MODULES / "socket.io-msgpack-parser" / "package.json"
    assert manifest.is_file(), f"{manifest} missing: run `npm ci` in the repository root"
    assert json.loads(manifest.read_text())["version"] == "3.0.2"


# -- the official client, our server --------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
async def test_official_client_emits_acks_binary_and_namespaces(our_sio: Any, mode: str) -> None:
    tracer = Tracer(sio=True)
    live = await our_sio(parser="msgpack", tracer=tracer, ping_timeout=5.0)
    records = await run_node("sio_client.js", live.url, mode, "basic", "msgpack", timeout=30.0)
    got = first_of_each(records)
    assert "error" not in got, got["error"]
    expected = {
        "auth": {"args": [{"token": "abc"}]},
        "ack": {"args": [1, "2", {"3": [True]}]},
        "emitWithAck": {"value": "x"},
        "empty-ack": {"args": []},
        "message-back": {
            "args": [buf(1, 2, 3), {"nested": [buf(4, 5)]}, "text", buf()],
            "isBuffer": True,
        },
        "binary-ack": {"args": [buf(9, 8), "t"], "isBuffer": True},
        "callback": {"args": ["x", 2], "ackIsFunction": True},  # the server asks for an ACK…
        "callback-ack": {"args": ["y", {"z": buf(7)}]},  # …and gets the client's binary answer
        "custom-auth": {"args": [{}]},
        "custom": {"value": "on custom"},
        "custom-disconnect": {"reason": "io server disconnect", "mainConnected": True},
        "after": {"value": "still here"},
    }
    assert {name: got.get(name) for name in expected} == expected
    assert "unknown-event-timeout" in got and "unknown-event-acked" not in got
    assert "done-script" in got
    # what our server received, decoded from msgpack
    assert live.events("message") == [(b"\x01\x02\x03", {"nested": [b"\x04\x05"]}, "text", b"")]
    assert live.events("message-with-ack", "/custom") == [("on custom",)]
    kinds = only_msgpack(tracer)
    assert {"CONNECT", "EVENT", "ACK", "DISCONNECT"} <= set(kinds)


@pytest.mark.parametrize("mode", list(MODES))
async def test_official_clients_rooms_and_broadcast(our_sio: Any, mode: str) -> None:
    tracer = Tracer(sio=True)
    live = await our_sio(parser="msgpack", tracer=tracer, ping_timeout=5.0)
    records = await run_node("sio_client.js", live.url, mode, "rooms", "msgpack", timeout=30.0)
    got = first_of_each(records)
    assert "error" not in got, got["error"]
    nobody: dict[str, list[Any]] = {"a": [], "b": [], "c": [], "d": []}
    # a, b, d joined room-1 (d on /custom); a sends to room-1: b only
    assert got["to-room"]["received"] == {**nobody, "b": [["room-message", "hello", buf(1)]]}
    # b broadcasts on /: a and c (one encoding, two recipients), not b, not d
    hi = [["broadcast-message", "hi", {"n": 1}]]
    assert got["broadcast"]["received"] == {**nobody, "a": hi, "c": hi}
    assert got["after-leave"]["received"] == {**nobody, "b": [["room-message", "again"]]}
    assert got["custom-broadcast"]["received"] == nobody
    only_msgpack(tracer)


# -- our client, the official server --------------------------------------------------------


def b64(data: bytes) -> dict[str, str]:
    """How sio_server.js reports a binary value."""
    return {"$binary": base64.b64encode(data).decode()}


@pytest.mark.parametrize("mode", list(MODES))
async def test_our_client_against_the_official_server(
    node_sio: Any, make_client: Any, mode: str
) -> None:
    server: NodeServer = await node_sio(None, "--parser=msgpack")
    tracer = Tracer("client", sio=True)
    client = make_client(
        server.url, transports=MODES[mode], parser="msgpack", auth={"token": "t"}, tracer=tracer
    )
    Events(client)
    auth: list[Any] = []
    client.on("auth", auth.append)
    await asyncio.wait_for(client.connect(), TIMEOUT)
    assert (await server.wait_for("connection", nsp="/"))["auth"] == {"token": "t"}
    await eventually(lambda: auth, TIMEOUT, "the auth event")
    assert auth == [{"token": "t"}]

    # JSON data, with an ACK from the server
    reply = await client.emit_with_ack("echo-ack", 1, "2", {"3": [True]}, timeout=TIMEOUT)
    assert reply == (1, "2", {"3": [True]})
    # binary data both ways, nested and empty included
    blob, nested = bytes(range(256)), {"file": [b"\x00\x01"], "empty": b""}
    assert await client.emit_with_ack("echo-ack", blob, nested, timeout=TIMEOUT) == (blob, nested)
    record = await server.wait_for("event", name="echo-ack", count=2)
    assert record["args"] == [b64(blob), {"file": [b64(b"\x00\x01")], "empty": b64(b"")}]
    back: list[tuple[Any, ...]] = []
    client.on("echo-back", lambda *args: back.append(args))
    client.emit("echo", b"\xff\x00", "text", {"deep": [[b"\x10"]]})
    await eventually(lambda: back, TIMEOUT, "echo-back")
    assert back == [(b"\xff\x00", "text", {"deep": [[b"\x10"]]})]

    # the server asks for an ACK; ours carries bytes
    client.on("question", lambda q: bytes(reversed(q)))
    client.emit("ask", b"\x01\x02\x03")
    assert (await server.wait_for("answer"))["value"] == b64(b"\x03\x02\x01")

    # a second namespace on the same connection
    admin = client.socket("/admin")
    await asyncio.wait_for(admin.connect(), TIMEOUT)
    assert await admin.emit_with_ack("echo-ack", "on admin", timeout=TIMEOUT) == "on admin"
    assert server.events("echo-ack", nsp="/admin") == [["on admin"]]
    kinds = only_msgpack(tracer)
    assert {"CONNECT", "EVENT", "ACK"} <= set(kinds)
