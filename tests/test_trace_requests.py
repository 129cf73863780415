"""The tracer's HTTP requests of long-polling (``Tracer.request`` / ``spans``): a held GET is
opened when it arrives and answered when the server has something to send, each POST is opened
and answered, the text trace stays a list of packets, and the sequence diagram draws the spans."""

from __future__ import annotations

import matplotlib

from sio_teach import Client, lab
from sio_teach.trace import Tracer

matplotlib.use("Agg")


def test_spans_pair_each_opened_request_with_its_answer_in_order() -> None:
    now = [0.0]
    tracer = Tracer(clock=lambda: now[0])
    tracer.request("sid-a", "GET", "opened")
    now[0] = 0.2
    tracer.request("sid-a", "POST", "opened")
    tracer.request("sid-a", "POST", "answered")
    now[0] = 0.3
    tracer.request("sid-a", "GET", "answered")
    tracer.request("sid-a", "GET", "opened")
    got = [(o.method, o.time, a.time if a else None) for o, a in tracer.spans()]
    expected = [("GET", 0.0, 0.3), ("POST", 0.2, 0.2), ("GET", 0.3, None)]
    assert got == expected, f"expected {expected}, got {got}"
    assert [r.line() for r in tracer.requests][:2] == ["S1   GET  opened", "S1   POST opened"]
    assert tracer.records == [] and tracer.text() == ""  # the packets' trace is untouched
    tracer.clear()
    assert tracer.requests == []


async def test_polling_records_the_held_get_and_each_post() -> None:
    server_lab = await lab.start_server(ping_interval=5)
    server_lab.server.on("shout", lambda socket, text: text.upper())
    client = Client(server_lab.url, transports=("polling",))
    try:
        await client.connect()
        await lab.held_get(server_lab, "sid-0001")
        assert await client.emit_with_ack("shout", "hi", timeout=5) == "HI"
        await lab.held_get(server_lab, "sid-0001")
        spans = server_lab.tracer.spans()
        methods = [opened.method for opened, _ in spans]
        assert methods[0] == "GET" and "POST" in methods  # the handshake, then the CONNECT
        assert all(answered is not None for _, answered in spans[:-1])
        last, unanswered = spans[-1]
        assert (last.method, unanswered) == ("GET", None)  # held now: not answered yet
        for opened, answered in spans[:-1]:
            assert answered is not None and answered.time >= opened.time
        fig = lab.sequence_diagram(server_lab.tracer.records, requests=spans)
        labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
        assert labels == ["client", "GET", "POST", "ws"]
        assert all(r.transport != "ws" for r in server_lab.tracer.records)
    finally:
        await client.disconnect()
        await server_lab.stop()
