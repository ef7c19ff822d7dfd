"""Turning a model file into the shared library: read, generate, compile, check.

The compiler flags are part of the bit-exactness promise: IEEE float32 semantics (no -ffast-math,
no contraction of a*b+c, which the generated code never writes anyway, no excess precision).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .codegen import generate_c
from .forest import Forest, UnsupportedModel, parse_model_json

LIBRARY_NAME = "model.so"
# Reading the bundled model takes about a second; a minute is a hang.
CONVERT_TIMEOUT_SECONDS = 60
SOURCE_NAME = "model.c"
# -O2: measured as fast as -O3 on the bundled model, and quicker to compile.
CFLAGS = (
    "-std=c99",
    "-O2",
    "-fPIC",
    "-shared",
    "-fvisibility=hidden",
    "-fno-fast-math",
    "-ffp-contract=off",
    "-fexcess-precision=standard",
)


class CompileError(RuntimeError):
    """The C compiler failed (or is missing)."""


@dataclass(frozen=True, kw_only=True)
class CompiledArtifact:
    library: Path
    source: Path
    forest: Forest
    model_sha256: str


def model_json(raw: bytes) -> tuple[str, str | None]:
    """The model as JSON text, and the xgboost version that converted it (None: it was JSON)."""
    stripped = raw.lstrip()
    if not stripped:
        raise UnsupportedModel("not an XGBoost JSON/UBJSON model: the file is empty")
    if not stripped.startswith(b"{"):
        raise UnsupportedModel(
            f"not an XGBoost JSON/UBJSON model: it starts with {raw[:8]!r}, not an object's '{{'"
        )
    if b'"learner"' in raw[:4096]:
        try:
            return raw.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            raise UnsupportedModel(f"not an XGBoost JSON model: it is not UTF-8 ({exc})") from exc
    # UBJSON (or anything else): xgboost itself reads it and dumps the documented JSON.
    if importlib.util.find_spec("xgboost") is None:
        raise UnsupportedModel(
            "this model file is not JSON; reading UBJSON needs xgboost installed "
            "(or save the model as .json)"
        )
    return _ubjson_to_json(raw)


# xgboost 3.2 reads past the end of a truncated UBJSON buffer and dies of SIGSEGV (measured: 2 of
# 36 cuts of the small test model; std::terminate on an empty buffer): read in this process, a
# corrupt file would kill it without a word. A child process reads it instead (about a second,
# for xgboost's import, once per model: the cache keeps the result), and its death becomes an
# UnsupportedModel.
_CONVERT = """
import sys
# Optional for xgboost and useless here: without them its import takes 1 s instead of 4 s.
sys.modules["sklearn"] = sys.modules["pandas"] = None
import xgboost
booster = xgboost.Booster()
try:
    booster.load_model(bytearray(sys.stdin.buffer.read()))
except (xgboost.core.XGBoostError, UnicodeDecodeError) as exc:
    # UnicodeDecodeError: xgboost's message quotes the bad bytes and then fails to decode.
    sys.stderr.write(str(exc).strip().splitlines()[0])
    sys.exit(1)
sys.stdout.buffer.write(xgboost.__version__.encode() + b"\\n" + booster.save_raw("json"))
"""


def _ubjson_to_json(raw: bytes) -> tuple[str, str]:
    try:
        converted = subprocess.run(
            [sys.executable, "-c", _CONVERT],
            input=raw,
            capture_output=True,
            # This process's path: the image's builder installs xgboost into the task root,
            # found there only because `python -m` put the working directory on sys.path.
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            check=False,
            # Bounded: a corrupt file must not hang a build or an init.
            timeout=CONVERT_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as exc:
        raise UnsupportedModel(
            "not an XGBoost JSON/UBJSON model: xgboost did not finish reading it in "
            f"{CONVERT_TIMEOUT_SECONDS} s"
        ) from exc
    if converted.returncode < 0:
        name = signal.Signals(-converted.returncode).name
        raise UnsupportedModel(
            f"not an XGBoost JSON/UBJSON model: xgboost died of {name} reading it "
            "(a truncated or corrupt UBJSON file)"
        )
    if converted.returncode != 0:
        message = converted.stderr.decode("utf-8", "replace").strip() or "no message"
        raise UnsupportedModel(f"not an XGBoost JSON/UBJSON model: {message.splitlines()[-1]}")
    version, text = converted.stdout.split(b"\n", 1)
    return text.decode("utf-8"), version.decode()


def compile_model(
    model_path: Path,
    out_dir: Path,
    *,
    cc: str | None = None,
    target_args: tuple[str, ...] = (),
    extra_cflags: tuple[str, ...] = (),
) -> CompiledArtifact:
    raw = model_path.read_bytes()
    return compile_bytes(raw, out_dir, cc=cc, target_args=target_args, extra_cflags=extra_cflags)


def compile_bytes(
    raw: bytes,
    out_dir: Path,
    *,
    cc: str | None = None,
    target_args: tuple[str, ...] = (),
    extra_cflags: tuple[str, ...] = (),
) -> CompiledArtifact:
    """compile_model for a model already read: model.c and model.so in out_dir."""
    text, converter_version = model_json(raw)
    forest = parse_model_json(text)
    sha256 = hashlib.sha256(raw).hexdigest()
    source_text = generate_c(
        forest, model_sha256=sha256, xgboost_version=converter_version or forest.xgboost_version
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / SOURCE_NAME
    source.write_text(source_text)
    library = out_dir / LIBRARY_NAME
    compile_source(source, library, cc=cc, target_args=target_args, extra_cflags=extra_cflags)
    return CompiledArtifact(library=library, source=source, forest=forest, model_sha256=sha256)


def compiler_argv(cc: str | None) -> list[str]:
    """The C compiler command: --cc, else $CC, else cc (may be several words, e.g. zig cc)."""
    words = shlex.split(cc or os.environ.get("CC") or "cc")
    if shutil.which(words[0]) is None:
        raise CompileError(f"no C compiler {words[0]!r} on PATH (set CC or pass --cc)")
    return words


def compile_source(
    source: Path,
    library: Path,
    *,
    cc: str | None = None,
    target_args: tuple[str, ...] = (),
    extra_cflags: tuple[str, ...] = (),
) -> None:
    """extra_cflags come after CFLAGS, so they may override them (an instrumented build for
    the fuzzer: -fsanitize=address,undefined, --coverage, -O1); the image never passes any."""
    # Written next to the target and renamed: a half-written library is never loadable.
    with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
        partial = Path(scratch) / library.name
        argv = [
            *compiler_argv(cc),
            *target_args,
            *CFLAGS,
            *extra_cflags,
            "-o",
            str(partial),
            str(source),
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise CompileError(f"{' '.join(argv)} failed:\n{result.stderr[-4000:]}")
        os.replace(partial, library)
