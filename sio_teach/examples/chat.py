"""A small chat: the server, two Python clients, and the live packet trace (``make demo``).

    python -m sio_teach.examples.chat            # the demo: alice and bob chat on 127.0.0.1
    python -m sio_teach.examples.chat --serve    # only the server, for your own clients

The server keeps everyone in room ``lobby``; ``chat`` is relayed to the others and acknowledged
with ``"delivered"``. Each packet is printed as it crosses the wire, as the server saw it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from typing import Any

import tornado.web

from sio_teach import Client, Server, Socket, Tracer
from sio_teach.transports.http import listen


def chat_server(tracer: Tracer | None = None, adapter: Any = None, **options: Any) -> Server:
    """The chat; ``adapter`` (a factory, e.g. ``redis_adapter(url)``) makes it one node of many;
    ``options`` go to the :class:`Server` (e.g. ``connection_state_recovery=True``)."""
    if adapter is not None:
        options["adapter"] = adapter
    sio = Server(tracer=tracer, ping_interval=5.0, ping_timeout=5.0, **options)

    @sio.on("connect")
    def on_connect(sock: Socket, auth: dict) -> None:
        sock.data["name"] = auth.get("name", "anonymous")
        sock.join("lobby")
        sock.to("lobby").emit("chat", "server", f"{sock.data['name']} joined")

    @sio.on("chat")
    def on_chat(sock: Socket, text: str) -> str:
        sock.to("lobby").emit("chat", sock.data["name"], text)
        return "delivered"

    return sio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def demo(port: int) -> None:
    tracer = Tracer("server", sio=True)
    tracer.listeners.append(lambda record: print(record.line(times=True), flush=True))
    sio = chat_server(tracer)
    http = listen(tornado.web.Application(sio.routes()), port)
    url = f"http://127.0.0.1:{port}"
    print(f"chat server on {url}/socket.io/ — packets as the server sees them:\n")

    alice = Client(url, auth={"name": "alice"})
    bob = Client(url, auth={"name": "bob"}, transports=["polling"])  # bob stays on long-polling
    heard: list[str] = []
    bob.on("chat", lambda who, text: heard.append(f"{who}: {text}"))
    await alice.connect()
    await bob.connect()
    await asyncio.sleep(0.3)  # let alice's upgrade to WebSocket finish
    reply = await alice.emit_with_ack("chat", "hi bob!", timeout=5)
    await bob.emit_with_ack("chat", "hello alice", timeout=5)
    await asyncio.sleep(0.2)
    print(f"\nalice's message was {reply}; bob heard: {heard}")
    await alice.disconnect()
    await bob.disconnect()
    await asyncio.sleep(0.1)  # let the close packets arrive before the server stops
    http.stop()
    sio.close()


async def serve(port: int) -> None:
    tracer = Tracer("server", sio=True)
    tracer.listeners.append(lambda record: print(record.line(times=True), flush=True))
    listen(tornado.web.Application(chat_server(tracer).routes()), port)
    print(f"chat server on http://127.0.0.1:{port}/socket.io/ (Ctrl-C to stop)")
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="sio_teach chat demo")
    parser.add_argument("--serve", action="store_true", help="run only the server")
    parser.add_argument("--demo", action="store_true", help="run the scripted demo (default)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    args = parser.parse_args()
    logging.getLogger("tornado.access").setLevel(logging.ERROR)
    port = args.port or free_port()
    asyncio.run(serve(port) if args.serve else demo(port))


if __name__ == "__main__":
    main()
