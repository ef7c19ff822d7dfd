"""Loading the model the handler serves: always a library built by model_compiler.

``*.so`` is loaded as it is (the image's). Any other file is taken for an XGBoost JSON/UBJSON
model, for development: model_compiler compiles it on first use into a cache keyed by the
model's bytes and the compiler's sources (model_compiler/cache.py), so a checkout serves exactly
what the image serves.
"""

from __future__ import annotations

import os

from .compiled_model import CompiledModel, load_compiled
from .config import model_cache_dir
from .errors import ModelLoadError

TYPE_CHECKING = False  # the type checker's constant, without importing typing at init
if TYPE_CHECKING:
    from .compiled_model import StrPath

COMPILED_SUFFIX = ".so"


def load_model(path: StrPath, *, cache_dir: str | None = None) -> CompiledModel:
    """The model at `path`; cache_dir: where a model file is compiled (default: the config's)."""
    if os.fspath(path).endswith(COMPILED_SUFFIX):
        if not os.path.isfile(path):
            raise ModelLoadError(f"cannot read model file {path}: No such file or directory")
        return load_compiled(path)
    if cache_dir is None:
        cache_dir = model_cache_dir(os.environ)
    return load_compiled(compile_on_first_use(path, cache_dir=cache_dir), source=path)


def compile_on_first_use(path: StrPath, *, cache_dir: str) -> str:
    """The cached library compiled from the XGBoost model file at `path`."""
    try:
        with open(path, "rb") as model_file:
            raw = model_file.read()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {path}: {exc.strerror}") from exc
    try:
        from pathlib import Path

        from model_compiler.build import CompileError
        from model_compiler.cache import cached_library
        from model_compiler.forest import UnsupportedModel
    except ImportError as exc:
        raise ModelLoadError(
            f"{path} is an XGBoost model file, which this handler serves only compiled, and "
            f"model_compiler is not importable here ({exc}): compile it with "
            "`python -m model_compiler MODEL --out DIR` and set MODEL_PATH to DIR/model.so"
        ) from exc
    try:
        return str(cached_library(raw, Path(os.path.expanduser(cache_dir))))
    except UnsupportedModel as exc:
        raise ModelLoadError(f"model_compiler cannot compile {path}: {exc}") from exc
    except CompileError as exc:
        raise ModelLoadError(f"cannot compile {path}: {exc}") from exc
    except OSError as exc:
        raise ModelLoadError(
            f"cannot compile {path} into the model cache {cache_dir}: {exc}"
        ) from exc
