"""The size of the readable core: lines per module, in total and of code only.

    python tools/core_lines.py

The readable core is what a reader goes through to understand the protocol and its one path:
the pure state machines (``eio/``, ``sio/``), the Tornado shell (``transports/``), the API
(``server.py``, ``namespace.py``, ``client.py``) and the modules they all use (``trace.py``,
``errors.py``, ``tasks.py``). Adapters, notebook helpers, the command line, the demo page and the
examples are left out.

For each module: ``total`` counts every line of the file; ``code`` counts the lines that hold
code, without blank lines, comments and docstrings (a statement spread over several lines counts
each of its lines).
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sio_teach"
CORE = ("eio", "sio", "transports", "server.py", "namespace.py", "client.py", "trace.py")
CORE += ("errors.py", "tasks.py")
NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


def core_modules() -> list[Path]:
    """Every ``.py`` file of the readable core, in the order of :data:`CORE`."""
    modules: list[Path] = []
    for name in CORE:
        path = PACKAGE / name
        modules += sorted(path.glob("*.py")) if path.is_dir() else [path]
    return modules


def docstring_lines(tree: ast.Module) -> set[int]:
    """The line numbers of every docstring (module, class, function) in ``tree``."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def count(source: str) -> tuple[int, int]:
    """``(total, code)`` lines of one module's ``source``."""
    code: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in NOT_CODE:
            code.update(range(token.start[0], token.end[0] + 1))
    code -= docstring_lines(ast.parse(source))
    return len(source.splitlines()), len(code)


def main() -> int:
    rows = [(path, *count(path.read_text(encoding="utf-8"))) for path in core_modules()]
    width = max(len(str(path.relative_to(PACKAGE))) for path, _, _ in rows)
    print(f"{'sio_teach/':<{width}}  {'total':>6}  {'code':>6}")
    for path, total, code in rows:
        print(f"{str(path.relative_to(PACKAGE)):<{width}}  {total:>6}  {code:>6}")
    total, code = sum(row[1] for row in rows), sum(row[2] for row in rows)
    print(f"{'readable core':<{width}}  {total:>6}  {code:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
