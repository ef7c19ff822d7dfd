"""The model library as the fuzzer sees it: built by model_compiler with a sanitizing compiler,
called through ctypes with every buffer malloc'd at its exact size (so a one-byte over-read or
over-write lands outside the allocation, where AddressSanitizer reports it).

Sanitized code needs its runtime loaded first, before Python's own libraries: sanitized_env()
says how (LD_PRELOAD), and the CLI re-executes itself under it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "handler") not in sys.path:
    sys.path.insert(0, str(ROOT / "handler"))

from model_compiler import build  # noqa: E402
from model_compiler.codegen import RUNTIME_SOURCES  # noqa: E402

WORK_DIR = Path(tempfile.gettempdir()) / "cdk-ml-lambda-fuzz"
_SANITIZE = (
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=undefined",
    "-fno-omit-frame-pointer",
    "-g",
    "-O1",
)


@dataclass(frozen=True, kw_only=True)
class Toolchain:
    """A compiler, the flags of an instrumented build, and the runtime to preload for it."""

    cc: str
    cflags: tuple[str, ...]
    preload: str


def gcc_asan() -> Toolchain:
    """gcc's ASan + UBSan: what every machine of ours has (the PR gate's replay)."""
    runtime = _print_file_name("gcc", "libasan.so")
    return Toolchain(cc="gcc", cflags=_SANITIZE, preload=runtime)


def clang_libfuzzer(preload: str) -> Toolchain:
    """clang's ASan + UBSan with libFuzzer's coverage counters (atheris reads them); preload:
    atheris's asan_with_fuzzer.so, which carries ASan, UBSan's handlers and libFuzzer."""
    return Toolchain(cc="clang", cflags=(*_SANITIZE, "-fsanitize=fuzzer-no-link"), preload=preload)


def gcov_build() -> Toolchain:
    """Line and branch counts (gcov) of the runtime sources, for the corpus's coverage."""
    return Toolchain(cc="gcc", cflags=("--coverage", "-O0"), preload="")


def _print_file_name(cc: str, name: str) -> str:
    if shutil.which(cc) is None:
        raise RuntimeError(f"{cc} is not installed")
    found = subprocess.run(
        [cc, f"-print-file-name={name}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not os.path.isabs(found) or not os.path.exists(found):
        raise RuntimeError(f"{cc} has no {name} (install its sanitizer runtime)")
    return os.path.realpath(found)


def sanitized_env(toolchain: Toolchain, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    if toolchain.preload:
        env["LD_PRELOAD"] = toolchain.preload
    # Python's own allocations are not ours to judge (leaks at exit), but every malloc is seen.
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:abort_on_error=1:print_stacktrace=1"
    env["PYTHONMALLOC"] = "malloc"
    return env


def build_library(model: bytes, toolchain: Toolchain, *, work_dir: Path = WORK_DIR) -> Path:
    """model.so for this model and toolchain, built once per content (sources, flags, model)."""
    key = hashlib.sha256()
    for part in (model, toolchain.cc.encode(), "\0".join(toolchain.cflags).encode()):
        key.update(part + b"\0")
    for name in RUNTIME_SOURCES:
        key.update((ROOT / "handler" / "model_compiler" / name).read_bytes())
    key.update(Path(build.__file__).read_bytes())
    out = work_dir / key.hexdigest()[:20]
    library = out / build.LIBRARY_NAME
    if not library.exists():
        # Built aside and renamed into place: concurrent builders (pytest-xdist workers) never
        # see or overwrite each other's half-written files.
        work_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=work_dir, prefix=f"{out.name}."))
        model_path = scratch / "model.json"
        model_path.write_bytes(model)
        build.compile_model(model_path, scratch, cc=toolchain.cc, extra_cflags=toolchain.cflags)
        try:
            os.replace(scratch, out)
        except OSError:  # another process finished first: its library is the same
            shutil.rmtree(scratch, ignore_errors=True)
    return library


class _Exact:
    """malloc'd blocks of exactly the requested size, freed together."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        self._blocks: list[int] = []

    def copy(self, data: bytes) -> int:
        block = self.alloc(len(data))
        ctypes.memmove(block, data, len(data))
        return block

    def alloc(self, size: int) -> int:
        block = self._libc.malloc(size)  # malloc(0): a unique block nothing may touch
        if not block:
            raise MemoryError(size)
        self._blocks.append(block)
        return block

    def __enter__(self) -> _Exact:
        return self

    def __exit__(self, *_exc: object) -> None:
        for block in self._blocks:
            self._libc.free(block)


class FuzzedLibrary:
    """ml_parse_batch, ml_format_json and ml_predict with exact-size buffers."""

    def __init__(self, path: Path, feature_names: list[str]) -> None:
        self.lib = ctypes.CDLL(str(path))
        self.libc = ctypes.CDLL(None)
        self.libc.malloc.restype = ctypes.c_void_p
        self.libc.malloc.argtypes = (ctypes.c_size_t,)
        self.libc.free.argtypes = (ctypes.c_void_p,)
        size_t, pointer = ctypes.c_size_t, ctypes.c_void_p
        self.lib.ml_parse_batch.argtypes = (pointer, size_t, pointer, pointer, size_t, pointer)
        self.lib.ml_parse_batch.restype = size_t
        self.lib.ml_format_json.argtypes = (pointer, size_t, pointer)
        self.lib.ml_format_json.restype = size_t
        self.lib.ml_json_capacity.argtypes = (size_t,)
        self.lib.ml_json_capacity.restype = size_t
        self.lib.ml_predict.argtypes = (pointer, size_t, pointer)
        self.lib.ml_predict.restype = None
        self.feature_names = feature_names
        self.width = len(feature_names)
        self._encoded = [name.encode() for name in feature_names]

    def capacity(self, body: bytes, max_rows: int) -> int:
        # compiled_model.parse_batch's bound: a row takes at least 2 bytes a value.
        return min(max_rows, len(body) // (2 * self.width) + 1)

    def parse(self, body: bytes, max_rows: int) -> tuple[int, bytes]:
        """(rows, their float32 bytes), rows 0 when the fast path defers."""
        capacity = self.capacity(body, max_rows)
        with _Exact(self.libc) as exact:
            names = exact.alloc(ctypes.sizeof(ctypes.c_void_p) * self.width)
            lengths = exact.alloc(ctypes.sizeof(ctypes.c_size_t) * self.width)
            name_array = (ctypes.c_void_p * self.width).from_address(names)
            length_array = (ctypes.c_size_t * self.width).from_address(lengths)
            for index, name in enumerate(self._encoded):
                name_array[index] = exact.copy(name)  # no terminating NUL: lengths say
                length_array[index] = len(name)
            out_size = 4 * self.width * capacity
            out = exact.alloc(out_size)
            rows = self.lib.ml_parse_batch(
                exact.copy(body), len(body), names, lengths, capacity, out
            )
            if rows > capacity:
                raise AssertionError(f"ml_parse_batch returned {rows} rows for {capacity}")
            return rows, ctypes.string_at(out, 4 * self.width * rows)

    def format_json(self, values: bytes) -> bytes:
        count = len(values) // 4
        size = self.lib.ml_json_capacity(count)
        with _Exact(self.libc) as exact:
            out = exact.alloc(size)
            length = self.lib.ml_format_json(exact.copy(values[: 4 * count]), count, out)
            if length > size:
                raise AssertionError(f"ml_format_json wrote {length} bytes into {size}")
            return ctypes.string_at(out, length)

    def predict(self, rows: bytes) -> bytes:
        count = len(rows) // (4 * self.width)
        with _Exact(self.libc) as exact:
            out = exact.alloc(4 * count)
            self.lib.ml_predict(exact.copy(rows[: 4 * self.width * count]), count, out)
            return ctypes.string_at(out, 4 * count)
