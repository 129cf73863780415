"""The benchmark harness (benchmarks/) still runs: one tiny scenario against our server.

The full benchmark is `make bench`; it is not part of `make test`, only this smoke run is.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("server", ["ours", "ours_uvloop"])
def test_quick_bench_run_writes_a_positive_figure(tmp_path: pathlib.Path, server: str) -> None:
    out = tmp_path / "bench.jsonl"
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--servers", server]
    cmd += ["--scenarios", "ack_rtt", "--set", "ack_rtt.count=100", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["kind"] == "meta"
    runs = [r for r in records if r.get("kind") == "run"]
    assert len(runs) == 1, records
    run = runs[0]
    assert (run["server"], run["scenario"]) == (server, "ack_rtt")
    assert run["messages"] == 100
    assert run["msgs_per_s"] > 0 and run["latency_p50_ms"] > 0
    assert run["cpu_us_per_msg"] is not None and run["cpu_us_per_msg"] >= 0
    assert "ack_rtt" in proc.stdout and "sio_teach" in proc.stdout  # the table was printed


def test_compression_bench_quick_run(tmp_path: pathlib.Path) -> None:
    """``benchmarks/compression.py``: with permessage-deflate the same acks take fewer bytes."""
    out = tmp_path / "deflate.jsonl"
    cmd = [sys.executable, "-m", "benchmarks.compression", "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)
    off, on = [json.loads(line) for line in out.read_text().splitlines()]
    assert (off["negotiated"], on["negotiated"]) == ("", "permessage-deflate")
    assert off["messages"] == on["messages"] == 200
    assert on["wire_bytes_per_msg"] < off["wire_bytes_per_msg"] / 2
    assert off["cpu_us_per_msg"] >= 0 and on["cpu_us_per_msg"] >= 0


@pytest.mark.parametrize("floor", ["tornado_polling", "tornado_lean"])
def test_the_polling_floors_answer_the_polling_scenario(tmp_path: pathlib.Path, floor: str) -> None:
    """The two long-polling floors speak enough Engine.IO for the load generator's acks."""
    out = tmp_path / "bench.jsonl"
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--servers", floor]
    cmd += ["--scenarios", "ack_rtt,polling", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = [json.loads(line) for line in out.read_text().splitlines()][1:]
    assert [(r["server"], r["scenario"]) for r in runs] == [(floor, "polling")]  # polling only
    assert runs[0]["messages"] > 0 and runs[0]["cpu_us_per_msg"] is not None
