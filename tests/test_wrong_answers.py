"""The exercises' check cells have teeth: a known-wrong answer fails, and says why.

``notebooks/wrong_answers.json`` lists, per instructor notebook, wrong answers to its
exercises (an empty one and a plausible mistake each). This module runs each notebook in one
kernel, cell by cell; before a solution cell, it runs every wrong answer listed for it (the
solution block replaced, as ``make_student.py`` replaces it for the student copy) followed by the
exercise's check cell, which must fail with an ``AssertionError`` whose message says what it
expected and what it got. Then it runs the real solution and goes on. (A student copy's
``raise NotImplementedError`` is checked by ``tests/test_notebooks.py``.)
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
WRONG = json.loads((NOTEBOOKS / "wrong_answers.json").read_text())["notebooks"]
SOLUTION = re.compile(
    r"^([ \t]*)# BEGIN SOLUTION[^\n]*\n.*?^[ \t]*# END SOLUTION[^\n]*$", re.M | re.S
)
SAYS_WHY = re.compile(r"expected .+ got |got .+ expected ", re.S)  # both, in either order


def with_answer(source: str, answer: str | list[str]) -> str:
    """``source`` with its solution blocks replaced by ``answer`` (one string per block),
    indented as the markers are."""
    answers = iter([answer] if isinstance(answer, str) else answer)

    def replace(match: re.Match[str]) -> str:
        indent = match.group(1)
        return "\n".join(indent + line if line else line for line in next(answers).splitlines())

    return SOLUTION.sub(replace, source)


def run(client: NotebookClient, cell: Any, index: int) -> Any:
    """Execute ``cell`` (a copy, allowed to fail) in the running kernel; return its error or None."""
    cell = copy.deepcopy(cell)
    cell.metadata["tags"] = [*cell.metadata.get("tags", []), "raises-exception"]
    cell.outputs = []
    client.execute_cell(cell, index)
    return next((o for o in cell.outputs if o.output_type == "error"), None)


def test_every_exercise_has_wrong_answers() -> None:
    for name, answers in WRONG.items():
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        cells = {cell.get("id"): cell for cell in nb.cells}
        checks = {c.get("id") for c in nb.cells if "check" in c.metadata.get("tags", [])}
        assert {a["check"] for a in answers} == checks, f"{name}: every check cell, and only them"
        for answer in answers:
            source = cells[answer["solution"]].source
            blocks = len(SOLUTION.findall(source))
            given = [answer["answer"]] if isinstance(answer["answer"], str) else answer["answer"]
            assert blocks == len(given), f"{name} {answer['solution']}: one answer per block"
            same = [a["why"] for a in answers if a["check"] == answer["check"]]
            assert any(why.startswith("empty") for why in same), f"{name}: an empty answer too"


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_answers_fail_and_say_why(name: str) -> None:
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    cells = {cell.get("id"): cell for cell in nb.cells}
    by_solution: dict[str, list[dict[str, Any]]] = {}
    for answer in WRONG[name]:
        by_solution.setdefault(answer["solution"], []).append(answer)
    client = NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    problems = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            for answer in by_solution.get(cell.get("id"), []):
                wrong = copy.deepcopy(cell)
                wrong.source = with_answer(cell.source, answer["answer"])
                run(client, wrong, index)  # a wrong answer may fail on its own: the check must
                error = run(client, cells[answer["check"]], index + 1)
                said = "" if error is None else f"{error.ename}: {error.evalue}"
                if error is None or error.ename != "AssertionError" or not SAYS_WHY.search(said):
                    problems.append(f"{answer['check']} with {answer['why']!r}: {said or 'passed'}")
            client.execute_cell(cell, index)  # the real cell; an error here fails the test
    assert not problems, f"{name}: check cells that do not fail with 'expected …, got …':\n" + (
        "\n".join(problems)
    )
