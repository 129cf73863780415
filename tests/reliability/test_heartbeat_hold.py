"""The heartbeat hold (``benchmarks/heartbeat_hold.py``) in a short, bounded form: none dropped.

200 idle WebSocket clients (the official npm ``socket.io-client``, one per connection) held 3 s on
our server at pingInterval 0.3 s / pingTimeout 0.2 s, the conformance settings. The full run
(``python -m benchmarks.heartbeat_hold``: 2000 clients, 20 s) reports figures; this asserts only
what must hold at any size. No assertion is on a duration: the time limit only bounds the run.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from tests.conftest import node_executable

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ["--servers", "ours", "--clients", "200", "--hold", "3", "--ack-sample", "20"]


def test_idle_clients_on_a_fast_heartbeat_none_dropped(tmp_path: pathlib.Path) -> None:
    node_executable()  # fails with a clear message when Node or node_modules is missing
    out = tmp_path / "hold.json"
    cmd = [sys.executable, "-m", "benchmarks.heartbeat_hold", *SMOKE, "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=90)
    report = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, report
    (hold,) = json.loads(out.read_text())["servers"]
    assert hold["connected"] == 200 and hold["connect_errors"] == 0, hold
    assert hold["dropped_connecting"] == 0 and hold["dropped_held"] == 0, hold
    assert hold["still_connected"] == 200, hold
    assert hold["pings_held"] >= 200, hold  # the heartbeat did run, for every client
    assert hold["acks_answered"] == hold["acks_asked"] == 20, hold
