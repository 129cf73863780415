"""Heartbeat hold: N idle WebSocket clients on a fast heartbeat, none may be dropped.

    python -m benchmarks.heartbeat_hold                     # 2000 clients, 20 s, sio_teach only
    python -m benchmarks.heartbeat_hold --servers ours,node,ps_aiohttp
    python -m benchmarks.heartbeat_hold --clients 200 --hold 3 --json /tmp/hold.json   # smoke

Each server runs the bench app (``sio_teach.examples.bench_server`` and its peers) with
pingInterval 0.3 s and pingTimeout 0.2 s (the conformance app's settings), started afresh on a free
127.0.0.1 port and pinned to core 0 (``taskset``, when there is one). The clients are the official
npm ``socket.io-client`` in one Node process pinned to core 1 (``benchmarks/hold.js``): one client
per connection, WebSocket only, no reconnection, ``--batch`` connecting at a time. They connect,
stay idle for ``--hold`` seconds (only pings and pongs cross the wire), then ``--ack-sample`` of
them are each asked for one ack (``echo``, 2 s limit).

Reported per server: clients dropped while the others were still connecting and during the hold,
by the reason socket.io-client gives; pings the clients received; acks answered; and the server's
CPU time during the hold (utime + stime from ``/proc/PID/stat``) per held connection per second.
The figures also go to ``--json``. Nothing is asserted here (``tests/reliability/
test_heartbeat_hold.py`` runs a small form and asserts that none is dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from typing import Any

from benchmarks.run import (
    RESULTS,
    SERVERS,
    LoadGen,
    RunError,
    ServerProcess,
    ServerSpec,
    cpu_seconds,
)
from benchmarks.soak import raise_fd_limit

HOLD_SERVERS = ("ours", "node", "ps_aiohttp", "ps_tornado")


def spec(name: str, ping_interval: float, ping_timeout: float) -> ServerSpec:
    """The bench server ``name`` of ``benchmarks/run.py``, with these heartbeat settings."""
    base = SERVERS[name]
    flags = ["--ping-interval", str(ping_interval), "--ping-timeout", str(ping_timeout)]
    return ServerSpec(base.label, [*base.command, *flags], python=base.python)


def runqueue_wait_s(pid: int) -> float:
    """Time ``pid`` has spent runnable but waiting for a CPU (``/proc/PID/schedstat``), in s:
    what other work on its core took from it."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def hold_one(name: str, opts: argparse.Namespace) -> dict[str, Any]:
    """Start server ``name``, connect and hold the clients, return the figures."""
    server = ServerProcess(name, spec(name, opts.ping_interval, opts.ping_timeout))
    server.start()
    assert server.proc is not None
    pid = server.proc.pid
    options = {
        "url": server.url,
        "clients": opts.clients,
        "connectBatch": opts.batch,
        "holdSeconds": opts.hold,
        "ackSample": opts.ack_sample,
        "ackEvent": "echo",
    }
    wait_start = runqueue_wait_s(pid)
    clients = LoadGen(options, script="benchmarks/hold.js")
    try:
        connected = clients.expect("connected", timeout=90.0)  # hold.js stops connecting at 60 s
        cpu0, t0, wait0 = cpu_seconds(pid), time.monotonic(), runqueue_wait_s(pid)
        clients.expect("held", timeout=opts.hold + 30.0)
        cpu1, t1, wait1 = cpu_seconds(pid), time.monotonic(), runqueue_wait_s(pid)
        result = clients.expect("result", timeout=30.0)
    finally:
        clients.close()
        server.stop()
    held = max(1, connected["connected"])
    cpu_per_conn_s = (cpu1 - cpu0) / held / (t1 - t0)
    result.pop("event", None)
    return {
        "server": name,
        "label": server.spec.label,
        **result,
        "server_cpu_hold_s": round(cpu1 - cpu0, 2),
        "server_cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "server_cpu_us_per_conn_s": round(cpu_per_conn_s * 1e6, 2),
        # CPU time the server waited for while runnable (its core busy with other work)
        "server_runqueue_wait_s": {
            "connecting": round(wait0 - wait_start, 2),
            "held": round(wait1 - wait0, 2),
        },
    }


def reasons(by_reason: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(by_reason.items())) or "-"


def table(rows: list[dict[str, Any]]) -> str:
    head = ("server", "connected", "dropped connecting", "dropped held", "pings", "acks", "CPU")
    head += ("srv wait", "gen lag")
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append((r["label"], "error: " + r["error"][:60], *[""] * (len(head) - 2)))
            continue
        lines.append(
            (
                r["label"],
                f"{r['connected']}/{r['clients']} in {r['connect_s']:.1f} s",
                f"{r['dropped_connecting']} ({reasons(r['dropped_reasons']['connecting'])})",
                f"{r['dropped_held']} ({reasons(r['dropped_reasons']['held'])})",
                str(r["pings_held"]),
                f"{r['acks_answered']}/{r['acks_asked']}",
                f"{r['server_cpu_pct']} % = {r['server_cpu_us_per_conn_s']} µs/conn/s",
                "{connecting} / {held} s".format(**r["server_runqueue_wait_s"]),
                "{connecting} / {held} ms".format(**r["client_max_lag_ms"]),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="ours", help=f"comma-separated: {HOLD_SERVERS}")
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--hold", type=float, default=20.0, help="seconds")
    parser.add_argument("--batch", type=int, default=50, help="clients connecting at a time")
    parser.add_argument("--ack-sample", type=int, default=100, help="held clients asked an ack")
    parser.add_argument("--ping-interval", type=float, default=0.3, help="seconds")
    parser.add_argument("--ping-timeout", type=float, default=0.2, help="seconds")
    parser.add_argument("--json", type=pathlib.Path, default=RESULTS / "heartbeat_hold.json")
    opts = parser.parse_args(argv)
    names = [n for n in opts.servers.split(",") if n]
    unknown = set(names) - set(HOLD_SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; known: {HOLD_SERVERS}")
    fd_limit = raise_fd_limit(opts.clients + 200)  # inherited by both subprocesses
    if fd_limit < opts.clients + 100:
        parser.error(f"the fd limit ({fd_limit}) is too low for {opts.clients} clients")
    rows = []
    for name in names:
        print(f"{name}: {opts.clients} clients, holding {opts.hold:g} s ...", file=sys.stderr)
        try:
            rows.append(hold_one(name, opts))
        except RunError as error:
            rows.append({"server": name, "label": SERVERS[name].label, "error": str(error)})
    print(
        f"{opts.clients} idle WebSocket clients, pingInterval {opts.ping_interval:g} s, "
        f"pingTimeout {opts.ping_timeout:g} s, held {opts.hold:g} s "
        f"(pings: received by the clients during the hold)"
    )
    print(
        "srv wait: the server waited for its core (other work), connecting / held; "
        "gen lag: the clients' longest event-loop stall, connecting / held"
    )
    print(table(rows))
    results = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": " ".join(["python", "-m", "benchmarks.heartbeat_hold", *sys.argv[1:]]),
            "cpus": os.cpu_count(),
            "ping_interval_s": opts.ping_interval,
            "ping_timeout_s": opts.ping_timeout,
        },
        "servers": rows,
    }
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures: {opts.json}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
