"""Cross-node broadcast through Redis: latency and fan-out for 1, 2 and 4 nodes, per adapter.

    python -m benchmarks.cross_node                  # pubsub and streams, 1, 2, 4 nodes: ~10 s
    python -m benchmarks.cross_node --samples 500 --messages 5000   # the README's figures, ~15 s
    python -m benchmarks.cross_node --adapter streams --nodes 1,2
    python -m benchmarks.cross_node --messages 20 --samples 5 --nodes 1,2 --time-limit 30  # smoke

Starts a throw-away Redis per adapter (``sio_teach.adapters.redis_server``) and bench-server
nodes as child processes (``python -m sio_teach.examples.bench_server --adapter redis://…
--kind pubsub|streams``), then connects :class:`sio_teach.Client` (WebSocket) in this process: a
*sender* on node 1 and one *receiver* on each node. The sender emits ``bcast``; node 1 emits
``msg`` to room ``r`` (every client): its own receiver gets it at once, every other node through
Redis. The first row is one node on the in-memory adapter (no Redis at all); then, for each
``--adapter``, the nodes are started one by one and measured at each count of ``--nodes``:

* **latency**: one ``bcast`` at a time, from the sender's emit until *every* receiver has the
  ``msg`` (with 2 or more nodes, the last one to arrive crossed Redis): p50, p99;
* **fan-out**: ``--messages`` ``bcast`` emitted at once, until every receiver has them all:
  ``msg/s`` counts deliveries (messages × receivers), ``bcast/s`` broadcasts; meanwhile the CPU
  time of this process (the clients), of the nodes together and of Redis, as a share of one core
  (from ``/proc``: ``-`` elsewhere). On a 2-core machine their sum cannot pass 200 %.

Bounded: every wait has a timeout, and the whole run stops at ``--time-limit`` seconds (a set-up
cut short reports what it measured; one not reached is not printed). Every process — Redis, the
nodes, the clients — shares this machine's cores: compare rows, not absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sio_teach import Client
from sio_teach.adapters.redis_server import RedisServer

ADAPTERS = ("pubsub", "streams")  # the Redis adapters measured (bench_server's --kind)
FIRST = 1_000_000  # fan-out messages are numbered from here, apart from the latency ones


@dataclass
class Row:
    setup: str
    samples: list[float]  # latencies, seconds
    sent: int = 0
    received: int = 0  # deliveries: messages × receivers
    seconds: float = 0.0
    receivers: int = 1
    cpu: tuple[float | None, ...] = (None, None, None)  # clients, nodes, Redis: s per s

    def cells(self) -> list[str]:
        lat = sorted(self.samples)
        p50 = f"{1000 * statistics.median(lat):.2f}" if lat else "-"
        p99 = f"{1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]:.2f}" if lat else "-"
        rate = f"{self.received / self.seconds:,.0f}" if self.seconds else "-"
        bcasts = f"{self.received / self.receivers / self.seconds:,.0f}" if self.seconds else "-"
        wanted = self.sent * self.receivers
        cpu = ["-" if share is None else f"{100 * share:.0f} %" for share in self.cpu]
        return [
            self.setup,
            str(len(lat)),
            p50,
            p99,
            f"{self.received}/{wanted}",
            rate,
            bcasts,
            *cpu,
        ]


@dataclass
class Node:
    """A bench_server child process: its URL and its pid (for its CPU time)."""

    url: str
    pid: int


def cpu_seconds(pids: list[int]) -> float | None:
    """The CPU time (user + system, seconds) the processes ``pids`` have used so far, from
    ``/proc/PID/stat``; None where there is no ``/proc`` (or a process is gone)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for pid in pids:
        try:
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def setup_name(nodes: int, adapter: str) -> str:
    """A row's name: ``1 node, in-memory``, ``2 nodes, pubsub`` …"""
    return f"{nodes} node{'s' if nodes > 1 else ''}, {adapter}"


@contextlib.asynccontextmanager
async def bench_node(
    adapter: str | None, kind: str = "pubsub", timeout: float = 15.0
) -> AsyncIterator[Node]:
    """A bench_server child process on a free port; yields it."""
    with socket.socket() as sock:  # a free port of 127.0.0.1
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [sys.executable, "-m", "sio_teach.examples.bench_server", "--port", str(port)]
    if adapter:
        args += ["--adapter", adapter, "--kind", kind]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
        if "bench server on" not in line:
            raise RuntimeError(f"bench_server did not start: {line!r}")
        yield Node(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), 5.0)
        except TimeoutError:
            proc.kill()


async def measure(
    setup: str, nodes: list[Node], redis_pid: int | None, args: argparse.Namespace, deadline: float
) -> Row:
    """The sender on ``nodes[0]``, one receiver on each node; latency, then fan-out."""
    urls = [node.url for node in nodes]
    row = Row(setup, [], receivers=len(urls))
    arrived: list[dict[int, float]] = [{} for _ in urls]
    waiters: dict[int, asyncio.Future[None]] = {}
    everything = asyncio.Event()

    def on_msg(box: dict[int, float], seq: int) -> None:
        box[seq] = time.perf_counter()
        if seq in waiters and all(seq in other for other in arrived):
            if not waiters[seq].done():
                waiters[seq].set_result(None)
        if seq >= FIRST and sum(map(len, arrived)) == args.messages * len(urls):
            everything.set()

    sender = Client(urls[0], transports=["websocket"], reconnection=False)
    receivers = [Client(url, transports=["websocket"], reconnection=False) for url in urls]
    for box, receiver in zip(arrived, receivers, strict=True):
        receiver.on("msg", lambda seq, _text, box=box: on_msg(box, seq))
    for client in (sender, *receivers):
        await client.connect(timeout=5.0)
    payload = "x" * 32
    try:
        loop = asyncio.get_running_loop()
        for seq in range(args.samples):  # latency: one at a time
            if time.monotonic() > deadline:
                break
            waiters[seq] = loop.create_future()
            start = time.perf_counter()
            sender.emit("bcast", seq, payload)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiters[seq], 2.0)
                row.samples.append(max(box[seq] for box in arrived) - start)
        for box in arrived:
            box.clear()
        watched = [[node.pid for node in nodes], [redis_pid] if redis_pid else []]
        cpu_before = [time.process_time(), *(cpu_seconds(pids) for pids in watched)]
        start = time.perf_counter()  # fan-out: all at once
        for seq in range(FIRST, FIRST + args.messages):
            sender.emit("bcast", seq, payload)
            row.sent += 1
        left = max(0.1, min(args.per_setup, deadline - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everything.wait(), left)
        row.received = sum(map(len, arrived))
        last = [max(box.values()) for box in arrived if box]
        row.seconds = (max(last) if last else time.perf_counter()) - start
        cpu_after = [time.process_time(), *(cpu_seconds(pids) for pids in watched)]
        wall = time.perf_counter() - start
        row.cpu = tuple(
            None if a is None or b is None or (i == 2 and not redis_pid) else (a - b) / wall
            for i, (a, b) in enumerate(zip(cpu_after, cpu_before, strict=True))
        )
    finally:
        for client in (sender, *receivers):
            await asyncio.wait_for(client.close(), 5.0)
    return row


async def run(args: argparse.Namespace) -> list[Row]:
    deadline = time.monotonic() + args.time_limit
    rows = []
    async with bench_node(None) as alone:
        rows.append(await measure(setup_name(1, "in-memory"), [alone], None, args, deadline))
    for adapter in args.adapter:
        async with RedisServer() as redis, contextlib.AsyncExitStack() as nodes:
            started: list[Node] = []
            redis_pid = redis.process.pid if redis.process is not None else None
            for count in args.nodes:
                if time.monotonic() > deadline:
                    break
                while len(started) < count:  # the nodes so far stay: add the missing ones
                    started.append(await nodes.enter_async_context(bench_node(redis.url, adapter)))
                name = setup_name(count, adapter)
                rows.append(await measure(name, started, redis_pid, args, deadline))
    return rows


def table(rows: list[Row]) -> str:
    head = ["set-up", "samples", "p50 ms", "p99 ms", "received", "msg/s", "bcast/s"]
    head += ["clients CPU", "nodes CPU", "Redis CPU"]
    lines = [head] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]

    def fmt(line: list[str]) -> str:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells)

    return "\n".join([fmt(lines[0]), "  ".join("-" * w for w in widths), *map(fmt, lines[1:])])


def csv_of(kind: type, choices: tuple[str, ...] | None = None) -> object:
    """An argparse type: a comma-separated list of ``kind`` (each one of ``choices``, if given)."""

    def parse(text: str) -> list[object]:
        items = [kind(item) for item in text.split(",") if item]
        if not items or (choices and any(item not in choices for item in items)):
            raise argparse.ArgumentTypeError(f"a comma-separated list of {choices or kind}")
        return items

    return parse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=csv_of(str, ADAPTERS), default=list(ADAPTERS),
                        help="pubsub,streams (the default: both)")  # fmt: skip
    parser.add_argument("--nodes", type=csv_of(int), default=[1, 2, 4],
                        help="node counts, increasing (default 1,2,4)")  # fmt: skip
    parser.add_argument("--messages", type=int, default=1000, help="fan-out: bcasts at once")
    parser.add_argument("--samples", type=int, default=200, help="latency: bcasts one at a time")
    parser.add_argument("--per-setup", type=float, default=15.0, help="fan-out wait, seconds")
    parser.add_argument("--time-limit", type=float, default=150.0, help="whole run, seconds")
    args = parser.parse_args(argv)
    args.nodes = sorted(set(args.nodes))
    print(table(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
