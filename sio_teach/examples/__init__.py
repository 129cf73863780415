"""Runnable examples: the conformance app, the bench server, the chat demo."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any


def stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C (SIGINT) or SIGTERM: ``await stop_on_signals().wait()`` serves until
    the process is asked to stop, so that it can close its sessions cleanly first."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run(main: Coroutine[Any, Any, Any], uvloop: bool = False) -> Any:
    """``asyncio.run(main)``, on uvloop's event loop when asked (``pip install sio_teach[uvloop]``;
    Tornado runs on any asyncio loop). The default loop is the one the notebooks and tests use."""
    if not uvloop:
        return asyncio.run(main)
    try:
        import uvloop as libuv_loop
    except ImportError:
        main.close()
        raise SystemExit(
            "--uvloop needs the uvloop package: pip install 'sio_teach[uvloop]'"
        ) from None
    return libuv_loop.run(main)
