"""The soak benchmark (``benchmarks/soak.py``) in a short, bounded form: nothing dropped, nothing
leaked.

200 idle WebSocket clients held 3 s with a 0.5 s pingInterval, then 300 connect/emit/disconnect
cycles over every transport, each part against a fresh server subprocess. The full run
(``python -m benchmarks.soak``: 2000 clients, 30 s, 3000 cycles) reports figures; this asserts
only what must hold at any size. No assertion is on a duration: the time limit only bounds the run.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ["--idle", "200", "--hold", "3", "--cycles", "300", "--ping-interval", "0.5"]
FD_SLACK = 2  # e.g. a connection the kernel has not finished closing


def test_soak_smoke_nothing_dropped_nothing_leaked(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "soak.json"
    cmd = [sys.executable, "-m", "benchmarks.soak", *SMOKE, "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=40)
    report = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, report
    assert "(a) idle WebSocket clients" in proc.stdout and "(b) connect/emit" in proc.stdout
    results = json.loads(out.read_text())
    idle, cycles = results["idle"], results["cycles"]

    # (a) every idle client stayed connected, answering pings, and left nothing behind
    assert idle["connected"] == 200 and idle["connect_errors"] == 0, idle
    assert idle["dropped"] == 0 and idle["server_lost"] == 0, idle
    assert idle["pings_min_per_client"] >= 1, idle  # the heartbeat did run
    assert idle["rss_per_conn_kib"] > 0, idle
    assert idle["fds_held"] >= idle["fds_base"] + 200, idle  # one per client, seen from /proc
    assert abs(idle["fds_after_close"] - idle["fds_base"]) <= FD_SLACK, idle
    assert idle["tasks_after_close"] == idle["tasks_base"], idle
    assert idle["sessions_after_close"] == 0, idle

    # (b) every cycle worked, on every transport; after the warm-up nothing grows
    assert cycles["done"] == 300 and cycles["failures"] == 0, cycles
    assert set(cycles["by_mode"]) == {"websocket", "polling", "upgrade", "upgrade-abort"}, cycles
    assert cycles["rss_growth_pct"] < 10.0, cycles
    assert abs(cycles["fds_end"] - cycles["fds_base"]) <= FD_SLACK, cycles
    assert cycles["tasks_end"] == cycles["tasks_base"], cycles
    assert cycles["sessions_end"] == cycles["sockets_end"] == cycles["rooms_end"] == 0, cycles
    # fewer new objects than cycles after the warm-up: nothing is kept per connection
    assert cycles["objects_end"] - cycles["objects_warm"] < cycles["done"] - cycles["warm_up"], (
        cycles
    )
    # the driver's clients (our sio_teach.Client) leave no task or fd behind either
    assert cycles["driver_tasks_end"] == cycles["driver_tasks_base"], cycles
    assert abs(cycles["driver_fds_end"] - cycles["driver_fds_base"]) <= FD_SLACK, cycles

    # both server subprocesses are gone
    for part in (idle, cycles):
        assert not pathlib.Path(f"/proc/{part['server_pid']}").exists(), part["server_pid"]
