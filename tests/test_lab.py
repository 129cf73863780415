"""The notebook helpers of ``sio_teach.lab`` that stand in for internals: ``held_get`` (a session's
long-poll GET is held), ``count_encodes`` (Socket.IO encodes by where they happen) and
``data_file`` (the notebooks' data, from an instructor notebook or a student copy)."""

from __future__ import annotations

import pathlib

import pytest

from sio_teach import Client, lab
from sio_teach.adapters import memory
from sio_teach.sio import parser


async def test_held_get_returns_once_the_server_holds_the_get() -> None:
    server_lab = await lab.start_server()
    client = Client(server_lab.url, transports=("polling",))
    try:
        await client.connect()
        await lab.held_get(server_lab, "sid-0001")
        assert server_lab.engine.sessions["sid-0001"].polling  # the GET is there, waiting
        await lab.held_get(server_lab.server, "sid-0001")  # a Server or an EngineServer too
        await lab.held_get(server_lab.engine, "sid-0001")
        with pytest.raises(TimeoutError):
            await lab.held_get(server_lab, "no-such-session", timeout=0.05)
        assert lab.can_send_now(server_lab, "sid-0001")  # a GET is held: a packet can leave
        server_lab.latency = 0.2  # the answer to that GET takes a while to leave
        server_lab.server.emit("news", 1)  # answers the held GET
        await lab.held_get(server_lab, "sid-0001", held=False)
        assert not lab.can_send_now(server_lab, "sid-0001")  # no GET until the client's next
        server_lab.latency = 0.0
    finally:
        await client.disconnect()
        await server_lab.stop()


async def test_count_encodes_counts_by_site_and_puts_encode_back() -> None:
    server_lab = await lab.start_server()
    sio = server_lab.server
    inbox: list[str] = []
    clients = [Client(server_lab.url, transports=("websocket",)) for _ in range(3)]
    try:
        for client in clients:
            client.on("news", inbox.append)
            await client.connect()
        with lab.count_encodes() as encodes:
            sio.emit("news", "to all")  # one broadcast, three recipients
            for socket in sio.of("/").sockets.values():
                socket.emit("news", "one by one")
            await lab.wait_until(lambda: len(inbox) == 6)
        assert encodes == {"broadcast": 1, "socket": 3}
        assert memory.encode is parser.encode  # the originals are back
        sio.emit("news", "after")
        await lab.wait_until(lambda: len(inbox) == 9)
        assert encodes == {"broadcast": 1, "socket": 3}  # no longer counting
    finally:
        for client in clients:
            await client.disconnect()
        await server_lab.stop()


def test_count_encodes_restores_encode_after_an_error() -> None:
    with pytest.raises(RuntimeError), lab.count_encodes():
        raise RuntimeError("inside the block")
    assert memory.encode is parser.encode


def test_data_file_is_found_beside_the_notebook_or_one_folder_up(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bench.jsonl").write_text("{}\n")
    (tmp_path / "student").mkdir()
    monkeypatch.chdir(tmp_path)  # an instructor notebook's folder
    assert lab.data_file("bench.jsonl").read_text() == "{}\n"
    monkeypatch.chdir(tmp_path / "student")  # a student copy's folder
    assert lab.data_file("bench.jsonl").read_text() == "{}\n"
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        lab.data_file("missing.jsonl")


def test_the_committed_benchmark_data_is_where_notebook_08_reads_it() -> None:
    notebooks = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
    assert (notebooks / "data" / "bench-latest.jsonl").is_file()
