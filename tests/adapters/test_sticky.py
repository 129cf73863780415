"""Why a cluster behind a load balancer needs sticky sessions (socket.io docs, "Using multiple
nodes"): an Engine.IO session lives on one node, and HTTP long-polling makes several requests.

Two Python nodes (sharing a Redis) behind nginx: with round-robin the second polling request
lands on the other node, which answers 400 ``{"code":1,"message":"Session ID unknown"}``; with
``ip_hash`` every request of a client reaches the same node, and the cluster works.

nginx comes from ``make system-deps``; without it these tests are skipped, naming the binary.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient

from sio_teach.cluster import NGINX_PREAMBLE, find_nginx
from tests.adapters.conftest import WAIT
from tests.conftest import free_port

NGINX = find_nginx()
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="`nginx` binary not found (run `make system-deps` as root)"
)

CONFIG = (
    NGINX_PREAMBLE
    + """  upstream nodes {{
    {balance}
    server 127.0.0.1:{a};
    server 127.0.0.1:{b};
  }}
  server {{
    listen 127.0.0.1:{port};
    location /socket.io/ {{
      proxy_pass http://nodes;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 30s;
    }}
  }}
}}
"""
)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Any]:
    """``url = nginx(balance, port_a, port_b)`` starts nginx in front of two nodes."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(balance: str, a: int, b: int) -> str:
        port = free_port()
        conf = tmp_path / f"nginx-{len(procs)}.conf"
        conf.write_text(CONFIG.format(dir=tmp_path, balance=balance, a=a, b=b, port=port))
        command = [str(NGINX), "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"]
        procs.append(subprocess.Popen(command, stderr=subprocess.PIPE))
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return f"http://127.0.0.1:{port}"
            except OSError:
                if procs[-1].poll() is not None:
                    pytest.fail(f"nginx did not start: {procs[-1].stderr.read()!r}")  # type: ignore[union-attr]
                time.sleep(0.05)
        pytest.fail("nginx did not listen within 5 s")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(WAIT)


async def polling_session(url: str, requests: int = 2) -> list[tuple[int, str]]:
    """A hand-made polling client: the handshake, a POST of CONNECT, then GETs (each answered
    at once: the first brings the CONNECT reply); (status, body) of each after the handshake."""
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    base = f"{url}/socket.io/?EIO=4&transport=polling"
    try:
        opened = await http.fetch(base, request_timeout=WAIT)
        sid = json.loads(opened.body.decode()[1:])["sid"]
        answers = []
        for i in range(requests):
            method, body = ("POST", "40") if i == 0 else ("GET", None)
            response = await http.fetch(
                f"{base}&sid={sid}",
                method=method,
                body=body,
                raise_error=False,
                request_timeout=WAIT,
            )
            answers.append((response.code, (response.body or b"").decode()))
            if response.code != 200:
                break
        return answers
    finally:
        http.close()


async def test_round_robin_breaks_polling_and_ip_hash_works(
    redis_server: Any, py_node: Any, nginx: Any, client: Any
) -> None:
    a, b = await py_node(redis_server.url), await py_node(redis_server.url)
    round_robin = nginx("", a.live.port, b.live.port)
    answers = await polling_session(round_robin)
    assert answers[-1] == (400, '{"code":1,"message":"Session ID unknown"}'), answers

    sticky = nginx("ip_hash;", a.live.port, b.live.port)
    answers = await polling_session(sticky, requests=2)  # CONNECT, then its reply
    assert all(code == 200 for code, _ in answers), answers
    assert answers[1][1].startswith("40{"), answers  # the CONNECT reply

    # a real client through the sticky balancer, polling then upgrading, hears the cluster
    direct = await client(a.url, "direct")
    via = await client(sticky, "via nginx", transports=["polling", "websocket"])
    direct.client.emit("chat", "through nginx")
    assert await via.wait("chat", 1) == [("through nginx",)]
    assert await via.call("join", "r") == "r"  # acks come back through nginx too
