"""One client posts a megabyte of noops; how long does an unrelated client wait meanwhile?

    python -m benchmarks.noop_flood            # 7 rounds on the conformance app, in-process

A polling POST may hold as many packets as fit in maxPayload: 1 MB of ``6\\x1e6\\x1e…`` is about
500,000 noops. Each round opens two fresh sessions on the conformance app's raw Engine.IO echo
(``/engine.io/``), starts the big POST, and after a delay (0 … 300 ms, so that it lands during the
upload or during the processing) makes an echo round trip on the other session (POST, then GET).
Printed: the time the big POST took to be answered, and the worst echo round trip. Loopback only;
every loop is bounded.
"""

from __future__ import annotations

import asyncio
import json
import time

import tornado.httpclient
import tornado.httpserver

from sio_teach.examples.conformance import make_app
from sio_teach.transports.http import listen

DELAYS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)


def server_port(server: tornado.httpserver.HTTPServer) -> int:
    """The port a server listens on (after ``listen(app, 0)``)."""
    sock = next(iter(server._sockets.values()))
    return int(sock.getsockname()[1])


async def main() -> None:
    app, servers = make_app()
    http = listen(app, 0)
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=20)
    base = f"http://127.0.0.1:{server_port(http)}/engine.io/?EIO=4&transport=polling"
    body = "\x1e".join(["6"] * 499_996 + ["4done"])  # 999,997 bytes: under maxPayload

    async def handshake() -> str:
        response = await client.fetch(base)
        return str(json.loads(response.body[1:])["sid"])

    async def echo(sid: str, delay: float) -> float:
        await asyncio.sleep(delay)
        start = time.perf_counter()
        await client.fetch(f"{base}&sid={sid}", method="POST", body="4hi")
        await client.fetch(f"{base}&sid={sid}")
        return time.perf_counter() - start

    posts, echoes = [], []
    for delay in DELAYS:
        flooder, witness = await handshake(), await handshake()
        start = time.perf_counter()
        post = asyncio.ensure_future(
            client.fetch(f"{base}&sid={flooder}", method="POST", body=body)
        )
        echoes.append(await echo(witness, delay))
        await post
        posts.append(time.perf_counter() - start)
    print(
        f"1 MB of noops in one POST: answered in {min(posts):.3f}-{max(posts):.3f} s; "
        f"an unrelated echo round trip meanwhile: at worst {max(echoes) * 1000:.0f} ms"
    )
    client.close()
    http.stop()
    for server in servers:
        server.close_all()


if __name__ == "__main__":
    asyncio.run(main())
