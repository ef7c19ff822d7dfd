"""A model compiled on first use and kept: the development path to serving an XGBoost model file.

The cache holds one folder per key, ``<cache_dir>/<key>/model.so`` (and its model.c); the key is
the SHA-256 of the model's bytes and of every source of this compiler (Python and C), so editing
the compiler or the model compiles again and nothing stale is ever served. Folders appear whole
(renamed into place) and concurrent first uses wait on the cache's lock file, so parallel test
workers or processes compile a model once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .build import LIBRARY_NAME, compile_bytes

_SOURCE_SUFFIXES = (".py", ".c")
PACKAGE_DIR = Path(__file__).resolve().parent


def compiler_digest(folder: Path = PACKAGE_DIR) -> bytes:
    """SHA-256 over this compiler's sources (every .py and .c file of the package, by name):
    what a library's code depends on besides the model."""
    digest = hashlib.sha256()
    for source in sorted(folder.iterdir()):
        if source.is_file() and source.suffix in _SOURCE_SUFFIXES:
            content = source.read_bytes()
            digest.update(f"{source.name}\0{len(content)}\0".encode())
            digest.update(content)
    return digest.digest()


def cache_key(raw: bytes) -> str:
    return hashlib.sha256(compiler_digest() + hashlib.sha256(raw).digest()).hexdigest()


def cached_library(raw: bytes, cache_dir: Path) -> Path:
    """The library for the model `raw`, compiled into cache_dir unless already there.

    Raises UnsupportedModel (the compiler refuses the model) or CompileError (no C compiler,
    or it failed), with the compiler's message."""
    folder = cache_dir / cache_key(raw)
    library = folder / LIBRARY_NAME
    if library.is_file():
        return library
    cache_dir.mkdir(parents=True, exist_ok=True)
    # One lock for the cache: compiles are rare, and no lock file per key is left behind.
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not library.is_file():
            # A folder without its library (an interrupted copy, a hand edit) is replaced.
            shutil.rmtree(folder, ignore_errors=True)
            with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f"{folder.name}.") as scratch:
                compile_bytes(raw, Path(scratch) / "out")
                os.replace(Path(scratch) / "out", folder)
    return library
