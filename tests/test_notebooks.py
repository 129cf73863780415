"""The workshop notebooks as a set: what nbval cannot see cell by cell.

nbval (``make test``) re-runs every instructor notebook and compares each cell's output with the
committed one. It silently skips what it cannot compare, so this module fails on:

* a code cell committed without outputs (nbval would not check it at all), or with an error;
* ``NBVAL_IGNORE_OUTPUT`` on a cell that prints a trace (traces are the checked teaching material),
  and plot cells that do not end with ``plt.show()`` or whose numbers no previous cell asserts;
* a notebook under ``notebooks/`` that the ``make test`` nbval run does not collect;
* a student copy out of date with its instructor notebook, or containing a solution;
* a student copy whose exercise check cells *pass* without a solution (it runs each student copy
  with nbclient and expects every ``check`` cell to fail).
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TRACE_LINE = re.compile(r"(?m)^ *(\d+\.\d ms )?S\d+ [<>] (GET |POST|ws  ) (eio|sio) ")

_spec = importlib.util.spec_from_file_location("make_student", NOTEBOOKS / "make_student.py")
assert _spec is not None and _spec.loader is not None
make_student = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_student)

INSTRUCTOR = make_student.instructor_notebooks()
by_name = pytest.mark.parametrize("path", INSTRUCTOR, ids=[p.stem for p in INSTRUCTOR])


def code_cells(path: pathlib.Path) -> list[tuple[int, nbformat.NotebookNode]]:
    nb = nbformat.read(path, as_version=4)
    return [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]


def output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_there_are_notebooks() -> None:
    assert [p.name for p in INSTRUCTOR][:4] == [
        "00-tour.ipynb",
        "01-long-polling.ipynb",
        "02-upgrade.ipynb",
        "03-heartbeat.ipynb",
    ]


@by_name
def test_every_code_cell_has_committed_output(path: pathlib.Path) -> None:
    for i, cell in code_cells(path):
        assert cell.outputs, (
            f"{path.name} cell {i}: no committed output, so nbval would not check it"
        )
        assert cell.execution_count is not None, f"{path.name} cell {i}: never executed"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{path.name} cell {i}: committed with an error"


@by_name
def test_ignored_cells_are_plots_never_traces(path: pathlib.Path) -> None:
    cells = code_cells(path)
    for n, (i, cell) in enumerate(cells):
        ignored = "NBVAL_IGNORE_OUTPUT" in cell.source
        plot = any("image/png" in o.get("data", {}) for o in cell.outputs)
        if ignored:
            prints_trace = re.search(r"tracer\.(text|lines)\(", cell.source)
            assert not prints_trace and not TRACE_LINE.search(output_text(cell)), (
                f"{path.name} cell {i}: a trace must be checked, never NBVAL_IGNORE_OUTPUT"
            )
        if plot:
            assert ignored, f"{path.name} cell {i}: a plot cell needs NBVAL_IGNORE_OUTPUT"
            assert cell.source.rstrip().endswith("plt.show()"), (
                f"{path.name} cell {i}: end with plt.show()"
            )
            before = [c for _, c in cells[:n] if "NBVAL_IGNORE_OUTPUT" not in c.source]
            assert before and "assert" in before[-1].source, (
                f"{path.name} cell {i}: the checked cell before a plot must assert its numbers"
            )


def test_every_notebook_is_run_by_ci() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"(?m)^NBVAL\s*:=.*--nbval\b", makefile)
    assert re.search(r"(?m)^test:", makefile) and "-m pytest $(NBVAL) notebooks" in makefile
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "--nbval",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            "notebooks",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    run_by_ci = {line.split("::")[0] for line in collected.stdout.splitlines() if "::" in line}
    every = {
        str(p.relative_to(ROOT))
        for p in NOTEBOOKS.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and p.parent != make_student.STUDENT
    }
    assert every == run_by_ci, f"not run by `make test`: {sorted(every - run_by_ci)}"
    assert {p.name for p in make_student.STUDENT.glob("*.ipynb")} == {p.name for p in INSTRUCTOR}


@by_name
def test_student_copy_is_up_to_date_and_has_no_solution(path: pathlib.Path) -> None:
    student = make_student.STUDENT / path.name
    assert student.exists(), f"run `python notebooks/make_student.py` to create {student.name}"
    text = student.read_text()
    assert text == make_student.render(path), (
        f"student/{path.name} is out of date: run `python notebooks/make_student.py`"
    )
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    student_cells = {c.id: c for c in nbformat.read(student, as_version=4).cells}
    for _, cell in code_cells(path):
        for block in make_student.SOLUTION.finditer(cell.source):
            outside = make_student.SOLUTION.sub("", cell.source).splitlines()
            secret = {line.strip() for line in block.group(0).splitlines()[1:-1]} - {""}
            leaked = secret & set(map(str.strip, student_cells[cell.id].source.splitlines()))
            assert not leaked - set(map(str.strip, outside)), f"solution in student/{path.name}"


@by_name
def test_student_checks_fail_until_solved(path: pathlib.Path) -> None:
    student = make_student.STUDENT / path.name
    nb = nbformat.read(student, as_version=4)
    # Cells tagged raises-exception may fail; any other failing cell fails this test.
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(student.parent)}}
    ).execute()
    checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert len(checks) >= 2, f"{path.name}: a notebook has 2–4 exercises, each with a check cell"
    for cell in checks:
        assert any(o.output_type == "error" for o in cell.outputs), (
            f"student/{path.name}: a check cell passes without a solution:\n{cell.source}"
        )
