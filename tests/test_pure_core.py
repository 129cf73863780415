"""The protocol cores (``sio_teach/eio``, ``sio_teach/sio``) stay pure: no I/O, no clock, no loop.

ARCHITECTURE.md: the cores import no tornado, asyncio, time, socket or redis — this test scans
their imports. Time is passed in, deadlines are returned, bytes go in and come out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sio_teach"
CORE_DIRS = ("eio", "sio")
FORBIDDEN = {"tornado", "asyncio", "time", "socket", "redis"}


def core_files() -> list[Path]:
    return sorted(p for d in CORE_DIRS for p in (PACKAGE / d).glob("*.py"))


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """Every import of a forbidden top-level module in ``source``, as ``line: module``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            in ("__import__", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append(f"{node.lineno}: {name}")
    return found


def test_the_core_packages_exist() -> None:
    for directory in CORE_DIRS:
        assert (PACKAGE / directory / "__init__.py").is_file()
    assert any(p.parent.name == "eio" and p.name == "packet.py" for p in core_files())


@pytest.mark.parametrize("path", core_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_core_module_imports_no_io(path: Path) -> None:
    bad = forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    assert not bad, f"{path.relative_to(PACKAGE.parent)} imports I/O or clock modules: {bad}"


@pytest.mark.parametrize(
    "source",
    [
        "import tornado.web",
        "import asyncio",
        "import time as clock",
        "from socket import socket",
        "from redis.asyncio import Redis",
        "import os, time",
        "def f():\n    import asyncio",
        "if True:\n    from tornado import ioloop",
        "import importlib\nimportlib.import_module('asyncio')",
        "__import__('time')",
    ],
)
def test_the_scanner_catches_forbidden_imports(source: str) -> None:
    assert forbidden_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        "import json",
        "from dataclasses import dataclass",
        "from sio_teach.errors import ProtocolError",
        "from . import time",  # a relative module of the package, not the stdlib clock
        "import timeit",
        "import socketserver_like",
        "import tornado_free",
    ],
)
def test_the_scanner_allows_other_imports(source: str) -> None:
    assert not forbidden_imports(source)
