"""The msgpack parser against the official packages, both ways, on 127.0.0.1.

* The official npm ``socket.io-client`` with ``socket.io-msgpack-parser`` (``tests/js/sio_client.js
  ... msgpack``) against our conformance app with ``parser="msgpack"``.
* Our :class:`Client` with ``parser="msgpack"`` against the official npm ``socket.io`` server with
  ``socket.io-msgpack-parser`` (``tests/js/sio_server.js --parser=msgpack``): the scenarios of
  ``test_interop_js_server.py`` (auth, acks both ways, binary, two namespaces, CONNECT_ERROR, a
  server-side DISCONNECT) run again, both ends speaking msgpack.

Each in the three transport modes. A peer on the other parser could not even connect (the
msgpack decoder refuses text, the JSON decoder a lone binary message); the tracer shows, on top,
that every Socket.IO packet travelled as one msgpack message.

A missing ``node`` or ``node_modules`` fails these tests (never skips): see ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sio_teach import Client
from sio_teach.trace import Tracer
from tests.client import test_interop_js_server as json_tests
from tests.client.conftest import NodeServer
from tests.conftest import NODE_MODULES, ROOT, free_port, run_node
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


async def official_client(our_sio: Any, mode: str, scenario: str) -> tuple[Any, Tracer, Any]:
    """Our server (msgpack, traced), and what ``sio_client.js`` reported of ``scenario`` run
    against it with msgpack: (the live server, its tracer, the first record of each kind)."""
    tracer = Tracer(sio=True)
    live = await our_sio(parser="msgpack", tracer=tracer, ping_timeout=5.0)
    records = await run_node("sio_client.js", live.url, mode, scenario, "msgpack", timeout=30.0)
    got = first_of_each(records)
    assert "error" not in got, got["error"]
    return live, tracer, got


@pytest.mark.parametrize("mode", list(MODES))
async def test_official_client_emits_acks_binary_and_namespaces(our_sio: Any, mode: str) -> None:
    live, tracer, got = await official_client(our_sio, mode, "basic")
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
    _, tracer, got = await official_client(our_sio, mode, "rooms")
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

# the scenarios of test_interop_js_server.py, run again with both ends speaking msgpack
REUSED = [
    json_tests.test_connect_with_auth,
    json_tests.test_emit_with_ack,
    json_tests.test_server_emits_with_ack_to_the_client,
    json_tests.test_binary_round_trip,
    json_tests.test_two_namespaces_share_one_engineio_connection,
    json_tests.test_middleware_refusal,
    json_tests.test_server_side_disconnect_is_not_followed_by_reconnection,
]


@pytest.mark.parametrize("mode", list(json_tests.MODES))
@pytest.mark.parametrize("scenario", REUSED, ids=lambda f: f.__name__.removeprefix("test_"))
async def test_our_client_against_the_official_server(
    node_sio: Any, make_client: Any, mode: str, scenario: Callable[..., Awaitable[None]]
) -> None:
    async def msgpack_server(port: int | None = None) -> NodeServer:
        return await node_sio(port, "--parser=msgpack")

    def msgpack_client(url: str, **options: Any) -> Client:
        return make_client(url, parser="msgpack", **options)

    await scenario(msgpack_server, msgpack_client, mode)


@pytest.mark.parametrize("mode", list(json_tests.MODES))
async def test_our_client_sends_and_reads_only_msgpack(
    node_sio: Any, make_client: Any, mode: str
) -> None:
    server: NodeServer = await node_sio(None, "--parser=msgpack")
    tracer = Tracer("client", sio=True)
    client = make_client(
        server.url, transports=json_tests.MODES[mode], parser="msgpack", tracer=tracer
    )
    await asyncio.wait_for(client.connect(), TIMEOUT)
    assert await client.emit_with_ack("echo-ack", b"\x01", {"a": 1}, timeout=TIMEOUT) == (
        b"\x01",
        {"a": 1},
    )
    assert {"CONNECT", "EVENT", "ACK"} <= set(only_msgpack(tracer))


# -- the conformance app's flag -------------------------------------------------------------


async def test_conformance_app_with_parser_msgpack() -> None:
    """``python -m sio_teach.examples.conformance --parser msgpack``, as a test-suite starts it,
    passes the official client's basic scenario in msgpack."""
    port = free_port()
    app = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "sio_teach.examples.conformance", "--port", str(port)),
        *("--parser", "msgpack"),
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert app.stdout is not None
        banner = await asyncio.wait_for(app.stdout.readline(), 30.0)  # printed once listening
        assert banner.startswith(b"conformance app on"), banner
        url = f"http://127.0.0.1:{port}"
        records = await run_node("sio_client.js", url, "default", "basic", "msgpack", timeout=30.0)
        got = first_of_each(records)
        assert "error" not in got, got["error"]
        assert got["binary-ack"] == {"args": [buf(9, 8), "t"], "isBuffer": True}
        assert "done-script" in got
        app.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(app.wait(), 5.0) == 0
    finally:
        if app.returncode is None:
            app.kill()
            await app.wait()
