"""The project as a newcomer meets it: one list of dependencies, and the README's commands."""

from __future__ import annotations

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_environment_yml_installs_the_project_with_every_extra() -> None:
    """environment.yml stays python + pip + `-e .[dev]`: pyproject.toml is the one list."""
    text = (ROOT / "environment.yml").read_text()
    pip_lines = re.findall(r"^\s+- (-e .+)$", text, re.M)
    assert pip_lines == ["-e .[dev]"]
    dependencies = text.split("dependencies:", 1)[1]
    conda_deps = re.findall(r"^  - (\w[\w.-]*)", dependencies, re.M)
    assert set(conda_deps) <= {"python", "pip", "nodejs"}, conda_deps
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    python_min = project["requires-python"].removeprefix(">=")
    assert f"python>={python_min}" in text


def test_dev_extra_covers_every_other_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    dev = extras["dev"]
    assert len(dev) == 1
    named = set(re.match(r"sio_teach\[(.*)\]", dev[0]).group(1).split(","))  # type: ignore[union-attr]
    assert named == set(extras) - {"dev"} - {"bench"}


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme and "make demo" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_npm_peers_are_pinned_with_a_lockfile() -> None:
    import json

    package = json.loads((ROOT / "package.json").read_text())
    for name in ("engine.io", "engine.io-client", "socket.io", "socket.io-client"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", package["dependencies"][name]), name
    assert (ROOT / "package-lock.json").exists()
