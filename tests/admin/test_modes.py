"""``instrument()`` options beyond the default: production mode reports statistics only, readonly
refuses the commands, ``auth=None`` needs no login; and the conformance app's ``--admin``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sio_teach import Client, Server
from sio_teach.admin.protocol import supported_features
from sio_teach.examples.conformance import make_app

WAIT = 5.0


class Heard:
    """A client connected to ``nsp`` (and ``/``) recording what it hears, as ``(event, args)``."""

    def __init__(self, url: str, nsp: str = "/admin", auth: dict[str, Any] | None = None) -> None:
        self.client = Client(url, transports=("websocket",), reconnection=False)
        self.socket = self.client.socket(nsp, auth)
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self.socket.on_any(lambda event, *args: self.events.append((event, args)))

    def names(self) -> list[str]:
        return [event for event, _ in self.events]

    async def until(self, event: str) -> tuple[Any, ...]:
        async with asyncio.timeout(WAIT):
            while event not in self.names():
                await asyncio.sleep(0.01)
        return next(args for name, args in self.events if name == event)


@pytest.fixture
async def listen(serve: Any) -> AsyncIterator[Callable[..., Awaitable[Heard]]]:
    """``ui = await listen(app_or_server)``: served on 127.0.0.1, a UI connected to /admin."""
    made: list[Heard] = []

    async def _listen(target: Any, auth: dict[str, Any] | None = None) -> Heard:
        if isinstance(target, Server):
            live = await serve(target.routes(), engines=[target.engine])
        else:
            live = await serve(target[0], engines=target[1])
        ui = Heard(live.base_url, auth=auth)
        made.append(ui)
        await ui.socket.connect(timeout=WAIT)
        return ui

    yield _listen
    for ui in made:
        await asyncio.wait_for(ui.client.close(), WAIT)


async def test_production_mode_sends_statistics_and_no_socket_events(listen: Any) -> None:
    sio = Server()
    admin = sio.instrument(auth=None, mode="production", stats_interval=0.05)
    ui = await listen(sio)
    (config,) = await ui.until("config")
    assert config == {"supportedFeatures": supported_features(False, False)}
    other = Client(ui.client.url, transports=("websocket",), reconnection=False)
    await other.connect(timeout=WAIT)
    await other.disconnect()
    async with asyncio.timeout(WAIT):  # a server_stats that counted the other client's connection
        while not any(
            e["type"] == "rawConnection"
            for name, (stats, *_) in ui.events
            if name == "server_stats"
            for e in stats["aggregatedEvents"]
        ):
            await asyncio.sleep(0.01)
    assert set(ui.names()) == {"config", "server_stats"}
    sio.close()
    assert admin._stats is None  # the timer stops with the server


async def test_readonly_offers_and_listens_to_no_command(listen: Any) -> None:
    sio = Server()
    sio.instrument(auth=False, readonly=True)
    ui = await listen(sio)
    assert (await ui.until("config")) == (
        {"supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"]},
    )
    assert not {"emit", "join", "leave", "_disconnect"} & sio.of("/admin").handlers.keys()
    sio.close()


async def test_the_conformance_app_admin_flag(listen: Any) -> None:
    app = make_app(admin=True)
    with pytest.raises(Exception, match="invalid credentials"):
        await listen(app, {"username": "admin", "password": "nope"})
    ui = await listen(app, {"username": "admin", "password": "changeit"})
    assert (await ui.until("session"))[0]
    assert "ALL_EVENTS" in (await ui.until("config"))[0]["supportedFeatures"]


async def test_a_change_of_socket_data_is_reported_as_socket_updated(listen: Any) -> None:
    """Development mode: assigning in ``socket.data`` (or in a dict stored in it) sends
    ``socket_updated`` with the socket's data, ``_admin`` left out, as the package's Proxy does."""
    sio = Server()
    sio.instrument(auth=None, mode="development")

    @sio.on("set-name")
    def set_name(socket: Any, name: str) -> str:
        socket.data["profile"] = {"name": name}
        socket.data["profile"]["seen"] = 1  # a nested dict is watched too
        return "ok"

    ui = await listen(sio)
    user = Client(ui.client.url, transports=("websocket",), reconnection=False)
    await user.connect(timeout=WAIT)
    assert await user.emit_with_ack("set-name", "ada", timeout=WAIT) == "ok"
    async with asyncio.timeout(WAIT):
        while len(updates := [a[0] for n, a in ui.events if n == "socket_updated"]) < 2:
            await asyncio.sleep(0.01)
    assert updates == [
        {"id": user.id, "nsp": "/", "data": {"profile": {"name": "ada"}}},
        {"id": user.id, "nsp": "/", "data": {"profile": {"name": "ada", "seen": 1}}},
    ]
    await user.disconnect()
    sio.close()
