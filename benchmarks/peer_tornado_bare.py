"""A floor, not a server: the bench app hand-rolled on a bare Tornado WebSocket handler.

    python -m benchmarks.peer_tornado_bare --port 3000

It speaks just enough of Engine.IO v4 / Socket.IO v5 over a WebSocket (no polling, no heartbeat,
no binary, namespace ``/`` only) for the load generator's WebSocket scenarios: the open packet,
CONNECT, ``echo`` (ACK), ``bcast`` (to every client) and ``ping``. What it costs per message is
roughly what Tornado's WebSocket and ``json`` cost, so a column of it shows how much of a real
server's cost is its own code. A plain GET answers 200 so that the driver sees it is ready.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any

import tornado.web
import tornado.websocket

from sio_teach.examples import stop_on_signals

OPEN = '0{"sid":"%s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
CLIENTS: set[BareHandler] = set()  # everyone is in room "r"
dumps = json.JSONEncoder(separators=(",", ":")).encode


class BareHandler(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            self.write("bare tornado: WebSocket only")  # the readiness probe
            return
        await super().get(*args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        self.write_message(OPEN % secrets.token_urlsafe(15))

    def on_message(self, message: str | bytes) -> None:
        if not isinstance(message, str) or not message.startswith("4"):
            return  # "3" (pong) and anything else: ignored
        if message.startswith("40"):
            CLIENTS.add(self)
            self.write_message('40{"sid":"' + secrets.token_urlsafe(15) + '"}')
            return
        if not message.startswith("42"):
            return
        bracket = message.index("[")
        ack_id = message[2:bracket]
        name, *args = json.loads(message[bracket:])
        if name == "echo" and ack_id:
            self.write_message("43" + ack_id + dumps(args))
        elif name == "bcast":
            text = "42" + dumps(["msg", *args])
            for client in list(CLIENTS):
                try:
                    client.write_message(text)
                except tornado.websocket.WebSocketClosedError:
                    CLIENTS.discard(client)
        elif name == "ping":
            self.write_message("42" + dumps(["pong", *args]))

    def on_close(self) -> None:
        CLIENTS.discard(self)


async def serve(port: int, host: str) -> None:
    http = tornado.web.Application([(r"/socket.io/", BareHandler)]).listen(port, host)
    stop = stop_on_signals()
    print(f"bare tornado on ws://{host}:{port}/socket.io/", flush=True)
    await stop.wait()
    http.stop()


def main() -> None:
    from benchmarks._peer_app import parse_args

    args = parse_args(__doc__.splitlines()[0])
    logging.getLogger("tornado.access").setLevel(logging.ERROR)
    asyncio.run(serve(args.port, args.host))


if __name__ == "__main__":
    main()
