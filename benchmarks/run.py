"""Run the benchmark: every server under test against the one Node load generator.

    python -m benchmarks.run                      # the full run (5 rounds), a few minutes
    python -m benchmarks.run --quick              # a tiny smoke run
    python -m benchmarks.run --servers ours,ps_aiohttp --scenarios ack_rtt,fanout --rounds 3
    python -m benchmarks.run --py-spy /tmp/prof --servers ours   # profile the measured phases

For each round, each server (in an order rotated every round) is started afresh on a free
127.0.0.1 port, pinned to core 0 (``taskset -c 0``), and each scenario runs against it with the load
generator (``benchmarks/loadgen.js``) pinned to core 1. Around the measured phase only (connections
and warm-up are excluded) the driver reads both processes' CPU time (utime + stime from
``/proc/PID/stat``) and the server's RSS (``VmRSS``). The headline figure is **server CPU µs per
message**: it barely depends on the load generator or on scheduling noise, unlike msgs/s.

Output: a table of medians with ratios against python-socketio on aiohttp, one JSON line per
measurement in ``benchmarks/results/latest.jsonl`` (``--out``), and warnings where the load
generator rather than the server was the bottleneck.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime
import json
import os
import pathlib
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BASELINE = "ps_aiohttp"


@dataclass(frozen=True)
class ServerSpec:
    label: str
    command: list[str]  # "{port}" is replaced by the port
    websocket_only: bool = False  # cannot run the polling scenario
    polling_only: bool = False  # runs the polling scenario only
    python: bool = True  # can be profiled with py-spy


SERVERS: dict[str, ServerSpec] = {
    "ours": ServerSpec(
        "sio_teach (tornado)",
        [sys.executable, "-m", "sio_teach.examples.bench_server", "--port", "{port}"],
    ),
    "ours_uvloop": ServerSpec(
        "sio_teach (tornado, uvloop)",
        [sys.executable, "-m", "sio_teach.examples.bench_server", "--port", "{port}", "--uvloop"],
    ),
    "ps_tornado": ServerSpec(
        "python-socketio (tornado)",
        [sys.executable, "-m", "benchmarks.peer_socketio_tornado", "--port", "{port}"],
    ),
    "ps_aiohttp": ServerSpec(
        "python-socketio (aiohttp)",
        [sys.executable, "-m", "benchmarks.peer_socketio_aiohttp", "--port", "{port}"],
    ),
    "tornado_bare": ServerSpec(
        "bare tornado WS (floor)",
        [sys.executable, "-m", "benchmarks.peer_tornado_bare", "--port", "{port}"],
        websocket_only=True,
    ),
    "tornado_polling": ServerSpec(
        "bare tornado HTTP (floor)",
        [sys.executable, "-m", "benchmarks.peer_tornado_polling", "--port", "{port}"],
        polling_only=True,
    ),
    "tornado_lean": ServerSpec(
        "bare tornado HTTP, lean (floor)",
        [sys.executable, "-m", "benchmarks.peer_tornado_polling", "--port", "{port}", "--lean"],
        polling_only=True,
    ),
    "node": ServerSpec(
        "node socket.io 4.8",
        ["node", "benchmarks/peer_node.js", "--port", "{port}"],
        python=False,
    ),
}


@dataclass(frozen=True)
class Scenario:
    title: str
    unit: str  # what one "message" is
    full: dict[str, Any]  # load generator options for the full run
    quick: dict[str, Any]  # ... and for --quick
    websocket_only: bool = True


# The order matters: conn_memory first, while the server process is fresh.
SCENARIOS: dict[str, Scenario] = {
    "conn_memory": Scenario(
        "idle WebSocket connections: RSS and CPU to open them",
        "connection",
        dict(clients=500, warmup=20, maxSeconds=10),
        dict(clients=20, warmup=5, maxSeconds=5),
    ),
    "ack_rtt": Scenario(
        "ack round trip, 1 client, sequential",
        "ack",
        dict(clients=1, inflight=1, count=2000, warmup=300, maxSeconds=3),
        dict(clients=1, inflight=1, count=150, warmup=20, maxSeconds=3),
    ),
    "ack_throughput": Scenario(
        "ack throughput, 50 clients x 50 in flight",
        "ack",
        dict(clients=50, inflight=50, count=10000, warmup=2500, maxSeconds=3),
        dict(clients=5, inflight=5, count=200, warmup=25, maxSeconds=3),
    ),
    "fanout": Scenario(
        "fan-out: 1 bcast to 200 clients in a room",
        "delivered msg",
        dict(clients=200, inflight=4, count=100, warmup=200, maxSeconds=3),
        dict(clients=10, inflight=2, count=20, warmup=10, maxSeconds=3),
    ),
    "polling": Scenario(
        "long-polling only, 20 clients x 4 acks in flight",
        "ack",
        dict(clients=20, inflight=4, count=1500, warmup=200, maxSeconds=3),
        dict(clients=2, inflight=2, count=40, warmup=4, maxSeconds=3),
        websocket_only=False,
    ),
}

# ---------------------------------------------------------------------------------------------
# Processes: every one we start is remembered and killed at exit, whatever happened.

_PROCESSES: list[subprocess.Popen] = []


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the driver dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _spawn(cmd: list[str], core: int | None, **kwargs: Any) -> subprocess.Popen:
    if core is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(core), *cmd]  # taskset execs: the PID is the program's
    proc = subprocess.Popen(cmd, cwd=ROOT, preexec_fn=_die_with_parent, **kwargs)
    _PROCESSES.append(proc)
    return proc


def _stop(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    if proc in _PROCESSES:
        _PROCESSES.remove(proc)


@atexit.register
def _kill_all() -> None:
    for proc in list(_PROCESSES):
        with contextlib.suppress(Exception):
            _stop(proc, grace=1.0)


# ---------------------------------------------------------------------------------------------
# /proc readings


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process (all its threads), in seconds (resolution 1/CLK_TCK)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # fields 14 and 15 of proc(5)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    return sum(cpu_times(pid))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine_busy_seconds() -> float:
    """CPU time used by everything on the machine (all cores), from ``/proc/stat``."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settle(pid: int, quiet: float = 0.01, window: float = 0.2, limit: float = 3.0) -> None:
    """Wait (at most ``limit`` s) until the process used < ``quiet`` s of CPU in ``window`` s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < quiet:
            return


# ---------------------------------------------------------------------------------------------
# One server under test, one load generator run


class RunError(RuntimeError):
    pass


@dataclass
class ServerProcess:
    name: str
    spec: ServerSpec
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        cmd = [part.replace("{port}", str(self.port)) for part in self.spec.command]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = _spawn(
            cmd, core=0, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True
        )
        probe = f"{self.url}/socket.io/?EIO=4&transport=polling"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RunError(f"{self.name} exited with {self.proc.returncode}:\n{err[-2000:]}")
            try:
                with urllib.request.urlopen(probe, timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise RunError(f"{self.name} not ready on {probe} within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


class LoadGen:
    """``node benchmarks/loadgen.js`` steered over stdin/stdout (see the protocol there); another
    ``script`` that prints the same JSON lines (``benchmarks/hold.js``) is read the same way."""

    def __init__(self, options: dict[str, Any], script: str = "benchmarks/loadgen.js") -> None:
        self.options = options
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.proc = _spawn(
            ["node", script, json.dumps(options)],
            core=1,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RunError(f"loadgen: no {event!r} within {timeout} s") from None
            if line is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RunError(f"loadgen exited before {event!r}:\n{err[-2000:]}")
            record = json.loads(line)
            if record.get("event") == "error":
                raise RunError(f"loadgen: {record.get('message')}")
            if record.get("event") == event:
                return record

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()

    def close(self) -> None:
        self.send("quit")
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        _stop(self.proc, grace=1.0)


class PySpy:
    """``py-spy record`` attached to a PID during the measured phase only (``--py-spy DIR``)."""

    def __init__(self, pid: int, path: pathlib.Path) -> None:
        exe = shutil.which("py-spy") or str(pathlib.Path(sys.executable).parent / "py-spy")
        self.path = path
        self.proc = _spawn(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--format",
                "speedscope",
                "--rate",
                "500",  # blocking mode (the default): exact stacks, a small pause per sample
                "--output",
                str(path),
            ],
            core=None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)  # let it attach

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        _stop(self.proc, grace=1.0)


def measure(
    server: ServerProcess, scenario: str, options: dict[str, Any], profile_dir: pathlib.Path | None
) -> dict[str, Any]:
    """One load generator run against a running server; returns the measurement record."""
    assert server.proc is not None
    pid = server.proc.pid
    max_seconds = options["maxSeconds"]
    gen = LoadGen({"url": server.url, "scenario": scenario, **options})
    spy = None
    try:
        ready = gen.expect("ready", timeout=2 * max_seconds + 30)
        settle(pid, limit=1.0)
        if profile_dir is not None and server.spec.python:
            spy = PySpy(pid, profile_dir / f"{server.name}-{scenario}.speedscope.json")
        (user0, sys0), gen0, all0 = (
            cpu_times(pid),
            cpu_seconds(gen.proc.pid),
            machine_busy_seconds(),
        )
        rss0, t0 = rss_kib(pid), time.monotonic()
        gen.send("go")
        result = gen.expect("result", timeout=max_seconds + 30)
        wall = time.monotonic() - t0
        (user1, sys1), gen1, all1 = (
            cpu_times(pid),
            cpu_seconds(gen.proc.pid),
            machine_busy_seconds(),
        )
        if scenario == "conn_memory":
            time.sleep(0.5)  # let the last handshakes' buffers settle before reading RSS
        rss1 = rss_kib(pid)
    finally:
        if spy is not None:
            spy.stop()
        gen.close()
    messages = int(result.get("messages") or 0)
    elapsed = float(result["elapsed_s"])
    server_cpu = (user1 - user0) + (sys1 - sys0)
    record: dict[str, Any] = {
        "kind": "run",
        "server": server.name,
        "scenario": scenario,
        "unit": SCENARIOS[scenario].unit,
        "clients": ready.get("clients"),
        "messages": messages,
        "elapsed_s": round(elapsed, 4),
        "msgs_per_s": round(messages / elapsed, 1) if elapsed > 0 else 0.0,
        "server_cpu_s": round(server_cpu, 3),
        "server_sys_s": round(sys1 - sys0, 3),  # the kernel's part: syscalls, loopback TCP
        "cpu_us_per_msg": round(server_cpu / messages * 1e6, 2) if messages else None,
        "server_cpu_pct": round(100 * server_cpu / wall, 1),
        "loadgen_cpu_pct": round(100 * (gen1 - gen0) / wall, 1),
        # everything else on the machine, in % of one core: high means noisy msgs/s
        "others_cpu_pct": round(
            100 * max(0.0, (all1 - all0) - server_cpu - (gen1 - gen0)) / wall, 1
        ),
        "rss_before_kib": rss0,
        "rss_after_kib": rss1,
        "timed_out": bool(result.get("timed_out")),
    }
    if scenario == "conn_memory" and messages:
        record["kib_per_conn"] = round((rss1 - rss0) / messages, 2)
    for key in ("latency_p50_ms", "latency_p99_ms", "broadcasts", "http_requests"):
        if result.get(key) is not None:
            record[key] = round(result[key], 4)
    if result.get("http_requests") is not None and messages:
        record["requests_per_msg"] = round(result["http_requests"] / messages, 3)
    record["loadgen_bound"] = record["loadgen_cpu_pct"] >= 90 and record["server_cpu_pct"] < 70
    return record


# ---------------------------------------------------------------------------------------------
# Summary


def medians(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float | None]]:
    """(scenario, server) → the median of each figure over the rounds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        if r.get("kind") == "run":
            groups.setdefault((r["scenario"], r["server"]), []).append(r)
    out: dict[tuple[str, str], dict[str, float | None]] = {}
    for key, rs in groups.items():
        out[key] = {}
        for figure in (
            "cpu_us_per_msg",
            "msgs_per_s",
            "kib_per_conn",
            "latency_p50_ms",
            "requests_per_msg",
            "server_cpu_pct",
            "loadgen_cpu_pct",
            "others_cpu_pct",
        ):
            values = [r[figure] for r in rs if r.get(figure) is not None]
            out[key][figure] = statistics.median(values) if values else None
        out[key]["rounds"] = len(rs)
        out[key]["loadgen_bound"] = sum(bool(r.get("loadgen_bound")) for r in rs)
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def table(records: list[dict[str, Any]], servers: list[str], scenarios: list[str]) -> str:
    """The medians as a text table, with ratios against python-socketio on aiohttp."""
    med = medians(records)
    lines = []
    header = (
        f"{'scenario':<15} {'server':<27} {'CPU µs/msg':>10} {'x base':>7} {'msgs/s':>10}"
        f" {'x base':>7} {'extra':>14} {'srv%':>5} {'gen%':>5} {'oth%':>5}"
    )
    lines += [header, "-" * len(header)]
    for scenario in scenarios:
        base = med.get((scenario, BASELINE), {})
        for name in servers:
            m = med.get((scenario, name))
            if m is None:
                continue
            cpu_ratio = (
                m["cpu_us_per_msg"] / base["cpu_us_per_msg"]
                if base.get("cpu_us_per_msg") and m["cpu_us_per_msg"] is not None
                else None
            )
            rate_ratio = (
                m["msgs_per_s"] / base["msgs_per_s"]
                if base.get("msgs_per_s") and m["msgs_per_s"] is not None
                else None
            )
            if scenario == "conn_memory":
                extra = f"{_fmt(m['kib_per_conn'])} KiB/conn"
            elif scenario == "ack_rtt":
                extra = f"p50 {_fmt(m['latency_p50_ms'], 3)} ms"
            elif scenario == "polling":
                extra = f"{_fmt(m['requests_per_msg'], 2)} req/ack"
            else:
                extra = ""
            flag = (
                f" !loadgen-bound in {m['loadgen_bound']}/{m['rounds']}"
                if m["loadgen_bound"]
                else ""
            )
            lines.append(
                f"{scenario:<15} {SERVERS[name].label:<27} {_fmt(m['cpu_us_per_msg']):>10}"
                f" {_fmt(cpu_ratio, 2):>7} {_fmt(m['msgs_per_s'], 0):>10} {_fmt(rate_ratio, 2):>7}"
                f" {extra:>14} {_fmt(m['server_cpu_pct'], 0):>5} {_fmt(m['loadgen_cpu_pct'], 0):>5}"
                f" {_fmt(m['others_cpu_pct'], 0):>5}"
                f"{flag}"
            )
        lines.append("")
    lines.append(
        "CPU µs/msg: server CPU time (utime+stime) per message in the measured phase, lower is "
        "better; msgs/s higher is better.\n'x base': ratio to python-socketio (aiohttp). A message "
        "is one ack round trip (ack_*, polling), one delivered msg (fanout), one connection "
        "(conn_memory).\nsrv% / gen% / oth%: CPU use of the server, the load generator, and all other "
        "processes, in % of one core. Medians over the rounds."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def _csv(value: str, known: dict[str, Any]) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def _git_commit() -> str | None:
    with contextlib.suppress(Exception):
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            or None
        )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts, 1 round: a smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (1 with --quick)")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS / "latest.jsonl")
    parser.add_argument(
        "--py-spy",
        type=pathlib.Path,
        metavar="DIR",
        default=None,
        help="record the measured phases of Python servers with py-spy into DIR",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SCENARIO.KEY=VALUE",
        help="override a load generator option, e.g. fanout.count=50",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that atexit stops the children
    servers = _csv(args.servers, SERVERS)
    scenarios = [s for s in SCENARIOS if s in _csv(args.scenarios, SCENARIOS)]
    rounds = args.rounds or (1 if args.quick else 5)
    options = {s: dict(SCENARIOS[s].quick if args.quick else SCENARIOS[s].full) for s in scenarios}
    for item in args.set:
        key, _, value = item.partition("=")
        scenario, _, option = key.partition(".")
        if scenario in options:
            options[scenario][option] = json.loads(value)
    if shutil.which("node") is None:
        raise SystemExit("`node` is not on PATH: the load generator needs Node.js")
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "kind": "meta",
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "quick": args.quick,
        "rounds": rounds,
        "servers": servers,
        "scenarios": scenarios,
        "options": options,
        "cpus": os.cpu_count(),
        "taskset": shutil.which("taskset") is not None,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    records: list[dict[str, Any]] = [meta]
    failures = 0
    began = time.monotonic()
    with open(args.out, "w") as out:
        out.write(json.dumps(meta) + "\n")
        for rnd in range(1, rounds + 1):
            k = (rnd - 1) % len(servers)
            order = servers[k:] + servers[:k]  # rotate, so no server always goes first
            for name in order:
                spec = SERVERS[name]
                server = ServerProcess(name, spec)
                try:
                    server.start()
                    for scenario in scenarios:
                        if spec.websocket_only and not SCENARIOS[scenario].websocket_only:
                            continue
                        if spec.polling_only and scenario != "polling":
                            continue
                        try:
                            record = measure(server, scenario, options[scenario], args.py_spy)
                        except RunError as exc:
                            failures += 1
                            print(f"  round {rnd} {name} {scenario}: FAILED {exc}", file=sys.stderr)
                            if server.proc is None or server.proc.poll() is not None:
                                raise
                            continue
                        record["round"] = rnd
                        records.append(record)
                        out.write(json.dumps(record) + "\n")
                        out.flush()
                        warn = "  (loadgen-bound!)" if record["loadgen_bound"] else ""
                        print(
                            f"round {rnd}/{rounds} {name:<13} {scenario:<15}"
                            f" {_fmt(record['cpu_us_per_msg']):>8} µs/msg"
                            f" {_fmt(record['msgs_per_s'], 0):>9} msgs/s"
                            f" srv {record['server_cpu_pct']:5.1f}% gen {record['loadgen_cpu_pct']:5.1f}%"
                            f"{warn}",
                            flush=True,
                        )
                        settle(server.proc.pid)
                except RunError as exc:
                    failures += 1
                    print(f"  round {rnd} {name}: FAILED {exc}", file=sys.stderr)
                finally:
                    server.stop()
    print()
    print(table(records, servers, scenarios))
    bound = [r for r in records if r.get("loadgen_bound")]
    if bound:
        print(
            f"\nWARNING: in {len(bound)} run(s) the load generator, not the server, was the "
            "bottleneck (loadgen >= 90% of its core, server < 70%): their msgs/s say little about "
            "the server; CPU µs/msg still holds.",
        )
    busy = [r for r in records if r.get("others_cpu_pct", 0) >= 25]
    if busy:
        print(
            f"\nWARNING: in {len(busy)} run(s) other processes used >= 25% of a core: msgs/s "
            "and latencies are noisy there; compare CPU µs/msg.",
        )
    print(f"\n{len(records) - 1} measurements in {time.monotonic() - began:.0f} s -> {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
