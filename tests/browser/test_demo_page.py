"""The demo page in a real browser: the official socket.io client talking to our server.

The page traces its own packets in JavaScript; :func:`python_line` renders the expected line with
``sio_teach.trace`` itself, so these tests also check that both render a packet the same way.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from playwright.async_api import Page, expect

from sio_teach import Tracer
from tests.browser.conftest import Demo

OpenPage = Callable[..., Awaitable[Page]]
HANDSHAKE = '0{"sid":"SID","upgrades":["websocket"],"pingInterval":5000,"pingTimeout":5000,"maxPayload":1000000}'


def python_line(direction: str, transport: str, wire: str, session: str = "S1") -> str:
    """The line ``Record.line()`` renders for this packet (the sid ``SID`` shows as ``session``)."""
    tracer = Tracer("test", sio=True)
    for n in range(1, int(session[1:])):  # aliases go in order: S1, S2 … before this session
        tracer.alias(f"another-{n}")
    tracer.record("SID", direction, transport, wire)
    return tracer.records[0].line()


async def send(page: Page, text: str) -> None:
    await page.fill("#message", text)
    await page.click("#send")


async def test_two_pages_chat(open_page: OpenPage) -> None:
    alice = await open_page("alice")
    bob = await open_page("bob")
    await expect(alice.locator("#messages")).to_contain_text("server: bob joined")

    await send(alice, "hi bob!")
    await expect(bob.locator("#messages li").last).to_have_text("alice: hi bob!")
    delivered = "alice: hi bob! (delivered)"  # with the server's ACK
    await expect(alice.locator("#messages li").last).to_have_text(delivered)

    await send(bob, "hello alice")
    await expect(alice.locator("#messages li").last).to_have_text("bob: hello alice")


async def test_trace_panel_shows_the_handshake_and_the_upgrade_probe(open_page: OpenPage) -> None:
    page = await open_page("alice")
    await expect(page.locator("#transport")).to_have_text("websocket")
    trace = page.locator("#trace div")  # one element per packet
    for line in (
        python_line("<", "GET", HANDSHAKE),
        python_line(">", "POST", '40{"name":"alice"}'),
        python_line(">", "ws", "2probe"),
        python_line("<", "ws", "3probe"),
        python_line(">", "ws", "5"),
    ):
        await expect(trace.filter(has_text=line)).to_have_count(1)

    await send(page, "over the websocket")
    await expect(
        trace.filter(has_text=python_line(">", "ws", '420["chat","over the websocket"]'))
    ).to_have_count(1)
    await expect(trace.filter(has_text=python_line("<", "ws", '430["delivered"]'))).to_have_count(1)
    await expect(page.locator("#trace")).not_to_contain_text("/inspector,")  # not traced


async def test_polling_fallback_when_websocket_is_blocked(demo: Demo, open_page: OpenPage) -> None:
    demo.sio.engine.block_websocket = True  # as a proxy that refuses the Upgrade would
    alice = await open_page("alice")
    await expect(alice.locator("#trace")).to_contain_text("websocket probe failed")
    await expect(alice.locator("#transport")).to_have_text("polling")
    bob = await open_page("bob", "&polling=1")

    await send(alice, "still here?")
    await expect(bob.locator("#messages li").last).to_have_text("alice: still here?")
    await send(bob, "yes, over long-polling")
    await expect(alice.locator("#messages li").last).to_have_text("bob: yes, over long-polling")
    received = python_line("<", "GET", '42["chat","bob","yes, over long-polling"]')
    await expect(alice.locator("#trace")).to_contain_text(received)
    # no line on the WebSocket ("S1 > ws  …"); a plain " ws " would be trimmed to "ws" by Playwright
    # and found in a random Socket.IO sid such as "…TMGFws"
    await expect(alice.locator("#trace")).not_to_contain_text(re.compile(r"S\d+ [<>] ws "))


async def test_the_switch_forces_long_polling(open_page: OpenPage) -> None:
    page = await open_page("carol")
    await page.check("#polling")  # reloads the page with ?polling=1
    await expect(page).to_have_url(re.compile(r"polling=1"))
    await expect(page.locator("#state")).to_have_text("connected")
    await expect(page.locator("#polling")).to_be_checked()
    await send(page, "polling only")
    await expect(page.locator("#trace")).to_contain_text(
        python_line(">", "POST", '420["chat","polling only"]')
    )
    await expect(page.locator("#transport")).to_have_text("polling")
    await expect(page.locator("#trace")).not_to_contain_text("2probe")


async def test_inspector_shows_the_server_packets_of_every_page(open_page: OpenPage) -> None:
    alice = await open_page("alice")
    bob = await open_page("bob")
    await expect(alice.locator("#alias")).to_have_text(re.compile(r"S\d+"))
    await expect(bob.locator("#alias")).to_have_text(re.compile(r"S\d+"))
    a = await alice.locator("#alias").text_content()
    b = await bob.locator("#alias").text_content()
    assert a and b and a != b
    for page in (alice, bob):
        await expect(page.locator("#transport")).to_have_text("websocket")

    await send(bob, "seen by the server")
    inspector = alice.locator("#inspector")  # alice watches what the server did with bob's message
    for line in (
        python_line("<", "ws", '420["chat","seen by the server"]', session=b),
        python_line(">", "ws", '42["chat","bob","seen by the server"]', session=a),
        python_line(">", "ws", '430["delivered"]', session=b),
        python_line(">", "GET", HANDSHAKE, session=a),  # from before alice's inspector connected
    ):
        await expect(inspector).to_contain_text(line)
    await expect(inspector).not_to_contain_text("/inspector,")
