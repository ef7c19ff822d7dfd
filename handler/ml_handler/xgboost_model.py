"""The development path: any XGBoost JSON/UBJSON model served through xgboost itself."""

from __future__ import annotations

import hashlib
from array import array

import numpy as np
import orjson
import xgboost as xgb

from .batch import FloatRows
from .model import ModelLoadError, schema_metadata

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .model import StrPath


class LoadedModel:
    def __init__(
        self,
        *,
        booster: xgb.Booster,
        feature_names: tuple[str, ...],
        feature_types: tuple[str, ...],
        sha256: str,
        path: StrPath,
    ) -> None:
        self.booster = booster
        self.feature_names = feature_names
        self.feature_types = feature_types
        self.sha256 = sha256
        self.path = path
        self.xgboost_version = xgb.__version__

    def predict_array(self, matrix: FloatRows) -> np.ndarray:
        rows = np.frombuffer(matrix.values, dtype=np.float32).reshape(matrix.rows, matrix.width)
        # inplace_predict skips DMatrix construction: the cheapest path xgboost offers.
        return self.booster.inplace_predict(rows, validate_features=False)

    def predict(self, matrix: FloatRows) -> array:
        out = array("f")
        out.frombytes(np.ascontiguousarray(self.predict_array(matrix), dtype=np.float32).tobytes())
        return out

    def predict_json(self, matrix: FloatRows) -> str:
        # float32 predictions serialize as their shortest round-trip text (6.573914).
        return orjson.dumps(self.predict_array(matrix), option=orjson.OPT_SERIALIZE_NUMPY).decode()

    def metadata(self, *, max_rows: int) -> dict[str, object]:
        return schema_metadata(self, xgboost_version=self.xgboost_version, max_rows=max_rows)


def load_xgboost_model(path: StrPath, raw: bytes, *, nthread: int) -> LoadedModel:
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
