"""Known-wrong answers to the notebooks' exercises must fail their check cells, helpfully.

``notebooks/wrong_answers/NN-name.json`` maps the id of an exercise's solution cell to a list of
wrong answers, each ``{"why": ..., "answer": ...}``: code that takes the place of the solution
block (between ``# BEGIN SOLUTION`` and ``# END SOLUTION``). Each round puts one wrong answer in
each exercise of the notebook, runs it with nbclient, and expects the wrong answer's cell to run
and the exercise's check cell (the next cell tagged ``check``) to fail with a message that says
what it ``expected``. An empty or placeholder answer belongs in the list too: it must never pass.
"""

from __future__ import annotations

import copy
import json
import pathlib
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
WRONG = sorted((NOTEBOOKS / "wrong_answers").glob("*.json"))


def with_answers(
    nb: nbformat.NotebookNode, answers: dict[str, str]
) -> tuple[nbformat.NotebookNode, dict[str, str]]:
    """A copy of an instructor notebook whose solution blocks hold ``answers`` (by cell id),
    outputs cleared; and, for each answered cell, the id of its check cell."""
    import make_student  # notebooks/make_student.py (on sys.path, see below)

    nb = copy.deepcopy(nb)
    checks, order = {}, [cell.id for cell in nb.cells]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if cell.id in answers:

            def wrong(match: object, answer: str = answers[cell.id]) -> str:
                return textwrap.indent(answer, match.group(1))  # type: ignore[attr-defined]

            cell.source = make_student.SOLUTION.sub(wrong, cell.source)
            following = nb.cells[order.index(cell.id) + 1 :]
            checks[cell.id] = next(c.id for c in following if "check" in c.metadata.get("tags", []))
        if "check" in cell.metadata.get("tags", []):
            cell.metadata["tags"] = [*cell.metadata["tags"], "raises-exception"]
    return nb, checks


@pytest.mark.parametrize("path", WRONG, ids=[p.stem for p in WRONG])
def test_wrong_answers_fail_their_checks(
    path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(NOTEBOOKS))
    instructor = NOTEBOOKS / f"{path.stem}.ipynb"
    assert instructor.exists(), f"{path.name}: no notebook {instructor.name}"
    wrong: dict[str, list[dict[str, str]]] = json.loads(path.read_text())
    nb = nbformat.read(instructor, as_version=4)
    ids = {cell.id for cell in nb.cells if "# BEGIN SOLUTION" in cell.source}
    assert set(wrong) == ids, f"{path.name}: every exercise needs wrong answers, and only those"
    assert all(wrong.values()), f"{path.name}: an exercise without a wrong answer"
    for round_ in range(max(len(answers) for answers in wrong.values())):
        chosen = {cid: answers[round_] for cid, answers in wrong.items() if round_ < len(answers)}
        run, checks = with_answers(nb, {cid: a["answer"] for cid, a in chosen.items()})
        NotebookClient(
            run, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
        ).execute()
        cells = {cell.id: cell for cell in run.cells}
        for cid, answer in chosen.items():
            label = f"{path.stem} {cid}, wrong answer ({answer['why']})"
            ran = [o for o in cells[cid].outputs if o.output_type == "error"]
            assert not ran, f"{label}: the answer itself raised {ran[0].ename}: {ran[0].evalue}"
            errors = [o for o in cells[checks[cid]].outputs if o.output_type == "error"]
            assert errors, f"{label}: the check cell passed"
            assert "expected" in errors[0].evalue, (
                f"{label}: the check's message does not say what it expected: {errors[0].evalue!r}"
            )
