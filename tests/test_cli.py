"""The command line, run as a user runs it: ``python -m sio_teach serve`` / ``trace URL`` in a subprocess.

The ``trace`` tests talk to a server running in the test's own event loop, so that the test can
see what the server saw. Every wait is bounded (:func:`read_until`, :meth:`Cli.stop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import tornado.httpclient

from sio_teach import Server, Socket, web
from tests.conftest import HOST, ROOT, free_port


class Cli:
    """A running ``python -m sio_teach …``; its output is collected line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        self.pumps = asyncio.gather(
            self._pump(proc.stdout, self.out), self._pump(proc.stderr, self.err)
        )

    @staticmethod
    async def _pump(stream: asyncio.StreamReader, sink: list[str]) -> None:
        while line := await stream.readline():
            sink.append(line.decode(errors="replace").rstrip("\n"))

    async def read_until(self, pattern: str, stream: str = "out", timeout: float = 15.0) -> str:
        """Wait for a line of stdout (or ``stream="err"``) matching ``pattern``; return it."""
        lines = self.out if stream == "out" else self.err

        async def poll() -> str:
            while True:
                for line in lines:
                    if re.search(pattern, line):
                        return line
                if self.proc.returncode is not None and self.pumps.done():
                    raise AssertionError(
                        f"exited ({self.proc.returncode}) without {pattern!r}\n{self}"
                    )
                await asyncio.sleep(0.02)

        try:
            return await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no line matching {pattern!r} within {timeout} s\n{self}"
            ) from None

    async def wait(self, timeout: float = 15.0) -> int:
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"still running after {timeout} s\n{self}") from None
        await asyncio.wait_for(self.pumps, 5.0)
        return self.proc.returncode  # type: ignore[return-value]

    async def stop(self) -> int:
        """SIGTERM, then wait for the exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait()

    def __str__(self) -> str:
        return "stdout:\n" + "\n".join(self.out) + "\nstderr:\n" + "\n".join(self.err)


@pytest.fixture
async def cli() -> AsyncIterator[Callable[..., Any]]:
    """``proc = await cli("trace", url, env={...})`` starts ``python -m sio_teach …`` in the repo root."""
    started: list[Cli] = []

    async def start(*args: str, env: dict[str, str] | None = None) -> Cli:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sio_teach", *args,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "SIO_TEACH_DEBUG": "", **(env or {})},
        )  # fmt: skip
        started.append(Cli(proc))
        return started[-1]

    yield start
    for proc in started:
        if proc.proc.returncode is None:
            proc.proc.kill()
            await proc.proc.wait()


@pytest.fixture
async def app_server(serve: Any) -> tuple[str, Server, list[tuple[str, Any]]]:
    """A Socket.IO server in this loop, with a namespace ``/x``; returns (url, sio, what it saw)."""
    seen: list[tuple[str, Any]] = []
    sio = Server()
    sio.on("connect", lambda socket, auth: seen.append(("connect /", auth)))
    sio.on("disconnect", lambda socket, reason: seen.append(("disconnect /", reason)))

    def on_x(socket: Socket, auth: Any) -> None:
        seen.append(("connect /x", auth))
        socket.emit("welcome", "to /x")

    sio.on("connect", on_x, namespace="/x")
    live = await serve(sio.routes(), engines=[sio.engine])
    return live.base_url, sio, seen


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


# -- --help -------------------------------------------------------------------------------------


async def test_help_names_the_commands_and_their_options(cli: Any) -> None:
    top = await cli("--help")
    assert await top.wait() == 0
    assert "serve" in str(top) and "trace" in str(top)

    serve = await cli("serve", "--help")
    assert await serve.wait() == 0
    for option in ("--port", "--host", "--block-websocket", "--faults", "--debug"):
        assert option in str(serve), option

    trace = await cli("trace", "--help")
    assert await trace.wait() == 0
    for option in ("url", "--transports", "--namespace", "--auth", "--seconds", "--debug"):
        assert option in str(trace), option


async def test_bad_arguments_are_refused_with_usage(cli: Any) -> None:
    for args in (
        ["trace", "http://x", "--auth", "[1]"],
        ["trace", "http://x", "--transports", "carrier-pigeon"],
    ):
        proc = await cli(*args)
        assert await proc.wait() == 2
        assert "usage:" in str(proc)


# -- serve --------------------------------------------------------------------------------------


async def test_serve_answers_the_handshake_serves_the_page_and_stops_on_sigterm(cli: Any) -> None:
    port = free_port()
    server = await cli("serve", "--port", str(port))
    await server.read_until(rf"http://127\.0\.0\.1:{port}/", stream="err")
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    try:
        base = f"http://{HOST}:{port}"
        handshake = await http.fetch(
            f"{base}/socket.io/?EIO=4&transport=polling", request_timeout=10
        )
        assert handshake.body.decode().startswith('0{"sid":"')
        page = (await http.fetch(f"{base}/", request_timeout=10)).body.decode()
        for part in (
            'id="message"',
            'id="send"',
            'id="messages"',
            'id="trace"',
            "/vendor/socket.io.min.js",
        ):
            assert part in page, part
        bundle = await http.fetch(f"{base}/vendor/socket.io.min.js", request_timeout=10)
        assert b"socket.io" in bundle.body[:200].lower()
        for name in ("app", "wire", "diagram", "packet", "heartbeat", "sessions", "faults"):
            script = await http.fetch(f"{base}/static/{name}.js", request_timeout=10)
            assert "javascript" in script.headers["Content-Type"], name  # an ES module must be
        assert (await http.fetch(f"{base}/static/style.css", request_timeout=10)).code == 200
        faults = await http.fetch(f"{base}/faults", request_timeout=10, raise_error=False)
        assert faults.code == 404  # no fault buttons unless --faults
    finally:
        http.close()
    await server.read_until(r"S1 > GET  eio open +0\{\"sid\":\"S1\"")  # the live server trace
    assert await server.stop() == 0


async def test_serve_faults_turns_the_lab_knobs_over_http(cli: Any) -> None:
    port = free_port()
    server = await cli("serve", "--port", str(port), "--faults")
    await server.read_until(r"with fault buttons", stream="err")
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    base = f"http://{HOST}:{port}"

    async def turn(action: str, value: Any = None) -> dict[str, Any]:
        body = json.dumps({"action": action, "value": value})
        answer = await http.fetch(f"{base}/faults", method="POST", body=body, request_timeout=10)
        return json.loads(answer.body)

    try:
        state = json.loads((await http.fetch(f"{base}/faults", request_timeout=10)).body)
        assert state == {"latency": 0.0, "block": False, "partitioned": False}
        assert (await turn("latency", 0.3))["latency"] == 0.3
        started = asyncio.get_running_loop().time()
        await http.fetch(f"{base}/socket.io/?EIO=4&transport=polling", request_timeout=10)
        assert asyncio.get_running_loop().time() - started >= 0.3  # the handshake waited it out
        assert (await turn("block", True))["block"] is True
        assert (await turn("partition", 0.2))["partitioned"] is True
        bad = await http.fetch(
            f"{base}/faults", method="POST", body='{"action":"meteor"}', raise_error=False
        )
        assert bad.code == 400
        await turn("restart")  # a fresh server on the same port; WebSockets stay blocked
        for _ in range(50):  # bounded: the port is back within a moment
            await asyncio.sleep(0.1)
            with contextlib.suppress(OSError, tornado.httpclient.HTTPClientError):
                state = json.loads((await http.fetch(f"{base}/faults", request_timeout=2)).body)
                break
        assert state == {"latency": 0.0, "block": True, "partitioned": False}
        await http.fetch(f"{base}/socket.io/?EIO=4&transport=polling", request_timeout=10)
        await server.read_until(r"S2 > GET  eio open")  # a new session; the aliases carry on
    finally:
        http.close()
    assert await server.stop() == 0


async def test_the_page_says_how_to_install_a_missing_browser_client(
    serve: Any, http_client: Any
) -> None:
    sio = web.demo_server()
    live = await serve(web.make_app(sio, bundle=None), engines=[sio.engine])
    response = await http_client.fetch(live.url("/"), raise_error=False, request_timeout=10)
    assert response.code == 500
    text = response.body.decode()
    assert "socket.io-client" in text and "make install" in text and "node_modules" in text


# -- trace --------------------------------------------------------------------------------------


async def test_trace_prints_both_layers_and_stops_after_seconds(cli: Any, app_server: Any) -> None:
    url, _sio, seen = app_server
    proc = await cli("trace", url, "--seconds", "1", "--auth", '{"token":"abc"}')
    assert await proc.wait() == 0, proc
    text = "\n".join(proc.out)
    assert re.search(r'S1 < GET  eio open +0\{"sid":"S1"', text), proc
    assert re.search(r'S1 > POST sio CONNECT +40\{"token":"abc"\}', text), proc
    assert re.search(r'S1 < (GET |ws  ) sio CONNECT +40\{"sid":"', text), proc
    assert ("connect /", {"token": "abc"}) in seen
    await wait_for(lambda: ("disconnect /", "client namespace disconnect") in seen)


async def test_trace_a_namespace_over_polling_until_sigterm(cli: Any, app_server: Any) -> None:
    url, _sio, seen = app_server
    proc = await cli(
        "trace", url, "--transports", "polling", "--namespace", "/x", "--auth", '{"k":1}'
    )
    await proc.read_until(r'S1 < GET  sio CONNECT +40/x,\{"sid":"')
    await proc.read_until(r'S1 < GET  sio EVENT +42/x,\["welcome","to /x"\]')
    assert seen == [("connect /x", {"k": 1})]
    assert await proc.stop() == 0
    assert not [line for line in proc.out if " ws " in line], "polling only: no WebSocket"


async def test_trace_stopped_while_it_connects_exits_cleanly(cli: Any, app_server: Any) -> None:
    url, sio, _seen = app_server
    gate = asyncio.Event()

    async def hold(socket: Socket) -> None:  # the namespace's CONNECT waits for the test
        await gate.wait()

    sio.use(hold, namespace="/x")
    proc = await cli("trace", url, "--transports", "polling", "--namespace", "/x")
    await proc.read_until(r"S1 > POST sio CONNECT +40/x,")  # connecting: the signal comes now
    proc.proc.send_signal(signal.SIGTERM)
    gate.set()
    status = await proc.wait()
    assert status == 0, f"expected a clean exit (0) after SIGTERM while connecting, got {status}"


async def test_trace_reports_a_refused_namespace(cli: Any, app_server: Any) -> None:
    url, _sio, _seen = app_server
    proc = await cli("trace", url, "--namespace", "/nope", "--seconds", "5")
    assert await proc.wait() == 1
    assert any("sio CONNECT_ERROR" in line for line in proc.out), proc
    assert any("Invalid namespace" in line for line in proc.err), proc


async def test_trace_reports_a_server_that_is_not_there(cli: Any) -> None:
    proc = await cli("trace", f"http://{HOST}:{free_port()}", "--seconds", "1")
    assert await proc.wait() == 1
    assert any("cannot connect" in line for line in proc.err), proc


@pytest.mark.parametrize("how", ["--debug", "SIO_TEACH_DEBUG=1"])
async def test_debug_logs_each_packet_per_session(cli: Any, app_server: Any, how: str) -> None:
    url, _sio, _seen = app_server
    args = ["trace", url, "--seconds", "0.5"] + (["--debug"] if how == "--debug" else [])
    proc = await cli(*args, env={"SIO_TEACH_DEBUG": "1"} if how != "--debug" else None)
    assert await proc.wait() == 0, proc
    assert any(
        re.search(r"DEBUG +sio_teach\.packets: S1 > POST sio CONNECT", line) for line in proc.err
    ), proc
    assert any(re.search(r"DEBUG +sio_teach\.packets: S1 < ", line) for line in proc.err), proc
    assert proc.out == [], "with --debug the packets go to the log, not to stdout"
