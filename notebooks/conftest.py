"""pytest configuration for the notebooks folder (``make test`` runs nbval here).

The student copies in ``student/`` fail by design (their exercises raise ``NotImplementedError``
until solved), so nbval must not collect them; ``tests/test_notebooks.py`` runs them instead and
checks that their check cells fail.
"""

collect_ignore = ["student", "make_student.py"]
