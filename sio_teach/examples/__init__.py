"""Runnable examples: the conformance app, the bench server, the chat demo."""

from __future__ import annotations

import asyncio
import signal


def stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C (SIGINT) or SIGTERM: ``await stop_on_signals().wait()`` serves until
    the process is asked to stop, so that it can close its sessions cleanly first."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
