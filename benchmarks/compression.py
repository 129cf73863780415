"""What WebSocket compression costs and saves: bytes on the wire and server CPU per message,
with permessage-deflate off and on, for JSON payloads of a few sizes.

    python -m benchmarks.compression                  # sizes 256, 4096, 32768 B; 500 acks each
    python -m benchmarks.compression --quick          # one size, a few acks (the smoke run)
    python -m benchmarks.compression --sizes 1000,8000 --count 2000 --out results/deflate.jsonl

Each run starts the bench server (``sio_teach/examples/bench_server.py``, with or without
``--per-message-deflate``) pinned to core 0, and ``benchmarks/compression.js`` (the official
socket.io-client, offering permessage-deflate as it does by default in Node) on core 1; one client
does ``emitWithAck("echo", payload)`` one after another. One "message" is one ack round trip: the
payload goes to the server and comes back. Bytes on the wire are the client's TCP counts (both
directions, WebSocket framing included); CPU is the server's utime + stime (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from typing import Any

from benchmarks.run import (
    ROOT,
    LoadGen,
    ServerProcess,
    ServerSpec,
    cpu_seconds,
    settle,
)

SERVER = [sys.executable, "-m", "sio_teach.examples.bench_server", "--port", "{port}"]


def measure(deflate: bool, size: int, count: int, warmup: int) -> dict[str, Any]:
    """One server, one client, one payload size: the record of the measured phase."""
    command = SERVER + (["--per-message-deflate"] if deflate else [])
    server = ServerProcess("ours_deflate" if deflate else "ours", ServerSpec("sio_teach", command))
    server.start()
    try:
        assert server.proc is not None
        pid = server.proc.pid
        gen = LoadGen(
            {"url": server.url, "size": size, "count": count, "warmup": warmup},
            script="benchmarks/compression.js",
        )
        try:
            ready = gen.expect("ready", timeout=60)
            settle(pid, limit=1.0)
            cpu0 = cpu_seconds(pid)
            gen.send("go")
            result = gen.expect("result", timeout=60)
            cpu1 = cpu_seconds(pid)
        finally:
            gen.close()
    finally:
        server.stop()
    messages = int(result["messages"])
    return {
        "kind": "run",
        "per_message_deflate": deflate,
        "negotiated": ready.get("extensions") or "",
        "payload_bytes": ready["payloadBytes"],
        "messages": messages,
        "wire_bytes_per_msg": round((result["bytes_read"] + result["bytes_written"]) / messages, 1),
        "cpu_us_per_msg": round((cpu1 - cpu0) / messages * 1e6, 1),
        "elapsed_s": round(result["elapsed_s"], 4),
    }


def table(records: list[dict[str, Any]]) -> str:
    lines = [f"{'payload':>8} {'deflate':>8} {'wire B/msg':>11} {'ratio':>6} {'CPU µs/msg':>11}"]
    plain = {r["payload_bytes"]: r for r in records if not r["per_message_deflate"]}
    for r in records:
        base = plain.get(r["payload_bytes"])
        ratio = r["wire_bytes_per_msg"] / base["wire_bytes_per_msg"] if base else 1.0
        lines.append(
            f"{r['payload_bytes']:>8} {'on' if r['per_message_deflate'] else 'off':>8}"
            f" {r['wire_bytes_per_msg']:>11.0f} {ratio:>6.2f} {r['cpu_us_per_msg']:>11.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,4096,32768", help="payload sizes in bytes")
    parser.add_argument("--count", type=int, default=500, help="acks measured per run")
    parser.add_argument("--quick", action="store_true", help="one size (4096), 200 acks")
    parser.add_argument("--out", type=pathlib.Path, help="write the records (JSON lines)")
    args = parser.parse_args(argv)
    sizes = [4096] if args.quick else [int(s) for s in args.sizes.split(",")]
    count = 200 if args.quick else args.count
    records = []
    for size in sizes:
        for deflate in (False, True):
            records.append(measure(deflate, size, count, warmup=10 if args.quick else 50))
            time.sleep(0.1)
    print(table(records))
    if args.out is not None:
        path = args.out if args.out.is_absolute() else ROOT / args.out
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
