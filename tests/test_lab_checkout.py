"""``lab.checkout()``: where a notebook finds the checkout's scripts, from the package itself."""

from __future__ import annotations

import pathlib

import pytest

from sio_teach import lab

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_checkout_is_the_folder_above_the_package() -> None:
    root = lab.checkout()
    assert root == ROOT
    assert (root / "tests" / "adapters" / "redis_node.js").is_file()


def test_checkout_does_not_depend_on_the_working_directory(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert lab.checkout() == ROOT
