"""Loading a model: a compiled library (the image's default) or an XGBoost model file.

Which one is decided by the file: ``*.so`` is model_compiler's library, served through ctypes
with no numpy or xgboost; anything else is an XGBoost JSON/UBJSON model, served through xgboost
(imported only then).
"""

from __future__ import annotations

import os

# typing costs a cold start several milliseconds, and the type checker treats any constant
# named TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from array import array
    from typing import Protocol

    from .batch import FloatRows

    # A str or a pathlib.Path: the handler itself passes str (pathlib costs a cold start ~5 ms).
    StrPath = str | os.PathLike[str]

    class Model(Protocol):
        feature_names: tuple[str, ...]
        feature_types: tuple[str, ...]
        sha256: str
        path: StrPath

        def predict(self, matrix: FloatRows) -> array: ...

        def predict_json(self, matrix: FloatRows) -> str: ...

        def metadata(self, *, max_rows: int) -> dict[str, object]: ...


COMPILED_SUFFIX = ".so"


class ModelLoadError(RuntimeError):
    """The model file cannot serve requests (missing, unreadable, or without a schema)."""


def schema_metadata(model: Model, *, xgboost_version: str, max_rows: int) -> dict[str, object]:
    """The GET schema: identical whichever runtime serves the model."""
    return {
        "features": [
            {"name": name, "type": ftype}
            for name, ftype in zip(model.feature_names, model.feature_types, strict=True)
        ],
        "model_sha256": model.sha256,
        "xgboost_version": xgboost_version,
        "max_rows": max_rows,
    }


def load_model(path: StrPath, *, nthread: int) -> Model:
    if os.fspath(path).endswith(COMPILED_SUFFIX):
        if not os.path.isfile(path):
            raise ModelLoadError(f"cannot read model file {path}: No such file or directory")
        from .compiled_model import load_compiled

        return load_compiled(path)
    try:
        with open(path, "rb") as model_file:
            raw = model_file.read()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {path}: {exc.strerror}") from exc
    # The image serves the compiled library: the structural check is the xgboost path's alone.
    from .model_format import ModelFormatError, check_model_bytes

    try:
        # xgboost 3.2 calls std::terminate on an empty buffer and dies of SIGSEGV on a truncated
        # UBJSON one: the process would end without a word, so check the structure first.
        check_model_bytes(raw)
    except ModelFormatError as exc:
        raise ModelLoadError(f"{path} is not an XGBoost JSON/UBJSON model: {exc}") from exc
    from .xgboost_model import load_xgboost_model

    return load_xgboost_model(path, raw, nthread=nthread)
