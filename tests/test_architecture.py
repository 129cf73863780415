"""ARCHITECTURE.md and the README's Layout stay true of the code.

* Every table of ARCHITECTURE.md with a "where" column names files and, after each file, things
  defined in it: `eio/requests.py` `check_request`, `ServerSession.handle_timeout`. Each file must
  exist under ``sio_teach/``, each first name must be defined at the top level of that file, and
  the rest of a dotted name must resolve on it with ``getattr`` (``Class.method``, inherited too).
  In the prose, each `Class.attribute` whose class is defined in sio_teach/ must exist.
* Every module of ``sio_teach/`` (and every package directory) is named in the README's Layout
  table or in ARCHITECTURE.md.
* ``tools/core_lines.py`` counts what it says it counts.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sio_teach"
ARCHITECTURE = ROOT / "ARCHITECTURE.md"
README = ROOT / "README.md"
NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


# -- ARCHITECTURE.md: the "where" columns --------------------------------------------------------


def cells(line: str) -> list[str]:
    """The cells of one markdown table row (``|`` inside backticks does not occur in ours)."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def where_cells(text: str) -> list[tuple[int, str]]:
    """``(line number, cell)`` for the "where" cell of every row of every table that has one."""
    found: list[tuple[int, str]] = []
    column: int | None = None
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.startswith("|"):
            column = None  # a table ends at the first line that is not a row
            continue
        row = cells(line)
        if column is None:  # a header row
            heads = [cell.lower() for cell in row]
            column = next((i for i, h in enumerate(heads) if h.startswith("where")), -1)
        elif column >= 0 and not set(line) <= set("|-: "):  # not the |---| line
            found.append((number, row[column]))
    return found


def references(cell: str) -> list[tuple[str, str]]:
    """``(file, name)`` pairs of one "where" cell: each `x.py` names the file of the names after
    it. A name before any file, or a token that is not a name, is an error (returned as such)."""
    pairs: list[tuple[str, str]] = []
    current = ""
    for token in re.findall(r"`([^`]+)`", cell):
        if token.endswith(".py"):
            current = token
        else:
            pairs.append((current, token))
    return pairs


def module_of(path: str) -> ModuleType:
    return importlib.import_module("sio_teach." + path.removesuffix(".py").replace("/", "."))


def top_level_names(path: Path) -> set[str]:
    """Everything a module defines at its top level: functions, classes, assignments."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def problem(path: str, name: str) -> str | None:
    """Why `path` `name` does not hold, or None."""
    if not path:
        return f"{name!r} names no file before it"
    file = PACKAGE / path
    if not file.is_file():
        return f"{path} is not a file of sio_teach/"
    name = name.removesuffix("()")
    if not NAME.fullmatch(name):
        return f"{name!r} in {path} is not a name"
    first, *rest = name.split(".")
    if first not in top_level_names(file):
        return f"{first} is not defined in {path}"
    value: object = getattr(module_of(path), first)
    for i, part in enumerate(rest):
        if not hasattr(value, part):
            return f"{'.'.join([first, *rest[:i]])} in {path} has no {part!r}"
        value = getattr(value, part)
    return None


def check_where_columns(text: str) -> list[str]:
    """Every problem of every "where" cell of ``text``, as ``line N: ...``."""
    problems = []
    for number, cell in where_cells(text):
        pairs = references(cell)
        if not pairs:
            problems.append(f"line {number}: names nothing: {cell!r}")
        for path, name in pairs:
            if (why := problem(path, name)) is not None:
                problems.append(f"line {number}: {why}")
    return problems


def test_every_name_in_architecture_exists() -> None:
    problems = check_where_columns(ARCHITECTURE.read_text(encoding="utf-8"))
    assert not problems, "ARCHITECTURE.md names what does not exist:\n" + "\n".join(problems)


def test_the_rules_table_is_there_and_checked() -> None:
    """The checks above are not vacuous: the rules table has its rows, each naming a function."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    rules = text.split("## Rule of the spec → file and function", 1)[1]
    rows = where_cells(rules)
    assert 25 <= len(rows) <= 60, len(rows)
    assert all(references(cell) for _, cell in rows)


def classes() -> dict[str, list[str]]:
    """Where each class of sio_teach/ is defined: class name -> the modules (dotted names)."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = path.relative_to(PACKAGE).as_posix().removesuffix(".py").replace("/", ".")
        dotted = "sio_teach" + ("." + dotted if dotted != "__init__" else "")
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append(dotted.removesuffix(".__init__"))
    return found


def test_every_method_named_in_the_prose_exists() -> None:
    """Outside the tables too: each `Class.attribute` whose class is one of ours must exist
    (`IOLoop.call_at` is Tornado's: not checked)."""
    ours = classes()
    missing = []
    for token in re.findall(r"`([A-Z]\w*(?:\.\w+)+)(?:\(\))?`", ARCHITECTURE.read_text()):
        first, *rest = token.split(".")
        candidates = [getattr(importlib.import_module(m), first) for m in ours.get(first, [])]
        for value in candidates:
            for part in rest:
                value = getattr(value, part, None)
            if value is not None:
                break
        else:
            if candidates:
                missing.append(token)
    assert not missing, f"ARCHITECTURE.md names what no class of sio_teach has: {missing}"


@pytest.mark.parametrize(
    "cell",
    [
        "`eio/requests.py` `check_requests`",  # a misspelt function
        "`eio/server_session.py` `ServerSession.handle_timeouts`",  # a missing method
        "`eio/sessions.py` `ServerSession`",  # a missing file
        "`server.py` `Namespace`",  # imported there, defined in namespace.py
        "`check_request`",  # no file
        "`eio/requests.py` `two words`",
        "nothing in backticks",
    ],
)
def test_a_wrong_row_is_caught(cell: str) -> None:
    table = f"| rule | where |\n|---|---|\n| a rule | {cell} |\n"
    assert check_where_columns(table)


def test_a_right_row_passes() -> None:
    cell = "`eio/requests.py` `check_request`; `server.py` `Connection.after`, `Server.emit`"
    assert check_where_columns(f"| rule | where |\n|---|---|\n| a rule | {cell} |\n") == []


# -- every module is named -----------------------------------------------------------------------


def modules() -> list[str]:
    """Every module of sio_teach/ (``eio/packet.py``) and every package directory (``web/``)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name in ("__init__.py", "__main__.py"):
            if path.parent != PACKAGE:
                found.append(path.parent.relative_to(PACKAGE).as_posix() + "/")
        else:
            found.append(relative)
    return found


def layout_section(readme: str) -> str:
    return readme.split("## Layout", 1)[1].split("\n## ", 1)[0]


def named_in_layout(section: str) -> set[str]:
    """What the Layout table names, relative to sio_teach/: in each row, the first `sio_teach/…`
    path sets the directory, and every other `x.py` or `x/` of the row is in it."""
    named: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `sio_teach/"):
            continue
        tokens = [t for t in re.findall(r"`([^`]+)`", line) if t.endswith((".py", "/"))]
        base = tokens[0].removeprefix("sio_teach/")
        directory = base if base.endswith("/") else base[: base.rfind("/") + 1]
        named.add(base)
        for token in tokens[1:]:
            named.add(
                token.removeprefix("sio_teach/")
                if token.startswith("sio_teach/")
                else directory + token
            )
    return named


def named_in_architecture(text: str) -> set[str]:
    tokens = re.findall(r"`([^`]+)`", text)
    return {t.removeprefix("sio_teach/") for t in tokens if t.endswith((".py", "/"))}


def test_every_module_is_named_in_the_layout_or_the_architecture() -> None:
    named = named_in_layout(layout_section(README.read_text(encoding="utf-8")))
    named |= named_in_architecture(ARCHITECTURE.read_text(encoding="utf-8"))
    missing = [module for module in modules() if module not in named]
    assert not missing, f"not in README.md's Layout nor in ARCHITECTURE.md: {missing}"


def test_the_layout_names_every_package_and_its_modules() -> None:
    """The README's Layout alone lists every module (ARCHITECTURE.md is the second chance only
    for the test above)."""
    named = named_in_layout(layout_section(README.read_text(encoding="utf-8")))
    missing = [module for module in modules() if module not in named]
    assert not missing, f"not in README.md's Layout: {missing}"


def test_layout_parsing() -> None:
    section = (
        "| `sio_teach/eio/` | `packet.py` the codec; `requests.py` |\n"
        "| `sio_teach/server.py`, `namespace.py` | the API |\n"
        "| `notebooks/` | not the package |\n"
    )
    expected = {"eio/", "eio/packet.py", "eio/requests.py", "server.py", "namespace.py"}
    assert named_in_layout(section) == expected


# -- tools/core_lines.py -------------------------------------------------------------------------


def core_lines() -> ModuleType:
    spec = importlib.util.spec_from_file_location("core_lines", ROOT / "tools" / "core_lines.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_core_lines_counts_code_without_docstrings_comments_and_blank_lines() -> None:
    source = '''"""A module docstring
on two lines."""

import os  # a comment

# a comment line


class A:
    """A class docstring."""

    x = (
        1,
        2,
    )

    def f(self) -> str:
        """A function docstring."""
        return """a string that is
not a docstring"""
'''
    # code: import, class, x = ( 1, 2, ), def, return + its string's second line
    assert core_lines().count(source) == (20, 1 + 1 + 4 + 1 + 2)


def test_core_lines_covers_the_readable_core() -> None:
    paths = {p.relative_to(PACKAGE).as_posix() for p in core_lines().core_modules()}
    assert all((PACKAGE / p).is_file() for p in paths)
    for module in ("eio/server_session.py", "sio/client_connection.py", "transports/http.py"):
        assert module in paths
    for module in ("server.py", "namespace.py", "client.py", "trace.py", "errors.py", "tasks.py"):
        assert module in paths
    assert not any(p.startswith(("adapters/", "examples/", "web/")) for p in paths)
