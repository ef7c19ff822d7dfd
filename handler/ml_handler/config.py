"""Handler configuration, read once from the environment at init."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # the type checker's constant, without importing typing at init
if TYPE_CHECKING:
    from collections.abc import Mapping

# Paths as str, through os.path: pathlib would cost a cold start about 5 ms of imports.
MODEL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "model")
# The image holds the compiled library (built from model.ubj in the Dockerfile's builder stage);
# a checkout holds model.ubj, compiled on first use into the model cache (ml_handler/model.py).
LIBRARY_NAME = "model.so"
MODEL_NAME = "model.ubj"
BUNDLED_LIBRARY = os.path.join(MODEL_DIR, LIBRARY_NAME)
BUNDLED_MODEL = os.path.join(MODEL_DIR, MODEL_NAME)
DEFAULT_MAX_ROWS = 10_000


class HandlerConfig:
    """What the handler reads from its environment. A plain class: dataclasses imports inspect,
    which alone costs a cold start about 10 ms."""

    __slots__ = ("max_rows", "model_cache_dir", "model_path")

    def __init__(self, *, model_path: str, max_rows: int, model_cache_dir: str) -> None:
        self.model_path = model_path
        self.max_rows = max_rows
        self.model_cache_dir = model_cache_dir

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HandlerConfig:
        env = os.environ if env is None else env
        return cls(
            model_path=env.get("MODEL_PATH") or default_model_path(MODEL_DIR),
            max_rows=_positive_int(env, "MAX_ROWS", DEFAULT_MAX_ROWS),
            model_cache_dir=model_cache_dir(env),
        )


def model_cache_dir(env: Mapping[str, str]) -> str:
    """Where a model file named by MODEL_PATH is compiled: $MODEL_CACHE_DIR, else
    $XDG_CACHE_HOME/cdk-ml-lambda/models (XDG_CACHE_HOME defaulting to ~/.cache). A leading ~
    is expanded where it is used: the image, serving model.so, never needs it."""
    explicit = env.get("MODEL_CACHE_DIR")
    if explicit:
        return explicit
    base = env.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return os.path.join(base, "cdk-ml-lambda", "models")


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
