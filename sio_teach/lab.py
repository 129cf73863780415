"""Notebook helpers: a server inside the kernel, a live packet trace, fault knobs, and plots.

The server and its fault knobs (:class:`Lab`, :class:`LabHandler`, :class:`LabRequest`) need
Tornado only: the demo page's ``serve --faults`` runs on them too (``web.start_demo``). The live trace and the plots
import IPython and matplotlib when first called.

lab = await start_server(ping_interval=0.3)  # Socket.IO on 127.0.0.1, a free port, this loop
with live_trace(lab.tracer):                 # watch the packets while the scenario runs
    ...                                      # (every scenario cell awaits its own end)
print(lab.tracer.text())                     # the deterministic trace that nbval checks
await held_get(lab, "sid-0001")              # wait until that session's long-poll GET is held
with count_encodes() as encodes: ...         # Socket.IO encodes in the block, by where they happen
lab.latency = 0.2; lab.partitioned = True    # fault knobs (also the buttons of `serve --faults`)
await lab.stop()                             # every session, WebSocket and port closed
await lab.restart()                          # a fresh server on the same port (a redeploy)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import pathlib
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import tornado.httpclient
import tornado.netutil
import tornado.web

from sio_teach.server import Server
from sio_teach.trace import Record, Request, Tracer
from sio_teach.transports.eio_server import EngineHandler, EngineServer, EngineSocket
from sio_teach.transports.http import HTTPServer
from sio_teach.transports.polling import EngineRequest

HOST = "127.0.0.1"

COLORS = {"GET": "tab:blue", "POST": "tab:orange", "ws": "tab:green"}


def counter_ids(prefix: str = "sid") -> Callable[[], str]:
    """Predictable ids for lab mode: ``sid-0001``, ``sid-0002``… (never outside a notebook)."""
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter):04d}"


def quiet_logs() -> None:
    """Turn Tornado's access log down (it logs a timing for every 4xx, which nbval would see)."""
    logging.getLogger("tornado.access").setLevel(logging.CRITICAL)


def echo(socket: EngineSocket) -> None:
    """A raw Engine.IO application: every message goes straight back."""
    socket.on_message = socket.send


async def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Return once ``predicate()`` is true (polled every 5 ms); TimeoutError after ``timeout`` s."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def held_get(
    where: Lab | Server | EngineServer, sid: str, timeout: float = 5.0, held: bool = True
) -> None:
    """Return once session ``sid`` has a long-polling GET held open at the server (the server had
    nothing to send, so it keeps the GET waiting). Await it before a step whose outcome depends
    on that GET being there: a POST whose answer should ride it, a close that should release it.
    ``held=False``: wait until no GET is held any more (the server has answered it).
    ``where``: what :func:`start_server` / :func:`start_engine` returned, or a server."""
    engine = where.engine if isinstance(where, Lab | Server) else where
    await wait_until(
        lambda: (s := engine.sessions.get(sid)) is not None and s.polling == held, timeout
    )


def can_send_now(where: Lab | Server | EngineServer, sid: str) -> bool:
    """Could a packet leave for session ``sid`` right now — a GET is held, or its WebSocket has
    written everything so far? (A server-side volatile event is dropped when it cannot.)"""
    engine = where.engine if isinstance(where, Lab | Server) else where
    return engine.sessions[sid].writable


def data_file(name: str) -> pathlib.Path:
    """The file ``name`` of the notebooks' ``data/`` folder, found from the running notebook's
    folder (Jupyter's working directory): ``data/`` beside it (an instructor notebook), or one
    folder up (a student copy, in ``student/``). So any copy of the ``notebooks/`` folder works."""
    for folder in (pathlib.Path("data"), pathlib.Path("..", "data")):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"data/{name}: neither beside this notebook nor one folder up")


# Where Socket.IO packets are encoded on their way out, by module: a broadcast in the adapter
# (``memory.encode_once``, once for all its recipients), a packet for one socket in
# ``server.Connection.send``.
ENCODE_SITES = {"broadcast": "sio_teach.adapters.memory", "socket": "sio_teach.server"}


@contextlib.contextmanager
def count_encodes() -> Iterator[Counter[str]]:
    """Count the Socket.IO packet encodes made inside the block, by where they happen
    (``"broadcast"``, ``"socket"``; see ``ENCODE_SITES``)::

        with lab.count_encodes() as encodes:
            sio.to("red").emit("news", 1)
        encodes["broadcast"]  # 1, however many sockets are in "red"

    For the duration of the block, the name ``encode`` in each of those modules is a wrapper that
    counts its calls and then encodes as before; the originals are put back at the end."""
    import importlib

    counts: Counter[str] = Counter()
    modules = {site: importlib.import_module(name) for site, name in ENCODE_SITES.items()}
    originals = {site: module.encode for site, module in modules.items()}

    def counting(site: str, encode: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            counts[site] += 1
            return encode(*args)

        return wrapper

    for site, module in modules.items():
        module.encode = counting(site, originals[site])  # type: ignore[attr-defined]
    try:
        yield counts
    finally:
        for site, module in modules.items():
            module.encode = originals[site]  # type: ignore[attr-defined]


class Lab:
    """A server on the running loop, its tracer, and fault knobs: ``latency`` (seconds added to
    every server write, in order), ``partitioned`` (WebSocket frames and closes vanish both ways
    while TCP stays up: only a heartbeat can tell), :meth:`drop` (cut a WebSocket's TCP
    connection), and the server's own ``engine.block_websocket`` (refuse WebSockets, as some
    proxies do).

    ``make()`` builds the server (and returns it with its Engine.IO server); ``setup(server)`` runs
    on each new server before it listens; ``routes(lab)`` adds Tornado routes beside the server's
    (the demo page). :meth:`restart` replaces the server by a fresh one on the same port."""

    def __init__(
        self,
        make: Callable[[], tuple[Server | EngineServer, EngineServer]],
        path: str,
        port: int = 0,
        setup: Callable[[Any], None] | None = None,
        *,
        host: str = HOST,
        routes: Callable[[Lab], list[Any]] | None = None,
    ) -> None:
        self.make, self.path, self.port, self.setup = make, path, port, setup
        self.host, self.routes = host, routes
        self.latency, self.partitioned = 0.0, False
        self.handlers: set[LabHandler] = set()  # every WebSocket, for stop()
        self._listen()

    def _listen(self) -> None:
        """A new server from ``make`` (then ``setup(server)``), listening on ``port`` (0: free)."""
        self.server, self.engine = self.make()
        self.tracer = self.engine.tracer
        if self.setup is not None:
            self.setup(self.server)  # before listening: no client can come in first
        extra = self.routes(self) if self.routes is not None else []
        routes = self.engine.routes(self.path, LabHandler, LabRequest, lab=self)
        app = tornado.web.Application([*extra, *routes])
        self.http_server = HTTPServer(app)
        sockets = tornado.netutil.bind_sockets(self.port, self.host)  # port 0: the OS picks one
        self.port = sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"  # the base URL, for a client
        self.http_server.add_sockets(sockets)
        self.running = True

    def endpoint(self, transport: str = "polling", **query: str) -> str:
        """The raw Engine.IO URL, for requests made by hand (``sid=`` etc. in ``query``)."""
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        url = f"{self.url}{self.path}?EIO=4&transport={transport}{extra}"
        return url.replace("http", "ws", 1) if transport == "websocket" else url

    def drop(self, alias: str) -> None:
        """Cut the WebSocket of session ``alias`` ("S1"…) as a crash or a pulled cable would."""
        for sid, socket in self.engine.sessions.items():
            if self.tracer.alias(sid) == alias and socket.ws and socket.ws.ws_connection:
                socket.ws.ws_connection.stream.close()

    async def stop(self) -> None:
        """Close every session and WebSocket, stop listening, close open HTTP connections."""
        self.latency, self.partitioned, self.running = 0.0, False, False
        self.engine.close_all()
        for handler in list(self.handlers):
            handler.close()
        self.handlers.clear()
        self.http_server.stop()
        await asyncio.sleep(0.05)  # let the last answers (close packets) leave
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.http_server.close_all_connections(), 2.0)

    async def shutdown(self) -> None:
        """:meth:`stop`, then close the server's adapters and wait for them (a Redis adapter
        stops listening and closes its Redis connections). For a raw Engine.IO lab: stop only."""
        await self.stop()
        if isinstance(self.server, Server):
            self.server.close()
            for nsp in list(self.server.namespaces.values()):
                aclose = getattr(nsp.adapter, "aclose", None)
                if aclose is not None:
                    await aclose()

    async def restart(self) -> None:
        """Start again on the same port (stopping first if still running), as after a process
        restart: a fresh server with the same options and ``setup``, so no session, socket or room
        survives; the tracer and the id counter carry on (aliases and ids stay unique)."""
        if self.running:
            await self.stop()
        self._listen()


class LabRequest(EngineRequest):
    """A long-polling request plus the lab's latency (at rest, it changes nothing)."""

    def answer(self, *args: Any, **kwargs: Any) -> Awaitable[None]:
        latency = self.router.handler_kwargs["lab"].latency
        if not latency:
            return super().answer(*args, **kwargs)
        # the answer waits out the latency: timers fire in order, so answers keep their order
        loop = asyncio.get_running_loop()
        written = loop.create_future()

        def later() -> None:
            super(LabRequest, self).answer(*args, **kwargs)
            written.set_result(None)

        loop.call_later(latency, later)
        return written


class LabHandler(EngineHandler):
    """The WebSocket handler plus the lab's fault knobs (at rest, it changes nothing)."""

    def initialize(self, engine: EngineServer, lab: Lab, **checked: Any) -> None:  # type: ignore[override]
        super().initialize(engine, **checked)
        self.lab = lab

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.lab.handlers.add(self)
        super().open(*args, **kwargs)

    def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
        if not self.lab.partitioned:
            super().on_message(message)

    def on_ws_connection_close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.lab.partitioned:  # a partition hides the peer's close too
            super().on_ws_connection_close(code, reason)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.lab.partitioned:
            super().close(code, reason)

    def write_frame(self, data: bytes) -> None:
        if self.lab.partitioned:
            return  # lost: the tracer saw it leave, the client never sees it
        if not self.lab.latency:
            return super().write_frame(data)
        # the same delay for every frame: timers fire in order, so frames keep their order
        asyncio.get_running_loop().call_later(self.lab.latency, super().write_frame, data)


async def start_server(
    *,
    path: str = "/socket.io/",
    port: int = 0,
    setup: Callable[[Server], None] | None = None,
    node: str = "server",
    ids: str = "sid",
    **options: Any,
) -> Lab:
    """A Socket.IO :class:`Server` (``Server`` options) on 127.0.0.1, on the running loop.
    ``setup(server)`` registers handlers (again after each :meth:`Lab.restart`). For several
    nodes in one notebook, give each its own ``node`` name (the tracer's) and ``ids`` prefix
    (``ids="A"``: sessions and sockets ``A-0001``, ``A-0002``…, unique across the cluster)."""
    quiet_logs()
    tracer, ids_factory = Tracer(node, sio=True), counter_ids(ids)

    def make() -> tuple[Server, EngineServer]:
        server = Server(tracer=tracer, sid_factory=ids_factory, **options)
        return server, server.engine

    return Lab(make, path, port, setup)


async def start_engine(
    on_connect: Callable[[EngineSocket], None] = echo,
    *,
    path: str = "/engine.io/",
    port: int = 0,
    **options: Any,
) -> Lab:
    """A raw Engine.IO server (an echo unless ``on_connect`` says otherwise) on 127.0.0.1."""
    quiet_logs()
    tracer, ids = Tracer("server"), counter_ids()

    def make() -> tuple[EngineServer, EngineServer]:
        engine = EngineServer(on_connect, tracer=tracer, sid_factory=ids, **options)
        return engine, engine

    return Lab(make, path, port)


@contextlib.contextmanager
def live_trace(tracer: Tracer, last: int = 30) -> Iterator[None]:
    """Show the packets as they cross the wire (the last ``last``, timed). At the end the view
    goes back to its first words, as the saved notebook must not depend on timing: print the
    trace after the block."""
    from IPython.display import Pretty, display

    idle = Pretty("live trace: packets appear here while the scenario runs")
    handle, lines = display(idle, display_id=True), []

    def show(record: Record) -> None:
        lines.append(record.line(times=True))
        handle.update(Pretty("\n".join(lines[-last:])))

    tracer.listeners.append(show)
    try:
        yield
    finally:
        tracer.listeners.remove(show)
        handle.update(idle)


# Plots: each returns its figure; end the notebook cell with plt.show().


def sequence_diagram(
    records: list[Record],
    title: str = "",
    width: int = 34,
    requests: Iterable[tuple[Request, Request | None]] | None = None,
) -> Any:
    """Client and server as two lifelines, one arrow per packet, in order from top to bottom.

    With ``requests`` (``tracer.spans()``) the picture runs on time, and the server's side gets one
    lane per road: ``GET``, ``POST`` and ``ws``. Each HTTP request is a bar on its lane from its
    arrival to its answer (a held GET: a long bar, labelled with how long it was held), and the
    WebSocket is a bar from its first frame to its last."""
    import matplotlib.pyplot as plt

    spans = list(requests) if requests is not None else None
    lanes = {"GET": 1.0, "POST": 1.12, "ws": 1.24} if spans is not None else {"server": 1.0}
    if spans is None:
        ys, bars = [float(i) for i in range(len(records))], []
    else:
        ys, bars = _layout_in_time(records, spans)
    top, bottom = min(ys, default=0.0) - 0.5, max(ys, default=0.0) + 0.5
    bottom = max([bottom, *(y for bar in bars for y in bar[1:] if y is not None)])
    fig, ax = plt.subplots(figsize=(9 + 1.5 * (spans is not None), 0.32 * (bottom - top) + 1.2))
    ax.vlines([0, *lanes.values()], top, bottom, colors="grey", linewidth=1)
    for y, r in zip(ys, records, strict=True):
        server = lanes.get(r.transport, 1.0)
        x = 0 if (r.direction == ">") == (r.node != "client") else server
        color = COLORS[r.transport]
        ax.annotate("", (x, y), (server - x, y), arrowprops=dict(arrowstyle="->", color=color))
        label = f"{r.transport} {r.wire[:width]}" + ("…" if len(r.wire) > width else "")
        ax.text(0.5, y - 0.12, label, ha="center", va="bottom", fontsize=8, family="monospace")
        ax.text(-0.04, y, f"{r.time * 1000:.0f} ms", ha="right", va="center", fontsize=7)
    for (opened, answered), (_, y0, y1) in zip(spans or (), bars, strict=True):
        x, color, end = lanes[opened.method], COLORS[opened.method], bottom if y1 is None else y1
        ax.vlines(x, y0 - 0.1, max(end, y0 + 0.1), colors=color, linewidth=7, alpha=0.45)
        if opened.method == "GET" and end - y0 >= 1.0:
            held = f"held {(answered.time - opened.time) * 1000:.0f} ms" if answered else "held"
            ax.text(
                x - 0.02, (y0 + end) / 2, held, fontsize=7, rotation=90, va="center", ha="right"
            )
    ws_rows = [y for y, r in zip(ys, records, strict=True) if r.transport == "ws"]
    if spans is not None and ws_rows:
        ws_lane = (ws_rows[0] - 0.3, ws_rows[-1] + 0.3)
        ax.vlines(lanes["ws"], *ws_lane, colors=COLORS["ws"], linewidth=7, alpha=0.45)
    ax.set(xlim=(-0.3, max(lanes.values()) + 0.15), ylim=(bottom + 0.1, top - 0.5), yticks=[])
    ax.set_title(title)
    ax.set_xticks([0, *lanes.values()], ["client", *lanes])
    ax.xaxis.tick_top()
    ax.set_frame_on(False)
    return fig


def _layout_in_time(
    records: list[Record], spans: list[tuple[Request, Request | None]]
) -> tuple[list[float], list[tuple[int, float, float | None]]]:
    """Heights on the diagram, proportional to time, with each packet at least a row below the
    one before (labels must not overlap): a long wait shows as a long stretch. Returns the
    packets' heights and, for each span, (its index, opened, answered or None)."""
    events: list[
        tuple[float, int, int]
    ] = []  # (time, order at a tie, index); index < 0: a span end
    for i, r in enumerate(records):
        events.append((r.time, 1, i))
    for k, (opened, answered) in enumerate(spans):
        events.append((opened.time, 0, -2 * k - 1))  # a request arrives before its packets…
        if answered is not None:
            events.append((answered.time, 2, -2 * k - 2))  # …and is answered after them
    events.sort()
    if not events:
        return [], []
    per_row = max((events[-1][0] - events[0][0]) / max(len(records), 1), 1e-6)  # seconds a row
    heights: dict[int, float] = {}
    y, last_time, last_packet = 0.0, events[0][0], -1.0
    for t, _, index in events:
        y += (t - last_time) / per_row
        if index >= 0:
            y = last_packet = max(y, last_packet + 1.0)
        heights[index], last_time = y, t
    ys = [heights[i] for i in range(len(records))]
    bars = [(k, heights[-2 * k - 1], heights.get(-2 * k - 2)) for k in range(len(spans))]
    return ys, bars


def timeline(
    records: list[Record],
    value: Callable[[Record], Any],
    marks: Iterable[str] = (),
    title: str = "",
    ylabel: str = "",
) -> Any:
    """Plot ``value(record)`` over time, coloured by transport (``None``: left out), with a dashed
    line at each record whose ``wire`` is in ``marks``."""
    import matplotlib.pyplot as plt

    marks = set(marks)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for t, color in COLORS.items():
        points = [(r.time * 1000, value(r)) for r in records if r.transport == t]
        points = [(x, y) for x, y in points if y is not None]
        if points:
            ax.scatter(*zip(*points, strict=True), s=14, color=color, label=t)
    for r in (r for r in records if r.wire in marks):
        ax.axvline(r.time * 1000, color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(
            r.wire,
            (r.time * 1000, 1),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            rotation=90,
            va="top",
            ha="right",
            color="grey",
        )
    ax.set(xlabel="time (ms)", ylabel=ylabel, title=title)
    ax.legend(loc="lower right")
    return fig


def latency_plot(series: dict[str, list[float]], title: str = "") -> Any:
    """Each series (seconds) message by message on the left, as a histogram on the right."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), width_ratios=[2, 1])
    ms = {name: [v * 1000 for v in values] for name, values in series.items()}
    for name, values in ms.items():
        left.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    right.hist(list(ms.values()), bins=12, label=list(ms))  # the same bins for every series
    left.set(xlabel="message #", ylabel="latency (ms)", title=title)
    right.set(xlabel="latency (ms)", ylabel="messages")
    left.legend()
    return fig


def state_diagram(transitions: dict[tuple[Any, str], Any], title: str = "") -> Any:
    """Draw a table ``{(state, event): next_state}``: the states on a circle, labelled arrows."""
    import matplotlib.pyplot as plt

    states = list(dict.fromkeys([s for s, _ in transitions] + list(transitions.values())))
    turns = [math.pi - 2 * math.pi * i / len(states) for i in range(len(states))]  # a circle
    place = {s: (math.cos(a), math.sin(a)) for s, a in zip(states, turns, strict=True)}
    edges: dict[tuple[Any, Any], list[str]] = {}
    for (source, event), target in transitions.items():
        edges.setdefault((source, target), []).append(event)
    fig, ax = plt.subplots(figsize=(7, 6))
    for (source, target), events in edges.items():
        (x0, y0), (x1, y1) = place[source], place[target]
        style = dict(arrowstyle="-|>", connectionstyle="arc3,rad=0.2", shrinkA=30, shrinkB=30)
        ax.annotate("", (x1, y1), (x0, y0), arrowprops=style)
        mx, my = (x0 + x1) / 2 + 0.1 * (y1 - y0), (y0 + y1) / 2 - 0.1 * (x1 - x0)
        ax.text(
            mx,
            my,
            "\n".join(events),
            fontsize=8,
            ha="center",
            va="center",
            color="tab:blue",
            bbox=dict(boxstyle="round", fc="white", ec="none", alpha=0.8),
        )
    for state, (x, y) in place.items():
        ax.text(
            x,
            y,
            getattr(state, "value", state),
            ha="center",
            va="center",
            fontsize=10,
            bbox=dict(boxstyle="round,pad=0.6", fc="lightyellow", ec="black"),
        )
    ax.set(xlim=(-1.5, 1.5), ylim=(-1.4, 1.4), title=title)
    ax.axis("off")
    return fig


def relabel(text: str, labels: dict[str, str]) -> str:
    """``text`` with each key of ``labels`` replaced by its value. Call it before printing ids a
    server draws at random (a recovery ``pid``, the offsets of events), so that the printed trace
    reads the same on every run: ``relabel(tracer.text(), {socket.pid: "PID"})``."""
    for value, label in sorted(labels.items(), key=lambda item: -len(item[0])):
        text = text.replace(value, label)
    return text


class Balancer(tornado.web.RequestHandler):
    """A load balancer in front of lab servers, misconfigured as such proxies often are: plain
    HTTP only (the ``Upgrade`` header is dropped, so a WebSocket never gets through) and, unless
    ``sticky``, each request to the next node in turn (round robin). Start it with
    :func:`start_balancer`; its ``log`` says where each request went and what came back."""

    SUPPORTED_METHODS = ("GET", "POST", "OPTIONS")  # type: ignore[assignment]

    def initialize(self, front: BalancerFront) -> None:  # type: ignore[override]
        self.front = front

    async def get(self) -> None:
        await self.forward()

    post = options = get

    async def forward(self) -> None:
        """Send this request on to a node, without its hop-by-hop headers (``Upgrade`` too)."""
        front, request = self.front, self.request
        node = front.pick(request.remote_ip or "")
        headers = {k: v for k, v in request.headers.items() if k in ("Content-Type", "Origin")}
        response = await front.http.fetch(
            node.url + request.uri,
            method=request.method,
            body=request.body if request.method == "POST" else None,
            headers=headers,
            raise_error=False,
            request_timeout=60,
        )
        if response.code == 599:  # the node is gone (stopped): no HTTP answer at all
            self.set_status(502)
            return self.finish()
        body = response.body or b""
        transport = self.get_query_argument("transport", "")
        shown = body.decode(errors="replace") if response.code >= 400 else ""
        front.log.append((request.method or "", transport, node.tracer.node, response.code, shown))
        self.set_status(response.code)
        for name, value in response.headers.get_all():
            if name == "Content-Type" or name.startswith("Access-Control-"):
                self.set_header(name, value)
        self.finish(body)


class BalancerFront:
    """What :func:`start_balancer` returns: ``url`` (give it to a client), ``log`` (method,
    transport, node, HTTP status, body of a refusal), and :meth:`stop`."""

    def __init__(self, nodes: list[Lab], sticky: bool) -> None:
        self.nodes, self.sticky = nodes, sticky
        self.log: list[tuple[str, str, str, int, str]] = []
        self.turn = itertools.count()
        self.http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=50)
        app = tornado.web.Application([(r"/.*", Balancer, {"front": self})])
        self.http_server = HTTPServer(app)
        sockets = tornado.netutil.bind_sockets(0, HOST)
        self.url = f"http://{HOST}:{sockets[0].getsockname()[1]}"
        self.http_server.add_sockets(sockets)

    def pick(self, address: str) -> Lab:
        """The node for a request: by the client's address if sticky (nginx ``ip_hash``), else
        the next one in turn."""
        if self.sticky:
            return self.nodes[zlib.crc32(address.encode()) % len(self.nodes)]
        return self.nodes[next(self.turn) % len(self.nodes)]

    def lines(self) -> list[str]:
        """The log as text: ``GET  polling   → A 200``, one line per request."""
        return [
            f"{method:<4} {transport:<9} → {node} {status} {body}".rstrip()
            for method, transport, node, status, body in self.log
        ]

    async def stop(self) -> None:
        """Stop listening and close the connections to the nodes."""
        self.http_server.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.http_server.close_all_connections(), 2.0)
        self.http.close()


async def start_balancer(nodes: list[Lab], *, sticky: bool = False) -> BalancerFront:
    """A :class:`Balancer` on 127.0.0.1 in front of ``nodes`` (started with ``start_server``)."""
    return BalancerFront(nodes, sticky)


def checkout() -> pathlib.Path | None:
    """The source checkout this ``sio_teach`` runs from (``make install`` installs it editable),
    for a notebook cell that runs one of its scripts (``tests/adapters/redis_node.js``) or looks
    in its ``node_modules``; None when ``sio_teach`` is an installed wheel. It is the folder above
    the package itself: no search from the working directory, so a student copy finds it too."""
    root = pathlib.Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None
