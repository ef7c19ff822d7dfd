"""Handler configuration, read once from the environment at init."""

from __future__ import annotations

import os
from pathlib import Path

TYPE_CHECKING = False  # the type checker's constant, without importing typing at init
if TYPE_CHECKING:
    from collections.abc import Mapping

MODEL_DIR = Path(__file__).resolve().parent.parent / "model"
# The image holds the compiled library (built from model.ubj in the Dockerfile's builder stage);
# a checkout holds model.ubj, served through xgboost unless compiled (see README).
BUNDLED_LIBRARY = MODEL_DIR / "model.so"
BUNDLED_MODEL = MODEL_DIR / "model.ubj"
DEFAULT_MAX_ROWS = 10_000


class HandlerConfig:
    """What the handler reads from its environment. A plain class: dataclasses imports inspect,
    which alone costs a cold start about 10 ms."""

    __slots__ = ("max_rows", "model_path", "nthread")

    def __init__(self, *, model_path: Path, nthread: int, max_rows: int) -> None:
        self.model_path = model_path
        self.nthread = nthread
        self.max_rows = max_rows

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HandlerConfig:
        env = os.environ if env is None else env
        return cls(
            model_path=Path(env.get("MODEL_PATH") or default_model_path(MODEL_DIR)),
            nthread=_positive_int(env, "BOOSTER_NTHREAD", 1),
            max_rows=_positive_int(env, "MAX_ROWS", DEFAULT_MAX_ROWS),
        )


def default_model_path(model_dir: Path) -> Path:
    """The compiled library when there is one, else the XGBoost model file."""
    library = model_dir / BUNDLED_LIBRARY.name
    return library if library.is_file() else model_dir / BUNDLED_MODEL.name


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value
