"""``python -m sio_teach serve --admin``: the UI's page at ``/admin/`` (from ``node_modules``,
its links to public CDNs left out), and the printed credentials log in to ``/admin``."""

from __future__ import annotations

import re
from typing import Any

import tornado.httpclient

from sio_teach.client import Client
from sio_teach.errors import ConnectError
from tests.conftest import HOST, free_port
from tests.test_cli import cli  # noqa: F401  (the fixture that runs the command)


async def test_serve_admin_serves_the_page_and_prints_working_credentials(cli: Any) -> None:  # noqa: F811
    port = free_port()
    server = await cli("serve", "--port", str(port), "--admin")
    line = await server.read_until(r"Admin UI on .* password \S+", stream="err")
    match = re.search(rf"http://127\.0\.0\.1:{port}/admin/ .*username admin, password (\S+)", line)
    assert match, line
    base = f"http://{HOST}:{port}"
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    try:
        page = (await http.fetch(f"{base}/admin/", request_timeout=10)).body.decode()
        assert "<title>Socket.IO Admin UI</title>" in page and "https://" not in page
        script = re.search(r'<script src="(js/app\.[0-9a-f]+\.js)">', page)
        assert script, page
        assert (await http.fetch(f"{base}/admin/{script[1]}", request_timeout=10)).code == 200
    finally:
        http.close()
    for password, works in (("wrong", False), (match[1], True)):
        client = Client(base, transports=("websocket",))
        admin = client.socket("/admin", {"username": "admin", "password": password})
        try:
            await admin.connect(timeout=10)
            connected = True
        except ConnectError as error:
            connected = False
            assert "invalid credentials" in str(error)
        await client.close()
        assert connected is works
    assert await server.stop() == 0
