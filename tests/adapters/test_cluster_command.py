"""``python -m sio_teach cluster``: a Redis, three chat nodes as processes and nginx in front, on
loopback ports. Clients connect through nginx over both transports (long-polling only, and
WebSocket only), chat across nodes, then one node is killed: its clients reconnect through nginx
to the others and the chat goes on. SIGTERM stops everything the command started.

nginx comes from ``make system-deps`` (so does Redis 7, for ``--adapter sharded``); without them
these tests are skipped, naming the binary."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from sio_teach import Client
from sio_teach import cluster as sio_cluster
from sio_teach.adapters.redis_server import RedisNotFound, find_redis_server
from sio_teach.cli import main
from sio_teach.cluster import find_nginx
from tests.conftest import ROOT, free_port

needs_nginx = pytest.mark.skipif(
    find_nginx() is None, reason="`nginx` binary not found (run `make system-deps` as root)"
)
WAIT = 10.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Run:
    """The command's process, the URL it printed, and its nodes' pids by name."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.url = ""
        self.nodes: dict[str, int] = {}
        self.nginx = 0

    async def started(self) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(30.0):
            while not self.url:
                line = (await self.proc.stdout.readline()).decode()
                assert line, f"the cluster command exited ({await self.proc.wait()})"
                if node := re.match(r"(node\d+): .* \(pid (\d+)\)", line):
                    self.nodes[node[1]] = int(node[2])
                if found := re.match(r"cluster on (\S+) .*nginx \(pid (\d+)\)", line):
                    self.url, self.nginx = found[1].rstrip("/"), int(found[2])


@pytest.fixture
async def cluster_command(adapter: str) -> AsyncIterator[Run]:
    if adapter == "sharded":
        try:
            find_redis_server((7, 0))
        except RedisNotFound:
            pytest.skip("`redis-server` >= 7 not found (run `make system-deps` as root)")
    command = [sys.executable, "-m", "sio_teach", "cluster", "--nodes", "3"]
    command += ["--adapter", adapter, "--port", str(free_port())]
    proc = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=subprocess.PIPE)
    run = Run(proc)
    try:
        await run.started()
        yield run
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()


class ChatClient:
    def __init__(self, url: str, name: str, transports: tuple[str, ...]) -> None:
        self.name = name
        self.client = Client(url, transports=transports, auth={"name": name})
        self.heard: list[tuple[str, str]] = []
        # (with connection state recovery an event's offset comes last, as with socket.io-client)
        self.client.on("chat", lambda who, text, *offset: self.heard.append((who, text)))

    async def node(self) -> str:
        return await self.client.emit_with_ack("whoami", timeout=WAIT)

    async def wait_heard(self, item: tuple[str, str]) -> None:
        async with asyncio.timeout(WAIT):
            while item not in self.heard:
                await asyncio.sleep(0.02)


async def chat_reaches_everyone(clients: list[ChatClient], text: str) -> None:
    sender, *others = clients
    assert await sender.client.emit_with_ack("chat", text, timeout=WAIT) == "delivered"
    for rec in others:
        await rec.wait_heard((sender.name, text))


@needs_nginx
@pytest.mark.parametrize("adapter", ["pubsub", "sharded", "streams"])
async def test_a_cluster_behind_nginx_survives_a_dead_node(
    cluster_command: Run, adapter: str
) -> None:
    """Kill the node of the long-polling clients: they reconnect to the others through nginx.
    On the streams adapter (the node stopped, not crashed: a crashed node cannot hand over its
    sessions, with the official adapter either) they are also *recovered* there: the same socket
    id, and the chat said while they were away heard exactly once."""
    run = cluster_command
    assert set(run.nodes) == {"node1", "node2", "node3"}
    clients = [ChatClient(run.url, f"poll{i}", ("polling",)) for i in range(2)]
    clients += [ChatClient(run.url, f"ws{i}", ("websocket",)) for i in range(4)]
    try:
        for rec in clients:
            await rec.client.connect(timeout=WAIT)
        where = {rec.name: await rec.node() for rec in clients}
        # long-polling sticks to one node (ip_hash); WebSocket-only clients go round-robin
        assert where["poll0"] == where["poll1"]
        assert len({where[f"ws{i}"] for i in range(4)}) >= 2, where
        await chat_reaches_everyone(clients, "before")  # across nodes, through Redis
        await chat_reaches_everyone(clients[::-1], "back")

        victim = where["poll0"]
        moved = [rec for rec in clients if where[rec.name] == victim]
        ids = {rec.name: rec.client.id for rec in moved}
        stayed = next(rec for rec in clients if where[rec.name] != victim)
        # a crash, or (streams) a node stopping: it hands its sessions to Redis as it goes
        os.kill(run.nodes[victim], signal.SIGTERM if adapter == "streams" else signal.SIGKILL)
        await stayed.client.emit_with_ack("chat", "meanwhile", timeout=WAIT)
        async with asyncio.timeout(30.0):  # the clients' reconnection backoff: 1 s, 2 s, …
            for rec in moved:
                while True:
                    if rec.client.connected:
                        with contextlib.suppress(Exception):  # reconnecting again: ask again
                            if (now := await rec.node()) != victim:
                                where[rec.name] = now
                                break
                    await asyncio.sleep(0.1)
        assert victim not in where.values()
        if adapter == "streams":
            for rec in moved:
                assert rec.client.recovered and rec.client.id == ids[rec.name], rec.name
                await rec.wait_heard((stayed.name, "meanwhile"))  # missed, then replayed
                assert rec.heard.count((stayed.name, "meanwhile")) == 1
        await chat_reaches_everyone(clients, "after")
        await chat_reaches_everyone([moved[0], *[c for c in clients if c is not moved[0]]], "ok")
    finally:
        for rec in clients:
            await asyncio.wait_for(rec.client.close(), WAIT)

    pids = [*run.nodes.values(), run.nginx]
    run.proc.send_signal(signal.SIGTERM)  # stops everything it started
    assert await asyncio.wait_for(run.proc.wait(), 20.0) == 0
    assert not any(alive(pid) for pid in pids)


def test_without_nginx_it_says_so_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sio_cluster, "find_nginx", lambda: None)
    monkeypatch.setattr(sio_cluster, "Cluster", None)  # would fail if anything were started
    assert main(["cluster", "--nodes", "2"]) == 2
    assert "`nginx` not found" in capsys.readouterr().err
