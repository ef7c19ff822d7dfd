"""Unit-layer fixtures: sockets blocked, a small model trained here (JSON, UBJ and compiled),
its service, and xgboost's Booster as the oracle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_socket
import xgboost as xgb
from ml_handler.model import load_model
from ml_handler.service import InferenceService
from model_compiler.build import compile_model

from tests.session_artifacts import shared_artifact
from tests.unit.small_model import SMALL_MAX_ROWS, train_small_model

if TYPE_CHECKING:
    from ml_handler.compiled_model import CompiledModel


@pytest.fixture(autouse=True)
def _block_sockets() -> Iterator[None]:
    # Unit tests are offline by construction; subprocesses (the simulated image) are unaffected.
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()


@pytest.fixture(scope="session")
def small_model_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    def train(folder: Path) -> None:
        booster = train_small_model()
        for suffix in ("json", "ubj"):
            booster.save_model(folder / f"model.{suffix}")

    folder = shared_artifact(tmp_path_factory, "small-model", train)
    return {suffix: folder / f"model.{suffix}" for suffix in ("json", "ubj")}


@pytest.fixture(scope="session")
def small_library(
    small_model_paths: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The small model compiled by model_compiler with the local C compiler."""
    folder = shared_artifact(
        tmp_path_factory,
        "small-model-compiled",
        lambda out: compile_model(small_model_paths["ubj"], out),
    )
    return folder / "model.so"


@pytest.fixture(scope="session")
def small_compiled(small_library: Path) -> CompiledModel:
    return load_model(small_library)


@pytest.fixture(scope="session")
def small_service(small_compiled: CompiledModel) -> InferenceService:
    """The small model's service, as the image serves it."""
    return InferenceService(model=small_compiled, max_rows=SMALL_MAX_ROWS)


@pytest.fixture(scope="session")
def reference_booster(small_model_paths: dict[str, Path]) -> xgb.Booster:
    """The same model loaded by xgboost alone: the oracle the handler is compared against."""
    booster = xgb.Booster()
    booster.load_model(small_model_paths["json"])
    booster.set_param({"nthread": 1})
    return booster
