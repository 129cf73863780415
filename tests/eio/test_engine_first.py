"""``http.HTTPServer`` serves an application's Engine.IO paths first (``polling.EngineFirst``).

Requests on an Engine.IO path skip the application's rules (looked up in a dict); every other
request is routed by the application as usual. Both kinds are served by one server here.
"""

from __future__ import annotations

import json
from typing import Any

import tornado.httpclient
import tornado.web

from sio_teach.transports.eio_server import EngineServer
from sio_teach.transports.polling import EngineFirst


class Page(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("a page of the application")


class CountingApplication(tornado.web.Application):
    """Counts the requests that went through the application's own rules."""

    routed = 0

    def find_handler(self, request: Any, **kwargs: Any) -> Any:
        self.routed += 1
        return super().find_handler(request, **kwargs)


async def test_engine_paths_skip_the_rules_and_other_paths_keep_them(
    serve: Any, http_client: tornado.httpclient.AsyncHTTPClient
) -> None:
    engine = EngineServer(add_trailing_slash=False)
    app = CountingApplication([(r"/page", Page), *engine.routes("/engine.io/")])
    live = await serve(app, engines=[engine])
    base = f"http://127.0.0.1:{live.port}"

    for path in ("/engine.io/", "/engine.io"):  # both, as add_trailing_slash=False serves
        answer = await http_client.fetch(f"{base}{path}?EIO=4&transport=polling&t=x%20y")
        assert answer.body.startswith(b"0{"), (path, answer.body)
        sid = json.loads(answer.body[1:])["sid"]
        assert engine.sessions[sid].request.query_arguments["t"] == [b"x y"]  # parsed once
    assert app.routed == 0, f"expected no request through the rules, got {app.routed}"

    page = await http_client.fetch(f"{base}/page")
    assert page.body == b"a page of the application"
    missing = await http_client.fetch(f"{base}/nowhere", raise_error=False)
    assert missing.code == 404
    assert app.routed == 2, f"expected the 2 other requests routed by the app, got {app.routed}"


def test_engine_first_finds_every_mounted_engine_path() -> None:
    one, two = EngineServer(), EngineServer(add_trailing_slash=False)
    app = tornado.web.Application([*one.routes("/a/"), *two.routes("/b")])
    assert sorted(EngineFirst(app).engines) == ["/a/", "/b", "/b/"]
