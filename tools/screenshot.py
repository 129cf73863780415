"""Regenerate the README's picture of the demo page: a scripted chat, photographed in Chromium.

    .venv/bin/python tools/screenshot.py docs/inspector.png

Starts the demo server (as ``serve --faults`` does) on a free port of 127.0.0.1, opens two pages
(alice and bob) in headless Chromium (``/usr/bin/chromium``, driven by Playwright: never
``playwright install``), lets them chat, send bytes and get a heartbeat, opens an EVENT in
"Inside the packet", and saves alice's page at 1400×900.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sio_teach import web

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


async def photograph(out: Path, chromium: str = CHROMIUM) -> None:
    from playwright.async_api import async_playwright  # the `browser` extra (make install)

    bundle = web.find_bundle()
    if bundle is None:
        raise SystemExit(web.missing_bundle_message())
    lab = web.start_demo(faults=True, bundle=bundle)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=ARGS)
            alice = await browser.new_page(viewport={"width": 1400, "height": 900})
            bob = await browser.new_page(viewport={"width": 1400, "height": 900})
            for page, name in ((alice, "alice"), (bob, "bob")):
                await page.goto(f"{lab.url}/?name={name}")
                await page.locator("#transport", has_text="websocket").wait_for(timeout=10_000)

            async def say(page: Page, text: str, button: str = "#send") -> None:
                await page.fill("#message", text)
                await page.click(button)
                await asyncio.sleep(0.3)

            await say(alice, "hi bob!")
            await say(bob, "hello alice")
            await say(alice, "raw bytes", "#bytes")
            await asyncio.sleep(5.5)  # the first ping (pingInterval 5 s) and its pong
            await say(alice, "still there?")
            await alice.locator('#diagram [data-label="> ws sio EVENT"]').last.click()
            out.parent.mkdir(parents=True, exist_ok=True)
            await alice.screenshot(path=str(out))
            await browser.close()
    finally:
        await lab.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/screenshot.py", description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/inspector.png"))
    parser.add_argument("--chromium", default=CHROMIUM, help=f"the browser (default {CHROMIUM})")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"{args.chromium} is missing: install Chromium (`make system-deps`)", file=sys.stderr)
        return 1
    asyncio.run(photograph(args.out, args.chromium))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
