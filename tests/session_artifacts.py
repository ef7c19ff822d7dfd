"""Expensive test artefacts (a trained model, a compiled library) built once per test session.

Under pytest-xdist every worker runs session fixtures of its own; these folders live beside the
workers' temporary directories and are built under a file lock, so the first worker to need one
builds it and the others wait for it and read it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

_DONE = ".complete"


def session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every worker of this session shares (the session's own under plain pytest)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_artifact(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]
) -> Path:
    """`build(folder)` once per session for `name`; every caller gets the finished folder."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"artefact name {name!r} must be a plain file name")
    root = session_root(tmp_path_factory) / "shared-artifacts"
    root.mkdir(parents=True, exist_ok=True)
    folder = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not (folder / _DONE).exists():
            # A build that failed half way (in this or another worker) leaves no marker: redo it.
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / _DONE).touch()
    return folder
