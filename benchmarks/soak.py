"""Soak: many idle WebSocket clients held with heartbeats, then many connect/emit/disconnect cycles.

    python -m benchmarks.soak                            # 2000 idle clients for 30 s; 3000 cycles
    python -m benchmarks.soak --idle 200 --hold 3 --cycles 300 --json /tmp/soak.json   # smoke
    python -m benchmarks.soak --skip-idle --cycles 10000  # only the cycles

Each part runs against a fresh server subprocess: the app of ``sio_teach.examples.bench_server``
(``make_server``, unchanged), served by ``python -m benchmarks.soak --serve`` with one extra, read-only
route, ``/_soak/stats``: the server's asyncio task count, Engine.IO sessions and Socket.IO sockets
(after a ``gc.collect()``). The driver reads the server's RSS (``VmRSS`` of ``/proc/PID/status``) and
open file descriptors (``/proc/PID/fd``) from outside.

(a) **idle**: N raw WebSocket clients (Tornado, one process, each answering pings and nothing
    else) connect to ``/`` and stay for T seconds with pingInterval ``--ping-interval``. Reported:
    clients dropped (a client whose connection ended; sockets the server lost), pings answered,
    server RSS per connection, and fds once they are gone.
(b) **cycles**: M cycles of our :class:`sio_teach.Client` (connect, ``echo`` with an ack, ``ping``
    → ``pong``, disconnect), ``--workers`` at a time, transports in turn: WebSocket, polling,
    polling upgraded to WebSocket, and polling disconnected while the upgrade may still be under
    way. The first 10 % are the warm-up. Reported: server RSS growth from the end of the warm-up
    to the end (both measured with no client connected), fds and tasks at start, after the
    warm-up and at the end (they must come back to the start), and the same for the driver.

Every loop is bounded in count and in time; everything is on 127.0.0.1; the server subprocess is
stopped at the end (also on Ctrl-C or SIGTERM, and it stops by itself should the driver be killed
outright). The table goes to stdout, the figures to ``--json``
(``benchmarks/results/soak.json`` by default). Nothing is asserted here: ``tests/reliability/
test_soak_smoke.py`` runs a short form and asserts on the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import pathlib
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import tornado.httpclient
import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
import tornado.websocket

from sio_teach.examples import stop_on_signals

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
HOST = "127.0.0.1"
STATS_PATH = "/_soak/stats"
MODES = {
    "websocket": ("websocket",),
    "polling": ("polling",),
    "upgrade": ("polling", "websocket"),  # waits for the upgrade
    "upgrade-abort": ("polling", "websocket"),  # disconnects at once: maybe during the upgrade
}

log = logging.getLogger("soak")


# -- the server under test (``--serve``) ----------------------------------------------------------


class StatsHandler(tornado.web.RequestHandler):
    """``GET /_soak/stats[?gc=1]``: what only the server process can count."""

    def initialize(self, sio: Any) -> None:
        self.sio = sio

    def get(self) -> None:
        if self.get_query_argument("gc", "0") == "1":
            gc.collect()
        nsp = self.sio.of("/")
        self.finish(
            {
                "pid": os.getpid(),
                "tasks": len(asyncio.all_tasks()),
                "sessions": len(self.sio.engine.sessions),
                "sockets": len(nsp.sockets),
                "rooms": len(nsp.adapter.rooms),
                "objects": len(gc.get_objects()),  # objects tracked by the collector
            }
        )


async def serve(port: int, ping_interval: float, ping_timeout: float) -> None:
    """The bench app plus the stats route; prints ``listening PORT``; stops on SIGTERM/SIGINT."""
    from sio_teach.examples.bench_server import make_server

    sio = make_server(ping_interval=ping_interval, ping_timeout=ping_timeout)
    app = tornado.web.Application(
        sio.routes("/socket.io/") + [(STATS_PATH, StatsHandler, {"sio": sio})]
    )
    sockets = tornado.netutil.bind_sockets(port, HOST)  # port 0: the OS picks a free one
    http = tornado.httpserver.HTTPServer(app)
    http.add_sockets(sockets)
    bound = sockets[0].getsockname()[1]
    stop = stop_on_signals()
    parent = os.getppid()
    orphaned = tornado.ioloop.PeriodicCallback(
        lambda: os.getppid() != parent and stop.set(),
        500,  # the driver died (e.g. SIGKILL)
    )
    orphaned.start()
    print(f"listening {bound}", flush=True)
    await stop.wait()
    orphaned.stop()
    http.stop()
    sio.close()
    await asyncio.sleep(0.05)


# -- the driver: the server process from outside ------------------------------------------------


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE as far as allowed (the server subprocess inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ServerProcess:
    """``python -m benchmarks.soak --serve`` on a free port; killed by :meth:`stop` (and, should
    the driver die first, it stops by itself within 0.5 s)."""

    running: set[ServerProcess] = set()  # stopped by main() whatever happens

    def __init__(self, ping_interval: float, ping_timeout: float) -> None:
        self.args = ["--ping-interval", str(ping_interval), "--ping-timeout", str(ping_timeout)]
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.http = tornado.httpclient.AsyncHTTPClient(force_instance=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        cmd = [sys.executable, "-m", "benchmarks.soak", "--serve", "--port", "0", *self.args]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        ServerProcess.running.add(self)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the server did not start: {line!r}")
        self.port = int(line.split()[1])

    async def stats(self, collect: bool = True) -> dict[str, Any]:
        response = await self.http.fetch(
            f"{self.url}{STATS_PATH}?gc={int(collect)}",
            headers={"Connection": "close"},
            request_timeout=10.0,
        )
        return json.loads(response.body)

    async def snapshot(self, collect: bool = True) -> dict[str, Any]:
        """Stats from inside (tasks, sessions, sockets) and from outside (RSS, fds)."""
        stats = await self.stats(collect)
        await asyncio.sleep(0.05)  # the stats connection is closed by now
        return {**stats, "rss_kib": rss_kib(self.pid), "fds": fd_count(self.pid)}

    async def settle(self, baseline: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
        """Snapshots until no session is left and tasks and fds are back to ``baseline`` (or the
        time limit): a closed session may be kept a moment for its last answer."""
        deadline = time.monotonic() + timeout
        while True:
            snap = await self.snapshot()
            back = snap["sessions"] == 0 and snap["tasks"] <= baseline["tasks"]
            if (back and snap["fds"] <= baseline["fds"]) or time.monotonic() > deadline:
                return snap
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        ServerProcess.running.discard(self)
        self.http.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5.0)


def driver_snapshot() -> dict[str, int]:
    gc.collect()
    return {
        "tasks": len(asyncio.all_tasks()),
        "fds": fd_count(os.getpid()),
        "rss_kib": rss_kib(os.getpid()),
    }


# -- (a) idle WebSocket clients -----------------------------------------------------------------


@dataclass
class IdleClient:
    """A raw Socket.IO client on a WebSocket: CONNECT to ``/``, then answer pings, nothing else."""

    ws: tornado.websocket.WebSocketClientConnection | None = None
    pings: int = 0
    dropped_at: float | None = None  # when the connection ended without our asking
    closing: bool = False
    task: asyncio.Task[None] | None = None

    async def open(self, url: str, timeout: float) -> None:
        ws_url = "ws" + url[len("http") :] + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await asyncio.wait_for(tornado.websocket.websocket_connect(ws_url), timeout)
        first = await asyncio.wait_for(self.ws.read_message(), timeout)
        if not (isinstance(first, str) and first.startswith("0{")):
            raise RuntimeError(f"expected the open packet, got {first!r}")
        await self.ws.write_message("40")
        while True:  # pings may come before the CONNECT reply
            message = await asyncio.wait_for(self.ws.read_message(), timeout)
            if message is None:
                raise RuntimeError("closed before the CONNECT reply")
            if message == "2":
                await self.ws.write_message("3")
            elif isinstance(message, str) and message.startswith("40"):
                break
        self.task = asyncio.ensure_future(self.read_loop())

    async def read_loop(self) -> None:
        assert self.ws is not None
        while True:
            message = await self.ws.read_message()
            if message is None:
                if not self.closing:
                    self.dropped_at = time.monotonic()
                return
            if message == "2":
                self.pings += 1
                with contextlib.suppress(tornado.websocket.WebSocketClosedError):
                    self.ws.write_message("3")

    def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            self.ws.close()


async def run_idle(opts: argparse.Namespace) -> dict[str, Any]:
    server = ServerProcess(opts.ping_interval, opts.ping_timeout)
    clients: list[IdleClient] = []
    try:
        await server.start()
        base = await server.snapshot()
        driver_base = driver_snapshot()
        gate = asyncio.Semaphore(opts.connect_concurrency)
        errors: list[str] = []

        async def connect_one() -> None:
            client = IdleClient()
            async with gate:
                try:
                    await client.open(server.url, timeout=20.0)
                    clients.append(client)
                except Exception as error:  # counted and reported
                    errors.append(repr(error))
                    client.close()

        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(connect_one() for _ in range(opts.idle))), opts.connect_limit
            )
        connect_s = time.monotonic() - started
        connected = await server.snapshot()
        log.info("idle: %d connected in %.1f s; holding %.0f s", len(clients), connect_s, opts.hold)

        hold_start = time.monotonic()
        await asyncio.sleep(opts.hold)
        held = await server.snapshot(collect=True)
        dropped = [c for c in clients if c.dropped_at is not None]
        pings = [c.pings for c in clients]

        for client in clients:
            client.close()
        tasks = [c.task for c in clients if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=30.0)
        after = await server.settle(base)
        driver_after = driver_snapshot()
        per_conn = (held["rss_kib"] - base["rss_kib"]) / max(1, len(clients))
        return {
            "server_pid": server.pid,
            "clients": opts.idle,
            "connected": len(clients),
            "connect_errors": len(errors),
            "connect_error_samples": errors[:5],
            "connect_s": round(connect_s, 2),
            "hold_s": round(time.monotonic() - hold_start, 2),
            "ping_interval_s": opts.ping_interval,
            "dropped": len(dropped),
            "server_sockets_at_end_of_hold": held["sockets"],
            "server_lost": len(clients) - held["sockets"],
            "pings_answered": sum(pings),
            "pings_min_per_client": min(pings, default=0),
            "rss_base_kib": base["rss_kib"],
            "rss_connected_kib": connected["rss_kib"],
            "rss_held_kib": held["rss_kib"],
            "rss_after_close_kib": after["rss_kib"],
            "rss_per_conn_kib": round(per_conn, 2),
            "fds_base": base["fds"],
            "fds_held": held["fds"],
            "fds_after_close": after["fds"],
            "tasks_base": base["tasks"],
            "tasks_after_close": after["tasks"],
            "sessions_after_close": after["sessions"],
            "driver_tasks_base": driver_base["tasks"],
            "driver_tasks_after": driver_after["tasks"],
        }
    finally:
        for client in clients:
            client.close()
        server.stop()


# -- (b) connect / emit / disconnect cycles -----------------------------------------------------


@dataclass
class CycleRun:
    """The shared state of the cycle workers."""

    url: str
    total: int
    deadline: float
    next: int = 0
    done: int = 0
    failures: list[str] = field(default_factory=list)
    by_mode: dict[str, int] = field(default_factory=dict)


async def one_cycle(url: str, n: int) -> str:
    """Connect, ``echo`` with an ack, ``ping`` → ``pong``, disconnect. Returns the mode."""
    from sio_teach import Client

    mode = list(MODES)[n % len(MODES)]
    client = Client(url, transports=MODES[mode], reconnection=False)
    pong: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    client.on("pong", lambda *args: pong.done() or pong.set_result(args))
    try:
        await client.connect(timeout=10.0)
        if mode == "upgrade":
            async with asyncio.timeout(10.0):
                while client.transport != "websocket":
                    await asyncio.sleep(0.005)
        if mode != "upgrade-abort":
            reply = await client.emit_with_ack("echo", n, "x" * 32, timeout=10.0)
            if reply != (n, "x" * 32):
                raise AssertionError(f"echo {n} answered {reply!r}")
            client.emit("ping", n)
            if await asyncio.wait_for(pong, 10.0) != (n,):
                raise AssertionError(f"pong {n}: {pong.result()!r}")
    finally:
        await asyncio.wait_for(client.disconnect(), 10.0)
    return mode


async def run_cycles_until(run: CycleRun, stop_at: int, workers: int) -> None:
    """``workers`` loops taking cycle numbers until ``stop_at`` (or the deadline)."""

    async def worker() -> None:
        while run.next < stop_at and time.monotonic() < run.deadline:
            n = run.next
            run.next += 1
            try:
                mode = await asyncio.wait_for(one_cycle(run.url, n), 30.0)
                run.by_mode[mode] = run.by_mode.get(mode, 0) + 1
            except Exception as error:  # counted and reported
                run.failures.append(f"cycle {n}: {error!r}")
            run.done += 1

    await asyncio.gather(*(worker() for _ in range(workers)))


async def run_cycles(opts: argparse.Namespace) -> dict[str, Any]:
    server = ServerProcess(opts.ping_interval, opts.ping_timeout)
    try:
        await server.start()
        base = await server.snapshot()
        driver_base = driver_snapshot()
        run = CycleRun(server.url, opts.cycles, time.monotonic() + opts.cycles_limit)
        warm_up = max(1, opts.cycles // 10)

        started = time.monotonic()
        await run_cycles_until(run, warm_up, opts.workers)
        warm = await server.settle(base)
        driver_warm = driver_snapshot()
        log.info("cycles: warm-up of %d done; %d to go", warm_up, opts.cycles - warm_up)
        await run_cycles_until(run, opts.cycles, opts.workers)
        elapsed = time.monotonic() - started
        end = await server.settle(base)
        driver_end = driver_snapshot()
        growth = 100.0 * (end["rss_kib"] - warm["rss_kib"]) / warm["rss_kib"]
        return {
            "server_pid": server.pid,
            "cycles": opts.cycles,
            "done": run.done,
            "by_mode": run.by_mode,
            "failures": len(run.failures),
            "failure_samples": run.failures[:5],
            "workers": opts.workers,
            "warm_up": warm_up,
            "elapsed_s": round(elapsed, 2),
            "cycles_per_s": round(run.done / elapsed, 1) if elapsed else None,
            "rss_base_kib": base["rss_kib"],
            "rss_warm_kib": warm["rss_kib"],
            "rss_end_kib": end["rss_kib"],
            "rss_growth_pct": round(growth, 2),
            "fds_base": base["fds"],
            "fds_warm": warm["fds"],
            "fds_end": end["fds"],
            "tasks_base": base["tasks"],
            "tasks_warm": warm["tasks"],
            "tasks_end": end["tasks"],
            "objects_base": base["objects"],
            "objects_warm": warm["objects"],
            "objects_end": end["objects"],
            "sessions_end": end["sessions"],
            "sockets_end": end["sockets"],
            "rooms_end": end["rooms"],
            "driver_tasks_base": driver_base["tasks"],
            "driver_tasks_warm": driver_warm["tasks"],
            "driver_tasks_end": driver_end["tasks"],
            "driver_fds_base": driver_base["fds"],
            "driver_fds_end": driver_end["fds"],
            "driver_rss_warm_kib": driver_warm["rss_kib"],
            "driver_rss_end_kib": driver_end["rss_kib"],
        }
    finally:
        server.stop()


# -- the report ---------------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    idle = results.get("idle")
    if idle:
        rows += [
            (
                "(a) idle WebSocket clients",
                f"{idle['connected']}/{idle['clients']} connected in "
                f"{idle['connect_s']} s, held {idle['hold_s']} s (pingInterval {idle['ping_interval_s']} s)",
            ),
            (
                "    dropped",
                f"{idle['dropped']} by the clients' count, {idle['server_lost']} by the "
                f"server's; connect errors {idle['connect_errors']}",
            ),
            (
                "    pings answered",
                f"{idle['pings_answered']} (at least {idle['pings_min_per_client']} per client)",
            ),
            (
                "    server RSS",
                f"{mib(idle['rss_base_kib'])} -> {mib(idle['rss_held_kib'])} held: "
                f"{idle['rss_per_conn_kib']} KiB per connection",
            ),
            (
                "    server fds",
                f"{idle['fds_base']} -> {idle['fds_held']} held -> "
                f"{idle['fds_after_close']} after close",
            ),
            (
                "    server tasks",
                f"{idle['tasks_base']} -> {idle['tasks_after_close']} after close; "
                f"sessions left {idle['sessions_after_close']}",
            ),
        ]
    cycles = results.get("cycles")
    if cycles:
        modes = ", ".join(f"{k} {v}" for k, v in sorted(cycles["by_mode"].items()))
        rows += [
            (
                "(b) connect/emit/disconnect",
                f"{cycles['done']}/{cycles['cycles']} cycles in "
                f"{cycles['elapsed_s']} s ({cycles['cycles_per_s']}/s, {cycles['workers']} at a time)",
            ),
            ("    transports", modes),
            ("    failures", str(cycles["failures"])),
            (
                "    server RSS",
                f"{mib(cycles['rss_base_kib'])} start, {mib(cycles['rss_warm_kib'])} "
                f"after warm-up ({cycles['warm_up']}), {mib(cycles['rss_end_kib'])} end: "
                f"{cycles['rss_growth_pct']:+.2f} %",
            ),
            (
                "    server fds",
                f"{cycles['fds_base']} start, {cycles['fds_warm']} warm, {cycles['fds_end']} end",
            ),
            (
                "    server gc objects",
                f"{cycles['objects_base']} start, {cycles['objects_warm']} "
                f"warm, {cycles['objects_end']} end",
            ),
            (
                "    server tasks",
                f"{cycles['tasks_base']} start, {cycles['tasks_warm']} warm, "
                f"{cycles['tasks_end']} end; sessions {cycles['sessions_end']}, sockets "
                f"{cycles['sockets_end']}, rooms {cycles['rooms_end']} at the end",
            ),
            (
                "    driver (clients)",
                f"tasks {cycles['driver_tasks_base']} -> "
                f"{cycles['driver_tasks_end']}, fds {cycles['driver_fds_base']} -> "
                f"{cycles['driver_fds_end']}, RSS {mib(cycles['driver_rss_warm_kib'])} warm -> "
                f"{mib(cycles['driver_rss_end_kib'])}",
            ),
        ]
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


async def drive(opts: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": " ".join(
                [os.path.basename(sys.executable), "-m", "benchmarks.soak", *sys.argv[1:]]
            ),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "fd_limit": opts.fd_limit,
            "ping_interval_s": opts.ping_interval,
            "ping_timeout_s": opts.ping_timeout,
        }
    }
    if opts.idle and not opts.skip_idle:
        results["idle"] = await run_idle(opts)
    if opts.cycles and not opts.skip_cycles:
        results["cycles"] = await run_cycles(opts)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=2000, help="idle WebSocket clients (a)")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold them (a)")
    parser.add_argument(
        "--cycles", type=int, default=3000, help="connect/emit/disconnect cycles (b)"
    )
    parser.add_argument("--workers", type=int, default=20, help="cycles at a time (b)")
    parser.add_argument("--ping-interval", type=float, default=5.0, help="server pingInterval, s")
    parser.add_argument("--ping-timeout", type=float, default=20.0, help="server pingTimeout, s")
    parser.add_argument(
        "--connect-concurrency", type=int, default=50, help="connects at a time (a)"
    )
    parser.add_argument(
        "--connect-limit", type=float, default=300.0, help="max seconds to connect (a)"
    )
    parser.add_argument(
        "--cycles-limit", type=float, default=900.0, help="max seconds of cycles (b)"
    )
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-cycles", action="store_true")
    parser.add_argument("--json", type=pathlib.Path, default=RESULTS / "soak.json")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    logging.getLogger("tornado.access").setLevel(logging.ERROR)
    if opts.serve:
        asyncio.run(serve(opts.port, opts.ping_interval, opts.ping_timeout))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    opts.fd_limit = raise_fd_limit(2 * opts.idle + 200)
    if opts.fd_limit < opts.idle + 200:  # the driver holds one fd per client, the server too
        capped = max(0, opts.fd_limit - 200)
        log.warning("fd limit %d: %d idle clients instead of %d", opts.fd_limit, capped, opts.idle)
        opts.idle = capped
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C
    try:
        results = asyncio.run(drive(opts))
    except KeyboardInterrupt:
        sys.exit("interrupted")
    finally:
        for server in list(ServerProcess.running):
            server.stop()
    print(table(results))
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures: {opts.json}")


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file: python benchmarks/soak.py
        sys.path.insert(0, str(ROOT))
    main()
