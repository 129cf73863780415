"""The official Admin UI page (npm ``@socket.io/admin-ui`` ``ui/dist``, served by
``python -m sio_teach serve --admin`` at ``/admin/``) in headless Chromium: log in, then see the
chat page's sockets and rooms, live. Nothing is fetched from outside 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from sio_teach import web
from sio_teach.admin import hash_password
from sio_teach.admin.ui import find_ui
from sio_teach.lab import Lab
from tests.browser.conftest import TIMEOUT_MS, chromium


@pytest.fixture
async def admin_demo() -> AsyncIterator[Lab]:
    bundle = web.find_bundle()
    if bundle is None or find_ui() is None:
        pytest.fail(
            "node_modules lacks socket.io-client or @socket.io/admin-ui: run `make install`"
        )
    auth = {"username": "admin", "password": hash_password("changeit", 4)}
    lab = web.start_demo(bundle=bundle, admin={"auth": auth})
    yield lab
    await lab.shutdown()


@pytest.fixture(name="chromium")
async def chromium_fixture(admin_demo: Lab) -> AsyncIterator[Browser]:  # closed before the server
    async for launched in chromium():
        yield launched


async def loopback_context(browser: Browser) -> BrowserContext:
    """A fresh profile whose requests may only reach 127.0.0.1 (anything else is aborted)."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)

    async def route(r: object) -> None:
        request = r.request  # type: ignore[attr-defined]
        if request.url.startswith("http://127.0.0.1:"):
            await r.continue_()  # type: ignore[attr-defined]
        else:
            await r.abort()  # type: ignore[attr-defined]

    await context.route("**/*", route)
    return context


async def chat(browser: Browser, lab: Lab, name: str) -> Page:
    page = await (await loopback_context(browser)).new_page()
    await page.goto(f"{lab.url}/?name={name}")
    await expect(page.locator("#state")).to_have_text("connected")
    return page


async def test_the_admin_ui_logs_in_and_shows_sockets_and_rooms_live(
    admin_demo: Lab, chromium: Browser
) -> None:
    lab = admin_demo
    await chat(chromium, lab, "alice")
    ui = await (await loopback_context(chromium)).new_page()
    errors: list[str] = []
    ui.on("pageerror", lambda error: errors.append(str(error)))
    await ui.goto(f"{lab.url}/admin/")

    # a wrong password: the modal says so
    await ui.get_by_label("Server URL").fill(lab.url)
    await ui.get_by_label("Username").fill("admin")
    await ui.get_by_label("Password").fill("wrong")
    await ui.get_by_role("button", name="Connect").click()
    await expect(ui.get_by_text("Invalid credentials")).to_be_visible()

    await ui.get_by_label("Password").fill("changeit")
    await ui.get_by_role("button", name="Connect").click()
    await expect(ui.get_by_label("Server URL")).to_be_hidden()

    alice = next(iter(lab.server.of("/").sockets))
    await ui.evaluate("location.hash = '#/sockets/'")
    await expect(ui.get_by_text(alice)).to_be_visible()

    await chat(chromium, lab, "bob")  # live: no reload
    bob = next(sid for sid in lab.server.of("/").sockets if sid != alice)
    await expect(ui.get_by_text(bob)).to_be_visible()

    await ui.evaluate("location.hash = '#/rooms/'")
    await expect(ui.get_by_text("lobby")).to_be_visible()
    assert errors == [], errors
