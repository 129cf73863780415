"""Background work, started in one place: :func:`spawn`.

``asyncio`` keeps only a weak reference to a running Task, so a Task nobody holds may be collected
before it finishes, and a failure nobody awaits is reported late ("Task exception was never
retrieved"). Every background job of sio_teach (a coroutine handler, a reconnection loop, a
listener) is started with :func:`spawn`, which keeps the Task until it ends and logs its failure
at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger("sio_teach")

_running: set[asyncio.Future[Any]] = set()  # strong references until each job ends


def spawn(job: Awaitable[Any], what: str = "background task") -> asyncio.Future[Any]:
    """Run ``job`` in the background on the running loop; return its Task.

    Call it instead of ``asyncio.ensure_future`` / ``create_task`` for work that nobody awaits.
    A failure is logged as ``"<what> failed"`` with its traceback; a cancellation is silent.
    """
    task = asyncio.ensure_future(job)
    _running.add(task)
    task.add_done_callback(lambda done: _finished(done, what))
    return task


def _finished(task: asyncio.Future[Any], what: str) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", what, exc_info=task.exception())
