"""The command line: watch the protocol from a terminal.

    python -m sio_teach serve [--port 3000]        # the demo page and chat server; prints its trace
    python -m sio_teach trace http://127.0.0.1:3000 [--transports polling] [--namespace /x]
                                                   # connects as a client; prints the client's trace
    python -m sio_teach cluster --nodes 3 --adapter pubsub|sharded|streams
                                                   # Redis + N nodes + nginx: see sio_teach.cluster

Both print one line per packet on stdout (``>`` sent, ``<`` received, as seen by that side) until
Ctrl-C or SIGTERM (``trace``: or ``--seconds N``); messages about the run go to stderr.

``--debug`` (or the environment variable ``SIO_TEACH_DEBUG=1``) follows the Python habit instead:
everything goes through :mod:`logging` at DEBUG level on stderr — HTTP requests (``tornado.access``),
the library's own messages, and each packet, per session, from the logger ``sio_teach.packets``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import sys
from collections.abc import Callable
from typing import Any

from sio_teach import cluster, web
from sio_teach.client import Client
from sio_teach.errors import ConnectError
from sio_teach.examples import stop_on_signals
from sio_teach.trace import Record, Tracer

packet_log = logging.getLogger("sio_teach.packets")


def note(message: str) -> None:
    """A message about the run (not a packet): stderr, so that stdout is only the trace."""
    print(message, file=sys.stderr, flush=True)


def packet_printer(debug: bool) -> Callable[[Record], None]:
    """A tracer listener: each packet as a line on stdout, or as a DEBUG log record."""
    if debug:
        return lambda record: packet_log.debug(record.line(width=200))
    return lambda record: print(record.line(times=True), flush=True)


def setup_logging(debug: bool) -> None:
    if debug:
        logging.basicConfig(
            level=logging.DEBUG, format="%(asctime)s %(levelname)-5s %(name)s: %(message)s"
        )
        logging.getLogger("asyncio").setLevel(logging.INFO)
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        # a refused request (4xx) is part of the show, not a warning
        logging.getLogger("tornado.access").setLevel(logging.ERROR)


# -- serve --------------------------------------------------------------------------------------


async def serve(args: argparse.Namespace, debug: bool) -> int:
    tracer = Tracer("server", sio=True, limit=0)  # keep no records: a demo may run for days
    tracer.listeners.append(packet_printer(debug))
    bundle = web.find_bundle()
    if bundle is None:
        note(f"warning: {web.missing_bundle_message()}")
    stop = stop_on_signals()
    admin, password = None, secrets.token_urlsafe(9)
    if args.admin:
        from sio_teach.admin import hash_password
        from sio_teach.admin.ui import find_ui

        admin = {"auth": {"username": "admin", "password": hash_password(password)}}
        if find_ui() is None:
            note("warning: the Admin UI page is missing from node_modules: run `make install`")
    lab = web.start_demo(
        host=args.host,
        port=args.port,
        faults=args.faults,
        block_websocket=args.block_websocket,
        tracer=tracer,
        bundle=bundle,
        admin=admin,
    )
    blocked = " (WebSocket blocked: clients stay on long-polling)" if args.block_websocket else ""
    faults = " with fault buttons" if args.faults else ""
    note(
        f"sio_teach demo on http://{args.host}:{lab.port}/{blocked}{faults} — open it in two "
        "browsers; Ctrl-C stops"
    )
    if args.admin:
        note(
            f"Admin UI on http://{args.host}:{lab.port}/admin/ — server URL "
            f"http://{args.host}:{lab.port}, username admin, password {password}"
        )
    await stop.wait()
    note("stopping")
    await lab.shutdown()  # every session gets its close packet, then the port is closed
    return 0


# -- trace --------------------------------------------------------------------------------------


async def trace(args: argparse.Namespace, debug: bool) -> int:
    tracer = Tracer("client", sio=True, limit=0)
    tracer.listeners.append(packet_printer(debug))
    main_auth = args.auth if args.namespace == "/" else None
    client = Client(
        args.url, path=args.path, transports=args.transports, auth=main_auth, tracer=tracer
    )
    socket = client if args.namespace == "/" else client.socket(args.namespace, args.auth)
    socket.on("disconnect", lambda reason: note(f"disconnected: {reason}"))
    client.on("reconnect_attempt", lambda n: note(f"reconnecting (attempt {n})"))
    stop = stop_on_signals()  # before connecting: a signal meanwhile ends the trace cleanly
    try:
        await socket.connect(timeout=args.timeout)
    except ConnectError as error:
        note(f"trace: cannot connect to {args.namespace} at {args.url}: {error}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.close(), 5.0)
        return 1
    until = f"for {args.seconds} s" if args.seconds is not None else "until Ctrl-C"
    note(f"connected to {args.namespace} as {socket.id}; tracing {until}")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.seconds)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.disconnect(), 5.0)
    return 0


# -- arguments ----------------------------------------------------------------------------------


def json_object(text: str) -> dict[str, Any]:
    """``--auth``: the CONNECT payload must be a JSON object (socket.io-protocol)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. {"token":"abc"}')
    return value


def transport_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names or set(names) - {"polling", "websocket"}:
        raise argparse.ArgumentTypeError("a comma-separated list of polling and websocket")
    return names


def namespace(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError("a namespace starts with /")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sio_teach",
        description="Watch Socket.IO work: a demo server with a browser page, or a tracing client.",
    )
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        help="log at DEBUG on stderr (HTTP requests, library messages, each packet as a >/< line "
        "per session) instead of the plain trace on stdout; also SIO_TEACH_DEBUG=1",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = commands.add_parser(
        "serve",
        parents=[debug],
        help="run the demo server and its chat page; print the server's trace",
        description="Serve the chat page at / (the official socket.io browser client, from "
        "node_modules) and the Socket.IO server at /socket.io/, and print every packet the "
        "server sends (>) or receives (<).",
    )
    s.add_argument("--port", type=int, default=3000, help="port (default 3000; 0: a free one)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument(
        "--block-websocket",
        action="store_true",
        help="refuse WebSocket requests, as a strict proxy would: clients stay on long-polling",
    )
    s.add_argument(
        "--faults",
        action="store_true",
        help="show fault buttons on the page (latency, block WebSockets, drop, partition, "
        "restart): the notebooks' lab knobs, for anyone who can reach the page; off by default",
    )
    s.add_argument(
        "--admin",
        action="store_true",
        help="instrument the server for the official Admin UI (namespace /admin) and serve its "
        "page at /admin/ (from node_modules); the password is printed at start",
    )
    s.set_defaults(run=serve)

    t = commands.add_parser(
        "trace",
        parents=[debug],
        help="connect to a Socket.IO server as a client; print the client's trace",
        description="Connect to URL with sio_teach.Client and print every packet it sends (>) or "
        "receives (<), both layers (eio, sio), until Ctrl-C, SIGTERM or --seconds.",
    )
    t.add_argument("url", help="the server, e.g. http://127.0.0.1:3000")
    t.add_argument(
        "--transports",
        type=transport_list,
        default=("polling", "websocket"),
        help="comma-separated, in order (default polling,websocket: start polling, then upgrade)",
    )
    t.add_argument(
        "--namespace", type=namespace, default="/", help="namespace to connect (default /)"
    )
    t.add_argument("--auth", type=json_object, default=None, help="CONNECT payload, a JSON object")
    t.add_argument("--path", default="/socket.io/", help="server path (default /socket.io/)")
    t.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    t.add_argument("--timeout", type=float, default=10.0, help="connect timeout (default 10 s)")
    t.set_defaults(run=trace)
    cluster.add_parser(commands, [debug])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("SIO_TEACH_DEBUG", "") not in ("", "0")
    setup_logging(debug)
    if args.command == "cluster":
        return args.cluster(args)
    try:
        return asyncio.run(args.run(args, debug))
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were set (e.g. while connecting)
        return 130
