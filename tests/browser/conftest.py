"""Browser tests: the demo page in headless Chromium, driven by Playwright, against a live server.

* ``demo`` fixture — the demo server (``sio_teach.web``) in the test's event loop on a free port of
  127.0.0.1, as :class:`Demo` (``.url``, ``.sio``); set ``demo.sio.engine.block_websocket`` before
  opening a page to refuse WebSockets.
* ``faults_demo`` fixture — the same page served as ``python -m sio_teach serve --faults`` serves
  it (:func:`sio_teach.web.start_demo`: a :class:`~sio_teach.lab.Lab`, fault buttons on);
* ``open_page`` fixture — ``page = await open_page("alice")`` opens the page (as ``?name=alice``;
  ``base=faults_demo.url`` for the other server) in a fresh browser context (each context is a separate browser profile: no shared cookies or
  socket.io Manager) and waits until it is connected. Uncaught page errors fail the test.

The browser is the system's Chromium (Debian package ``chromium``); Playwright is only the driver
(never ``playwright install``). Where ``/usr/bin/chromium`` is missing, these tests SKIP and say so.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from sio_teach import Server, web
from sio_teach.lab import Lab
from tests.conftest import start_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000  # the bound on every wait for the page

expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class Demo:
    url: str
    sio: Server


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    sio = web.demo_server()
    bundle = web.find_bundle()
    if bundle is None:
        pytest.fail(web.missing_bundle_message(), pytrace=False)
    live = await start_server(web.make_app(sio, bundle), engines=[sio.engine])
    yield Demo(live.base_url, sio)
    await live.stop()


@pytest.fixture
async def faults_demo() -> AsyncIterator[Lab]:
    bundle = web.find_bundle()
    if bundle is None:
        pytest.fail(web.missing_bundle_message(), pytrace=False)
    lab = web.start_demo(faults=True, bundle=bundle)
    yield lab
    await lab.shutdown()


async def chromium() -> AsyncIterator[Browser]:
    """The system's Chromium, headless, for a fixture to yield from; skips if it is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: install Chromium (`make system-deps`, as root)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def browser(demo: Demo) -> AsyncIterator[Browser]:  # closed before the server stops
    async for launched in chromium():
        yield launched


@pytest.fixture
async def open_page(demo: Demo, browser: Browser) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    errors: list[str] = []

    async def _open(name: str, query: str = "", base: str | None = None) -> Page:
        context = await browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{name}: {error}"))
        await page.goto(f"{base or demo.url}/?name={name}{query}")
        await expect(page.locator("#state")).to_have_text("connected")
        return page

    yield _open
    assert errors == [], errors
