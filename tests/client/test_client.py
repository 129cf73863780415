"""Our Client against OUR server (the conformance app of ``sio_teach.examples.conformance``),
in-process on a free port of 127.0.0.1: acks, ack timeouts, reconnection after a restart on the
same port, the send buffer, reconnection_attempts, the backoff delays, and the trace.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from sio_teach import AckTimeoutError, ConnectError, Tracer
from sio_teach.sio.backoff import Backoff
from tests.client.conftest import Events, eventually
from tests.conftest import free_port

TIMEOUT = 10.0
MODES = {
    "upgrade": ("polling", "websocket"),
    "websocket": ("websocket",),
    "polling": ("polling",),
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


async def connect(client: Any) -> Events:
    events = Events(client)
    await asyncio.wait_for(client.connect(), TIMEOUT)
    return events


# -- acks -----------------------------------------------------------------------------------


async def test_emit_with_ack_round_trip(our_sio: Any, make_client: Any, mode: str) -> None:
    server = await our_sio()
    client = make_client(server.url, transports=MODES[mode])
    await connect(client)
    blob = bytes(range(256))
    assert await client.emit_with_ack("message-with-ack", "a", timeout=TIMEOUT) == "a"
    assert await client.emit_with_ack("message-with-ack", 1, {"b": [blob]}, timeout=TIMEOUT) == (
        1,
        {"b": [blob]},
    )
    assert await client.emit_with_ack("message-with-ack", timeout=TIMEOUT) is None  # ACK []


async def test_emit_with_ack_times_out_quickly_for_an_unknown_event(
    our_sio: Any, make_client: Any
) -> None:
    server = await our_sio()
    client = make_client(server.url)
    await connect(client)

    started = time.monotonic()
    with pytest.raises(AckTimeoutError, match="no ack"):
        await asyncio.wait_for(client.emit_with_ack("no-such-event", 1, timeout=0.2), TIMEOUT)
    elapsed = time.monotonic() - started

    assert 0.15 <= elapsed < 5.0  # the 0.2 s timeout, not the 10 s guard
    assert server.events("no-such-event") == [(1,)]  # it was delivered, just never acknowledged
    # the connection is still fine afterwards
    assert await client.emit_with_ack("message-with-ack", "ok", timeout=TIMEOUT) == "ok"


async def test_a_timed_out_ack_is_forgotten(our_sio: Any, make_client: Any) -> None:
    """socket.io-client ``Socket._registerAckCallback``: on timeout, ``delete this.acks[id]``.
    A long-lived client whose acks time out must not keep one callback per timed-out emit."""
    server = await our_sio()
    client = make_client(server.url)
    await connect(client)
    for _ in range(3):
        with pytest.raises(AckTimeoutError):
            await asyncio.wait_for(client.emit_with_ack("no-such-event", timeout=0.05), TIMEOUT)
    assert client.acks == {}


async def test_handler_return_value_is_the_ack(our_sio: Any, make_client: Any) -> None:
    server = await our_sio()
    client = make_client(server.url)
    await connect(client)
    acked: list[tuple[Any, ...]] = []
    client.on("callback-ack", lambda *values: acked.append(values))

    client.on("callback", lambda *args: ("y", {"z": args}))  # a tuple: several ACK args
    client.emit("call-me-back", "x", 2)
    await eventually(lambda: acked, TIMEOUT, "callback-ack")
    assert acked == [("y", {"z": ["x", 2]})]

    async def async_answer(*args: Any) -> Any:
        await asyncio.sleep(0.01)
        return b"\x00\xff"  # one binary value: BINARY_ACK

    client.on("callback", async_answer)
    client.emit("call-me-back")
    await eventually(lambda: len(acked) == 2, TIMEOUT, "the second callback-ack")
    assert acked[1] == (b"\x00\xff",)


async def test_namespace_refused_by_our_server(our_sio: Any, make_client: Any) -> None:
    server = await our_sio()
    client = make_client(server.url)
    await connect(client)
    other = client.socket("/nowhere")
    other_events = Events(other, ("connect_error",))
    with pytest.raises(ConnectError, match="Invalid namespace"):
        await asyncio.wait_for(other.connect(), TIMEOUT)
    assert other_events.args("connect_error") == [({"message": "Invalid namespace"},)]
    custom = client.socket("/custom")
    await asyncio.wait_for(custom.connect(), TIMEOUT)
    assert await custom.emit_with_ack("message-with-ack", "c", timeout=TIMEOUT) == "c"
    assert server.events("message-with-ack", nsp="/custom") == [("c",)]


async def test_a_failing_handler_does_not_break_the_connection(
    our_sio: Any, make_client: Any, mode: str
) -> None:
    """An exception in an application handler is the application's bug: it must be logged, not
    propagated into the transport's read loop (the server side, ``Socket._run``, does so)."""
    # Today the exception kills a transport task ("Task exception was never retrieved"). Keep
    # those reports out of logging: formatting their tracebacks (from Task.__del__) was seen to
    # trip a CPython 3.11.7 bug (SystemError "AST constructor recursion depth mismatch") that
    # then crashed pytest itself (INTERNALERROR) while reporting a later failure.
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: loop_errors.append(ctx))
    server = await our_sio()
    client = make_client(server.url, transports=MODES[mode])
    events = await connect(client)
    if mode == "upgrade":
        await eventually(lambda: client.transport == "websocket", TIMEOUT, "the upgrade")
    seen: list[Any] = []

    def broken(*args: Any) -> None:
        seen.append(args)
        raise ValueError("a bug in the application's handler")

    client.on("message-back", broken)
    client.emit("message", "boom")
    await eventually(lambda: seen, TIMEOUT, "the handler call")
    await asyncio.sleep(1.0)  # two heartbeat periods (300 + 200 ms): a dead reader shows by now

    assert events.names() == ["connect"]  # no "disconnect" (ping timeout), no reconnection
    assert [str(ctx.get("exception")) for ctx in loop_errors] == []
    assert await client.emit_with_ack("message-with-ack", "still", timeout=2.0) == "still"


async def test_on_any(our_sio: Any, make_client: Any) -> None:
    server = await our_sio()
    client = make_client(server.url, auth={"a": 1})
    seen: list[tuple[Any, ...]] = []
    client.on_any(lambda *args: seen.append(args))
    await connect(client)
    client.emit("message", 1, b"\x02")
    await eventually(lambda: len(seen) == 2, TIMEOUT, "two events")
    assert seen == [("auth", {"a": 1}), ("message-back", 1, b"\x02")]


# -- reconnection -----------------------------------------------------------------------------


async def test_reconnects_after_our_server_restarts_on_the_same_port(
    our_sio: Any, make_client: Any, mode: str
) -> None:
    first = await our_sio()
    client = make_client(first.url, transports=MODES[mode], auth={"token": "t"})
    events = await connect(client)
    if mode == "upgrade":
        await eventually(lambda: client.transport == "websocket", TIMEOUT, "the upgrade")
    assert await client.emit_with_ack("message-with-ack", "before", timeout=TIMEOUT) == "before"
    first_id = client.id

    await first.stop()  # stop listening + sio.close(): every session is closed
    (reason,) = await events.wait("disconnect")
    assert reason in ("transport close", "transport error")
    assert not client.connected

    for n in range(5):
        client.emit("message", n)
    client.emit("message", "volatile", volatile=True)  # disconnected: dropped

    second = await our_sio(port=first.port)
    await events.wait("reconnect", timeout=15.0)
    await events.wait("connect", count=2)

    assert client.connected and client.id != first_id
    assert await client.emit_with_ack("message-with-ack", "marker", timeout=TIMEOUT) == "marker"
    assert second.events("message") == [(0,), (1,), (2,), (3,), (4,)]
    assert [event for _, event, _ in second.received] == ["message"] * 5 + ["message-with-ack"]
    attempts = events.count("reconnect_attempt")
    assert events.args("reconnect") == [(attempts,)]
    assert len(client.delays) == attempts
    assert all(0 < d <= 0.5 for d in client.delays)


async def test_reconnection_attempts_exhausted_fires_reconnect_failed(
    our_sio: Any, make_client: Any
) -> None:
    server = await our_sio()
    client = make_client(
        server.url,
        transports=("websocket",),
        reconnection_attempts=2,
        backoff=Backoff(delay=0.05, delay_max=0.1),
    )
    events = await connect(client)
    await server.stop()  # and never started again: the port is dead

    await events.wait("reconnect_failed", timeout=TIMEOUT)

    assert events.args("reconnect_attempt") == [(1,), (2,)]
    assert events.count("reconnect_error") == 2
    assert all(isinstance(args[0], ConnectError) for args in events.args("reconnect_error"))
    assert events.count("reconnect") == 0
    assert events.names() == [
        "connect",
        "disconnect",
        "reconnect_attempt",
        "reconnect_error",
        "reconnect_attempt",
        "reconnect_error",
        "reconnect_failed",
        "connect_error",  # the namespace waited to connect: it cannot now
    ]
    assert len(client.delays) == 2
    assert not client.connected


async def test_first_connect_to_a_dead_port_then_reconnection_attempts(make_client: Any) -> None:
    """As socket.io-client ``Manager.open`` → ``maybeReconnectOnOpen``: a first connection that
    cannot be opened is retried by the reconnection loop (here ``connect()`` also raises)."""
    client = make_client(
        f"http://127.0.0.1:{free_port()}",
        reconnection_attempts=2,
        backoff=Backoff(delay=0.05, delay_max=0.1),
    )
    events = Events(client)
    with pytest.raises(ConnectError):
        await asyncio.wait_for(client.connect(), TIMEOUT)

    await events.wait("reconnect_failed", timeout=TIMEOUT)

    assert events.names() == [
        "reconnect_attempt",
        "reconnect_error",
        "reconnect_attempt",
        "reconnect_error",
        "reconnect_failed",
        "connect_error",  # the namespace waited to connect: it cannot now
    ]
    assert events.args("reconnect_attempt") == [(1,), (2,)]
    assert len(client.delays) == 2
    assert not client.connected


async def test_connect_to_a_dead_port_raises_connect_error(make_client: Any) -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}", reconnection=False)
    with pytest.raises(ConnectError):
        await asyncio.wait_for(client.connect(), TIMEOUT)
    assert not client.connected


async def delays_after_a_lost_connection(
    our_sio: Any, make_client: Any, backoff: Backoff, rand: Any, attempts: int
) -> list[float]:
    """Connect, stop the server for good, let ``attempts`` reconnections fail: the delays used."""
    server = await our_sio()
    client = make_client(
        server.url,
        transports=("websocket",),
        reconnection_attempts=attempts,
        backoff=backoff,
        rand=rand,
    )
    events = await connect(client)
    await server.stop()
    await events.wait("reconnect_failed", timeout=TIMEOUT)
    assert events.count("reconnect_attempt") == attempts
    return client.delays


async def test_delays_follow_the_backoff_with_a_seeded_rand(our_sio: Any, make_client: Any) -> None:
    backoff = Backoff(delay=0.02, delay_max=0.1)
    delays = await delays_after_a_lost_connection(
        our_sio, make_client, backoff, random.Random(1234).random, 4
    )
    replay = random.Random(1234)
    assert delays == [backoff.duration(n, replay.random()) for n in range(4)]


async def test_delays_golden_values_with_a_fixed_rand(our_sio: Any, make_client: Any) -> None:
    # rand 0.5: floor(5) is odd, so +25 %: 20+5, 40+10, 80+20, 160+40 -> capped at 100 ms
    delays = await delays_after_a_lost_connection(
        our_sio, make_client, Backoff(delay=0.02, delay_max=0.1), lambda: 0.5, 4
    )
    assert delays == [0.025, 0.05, 0.1, 0.1]


async def test_every_namespace_reconnects_and_flushes_its_buffer(
    our_sio: Any, make_client: Any
) -> None:
    first = await our_sio()
    client = make_client(first.url)
    events = await connect(client)
    custom = client.socket("/custom", auth={"nsp": "custom"})
    custom_events = Events(custom, ("connect", "disconnect"))
    await asyncio.wait_for(custom.connect(), TIMEOUT)

    await first.stop()
    await events.wait("disconnect")
    await custom_events.wait("disconnect")
    custom.emit("message", "c0")
    client.emit("message", "m0")
    custom.emit("message", "c1")

    second = await our_sio(port=first.port)
    await events.wait("connect", count=2, timeout=15.0)
    await custom_events.wait("connect", count=2)
    assert await custom.emit_with_ack("message-with-ack", "cm", timeout=TIMEOUT) == "cm"
    assert await client.emit_with_ack("message-with-ack", "mm", timeout=TIMEOUT) == "mm"
    assert second.events("message", nsp="/custom") == [("c0",), ("c1",)]
    assert second.events("message", nsp="/") == [("m0",)]
    assert custom.id != client.id


async def test_disconnect_stops_the_reconnection_loop(our_sio: Any, make_client: Any) -> None:
    first = await our_sio()
    client = make_client(first.url, backoff=Backoff(delay=0.1, delay_max=0.2))
    events = await connect(client)
    await first.stop()
    await events.wait("reconnect_attempt")

    await asyncio.wait_for(client.disconnect(), TIMEOUT)
    attempts = events.count("reconnect_attempt")
    second = await our_sio(port=first.port)
    await asyncio.sleep(1.0)  # five times the longest backoff

    assert events.count("reconnect_attempt") == attempts
    assert events.count("reconnect") == 0
    assert not client.connected
    assert second.sio.of("/").sockets == {}


# -- the trace ------------------------------------------------------------------------------


async def test_the_trace_shows_both_layers(our_sio: Any, make_client: Any, mode: str) -> None:
    server = await our_sio()
    tracer = Tracer("client")
    client = make_client(server.url, transports=MODES[mode], tracer=tracer, auth={"k": "v"})
    await connect(client)
    assert await client.emit_with_ack("message-with-ack", "traced", timeout=TIMEOUT) == "traced"
    await asyncio.wait_for(client.disconnect(), TIMEOUT)

    records = tracer.records
    kinds = {(r.direction, r.layer, r.kind) for r in records}
    assert (">", "sio", "CONNECT") in kinds  # 40{"k":"v"}
    assert ("<", "sio", "CONNECT") in kinds  # 40{"sid":...}
    assert (">", "sio", "EVENT") in kinds  # 420["message-with-ack","traced"]
    assert ("<", "sio", "EVENT") in kinds  # 42["auth",{"k":"v"}]
    assert ("<", "sio", "ACK") in kinds
    assert ("<", "eio", "open") in kinds
    assert (">", "sio", "DISCONNECT") in kinds
    connect_out = next(r for r in records if r.direction == ">" and r.kind == "CONNECT")
    assert connect_out.wire == '40{"k":"v"}'
    event_out = next(r for r in records if r.direction == ">" and r.kind == "EVENT")
    assert event_out.wire == '420["message-with-ack","traced"]'
    assert all(r.node == "client" and r.session == "S1" for r in records)
    expected_transports = {
        "upgrade": {"GET", "POST", "ws"},
        "websocket": {"ws"},
        "polling": {"GET", "POST"},
    }
    assert {r.transport for r in records} <= expected_transports[mode]
    assert {r.transport for r in records if r.layer == "sio"} & expected_transports[mode]


async def test_retries_against_our_flaky_handler_with_outgoing_listener(
    our_sio: Any, make_client: Any, mode: str
) -> None:
    """Our client with ``retries`` against our conformance app: ``flaky`` drops the first arrival
    of each argument, so each emit is sent twice (``on_any_outgoing`` sees both tries), the server
    receives it twice, and the client gets one answer, in order."""
    server = await our_sio()
    client = make_client(server.url, transports=MODES[mode], retries=2, ack_timeout=0.3)
    outgoing: list[tuple[Any, ...]] = []
    client.on_any_outgoing(lambda *event: outgoing.append(event))
    await connect(client)
    tag = f"{mode}-{time.monotonic_ns()}"
    answers = await asyncio.wait_for(
        asyncio.gather(*(client.emit_with_ack("flaky", f"{tag}-{i}") for i in range(2))), TIMEOUT
    )
    assert answers == [f"{tag}-0", f"{tag}-1"]
    flaky = [args[0] for nsp, event, args in server.received if event == "flaky"]
    assert flaky == [f"{tag}-0", f"{tag}-0", f"{tag}-1", f"{tag}-1"]
    assert [e for e in outgoing if e[0] == "flaky"] == [("flaky", a) for a in flaky]


async def test_a_broadcast_with_ack_timeout_is_answered_by_clients_whose_queue_is_blocked(
    our_sio: Any, make_client: Any
) -> None:
    """A server broadcast asking for acks (``sio.timeout(t).emit_with_ack``) reaches clients with
    ``retries`` whose own queue is stuck on an emit the server never answers: their ACKs do not
    wait in that queue, so the broadcast gets every answer in time; a client that does not answer
    makes it time out, as without the queue."""
    server = await our_sio()
    clients = [make_client(server.url, retries=5, ack_timeout=0.5) for _ in range(2)]
    for i, client in enumerate(clients):
        client.on("question", lambda n, i=i: f"answer {i} to {n}")
        await connect(client)
    stuck = [
        asyncio.ensure_future(c.emit_with_ack("flaky", f"stuck-{i}-{time.monotonic_ns()}"))
        for i, c in enumerate(clients)
    ]  # each queue now waits for an ACK that "flaky" holds back the first time
    # 0.3 s: less than the queue's ack_timeout, so an ACK queued behind "flaky" would be too late
    values = await asyncio.wait_for(server.sio.timeout(0.3).emit_with_ack("question", 7), TIMEOUT)
    assert sorted(values) == ["answer 0 to 7", "answer 1 to 7"]
    await asyncio.wait_for(asyncio.gather(*stuck), TIMEOUT)  # then retried and answered

    silent = make_client(server.url, retries=5, ack_timeout=0.5)
    await connect(silent)  # no "question" handler: no ACK
    with pytest.raises(AckTimeoutError):
        await asyncio.wait_for(server.sio.timeout(0.3).emit_with_ack("question", 8), TIMEOUT)
