"""Smoke runs: the cross-node benchmark with tiny counts, and bench_server's ``--adapter``
(``--kind pubsub``, ``--kind streams``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from tests.adapters.conftest import WAIT
from tests.conftest import ROOT, free_port


def test_cross_node_benchmark_prints_its_table() -> None:
    command = [sys.executable, "-m", "benchmarks.cross_node", "--messages", "20", "--samples", "5"]
    done = subprocess.run(
        [*command, "--nodes", "1,2", "--time-limit", "30"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["set-up", "samples", "p50"], done.stdout
    rows = [  # with 2 nodes, 2 receivers: every message is delivered twice
        ("1 node, in-memory", "20/20"),
        ("1 node, pubsub", "20/20"),
        ("2 nodes, pubsub", "40/40"),
        ("1 node, streams", "20/20"),
        ("2 nodes, streams", "40/40"),
    ]
    for line, (setup, received) in zip(lines[2:], rows, strict=True):
        assert line.startswith(setup) and f" {received} " in line, done.stdout


@pytest.mark.parametrize("kind", ["pubsub", "streams"])
async def test_bench_server_nodes_share_a_redis(redis_server: Any, client: Any, kind: str) -> None:
    """``python -m sio_teach.examples.bench_server --adapter redis://… --kind KIND``: a ``bcast``
    on node A reaches room ``r`` on node B."""
    procs, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            procs.append(
                await asyncio.create_subprocess_exec(
                    *[sys.executable, "-m", "sio_teach.examples.bench_server", "--port", str(port)],
                    *["--adapter", redis_server.url, "--kind", kind],
                    cwd=ROOT,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
            line = await asyncio.wait_for(procs[-1].stdout.readline(), 15.0)  # type: ignore[union-attr]
            assert b"bench server on" in line
            urls.append(f"http://127.0.0.1:{port}")
        a, b = await client(urls[0]), await client(urls[1])
        a.client.emit("bcast", "across", b"\x01")
        assert await b.wait("msg", 1, WAIT) == [("across", b"\x01")]
    finally:
        for proc in procs:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), WAIT)
