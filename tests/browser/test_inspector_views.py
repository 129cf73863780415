"""The page's views in a real browser: the sequence diagram, inside a packet, the heartbeat and
round-trip chart, the server's view of its sessions, and the fault buttons of ``serve --faults``.

The diagram is an SVG; each drawn thing that a test looks for carries ``data-label`` (a packet:
its trace label, e.g. ``> ws sio EVENT``; a request: ``GET``/``POST``; ``ws open``, ``wait``,
``attempt``, ``note``), in the order drawn, top to bottom.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from playwright.async_api import Page, expect

from sio_teach import Socket
from sio_teach.lab import Lab
from tests.browser.conftest import Demo

OpenPage = Callable[..., Awaitable[Page]]
LABELS = "[...document.querySelectorAll('#diagram [data-label]')].map((e) => e.dataset.label)"


async def labels(page: Page) -> list[str]:
    return await page.evaluate(LABELS)


def in_order(seen: list[str], wanted: list[str]) -> list[int]:
    """The indexes in ``seen`` of ``wanted``, found one after the other (AssertionError if not)."""
    found, at = [], 0
    for label in wanted:
        assert label in seen[at:], f"{label!r} not after {seen[:at]}\nall: {seen}"
        at = seen.index(label, at) + 1
        found.append(at - 1)
    return found


async def send(page: Page, text: str, button: str = "#send") -> None:
    await page.fill("#message", text)
    await page.click(button)


async def test_the_diagram_shows_handshake_held_get_probe_noop_and_upgrade_in_order(
    demo: Demo, open_page: OpenPage
) -> None:
    async def slow_connect(socket: Socket) -> None:
        await asyncio.sleep(0.5)

    # The CONNECT answer would otherwise race with the probe for the held GET (any queued packet
    # releases it as well as a noop does): hold it back until the upgrade is done.
    demo.sio.of("/").use(slow_connect)
    page = await open_page("alice")
    await expect(page.locator("#transport")).to_have_text("websocket")

    seen = await labels(page)
    handshake, _, held, _, probe, _, noop, _ = in_order(
        seen,
        [
            "GET",  # the handshake GET …
            "< GET eio open",  # … answered by the open packet
            "GET",  # the next GET, held by the server
            "ws open",  # the WebSocket opens beside it
            "> ws eio ping",  # 2probe
            "< ws eio pong",  # 3probe
            "< GET eio noop",  # the held GET released
            "> ws eio upgrade",  # 5: from now on, the WebSocket
        ],
    )
    assert seen[handshake + 1 : held] == ["< GET eio open", "POST", "> POST sio CONNECT"], seen
    diagram = page.locator("#diagram")
    await expect(diagram).to_contain_text("GET (handshake)")
    await expect(diagram).to_contain_text("2probe")
    await expect(diagram).to_contain_text("3probe")
    # the held GET is one bar, from its request (before the probe) to its answer (the noop)
    bar = diagram.locator("rect.bar[data-method=GET][data-answer=noop]")
    await expect(bar).to_have_count(1)
    rows = await page.evaluate(
        "[...document.querySelectorAll('#diagram [data-label]')].map((e) => Number(e.dataset.row || 0))"
    )
    assert int(await bar.get_attribute("data-row") or 0) == rows[held] < rows[probe] < rows[noop]
    assert float(await bar.get_attribute("height") or 0) > 3 * 22  # spans several rows


async def test_clicking_an_arrow_shows_the_packet_decoded(open_page: OpenPage) -> None:
    page = await open_page("alice")
    await expect(page.locator("#transport")).to_have_text("websocket")
    await send(page, "hello")
    await expect(page.locator("#messages li").last).to_have_text("alice: hello (delivered)")

    packet = page.locator("#packet")
    await page.locator('#diagram [data-label="> ws sio EVENT"]').first.click()
    for text in (
        "4 message",  # Engine.IO type
        "2 EVENT",  # Socket.IO type
        "namespace\n/",
        "ack id\n0",
        "attachments\n0",
        '"chat",\n  "hello"',  # the JSON, pretty-printed
        '420["chat","hello"]',  # on the wire
        "19 bytes",
    ):
        await expect(packet).to_contain_text(text, use_inner_text=True)

    await page.locator('#diagram [data-label="< ws sio ACK"]').first.click()
    await expect(packet).to_contain_text('430["delivered"]')
    await expect(packet).to_contain_text('the EVENT "chat" with the same id')
    await expect(packet).to_contain_text(
        re.compile(r"round trip\s*\d+\.\d ms"), use_inner_text=True
    )
    await expect(page.locator("#rtt circle")).to_have_count(1)  # the round-trip chart

    await send(page, "hi", button="#bytes")  # the UTF-8 of "hi": 68 69
    await expect(page.locator("#messages li").last).to_have_text(
        "alice: <2 bytes: 68 69> (delivered)"
    )
    await page.locator('#diagram [data-label="> ws eio binary"]').first.click()
    await expect(packet).to_contain_text("binary (hex)\n68 69", use_inner_text=True)
    await expect(packet).to_contain_text("2 bytes")
    await page.locator('#diagram [data-label="> ws sio BINARY_EVENT"]').first.click()
    await expect(packet).to_contain_text("5 BINARY_EVENT")
    await expect(packet).to_contain_text("attachments\n1", use_inner_text=True)
    await expect(packet).to_contain_text("attachment 0\n68 69", use_inner_text=True)
    await expect(page.locator("#rtt circle")).to_have_count(2)


async def test_the_heartbeat_view_marks_ping_pong_and_the_timer_bands(open_page: OpenPage) -> None:
    page = await open_page("alice")  # the demo server pings every 5 s
    info = page.locator("#heartbeat-info")
    await expect(info).to_contain_text("pingInterval 5000 ms, pingTimeout 5000 ms")
    await expect(info).to_contain_text("pings 1, pongs 1", timeout=10_000)
    heartbeat = page.locator("#heartbeat")
    await expect(heartbeat.locator("line.ping")).to_have_count(1)
    await expect(heartbeat.locator("line.pong")).to_have_count(1)
    await expect(heartbeat.locator("rect.band.interval")).to_have_count(1)
    await expect(heartbeat.locator("rect.band.timeout")).to_have_count(1)


async def test_drop_draws_the_reconnection_and_the_buffered_message_follows_it(
    faults_demo: Lab, open_page: OpenPage
) -> None:
    alice = await open_page("alice", base=faults_demo.url)
    bob = await open_page("bob", base=faults_demo.url)
    await expect(alice.locator("#faults")).to_be_visible()
    await expect(alice.locator("#transport")).to_have_text("websocket")
    await expect(alice.locator("#alias")).to_have_text(re.compile(r"S\d+"))

    await alice.click("#fault-drop")  # the server cuts alice's WebSocket (Lab.drop)
    await expect(alice.locator("#state")).to_have_text(re.compile("disconnected|reconnecting"))
    await send(alice, "sent while away")  # waits in the socket's send buffer
    await expect(bob.locator("#messages li").last).to_have_text("alice: sent while away")
    await expect(alice.locator("#state")).to_have_text("connected")

    diagram = alice.locator("#diagram")
    wait = diagram.locator('[data-label="wait"]')
    await expect(wait).to_have_count(1)
    await expect(wait).to_have_text(re.compile(r"reconnection: wait \d+ ms \(backoff, attempt 1\)"))
    assert 0 < int(await wait.get_attribute("data-ms") or 0) <= 1500  # 1 s ± 50 % jitter
    await expect(diagram.locator("rect.bar.wait")).to_have_count(1)  # the wait, drawn as a bar
    await expect(diagram).to_contain_text("waits in the socket's send buffer (1)")
    await expect(diagram).to_contain_text("send buffer drained: 1 event")
    seen = await labels(alice)
    texts = await alice.evaluate(
        "[...document.querySelectorAll('#diagram [data-label]')].map((e) => e.textContent)"
    )
    message = next(i for i, text in enumerate(texts) if "sent while away" in text)
    close, wait_at, attempt, handshake = in_order(
        seen, ["ws close", "wait", "attempt", "< GET eio open"]
    )
    assert close < wait_at < attempt < handshake < message, seen
    assert seen[message] in ("> POST sio EVENT", "> ws sio EVENT")


async def test_two_pages_see_each_others_sessions(open_page: OpenPage) -> None:
    alice = await open_page("alice")
    bob = await open_page("bob")
    await expect(alice.locator("#alias")).to_have_text(re.compile(r"S\d+"))
    await expect(bob.locator("#alias")).to_have_text(re.compile(r"S\d+"))
    a = await alice.locator("#alias").text_content()
    b = await bob.locator("#alias").text_content()
    for page, mine, other in ((alice, a, b), (bob, b, a)):
        rows = page.locator("#sessions tbody tr")
        await expect(rows.and_(page.locator(f'[data-alias="{mine}"]'))).to_contain_text(
            re.compile(rf"{mine} \(this page\)\s*websocket\s*/ \[lobby\]\s*/inspector")
        )
        await expect(rows.and_(page.locator(f'[data-alias="{other}"]'))).to_contain_text(
            re.compile(r"websocket\s*/ \[lobby\]")
        )
    await bob.context.close()  # bob leaves: the server forgets his session, alice sees it go
    await expect(alice.locator(f'#sessions tr[data-alias="{b}"]')).to_have_count(0)


async def test_pause_holds_the_diagram_and_clear_empties_it(open_page: OpenPage) -> None:
    page = await open_page("alice")
    await expect(page.locator("#transport")).to_have_text("websocket")
    events = page.locator('#diagram [data-label="> ws sio EVENT"]')
    await page.click("#diagram-pause")
    await send(page, "while paused")
    await expect(page.locator("#messages li").last).to_have_text("alice: while paused (delivered)")
    await expect(events).to_have_count(0)  # held back …
    await page.click("#diagram-pause")  # … until resumed
    await expect(events).to_have_count(1)
    await page.click("#diagram-clear")
    await expect(page.locator("#diagram [data-label]")).to_have_count(0)
    await send(page, "after clear")
    await expect(events).to_have_count(1)
    await expect(page.locator("#diagram-pause")).to_have_text("Pause")


async def test_latency_shows_in_the_ack_round_trip(faults_demo: Lab, open_page: OpenPage) -> None:
    page = await open_page("alice", base=faults_demo.url)
    await expect(page.locator("#transport")).to_have_text("websocket")
    await page.select_option("#latency", "1")
    await page.click("#fault-latency")
    await expect(page.locator("#fault-state")).to_contain_text("latency 1 s")
    assert faults_demo.latency == 1.0
    await send(page, "slowly")
    await expect(page.locator("#messages li").last).to_have_text("alice: slowly (delivered)")
    await page.locator('#diagram [data-label="< ws sio ACK"]').last.click()
    text = await page.locator("#packet").inner_text()
    rtt = float(re.search(r"round trip\s*([\d.]+) ms", text).group(1))  # type: ignore[union-attr]
    assert 1000 <= rtt < 5000, text


async def test_blocked_websockets_survive_a_restart_and_the_page_falls_back_to_polling(
    faults_demo: Lab, open_page: OpenPage
) -> None:
    page = await open_page("alice", base=faults_demo.url)
    await expect(page.locator("#transport")).to_have_text("websocket")
    await expect(page.locator("#alias")).to_have_text(re.compile(r"S\d+"))
    before = await page.locator("#alias").text_content()
    await page.click("#fault-block")
    await expect(page.locator("#fault-state")).to_contain_text("WebSockets blocked")
    await page.click("#fault-restart")  # a fresh server on the same port: a new session
    await expect(page.locator("#alias")).not_to_have_text(before or "")
    await expect(page.locator("#state")).to_have_text("connected")
    diagram = page.locator("#diagram")
    await expect(diagram).to_contain_text("connection closed")
    await expect(diagram).to_contain_text("reconnection: wait")
    await expect(diagram).to_contain_text("websocket probe failed")
    await expect(page.locator("#transport")).to_have_text("polling")
    assert faults_demo.engine.block_websocket  # the restarted server still refuses WebSockets
