"""Helpers for the reliability and security tests.

* ``app`` / ``app_factory`` fixtures — the conformance app (``sio_teach.examples.conformance``) in the
  test's event loop on a free port, with the relaxed pong deadline of the Socket.IO tests
  (``tests/sio/conftest.py:RELAXED_HEARTBEAT``); ``app_factory(**options)`` overrides any option.
* :class:`Witness` / ``witnesses`` fixture — clients of our own :class:`sio_teach.Client`, connected
  *before* a storm, one on a WebSocket and one on HTTP long-polling. After the storm,
  :meth:`Witness.check` sends 100 numbered ``message`` events and asserts that exactly those 100
  ``message-back`` came back, once each, in order, on the same connection (no disconnect).
* ``http`` fixture — bounded HTTP requests that never raise on an error status.
* :class:`RawTcp` — a raw TCP connection (``asyncio.open_connection``) for half-sent requests.
* ``no_errors_logged`` fixture — fails a test when anything was logged at ERROR by asyncio, Tornado
  (including a 5xx in ``tornado.access``) or sio_teach: hostile input must get its status or a
  close, never an unhandled exception or a failing handler.
* ``raw`` fixture — re-exported from ``tests/sio/conftest.py`` (raw Engine.IO wire clients).

Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import tornado.httpclient
from hypothesis import strategies as st
from tornado.httpclient import HTTPResponse

from sio_teach import Client
from sio_teach.eio.packet import Packet as EioPacket
from sio_teach.eio.packet import PacketType as EioType
from sio_teach.examples.conformance import socketio_server
from sio_teach.server import Server
from sio_teach.sio.packet import MAX_ACK_ID, MAX_ATTACHMENTS, RESERVED_EVENTS, Decoder, deconstruct
from sio_teach.sio.packet import Packet as SioPacket
from sio_teach.sio.packet import PacketType as SioType
from tests.conftest import HOST, LiveServer
from tests.sio.conftest import RELAXED_HEARTBEAT, raw  # noqa: F401  (a fixture, re-exported)

TIMEOUT = 10.0  # generous: this runs on a noisy 2-core machine
SEP = "\x1e"
Serve = Callable[..., Awaitable[LiveServer]]


async def until(predicate: Callable[[], Any], timeout: float = TIMEOUT, what: str = "") -> Any:
    """Poll ``predicate`` every 10 ms until it is truthy; fail after ``timeout`` seconds."""

    async def poll() -> Any:
        while not (result := predicate()):
            await asyncio.sleep(0.01)
        return result

    try:
        return await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")


# -- the app under test ----------------------------------------------------------------------


@dataclass
class App:
    """The conformance app's Socket.IO part, served on ``/socket.io/``."""

    live: LiveServer
    sio: Server

    @property
    def port(self) -> int:
        return self.live.port

    @property
    def base_url(self) -> str:
        return self.live.base_url

    def url(self, **query: Any) -> str:
        """``/socket.io/?EIO=4&...`` (``transport=polling`` unless given; ``None`` drops a key)."""
        args = {"EIO": 4, "transport": "polling", **query}
        args = {k: v for k, v in args.items() if v is not None}
        return f"{self.base_url}/socket.io/?{urlencode(args)}"

    def ws_url(self, **query: Any) -> str:
        return "ws" + self.url(**{"transport": "websocket", **query})[len("http") :]

    @property
    def sessions(self) -> dict[str, Any]:
        return self.sio.engine.sessions


@pytest.fixture
async def app_factory(serve: Serve) -> Callable[..., Awaitable[App]]:
    """Factory fixture: ``app = await app_factory(**Server_options)``; stopped at teardown."""

    async def _start(**options: Any) -> App:
        sio = socketio_server(**{**RELAXED_HEARTBEAT, **options})
        live = await serve(sio.routes("/socket.io/"), engines=[sio.engine])
        return App(live, sio)

    return _start


@pytest.fixture
async def app(app_factory: Callable[..., Awaitable[App]]) -> App:
    return await app_factory()


# -- witnesses: clients that must not notice a storm -------------------------------------------


class Witness:
    """A :class:`sio_teach.Client` connected before a storm; it checks ordered, exactly-once echo."""

    def __init__(self, url: str, transport: str) -> None:
        self.transport = transport
        self.client = Client(url, transports=(transport,), reconnection=False)
        self.received: list[tuple[Any, ...]] = []
        self.disconnects: list[str] = []
        self.rounds = 0
        self.client.on("message-back", lambda *args: self.received.append(args))
        self.client.on("disconnect", lambda reason: self.disconnects.append(reason))

    async def start(self, timeout: float = TIMEOUT) -> Witness:
        await asyncio.wait_for(self.client.connect(timeout), timeout + 1)
        assert self.client.engine is not None
        self.id = self.client.id
        self.eio_sid = self.client.engine.session.sid
        return self

    async def check(self, count: int = 100, timeout: float = 20.0) -> None:
        """Send ``count`` numbered messages; exactly those ``message-back`` arrive, in order."""
        self.rounds += 1
        tag = f"{self.transport}-{self.rounds}"
        before = len(self.received)
        for i in range(count):
            self.client.emit("message", tag, i)
        await until(  # a disconnect ends the wait at once: it fails below
            lambda: len(self.received) >= before + count or self.disconnects,
            timeout,
            f"{count} message-back on the {self.transport} witness (got "
            f"{len(self.received) - before}; disconnects {self.disconnects})",
        )
        assert self.disconnects == [], f"the {self.transport} witness was disconnected"
        # a round trip after the last one: a duplicate or a late straggler would be in the list
        reply = await self.client.emit_with_ack("message-with-ack", "sync", timeout=timeout)
        assert reply == "sync"
        assert self.received[before:] == [(tag, i) for i in range(count)]
        assert self.disconnects == [], f"the {self.transport} witness was disconnected"
        assert self.client.connected and self.client.id == self.id
        assert self.client.engine is not None and self.client.engine.session.sid == self.eio_sid

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.client.disconnect(), 5.0)
        except Exception:  # teardown goes on
            pass


@pytest.fixture
async def witnesses() -> AsyncIterator[Callable[[App], Awaitable[list[Witness]]]]:
    """Factory fixture: ``ws, polling = await witnesses(app)``, both connected; closed at teardown."""
    opened: list[Witness] = []

    async def _start(app: App) -> list[Witness]:
        pair = [Witness(app.base_url, "websocket"), Witness(app.base_url, "polling")]
        opened.extend(pair)
        for witness in pair:
            await witness.start()
        return pair

    yield _start
    for witness in opened:
        await witness.close()


# -- HTTP and TCP ----------------------------------------------------------------------------


class Http:
    """Bounded requests through one AsyncHTTPClient; never raises on an HTTP error status."""

    def __init__(self, client: tornado.httpclient.AsyncHTTPClient) -> None:
        self.client = client

    async def fetch(self, url: str, method: str = "GET", **kwargs: Any) -> HTTPResponse:
        kwargs.setdefault("request_timeout", TIMEOUT)
        if method in ("POST", "PUT", "PATCH"):
            kwargs.setdefault("body", b"")
        return await asyncio.wait_for(
            self.client.fetch(url, method=method, raise_error=False, **kwargs), TIMEOUT + 5
        )

    async def post(self, url: str, body: str | bytes, **kwargs: Any) -> HTTPResponse:
        headers = kwargs.pop("headers", {"Content-Type": "text/plain;charset=UTF-8"})
        return await self.fetch(url, "POST", body=body, headers=headers, **kwargs)

    async def handshake(self, app: App, **headers: str) -> str:
        """Open a polling session (no CONNECT); return its sid."""
        response = await self.fetch(app.url(), headers=headers)
        assert response.code == 200, (response.code, response.body)
        first = response.body.decode().split(SEP)[0]
        assert first.startswith("0"), first
        return json.loads(first[1:])["sid"]


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=100)
    yield Http(client)
    client.close()


def error_body(response: HTTPResponse) -> dict[str, Any]:
    """The ``{"code":N,"message":M}`` body of a refusal."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        response.code,
        response.headers,
        response.body,
    )
    return json.loads(response.body)


class RawTcp:
    """A raw TCP connection to the server: write any bytes, read whatever comes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, timeout: float = TIMEOUT) -> RawTcp:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
        return cls(reader, writer)

    async def send(self, data: bytes, timeout: float = TIMEOUT) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), timeout)

    async def read_head(self, timeout: float = TIMEOUT) -> tuple[int, dict[str, str]]:
        """Read a response's status line and headers: (status, headers with lower-case names)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        status_line, *lines = head.decode("latin1").split("\r\n")
        headers = {}
        for line in lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def close(self) -> None:
        self.writer.close()


# -- crash detection ------------------------------------------------------------------------------


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _last_lines(record: logging.LogRecord, count: int = 8) -> str:
    """The end of a record's traceback (a RecursionError's is thousands of lines long)."""
    if not record.exc_info:
        return ""
    lines = logging.Formatter().formatException(record.exc_info).splitlines()
    return "\n".join(["  ..."] * (len(lines) > count) + lines[-count:])


ERROR_LOGGERS = ("asyncio", "tornado.application", "tornado.general", "tornado.access", "sio_teach")


@pytest.fixture
def no_errors_logged() -> Any:
    """Fail the test when an ERROR was logged: an unhandled exception in a callback, task or
    request handler (asyncio, ``tornado.application``), a 5xx answer (``tornado.access``), or a
    failure inside sio_teach (e.g. ``handler ... failed``: a packet the server accepted and then
    could not handle). A young-generation ``gc.collect(1)`` first, so that "Task exception was never
    retrieved" shows."""
    collector = _ErrorCollector()
    loggers = [logging.getLogger(name) for name in ERROR_LOGGERS]
    for logger in loggers:
        logger.addHandler(collector)
    yield collector
    gc.collect(1)
    for logger in loggers:
        logger.removeHandler(collector)
    errors = [f"{r.name}: {r.getMessage()}\n{_last_lines(r)}" for r in collector.records]
    assert not errors, "errors were logged:\n" + "\n".join(errors)


# -- hypothesis strategies for the codecs (shared by test_properties and test_fuzz) --------------

# Deterministic runs in CI (the same examples every time, nothing written to .hypothesis/);
# every test sets its own example count.
CI = dict(deadline=None, derandomize=True, database=None)

eio_types = st.sampled_from(list(EioType))
eio_text_packets = st.builds(EioPacket, eio_types, st.text(max_size=40))
eio_binary_packets = st.builds(
    lambda data: EioPacket(EioType.MESSAGE, data), st.binary(max_size=40)
)
eio_packets = eio_text_packets | eio_binary_packets
# inside a polling payload a text packet cannot hold the record separator (it would split it)
eio_payload_packets = (
    st.builds(
        EioPacket,
        eio_types,
        st.text(st.characters(codec="utf-8", exclude_characters=SEP), max_size=40),
    )
    | eio_binary_packets
)

namespaces = st.just("/") | st.text(st.characters(exclude_characters=","), max_size=12).map(
    lambda s: "/" + s
)
ack_ids = st.integers(0, MAX_ACK_ID)
json_keys = st.text(max_size=8).filter(lambda k: k != "_placeholder")  # the placeholder marker
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
)


def _json(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)
        ),
        max_leaves=10,
    )


json_values = _json(json_scalars)
# EVENT / ACK arguments may hold bytes anywhere; a receiver accepts at most 10 attachments
args_with_binary = st.lists(_json(json_scalars | st.binary(max_size=16)), max_size=4).filter(
    lambda args: len(deconstruct(args)[1]) <= MAX_ATTACHMENTS
)
event_names = st.text(max_size=12).filter(lambda n: n not in RESERVED_EVENTS) | st.integers(0, 99)

sio_packets = st.one_of(
    st.builds(
        SioPacket,
        st.just(SioType.CONNECT),
        namespaces,
        st.none() | st.dictionaries(json_keys, json_values, max_size=3),
    ),
    st.builds(SioPacket, st.just(SioType.DISCONNECT), namespaces),
    st.builds(
        SioPacket,
        st.just(SioType.CONNECT_ERROR),
        namespaces,
        st.text(max_size=20) | st.fixed_dictionaries({"message": st.text(max_size=20)}),
    ),
    st.builds(
        lambda nsp, name, args, id: SioPacket(SioType.EVENT, nsp, [name, *args], id),
        namespaces,
        event_names,
        args_with_binary,
        st.none() | ack_ids,
    ),
    st.builds(
        lambda nsp, args, id: SioPacket(SioType.ACK, nsp, args, id),
        namespaces,
        args_with_binary,
        ack_ids,
    ),
)


def sio_decode(text: str, attachments: list[bytes]) -> SioPacket | None:
    """Feed one text message and its attachments to a fresh :class:`Decoder`; the packet or None."""
    decoder = Decoder()
    packet = decoder.receive_text(text)
    for attachment in attachments:
        assert packet is None, "the packet completed before all its attachments"
        packet = decoder.receive_binary(attachment)
    return packet
