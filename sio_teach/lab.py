"""Notebook helpers: a server inside the kernel, a live packet trace, fault knobs, and plots.

    lab = await start_server(ping_interval=0.3)  # Socket.IO on 127.0.0.1, a free port, this loop
    with live_trace(lab.tracer):                 # watch the packets while the scenario runs
        ...                                      # (every scenario cell awaits its own end)
    print(lab.tracer.text())                     # the deterministic trace that nbval checks
    await lab.stop()

Lab mode is deterministic at the source: session ids come from a counter (``sid-0001``…, never
outside a notebook: real ids must be unguessable), traces say ``S1``, ``S2``…, access logs are quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import matplotlib.pyplot as plt
import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
import tornado.websocket

from sio_teach.server import Server
from sio_teach.trace import Record, Tracer
from sio_teach.transports.eio_server import EngineHandler, EngineServer, EngineSocket

HOST = "127.0.0.1"
COLORS = {"GET": "tab:blue", "POST": "tab:orange", "ws": "tab:green"}


def counter_ids(prefix: str = "sid") -> Callable[[], str]:
    """Predictable ids for lab mode: ``sid-0001``, ``sid-0002``…"""
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter):04d}"


def quiet_logs() -> None:
    """Turn Tornado's access log down (it logs a timing for every 4xx, which nbval would see)."""
    logging.getLogger("tornado.access").setLevel(logging.CRITICAL)


def echo(socket: EngineSocket) -> None:
    """A raw Engine.IO application: every message goes straight back."""
    socket.on_message = socket.send


async def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Return once ``predicate()`` is true (checked every 5 ms); ``TimeoutError`` after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


class Lab:
    """A server on the kernel's loop, its tracer, and the fault knobs:

    * ``latency`` — seconds added to every server write (HTTP answers, WebSocket frames), in order;
    * ``partitioned`` — on WebSockets nothing passes either way, not even a close, while the TCP
      connection stays up: a dead peer that only the heartbeat can detect;
    * :meth:`block_websocket` — refuse WebSocket requests, as some proxies do;
    * :meth:`drop` — cut one session's WebSocket abruptly (no close packet, no close frame).
    """

    def __init__(self, server: Server | EngineServer, engine: EngineServer, path: str) -> None:
        self.server, self.engine, self.path, self.tracer = server, engine, path, engine.tracer
        self.latency, self.partitioned = 0.0, False
        self.handlers: set[LabHandler] = set()  # open WebSockets (close_all_connections misses them)
        app = tornado.web.Application([(path, LabHandler, {"engine": engine, "lab": self})])
        self.http_server = tornado.httpserver.HTTPServer(app)
        sockets = tornado.netutil.bind_sockets(0, HOST)  # port 0: the OS picks a free port
        self.port = sockets[0].getsockname()[1]
        self.http_server.add_sockets(sockets)

    @property
    def url(self) -> str:  # the base URL, for a client
        return f"http://{HOST}:{self.port}"

    def endpoint(self, transport: str = "polling", **query: str) -> str:
        """The raw Engine.IO URL, for requests made by hand (``sid=`` etc. in ``query``)."""
        scheme = "ws" if transport == "websocket" else "http"
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        return f"{scheme}://{HOST}:{self.port}{self.path}?EIO=4&transport={transport}{extra}"

    def block_websocket(self, blocked: bool = True) -> None:
        self.engine.block_websocket = blocked

    def drop(self, alias: str) -> None:
        """Cut the WebSocket of session ``alias`` ("S1"…) as a crash or a pulled cable would."""
        sockets = [s for sid, s in self.engine.sessions.items() if self.tracer.alias(sid) == alias]
        ws = sockets[0].ws if sockets else None
        if ws is not None and ws.ws_connection is not None:
            ws.ws_connection.stream.close()

    async def stop(self) -> None:
        """Close every session and WebSocket, stop listening, close open HTTP connections."""
        self.latency, self.partitioned = 0.0, False
        self.engine.close_all()
        for handler in list(self.handlers):
            handler.close()
        self.http_server.stop()
        await asyncio.sleep(0.05)  # let the last answers (close packets) leave
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.http_server.close_all_connections(), 2.0)


class LabHandler(EngineHandler):
    """The Engine.IO handler plus the lab's fault knobs; with the knobs at rest it changes nothing."""

    def initialize(self, engine: EngineServer, lab: Lab) -> None:  # type: ignore[override]
        super().initialize(engine)
        self.lab, self._last = lab, None  # _last: the last delayed WebSocket frame

    def finish(self, chunk: Any = None) -> Any:
        if chunk is not None and self.lab.latency and self._auto_finish and not self._finished:
            self._auto_finish = False  # an HTTP answer waits out the latency; Tornado must not end it
            tornado.ioloop.IOLoop.current().call_later(self.lab.latency, super().finish, chunk)
            return None
        return super().finish(chunk)

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.lab.handlers.add(self)
        super().open(*args, **kwargs)

    def on_close(self) -> None:
        self.lab.handlers.discard(self)
        super().on_close()

    def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
        if not self.lab.partitioned:
            super().on_message(message)

    def on_ws_connection_close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.lab.partitioned:  # a partition hides the peer's close too
            super().on_ws_connection_close(code, reason)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.lab.partitioned:
            super().close(code, reason)

    def write_message(self, message: Any, binary: bool = False) -> Any:
        if self.lab.partitioned:
            return None  # lost: the tracer saw it leave, the client never sees it
        if not self.lab.latency and (self._last is None or self._last.done()):
            return super().write_message(message, binary)
        due = tornado.ioloop.IOLoop.current().time() + self.lab.latency
        self._last = asyncio.ensure_future(self._later(self._last, due, message, binary))
        return None

    async def _later(self, previous: Any, due: float, message: Any, binary: bool) -> None:
        if previous is not None:
            await previous  # frames keep their order
        await asyncio.sleep(max(0.0, due - tornado.ioloop.IOLoop.current().time()))
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            super().write_message(message, binary)


async def start_server(*, path: str = "/socket.io/", **options: Any) -> Lab:
    """A Socket.IO :class:`Server` (options as for ``Server``) on 127.0.0.1, on this loop."""
    quiet_logs()
    tracer = options.pop("tracer", None) or Tracer("server", sio=True)
    server = Server(tracer=tracer, sid_factory=counter_ids(), **options)
    return Lab(server, server.engine, path)


async def start_engine(on_connect: Callable[[EngineSocket], None] = echo, *,
                       path: str = "/engine.io/", **options: Any) -> Lab:
    """A raw Engine.IO server (an echo unless ``on_connect`` says otherwise) on 127.0.0.1."""
    quiet_logs()
    tracer = options.pop("tracer", None) or Tracer("server")
    engine = EngineServer(on_connect, tracer=tracer, sid_factory=counter_ids(), **options)
    return Lab(engine, engine, path)


@contextlib.contextmanager
def live_trace(tracer: Tracer, last: int = 30) -> Iterator[None]:
    """Show the packets as they cross the wire (the last ``last``, with times). At the end the view
    goes back to its first words, so the saved notebook does not depend on timing: print
    ``tracer.text()`` afterwards for the trace that is checked."""
    from IPython.display import Pretty, display

    idle = Pretty("live trace: packets appear here while the scenario runs")
    handle = display(idle, display_id=True)
    lines: list[str] = []

    def show(record: Record) -> None:
        lines.append(record.line(times=True))
        handle.update(Pretty("\n".join(lines[-last:])))

    tracer.listeners.append(show)
    try:
        yield
    finally:
        tracer.listeners.remove(show)
        handle.update(idle)


# -- plots: each returns the figure; end the cell with plt.show() ------------------------------


def sequence_diagram(records: Iterable[Record], title: str = "", width: int = 34) -> Any:
    """Client and server as two lifelines, one arrow per packet, in order from top to bottom."""
    records = list(records)
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(records) + 1.2))
    ax.vlines([0, 1], -0.5, len(records) - 0.5, colors="grey", linewidth=1)
    for i, r in enumerate(records):
        start, end = (1, 0) if (r.direction == ">") == (r.node != "client") else (0, 1)
        style = dict(arrowstyle="->", color=COLORS.get(r.transport, "k"))
        ax.annotate("", (end, i), (start, i), arrowprops=style)
        label = f"{r.transport} {r.wire[:width]}" + ("…" if len(r.wire) > width else "")
        ax.text(0.5, i - 0.12, label, ha="center", va="bottom", fontsize=8, family="monospace")
        ax.text(-0.04, i, f"{r.time * 1000:.0f} ms", ha="right", va="center", fontsize=7)
    ax.set(xlim=(-0.3, 1.15), ylim=(len(records) - 0.4, -1), yticks=[], title=title)
    ax.set_xticks([0, 1], ["client", "server"])
    ax.xaxis.tick_top()
    ax.set_frame_on(False)
    return fig


def timeline(records: Iterable[Record], value: Callable[[Record], Any], marks: Iterable[str] = (),
             title: str = "", ylabel: str = "") -> Any:
    """Plot ``value(record)`` over time, coloured by transport (``None``: left out), with a dashed
    line at each record whose ``wire`` is in ``marks``."""
    records, marks = list(records), set(marks)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for transport, color in COLORS.items():
        points = [(r.time * 1000, v) for r in records if r.transport == transport and (v := value(r)) is not None]
        if points:
            ax.scatter(*zip(*points, strict=True), s=14, color=color, label=transport)
    for r in (r for r in records if r.wire in marks):
        ax.axvline(r.time * 1000, color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(r.wire, (r.time * 1000, 1), xycoords=("data", "axes fraction"), fontsize=8,
                    rotation=90, va="top", ha="right", color="grey")
    ax.set(xlabel="time (ms)", ylabel=ylabel, title=title)
    ax.legend(loc="lower right")
    return fig


def latency_plot(series: dict[str, list[float]], title: str = "", unit: str = "latency (ms)") -> Any:
    """Each series (seconds) message by message on the left, as a histogram on the right."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), width_ratios=[2, 1])
    ms = {name: [v * 1000 for v in values] for name, values in series.items()}
    for name, values in ms.items():
        left.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    right.hist(list(ms.values()), bins=12, label=list(ms))  # the same bins for every series
    left.set(xlabel="message #", ylabel=unit, title=title)
    right.set(xlabel=unit, ylabel="messages")
    left.legend()
    return fig


def state_diagram(transitions: dict[tuple[Any, str], Any], title: str = "") -> Any:
    """Draw a table ``{(state, event): next_state}``: the states on a circle, labelled arrows."""
    states = list(dict.fromkeys([s for s, _ in transitions] + list(transitions.values())))
    angle = {s: math.pi - 2 * math.pi * i / len(states) for i, s in enumerate(states)}
    place = {s: (math.cos(a), math.sin(a)) for s, a in angle.items()}
    edges: dict[tuple[Any, Any], list[str]] = {}
    for (source, event), target in transitions.items():
        edges.setdefault((source, target), []).append(event)
    fig, ax = plt.subplots(figsize=(7, 6))
    for (source, target), events in edges.items():
        (x0, y0), (x1, y1) = place[source], place[target]
        style = dict(arrowstyle="-|>", connectionstyle="arc3,rad=0.2", shrinkA=30, shrinkB=30)
        ax.annotate("", (x1, y1), (x0, y0), arrowprops=style)
        mx, my = (x0 + x1) / 2 + 0.1 * (y1 - y0), (y0 + y1) / 2 - 0.1 * (x1 - x0)
        ax.text(mx, my, "\n".join(events), fontsize=8, ha="center", va="center", color="tab:blue",
                bbox=dict(boxstyle="round", fc="white", ec="none", alpha=0.8))
    for state, (x, y) in place.items():
        ax.text(x, y, getattr(state, "value", state), ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.6", fc="lightyellow", ec="black"))
    ax.set(xlim=(-1.5, 1.5), ylim=(-1.4, 1.4), title=title)
    ax.axis("off")
    return fig
