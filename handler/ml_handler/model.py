"""Loading the booster and deriving the request schema from the model file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb

from .model_format import ModelFormatError, check_model_bytes


class ModelLoadError(RuntimeError):
    """The model file cannot serve requests (missing, unreadable, or without a schema)."""


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    booster: xgb.Booster
    feature_names: tuple[str, ...]
    feature_types: tuple[str, ...]
    sha256: str
    path: Path

    def predict(self, rows: np.ndarray) -> np.ndarray:
        # inplace_predict skips DMatrix construction: the cheapest path xgboost offers.
        return self.booster.inplace_predict(rows, validate_features=False)

    def metadata(self, *, max_rows: int) -> dict[str, object]:
        return {
            "features": [
                {"name": name, "type": ftype}
                for name, ftype in zip(self.feature_names, self.feature_types, strict=True)
            ],
            "model_sha256": self.sha256,
            "xgboost_version": xgb.__version__,
            "max_rows": max_rows,
        }


def load_model(path: Path, *, nthread: int) -> LoadedModel:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {path}: {exc.strerror}") from exc
    try:
        # xgboost 3.2 calls std::terminate on an empty buffer and dies of SIGSEGV on a truncated
        # UBJSON one: the process would end without a word, so check the structure first.
        check_model_bytes(raw)
    except ModelFormatError as exc:
        raise ModelLoadError(f"{path} is not an XGBoost JSON/UBJSON model: {exc}") from exc
    booster = xgb.Booster()
    try:
        # Loading from a bytearray lets xgboost sniff JSON vs UBJSON by content.
        booster.load_model(bytearray(raw))
    except (xgb.core.XGBoostError, UnicodeDecodeError) as exc:
        # UnicodeDecodeError: xgboost's message quotes the bad bytes and then fails to decode.
        raise ModelLoadError(f"{path} is not an XGBoost JSON/UBJSON model: {exc}") from exc
    names = booster.feature_names
    if not names:
        raise ModelLoadError(
            f"{path} has no feature names; the request schema comes from the model, "
            "so retrain with named features (e.g. a DataFrame or feature_names=...)"
        )
    types = booster.feature_types or ["float"] * len(names)
    booster.set_param({"nthread": nthread})
    return LoadedModel(
        booster=booster,
        feature_names=tuple(names),
        feature_types=tuple(types),
        sha256=hashlib.sha256(raw).hexdigest(),
        path=path,
    )
