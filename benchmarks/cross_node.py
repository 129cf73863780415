"""Cross-node broadcast through Redis: latency and throughput, next to a single node.

    python -m benchmarks.cross_node                  # 2000 messages, 300 latency samples, < 1 min
    python -m benchmarks.cross_node --messages 20 --samples 5 --time-limit 20   # a smoke run

Starts a throw-away Redis (``sio_teach.adapters.redis_server``) and bench-server nodes as child
processes (``python -m sio_teach.examples.bench_server [--adapter redis://…]``), then connects two
:class:`sio_teach.Client` (WebSocket) in this process: a *sender* and a *receiver*. The sender emits
``bcast``; the bench app emits ``msg`` to room ``r`` (every client). Three set-ups:

=======================  ========================================================================
1 node, in-memory        sender and receiver on node A, the default adapter
1 node, redis            the same, node A on the Redis adapter (the cost of publishing)
2 nodes, redis           sender on node A, receiver on node B: every message crosses Redis
=======================  ========================================================================

* **latency**: one ``bcast`` at a time, from the sender's emit to the receiver's ``msg`` (p50, p99);
* **throughput**: ``--messages`` ``bcast`` emitted at once, until the receiver has them all.

Bounded: every wait has a timeout, and the whole run stops at ``--time-limit`` seconds (a set-up
cut short reports what it measured). Both clients share this process's loop, so the figures
include the Python client's cost; compare rows, not absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sio_teach import Client
from sio_teach.adapters.redis_server import RedisServer

SETUPS = ("1 node, in-memory", "1 node, redis", "2 nodes, redis")
FIRST = 1_000_000  # throughput messages are numbered from here, apart from the latency ones


@dataclass
class Row:
    setup: str
    samples: list[float]  # latencies, seconds
    sent: int = 0
    received: int = 0
    seconds: float = 0.0

    def cells(self) -> list[str]:
        lat = sorted(self.samples)
        p50 = f"{1000 * statistics.median(lat):.2f}" if lat else "-"
        p99 = f"{1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]:.2f}" if lat else "-"
        rate = f"{self.received / self.seconds:,.0f}" if self.seconds else "-"
        return [self.setup, str(len(lat)), p50, p99, f"{self.received}/{self.sent}", rate]


@contextlib.asynccontextmanager
async def bench_node(adapter: str | None, timeout: float = 15.0) -> AsyncIterator[str]:
    """A bench_server child process on a free port; yields its URL."""
    with socket.socket() as sock:  # a free port of 127.0.0.1
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [sys.executable, "-m", "sio_teach.examples.bench_server", "--port", str(port)]
    proc = subprocess.Popen(
        args + (["--adapter", adapter] if adapter else []), stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
        if "bench server on" not in line:
            raise RuntimeError(f"bench_server did not start: {line!r}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), 5.0)
        except TimeoutError:
            proc.kill()


async def measure(
    setup: str, sender_url: str, receiver_url: str, args: argparse.Namespace, deadline: float
) -> Row:
    row = Row(setup, [])
    arrived: dict[int, float] = {}
    waiters: dict[int, asyncio.Future[None]] = {}
    everything = asyncio.Event()

    def on_msg(seq: int, _text: str) -> None:
        arrived[seq] = time.perf_counter()
        if seq in waiters and not waiters[seq].done():
            waiters[seq].set_result(None)
        if seq >= FIRST and len(arrived) == args.messages:
            everything.set()

    sender = Client(sender_url, transports=["websocket"], reconnection=False)
    receiver = Client(receiver_url, transports=["websocket"], reconnection=False)
    receiver.on("msg", on_msg)
    await sender.connect(timeout=5.0)
    await receiver.connect(timeout=5.0)
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
                row.samples.append(arrived[seq] - start)
        arrived.clear()
        start = time.perf_counter()  # throughput: all at once
        for seq in range(FIRST, FIRST + args.messages):
            sender.emit("bcast", seq, payload)
            row.sent += 1
        left = max(0.1, min(args.per_setup, deadline - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everything.wait(), left)
        row.received = len(arrived)
        row.seconds = (max(arrived.values()) if arrived else time.perf_counter()) - start
    finally:
        await asyncio.wait_for(sender.close(), 5.0)
        await asyncio.wait_for(receiver.close(), 5.0)
    return row


async def run(args: argparse.Namespace) -> list[Row]:
    deadline = time.monotonic() + args.time_limit
    rows = []
    async with RedisServer() as redis:
        async with bench_node(None) as alone:
            rows.append(await measure(SETUPS[0], alone, alone, args, deadline))
        async with bench_node(redis.url) as a:
            rows.append(await measure(SETUPS[1], a, a, args, deadline))
            async with bench_node(redis.url) as b:
                rows.append(await measure(SETUPS[2], a, b, args, deadline))
    return rows


def table(rows: list[Row]) -> str:
    head = ["set-up", "samples", "p50 ms", "p99 ms", "received", "msg/s"]
    lines = [head] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]

    def fmt(line: list[str]) -> str:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells)

    return "\n".join([fmt(lines[0]), "  ".join("-" * w for w in widths), *map(fmt, lines[1:])])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="throughput: bcasts at once")
    parser.add_argument("--samples", type=int, default=300, help="latency: bcasts one at a time")
    parser.add_argument("--per-setup", type=float, default=20.0, help="throughput wait, seconds")
    parser.add_argument("--time-limit", type=float, default=120.0, help="whole run, seconds")
    args = parser.parse_args(argv)
    print(table(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
