"""Handler configuration, read once from the environment at init."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # the type checker's constant, without importing typing at init
if TYPE_CHECKING:
    from collections.abc import Mapping

# Paths as str, through os.path: pathlib would cost a cold start about 5 ms of imports.
MODEL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "model")
# The image holds the compiled library (built from model.ubj in the Dockerfile's builder stage);
# a checkout holds model.ubj, served through xgboost unless compiled (see README).
LIBRARY_NAME = "model.so"
MODEL_NAME = "model.ubj"
BUNDLED_LIBRARY = os.path.join(MODEL_DIR, LIBRARY_NAME)
BUNDLED_MODEL = os.path.join(MODEL_DIR, MODEL_NAME)
DEFAULT_MAX_ROWS = 10_000


class HandlerConfig:
    """What the handler reads from its environment. A plain class: dataclasses imports inspect,
    which alone costs a cold start about 10 ms."""

    __slots__ = ("max_rows", "model_path", "nthread")

    def __init__(self, *, model_path: str, nthread: int, max_rows: int) -> None:
        self.model_path = model_path
        self.nthread = nthread
        self.max_rows = max_rows

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HandlerConfig:
        env = os.environ if env is None else env
        return cls(
            model_path=env.get("MODEL_PATH") or default_model_path(MODEL_DIR),
            nthread=_positive_int(env, "BOOSTER_NTHREAD", 1),
            max_rows=_positive_int(env, "MAX_ROWS", DEFAULT_MAX_ROWS),
        )


def default_model_path(model_dir: str) -> str:
    """The compiled library when there is one, else the XGBoost model file."""
    library = os.path.join(model_dir, LIBRARY_NAME)
    return library if os.path.isfile(library) else os.path.join(model_dir, MODEL_NAME)


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
